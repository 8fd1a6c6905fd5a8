"""Interaction data: loaders (CSV logs, MovieLens, pre-split sparse matrices, generated), splits and the source.

Implicit feedback: an interaction counts as positive when its rating is ``>= threshold`` (MovieLens
convention: 4 of 5 stars; logs without a rating column keep every row). Each user's positives are split
into train / validation / test either by time (the latest ``test_frac`` go to test, the ``val_frac`` before
them to validation) or at random under the dataset seed. Ids are mapped to dense indices from the
*training* interactions; validation or test interactions naming a user or item that never occurs in
training cannot be scored, so they are counted in ``InteractionSource.dropped`` and a warning is issued.

Items carry categorical feature *fields* (the item id is field 0; MovieLens adds genres, the most frequent
tags and the release decade): ``item_tokens (I, T)`` holds global vocabulary indices (0 = padding) and
``slot_field (T,)`` says which field each slot belongs to. Two-tower item towers embed these tokens; BM3
uses their multi-hot form (without the id field) as the item "modality".
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import Tensor

from omnissl.device import move_to_device
from omnissl.errors import DataError
from omnissl.specs import BuildContext, ComponentConfig

SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------------------------------------ configs
class SplitConfig(ComponentConfig):
    """Implicit conversion and hold-out shared by the log loaders.

    Fields: ``threshold`` (4.0; ratings ``>=`` it are positives, ignored without a rating column),
    ``split`` (``"random"``: per-user random hold-out, or ``"temporal"``: per-user latest-last),
    ``val_frac`` (0.1), ``test_frac`` (0.2), ``min_user_interactions`` (3; users with fewer positives are
    dropped before splitting so that each has a training item), ``seed`` (0) for the random split, and
    ``save_id_map`` (``None``; a JSON path where the raw-id -> index mapping is written with the run).
    """

    threshold: float = 4.0
    split: Literal["random", "temporal"] = "random"
    val_frac: float = Field(0.1, ge=0, lt=1)
    test_frac: float = Field(0.2, gt=0, lt=1)
    min_user_interactions: int = Field(3, ge=1)
    seed: int = 0
    save_id_map: str | None = None


class CSVConfig(SplitConfig):
    """An interaction log ``path`` (CSV, TSV, ``::``-separated) with ``user_col``/``item_col`` and optional ``rating_col``/``time_col``.

    Fields beyond the split settings: ``delimiter`` (``None``: sniffed from the first line among tab, ``::``,
    comma, semicolon and ``|``), ``header`` (``None``: the first line is a header when it names ``user_col``;
    ``false`` for files such as MovieLens-100k ``u.data``), ``columns`` (names of a headerless file's columns;
    default ``user, item, rating, time``, as many as the file has), ``item_feature_cols`` (categorical item
    columns of the log, e.g. a genre or brand; each becomes an item field, multi-valued cells split by
    ``feature_sep``, ``"|"``), and ``encoding`` (``"utf-8"``; ``"latin-1"`` for the older MovieLens files).
    """

    path: str = ""
    user_col: str = "user"
    item_col: str = "item"
    rating_col: str | None = None
    time_col: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    columns: list[str] | None = None
    item_feature_cols: list[str] = Field(default_factory=list)
    feature_sep: str = "|"
    encoding: str = "utf-8"


class MovieLensConfig(SplitConfig):
    """A MovieLens folder ``path`` in any of GroupLens' layouts; ``num_tags`` (100) most frequent tags become an item field.

    Layouts, recognised by their files: latest, 20M, 25M, 32M (``ratings.csv``, ``movies.csv``, optional
    ``tags.csv``); 1M and 10M (``ratings.dat``, ``movies.dat``, optional ``tags.dat``, ``::``-separated,
    Latin-1); 100K (``u.data`` tab-separated without a header, ``u.item`` ``|``-separated with 19 genre flags,
    ``u.genre``).
    """

    path: str = "${OMNISSL_DATA:-../shared/data}/recsys/movielens-latest-small"
    num_tags: int = Field(100, ge=0)


class SparseConfig(ComponentConfig):
    """Pre-split ``scipy.sparse`` matrices saved with ``save_npz``: ``train``, ``val`` (optional), ``test`` paths (users x items), optional dense ``item_features`` ``.npy``/``.npz``."""

    train: str = ""
    test: str = ""
    val: str | None = None
    item_features: str | None = None


class GeneratedConfig(ComponentConfig):
    """Generated interactions from a latent-factor model with power-law item popularity.

    Each item belongs to one of ``num_categories`` categories (its latent factor is the category centre) and
    carries ``tags_per_item`` tags drawn from its category's ``tags_per_category`` tags; item popularity
    follows ``rank ** -popularity_exponent`` (1.0: Zipf). Each user has a latent vector; a user's
    interactions pick a category with ``softmax(user . centre / 0.5)`` and then an item of that category in
    proportion to popularity. Users have ``interactions_per_user`` (20) interactions in random time order.
    Defaults are tiny (CPU tests); the scale benchmark asks for a million items.
    """

    num_users: int = Field(200, ge=2)
    num_items: int = Field(500, ge=2)
    num_categories: int = Field(10, ge=1)
    tags_per_category: int = Field(5, ge=1)
    tags_per_item: int = Field(2, ge=1)
    latent_dim: int = Field(8, ge=1)
    interactions_per_user: int = Field(20, ge=3)
    popularity_exponent: float = Field(1.0, ge=0)
    val_frac: float = Field(0.1, ge=0, lt=1)
    test_frac: float = Field(0.2, gt=0, lt=1)
    seed: int = 0


# ------------------------------------------------------------------------------------------ item features
@dataclass
class ItemFeatures:
    """Categorical item fields as padded token slots.

    Attributes:
        tokens: ``(I, T)`` global vocabulary indices, 0 = empty slot.
        slot_field: ``(T,)`` field index of each slot (field 0 is the item id).
        field_names: one name per field; ``field_offsets`` the first vocabulary index of each field.
        vocab_size: total vocabulary including the padding index 0.
    """

    tokens: Tensor
    slot_field: Tensor
    field_names: list[str]
    field_offsets: list[int]
    vocab_size: int

    @staticmethod
    def from_lists(num_items: int, fields: dict[str, tuple[list[list[int]], int]]) -> ItemFeatures:
        """``fields``: name -> (per-item lists of local ids, field vocabulary size). The id field is added first."""
        names, offsets, columns, slot_field = ["id"], [1], [torch.arange(num_items).unsqueeze(1) + 1], [0]
        offset = 1 + num_items
        for f, (name, (lists, size)) in enumerate(fields.items(), start=1):
            if isinstance(lists, Tensor):  # (I, w) local ids, -1 = empty: the vectorised path (large catalogues)
                block = torch.where(lists >= 0, lists + offset, torch.zeros_like(lists))
            else:
                width = max(1, max((len(x) for x in lists), default=1))
                block = torch.zeros(num_items, width, dtype=torch.long)
                for i, values in enumerate(lists):
                    if values:
                        block[i, : len(values)] = torch.tensor(values, dtype=torch.long) + offset
            names.append(name)
            offsets.append(offset)
            columns.append(block)
            slot_field += [f] * block.shape[1]
            offset += size
        return ItemFeatures(torch.cat(columns, 1), torch.tensor(slot_field), names, offsets, offset)

    @property
    def num_fields(self) -> int:
        return len(self.field_names)

    def multi_hot(self) -> Tensor:
        """``(I, V')`` float multi-hot of every non-id field (BM3's item modality); ``(I, 1)`` zeros if none."""
        start = self.field_offsets[1] if self.num_fields > 1 else self.vocab_size
        width = max(1, self.vocab_size - start)
        out = torch.zeros(self.tokens.shape[0], width + 1)
        local = (self.tokens - start + 1).clamp_min(0)  # 0 collects padding and id tokens
        out.scatter_(1, local, 1.0)
        return out[:, 1:]

    def field_mutual_information(self, max_items: int = 50_000) -> Tensor:
        """``(F, F)`` mutual information between fields (Yao et al. 2021, sec. 3.3, used by correlated masking).

        For two non-id fields the joint distribution counts every pair of values co-occurring on an item,
        weighted ``1 / (n_f n_g)`` so that each item contributes mass one. The id field determines every other
        field, so ``MI(id, g) = H(g)``. Computed on at most ``max_items`` items (the first ones).
        """
        tokens = self.tokens[:max_items]
        F_ = self.num_fields
        sizes = [b - a for a, b in zip(self.field_offsets, self.field_offsets[1:] + [self.vocab_size])]
        local = []
        for f in range(F_):
            cols = tokens[:, self.slot_field == f]
            local.append(torch.where(cols > 0, cols - self.field_offsets[f], torch.full_like(cols, -1)))
        mi = torch.zeros(F_, F_, dtype=torch.float64)
        for f in range(1, F_):
            for g in range(f, F_):
                a, b = local[f], local[g]
                na, nb = (a >= 0).sum(1, keepdim=True).clamp_min(1), (b >= 0).sum(1, keepdim=True).clamp_min(1)
                pair_ok = (a >= 0).unsqueeze(2) & (b >= 0).unsqueeze(1)
                key = a.clamp_min(0).unsqueeze(2) * sizes[g] + b.clamp_min(0).unsqueeze(1)
                w = (pair_ok / (na.unsqueeze(2) * nb.unsqueeze(1))).double()
                joint = torch.bincount(key.flatten(), weights=w.flatten(), minlength=sizes[f] * sizes[g]).view(sizes[f], sizes[g])
                joint = joint / joint.sum().clamp_min(1e-12)
                pa, pb = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
                nz = joint > 0
                value = (joint[nz] * (joint[nz] / (pa * pb).expand_as(joint)[nz]).log()).sum()
                mi[f, g] = mi[g, f] = value
        for g in range(1, F_):
            mi[0, g] = mi[g, 0] = mi[g, g]  # H(g): the id determines g
        mi[0, 0] = math.log(max(2, tokens.shape[0]))
        return mi.float()


# ---------------------------------------------------------------------------------------------- the source
@dataclass
class InteractionSource:
    """User-item interactions split into train / val / test, resident on the device once moved.

    Samples are the training interactions: ``batch(idx)`` returns ``{"user": (B,), "pos": (B,)}`` (negatives
    are drawn by the view generators, from their generator, so views stay reproducible).

    Attributes:
        num_users, num_items: catalogue sizes (indices are dense).
        interactions: ``{"train" | "val" | "test": (E, 2) long [user, item]}``.
        features: the items' categorical fields (:class:`ItemFeatures`).
        user_ids, item_ids: raw id of each index (for the id map written with the run).
        dropped: per split, interactions dropped because their user or item is unknown at train time.
    """

    num_users: int
    num_items: int
    interactions: dict[str, Tensor]
    features: ItemFeatures
    user_ids: list = field(default_factory=list)
    item_ids: list = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.device = torch.device("cpu")
        self._cache: dict[str, Tensor] = {}

    def __len__(self) -> int:
        return int(self.interactions["train"].shape[0])

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        pairs = self.interactions["train"][indices]
        return {"user": pairs[:, 0].contiguous(), "pos": pairs[:, 1].contiguous()}

    def to(self, device: torch.device | str) -> InteractionSource:
        self.device = torch.device(device)
        self.interactions = move_to_device(self.interactions, self.device)
        self.features.tokens = self.features.tokens.to(self.device)
        self.features.slot_field = self.features.slot_field.to(self.device)
        self._cache = {}  # derived tensors are rebuilt on the new device when first asked for
        return self

    # ---------------------------------------------------------------------------- derived, cached tensors
    def _cached(self, key: str, make) -> Tensor:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def popularity(self) -> Tensor:
        """``(I,)`` training interaction count of each item."""
        return self._cached("popularity", lambda: torch.bincount(self.interactions["train"][:, 1], minlength=self.num_items).float())

    @property
    def train_keys(self) -> Tensor:
        """Sorted ``user * I + item`` keys of training interactions (membership tests by ``searchsorted``)."""
        return self._cached("train_keys", lambda: torch.sort(self.interactions["train"][:, 0] * self.num_items + self.interactions["train"][:, 1])[0])

    @property
    def item_multi_hot(self) -> Tensor:
        """``(I, V')`` multi-hot item features (no id field): BM3's modality."""
        return self._cached("multi_hot", lambda: self.features.multi_hot().to(self.device))

    @property
    def graph(self):
        """The training graph's :class:`~omnissl_recsys.graph.BipartiteGraph` (edge dropout reuses its pattern)."""
        from omnissl_recsys.graph import BipartiteGraph

        train = self.interactions["train"]
        return self._cached("graph", lambda: BipartiteGraph(train[:, 0], train[:, 1], self.num_users, self.num_items))

    @property
    def adjacency(self) -> Tensor:
        """The symmetric normalised user-item adjacency of the training graph (sparse CSR, ``(U+I, U+I)``)."""
        return self._cached("adjacency", lambda: self.graph.normalized())

    def describe(self) -> str:
        """One line for the start of a run: users, items, interactions per split, ids dropped, item fields."""
        counts = " / ".join(f"{k} {int(v.shape[0]):,}" for k, v in self.interactions.items())
        dropped = {k: v for k, v in self.dropped.items() if v}
        note = f"; dropped (user or item unseen in training): {dropped}" if dropped else ""
        return (f"{self.num_users:,} users, {self.num_items:,} items; interactions {counts}{note}; "
                f"item fields {', '.join(self.features.field_names)}")

    def save_id_map(self, path: str | Path) -> None:
        """Write ``{"users": [raw ids], "items": [raw ids], "dropped": {...}}`` (index = position) as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"users": [_plain(u) for u in self.user_ids], "items": [_plain(i) for i in self.item_ids], "dropped": self.dropped}))


def _plain(x):
    return x.item() if hasattr(x, "item") else x


# ----------------------------------------------------------------------------------------- log -> splits
def split_log(df: pd.DataFrame, cfg: SplitConfig, has_time: bool) -> dict[str, pd.DataFrame]:
    """Per-user hold-out of a positives log with columns ``user``, ``item`` (and ``time``)."""
    counts = df.groupby("user")["item"].transform("size")
    df = df[counts >= cfg.min_user_interactions]
    if cfg.split == "temporal":
        if not has_time:
            raise DataError("split: temporal needs a timestamp column (set time_col), or use split: random")
        df = df.sort_values(["user", "time"], kind="stable")
    else:
        rng = np.random.default_rng(cfg.seed)
        df = df.assign(_r=rng.random(len(df))).sort_values(["user", "_r"], kind="stable").drop(columns="_r")
    n = df.groupby("user")["item"].transform("size").to_numpy()
    pos = df.groupby("user").cumcount().to_numpy()
    n_test = np.maximum(1, np.floor(n * cfg.test_frac)).astype(int)
    n_val = np.floor(n * cfg.val_frac).astype(int)
    n_train = np.maximum(1, n - n_test - n_val)
    part = np.where(pos < n_train, 0, np.where(pos < n - n_test, 1, 2))
    return {name: df[part == k] for k, name in enumerate(SPLITS)}


def source_from_log(df: pd.DataFrame, cfg: SplitConfig, has_time: bool, item_fields=None, where: str = "") -> InteractionSource:
    """Map ids from the training part, drop (and count) unknown ids in val/test, build the source.

    ``item_fields(raw_item_ids) -> dict[name, (lists, size)]`` supplies categorical item fields.
    """
    parts = split_log(df, cfg, has_time)
    if len(parts["train"]) == 0:
        raise DataError(f"{where}: no training interactions left after the rating threshold {cfg.threshold} and "
                        f"min_user_interactions={cfg.min_user_interactions}; lower them or check the columns")
    user_ids = np.sort(parts["train"]["user"].unique())
    item_ids = np.sort(parts["train"]["item"].unique())
    u_index = pd.Series(np.arange(len(user_ids)), index=user_ids)
    i_index = pd.Series(np.arange(len(item_ids)), index=item_ids)
    interactions, dropped = {}, {}
    for name, part in parts.items():
        u = part["user"].map(u_index)
        i = part["item"].map(i_index)
        known = u.notna() & i.notna()
        dropped[name] = int((~known).sum())
        pairs = np.stack([u[known].to_numpy(np.int64), i[known].to_numpy(np.int64)], 1) if known.any() else np.zeros((0, 2), np.int64)
        interactions[name] = torch.from_numpy(pairs).long()
    fields = item_fields(item_ids) if item_fields else {}
    source = InteractionSource(len(user_ids), len(item_ids), interactions, ItemFeatures.from_lists(len(item_ids), fields),
                               list(user_ids), list(item_ids), dropped)
    if cfg.save_id_map:
        source.save_id_map(cfg.save_id_map)
    return source


def _resolve(path: str, what: str, key: str = "path") -> Path:
    """Expand ``${VAR:-default}`` in a path (defaults are not expanded by the config loader) and require it."""
    from omnissl.config import expand_env

    if not path:
        raise DataError(f"{what}: set {key} (the file or folder to read)")
    return Path(expand_env(path))


DELIMITERS = ("\t", "::", ",", ";", "|")


def _read_csv(path: Path, what: str, delimiter: str | None = ",", header: bool = True, names: list[str] | None = None,
              encoding: str = "utf-8") -> pd.DataFrame:
    """Read a delimited file; ``names`` label a headerless file's columns (fewer names than columns: the rest are dropped)."""
    if not path.is_file():
        raise DataError(f"{what}: file {path} does not exist; check the path (tests use $OMNISSL_DATA or ../shared/data)")
    try:
        if not header and names:
            width = len(_first_line(path, encoding).split(delimiter))
            names = (names + [f"column_{k}" for k in range(len(names), width)])[:width]
        return pd.read_csv(path, sep=delimiter, header=0 if header else None, names=None if header else names,
                           encoding=encoding, engine="python" if len(delimiter or ",") > 1 else "c")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{what}: cannot parse {path} with delimiter {delimiter!r} and encoding {encoding!r}: {exc}; "
                        "set delimiter/header/encoding in the data config") from exc


def _first_line(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, errors="replace") as f:
        return f.readline().rstrip("\r\n")


def sniff_delimiter(line: str) -> str:
    """The first of tab, ``::``, comma, semicolon and ``|`` that splits ``line`` (comma when none does)."""
    return next((d for d in DELIMITERS if d in line), ",")


def _require_columns(df: pd.DataFrame, cols: list[str], path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; the file has {list(df.columns)}. Set user_col/item_col/rating_col/time_col")


def _positives(df: pd.DataFrame, user: str, item: str, rating: str | None, time: str | None, threshold: float, path: Path,
               carry: tuple[str, ...] = ()) -> pd.DataFrame:
    """The positive rows as ``user``, ``item`` (``time``) and the ``carry`` columns under their own names."""
    _require_columns(df, [c for c in (user, item, rating, time, *carry) if c], path)
    if rating:
        values = pd.to_numeric(df[rating], errors="coerce")
        bad = values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # +1 header, +1 one-based
            raise DataError(f"{path}, line {row}, column {rating!r}: rating {df[rating].iloc[row - 2]!r} is not a number")
        df = df[values >= threshold]
    out = pd.DataFrame({"user": df[user].to_numpy(), "item": df[item].to_numpy()})
    if time:
        out["time"] = pd.to_numeric(df[time], errors="coerce").to_numpy()
    for col in carry:
        out[col] = df[col].to_numpy()
    return out


def load_csv(cfg: CSVConfig, ctx: BuildContext | None = None) -> InteractionSource:
    """``recsys.csv``: any delimited interaction log; items carry their id and the ``item_feature_cols`` fields."""
    path = _resolve(cfg.path, "recsys.csv")
    first = _first_line(path, cfg.encoding) if path.is_file() else ""
    delimiter = cfg.delimiter or sniff_delimiter(first)
    header = cfg.header if cfg.header is not None else cfg.user_col in [c.strip().strip('"') for c in first.split(delimiter)]
    names = cfg.columns or ["user", "item", "rating", "time"]
    raw = _read_csv(path, "recsys.csv", delimiter, header, names, cfg.encoding)
    df = _positives(raw, cfg.user_col, cfg.item_col, cfg.rating_col, cfg.time_col, cfg.threshold, path, tuple(cfg.item_feature_cols))

    def fields(item_ids: np.ndarray) -> dict:
        return {col: _categorical_field(df, col, item_ids, cfg.feature_sep) for col in cfg.item_feature_cols}

    return source_from_log(df, cfg, cfg.time_col is not None, fields, where=str(path))


def _categorical_field(df: pd.DataFrame, column: str, item_ids: np.ndarray, sep: str) -> tuple[list[list[int]], int]:
    """Per-item value lists of a (possibly ``sep``-separated multi-valued) column, as local ids and the vocabulary size."""
    per_item = df.drop_duplicates("item").set_index("item")[column].reindex(item_ids)
    lists = [[v.strip() for v in str(cell).split(sep) if v.strip()] if pd.notna(cell) else [] for cell in per_item]
    vocab = {v: k for k, v in enumerate(sorted({v for values in lists for v in values}))}
    return [[vocab[v] for v in values] for values in lists], len(vocab)


def load_movielens(cfg: MovieLensConfig, ctx: BuildContext | None = None) -> InteractionSource:
    """``recsys.movielens``: ratings >= threshold; item fields genres, the ``num_tags`` commonest tags, decade.

    Reference: Harper & Konstan, "The MovieLens Datasets", ACM TiiS 2015.
    """
    root = _resolve(cfg.path, "recsys.movielens")
    ratings, ratings_path, movies, tags = _movielens_tables(root, cfg.num_tags > 0)
    df = _positives(ratings, "userId", "movieId", "rating", "timestamp", cfg.threshold, ratings_path)
    movies = movies.set_index("movieId")

    def fields(item_ids: np.ndarray) -> dict:
        genre_lists = [str(g).split("|") if i in movies.index else [] for i, g in zip(item_ids, movies["genres"].reindex(item_ids).fillna(""))]
        genres = sorted({g for gs in genre_lists for g in gs if g and g != "(no genres listed)"})
        g_index = {g: k for k, g in enumerate(genres)}
        out = {"genres": ([[g_index[g] for g in gs if g in g_index] for gs in genre_lists], len(genres))}
        if tags is not None:
            norm = tags.assign(tag=tags["tag"].astype(str).str.strip().str.lower())
            top = norm["tag"].value_counts().index[: cfg.num_tags]
            t_index = {t: k for k, t in enumerate(top)}
            per_item = norm[norm["tag"].isin(t_index)].groupby("movieId")["tag"].agg(lambda s: sorted({t_index[t] for t in s}))
            out["tags"] = ([list(per_item.get(i, [])) for i in item_ids], len(top))
        years = movies["title"].reindex(item_ids).fillna("").map(lambda t: re.search(r"\((\d{4})\)\s*$", str(t)))
        decades = [(int(m.group(1)) // 10) if m else None for m in years]
        known = sorted({d for d in decades if d is not None})
        d_index = {d: k for k, d in enumerate(known)}
        out["decade"] = ([[d_index[d]] if d is not None else [] for d in decades], len(known))
        return out

    return source_from_log(df, cfg, True, fields, where=str(root))


ML_RATINGS = ["userId", "movieId", "rating", "timestamp"]


def _movielens_tables(root: Path, with_tags: bool) -> tuple[pd.DataFrame, Path, pd.DataFrame, pd.DataFrame | None]:
    """Ratings, movies (``movieId, title, genres`` with ``|``-joined genre names) and tags of any MovieLens layout."""
    what = "recsys.movielens"
    if (root / "ratings.csv").is_file():  # latest, 20M, 25M, 32M
        movies = _read_csv(root / "movies.csv", what)
        _require_columns(movies, ["movieId", "title", "genres"], root / "movies.csv")
        tags = _read_csv(root / "tags.csv", what) if with_tags and (root / "tags.csv").is_file() else None
        return _read_csv(root / "ratings.csv", what), root / "ratings.csv", movies, tags
    if (root / "ratings.dat").is_file():  # 1M, 10M
        ratings = _read_csv(root / "ratings.dat", what, "::", False, ML_RATINGS, "latin-1")
        movies = _read_csv(root / "movies.dat", what, "::", False, ["movieId", "title", "genres"], "latin-1")
        tags_path = root / "tags.dat"
        tags = _read_csv(tags_path, what, "::", False, ["userId", "movieId", "tag", "timestamp"], "latin-1") if with_tags and tags_path.is_file() else None
        return ratings, root / "ratings.dat", movies, tags
    if (root / "u.data").is_file():  # 100K
        ratings = _read_csv(root / "u.data", what, "\t", False, ML_RATINGS)
        genre_path = root / "u.genre"
        genre_names = (_read_csv(genre_path, what, "|", False, ["genre", "index"], "latin-1")["genre"].tolist()
                       if genre_path.is_file() else [f"genre_{k}" for k in range(19)])
        items = _read_csv(root / "u.item", what, "|", False, ["movieId", "title", "release", "video", "url", *genre_names], "latin-1")
        flags = items[genre_names].to_numpy(dtype=bool)
        genres = ["|".join(g for g, on in zip(genre_names, row) if on and g != "unknown") for row in flags]
        return ratings, root / "u.data", pd.DataFrame({"movieId": items["movieId"], "title": items["title"], "genres": genres}), None
    raise DataError(f"{what}: no MovieLens layout in {root}: expected ratings.csv + movies.csv (latest, 20M, 25M), "
                    "ratings.dat + movies.dat (1M, 10M) or u.data + u.item (100K); point path at the unpacked folder")


def load_sparse(cfg: SparseConfig, ctx: BuildContext | None = None) -> InteractionSource:
    """``recsys.sparse``: pre-split user x item matrices (nonzeros are positives). Shapes must agree."""
    import scipy.sparse as sp

    mats = {}
    for name, p in (("train", cfg.train), ("val", cfg.val), ("test", cfg.test)):
        if p is None:
            continue
        p = _resolve(p, "recsys.sparse", name)
        if not p.is_file():
            raise DataError(f"recsys.sparse: {name} matrix {p} does not exist")
        mats[name] = sp.load_npz(p).tocoo()
    shape = mats["train"].shape
    for name, m in mats.items():
        if m.shape != shape:
            raise DataError(f"recsys.sparse: {name} matrix has shape {m.shape} but train has {shape}; all splits must share users x items")
    interactions = {name: torch.from_numpy(np.stack([m.row, m.col], 1).astype(np.int64)) for name, m in mats.items()}
    interactions.setdefault("val", torch.zeros(0, 2, dtype=torch.long))
    fields = {}
    if cfg.item_features:
        dense = np.load(cfg.item_features)
        dense = dense[dense.files[0]] if hasattr(dense, "files") else dense
        if dense.shape[0] != shape[1]:
            raise DataError(f"recsys.sparse: item_features has {dense.shape[0]} rows but there are {shape[1]} items")
        fields["features"] = ([list(np.flatnonzero(row)) for row in dense], dense.shape[1])
    return InteractionSource(shape[0], shape[1], interactions, ItemFeatures.from_lists(shape[1], fields),
                             list(range(shape[0])), list(range(shape[1])), {k: 0 for k in interactions})


def generate(cfg: GeneratedConfig, ctx: BuildContext | None = None) -> InteractionSource:
    """``recsys.generated``: the latent-factor generator described in :class:`GeneratedConfig` (vectorised)."""
    g = torch.Generator().manual_seed(cfg.seed)
    U, I, C = cfg.num_users, cfg.num_items, cfg.num_categories
    centres = torch.randn(C, cfg.latent_dim, generator=g)
    users = torch.randn(U, cfg.latent_dim, generator=g)
    category = torch.randint(C, (I,), generator=g)
    popularity = torch.randperm(I, generator=g).add(1).double().pow(-cfg.popularity_exponent)
    # items of each category in one sorted array; per-category cumulative popularity for inverse-CDF draws
    order = torch.argsort(category * 2.0 + 0.0, stable=True)
    cat_sorted = category[order]
    starts = torch.searchsorted(cat_sorted, torch.arange(C))
    ends = torch.searchsorted(cat_sorted, torch.arange(C), right=True)
    cum = torch.cumsum(popularity[order], 0)
    base = torch.where(starts > 0, cum[(starts - 1).clamp_min(0)], torch.zeros(C, dtype=cum.dtype))
    mass = torch.where(ends > starts, cum[(ends - 1).clamp_min(0)] - base, torch.zeros_like(base))
    pref = torch.softmax(users @ centres.T / 0.5, dim=1).masked_fill(mass.unsqueeze(0) == 0, 0.0)
    n = cfg.interactions_per_user
    picked_cat = torch.multinomial(pref, n, replacement=True, generator=g)  # (U, n)
    u_rand = torch.rand(U, n, generator=g, dtype=torch.float64)
    target = base[picked_cat] + u_rand * mass[picked_cat]
    pos = torch.searchsorted(cum, target.flatten()).clamp(max=I - 1).view(U, n)
    pos = torch.maximum(torch.minimum(pos, ends[picked_cat] - 1), starts[picked_cat])
    items = order[pos]
    user_col = torch.arange(U).repeat_interleave(n)
    df = pd.DataFrame({"user": user_col.numpy(), "item": items.flatten().numpy(), "time": torch.rand(U * n, generator=g).numpy()})
    df = df.drop_duplicates(["user", "item"])
    tags = torch.randint(cfg.tags_per_category, (I, cfg.tags_per_item), generator=g) + category.unsqueeze(1) * cfg.tags_per_category
    split_cfg = SplitConfig(split="temporal", val_frac=cfg.val_frac, test_frac=cfg.test_frac, min_user_interactions=1, seed=cfg.seed)
    # the catalogue is known a priori: every generated item is rankable, also those nobody interacted with
    parts = split_log(df, split_cfg, has_time=True)
    interactions = {k: torch.from_numpy(v[["user", "item"]].to_numpy(np.int64).copy()) for k, v in parts.items()}
    features = ItemFeatures.from_lists(I, {"category": (category.unsqueeze(1), C), "tags": (tags, C * cfg.tags_per_category)})
    return InteractionSource(U, I, interactions, features, list(range(U)), list(range(I)), {k: 0 for k in SPLITS})


def example_data() -> InteractionSource:
    """A tiny generated source for contract tests."""
    return generate(GeneratedConfig(num_users=16, num_items=24, num_categories=3, interactions_per_user=6))


def example_batch() -> dict[str, Tensor]:
    return example_data().batch(torch.arange(8))
