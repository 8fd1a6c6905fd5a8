"""Graph evaluators: node classification (GraphMAE protocol), graph classification (10-fold SVM), link AUC.

Each evaluator scores the trained encoder, the raw features (``data.surface_features()``) and a randomly
initialised encoder of the same config (``run.random_encoder()``) in the same run.

Validation metrics for ``eval.select``: ``node_probe`` reports ``{representation}/val_acc`` (the public val
split, at the epoch kept); ``graph_probe`` reports ``{representation}/val_accuracy``, the inner
cross-validation score of the chosen ``C`` on the training folds (no test fold is seen). ``link_auc`` has no
validation split. Heads that stop at their iteration limit are reported: ``{representation}/converged``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnissl.data import encode_all
from omnissl.errors import ConfigError
from omnissl.evaluation.api import EvalResult, EvalRun
from omnissl.evaluation.probes import convergence_note, format_spread, settled
from omnissl.specs import BuildContext, ComponentConfig


def _mean_std(values: list[float]) -> str:
    """Mean ± std over repeats or folds; no spread for a single value."""
    return format_spread(float(np.mean(values)), float(np.std(values)), len(values))


def _representations(run: EvalRun, batch_size: int = 1024) -> dict[str, Callable[[], Tensor]]:
    return {
        "ssl": lambda: encode_all(run.encoder, run.data, batch_size, run.device),
        "raw features": lambda: run.data.surface_features().float().to(run.device),
        "random encoder": lambda: encode_all(run.random_encoder().to(run.device), run.data, batch_size, run.device),
    }


class NodeProbeConfig(ComponentConfig):
    """GraphMAE's linear probe (``evaluation.py``): logistic regression trained with Adam on frozen embeddings.

    Attributes:
        label: which ``data.labels`` entry to predict (``class``).
        lr: Adam learning rate (0.01, GraphMAE ``lr_f`` on Cora).
        weight_decay: Adam L2 (1e-4, GraphMAE ``weight_decay_f`` on Cora).
        epochs: training epochs (300, ``max_epoch_f``); test accuracy is read at the best validation epoch.
        repeats: probe initialisations averaged per representation (1).
        baselines: also score raw features and a random encoder (True).
        normalize: what the probe sees of each embedding (the raw-feature baseline always sees the input as given):
            ``none`` (default): the raw embeddings, as GraphMAE's probe; ``l2``: each node's embedding scaled
            to unit length, as GRACE's evaluation; ``standardize``: each dimension scaled to zero mean and unit
            variance over all nodes (no labels used).
    """

    label: str = "class"
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    epochs: int = Field(300, gt=0)
    repeats: int = Field(1, ge=1)
    baselines: bool = True
    normalize: Literal["none", "l2", "standardize"] = "none"


def standardize(z: Tensor) -> Tensor:
    """Zero mean, unit variance per dimension (constant dimensions stay 0)."""
    return (z - z.mean(0)) / z.std(0).clamp(min=1e-8)


_NORMALIZERS: dict[str, Callable[[Tensor], Tensor]] = {"none": lambda z: z, "l2": lambda z: F.normalize(z, dim=1), "standardize": standardize}


def linear_probe_accuracy(z: Tensor, y: Tensor, splits: dict[str, Tensor], cfg: NodeProbeConfig, seed: int) -> float:
    """Test accuracy of the logistic regression at its best validation epoch (``>=``, as the official code)."""
    return node_probe_scores(z, y, splits, cfg, seed)["test_acc"]


def node_probe_scores(z: Tensor, y: Tensor, splits: dict[str, Tensor], cfg: NodeProbeConfig, seed: int) -> dict[str, float]:
    """``{"test_acc", "val_acc", "converged"}`` of the probe at its best validation epoch.

    ``converged`` (1.0/0.0): the training loss moved by at most :data:`omnissl.evaluation.probes.SETTLED`
    (relative) over the last of the ``epochs``; otherwise the head stopped at its epoch limit still descending.
    """
    torch.manual_seed(seed)
    probe = nn.Linear(z.shape[1], int(y.max()) + 1).to(z.device)
    opt = torch.optim.Adam(probe.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    tr, va, te = splits["train"], splits["val"], splits["test"]
    best_val, best_state, losses = -1.0, None, [float("nan")]
    for _ in range(cfg.epochs):
        loss = F.cross_entropy(probe(z[tr]), y[tr])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        with torch.no_grad():
            pred = probe(z).argmax(1)
            val = (pred[va] == y[va]).float().mean().item()
        if val >= best_val:
            best_val, best_state = val, copy.deepcopy(probe.state_dict())
    probe.load_state_dict(best_state)
    with torch.no_grad():
        test = (probe(z[te]).argmax(1) == y[te]).float().mean().item()
    return {"test_acc": test, "val_acc": best_val, "converged": float(settled(losses[-2], losses[-1]))}


class NodeProbe:
    def __init__(self, cfg: NodeProbeConfig):
        self.cfg = cfg

    def __call__(self, run: EvalRun) -> EvalResult:
        data = run.data
        if self.cfg.label not in data.labels:
            raise ConfigError([f"eval.graph.node_probe.label: {self.cfg.label!r} is not a label of this data; it has {sorted(data.labels)}"])
        if not all(k in data.splits for k in ("train", "val", "test")):
            raise ConfigError(["eval.graph.node_probe: the data source needs train/val/test splits"])
        y = data.labels[self.cfg.label].to(run.device)
        splits = {k: v.to(run.device) for k, v in data.splits.items()}
        metrics, rows = {}, []
        reps = _representations(run)
        if not self.cfg.baselines:
            reps = {"ssl": reps["ssl"]}
        for name, get in reps.items():
            z = get().detach().float()
            if name != "raw features":  # the raw baseline is the input as given
                z = _NORMALIZERS[self.cfg.normalize](z)
            scores = [node_probe_scores(z, y, splits, self.cfg, run.seed + r) for r in range(self.cfg.repeats)]
            accs, converged = [s["test_acc"] for s in scores], [s["converged"] for s in scores]
            key = name.replace(" ", "_")
            metrics[f"{key}/test_acc"] = float(np.mean(accs))
            metrics[f"{key}/val_acc"] = float(np.mean([s["val_acc"] for s in scores]))
            metrics[f"{key}/converged"] = float(np.mean(converged))
            rows.append({"representation": name, "test accuracy": _mean_std(accs), "converged": convergence_note(converged)})
        return EvalResult(name="node_probe", metrics=metrics, rows=rows)


class GraphProbeConfig(ComponentConfig):
    """Graph classification by 10-fold stratified CV of an SVM on pooled embeddings (GraphMAE's protocol).

    As the official ``evaluate_graph_embeddings_using_svm``: ``SVC`` with ``C`` chosen by an inner grid search
    over ``c_grid`` on each training fold; the metric is accuracy (micro-F1) averaged over folds.

    Attributes: ``label`` (``class``), ``folds`` (10), ``c_grid`` ([1e-3, 1e-2, 1e-1, 1, 10]), ``seed`` (0),
    ``baselines`` (True), ``batch_size`` for encoding (256), and two departures from GraphMAE's protocol for
    asking whether another protocol separates methods: ``classifier`` ``svm`` (default, RBF ``SVC``) or
    ``logistic`` (standardised features, ``LogisticRegression``, ``C`` from the same grid, InfoGraph's other
    probe), and ``label_fraction`` (1.0): the share of each training fold, stratified, that the classifier
    sees (the test folds are unchanged). Results are named ``graph_probe`` for the default protocol and
    ``graph_probe_<classifier>_<percent>pct`` otherwise, so several protocols can run in one ``eval`` list.
    """

    label: str = "class"
    folds: int = Field(10, ge=2)
    c_grid: list[float] = Field(default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0, 10.0])
    seed: int = 0
    baselines: bool = True
    batch_size: int = Field(256, gt=0)
    classifier: Literal["svm", "logistic"] = "svm"
    label_fraction: float = Field(1.0, gt=0, le=1)

    @property
    def result_name(self) -> str:
        if self.classifier == "svm" and self.label_fraction == 1.0:
            return "graph_probe"
        return f"graph_probe_{self.classifier}_{round(100 * self.label_fraction)}pct"


def svm_cv_accuracy(z: np.ndarray, y: np.ndarray, cfg: GraphProbeConfig) -> list[float]:
    """Per-fold test accuracy of the probe ``cfg`` describes (the name is kept from the SVM-only protocol)."""
    return cv_scores(z, y, cfg)["test"]


def cv_scores(z: np.ndarray, y: np.ndarray, cfg: GraphProbeConfig) -> dict[str, list[float]]:
    """Per fold: ``test`` accuracy, ``val`` (the inner search's score of the chosen ``C``, training folds only)
    and ``converged`` (1.0 unless a fit stopped at ``max_iter`` with scikit-learn's ``ConvergenceWarning``;
    the RBF ``SVC`` has no iteration limit)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    accs, vals, converged = [], [], []
    for fold, (train, test) in enumerate(StratifiedKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed).split(z, y)):
        if cfg.label_fraction < 1.0:
            train, _ = train_test_split(train, train_size=cfg.label_fraction, stratify=y[train], random_state=cfg.seed + fold)
        if cfg.classifier == "svm":
            model, grid = SVC(random_state=42), {"C": cfg.c_grid}
        else:
            model, grid = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), {"logisticregression__C": cfg.c_grid}
        inner = int(min(5, np.bincount(y[train]).min()))  # the inner search needs every class in every split
        clf = GridSearchCV(model, grid, cv=max(inner, 2))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf.fit(z[train], y[train])
        accs.append(float((clf.predict(z[test]) == y[test]).mean()))
        vals.append(float(clf.best_score_))
        converged.append(0.0 if any(issubclass(w.category, ConvergenceWarning) for w in caught) else 1.0)
    return {"test": accs, "val": vals, "converged": converged}


class GraphProbe:
    def __init__(self, cfg: GraphProbeConfig):
        self.cfg = cfg

    def __call__(self, run: EvalRun) -> EvalResult:
        if self.cfg.label not in run.data.labels:
            raise ConfigError([f"eval.graph.graph_probe.label: {self.cfg.label!r} is not a label of this data; it has {sorted(run.data.labels)}"])
        y = run.data.labels[self.cfg.label].cpu().numpy()
        reps = _representations(run, self.cfg.batch_size)
        if not self.cfg.baselines:
            reps = {"ssl": reps["ssl"]}
        metrics, rows = {}, []
        for name, get in reps.items():
            scores = cv_scores(get().detach().cpu().numpy(), y, self.cfg)
            key = name.replace(" ", "_")
            metrics[f"{key}/accuracy"] = float(np.mean(scores["test"]))
            metrics[f"{key}/val_accuracy"] = float(np.mean(scores["val"]))
            metrics[f"{key}/converged"] = float(np.mean(scores["converged"]))
            rows.append({"representation": name, f"{self.cfg.folds}-fold accuracy": _mean_std(scores["test"]),
                         "converged": convergence_note(scores["converged"])})
        return EvalResult(name=self.cfg.result_name, metrics=metrics, rows=rows)


class LinkAUCConfig(ComponentConfig):
    """Link prediction AUC on held-out edges (needs a node dataset with ``holdout_edges > 0``).

    Scores are cosine similarities of node embeddings; negatives are as many uniformly drawn node pairs.
    Attributes: ``seed`` (0), ``baselines`` (True).
    """

    seed: int = 0
    baselines: bool = True


class LinkAUC:
    def __init__(self, cfg: LinkAUCConfig):
        self.cfg = cfg

    def __call__(self, run: EvalRun) -> EvalResult:
        from sklearn.metrics import roc_auc_score

        pos = getattr(run.data, "heldout_edges", None)
        if pos is None or pos.numel() == 0:
            raise ConfigError(["eval.graph.link_auc: the data source holds out no edges; set data.holdout_edges (for example 0.1)"])
        n = run.data.num_nodes
        g = torch.Generator().manual_seed(self.cfg.seed)
        neg = torch.randint(n, (2, pos.shape[1]), generator=g)
        pairs = torch.cat([pos.cpu(), neg], dim=1)
        target = np.r_[np.ones(pos.shape[1]), np.zeros(neg.shape[1])]
        reps = _representations(run)
        if not self.cfg.baselines:
            reps = {"ssl": reps["ssl"]}
        metrics, rows = {}, []
        for name, get in reps.items():
            z = F.normalize(get().detach().float().cpu(), dim=1)
            score = (z[pairs[0]] * z[pairs[1]]).sum(1).numpy()
            auc = float(roc_auc_score(target, score))
            metrics[f"{name.replace(' ', '_')}/auc"] = auc
            rows.append({"representation": name, "link AUC": f"{auc:.4f}"})
        return EvalResult(name="link_auc", metrics=metrics, rows=rows)


def build_node_probe(cfg: NodeProbeConfig, ctx: BuildContext) -> NodeProbe:
    return NodeProbe(cfg)


def build_graph_probe(cfg: GraphProbeConfig, ctx: BuildContext) -> GraphProbe:
    return GraphProbe(cfg)


def build_link_auc(cfg: LinkAUCConfig, ctx: BuildContext) -> LinkAUC:
    return LinkAUC(cfg)
