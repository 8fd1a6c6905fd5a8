"""Loaders: implicit conversion, per-user hold-out, unknown ids reported and dropped, id map, errors, generator."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from omnissl.errors import DataError
from omnissl_recsys.datasets import CSVConfig, GeneratedConfig, MovieLensConfig, SparseConfig, generate, load_csv, load_movielens, load_sparse
from omnissl_recsys.graph import normalized_adjacency


def write_log(tmp_path: Path, rows: list[tuple]) -> Path:
    path = tmp_path / "log.csv"
    path.write_text("u,i,r,t\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return path


def test_temporal_split_threshold_unknown_ids_and_id_map(tmp_path):
    rows = []
    for t, item in enumerate(["a", "b", "c", "d", "e"]):  # user 1: 5 positives in time order a..e
        rows.append(("u1", item, 5, t))
    rows += [("u1", "low", 2, 10)]  # below the threshold: not an interaction
    rows += [("u2", i, 4, t) for t, i in enumerate(["e", "d", "a", "b", "z"])]  # z is only ever held out: unknown
    id_map = tmp_path / "ids.json"
    cfg = CSVConfig(path=str(write_log(tmp_path, rows)), user_col="u", item_col="i", rating_col="r", time_col="t",
                    split="temporal", val_frac=0.2, test_frac=0.2, min_user_interactions=1, save_id_map=str(id_map))
    src = load_csv(cfg)
    items = src.item_ids
    assert "low" not in items and "z" not in items
    by_split = {k: {(src.user_ids[u], items[i]) for u, i in v.tolist()} for k, v in src.interactions.items()}
    assert by_split["test"] == {("u1", "e")}  # the latest interaction of u1; u2's test item z is unknown
    assert by_split["val"] == {("u1", "d"), ("u2", "b")}
    assert by_split["train"] == {("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "e"), ("u2", "d"), ("u2", "a")}
    assert src.dropped == {"train": 0, "val": 0, "test": 1}
    assert "2 users" in src.describe() and "dropped (user or item unseen in training): {'test': 1}" in src.describe()
    saved = json.loads(id_map.read_text())
    assert saved["items"] == items and saved["users"] == ["u1", "u2"] and saved["dropped"]["test"] == 1


def test_bad_rating_names_file_line_and_column(tmp_path):
    path = write_log(tmp_path, [("u1", "a", 5, 0), ("u1", "b", "five", 1)])
    with pytest.raises(DataError, match=r"line 3, column 'r'"):
        load_csv(CSVConfig(path=str(path), user_col="u", item_col="i", rating_col="r"))


def test_missing_column_lists_columns(tmp_path):
    path = write_log(tmp_path, [("u1", "a", 5, 0)])
    with pytest.raises(DataError, match="missing column"):
        load_csv(CSVConfig(path=str(path), user_col="user", item_col="i"))


def test_sparse_matrices_round_trip(tmp_path):
    import scipy.sparse as sp

    train = sp.coo_matrix((np.ones(3), ([0, 1, 2], [0, 1, 2])), shape=(3, 4))
    test = sp.coo_matrix((np.ones(2), ([0, 2], [3, 1])), shape=(3, 4))
    sp.save_npz(tmp_path / "train.npz", train)
    sp.save_npz(tmp_path / "test.npz", test)
    src = load_sparse(SparseConfig(train=str(tmp_path / "train.npz"), test=str(tmp_path / "test.npz")))
    assert (src.num_users, src.num_items) == (3, 4)
    assert sorted(map(tuple, src.interactions["test"].tolist())) == [(0, 3), (2, 1)]
    sp.save_npz(tmp_path / "bad.npz", sp.coo_matrix((3, 5)))
    with pytest.raises(DataError, match="shape"):
        load_sparse(SparseConfig(train=str(tmp_path / "train.npz"), test=str(tmp_path / "bad.npz")))


def test_generated_popularity_is_power_law_and_items_carry_fields():
    src = generate(GeneratedConfig(num_users=300, num_items=400, interactions_per_user=20))
    pop = torch.sort(src.popularity, descending=True).values
    assert pop[:40].sum() > 0.3 * pop.sum()  # the top 10% of items take a large share (Zipf)
    assert src.features.field_names == ["id", "category", "tags"]
    mi = src.features.field_mutual_information()
    assert mi[1, 2] > 0.5 * mi[1, 1]  # tags are drawn from the item's category: strongly dependent fields
    batch = src.batch(torch.arange(5))
    assert set(batch) == {"user", "pos"} and batch["user"].shape == (5,)


def test_normalized_adjacency_matches_dense_formula_and_edge_dropout_equals_subgraph():
    users, items = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 0])
    R = torch.zeros(3, 2)
    R[users, items] = 1
    A = torch.zeros(5, 5)
    A[:3, 3:], A[3:, :3] = R, R.T
    d = A.sum(1).clamp_min(1).rsqrt()
    assert torch.allclose(normalized_adjacency(users, items, 3, 2).to_dense(), d[:, None] * A * d[None, :])
    keep = torch.tensor([True, False, True, True])
    sub = normalized_adjacency(users[keep], items[keep], 3, 2).to_dense()
    assert torch.allclose(normalized_adjacency(users, items, 3, 2, keep=keep).to_dense(), sub)


def _movielens() -> Path:
    return Path(os.environ.get("OMNISSL_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data")) / "recsys" / "movielens-latest-small"


def test_movielens_loader_when_available():
    if not (_movielens() / "ratings.csv").is_file():
        pytest.skip("MovieLens latest-small not available (set OMNISSL_DATA)")
    src = load_movielens(MovieLensConfig(path=str(_movielens())))
    assert src.features.field_names == ["id", "genres", "tags", "decade"]
    total = sum(v.shape[0] for v in src.interactions.values()) + sum(src.dropped.values())
    assert 45_000 < total < 50_000  # ratings >= 4 of the 100,836
    assert src.interactions["test"].shape[0] > src.interactions["val"].shape[0]


# ------------------------------------------------------------------------------ layouts as users have them
def write_ml100k(root: Path) -> Path:
    """A MovieLens-100K folder in GroupLens' layout: u.data (tab, no header), u.item (|, Latin-1, 19 genre flags), u.genre."""
    root.mkdir(parents=True, exist_ok=True)
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
              "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]
    (root / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(genres)) + "\n", encoding="latin-1")
    rng = np.random.default_rng(0)
    items = []
    for movie in range(1, 41):
        flags = ["0"] * 19
        flags[1 + movie % 3] = "1"  # Action, Adventure or Animation
        items.append("|".join([str(movie), f"Film {movie} \xe9t\xe9 ({1950 + movie})", "01-Jan-1995", "", "http://x", *flags]))
    (root / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    rows = [(u, m, int(rng.integers(3, 6)), 881250949 + 10 * u + m) for u in range(1, 31) for m in rng.choice(np.arange(1, 41), 12, replace=False)]
    (root / "u.data").write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in rows))
    return root


def test_movielens_100k_layout_reads_u_data_and_genre_flags(tmp_path):
    src = load_movielens(MovieLensConfig(path=str(write_ml100k(tmp_path / "ml-100k")), min_user_interactions=1))
    assert src.features.field_names == ["id", "genres", "decade"]
    text = (tmp_path / "ml-100k" / "u.data").read_text().splitlines()
    positives = {(int(u), int(m)) for u, m, r, _ in (line.split("\t") for line in text) if int(r) >= 4}
    loaded = {(src.user_ids[u], src.item_ids[i]) for part in src.interactions.values() for u, i in part.tolist()}
    assert loaded == positives
    genre_of = {src.item_ids[i]: src.features.tokens[i, src.features.slot_field == 1] for i in range(src.num_items)}
    movie = src.item_ids[0]
    assert int((genre_of[movie] > 0).sum()) == 1  # exactly the one flagged genre


def test_movielens_1m_layout_reads_double_colon_files(tmp_path):
    root = tmp_path / "ml-1m"
    root.mkdir()
    (root / "movies.dat").write_text("1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::Adventure\n", encoding="latin-1")
    (root / "ratings.dat").write_text("".join(f"{u}::{m}::5::{978300760 + u * 3 + m}\n" for u in (1, 2, 3) for m in (1, 2)))
    src = load_movielens(MovieLensConfig(path=str(root), min_user_interactions=1, test_frac=0.4))
    assert src.features.field_names == ["id", "genres", "decade"]
    assert sum(v.shape[0] for v in src.interactions.values()) == 6


def test_movielens_unknown_layout_names_the_expected_files(tmp_path):
    with pytest.raises(DataError, match="u.data"):
        load_movielens(MovieLensConfig(path=str(tmp_path)))


def test_csv_reads_headerless_tsv_and_item_feature_columns(tmp_path):
    src = load_csv(CSVConfig(path=str(write_ml100k(tmp_path) / "u.data"), rating_col="rating", time_col="time", min_user_interactions=1))
    assert src.num_users == 30 and src.features.field_names == ["id"]
    log = tmp_path / "log.tsv"
    log.write_text("user\titem\tt\tgenre\n" + "".join(f"{u}\t{i}\t{t}\t{g}\n" for u in ("u1", "u2")
                   for t, (i, g) in enumerate([("a", "drama|war"), ("b", "comedy"), ("c", "comedy")])))
    src = load_csv(CSVConfig(path=str(log), time_col="t", split="temporal", item_feature_cols=["genre"], min_user_interactions=1,
                             val_frac=0.0, test_frac=0.3))
    assert src.features.field_names == ["id", "genre"] and src.item_ids == ["a", "b"]  # c is every user's latest: test
    genre_tokens = src.features.tokens[:, src.features.slot_field == 1]
    assert [int((row > 0).sum()) for row in genre_tokens] == [2, 1]  # a: drama and war; b: comedy
    assert genre_tokens[0, 0] != genre_tokens[1, 0]


def test_ml100k_trains_through_both_loaders(tmp_path):
    from omnissl.config import load_config
    from omnissl.engine import run_config

    root = write_ml100k(tmp_path / "ml-100k")
    for data in ({"name": "recsys.movielens", "path": str(root)},
                 {"name": "recsys.csv", "path": str(root / "u.data"), "rating_col": "rating", "time_col": "time"}):
        cfg = load_config({
            "tasks": [{"name": "ml100k", "data": {**data, "min_user_interactions": 1},
                       "encoder": {"name": "recsys.lightgcn", "dim": 8, "num_layers": 1},
                       "views": {"name": "recsys.negatives"}, "objective": {"name": "recsys.bpr"},
                       "eval": [{"name": "recsys.ranking", "ks": [5]}]}],
            "engine": {"steps": 3, "batch_size": 32, "optimizer": {"name": "adam", "lr": 1e-2}},
            "eval": {"every": None, "at_end": True},
            "logging": {"out_dir": str(tmp_path / data["name"]), "progress": False},
        })
        state = run_config(cfg)
        assert state.step == 3
        evals = (tmp_path / data["name"] / "evals.jsonl").read_text()
        assert "recall@5" in evals.lower()
