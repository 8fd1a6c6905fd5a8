"""Generic MAE: encode the visible tokens, decode every position with a light decoder, reconstruct the rest.

Reference: He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022, section 3; reference code
github.com/facebookresearch/mae (``models_mae.py``): the encoder sees only the visible tokens; the decoder
embeds them, fills every masked position with one shared learned mask token (``normal_(std=0.02)``), adds
fixed sin-cos positions, runs a narrow transformer and predicts each token's target; the loss is the squared
error per token averaged over its features and then over the masked tokens only, with ``norm_pix_loss``
normalising each target token by its own mean and variance (``eps = 1e-6``). Defaults: 75% masking (set it on
the view generator), decoder 512 wide and 8 deep for ViT-L (the paper's ablation: depth 1-2 is enough for
linear probing when the decoder is narrow; ours default 128 x 2 for small data).

Any token encoder that honours ``keep=`` works. The visible tokens are ``views.info["context_idx"]`` (from
``core.token_masking`` with ``context_ratio: 0.25`` for MAE's random masking, or ``core.block_masking``) or
``views.info["keep"]``; every other token is reconstructed. Targets come from ``views.info["targets"]``
``(B, N, F)`` when the view generator provides them, else from ``encoder.reconstruction_targets(batch)`` (raw
per-token values: pixels of a patch, a spectrogram frame, a table cell). Positions are 1-D sin-cos over the
flat token index (the grid's row-major order); ``views.info["padding_mask"]`` ``(B, N)`` removes padded tokens
from the loss.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses.reconstruction import NormalizedMSELoss
from omnissl.nn import TransformerTrunk, TrunkConfig, sincos_positions
from omnissl.specs import BuildContext, ComponentConfig


class MAEConfig(ComponentConfig):
    """MAE decoder and loss.

    Attributes:
        decoder_dim (128; paper 512), decoder_depth (2; paper 8), decoder_heads (4; paper 16): the light decoder.
        normalize_target: normalise each target token by its mean and variance (MAE's ``norm_pix_loss``; True).
        target_dim: width ``F`` of a target token (None: read from the encoder's ``reconstruction_targets`` on
            two samples of the task's data at build time).
    """

    decoder_dim: int = Field(128, gt=0)
    decoder_depth: int = Field(2, ge=1)
    decoder_heads: int = Field(4, ge=1)
    normalize_target: bool = True
    target_dim: int | None = Field(None, gt=0)


def visible_indices(views: Views, method: str) -> Tensor:
    for key in ("context_idx", "keep"):
        if key in views.info:
            return views.info[key]
    raise ValueError(
        f"{method} needs the visible token indices in views.info['context_idx'] (or ['keep']); use core.token_masking, "
        "core.block_masking or a domain masking generator"
    )


def reconstruction_targets(encoder: Encoder, views: Views, batch: Any, method: str) -> Tensor:
    if "targets" in views.info:
        return views.info["targets"]
    fn = getattr(encoder, "reconstruction_targets", None)
    if fn is None:
        raise ValueError(
            f"{method} needs per-token targets: the encoder {type(encoder).__name__} has no reconstruction_targets(batch) "
            "and the view generator put no 'targets' (B, N, F) in views.info"
        )
    return fn(batch)


class MAEDecoder(nn.Module):
    """Embed visible tokens, put a mask token at every other position, add positions, transformer, predict.

    Shapes:
        ``visible`` ``(B, K, D)``, ``visible_idx`` ``(B, K)``, ``num_tokens`` ``N`` -> ``(B, N, F)``.
    """

    def __init__(self, dim: int, target_dim: int, decoder_dim: int = 128, depth: int = 2, heads: int = 4):
        super().__init__()
        self.embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)  # MAE: torch.nn.init.normal_(self.mask_token, std=.02)
        self.trunk = TransformerTrunk(TrunkConfig(dim=decoder_dim, depth=depth, heads=heads))
        self.predict = nn.Linear(decoder_dim, target_dim)

    def forward(self, visible: Tensor, visible_idx: Tensor, num_tokens: int) -> Tensor:
        x = self.embed(visible)
        full = self.mask_token.to(x.dtype).expand(x.shape[0], num_tokens, -1)
        full = full.scatter(1, visible_idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]), x)
        full = full + sincos_positions(num_tokens, x.shape[-1], device=x.device).to(x.dtype)
        return self.predict(self.trunk(full))


class MAEObjective(Objective):
    """Encoder on the visible tokens, :class:`MAEDecoder` over all positions, MSE on the tokens it did not see.

    Logs ``mae`` (the loss) and ``mask_ratio`` (reconstructed tokens over all tokens).
    """

    def __init__(self, encoder_dim: int, target_dim: int, cfg: MAEConfig):
        super().__init__()
        if cfg.normalize_target and target_dim < 2:
            raise ValueError(
                f"core.mae: normalize_target normalises each target token over its features and needs at least 2, got "
                f"target_dim={target_dim}; set normalize_target: false"
            )
        self.cfg = cfg
        self.decoder = MAEDecoder(encoder_dim, target_dim, cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads)
        self.loss = NormalizedMSELoss(normalize_target=cfg.normalize_target)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        visible_idx = visible_indices(views, "core.mae")
        batch = views.original if views.original is not None else views.inputs[0]
        target = reconstruction_targets(encoder, views, batch, "core.mae")
        if target.dim() != 3 or target.shape[-1] != self.decoder.predict.out_features:
            raise ValueError(
                f"core.mae: targets must be (B, N, {self.decoder.predict.out_features}), got {tuple(target.shape)}; "
                "set target_dim to the width of a target token"
            )
        visible = encoder(views.inputs[0], keep=visible_idx).tokens
        if visible is None or visible.shape[1] != visible_idx.shape[1]:
            raise ValueError(
                "core.mae needs a token encoder that encodes only the kept tokens (Encoded.tokens of shape (B, K, D) "
                f"for keep of shape {tuple(visible_idx.shape)})"
            )
        num_tokens = target.shape[1]
        pred = self.decoder(visible, visible_idx, num_tokens)
        masked = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device).scatter(1, visible_idx, False)
        if "padding_mask" in views.info:
            masked = masked & ~views.info["padding_mask"]
        loss = self.loss(pred, target, masked)
        ratio = masked.float().mean().detach()
        return ObjectiveOutput(loss=loss, logs={"mae": loss.detach(), "mask_ratio": ratio})

    @classmethod
    def build(cls, cfg: MAEConfig, ctx: BuildContext) -> MAEObjective:
        target_dim = cfg.target_dim
        if target_dim is None:
            fn = getattr(ctx.encoder, "reconstruction_targets", None)
            if fn is None or ctx.data is None:
                raise ValueError(
                    "core.mae: set target_dim (the width of a target token); it can only be read from an encoder with "
                    "reconstruction_targets(batch) and the task's data"
                )
            with torch.no_grad():
                target_dim = int(fn(ctx.data.batch(torch.arange(min(2, len(ctx.data))))).shape[-1])
        return cls(ctx.encoder.output_dim, target_dim, cfg)
