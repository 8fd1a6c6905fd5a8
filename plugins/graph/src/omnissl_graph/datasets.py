"""Graph datasets: Planetoid and TU from local raw files, an edge-list loader and generated graphs.

Raw files are read with PyG's own readers (``read_planetoid_data``, ``read_tu_data``), which parse the raw
directory in memory: nothing is written next to the raw files and no ``processed/`` cache is needed.

Bad raw folders are a :class:`DataError` that names the file and, for text files, the line and column,
never a traceback from inside PyG. Planetoid's files are Python pickles and PyG opens them with a plain
``pickle.load``, which runs whatever code a hostile file names; each file is therefore first read by
:class:`_PlanetoidUnpickler`, which admits only the numpy, scipy and collections classes the real files
use, and PyG reads it only after that pass.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import add_self_loops, coalesce, remove_self_loops, to_undirected

from omnissl.errors import DataError, short_repr
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_graph.sources import GraphSetSource, NeighborSampledSource, NodeGraphSource


def data_root() -> Path:
    """``$OMNISSL_DATA`` or ``../shared/data`` from the current directory (the project's convention)."""
    return Path(os.environ.get("OMNISSL_DATA", "../shared/data"))


class NodeSourceOptions(ComponentConfig):
    """Options of every node-level dataset.

    Attributes:
        num_neighbors: ``None`` (default) trains full-graph (one sample); a list such as ``[10, 10]`` makes
            the source neighbour-sampled over seed nodes (``len == num_nodes``).
        holdout_edges: share of undirected edges removed from the training graph and kept for
            ``graph.link_auc`` (0.0).
        seed: seed of the edge hold-out and of the neighbour sampler (0).
    """

    num_neighbors: list[int] | None = None
    holdout_edges: float = Field(0.0, ge=0, lt=1)
    seed: int = 0


def make_node_source(data: Data, labels: dict[str, Tensor], splits: dict[str, Tensor], cfg: NodeSourceOptions) -> NodeGraphSource:
    """Apply the edge hold-out and choose a full-graph or neighbour-sampled source."""
    heldout = None
    if cfg.holdout_edges > 0:
        g = torch.Generator().manual_seed(cfg.seed)
        src, dst = data.edge_index
        upper = data.edge_index[:, src < dst]
        perm = torch.randperm(upper.shape[1], generator=g)
        n_hold = int(cfg.holdout_edges * upper.shape[1])
        heldout = upper[:, perm[:n_hold]]
        data = Data(x=data.x, edge_index=to_undirected(upper[:, perm[n_hold:]], num_nodes=data.num_nodes), num_nodes=data.num_nodes)
    if cfg.num_neighbors:
        return NeighborSampledSource(data, cfg.num_neighbors, labels, splits, heldout, seed=cfg.seed)
    return NodeGraphSource(data, labels, splits, heldout)


class PlanetoidConfig(NodeSourceOptions):
    """Planetoid citation graph (Cora, CiteSeer, PubMed), public split.

    Attributes:
        root: directory holding ``<dataset>/raw/ind.<dataset>.*`` (PyG's layout) or the raw directory itself
            (default ``${OMNISSL_DATA}/graph/planetoid``).
        dataset: ``Cora`` (default), ``CiteSeer`` or ``PubMed``.
        normalize_features: divide each row by its sum (True; DGL's citation loaders, which the official
            GraphMAE code uses, do this, as PyG's ``NormalizeFeatures``).
    """

    root: str = "${OMNISSL_DATA}/graph/planetoid"
    dataset: Literal["Cora", "CiteSeer", "PubMed"] = "Cora"
    normalize_features: bool = True


def _expand(path: str) -> Path:
    return Path(os.path.expandvars(path.replace("${OMNISSL_DATA}", str(data_root()))))


PLANETOID_PICKLES = ("x", "tx", "allx", "y", "ty", "ally", "graph")


class _PlanetoidUnpickler(pickle.Unpickler):
    """Reads a Planetoid pickle admitting only the classes the published files contain (see the module docstring)."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse._csr", "csr_matrix"),
        ("collections", "defaultdict"), ("__builtin__", "list"), ("builtins", "list"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a Planetoid file never contains (not loaded: unpickling it could run code)")
        return super().find_class(module, name)


def _check_planetoid_files(raw: Path, prefix: str) -> None:
    """Every raw file present, each pickle readable with the safe unpickler, ``test.index`` integers, one per line."""
    missing = [f"ind.{prefix}.{n}" for n in (*PLANETOID_PICKLES, "test.index") if not (raw / f"ind.{prefix}.{n}").is_file()]
    if missing:
        raise DataError(f"data.root: {raw} lacks the Planetoid raw file{'s' if len(missing) > 1 else ''} {', '.join(missing)}; copy the complete raw folder (8 files ind.{prefix}.*)")
    for name in PLANETOID_PICKLES:
        path = raw / f"ind.{prefix}.{name}"
        try:
            with open(path, "rb") as fh:
                _PlanetoidUnpickler(fh, encoding="latin1").load()
        except Exception as exc:  # a damaged pickle raises EOFError, UnpicklingError, ValueError, TypeError, ...
            what = "is truncated" if isinstance(exc, EOFError) else f"is not a Planetoid pickle: {type(exc).__name__}: {str(exc)[:200]}"
            raise DataError(f"{path} {what}; copy it again from the original dataset") from None
    if problem := _text_table_problem(raw / f"ind.{prefix}.test.index", integer=True, sep=None):
        raise DataError(problem + "; ind.*.test.index holds one node index per line")


def _text_table_problem(path: Path, integer: bool, sep: str | None, columns: int | None = None, skip: int = 0) -> str | None:
    """The first bad field of a numeric text table as ``'<file> line L, column C: ...'``, or ``None``.

    PyG's text reader reports only Python's conversion error, without the file or the line.
    """
    convert = int if integer else float
    kind = "an integer" if integer else "a number"
    try:
        lines = path.read_text().split("\n")
    except UnicodeDecodeError:
        return f"{path}: not a text file"
    if lines and lines[-1] == "":
        lines = lines[:-1]  # PyG drops the text after the last newline
    width = columns
    for number, line in enumerate(lines, start=1):
        if number <= skip:  # a header row
            continue
        fields = line.split(sep)
        if width is not None and len(fields) != width:
            return f"{path} line {number}: {len(fields)} value{'s' if len(fields) != 1 else ''}, expected {width}"
        width = len(fields)
        for column, field in enumerate(fields, start=1):
            try:
                convert(field)
            except ValueError:
                return f"{path} line {number}, column {column}: {short_repr(field.strip(), 40)} is not {kind}"
    if not lines:
        return f"{path}: the file is empty"
    return None


def load_planetoid(cfg: PlanetoidConfig, ctx: BuildContext | None = None) -> NodeGraphSource:
    from torch_geometric.io import read_planetoid_data

    root = _expand(cfg.root)
    raw = root if (root / f"ind.{cfg.dataset.lower()}.x").exists() else root / cfg.dataset / "raw"
    if not raw.is_dir() or not any(raw.glob(f"ind.{cfg.dataset.lower()}.*")):
        raise DataError(f"data.root: no Planetoid raw files ind.{cfg.dataset.lower()}.* in {raw}; point root at the folder holding {cfg.dataset}/raw")
    _check_planetoid_files(raw, cfg.dataset.lower())
    try:
        data = read_planetoid_data(str(raw), cfg.dataset.lower())
    except Exception as exc:  # each file reads alone (checked above) but they do not fit together
        raise DataError(
            f"data.root: the Planetoid files ind.{cfg.dataset.lower()}.* in {raw} do not fit together ({type(exc).__name__}: {str(exc)[:200]}); "
            "they must all come from one copy of the dataset"
        ) from None
    print(f"graph.planetoid: loaded {cfg.dataset} from {raw}: {data.num_nodes} nodes, {data.edge_index.shape[1]} directed edges, {data.x.shape[1]} features")
    x = data.x.float()
    if cfg.normalize_features:
        x = x / x.sum(dim=1, keepdim=True).clamp(min=1)
    splits = {name: torch.nonzero(getattr(data, f"{name}_mask")).flatten() for name in ("train", "val", "test")}
    return make_node_source(Data(x=x, edge_index=data.edge_index, num_nodes=data.num_nodes), {"class": data.y}, splits, cfg)


class TUConfig(ComponentConfig):
    """A TU benchmark set (Morris et al. 2020) from its raw directory.

    Attributes:
        root: directory holding ``<dataset>/raw/<dataset>_A.txt`` or the raw directory itself
            (default ``${OMNISSL_DATA}/graph/tu``).
        dataset: dataset name, e.g. ``MUTAG`` (default) or ``PROTEINS``.
        use_node_attr: append the continuous node attributes (``_node_attributes.txt``) to the one-hot
            node labels (default True where the dataset has them: on ENZYMES they move GraphCL from 48.5
            to 62.5; GraphMAE's loader leaves them out, so its configs set False).
        scale_node_attr: ``standardize`` (default: each attribute to zero mean and unit variance over all
            nodes, since raw attributes reach the hundreds) or ``none``.
        max_degree: featureless sets (IMDB, COLLAB, REDDIT: no node labels or attributes) get the one-hot
            node degree, clipped at this value (400, GraphMAE's ``MAX_DEGREES``), as GraphMAE's loader does.
        self_loops: give every node exactly one self-loop (False); GraphMAE's graph-level loader does
            (``remove_self_loops`` then ``add_self_loops`` on every graph), so its configs set it.
    """

    root: str = "${OMNISSL_DATA}/graph/tu"
    dataset: str = "MUTAG"
    use_node_attr: bool = True
    scale_node_attr: Literal["standardize", "none"] = "standardize"
    max_degree: int = Field(400, ge=1)
    self_loops: bool = False


TU_INTEGER_FILES = ("A", "graph_indicator", "graph_labels", "node_labels", "edge_labels")
TU_FLOAT_FILES = ("node_attributes", "edge_attributes", "graph_attributes")


def _tu_problem(raw: Path, prefix: str) -> str | None:
    """The first malformed line of a TU raw folder, as ``'<file> line L, column C: ...'``, or ``None``."""
    for name in (*TU_INTEGER_FILES, *TU_FLOAT_FILES):
        path = raw / f"{prefix}_{name}.txt"
        if path.is_file():
            problem = _text_table_problem(path, integer=name in TU_INTEGER_FILES, sep=",", columns=2 if name == "A" else None)
            if problem:
                return problem
    rows = {name: _count_lines(raw / f"{prefix}_{name}.txt") for name in (*TU_INTEGER_FILES, *TU_FLOAT_FILES)}
    for name, per in (("edge_labels", "A"), ("edge_attributes", "A"), ("node_labels", "graph_indicator"), ("node_attributes", "graph_indicator")):
        if rows[name] is not None and rows[name] != rows[per]:
            return f"{raw / f'{prefix}_{name}.txt'}: {rows[name]} lines but {prefix}_{per}.txt has {rows[per]}; one line per {'edge' if per == 'A' else 'node'} is needed (is a file cut short?)"
    return None


def _count_lines(path: Path) -> int | None:
    return len(path.read_text().split("\n")[:-1]) if path.is_file() else None


def load_tu(cfg: TUConfig, ctx: BuildContext | None = None) -> GraphSetSource:
    from torch_geometric.io import read_tu_data

    root = _expand(cfg.root)
    raw = root if (root / f"{cfg.dataset}_A.txt").exists() else root / cfg.dataset / "raw"
    if not (raw / f"{cfg.dataset}_A.txt").exists():
        raise DataError(f"data.root: no TU raw files {cfg.dataset}_A.txt in {raw}; point root at the folder holding {cfg.dataset}/raw")
    missing = [f"{cfg.dataset}_{n}.txt" for n in ("graph_indicator", "graph_labels") if not (raw / f"{cfg.dataset}_{n}.txt").is_file()]
    if missing:
        raise DataError(f"data.root: {raw} lacks {', '.join(missing)}; a TU folder needs _A, _graph_indicator and _graph_labels files")
    try:
        data, slices, sizes = read_tu_data(str(raw), cfg.dataset)
    except Exception as exc:  # PyG's reader reports a bad value without its file or line: find them
        problem = _tu_problem(raw, cfg.dataset)
        if problem is None:
            problem = f"{raw}: the TU files of {cfg.dataset} do not fit together ({type(exc).__name__}: {str(exc)[:200]})"
        raise DataError(problem + "; TU files hold comma-separated integers (attributes: numbers), one row per line") from None
    # featureless sets (no node labels or attributes) have no "x" slices; PyG keeps their node counts instead
    node_slice = slices["x"] if "x" in slices else torch.tensor([0, *torch.tensor(data._num_nodes).cumsum(0).tolist()])
    num_graphs, num_nodes = len(node_slice) - 1, int(node_slice[-1])
    if data.y is None or data.y.shape[0] != num_graphs:
        got = 0 if data.y is None else data.y.shape[0]
        raise DataError(f"{raw / f'{cfg.dataset}_graph_labels.txt'}: {got} labels for {num_graphs} graphs (from {cfg.dataset}_graph_indicator.txt); one label per graph is needed")
    if data.edge_index.numel() and (int(data.edge_index.min()) < 0 or int(data.edge_index.max()) >= num_nodes):
        raise DataError(f"{raw / f'{cfg.dataset}_A.txt'}: names nodes outside 1..{num_nodes} ({cfg.dataset}_graph_indicator.txt has {num_nodes} lines)")
    # PyG stores each graph's edges with graph-local node ids: offset them to count degrees over all nodes
    edge_graph = torch.repeat_interleave(torch.arange(num_graphs), slices["edge_index"].diff())
    targets = data.edge_index[1] + node_slice[edge_graph]
    x, described = tu_node_features(data, sizes, targets, num_nodes, cfg)
    graphs = []
    for i in range(len(slices["y"]) - 1):
        n0, n1 = int(node_slice[i]), int(node_slice[i + 1])
        e0, e1 = int(slices["edge_index"][i]), int(slices["edge_index"][i + 1])
        edge_index = data.edge_index[:, e0:e1]
        if cfg.self_loops:
            edge_index = add_self_loops(remove_self_loops(edge_index)[0], num_nodes=n1 - n0)[0]
        graphs.append(Data(x=x[n0:n1].float(), edge_index=edge_index, num_nodes=n1 - n0))
    y = data.y.long()
    if y.min() < 0:  # some TU sets label classes -1/1
        y = torch.unique(y, return_inverse=True)[1]
    print(f"graph.tu: loaded {cfg.dataset} from {raw}: {len(graphs)} graphs, {num_nodes} nodes, {int(y.max()) + 1} classes; "
          f"{x.shape[1]} node features: {described}")
    source = GraphSetSource(graphs, labels={"class": y})
    source.feature_note = described  # what the node features are, for describe()
    return source


def tu_node_features(data, sizes: dict, targets: Tensor, num_nodes: int, cfg: TUConfig) -> tuple[Tensor, str]:
    """Node features of a TU set read by PyG (``x`` = [attributes | one-hot node labels]) and what they are.

    ``targets``: the global node id at the head of every edge (for the in-degree of featureless sets).
    """
    num_attr, num_labels = sizes["num_node_attributes"], sizes["num_node_labels"]
    if data.x is None or (num_labels == 0 and num_attr and not cfg.use_node_attr):
        degree = torch.bincount(targets, minlength=num_nodes).clamp(max=cfg.max_degree)
        width = int(degree.max()) + 1 if degree.numel() else 1
        return F.one_hot(degree, width).float(), f"one-hot node degree (0..{width - 1}, clipped at {cfg.max_degree}; the set has no node labels)"
    parts, what = [], []
    if num_labels:
        parts.append(data.x[:, num_attr:].float())
        what.append(f"{num_labels} one-hot node labels")
    if num_attr and cfg.use_node_attr:
        attributes = data.x[:, :num_attr].float()
        if cfg.scale_node_attr == "standardize":
            attributes = (attributes - attributes.mean(0)) / attributes.std(0).clamp_min(1e-6)
        parts.append(attributes)
        what.append(f"{num_attr} continuous attributes ({'standardized' if cfg.scale_node_attr == 'standardize' else 'unscaled'})")
    elif num_attr:
        what.append(f"{num_attr} continuous attributes left out (use_node_attr: false)")
    return torch.cat(parts, dim=1), ", ".join(what)


class EdgeListConfig(NodeSourceOptions):
    """One graph from files: an edge list, node features and (optional) node labels.

    Attributes:
        edges: ``.csv`` (default ``edges.csv``; two integer columns ``src,dst``; a header row is skipped) or ``.npy`` ``(E, 2)``.
        features: ``.npy`` ``(N, F)`` or ``.csv`` (one row per node); ``None`` uses a constant feature.
        labels: ``.npy`` ``(N,)`` or ``.csv`` (one integer per line); ``None`` for no labels.
        num_nodes: number of nodes; ``None`` takes it from the features (or the largest node id + 1).
        directed: keep edges directed (False: every edge is added in both directions).
        split: train/val/test shares for a random node split when labels are given ([0.6, 0.2, 0.2]).
    """

    edges: str = "edges.csv"
    features: str | None = None
    labels: str | None = None
    num_nodes: int | None = Field(None, gt=0)
    directed: bool = False
    split: list[float] = Field(default_factory=lambda: [0.6, 0.2, 0.2])


def _is_numeric_row(line: str) -> bool:
    try:
        [float(v) for v in line.split(",") if v.strip()]
        return True
    except ValueError:
        return False


def _read_array(path: Path, what: str, dtype) -> np.ndarray:
    if not path.exists():
        raise DataError(f"data.{what}: file not found: {path}")
    first = ""
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False).astype(dtype)
        import pandas as pd

        first = path.read_text().split("\n", 1)[0]
        header = None if _is_numeric_row(first) else 0
        return pd.read_csv(path, header=header).to_numpy().astype(dtype)
    except (ValueError, OSError) as exc:
        where = None
        if path.suffix != ".npy" and not isinstance(exc, (OSError, UnicodeDecodeError)):  # name the line and column pandas does not
            where = _text_table_problem(path, integer=dtype == np.int64, sep=",", skip=0 if _is_numeric_row(first) else 1)
        raise DataError(f"data.{what}: {where or f'cannot read {path}: {exc}'}; expected a .npy array or a numeric CSV") from None


def load_edge_list(cfg: EdgeListConfig, ctx: BuildContext | None = None) -> NodeGraphSource:
    edges_path = _expand(cfg.edges)
    edges = _read_array(edges_path, "edges", np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise DataError(f"data.edges: {edges_path} must have two columns (src, dst), got shape {edges.shape}")
    if edges.shape[0] == 0:
        raise DataError(f"data.edges: {edges_path} has no edges; an empty graph cannot be trained on")
    x = None
    if cfg.features is not None:
        x = torch.from_numpy(_read_array(_expand(cfg.features), "features", np.float32))
        if x.dim() == 1:
            x = x[:, None]
    n = cfg.num_nodes or (x.shape[0] if x is not None else int(edges.max()) + 1)
    if (edges < 0).any() or (edges >= n).any():
        row = int(np.argmax(((edges < 0) | (edges >= n)).any(axis=1)))
        raise DataError(
            f"data.edges: {edges_path} row {row + 1} names node {edges[row].tolist()} but the graph has {n} nodes "
            f"(ids 0..{n - 1}, from {'num_nodes' if cfg.num_nodes else 'the features file' if x is not None else 'the edges'}); "
            "fix the edge list or give features/num_nodes for every node"
        )
    if x is None:
        x = torch.ones(n, 1)
    elif x.shape[0] != n:
        raise DataError(f"data.features: {cfg.features} has {x.shape[0]} rows but the graph has {n} nodes (num_nodes); one row per node is needed")
    edge_index = torch.from_numpy(edges).T.contiguous()
    edge_index, _ = remove_self_loops(edge_index)
    edge_index = coalesce(edge_index if cfg.directed else to_undirected(edge_index, num_nodes=n), num_nodes=n)
    labels, splits = {}, {}
    if cfg.labels is not None:
        y = torch.from_numpy(_read_array(_expand(cfg.labels), "labels", np.int64)).reshape(-1)
        if y.shape[0] != n:
            raise DataError(f"data.labels: {cfg.labels} has {y.shape[0]} labels but the graph has {n} nodes; one label per node is needed")
        labels = {"class": y}
        splits = random_split(n, cfg.split, cfg.seed)
    return make_node_source(Data(x=x, edge_index=edge_index, num_nodes=n), labels, splits, cfg)


def random_split(n: int, shares: list[float], seed: int) -> dict[str, Tensor]:
    """A seeded random train/val/test split of ``n`` items by ``shares``."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    a, b = int(shares[0] * n), int((shares[0] + shares[1]) * n)
    return {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}


class SBMConfig(NodeSourceOptions):
    """A generated stochastic block model with community labels; needs no data files.

    Attributes:
        num_nodes: nodes (300). Works up to millions (edges are drawn per node, not per pair).
        num_blocks: communities = classes (3).
        avg_degree: expected degree (8).
        p_in: share of a node's edges inside its community (0.8).
        num_features: feature width (16); features are a noisy community embedding.
        feature_noise: std of the feature noise (1.0).
    """

    num_nodes: int = Field(300, ge=2)
    num_blocks: int = Field(3, ge=1)
    avg_degree: float = Field(8.0, gt=0)
    p_in: float = Field(0.8, ge=0, le=1)
    num_features: int = Field(16, gt=0)
    feature_noise: float = Field(1.0, ge=0)


def generate_sbm(cfg: SBMConfig, ctx: BuildContext | None = None) -> NodeGraphSource:
    g = torch.Generator().manual_seed(cfg.seed)
    n, k = cfg.num_nodes, cfg.num_blocks
    y = torch.randint(k, (n,), generator=g)
    m = int(n * cfg.avg_degree / 2)
    src = torch.randint(n, (m,), generator=g)
    inside = torch.rand(m, generator=g) < cfg.p_in
    # an inside edge picks a random node of the same block: sort nodes by block and index into the block
    order = torch.argsort(y)
    counts = torch.bincount(y, minlength=k)
    starts = torch.cumsum(counts, 0) - counts
    offset = (torch.rand(m, generator=g) * counts[y[src]]).long()
    dst = torch.where(inside, order[starts[y[src]] + offset], torch.randint(n, (m,), generator=g))
    edge_index, _ = remove_self_loops(torch.stack([src, dst]))
    edge_index = coalesce(to_undirected(edge_index, num_nodes=n), num_nodes=n)
    centres = torch.randn(k, cfg.num_features, generator=g)
    x = centres[y] + cfg.feature_noise * torch.randn(n, cfg.num_features, generator=g)
    splits = random_split(n, [0.6, 0.2, 0.2], cfg.seed)
    return make_node_source(Data(x=x, edge_index=edge_index, num_nodes=n), {"class": y}, splits, cfg)


class SyntheticGraphsConfig(ComponentConfig):
    """Generated graph-level set: class 0 are rings, class 1 are two-community SBM graphs; needs no files.

    Attributes: ``num_graphs`` (40), ``min_nodes`` (6), ``max_nodes`` (12), ``num_features`` (4), ``seed`` (0).
    """

    num_graphs: int = Field(40, ge=2)
    min_nodes: int = Field(6, ge=3)
    max_nodes: int = Field(12, ge=3)
    num_features: int = Field(4, gt=0)
    seed: int = 0


def generate_graphs(cfg: SyntheticGraphsConfig, ctx: BuildContext | None = None) -> GraphSetSource:
    g = torch.Generator().manual_seed(cfg.seed)
    graphs, labels = [], []
    for i in range(cfg.num_graphs):
        n = int(torch.randint(cfg.min_nodes, cfg.max_nodes + 1, (1,), generator=g))
        label = i % 2
        if label == 0:
            src = torch.arange(n)
            edge_index = torch.stack([src, (src + 1) % n])
        else:
            pairs = torch.combinations(torch.arange(n))
            same = (pairs[:, 0] < n // 2) == (pairs[:, 1] < n // 2)
            keep = torch.rand(pairs.shape[0], generator=g) < torch.where(same, 0.7, 0.1)
            edge_index = pairs[keep].T
        x = 1.0 + 0.1 * torch.randn(n, cfg.num_features, generator=g)  # near-constant: the class is in the structure
        graphs.append(Data(x=x, edge_index=to_undirected(edge_index, num_nodes=n), num_nodes=n))
        labels.append(label)
    return GraphSetSource(graphs, labels={"class": torch.tensor(labels)})
