"""Generated speech-like utterances: a glottal-like harmonic source shaped by vowel formants.

Source-filter synthesis (Fant 1960): a harmonic series on a fundamental ``f0`` with a -12 dB/octave
spectral tilt, each harmonic weighted by the magnitude response of three formant resonances of a vowel
(Peterson & Barney 1952 averages), with vibrato, an attack/decay envelope and breath noise. Labels are
the vowel (5 classes) and the speaker (4 voices that differ in ``f0`` and formant scaling, like vocal
tract length). Lengths vary so that batches need padding. Used by the quickstart and the tests; no files.

Two options make the set harder, so that surface features and a random encoder stop saturating: a
per-utterance random scaling of each formant (``formant_jitter``, the spread of real speakers' vowels that
makes Peterson & Barney's vowel areas overlap) and louder breath noise (``noise``). Their defaults (0 and
0.02) draw nothing extra, so the default corpus is unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# (F1, F2, F3) in Hz for /i/, /e/, /a/, /o/, /u/ (adult male averages after Peterson & Barney 1952)
VOWEL_FORMANTS = ((270, 2290, 3010), (530, 1840, 2480), (730, 1090, 2440), (570, 840, 2410), (300, 870, 2240))
FORMANT_BANDWIDTHS = (60.0, 90.0, 120.0)
# (f0 in Hz, formant scale): low and high male voices, female and child-like voices
SPEAKERS = ((105.0, 1.0), (135.0, 1.05), (210.0, 1.15), (260.0, 1.25))


def _resonance(freq: Tensor, centre: float, bandwidth: float) -> Tensor:
    """Magnitude of a second-order resonance (formant) at ``freq``, 1 at its centre."""
    return (centre * bandwidth) / torch.sqrt((freq**2 - centre**2) ** 2 + (freq * bandwidth) ** 2)


def synth_utterance(vowel: int, speaker: int, num_samples: int, sample_rate: int, g: torch.Generator,
                    formant_jitter: float = 0.0, noise: float = 0.02) -> Tensor:
    """One utterance ``(num_samples,)`` in ``[-1, 1]``; ``formant_jitter`` is the std of a per-formant
    multiplicative scaling drawn per utterance, ``noise`` the breath noise's std relative to the peak."""
    f0_base, scale = SPEAKERS[speaker]
    t = torch.arange(num_samples, dtype=torch.float64) / sample_rate
    jitter = 1.0 + 0.03 * (torch.rand((), generator=g, dtype=torch.float64) - 0.5)
    vibrato = 1.0 + 0.02 * torch.sin(2 * math.pi * (4.0 + 2.0 * torch.rand((), generator=g, dtype=torch.float64)) * t)
    f0 = f0_base * jitter * vibrato
    phase = 2 * math.pi * torch.cumsum(f0, dim=0) / sample_rate
    num_harmonics = int((sample_rate / 2) // (f0_base * 1.05))
    h = torch.arange(1, num_harmonics + 1, dtype=torch.float64)
    freqs = h * f0_base * jitter
    gain = h ** -1.0  # -6 dB/octave source, +radiation gives the usual -12 dB/octave at the glottis
    jitter_of = (1.0 + formant_jitter * torch.randn(3, generator=g, dtype=torch.float64)).clamp_min(0.5).tolist() if formant_jitter else [1.0] * 3
    for centre, bw, j in zip(VOWEL_FORMANTS[vowel], FORMANT_BANDWIDTHS, jitter_of):
        gain = gain * (0.15 + _resonance(freqs, centre * scale * j, bw))
    wave = (gain[:, None] * torch.sin(h[:, None] * phase[None, :])).sum(dim=0)
    ramp = max(1, int(0.03 * sample_rate))
    envelope = torch.ones(num_samples, dtype=torch.float64)
    envelope[:ramp] = torch.linspace(0, 1, ramp, dtype=torch.float64)
    envelope[-ramp:] = torch.linspace(1, 0, ramp, dtype=torch.float64)
    wave = wave * envelope + noise * wave.abs().max() * torch.randn(num_samples, generator=g, dtype=torch.float64)
    return (0.9 * wave / wave.abs().max().clamp_min(1e-8)).float()


def synth_corpus(num_utterances: int, sample_rate: int, min_seconds: float, max_seconds: float, seed: int,
                 formant_jitter: float = 0.0, noise: float = 0.02) -> tuple[list[Tensor], dict[str, Tensor]]:
    """``num_utterances`` waveforms of random length and their ``vowel`` and ``speaker`` labels."""
    g = torch.Generator().manual_seed(seed)
    vowels = torch.randint(len(VOWEL_FORMANTS), (num_utterances,), generator=g)
    speakers = torch.randint(len(SPEAKERS), (num_utterances,), generator=g)
    seconds = min_seconds + (max_seconds - min_seconds) * torch.rand(num_utterances, generator=g)
    waves = [
        synth_utterance(int(v), int(s), int(sec * sample_rate), sample_rate, g, formant_jitter, noise)
        for v, s, sec in zip(vowels, speakers, seconds)
    ]
    return waves, {"vowel": vowels, "speaker": speakers}
