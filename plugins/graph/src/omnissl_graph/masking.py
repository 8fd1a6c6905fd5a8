"""GraphMAE's node attribute masking, as a view generator.

Reference: Hou et al., KDD 2022, section 3.2; official ``encoding_mask_noise`` in
github.com/THUDM/GraphMAE ``graphmae/models/edcoder.py``: a random ``mask_rate`` share of the nodes is
masked; of those, a ``replace_rate`` share gets the features of random nodes (drawn from all nodes) and the
``1 - replace_rate`` share is zeroed and later receives the learned [MASK] token, which the objective owns
(``enc_mask_token``). The integer rounding follows the official code exactly (``int(rate * count)`` for
each share, so with rounding a masked node may keep its own features).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import Field

from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import ComponentConfig


class AttributeMaskingConfig(ComponentConfig):
    """``mask_rate`` (0.5, GraphMAE Cora), ``replace_rate`` (0.05, Cora), ``drop_edge_rate`` (0.0)."""

    mask_rate: float = Field(0.5, gt=0, lt=1)
    replace_rate: float = Field(0.05, ge=0, lt=1)
    drop_edge_rate: float = Field(0.0, ge=0, lt=1)


class AttributeMasking(ViewGenerator):
    """One masked view of the whole (batched) graph.

    ``Views.inputs[0]`` is a copy of the batch whose ``x`` has the token nodes zeroed and the noise nodes
    replaced; ``Views.original`` is the batch. ``Views.info``:

    - ``mask_nodes``: ``(M,)`` every masked node (the loss is computed on these);
    - ``token_nodes``: ``(T,)`` the masked nodes that receive the [MASK] token;
    - ``noise_nodes``: ``(R,)`` the masked nodes whose features were replaced.
    """

    def __init__(self, cfg: AttributeMaskingConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Any, generator: torch.Generator) -> Views:
        x = batch.x
        n, device = x.shape[0], x.device
        num_mask = int(self.cfg.mask_rate * n)
        perm = torch.randperm(n, generator=generator, device=device)
        mask_nodes = perm[:num_mask]
        out_x = x.clone()
        if self.cfg.replace_rate > 0:
            num_noise = int(self.cfg.replace_rate * num_mask)
            num_token = int((1 - self.cfg.replace_rate) * num_mask)
            perm_mask = torch.randperm(num_mask, generator=generator, device=device)
            token_nodes = mask_nodes[perm_mask[:num_token]]
            noise_nodes = mask_nodes[perm_mask[num_mask - num_noise :]]
            sources = torch.randperm(n, generator=generator, device=device)[:num_noise]
            out_x[token_nodes] = 0.0
            out_x[noise_nodes] = x[sources]
        else:
            token_nodes, noise_nodes = mask_nodes, mask_nodes[:0]
            out_x[mask_nodes] = 0.0
        view = copy.copy(batch)  # shallow: shares edge_index and the other tensors
        view.x = out_x
        if self.cfg.drop_edge_rate > 0:
            keep = torch.rand(batch.edge_index.shape[1], generator=generator, device=device) >= self.cfg.drop_edge_rate
            view.edge_index = batch.edge_index[:, keep]
        return Views(inputs=[view], original=batch, info={"mask_nodes": mask_nodes, "token_nodes": token_nodes, "noise_nodes": noise_nodes})


__all__ = ["AttributeMasking", "AttributeMaskingConfig"]
