"""``medical.auc_probe``: ROC-AUC and balanced-accuracy probes for imbalanced volume labels, with baselines.

Representations probed in the same run, on the source's official train/val/test splits:

- ``encoder``: the pretrained encoder's pooled vector (frozen), or with ``readout: stages`` every stage's
  pooled output concatenated (the encoder's ``stage_features``; the random encoder is read the same way);
- ``random encoder``: a freshly initialised encoder of the same config (``run.random_encoder()``);
- ``raw voxels``: the volume average-pooled to ``surface_size³`` (``source.surface_features()``);
- ``supervised (scratch)``: the same encoder architecture trained end to end *with the labels* from a random
  initialisation, with MedMNIST v2's recipe (Adam 1e-3, batch 32, rate x0.1 at 50% and 75% of the epochs,
  flips, class-weighted cross-entropy, a normalised linear head; see :func:`train_supervised`), the epoch
  selected on val AUC. This is the supervised reference, as MedMNIST v2's "ResNet + 3D" rows are.

Heads: ``linear`` (logistic regression) and ``mlp`` (one hidden layer of 256, ReLU), both trained full batch
with Adam on standardised features and a class-weighted cross-entropy (weights ``N / (K * n_k)``, so the
minority class counts as much as the majority); the weight decay and the epoch are selected on val ROC-AUC.
Metrics are computed with scikit-learn: ``roc_auc_score`` (binary: on the positive-class probability;
multi-class: macro one-vs-rest, plus the per-class AUC) and ``balanced_accuracy_score`` of the argmax. Every
number is the mean ± std over ``seeds`` probe repetitions (head initialisation and, for the supervised
baseline, the training order); one repetition prints no spread. ``val_auc`` is what ``eval.select`` should
watch; ``converged`` is the share of the probe heads whose training loss had settled by their last epoch
(see :func:`probe_head`), and a row says ``2/3 (1 stopped at the limit)`` when some had not.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from torch import Tensor, nn

from omnissl.evaluation.api import EvalResult, EvalRun
from omnissl.evaluation.probes import convergence_note, format_spread, settled
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_medical.views import crop_flip


def auc_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``{"auc", "balanced_acc"}`` and ``auc_class_<k>`` for multi-class; ``probs (N, K)`` rows sum to 1."""
    classes = probs.shape[1]
    out = {"balanced_acc": float(balanced_accuracy_score(labels, probs.argmax(axis=1)))}
    present = np.unique(labels)
    if classes == 2:
        out["auc"] = float(roc_auc_score(labels, probs[:, 1])) if len(present) == 2 else float("nan")
    else:
        per_class = []
        for k in range(classes):
            value = float(roc_auc_score(labels == k, probs[:, k])) if 0 < (labels == k).sum() < len(labels) else float("nan")
            out[f"auc_class_{k}"] = value
            per_class.append(value)
        out["auc"] = float(np.nanmean(per_class))
    return out


def class_weights(labels: Tensor, classes: int) -> Tensor:
    """``N / (K * n_k)`` per class (scikit-learn's ``class_weight="balanced"``)."""
    counts = torch.bincount(labels, minlength=classes).float().clamp_min(1.0)
    return labels.numel() / (classes * counts)


def probe_head(
    features: Tensor,
    labels: Tensor,
    splits: dict[str, Tensor],
    head: Literal["linear", "mlp"] = "linear",
    weight_decays: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2),
    epochs: int = 200,
    lr: float = 1e-2,
    seed: int = 0,
    eval_every: int = 10,
) -> dict[str, float]:
    """Train a class-weighted head on frozen ``features (N, D)``; test metrics at the best val AUC (over decay and epoch).

    ``converged`` (1.0/0.0) of the weight decay chosen: its training loss moved by at most
    :data:`omnissl.evaluation.probes.SETTLED` (relative) over the last epoch, rather than still falling at the limit.
    """
    features = features.float()
    train, val, test = splits["train"], splits["val"], splits["test"]
    mean, std = features[train].mean(0), features[train].std(0).clamp_min(1e-6)
    x = (features - mean) / std
    y = labels.long()
    classes = max(2, int(y.max()) + 1)
    weight = class_weights(y[train], classes).to(x.device)
    y_val, y_test = y[val].cpu().numpy(), y[test].cpu().numpy()
    best, chosen = {"val_auc": -1.0}, None
    for wd in weight_decays:
        torch.manual_seed(seed)
        if head == "linear":
            model = nn.Linear(x.shape[1], classes)
        else:
            model = nn.Sequential(nn.Linear(x.shape[1], 256), nn.ReLU(), nn.Linear(256, classes))
        model = model.to(x.device)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
        losses = [float("nan")]
        for epoch in range(1, epochs + 1):
            opt.zero_grad()
            loss = F.cross_entropy(model(x[train]), y[train], weight=weight)
            loss.backward()
            opt.step()
            if epoch >= epochs - 1:
                losses.append(loss.item())
            if epoch % eval_every and epoch != epochs:
                continue
            with torch.no_grad():
                probs = model(x).softmax(dim=1).cpu().numpy()
            val_auc = auc_metrics(probs[val.cpu().numpy()], y_val)["auc"]
            if val_auc > best["val_auc"]:
                test_metrics = auc_metrics(probs[test.cpu().numpy()], y_test)
                best = {"val_auc": val_auc, **{f"test_{k}": v for k, v in test_metrics.items()}, "weight_decay": wd, "epoch": epoch}
                chosen = wd
        if best.get("weight_decay") == chosen:
            best["converged"] = float(settled(losses[-2], losses[-1]))
    return best


@torch.no_grad()
def encode_volumes(encoder: nn.Module, source, batch_size: int = 128, readout: Literal["pooled", "stages"] = "pooled") -> Tensor:
    """Pooled vectors (or ``stage_features``) of every volume of ``source`` in absolute index order: ``(N, D)``."""
    if readout == "stages" and not hasattr(encoder, "stage_features"):
        raise ValueError(f"medical.auc_probe: readout 'stages' needs an encoder with stage_features (medical.vit, medical.resnet, medical.swin), got {type(encoder).__name__}")
    was = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    n = getattr(source, "num_volumes", len(source))
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n), device=device)
        batch = source.gather(idx) if hasattr(source, "gather") else source.batch(idx)
        batch = batch.to(device)
        out.append((encoder.stage_features(batch) if readout == "stages" else encoder(batch).pooled).float())
    encoder.train(was)
    return torch.cat(out)


def train_supervised(
    encoder: nn.Module, source, labels: Tensor, splits: dict[str, Tensor], epochs: int, seed: int,
    batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 0.0, flip_p: float = 0.5,
    milestones: tuple[float, float] = (0.5, 0.75),
) -> dict[str, float]:
    """Train ``encoder`` + a linear classifier with the labels; test metrics at the epoch chosen on val.

    The recipe is MedMNIST v2's supervised 3-D baselines (Yang et al., Scientific Data 2023; the official
    ``MedMNIST/experiments`` ``MedMNIST3D/train_and_eval_pytorch.py``): Adam at ``lr`` 1e-3, batch 32, the
    rate divided by 10 at 50% and 75% of the epochs (``MultiStepLR``; the paper trains 100 epochs), the model
    chosen on val AUC. Three differences, each for a reason:

    - the head is ``BatchNorm1d(affine=False)`` then ``Linear``, MAE's linear-probe head (He et al. 2022,
      appendix A.2): a ViT's mean-pooled tokens vary by ~1e-3 across volumes at initialisation, so a bare
      linear head trained on them predicts one constant, which is what this baseline did before (balanced
      accuracy exactly 0.5 in every run);
    - cross-entropy is class-weighted (``N / (K n_k)``), so the argmax (and the balanced accuracy) is not
      the majority class on an 11%-positive set; AUC does not depend on it;
    - the epoch is chosen on ``(val AUC, val balanced accuracy)`` in that order: on easy data the val AUC
      reaches 1.0 while the model still predicts one class, and the first such epoch must not win the tie.
      (The official script keeps ``best_model = model``, a reference to the final model; here the test
      metrics are taken at the chosen epoch.)
    """
    device = next(encoder.parameters()).device
    y = labels.long().to(device)
    classes = max(2, int(y.max()) + 1)
    head = nn.Sequential(nn.BatchNorm1d(encoder.output_dim, affine=False), nn.Linear(encoder.output_dim, classes)).to(device)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = -(-splits["train"].numel() // batch_size)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [max(1, round(m * epochs)) * steps_per_epoch for m in milestones], gamma=0.1)
    weight = class_weights(y[splits["train"]], classes)
    gen = torch.Generator().manual_seed(seed)
    aug = torch.Generator(device=device).manual_seed(seed)
    train = splits["train"].to(device)
    best: dict[str, float] = {"val_auc": -1.0, "val_balanced_acc": -1.0}
    y_val, y_test = y[splits["val"]].cpu().numpy(), y[splits["test"]].cpu().numpy()

    @torch.no_grad()
    def probabilities(idx: Tensor) -> np.ndarray:
        encoder.eval()
        head.eval()
        out = [head(encoder(source.gather(idx[i : i + 256])).pooled.float()).softmax(1).cpu() for i in range(0, idx.numel(), 256)]
        encoder.train()
        head.train()
        return torch.cat(out).numpy()

    encoder.train()
    head.train()
    for epoch in range(1, epochs + 1):
        order = train[torch.randperm(train.numel(), generator=gen).to(device)]
        for start in range(0, order.numel(), batch_size):
            idx = order[start : start + batch_size]
            if idx.numel() < 2:  # BatchNorm needs two samples
                continue
            x = crop_flip(source.gather(idx), aug, 1.0, flip_p) if flip_p > 0 else source.gather(idx)
            loss = F.cross_entropy(head(encoder(x).pooled.float()), y[idx], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        val = auc_metrics(probabilities(splits["val"].to(device)), y_val)
        if (val["auc"], val["balanced_acc"]) > (best["val_auc"], best["val_balanced_acc"]):
            test_metrics = auc_metrics(probabilities(splits["test"].to(device)), y_test)
            best = {"val_auc": val["auc"], "val_balanced_acc": val["balanced_acc"], **{f"test_{k}": v for k, v in test_metrics.items()}, "epoch": epoch}
    encoder.eval()
    return best


class AUCProbeConfig(ComponentConfig):
    """AUC probe settings.

    Attributes:
        label: which ``data.labels`` entry (default ``None``: the only one).
        heads: ``linear`` and/or ``mlp`` (default both).
        seeds: probe repetitions for mean ± std (default 3).
        weight_decays: grid chosen on val AUC (default 0, 1e-4, 1e-3, 1e-2). epochs, lr: full-batch Adam
            steps and rate for the heads (defaults 200, 1e-2).
        baselines: also probe the random encoder and the raw voxels (default ``True``).
        supervised_epochs: epochs of the supervised-from-scratch baseline (default 10; 0 skips it; MedMNIST
            v2 trains 100, which needs a GPU).
        supervised_seeds: its repetitions (default 1; it is the expensive one).
        supervised_lr, supervised_batch_size: its Adam rate and batch (defaults 1e-3 and 32, MedMNIST v2's).
        batch_size: volumes per encoding batch (default 128).
        readout: what the frozen heads read: ``pooled`` (default, the encoder's pooled vector) or ``stages``
            (every stage's / block's pooled output concatenated, ``stage_features``).
    """

    label: str | None = None
    heads: list[Literal["linear", "mlp"]] = ["linear", "mlp"]
    seeds: int = Field(3, ge=1)
    weight_decays: list[float] = Field(default_factory=lambda: [0.0, 1e-4, 1e-3, 1e-2])
    epochs: int = Field(200, ge=1)
    lr: float = Field(1e-2, gt=0)
    baselines: bool = True
    supervised_epochs: int = Field(10, ge=0)
    supervised_seeds: int = Field(1, ge=1)
    supervised_lr: float = Field(1e-3, gt=0)
    supervised_batch_size: int = Field(32, ge=2)
    batch_size: int = Field(128, ge=1)
    readout: Literal["pooled", "stages"] = "pooled"


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(np.nanmean(arr)), float(np.nanstd(arr, ddof=1)) if len(arr) > 1 else 0.0


class AUCProbe:
    """Callable evaluator: ``probe(run) -> EvalResult`` named ``auc_probe`` (``auc_probe_stages`` with ``readout: stages``,
    so one run can list both).

    Metrics: ``{representation}/{head}/{test_auc,test_auc_std,test_balanced_acc,test_balanced_acc_std,val_auc}``
    (and ``test_auc_class_<k>`` for multi-class labels); representation names use ``_`` for spaces.
    Rows: one per representation and head, AUC and balanced accuracy as ``mean ± std``.
    """

    def __init__(self, cfg: AUCProbeConfig):
        self.cfg = cfg

    def _label(self, data) -> str:
        labels = getattr(data, "labels", None) or {}
        if not labels:
            raise ValueError("medical.auc_probe: the data source has no labels (give medical.nifti a labels_csv)")
        if self.cfg.label is None:
            if len(labels) == 1:
                return next(iter(labels))
            raise ValueError(f"medical.auc_probe: set label to one of {sorted(labels)}")
        if self.cfg.label not in labels:
            raise ValueError(f"medical.auc_probe: label {self.cfg.label!r} is not one of {sorted(labels)}")
        return self.cfg.label

    def __call__(self, run: EvalRun) -> EvalResult:
        cfg = self.cfg
        data = run.data
        label = self._label(data)
        y = data.labels[label].to(run.device)
        splits = {k: data.splits[k].to(run.device) for k in ("train", "val", "test")}
        reps = {"encoder": encode_volumes(run.encoder, data, cfg.batch_size, cfg.readout)}
        if cfg.baselines:
            reps["random encoder"] = encode_volumes(run.random_encoder().to(run.device), data, cfg.batch_size, cfg.readout)
            reps["raw voxels"] = data.surface_features().to(run.device).float()
        metrics: dict[str, float] = {}
        rows: list[dict[str, object]] = []

        def record(rep: str, head: str, results: list[dict[str, float]], dim: int) -> None:
            key = f"{rep.replace(' ', '_')}/{head}"
            auc_m, auc_s = _mean_std([r["test_auc"] for r in results])
            bacc_m, bacc_s = _mean_std([r["test_balanced_acc"] for r in results])
            metrics.update({f"{key}/test_auc": auc_m, f"{key}/test_auc_std": auc_s, f"{key}/test_balanced_acc": bacc_m,
                            f"{key}/test_balanced_acc_std": bacc_s, f"{key}/val_auc": _mean_std([r["val_auc"] for r in results])[0]})
            for k in sorted(k for k in results[0] if k.startswith("test_auc_class_")):
                metrics[f"{key}/{k}"] = _mean_std([r[k] for r in results])[0]
            row = {"representation": rep, "head": head, "dim": dim, "test AUC": format_spread(auc_m, auc_s, len(results)),
                   "test balanced acc": format_spread(bacc_m, bacc_s, len(results)), "seeds": len(results)}
            if all("converged" in r for r in results):  # the frozen-feature heads; the supervised baseline selects its epoch
                metrics[f"{key}/converged"] = float(np.mean([r["converged"] for r in results]))
                row["converged"] = convergence_note([r["converged"] for r in results])
            rows.append(row)

        for rep, feats in reps.items():
            for head in cfg.heads:
                results = [probe_head(feats, y, splits, head, tuple(cfg.weight_decays), cfg.epochs, cfg.lr, seed=run.seed + s) for s in range(cfg.seeds)]
                record(rep, head, results, int(feats.shape[1]))
        if cfg.supervised_epochs > 0:
            results = []
            for s in range(cfg.supervised_seeds):
                torch.manual_seed(run.seed + 7919 * (s + 1))
                encoder = run.random_encoder().to(run.device)
                results.append(train_supervised(encoder, data, y, splits, cfg.supervised_epochs, run.seed + s,
                                                batch_size=cfg.supervised_batch_size, lr=cfg.supervised_lr))
            record("supervised (scratch)", "end-to-end", results, int(run.encoder.output_dim))
        return EvalResult(name="auc_probe" if cfg.readout == "pooled" else f"auc_probe_{cfg.readout}", metrics=metrics, rows=rows)


def auc_probe(cfg: AUCProbeConfig, ctx: BuildContext) -> AUCProbe:
    return AUCProbe(cfg)
