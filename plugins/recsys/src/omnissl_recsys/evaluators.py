"""``recsys.ranking``: full-catalogue Recall@K / NDCG@K on the validation and test splits, with baselines.

The evaluator asks the encoder for its full user and item tables (:meth:`RecommenderEncoder.tables`) and
ranks every item for every user in batches on the device (:func:`omnissl_recsys.metrics.evaluate_ranking`).
Baselines in the same run, both on by default: ``popularity`` (items ranked by training interaction count,
the surface feature) and ``random`` (``run.random_encoder()``: the run's encoder config freshly initialised,
e.g. a random two-tower, or a random LightGCN whose untrained embeddings still go through the propagation).
Metric keys: ``{split}/{metric}@{K}`` for the model and
``{baseline}/{split}/{metric}@{K}`` for baselines; ``{split}/users`` and ``{split}/users_without_targets``
count evaluated and excluded users. Model selection on ``val/recall@20`` is done by the runner
(``benchmarks/recsys_quality.py``) over evaluations every ``eval.every`` steps.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from omnissl.evaluation.api import EvalResult, EvalRun
from omnissl.specs import BuildContext, ComponentConfig

from omnissl_recsys.metrics import evaluate_ranking


#: Printed row names of the metric prefixes (``model`` has none; the baselines keep their short prefixes).
ROW_NAMES = {"model": "model", "popularity": "popularity", "random": "random encoder"}


class RankingConfig(ComponentConfig):
    """``ks`` ([10, 20]); ``splits`` (["val", "test"]); ``baselines`` (["popularity", "random"]: the rows
    every result is reported beside; leave one out only to save time in a sweep, never in a reported run);
    ``max_batch_elements`` (2**25 scores per user batch: the memory bound); ``max_users`` (``None``: all
    users; else the first N users, for large benchmarks).
    """

    ks: list[int] = Field(default_factory=lambda: [10, 20])
    splits: list[Literal["val", "test"]] = Field(default_factory=lambda: ["val", "test"])
    baselines: list[Literal["popularity", "random"]] = Field(default_factory=lambda: ["popularity", "random"])
    max_batch_elements: int = Field(1 << 25, gt=0)
    max_users: int | None = Field(None, gt=0)


class RankingEvaluator:
    """Callable ``(EvalRun) -> EvalResult`` computing the ranking metrics of the encoder and the baselines."""

    def __init__(self, cfg: RankingConfig):
        self.cfg = cfg

    def _exclude(self, source, split: str) -> torch.Tensor:
        parts = [source.interactions["train"]] + ([source.interactions["val"]] if split == "test" else [])
        return torch.cat(parts)

    def _metrics(self, score_fn, source) -> dict[str, float]:
        users = torch.arange(min(source.num_users, self.cfg.max_users or source.num_users))
        out = {}
        for split in self.cfg.splits:
            targets = source.interactions.get(split)
            if targets is None or targets.numel() == 0:
                continue
            values = evaluate_ranking(score_fn, source.num_users, source.num_items, targets, self._exclude(source, split),
                                      self.cfg.ks, self.cfg.max_batch_elements, users)
            out.update({f"{split}/{k}": v for k, v in values.items()})
        return out

    @staticmethod
    def _encoder_scores(encoder):
        was_training = encoder.training
        encoder.eval()
        with torch.no_grad():
            users, items = encoder.tables()
        encoder.train(was_training)
        return lambda u: users[u] @ items.T

    def __call__(self, run: EvalRun) -> EvalResult:
        source = run.data
        metrics = self._metrics(self._encoder_scores(run.encoder), source)
        results = {"model": metrics}
        if "popularity" in self.cfg.baselines:
            pop = source.popularity.to(run.device)
            results["popularity"] = self._metrics(lambda u: pop.expand(u.shape[0], -1), source)
        if "random" in self.cfg.baselines:
            results["random"] = self._metrics(self._encoder_scores(run.random_encoder()), source)
        flat = dict(metrics)
        for name, values in results.items():
            if name != "model":
                flat.update({f"{name}/{k}": v for k, v in values.items()})
        rows = []
        for name, values in results.items():
            for split in self.cfg.splits:
                row = {"representation": ROW_NAMES[name], "split": split}
                row.update({m: f"{values.get(f'{split}/{m}', float('nan')):.4f}" for m in (f"{kind}@{k}" for k in self.cfg.ks for kind in ("recall", "ndcg"))})
                rows.append(row)
        return EvalResult(name="recsys.ranking", metrics=flat, rows=rows)


def build_ranking(cfg: RankingConfig, ctx: BuildContext) -> RankingEvaluator:
    return RankingEvaluator(cfg)
