"""``tabular.scarf``: contrastive learning between a row and its randomly corrupted copy.

Reference: Bahri et al., "SCARF: Self-Supervised Contrastive Learning using Random Feature Corruption",
ICLR 2022. The encoder's pooled output goes through a pretraining head ``g`` (an MLP, the paper's 2 layers
of 256 units) and NT-Xent (:class:`omnissl.losses.ntxent.NTXentLoss`) pulls the clean anchor and its
corrupted view together against the other rows of the batch. Views: ``tabular.marginal_corruption`` with
``keep_clean: true`` and ``mode: exact`` (corruption rate 0.6 as in the paper).

The objective is the core's SimCLR objective (:class:`omnissl.objectives.simclr.SimCLRObjective`) with
SCARF's defaults: temperature 1.0 and a 2-layer MLP head of 256 units without normalisation. Multi-process:
negatives are gathered with gradients across processes (see ``NTXentLoss``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from omnissl.objectives.simclr import SimCLRConfig, SimCLRObjective


class SCARFConfig(SimCLRConfig):
    """SimCLR's fields with SCARF's defaults: ``temperature`` 1.0, ``hidden_dim`` 256, ``proj_dim`` 256,
    ``proj_layers`` 2, ``proj_norm`` ``none``."""

    temperature: float = Field(1.0, gt=0)
    hidden_dim: int = Field(256, gt=0)
    proj_dim: int = Field(256, gt=0)
    proj_norm: Literal["batch", "layer", "none"] = "none"


SCARFObjective = SimCLRObjective
