"""A patch transformer: non-overlapping patches -> linear stem -> the core's transformer trunk."""

from __future__ import annotations

from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

from omnissl import ComponentConfig, Encoded, Encoder
from omnissl.nn import TransformerTrunk, TrunkConfig, masked_mean
from omnissl.nn.positions import sincos_positions


class PatchConfig(ComponentConfig):
    """``patch`` length (16) and the ``trunk`` (a TrunkConfig, or ``"@shared.<name>"`` in cross-domain runs)."""

    patch: int = Field(16, gt=0)
    trunk: TrunkConfig | str = TrunkConfig(dim=64, depth=2, heads=4)


class PatchEncoder(Encoder):
    """``(B, T)`` series -> ``(B, T // patch, D)`` tokens, pooled by their mean. ``keep`` selects visible patches."""

    def __init__(self, cfg: PatchConfig, trunk: nn.Module):
        super().__init__()
        self.patch, self.trunk, self.output_dim = cfg.patch, trunk, trunk.dim
        self.stem = nn.Linear(cfg.patch, trunk.dim)

    def forward(self, batch: Tensor, keep: Tensor | None = None) -> Encoded:
        patches = rearrange(batch[:, : batch.shape[1] // self.patch * self.patch], "b (n p) -> b n p", p=self.patch)
        tokens = self.stem(patches) + sincos_positions(patches.shape[1], self.output_dim, batch.device)
        out = self.trunk(tokens, keep=keep)
        return Encoded(pooled=masked_mean(out, None), tokens=out)


def build_encoder(cfg: PatchConfig, ctx) -> PatchEncoder:
    trunk = ctx.resolve_shared(cfg.trunk)
    return PatchEncoder(cfg, trunk if isinstance(trunk, nn.Module) else TransformerTrunk(trunk))
