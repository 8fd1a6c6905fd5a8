"""``tabular.tjepa_masking``: T-JEPA's context / target feature sampler, batched on the device.

Reference: Thimonier et al., "T-JEPA: Augmentation-Free Self-Supervised Learning for Tabular Data",
ICLR 2025, section 3; code github.com/jose-melo/t-jepa ``src/mask.py`` (``MaskCollator``).

Per batch, the number of context features ``k_c`` and of target features ``k_t`` are drawn as
``min + round((max - min) * U)`` with ``min = round(F * min_share)``, ``max = round(F * max_share)``
(redrawn until ``k_c + k_t <= F``); every row then gets its own random context set of ``k_c`` features and
``num_targets`` target sets of ``k_t`` features each, drawn from the features outside its context (target
sets may overlap each other, never the context). Default shares are the released Adult/Jannis settings.

Difference from the released code: it draws indices over token positions ``0 .. F-1`` where position 0 is
the [REG] token, so [REG] can be a "feature" and the last feature is never masked. Here indices are feature
indices in ``[0, F)``; the encoder offsets them by the number of [REG] tokens, which are always context.

Randomness: everything comes from the step's ``generator``. The two counts fix tensor shapes, so they are
drawn on the host from a CPU generator seeded with ``generator.initial_seed()`` (the engine re-seeds the
step generator every step): no device-to-host read in the step.

Views.info:
    ``context`` ``(B, k_c)`` sorted feature indices; ``targets`` ``(B, num_targets, k_t)`` sorted feature indices.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator
from torch import Tensor

from omnissl.errors import ConfigError
from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import BuildContext, ComponentConfig


class TJEPAMaskingConfig(ComponentConfig):
    """Share ranges of context and target features and the number of target sets.

    Attributes:
        min_context_share / max_context_share: default 0.136 / 0.368 (released ``mask_*_ctx_share``).
        min_target_share / max_target_share: default 0.156 / 0.622 (released ``mask_*_trgt_share``).
        num_targets: target sets per row (default 4, released ``mask_num_preds``).
    """

    min_context_share: float = Field(0.13628349247854785, gt=0, lt=1)
    max_context_share: float = Field(0.36819012681604135, gt=0, lt=1)
    min_target_share: float = Field(0.1556321308543076, gt=0, lt=1)
    max_target_share: float = Field(0.6222278244105446, gt=0, lt=1)
    num_targets: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_context_share > self.max_context_share or self.min_target_share > self.max_target_share:
            raise ValueError("min_*_share must not exceed max_*_share")
        return self


def share_bounds(num_features: int, low: float, high: float) -> tuple[int, int]:
    """``(round(F * low), round(F * high))`` clamped to ``[1, F - 1]`` so context and targets stay non-empty."""
    lo = min(max(1, round(num_features * low)), num_features - 1)
    hi = min(max(lo, round(num_features * high)), num_features - 1)
    return lo, hi


class TJEPAMasking(ViewGenerator):
    """Draws disjoint context / target feature sets (see the module docstring)."""

    def __init__(self, num_features: int, cfg: TJEPAMaskingConfig):
        super().__init__()
        if num_features < 2:
            raise ConfigError([f"views: T-JEPA masking needs at least 2 features, the table has {num_features}"])
        self.num_features, self.cfg = num_features, cfg
        self.context_bounds = share_bounds(num_features, cfg.min_context_share, cfg.max_context_share)
        self.target_bounds = share_bounds(num_features, cfg.min_target_share, cfg.max_target_share)

    def sample_counts(self, generator: torch.Generator) -> tuple[int, int]:
        (c_lo, c_hi), (t_lo, t_hi) = self.context_bounds, self.target_bounds
        host = torch.Generator().manual_seed(generator.initial_seed())
        for _ in range(100):
            u = torch.rand(2, generator=host).tolist()
            k_c, k_t = c_lo + round((c_hi - c_lo) * u[0]), t_lo + round((t_hi - t_lo) * u[1])
            if k_c + k_t <= self.num_features:
                return k_c, k_t
        return k_c, self.num_features - k_c

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator) -> Views:
        device = batch["num"].device
        b, f, m = batch["num"].shape[0], self.num_features, self.cfg.num_targets
        k_c, k_t = self.sample_counts(generator)
        order = torch.rand(b, f, generator=generator, device=device).argsort(dim=1)
        context = order[:, :k_c].sort(dim=1).values
        outside = order[:, k_c:]  # (B, F - k_c): each row's non-context features
        pick = torch.rand(b, m, f - k_c, generator=generator, device=device).argsort(dim=2)[..., :k_t]
        targets = torch.gather(outside.unsqueeze(1).expand(-1, m, -1), 2, pick).sort(dim=2).values
        return Views(inputs=[batch], original=batch, info={"context": context, "targets": targets})


def build_tjepa_masking(cfg: TJEPAMaskingConfig, ctx: BuildContext) -> TJEPAMasking:
    schema = getattr(ctx.data, "schema", None)
    if schema is None:
        raise ConfigError(["views: tabular.tjepa_masking needs a tabular data source in the same task"])
    return TJEPAMasking(schema.num_features, cfg)
