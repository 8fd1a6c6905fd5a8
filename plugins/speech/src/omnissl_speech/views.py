"""Speech view generators: TERA's time/frequency/magnitude alteration and wav2vec 2.0 span masking.

Both run batched on the device, draw every random number from the given generator and never touch
padding: only valid frames are altered, masked or scored.
"""

from __future__ import annotations

import dataclasses

import torch
from pydantic import Field
from torch import Tensor

from omnissl.interfaces import ViewGenerator, Views
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_speech.batch import SpeechBatch


def sample_starts(valid_starts: Tensor, count: Tensor, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Draw ``count[b]`` distinct start positions uniformly from ``[0, valid_starts[b]]`` for each row.

    Batched sampling without replacement: uniform scores, positions beyond the valid range pushed last,
    then the lowest ``count`` scores win (a random permutation of the valid positions, truncated).

    Returns:
        ``starts (B, K)`` long and ``chosen (B, K)`` bool (``K = max(count)`` rounded up to at least 1);
        only ``starts[chosen]`` are drawn positions.
    """
    device = valid_starts.device
    batch = valid_starts.shape[0]
    scores = torch.rand(batch, length, generator=generator, device=device)
    pos = torch.arange(length, device=device)
    scores = scores.masked_fill(pos[None, :] > valid_starts[:, None], 2.0)
    k = max(1, min(length, int(count.max()))) if count.numel() else 1
    starts = scores.argsort(dim=1)[:, :k]
    available = (valid_starts + 1).clamp_min(0)
    chosen = torch.arange(k, device=device)[None, :] < torch.minimum(count, available)[:, None]
    return starts, chosen


def spans_to_mask(starts: Tensor, chosen: Tensor, span: Tensor, length: int) -> Tensor:
    """``(B, length)`` bool: the union of ``[start, start + span[b])`` over the chosen starts."""
    batch = starts.shape[0]
    marks = torch.zeros(batch, length + 1, device=starts.device)
    marks.scatter_add_(1, torch.where(chosen, starts, length), chosen.float())
    # frame t is covered when some start s has s <= t < s + span: a windowed count of start marks
    covered = marks[:, :length].cumsum(dim=1)
    shift = torch.arange(length, device=starts.device)[None, :] - span[:, None]
    before = torch.gather(covered, 1, shift.clamp_min(0)) * (shift >= 0)
    return (covered - before) > 0.5


# ---------------------------------------------------------------------------------------------- TERA
class TERAAlterationConfig(ComponentConfig):
    """TERA's alteration policy (Liu et al. 2021; s3prl ``pretrain/mockingjay/task.py``, TERA config).

    Attributes:
        time_proportion: fraction of each utterance's frames chosen as time-altered (default 0.15).
        block_min, block_max: consecutive frames per altered block, drawn per utterance (defaults 7, 7).
        zero_prob, swap_prob: per utterance, chosen blocks are zeroed with probability 0.8, replaced by
            other random blocks of the same utterance with probability 0.1, otherwise left unchanged (the
            "keep" 10%); all chosen frames are reconstruction targets in every case.
        freq_proportion: the frequency band's width is uniform in ``[0, int(F * freq_proportion)]`` bins
            (default 0.2); the band is zeroed on every frame and scored on every valid frame.
        noise_prob, noise_std: Gaussian noise ``N(0, 0.2)`` is added to an utterance with probability 0.15
            (magnitude alteration; noise alone is not a target, as in the reference code).
    """

    time_proportion: float = Field(0.15, ge=0, le=1)
    block_min: int = Field(7, ge=1)
    block_max: int = Field(7, ge=1)
    zero_prob: float = Field(0.8, ge=0, le=1)
    swap_prob: float = Field(0.1, ge=0, le=1)
    freq_proportion: float = Field(0.2, ge=0, le=1)
    noise_prob: float = Field(0.15, ge=0, le=1)
    noise_std: float = Field(0.2, ge=0)


ZERO, SWAP, KEEP = 0, 1, 2


class TERAAlteration(ViewGenerator):
    """Alter a batch of feature frames along time, frequency and magnitude.

    Batched version of the reference per-utterance loop. Per utterance of ``L`` valid frames:
    ``round(L * time_proportion / C)`` blocks of ``C`` frames start at distinct positions in
    ``[0, max(L - C - 1, 0)]`` (blocks may overlap, ``mask_allow_overlap``); one dice roll decides zero /
    swap / keep for all of them. The reference applies the noise dice once per batch; here it is rolled
    per utterance, which keeps the same expected fraction and makes views independent across samples.

    ``info`` keys:
        ``target_mask`` ``(B, T, F)`` bool: positions the L1 loss scores (never padding);
        ``time_mask`` ``(B, T)``, ``freq_mask`` ``(B, F)``, ``policy`` ``(B,)`` (0 zero, 1 swap, 2 keep),
        ``noised`` ``(B,)`` bool.
    """

    def __init__(self, cfg: TERAAlterationConfig):
        super().__init__()
        if cfg.block_max < cfg.block_min:
            raise ValueError(f"views.block_max ({cfg.block_max}) must be >= views.block_min ({cfg.block_min})")
        if cfg.zero_prob + cfg.swap_prob > 1:
            raise ValueError(f"views.zero_prob + views.swap_prob must be <= 1, got {cfg.zero_prob + cfg.swap_prob}")
        self.cfg = cfg

    def forward(self, batch: SpeechBatch, generator: torch.Generator) -> Views:
        cfg = self.cfg
        x, padding = batch.features, batch.padding_mask
        device = x.device
        B, T, F = x.shape
        valid = ~padding
        lengths = valid.sum(dim=1)
        pos = torch.arange(T, device=device)

        # time alteration: which frames, and what happens to them
        block = torch.randint(cfg.block_min, cfg.block_max + 1, (B,), generator=generator, device=device)
        count = torch.round(lengths * cfg.time_proportion / block).long()
        valid_starts = (lengths - block - 1).clamp_min(0)
        starts, chosen = sample_starts(valid_starts, count, T, generator)
        time_mask = spans_to_mask(starts, chosen, block, T) & valid
        dice = torch.rand(B, generator=generator, device=device)
        policy = torch.full((B,), KEEP, device=device, dtype=torch.long)
        policy = torch.where(dice < cfg.zero_prob + cfg.swap_prob, SWAP, policy)
        policy = torch.where(dice < cfg.zero_prob, ZERO, policy)

        # swap: the k-th chosen block takes the frames of the k-th random block of the same utterance
        sources, _ = sample_starts(valid_starts, count, T, generator)
        source_index = pos.expand(B, T).clone()
        for offset in range(cfg.block_max):
            inside = chosen & (offset < block[:, None])
            dest = torch.where(inside, starts + offset, T).clamp_max(T)
            src = (sources + offset).clamp_max(T - 1)
            padded_index = torch.cat([source_index, torch.zeros(B, 1, device=device, dtype=torch.long)], dim=1)
            padded_index.scatter_(1, dest, src)
            source_index = padded_index[:, :T]
        swapped = torch.gather(x, 1, source_index.unsqueeze(-1).expand(B, T, F))
        swapped = swapped.masked_fill(padding.unsqueeze(-1), 0.0)

        altered = x
        altered = torch.where((time_mask & (policy == SWAP)[:, None]).unsqueeze(-1), swapped, altered)
        altered = altered.masked_fill((time_mask & (policy == ZERO)[:, None]).unsqueeze(-1), 0.0)

        # frequency alteration: one band per utterance
        max_width = int(F * cfg.freq_proportion)
        width = torch.randint(0, max_width + 1, (B,), generator=generator, device=device)
        band_start = (torch.rand(B, generator=generator, device=device) * (F - width)).long()
        bins = torch.arange(F, device=device)
        freq_mask = (bins[None, :] >= band_start[:, None]) & (bins[None, :] < (band_start + width)[:, None])
        altered = altered.masked_fill(freq_mask.unsqueeze(1), 0.0)

        # magnitude alteration
        noised = torch.rand(B, generator=generator, device=device) < cfg.noise_prob
        noise = cfg.noise_std * torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
        altered = altered + noise * (noised[:, None, None] & valid.unsqueeze(-1))
        altered = altered.masked_fill(padding.unsqueeze(-1), 0.0)

        target_mask = (time_mask.unsqueeze(-1) | freq_mask.unsqueeze(1)) & valid.unsqueeze(-1)
        view = dataclasses.replace(batch, features=altered)
        return Views(
            inputs=[view], original=batch,
            info={"target_mask": target_mask, "time_mask": time_mask, "freq_mask": freq_mask, "policy": policy, "noised": noised},
        )


# -------------------------------------------------------------------------------------- span masking
class SpanMaskingConfig(ComponentConfig):
    """wav2vec 2.0 span masking over encoder frames (Baevski et al. 2020, section 3.1).

    A proportion ``mask_prob`` of each utterance's valid frames become span starts (sampled without
    replacement from ``[0, L - span)``, count rounded stochastically as in fairseq's
    ``compute_mask_indices``), and the ``span`` frames from each start are masked; spans may overlap.

    Attributes:
        mask_prob: start proportion ``p`` (default 0.065, the paper's value; about 49 % of frames masked
            with span 10 on long utterances).
        span: frames per span ``M`` (default 10, i.e. 200 ms at wav2vec 2.0's 20 ms frames; use about 5
            for 10 ms frames on clips under a second).
        min_masks: at least this many spans per utterance (default 1).
    """

    mask_prob: float = Field(0.065, ge=0, le=1)
    span: int = Field(10, ge=1)
    min_masks: int = Field(1, ge=0)


def span_mask(padding_mask: Tensor, cfg: SpanMaskingConfig, generator: torch.Generator) -> Tensor:
    """``(B, T)`` bool mask of masked frames, ``False`` at padding."""
    B, T = padding_mask.shape
    device = padding_mask.device
    lengths = (~padding_mask).sum(dim=1)
    span = torch.minimum(torch.full_like(lengths, cfg.span), lengths)
    rounding = torch.rand(B, generator=generator, device=device)
    count = torch.floor(cfg.mask_prob * lengths + rounding).long().clamp_min(cfg.min_masks)
    count = torch.where(lengths > 0, count, 0)
    # fairseq draws starts from range(L - span) (exclusive), so a span never ends on the last frame
    starts, chosen = sample_starts((lengths - span - 1).clamp_min(0), count, T, generator)
    return spans_to_mask(starts, chosen, span, T) & ~padding_mask


class SpanMasking(ViewGenerator):
    """Mask spans of the *encoder's* frames; the objective replaces them with its mask embedding.

    The frame grid comes from the task's encoder (``encoder.frame_padding_mask(batch)``: conv frames for
    ``speech.wav2vec2``, feature frames for ``speech.frame_transformer``).

    ``info`` keys: ``mask`` ``(B, T')`` bool, ``padding_mask`` ``(B, T')`` bool (encoder frames).
    """

    def __init__(self, cfg: SpanMaskingConfig, encoder: torch.nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        # a plain attribute, not a submodule: the encoder's parameters belong to the task, not the views
        self._frame_padding = getattr(encoder, "frame_padding_mask", None)

    def forward(self, batch: SpeechBatch, generator: torch.Generator) -> Views:
        padding = self._frame_padding(batch) if self._frame_padding is not None else batch.padding_mask
        return Views(inputs=[batch], original=batch, info={"mask": span_mask(padding, self.cfg, generator), "padding_mask": padding})


def tera_alteration(cfg: TERAAlterationConfig, ctx: BuildContext) -> TERAAlteration:
    return TERAAlteration(cfg)


def span_masking(cfg: SpanMaskingConfig, ctx: BuildContext) -> SpanMasking:
    return SpanMasking(cfg, ctx.encoder)
