"""data2vec 2.0: predict an EMA teacher's contextualised representations of masked tokens, for any token encoder.

Reference: Baevski, Babu, Hsu and Auli, "Efficient Self-supervised Learning with Contextualized Target
Representations for Vision, Speech and Language", ICML 2023 (data2vec 2.0); reference code
github.com/facebookresearch/fairseq ``examples/data2vec/models/data2vec2.py``. What is kept from it:

- the teacher is an EMA of the student encoder and encodes the **unmasked** input once per sample;
- targets (``make_targets``): the teacher's top-``K`` block outputs, each instance-normalised over the tokens
  of its sample (``F.instance_norm`` on ``(B, D, N)``; ``instance_norm_target_layer``), averaged, then layer
  normalised (``layer_norm_targets``, the image recipe) — IN -> average -> LN. Block outputs are the FFN
  outputs before the residual add (``ffn_targets``); ``target: block`` takes the residual stream instead;
- the student encodes only the visible tokens (``keep=``) of ``num_masks`` masks per sample (``clone_batch``:
  16 for images, 8 for speech in the paper) while the teacher ran once; targets are repeated per mask;
- a light decoder (``Decoder1d``: residual blocks of grouped 1-D convolution, LayerNorm and GELU over the
  token order, then a linear projection to the teacher's width) fills masked positions and predicts them;
- the loss is the squared error summed over the ``D`` features of each masked token and scaled by
  ``1 / sqrt(D)`` (``loss_scale: null``), averaged over the masked tokens;
- the teacher's momentum rises linearly from ``ema_decay`` to ``ema_end_decay`` (0.999 -> 0.99999 in the paper).

Departures, and why: masks are uniform random per sample (the paper uses inverse block masks for images and
spans for speech; one mask family for every modality keeps it modality-agnostic), drawn by
:class:`StepSeededDraws` so they are identical on every process and after a resume. Masked positions hold a
learned mask token (the paper fills them with N(0, 0.01) noise, a draw per step for no stated gain). The
teacher is the whole encoder (stem included); the paper's ``ema_encoder_only`` shares the student's stem.
Block outputs are read with forward hooks on the teacher's :class:`TransformerTrunk` blocks, so no encoder
has to return its layers. Tokens an encoder prepends (tabular's [REG] tokens: ``num_reg_tokens`` or
``num_prefix_tokens`` on the encoder) are dropped from targets and predictions.

Several masks per sample repeat the batch along its first axis when it is a tensor, a dict or a dataclass of
tensors that all start with the batch size; other batches (a PyG graph) encode once per mask.

Use it with ``views: {name: core.identity}`` (the masks are drawn here, after the teacher has seen the input).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from pydantic import Field
from torch import Tensor, nn

from omnissl.interfaces import Encoded, Encoder, Objective, ObjectiveOutput, Progress, ViewGenerator, Views
from omnissl.nn.ema import EMATeacher, momentum_schedule
from omnissl.nn.trunk import TransformerTrunk, gather_tokens
from omnissl.objectives._views import StepSeededDraws, remember_student
from omnissl.specs import BuildContext, ComponentConfig


class Data2VecConfig(ComponentConfig):
    """data2vec 2.0 settings.

    Attributes:
        mask_ratio: fraction of each sample's tokens masked (0.8; paper 0.8 images, 0.5 speech, 0.48 text).
        num_masks: masks per sample, the student's ``clone_batch`` (4; paper 16 images, 8 speech).
        top_k: teacher blocks averaged into the target (None: every block; paper 10 of 12 images, 8 of 12 speech).
        target: ``ffn`` (the FFN output before the residual, data2vec 2.0) or ``block`` (the residual stream).
        target_layer_norm: how each block output is normalised before the average: ``instance`` (over the
            tokens of its sample, per channel: fairseq's ``instance_norm_target_layer``, the paper's recipe for
            every modality) or ``layer`` (over the channels of each token: ``layer_norm_target_layer``), for
            samples of a few tokens, such as a node's hop tokens, whose mean over tokens carries what they say.
        layer_norm_targets: layer-normalise the averaged target (True, the image recipe).
        decoder_dim (64; paper 768), decoder_depth (2; paper 5 images, 4 speech), decoder_kernel (3; paper 3
            images, 7 speech), decoder_groups (4; paper 16): the convolutional decoder.
        ema_decay (0.999), ema_end_decay (0.9999; paper 0.99999 over hundreds of thousands of steps): teacher momentum.
    """

    mask_ratio: float = Field(0.8, gt=0, lt=1)
    num_masks: int = Field(4, ge=1)
    top_k: int | None = Field(None, ge=1)
    target_layer_norm: str = Field("instance", pattern="^(instance|layer)$")
    target: str = Field("ffn", pattern="^(ffn|block)$")
    layer_norm_targets: bool = True
    decoder_dim: int = Field(64, gt=0)
    decoder_depth: int = Field(2, ge=1)
    decoder_kernel: int = Field(3, ge=1)
    decoder_groups: int = Field(4, ge=1)
    ema_decay: float = Field(0.999, ge=0, le=1)
    ema_end_decay: float = Field(0.9999, ge=0, le=1)


class Decoder1d(nn.Module):
    """data2vec 2.0's light decoder over the token order: ``in`` linear, ``depth`` residual blocks of
    (grouped Conv1d, LayerNorm, GELU), ``out`` linear.

    Shapes:
        ``x`` ``(B, N, D)`` -> ``(B, N, out_dim)``.
    """

    def __init__(self, dim: int, out_dim: int, decoder_dim: int, depth: int, kernel: int, groups: int):
        super().__init__()
        if decoder_dim % groups:
            raise ValueError(f"core.data2vec: decoder_dim {decoder_dim} must be divisible by decoder_groups {groups}")
        self.embed = nn.Linear(dim, decoder_dim)
        self.convs = nn.ModuleList(nn.Conv1d(decoder_dim, decoder_dim, kernel, padding=kernel // 2, groups=groups) for _ in range(depth))
        self.norms = nn.ModuleList(nn.LayerNorm(decoder_dim, elementwise_affine=False) for _ in range(depth))
        self.project = nn.Linear(decoder_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.embed(x)
        for conv, norm in zip(self.convs, self.norms):
            y = conv(rearrange(x, "b n d -> b d n"))[..., : x.shape[1]]  # an even kernel pads one extra step
            x = x + F.gelu(norm(rearrange(y, "b d n -> b n d")))
        return self.project(x)


def instance_norm(x: Tensor, padding_mask: Tensor | None, eps: float = 1e-5) -> Tensor:
    """``F.instance_norm`` over the tokens of each sample and channel, ignoring padded tokens: ``(B, N, D)``."""
    if padding_mask is None:
        return rearrange(F.instance_norm(rearrange(x.float(), "b n d -> b d n"), eps=eps), "b d n -> b n d")
    valid = (~padding_mask).unsqueeze(-1).float()
    count = valid.sum(dim=1, keepdim=True).clamp_min(1.0)
    mean = (x.float() * valid).sum(dim=1, keepdim=True) / count
    var = (((x.float() - mean) ** 2) * valid).sum(dim=1, keepdim=True) / count
    return (x.float() - mean) / torch.sqrt(var + eps) * valid


def repeat_batch(batch: Any, size: int, times: int) -> Any | None:
    """``batch`` repeated ``times`` along its first axis (mask-major), or None when it is not a tensor, a dict or a
    dataclass whose tensors all start with ``size``."""
    if isinstance(batch, Tensor):
        return batch.repeat(times, *([1] * (batch.dim() - 1))) if batch.dim() and batch.shape[0] == size else None
    if isinstance(batch, dict) or dataclasses.is_dataclass(batch):
        items = batch.items() if isinstance(batch, dict) else ((f.name, getattr(batch, f.name)) for f in dataclasses.fields(batch))
        out = {}
        for key, value in items:
            if isinstance(value, Tensor):
                value = repeat_batch(value, size, times)
                if value is None:
                    return None
            out[key] = value
        return out if isinstance(batch, dict) else dataclasses.replace(batch, **out)
    return None


def prefix_tokens(encoder: nn.Module) -> int:
    """Tokens an encoder puts before its data tokens (tabular's [REG] tokens), which no mask addresses."""
    return int(getattr(encoder, "num_prefix_tokens", getattr(encoder, "num_reg_tokens", 0)))


class Data2VecObjective(Objective):
    """Student on ``num_masks`` visible subsets, decoder, regression onto the teacher's averaged top-K blocks.

    Logs ``data2vec`` (the loss), ``target_std`` (std of the targets over tokens; near 0 means the teacher
    collapsed) and ``pred_std``.
    """

    def __init__(self, encoder: Encoder, cfg: Data2VecConfig, seed: int):
        super().__init__()
        self.cfg = cfg
        self.teacher = EMATeacher(encoder)
        trunks = [m for m in self.teacher.module.modules() if isinstance(m, TransformerTrunk)]
        if not trunks or not len(trunks[0].blocks):
            raise ValueError(
                f"core.data2vec needs a token encoder built on the core TransformerTrunk with at least one block; "
                f"{type(encoder).__name__} has none"
            )
        blocks = trunks[0].blocks
        self.top_k = min(cfg.top_k or len(blocks), len(blocks))
        self._captured: list[Tensor] = []
        for block in blocks[len(blocks) - self.top_k :]:
            # a bound method, not a lambda over ``self``: ``copy.deepcopy`` rebinds a bound method to the copy
            # (a lambda would keep filling the original's list, and a copy's targets would average no layer;
            # the engine's FLOP count runs on such a copy)
            (block.mlp if cfg.target == "ffn" else block).register_forward_hook(self._capture)
        dim = encoder.output_dim
        self.decoder = Decoder1d(dim, trunks[0].dim, cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_kernel, cfg.decoder_groups)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.draws = StepSeededDraws(seed)
        self.momentum = cfg.ema_decay
        remember_student(self, encoder)

    def _capture(self, module: nn.Module, inputs: Any, output: Tensor) -> None:
        """Forward hook on each of the teacher's top-K blocks: keep its output for :meth:`targets`."""
        self._captured.append(output)

    @torch.no_grad()
    def targets(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        """The teacher's targets ``(B, N, D)`` for every data token, and its padding mask ``(B, N)`` or None."""
        self._captured.clear()
        self.teacher.eval()
        out: Encoded = self.teacher(batch)
        layers, self._captured = self._captured, []
        skip = prefix_tokens(self.teacher.module)
        padding = out.padding_mask
        if self.cfg.target_layer_norm == "instance":
            y = sum(instance_norm(layer[:, skip:], padding) for layer in layers) / len(layers)
        else:
            y = sum(F.layer_norm(layer[:, skip:].float(), layer.shape[-1:]) for layer in layers) / len(layers)
        if self.cfg.layer_norm_targets:
            y = F.layer_norm(y, y.shape[-1:])
        return y, padding

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        batch = views.original if views.original is not None else views.inputs[0]
        target, padding = self.targets(batch)
        b, n, d = target.shape
        m = self.cfg.num_masks
        visible = max(1, round(n * (1 - self.cfg.mask_ratio)))
        noise = torch.rand(m * b, n, device=target.device, generator=self.draws.generator(target.device))
        if padding is not None:  # padded tokens sort last: visible tokens are real ones where the sample has enough
            noise = noise + repeat(padding, "b n -> (m b) n", m=m).float()
        order = noise.argsort(dim=1)
        keep = order[:, :visible].sort(dim=1).values  # (m b, K)
        skip = prefix_tokens(encoder)
        repeated = repeat_batch(batch, b, m)
        if repeated is not None:
            encoded = encoder(repeated, keep=keep).tokens[:, skip:]
        else:
            encoded = torch.cat([encoder(batch, keep=k).tokens[:, skip:] for k in keep.chunk(m)])
        full = self.mask_token.to(encoded.dtype).expand(m * b, n, -1)
        full = full.scatter(1, keep.unsqueeze(-1).expand(-1, -1, encoded.shape[-1]), encoded)
        pred = self.decoder(full)
        masked = torch.ones(m * b, n, dtype=torch.bool, device=target.device).scatter(1, keep, False)
        if padding is not None:
            masked = masked & ~repeat(padding, "b n -> (m b) n", m=m)
        err = ((pred.float() - repeat(target, "b n d -> (m b) n d", m=m)) ** 2).sum(-1) / math.sqrt(d)
        weight = masked.float()
        loss = (err * weight).sum() / weight.sum().clamp_min(1.0)
        return ObjectiveOutput(loss, {
            "data2vec": loss.detach(),
            "target_std": target.float().std(dim=1).mean().detach(),
            "pred_std": gather_tokens(pred, order[:, visible:]).float().std(dim=1).mean().detach(),
        })

    def after_step(self, progress: Progress) -> None:
        self.momentum = momentum_schedule(self.cfg.ema_decay, self.cfg.ema_end_decay, progress.fraction, "linear")
        self.teacher.update(self._student, self.momentum)
        self.draws.advance(progress.step)

    @classmethod
    def build(cls, cfg: Data2VecConfig, ctx: BuildContext) -> Data2VecObjective:
        return cls(ctx.encoder, cfg, ctx.seed)


class IdentityViews(ViewGenerator):
    """The batch itself as the one view and the original (for objectives that mask internally: core.data2vec)."""

    def forward(self, batch: Any, generator: torch.Generator) -> Views:
        return Views(inputs=[batch], original=batch)

    @classmethod
    def build(cls, cfg: ComponentConfig, ctx: BuildContext) -> IdentityViews:
        return cls()
