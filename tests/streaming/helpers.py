"""Shared helpers of the streaming tests: a folder of generated WAV files."""

import soundfile as sf

from omnissl_speech.synthetic import synth_corpus

PATTERN = r"(?P<vowel>\d+)_(?P<speaker>\d+)_(?P<index>\d+)"


def write_wavs(folder, n: int, seed: int = 0, rate: int = 8000):
    """``n`` generated utterances of 0.15-0.45 s as 16-bit WAVs named ``{vowel}_{speaker}_{i}.wav``."""
    folder.mkdir(parents=True, exist_ok=True)
    waves, labels = synth_corpus(n, rate, 0.15, 0.45, seed)
    for i, wave in enumerate(waves):
        sf.write(folder / f"{int(labels['vowel'][i])}_{int(labels['speaker'][i])}_{i:03d}.wav", wave.clamp(-1, 1).numpy(), rate, subtype="PCM_16")
    return folder
