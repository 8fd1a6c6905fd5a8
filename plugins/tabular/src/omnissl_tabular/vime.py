"""``tabular.vime``: the VIME self-supervised task — mask estimation and feature reconstruction.

Reference: Yoon et al., "VIME: Extending the Success of Self- and Semi-supervised Learning to Tabular
Domain", NeurIPS 2020, section 4.1, eq. (3); code github.com/jsyoon0823/VIME ``vime_self.py``. From the
encoding of a corrupted row, a mask estimator predicts which features were replaced (binary cross-entropy)
and a feature estimator reconstructs the clean row (squared error for numerical features, cross-entropy
for categorical ones, as the paper prescribes for mixed types); ``loss = l_recon + alpha * l_mask`` with
``alpha = 2.0`` (the released default). Views: ``tabular.marginal_corruption`` with ``mode: bernoulli``,
``rate: 0.3`` and ``keep_clean: false``.

Shapes: pooled ``(B, D)`` -> mask logits ``(B, F)``, numerical ``(B, F_num)``, categorical logits
``(B, sum(cardinalities))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from omnissl.errors import ConfigError
from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.specs import BuildContext, ComponentConfig


class VIMEConfig(ComponentConfig):
    """``alpha`` weight of the mask loss (2.0, released default)."""

    alpha: float = Field(2.0, ge=0)


class VIMEObjective(Objective):
    """Mask estimator + feature estimator heads on the pooled encoding (see the module docstring)."""

    def __init__(self, encoder_dim: int, num_numeric: int, cardinalities: list[int], cfg: VIMEConfig):
        super().__init__()
        self.cfg, self.num_numeric, self.cardinalities = cfg, num_numeric, list(cardinalities)
        self.mask_head = nn.Linear(encoder_dim, num_numeric + len(cardinalities))
        self.numeric_head = nn.Linear(encoder_dim, num_numeric) if num_numeric else None
        self.category_head = nn.Linear(encoder_dim, sum(cardinalities)) if cardinalities else None

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        clean, mask = views.original, views.info["mask"]
        h = encoder(views.inputs[-1]).pooled
        mask_loss = F.binary_cross_entropy_with_logits(self.mask_head(h).float(), mask)
        terms = []
        if self.numeric_head is not None:
            terms.append(F.mse_loss(self.numeric_head(h).float(), clean["num"].float(), reduction="none").mean(dim=0))
        if self.category_head is not None:
            logits = self.category_head(h).float().split(self.cardinalities, dim=1)
            terms.append(torch.stack([F.cross_entropy(lg, clean["cat"][:, j]) for j, lg in enumerate(logits)]))
        recon = torch.cat(terms).mean()  # mean over features so numerical and categorical features weigh alike
        loss = recon + self.cfg.alpha * mask_loss
        return ObjectiveOutput(loss=loss, logs={"reconstruction": recon.detach(), "mask_bce": mask_loss.detach()})

    @classmethod
    def build(cls, cfg: VIMEConfig, ctx: BuildContext) -> VIMEObjective:
        schema = getattr(ctx.data, "schema", None)
        if schema is None:
            raise ConfigError(["objective: tabular.vime needs a tabular data source in the same task"])
        return cls(ctx.encoder.output_dim, len(schema.numeric), schema.cardinalities, cfg)
