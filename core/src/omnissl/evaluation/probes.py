"""Linear and kNN probes in torch on the device, and the probe runner with its two baselines.

Protocol (fixed so numbers compare across runs): features are frozen; train/val/test splits come from
``data.splits`` or, without them, a seeded 60/20/20 split per seed; the probe's settings (weight decay, the
training step) are selected on val and test accuracy is reported at that selection; every number is the
mean ± std over ``seeds`` repetitions. :func:`run_probes` always reports three rows from the same run: the
encoder, the raw ``surface_features()`` of the data and a randomly initialised encoder (``run.random_encoder()``).

References: linear evaluation protocol of SimCLR (Chen et al. 2020, L-BFGS logistic regression with an
L2 grid chosen on a validation split); weighted kNN of Wu et al. 2018 (InstDisc) as used by DINO: cosine
similarity, ``k = 20``, votes ``exp(sim / T)`` with ``T = 0.07``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from omnissl.data import encode_all
from omnissl.evaluation.api import EvalResult, EvalRun
from omnissl.specs import BuildContext, ComponentConfig


# ------------------------------------------------------------------------------------------ splits
def default_splits(num: int, seed: int, device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """A seeded 60/20/20 train/val/test split of ``num`` rows."""
    perm = torch.randperm(num, generator=torch.Generator().manual_seed(seed)).to(device)
    a, b = int(0.6 * num), int(0.8 * num)
    return {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}


def resolve_splits(data, num: int, seed: int, device: torch.device | str) -> dict[str, Tensor]:
    """``data.splits`` when it has train/val/test, else :func:`default_splits` for ``seed``."""
    splits = getattr(data, "splits", None) or {}
    if all(k in splits for k in ("train", "val", "test")):
        return {k: splits[k].to(device) for k in ("train", "val", "test")}
    return default_splits(num, seed, device)


def _check(features: Tensor, labels: Tensor) -> None:
    if features.dim() != 2:
        raise ValueError(f"probes need (N, D) features, got shape {tuple(features.shape)}")
    if labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"probes need one integer class label per row: {features.shape[0]} rows, labels {tuple(labels.shape)}")


def _standardise(features: Tensor, train: Tensor) -> Tensor:
    mean = features[train].mean(dim=0)
    std = features[train].std(dim=0).clamp_min(1e-6)
    return (features - mean) / std


def _accuracy(logits: Tensor, labels: Tensor) -> float:
    return float((logits.argmax(dim=1) == labels).float().mean())


# ------------------------------------------------------------------------------------------ linear
def linear_probe(
    features: Tensor,
    labels: Tensor,
    splits: dict[str, Tensor],
    *,
    weight_decays: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2),
    optimizer: Literal["lbfgs", "adam"] = "lbfgs",
    epochs: int = 50,
    lr: float = 1e-2,
    batch_size: int | None = None,
    standardize: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """Multinomial logistic regression on frozen features; weight decay and epoch selected on val.

    ``lbfgs`` runs full-batch L-BFGS (strong-Wolfe line search) for ``epochs`` rounds of 10 iterations;
    ``adam`` runs ``epochs`` epochs of (mini)batches of ``batch_size`` (None = full batch). After each
    round/epoch the val accuracy is measured and the best state kept (early selection on val).

    Convergence of the head chosen on val (``converged`` 1.0 or 0.0): the full training objective changed
    by at most :data:`SETTLED` (relative) over the last L-BFGS round or Adam epoch; otherwise the head
    stopped at its ``epochs`` limit still descending. (One epoch gives no change to measure: not converged.)

    Returns:
        ``{"val_acc", "test_acc", "weight_decay", "converged"}`` at the best val accuracy.
    """
    _check(features, labels)
    features = features.float()
    if standardize:
        features = _standardise(features, splits["train"])
    labels = labels.long()
    classes = int(labels.max()) + 1
    x_tr, y_tr = features[splits["train"]], labels[splits["train"]]
    x_va, y_va = features[splits["val"]], labels[splits["val"]]
    x_te, y_te = features[splits["test"]], labels[splits["test"]]
    best = {"val_acc": -1.0, "test_acc": 0.0, "weight_decay": 0.0, "converged": 0.0}
    for wd in weight_decays:
        torch.manual_seed(seed)
        layer = torch.nn.Linear(features.shape[1], classes).to(features.device)

        def objective(xb: Tensor, yb: Tensor) -> Tensor:
            return F.cross_entropy(layer(xb), yb) + 0.5 * wd * layer.weight.pow(2).sum()

        if optimizer == "lbfgs":
            opt = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=10, history_size=10, line_search_fn="strong_wolfe")

            def closure() -> Tensor:
                opt.zero_grad()
                loss = objective(x_tr, y_tr)
                loss.backward()
                return loss

            steps = [lambda: opt.step(closure)] * epochs
        elif optimizer == "adam":
            opt = torch.optim.Adam(layer.parameters(), lr=lr)
            gen = torch.Generator().manual_seed(seed)
            size = batch_size or x_tr.shape[0]

            def epoch() -> None:
                order = torch.randperm(x_tr.shape[0], generator=gen).to(x_tr.device)
                for start in range(0, x_tr.shape[0], size):
                    idx = order[start : start + size]
                    opt.zero_grad()
                    objective(x_tr[idx], y_tr[idx]).backward()
                    opt.step()

            steps = [epoch] * epochs
        else:
            raise ValueError(f"unknown linear probe optimizer {optimizer!r}; valid choices: lbfgs, adam")
        losses = [float("nan")]  # the full training objective after the last two rounds/epochs
        for i, step in enumerate(steps):
            step()
            with torch.no_grad():
                if i >= len(steps) - 2:
                    losses.append(float(objective(x_tr, y_tr)))
                val = _accuracy(layer(x_va), y_va)
                if val > best["val_acc"]:
                    best = {"val_acc": val, "test_acc": _accuracy(layer(x_te), y_te), "weight_decay": wd, "converged": None}
        if best["converged"] is None:  # this weight decay's head was chosen: record whether its training settled
            best["converged"] = float(settled(losses[-2], losses[-1]))
    return best


SETTLED = 1e-4
"""Relative change of a probe head's training loss over its last epoch under which the head counts as converged."""


def settled(previous: float, last: float, tolerance: float = SETTLED) -> bool:
    """Whether a training loss stopped moving: ``|last - previous| <= tolerance * max(1, |previous|)``."""
    return abs(last - previous) <= tolerance * max(1.0, abs(previous))


def convergence_note(converged: list[float]) -> str:
    """``"3/3"`` heads converged, or ``"1/3 (2 stopped at the limit)"`` when some stopped at their epoch or iteration limit."""
    done = sum(1 for c in converged if c >= 0.5)
    return f"{done}/{len(converged)}" + ("" if done == len(converged) else f" ({len(converged) - done} stopped at the limit)")


# ------------------------------------------------------------------------------------------ kNN
@torch.no_grad()
def knn_probe(
    features: Tensor,
    labels: Tensor,
    splits: dict[str, Tensor],
    *,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 4096,
) -> dict[str, float]:
    """Weighted kNN on cosine similarity: the ``k`` nearest train rows vote ``exp(sim / T)`` for their class.

    Returns:
        ``{"val_acc", "test_acc"}``.
    """
    _check(features, labels)
    if k < 1 or temperature <= 0:
        raise ValueError(f"kNN probe needs k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    features = F.normalize(features.float(), dim=1)
    labels = labels.long()
    classes = int(labels.max()) + 1
    bank, bank_labels = features[splits["train"]], labels[splits["train"]]
    k = min(k, bank.shape[0])

    def accuracy(idx: Tensor) -> float:
        correct = 0
        for start in range(0, idx.shape[0], chunk):
            q = features[idx[start : start + chunk]]
            sim, nn_idx = (q @ bank.T).topk(k, dim=1)
            votes = torch.zeros(q.shape[0], classes, device=q.device).scatter_add_(1, bank_labels[nn_idx], (sim / temperature).exp())
            correct += int((votes.argmax(dim=1) == labels[idx[start : start + chunk]]).sum())
        return correct / max(1, idx.shape[0])

    return {"val_acc": accuracy(splits["val"]), "test_acc": accuracy(splits["test"])}


# ------------------------------------------------------------------------------------------ runner
def _mean_std(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(values) > 1 else 0.0


def probe_table(
    reps: dict[str, Tensor], labels: dict[str, Tensor], names: list[str], splits: dict[str, Tensor], probes: list[str],
    *, weight_decays: tuple[float, ...], epochs: int, k: int, seed: int,
) -> tuple[dict[str, float], list[dict]]:
    """Every representation x label set x probe (``linear``/``knn``) on the same splits.

    Returns metrics ``{label}/{rep}/{probe}_{val,test}_acc`` (and ``{label}/{rep}/linear_converged``, 1 or 0,
    see :func:`linear_probe`) and one row per representation with the test accuracy of each label and probe
    in percent, marked ``(not converged)`` where the linear head stopped at its epoch limit: the multi-label
    table of the speech and video probes.
    """
    metrics: dict[str, float] = {}
    rows = []
    for rep, feats in reps.items():
        row: dict[str, object] = {"representation": rep, "dim": int(feats.shape[1])}
        for label in names:
            y = labels[label].to(feats.device)
            for probe in probes:
                if probe == "linear":
                    res = linear_probe(feats, y, splits, weight_decays=weight_decays, epochs=epochs, seed=seed)
                    metrics[f"{label}/{rep}/linear_converged"] = res["converged"]
                else:
                    res = knn_probe(feats, y, splits, k=k)
                metrics[f"{label}/{rep}/{probe}_test_acc"] = res["test_acc"]
                metrics[f"{label}/{rep}/{probe}_val_acc"] = res["val_acc"]
                unconverged = "" if res.get("converged", 1.0) else " (not converged)"
                row[f"{label} {probe}"] = f"{100 * res['test_acc']:.1f}{unconverged}"
        rows.append(row)
    return metrics, rows


def format_spread(mean: float, std: float, repeats: int) -> str:
    """``"0.8123 ± 0.0040"`` over several repeats; ``"0.8123"`` for one, which has no spread to show."""
    return f"{mean:.4f} ± {std:.4f}" if repeats > 1 else f"{mean:.4f}"


def _pick_label(data, label: str | None) -> str:
    labels = getattr(data, "labels", None) or {}
    if label is None:
        if len(labels) == 1:
            return next(iter(labels))
        raise ValueError(f"probe: set 'label' to one of the data source's labels: {sorted(labels)}")
    if label not in labels:
        raise ValueError(f"probe: label {label!r} is not in the data source's labels {sorted(labels)}")
    return label


def run_probes(
    run: EvalRun,
    label: str | None = None,
    probe: Literal["linear", "knn"] = "linear",
    seeds: int = 3,
    encode_batch_size: int = 1024,
    **probe_kwargs,
) -> EvalResult:
    """Probe the encoder, the raw surface features and a random encoder on the same splits and seeds.

    Returns an :class:`EvalResult` named ``linear_probe`` or ``knn_probe`` with metrics
    ``{representation}/{val_acc,test_acc,test_acc_std}`` for ``encoder``, ``surface`` and ``random`` and
    three rows ``{"representation", "val_acc", "test_acc", "dim"}`` (accuracies as ``"mean ± std"``, the
    spread left out for one seed). The linear probe adds ``{representation}/converged``, the share of its
    seeds whose head converged (see :func:`linear_probe`), and a ``converged`` column such as ``"2/3 (1 stopped
    at the limit)"``.
    """
    if seeds < 1:
        raise ValueError(f"probe: seeds must be >= 1, got {seeds}")
    label = _pick_label(run.data, label)
    fn = {"linear": linear_probe, "knn": knn_probe}.get(probe)
    if fn is None:
        raise ValueError(f"unknown probe {probe!r}; valid choices: linear, knn")
    random_encoder = run.random_encoder().to(run.device)
    representations = {
        "encoder": encode_all(run.encoder, run.data, batch_size=encode_batch_size, device=run.device),
        "surface": run.data.surface_features().to(run.device).float(),
        "random": encode_all(random_encoder, run.data, batch_size=encode_batch_size, device=run.device),
    }
    labels = run.data.labels[label].to(run.device)
    metrics: dict[str, float] = {}
    rows = []
    for name, feats in representations.items():
        if feats.shape[0] != labels.shape[0]:
            raise ValueError(f"probe: {name} features have {feats.shape[0]} rows but label {label!r} has {labels.shape[0]}")
        results = []
        for s in range(seeds):
            splits = resolve_splits(run.data, feats.shape[0], run.seed + s, run.device)
            kwargs = dict(probe_kwargs, seed=run.seed + s) if probe == "linear" else probe_kwargs
            results.append(fn(feats, labels, splits, **kwargs))
        val_m, val_s = _mean_std([r["val_acc"] for r in results])
        test_m, test_s = _mean_std([r["test_acc"] for r in results])
        metrics.update({f"{name}/val_acc": val_m, f"{name}/test_acc": test_m, f"{name}/test_acc_std": test_s})
        row = {
            "representation": {"encoder": "encoder", "surface": "surface features", "random": "random encoder"}[name],
            "val_acc": format_spread(val_m, val_s, seeds), "test_acc": format_spread(test_m, test_s, seeds), "dim": int(feats.shape[1]),
        }
        if probe == "linear":
            metrics[f"{name}/converged"] = sum(r["converged"] for r in results) / len(results)
            row["converged"] = convergence_note([r["converged"] for r in results])
        rows.append(row)
    return EvalResult(name=f"{probe}_probe", metrics=metrics, rows=rows)


# ------------------------------------------------------------------------------------------ evaluators
class LinearProbeConfig(ComponentConfig):
    """Linear probe settings.

    Attributes:
        label: which ``data.labels`` entry to predict (None: the only one).
        seeds: repetitions for mean ± std (3). optimizer: ``lbfgs`` (full batch) or ``adam`` (lbfgs).
        weight_decays: L2 grid chosen on val ([0, 1e-4, 1e-3, 1e-2]). epochs: L-BFGS rounds of 10
        iterations or Adam epochs (50). lr: Adam learning rate (1e-2). batch_size: Adam minibatch
        (None = full batch). standardize: z-score features with train statistics (True).
    """

    label: str | None = None
    seeds: int = Field(3, ge=1)
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    weight_decays: list[float] = Field(default_factory=lambda: [0.0, 1e-4, 1e-3, 1e-2])
    epochs: int = Field(50, ge=1)
    lr: float = Field(1e-2, gt=0)
    batch_size: int | None = Field(None, ge=1)
    standardize: bool = True


class KNNProbeConfig(ComponentConfig):
    """kNN probe settings: ``label`` (None: the only one), ``seeds`` (3), ``k`` (20), ``temperature`` (0.07)."""

    label: str | None = None
    seeds: int = Field(3, ge=1)
    k: int = Field(20, ge=1)
    temperature: float = Field(0.07, gt=0)


def linear_probe_evaluator(cfg: LinearProbeConfig, ctx: BuildContext):
    def evaluate(run: EvalRun) -> EvalResult:
        return run_probes(
            run, cfg.label, "linear", cfg.seeds, weight_decays=tuple(cfg.weight_decays), optimizer=cfg.optimizer,
            epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, standardize=cfg.standardize,
        )

    return evaluate


def knn_probe_evaluator(cfg: KNNProbeConfig, ctx: BuildContext):
    def evaluate(run: EvalRun) -> EvalResult:
        return run_probes(run, cfg.label, "knn", cfg.seeds, k=cfg.k, temperature=cfg.temperature)

    return evaluate
