"""Fine-tuning evaluation: the whole encoder trained with a linear head, against the same from a random init.

The frozen probe asks what the representation already separates; fine-tuning asks what pretraining is
worth as an initialisation, the protocol most SSL papers report beside it (e.g. MAE, He et al. 2022,
sec. 4; data2vec; GraphMAE's and T-JEPA's downstream tables). Both rows come from the same run, splits and
seeds: ``pretrained`` starts from a copy of the run's encoder, ``random`` from ``run.random_encoder()``
(a fresh encoder of the same config), and each trains for ``epochs`` with AdamW, the encoder at
``encoder_lr`` and the head at ``head_lr``, with the epoch selected on validation accuracy and test
accuracy reported there (mean ± std over ``seeds``). The run's own encoder is never modified.

Sample-level sources (one sample per row: tables, clips, utterances, volumes) are trained in minibatches
of ``batch_size`` drawn from the ``train`` split; a node-level source (one graph, ``len(source) == 1``,
one label per node) is trained full-graph, with the loss on the train nodes, as GraphMAE's and GRACE's
fine-tuning code does. Without ``splits`` a seeded 60/20/20 split is drawn, as the probes do.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnissl.device import move_to_device
from omnissl.evaluation.api import EvalResult, EvalRun
from omnissl.evaluation.probes import _mean_std, _pick_label, format_spread, resolve_splits
from omnissl.specs import BuildContext, ComponentConfig


class FinetuneConfig(ComponentConfig):
    """Fine-tuning settings.

    Attributes:
        label: which ``data.labels`` entry to predict (None: the only one).
        epochs: passes over the train split (10); the best epoch on val is reported.
        encoder_lr: AdamW learning rate of the encoder (1e-4). head_lr: of the linear head (1e-3).
        weight_decay: AdamW weight decay (0.01). batch_size: minibatch of samples (256; node-level
            sources train full-graph). seeds: repetitions for mean ± std (2).
    """

    label: str | None = None
    epochs: int = Field(10, ge=1)
    encoder_lr: float = Field(1e-4, ge=0)
    head_lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(256, ge=1)
    seeds: int = Field(2, ge=1)


def finetune(encoder: nn.Module, data, labels: Tensor, splits: dict[str, Tensor], cfg: FinetuneConfig, seed: int, device: torch.device) -> dict[str, float]:
    """Train ``encoder`` (in place) with a linear head; ``{"val_acc", "test_acc", "epoch"}`` at the best val epoch."""
    torch.manual_seed(seed)
    classes = int(labels.max()) + 1
    head = nn.Linear(encoder.output_dim, classes).to(device)
    optimizer = torch.optim.AdamW(
        [{"params": encoder.parameters(), "lr": cfg.encoder_lr}, {"params": head.parameters(), "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
    )
    node_level = len(data) == 1 and labels.shape[0] > 1
    collate = getattr(data, "gather", data.batch)  # sources whose batch() addresses a pretraining subset expose gather()
    splits = {k: v[labels[v] >= 0] for k, v in splits.items()}  # -1 marks a missing label
    generator = torch.Generator().manual_seed(seed)
    best = {"val_acc": -1.0, "test_acc": 0.0, "epoch": 0}
    for epoch in range(1, cfg.epochs + 1):
        encoder.train()
        if node_level:
            batches = [(torch.zeros(1, dtype=torch.long, device=device), splits["train"])]
        else:
            order = splits["train"][torch.randperm(splits["train"].numel(), generator=generator).to(splits["train"].device)]
            batches = [(order[s : s + cfg.batch_size], None) for s in range(0, order.numel(), cfg.batch_size)]
        for samples, nodes in batches:
            pooled = encoder(move_to_device(data.batch(samples) if node_level else collate(samples), device)).pooled.float()
            target = labels[nodes] if node_level else labels[samples]
            logits = head(pooled[nodes] if node_level else pooled)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(logits, target).backward()
            optimizer.step()
        with torch.no_grad():
            logits = head(_encode(encoder, data, collate, labels.shape[0], node_level, cfg.batch_size, device))
            accuracy = {k: float((logits[idx].argmax(1) == labels[idx]).float().mean()) for k, idx in splits.items() if k in ("val", "test")}
        if accuracy["val"] > best["val_acc"]:
            best = {"val_acc": accuracy["val"], "test_acc": accuracy["test"], "epoch": epoch}
    return best


@torch.no_grad()
def _encode(encoder: nn.Module, data, collate, num: int, node_level: bool, batch_size: int, device: torch.device) -> Tensor:
    """Pooled rows aligned with the labels: every node of the graph, or every labelled sample in order."""
    encoder.eval()
    if node_level:
        return encoder(move_to_device(data.batch(torch.zeros(1, dtype=torch.long, device=device)), device)).pooled.float()
    rows = torch.arange(num, device=device)
    return torch.cat([encoder(move_to_device(collate(rows[s : s + batch_size]), device)).pooled.float() for s in range(0, num, batch_size)])


def finetune_evaluator(cfg: FinetuneConfig, ctx: BuildContext):
    def evaluate(run: EvalRun) -> EvalResult:
        label = _pick_label(run.data, cfg.label)
        labels = run.data.labels[label].to(run.device)
        if labels.is_floating_point():
            raise ValueError(f"finetune: label {label!r} holds real values; fine-tuning reports classification accuracy, pick a class label")
        metrics, rows = {}, []
        for name, make in (("pretrained", lambda: copy.deepcopy(run.encoder)), ("random", run.random_encoder)):
            results = []
            for s in range(cfg.seeds):
                splits = resolve_splits(run.data, labels.shape[0], run.seed + s, run.device)
                results.append(finetune(make().to(run.device), run.data, labels, splits, cfg, run.seed + s, run.device))
            val_m, val_s = _mean_std([r["val_acc"] for r in results])
            test_m, test_s = _mean_std([r["test_acc"] for r in results])
            metrics.update({f"{name}/val_acc": val_m, f"{name}/test_acc": test_m, f"{name}/test_acc_std": test_s})
            rows.append({"initialisation": f"{name} encoder", "val_acc": format_spread(val_m, val_s, cfg.seeds),
                         "test_acc": format_spread(test_m, test_s, cfg.seeds),
                         "best_epoch": ", ".join(str(r["epoch"]) for r in results)})
        return EvalResult(name="finetune", metrics=metrics, rows=rows)

    return evaluate
