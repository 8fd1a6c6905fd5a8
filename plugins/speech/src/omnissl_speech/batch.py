"""The speech batch: padded frame features and (optionally) padded waveforms with padding masks."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class SpeechBatch:
    """A collated batch of utterances, right-padded; masks are ``True`` at padding.

    Attributes:
        features: ``(B, T, F)`` frame features (log-mel or fbank), zero at padding.
        padding_mask: ``(B, T)`` bool, ``True`` where a frame is padding.
        waveform: ``(B, S)`` samples (per-utterance normalised), zero at padding; ``None`` when the source
            was built with ``keep_waveform: false``.
        waveform_lengths: ``(B,)`` valid samples per utterance, or ``None``.
    """

    features: Tensor
    padding_mask: Tensor
    waveform: Tensor | None = None
    waveform_lengths: Tensor | None = None

    @property
    def lengths(self) -> Tensor:
        """``(B,)`` valid frames per utterance."""
        return (~self.padding_mask).sum(dim=1)
