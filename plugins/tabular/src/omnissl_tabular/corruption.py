"""``tabular.marginal_corruption``: replace features by draws from their empirical marginal (SCARF, VIME).

References: Bahri et al., "SCARF: Self-Supervised Contrastive Learning using Random Feature Corruption",
ICLR 2022 (a fixed share of each row's features, chosen at random, is replaced by values drawn from each
feature's empirical marginal); Yoon et al., "VIME: Extending the Success of Self- and Semi-supervised
Learning to Tabular Domain", NeurIPS 2020 (``mask_generator`` + ``pretext_generator``: Bernoulli(p_m)
mask, masked cells replaced by the same column of a randomly chosen row).

The empirical marginal is the current batch's column: a replaced cell takes the value of the same feature
in a uniformly drawn row of the batch. This keeps the generator batched on the device and equals
sampling from the training marginal in expectation (the engine's batches are uniform over train rows).

Views:
    ``inputs``: ``[clean, corrupted]`` with ``keep_clean`` (SCARF's anchor is the clean row), else ``[corrupted]``.
    ``info["mask"]``: ``(B, F)`` float, 1 where a feature was replaced (VIME's mask-estimation target),
    features ordered numerical then categorical like the encoder's tokens.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import BuildContext, ComponentConfig


class MarginalCorruptionConfig(ComponentConfig):
    """Attributes:
    rate: share of features replaced (SCARF's ``corruption_rate`` 0.6; VIME's ``p_m`` 0.3). Default 0.6.
    mode: ``exact`` replaces ``round(rate * F)`` random features per row (SCARF); ``bernoulli`` replaces
        each feature with probability ``rate`` (VIME). Default ``exact``.
    keep_clean: also return the clean row as the first view (SCARF). Default True.
    """

    rate: float = Field(0.6, gt=0, lt=1)
    mode: Literal["exact", "bernoulli"] = "exact"
    keep_clean: bool = True


class MarginalCorruption(ViewGenerator):
    """See the module docstring. Shapes: batch ``{"num": (B, F_num), "cat": (B, F_cat)}`` -> same shapes."""

    def __init__(self, cfg: MarginalCorruptionConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator) -> Views:
        num, cat = batch["num"], batch["cat"]
        b, f_num = num.shape
        f = f_num + cat.shape[1]
        device = num.device
        scores = torch.rand(b, f, generator=generator, device=device)
        if self.cfg.mode == "exact":
            count = max(1, round(self.cfg.rate * f))
            mask = torch.zeros(b, f, device=device).scatter_(1, scores.argsort(dim=1)[:, :count], 1.0)
        else:
            mask = (scores < self.cfg.rate).float()
        donor = torch.randint(b, (b, f), generator=generator, device=device)  # row whose value is copied, per cell
        replaced = mask.bool()
        corrupted = {
            "num": torch.where(replaced[:, :f_num], torch.gather(num, 0, donor[:, :f_num]), num),
            "cat": torch.where(replaced[:, f_num:], torch.gather(cat, 0, donor[:, f_num:]), cat),
        }
        inputs = [batch, corrupted] if self.cfg.keep_clean else [corrupted]
        return Views(inputs=inputs, original=batch, info={"mask": mask})


def build_marginal_corruption(cfg: MarginalCorruptionConfig, ctx: BuildContext) -> MarginalCorruption:
    return MarginalCorruption(cfg)
