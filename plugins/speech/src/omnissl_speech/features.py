"""Frame features from waveforms with torchaudio: log-mel, Kaldi-compatible fbank and MFCC.

:func:`mfcc_deltas` gives HuBERT's first-iteration clustering features (39-d MFCC + delta + delta-delta) for
a padded batch in one call.

Features are computed per utterance on its own samples (never on a padded batch), so no frame can see
padding. Normalisation is per utterance (each mel bin zero mean, unit variance over the utterance's
frames, TERA's CMVN) or global (statistics over every frame of the corpus, applied with
:func:`normalise_global`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torchaudio
from pydantic import Field
from torch import Tensor

from omnissl.specs import ComponentConfig

LOG_FLOOR = 1e-6  # keeps log() finite on digital silence


class FeatureConfig(ComponentConfig):
    """How frames are computed.

    Attributes:
        kind: ``"log_mel"`` (torchaudio ``MelSpectrogram`` then log) or ``"fbank"`` (Kaldi-compatible
            ``torchaudio.compliance.kaldi.fbank``, TERA's input) (default ``"log_mel"``).
        n_mels: mel bins (default 40; 80 in TERA at 16 kHz, 40 suits 8 kHz audio).
        win_ms: analysis window in milliseconds (default 25, the Kaldi standard).
        hop_ms: frame shift in milliseconds (default 10).
        normalise: ``"global"`` (corpus mean/std per bin), ``"utterance"`` (per-utterance CMVN, TERA's
            LibriSpeech setting) or ``"none"`` (default ``"global"``: CMVN subtracts each utterance's mean
            spectrum, which on short clips is most of what identifies a vowel, a digit or a speaker).
    """

    kind: Literal["log_mel", "fbank"] = "log_mel"
    n_mels: int = Field(40, gt=0)
    win_ms: float = Field(25.0, gt=0)
    hop_ms: float = Field(10.0, gt=0)
    normalise: Literal["utterance", "global", "none"] = "global"


class FrameFeatures(torch.nn.Module):
    """``waveform (S,) -> log filter-bank energies (T, n_mels)`` for one utterance at ``sample_rate``.

    No centring: every frame lies inside the signal, ``T = 1 + (S - n) // hop`` with ``n`` the FFT size
    (log-mel: the window is zero-padded to the next power of two) or the window (Kaldi fbank,
    ``snip_edges``); utterances shorter than ``n`` are zero-padded to one frame.
    """

    def __init__(self, cfg: FeatureConfig, sample_rate: int):
        super().__init__()
        self.cfg = cfg
        self.sample_rate = sample_rate
        self.win = int(round(cfg.win_ms * sample_rate / 1000))
        self.hop = int(round(cfg.hop_ms * sample_rate / 1000))
        n_fft = 1 << (self.win - 1).bit_length()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, win_length=self.win, hop_length=self.hop, n_mels=cfg.n_mels, center=False, power=2.0
        )

    def num_frames(self, num_samples: int) -> int:
        span = self.win if self.cfg.kind == "fbank" else self.mel.n_fft
        return 1 + max(0, num_samples - span) // self.hop

    @torch.no_grad()
    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.numel() < self.win:
            waveform = torch.nn.functional.pad(waveform, (0, self.win - waveform.numel()))
        if self.cfg.kind == "fbank":
            return torchaudio.compliance.kaldi.fbank(
                waveform.unsqueeze(0) * 32768.0,  # Kaldi expects 16-bit sample scale
                num_mel_bins=self.cfg.n_mels, frame_length=self.cfg.win_ms, frame_shift=self.cfg.hop_ms,
                sample_frequency=self.sample_rate, dither=0.0, snip_edges=True,
            )
        n_fft = self.mel.n_fft
        if waveform.numel() < n_fft:  # torch.stft needs n_fft samples; the window itself stays ``win`` long
            waveform = torch.nn.functional.pad(waveform, (0, n_fft - waveform.numel()))
        spec = self.mel(waveform)
        return torch.log(spec + LOG_FLOOR).T.contiguous()


def normalise_utterance(frames: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-utterance mean/variance normalisation of each bin: ``(T, F) -> (T, F)``."""
    mean = frames.mean(dim=0, keepdim=True)
    std = frames.std(dim=0, keepdim=True, unbiased=False)
    return (frames - mean) / (std + eps)


def normalise_global(values: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise every frame of a corpus (``(total_frames, F)``, no padding) with the corpus statistics."""
    return (values - values.mean(dim=0)) / (values.std(dim=0, unbiased=False) + eps)


def mfcc_from_log_mel(log_mel: Tensor, n_mfcc: int = 20) -> Tensor:
    """MFCCs as the orthonormal DCT-II of log-mel frames (what ``torchaudio.transforms.MFCC`` computes).

    Shapes:
        ``(..., n_mels) -> (..., n_mfcc)``.
    """
    dct = torchaudio.functional.create_dct(n_mfcc, log_mel.shape[-1], norm="ortho").to(log_mel)
    return log_mel @ dct


def _replicate_past_end(x: Tensor, lengths: Tensor) -> Tensor:
    """Overwrite each utterance's frames past its length with its last valid frame: ``(B, T, F) -> (B, T, F)``."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    index = torch.minimum(t, (lengths[:, None] - 1).clamp_min(0))
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def mfcc_deltas(waveform: Tensor, lengths: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
    """HuBERT's iteration-1 features: 13 Kaldi MFCCs + delta + delta-delta per 10 ms frame (39-d).

    Reference: fairseq ``examples/hubert/simple_kmeans/dump_mfcc_feature.py``:
    ``torchaudio.compliance.kaldi.mfcc(waveform, sample_frequency=sr, use_energy=False)`` (25 ms windows,
    10 ms shift, ``snip_edges``), then ``torchaudio.functional.compute_deltas`` twice, concatenated.

    torchaudio's Kaldi MFCC takes one utterance. Every Kaldi frame depends only on its own samples (DC
    removal, pre-emphasis and windowing are per frame), so the batch is laid end to end, each row padded to
    a whole number of 10 ms hops, and computed in one call; frame ``t`` of row ``b`` is frame
    ``b * S / hop + t`` of that signal, and frames that would cross into the next row are never valid.
    ``compute_deltas`` pads by replicating the last frame, so frames past each utterance's end are replaced
    by its last valid frame before each delta: the valid frames then equal those of the utterance alone.

    Shapes:
        ``waveform (B, S)``, ``lengths (B,)`` valid samples -> ``features (B, T, 39)``,
        ``padding_mask (B, T)`` (``True`` past ``1 + (length - win) // hop`` frames).
    """
    win, hop = int(round(0.025 * sample_rate)), int(round(0.010 * sample_rate))
    batch, samples = waveform.shape
    hops_per_row = max(-(-samples // hop), -(-win // hop))
    rows = torch.nn.functional.pad(waveform.float(), (0, hops_per_row * hop - samples))
    mfcc = torchaudio.compliance.kaldi.mfcc(rows.reshape(1, -1), sample_frequency=sample_rate, use_energy=False)
    frames = 1 + (hops_per_row * hop - win) // hop
    index = torch.arange(batch, device=mfcc.device)[:, None] * hops_per_row + torch.arange(frames, device=mfcc.device)[None, :]
    mfcc = mfcc[index]  # (B, T, 13)
    valid = torch.where(lengths >= win, 1 + (lengths - win).div(hop, rounding_mode="floor"), torch.zeros_like(lengths))
    mfcc = _replicate_past_end(mfcc, valid)
    delta = _replicate_past_end(torchaudio.functional.compute_deltas(mfcc.transpose(1, 2)).transpose(1, 2), valid)
    delta2 = torchaudio.functional.compute_deltas(delta.transpose(1, 2)).transpose(1, 2)
    padding_mask = torch.arange(frames, device=mfcc.device)[None, :] >= valid[:, None]
    features = torch.cat([mfcc, delta, delta2], dim=-1).masked_fill(padding_mask.unsqueeze(-1), 0.0)
    return features, padding_mask
