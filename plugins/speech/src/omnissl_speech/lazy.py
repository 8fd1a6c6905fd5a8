"""Speech corpora larger than memory: frames and waveforms cached on disk once, each batch read on demand.

The folder, manifest and FSDD sources take this path when ``data.in_memory`` is ``false``, or ``auto``
and the corpus's estimated decoded size exceeds ``data.memory_budget_gb`` (see
:mod:`omnissl.streaming`). One streaming pass decodes every file (in ``data.num_workers`` DataLoader
workers), computes the same frames and surface baselines as the in-memory path, and appends them to the
feature cache; only the global normalisation's running sums stay in memory. :class:`LazySpeechSource`
then reads the utterances a batch asks for with one ``pread`` each, normalises them and pads them exactly
like :class:`omnissl_speech.datasets.SpeechSource`, so both paths give the same batches for a seed (up to
the rounding of the corpus mean and standard deviation, accumulated here in float64).

Cache layout (``$OMNISSL_CACHE/speech/<key>/``): ``frames.f32`` (un-normalised frames), ``waves.f32``
(per-utterance normalised waveforms, when ``keep_waveform``), one file per surface baseline, and the
global statistics in ``meta.json``. The key covers every file's path, size and modification time and the
settings that change a feature (sample rate, feature config, crop, waveform kept).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from omnissl import streaming
from omnissl.errors import DataError
from omnissl_speech.batch import SpeechBatch
from omnissl_speech.datasets import SpeechDataConfig, _Decode, kept_labels_and_splits
from omnissl_speech.features import FrameFeatures, mfcc_from_log_mel, normalise_utterance

SURFACES = {"log-mel mean": "surface_mean", "log-mel mean+std": "surface_mean_std", "MFCC mean+std": "surface_mfcc"}
EPS = 1e-5  # normalise_global's and normalise_utterance's epsilon


def estimated_bytes(paths: Sequence[Path], cfg: SpeechDataConfig) -> float:
    """What the in-memory path would hold: about the 16-bit file size in frames, twice it again in float32 waveforms.

    Compressed files (FLAC, MP3, Ogg) decode to more than this; set ``data.in_memory`` explicitly for them.
    """
    size = sum(p.stat().st_size for p in paths if p.is_file())  # a missing file is reported by the decoding, as in memory
    return size * (3.0 if cfg.keep_waveform else 1.0)


def _settings(cfg: SpeechDataConfig) -> dict[str, Any]:
    return {"sample_rate": cfg.sample_rate, "features": cfg.features.model_dump(), "max_seconds": cfg.max_seconds, "keep_waveform": cfg.keep_waveform}


def _write_cache(folder: Path, decoder: _Decode, names: Sequence[str], cfg: SpeechDataConfig, where: str) -> dict[str, Any]:
    """One pass over ``decoder``'s items (called ``names``): frames, waveforms and surface rows appended to
    ``folder``; returns the metadata."""
    extractor = FrameFeatures(cfg.features, cfg.sample_rate)
    frames = streaming.PackedWriter(folder / "frames.f32", "float32", (cfg.features.n_mels,))
    waves = streaming.PackedWriter(folder / "waves.f32", "float32") if cfg.keep_waveform else None
    surfaces = {name: streaming.PackedWriter(folder / f"{stem}.f32", "float32", (dim,)) for (name, stem), dim in zip(SURFACES.items(), (cfg.features.n_mels, 2 * cfg.features.n_mels, 40))}
    total = np.zeros(cfg.features.n_mels, dtype=np.float64)
    total_sq = np.zeros_like(total)
    count = 0
    kept, bad = [], []
    loader = torch.utils.data.DataLoader(decoder, batch_size=None, num_workers=cfg.num_workers, collate_fn=lambda x: x)
    for i, (wave, reason) in enumerate(loader):
        if wave is None:
            bad.append(f"{names[i]} ({reason})")
            continue
        raw = extractor(wave)
        mfcc = mfcc_from_log_mel(raw)
        frames.append(raw.numpy())
        surfaces["log-mel mean"].append(raw.mean(0, keepdim=True).numpy())
        surfaces["log-mel mean+std"].append(torch.cat([raw.mean(0), raw.std(0, unbiased=False)])[None].numpy())
        surfaces["MFCC mean+std"].append(torch.cat([mfcc.mean(0), mfcc.std(0, unbiased=False)])[None].numpy())
        if waves is not None:
            waves.append(((wave - wave.mean()) / (wave.std(unbiased=False) + EPS)).numpy())
        as64 = raw.double()
        total += as64.sum(0).numpy()
        total_sq += (as64 * as64).sum(0).numpy()
        count += raw.shape[0]
        kept.append(i)
    if not kept:
        raise DataError(f"no readable audio in {where}: {len(bad)} file(s) failed, e.g. {bad[:3]}; check the path and the file formats")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    np.save(folder / "kept.npy", np.asarray(kept, dtype=np.int64))
    return {
        "frames": frames.close(), "waves": waves.close() if waves is not None else None,
        "surfaces": {name: w.close() for name, w in surfaces.items()},
        "mean": mean.tolist(), "std": std.tolist(), "skipped": bad, "files": len(names),
    }


class LazySpeechSource:
    """Utterances read from the feature cache on demand; the same interface and batches as ``SpeechSource``.

    Memory holds only per-utterance bookkeeping (offsets, lengths, labels, splits); frames, waveforms and
    surface baselines stay on disk. :meth:`batch` runs in the loader's workers when ``engine.workers > 0``.
    """

    def __init__(self, folder: Path, meta: dict[str, Any], cfg: SpeechDataConfig, labels: dict[str, Tensor], splits: dict[str, Tensor],
                 names: Sequence[str], classes: dict[str, list[str]], decision: str):
        self.folder, self.decision = folder, decision
        self.frame_rows = streaming.PackedRows(folder, meta["frames"])
        self.wave_rows = streaming.PackedRows(folder, meta["waves"]) if meta["waves"] else None
        self._surface_layouts = meta["surfaces"]
        self.normalise = cfg.features.normalise
        self.mean = torch.tensor(meta["mean"], dtype=torch.float32)
        self.std = torch.tensor(meta["std"], dtype=torch.float32)
        self.labels, self.splits, self.classes = labels, splits, classes
        self.sample_rate, self.names = cfg.sample_rate, list(names)
        self.num_utterances = len(self.frame_rows)
        if cfg.pretrain_split is not None and cfg.pretrain_split not in splits:
            raise DataError(f"pretrain_split {cfg.pretrain_split!r} is not a split of this corpus; choose one of {sorted(splits)} or null")
        self.pretrain_index = splits[cfg.pretrain_split] if cfg.pretrain_split else torch.arange(self.num_utterances)
        self._surface: dict[str, Tensor] | None = None

    @property
    def feature_dim(self) -> int:
        return int(self.frame_rows.row_shape[0])

    @property
    def has_waveform(self) -> bool:
        return self.wave_rows is not None

    def __len__(self) -> int:
        return int(self.pretrain_index.numel())

    def batch(self, indices: Tensor) -> SpeechBatch:
        """The batch for pretraining positions ``indices`` (``0 <= i < len(self)``), on the CPU."""
        return self.gather(self.pretrain_index[indices.cpu()])

    def _frames(self, i: int) -> Tensor:
        raw = torch.from_numpy(self.frame_rows.read(i))
        if self.normalise == "global":
            return (raw - self.mean) / (self.std + EPS)
        if self.normalise == "utterance":
            return normalise_utterance(raw)
        return raw

    def gather(self, idx: Tensor) -> SpeechBatch:
        """The right-padded batch of absolute utterance indices ``idx`` ``(B,)``, on the CPU (the engine moves it)."""
        rows = idx.cpu().tolist()
        items = [self._frames(i) for i in rows]
        lengths = torch.tensor([len(x) for x in items], dtype=torch.long)
        features = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
        padding = torch.arange(features.shape[1])[None, :] >= lengths[:, None]
        waveform = wave_lengths = None
        if self.wave_rows is not None:
            waves = [torch.from_numpy(self.wave_rows.read(i)) for i in rows]
            wave_lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
            waveform = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
        return SpeechBatch(features=features, padding_mask=padding, waveform=waveform, waveform_lengths=wave_lengths)

    @property
    def surface(self) -> dict[str, Tensor]:
        """The utterance-level surface baselines ``(N, D)`` by name, read from the cache when a probe first asks."""
        if self._surface is None:
            self._surface = {}
            for name, layout in self._surface_layouts.items():
                rows = np.fromfile(self.folder / layout["file"], dtype=layout["dtype"]).reshape(-1, *layout["row_shape"])
                self._surface[name] = torch.from_numpy(rows)
        return self._surface

    def surface_features(self) -> Tensor:
        return self.surface["log-mel mean"]

    def to(self, device: torch.device | str) -> LazySpeechSource:
        """Labels and splits move (probes use them on the device); batches are read on the CPU and moved per step."""
        self.labels = {k: v.to(device) for k, v in self.labels.items()}
        self.splits = {k: v.to(device) for k, v in self.splits.items()}
        return self

    def describe(self) -> str:
        total_frames = int(self.frame_rows.lengths.sum())
        return (f"{self.num_utterances} utterances streamed from the feature cache {self.folder} "
                f"({total_frames} frames, {self.sample_rate} Hz, waveforms {'kept' if self.has_waveform else 'not kept'}); {self.decision}")

    def __getstate__(self) -> dict[str, Any]:  # loader workers need no probe tables
        return {**self.__dict__, "_surface": None}


def build_lazy(cfg: SpeechDataConfig, paths: list[Path], columns: dict[str, list[Any]], split_of: list[str] | None, where: str,
               seed: int, val: float, test: float, decision: str, decoder: _Decode | None = None, names: list[str] | None = None,
               classes: dict[str, list[str]] | None = None) -> LazySpeechSource:
    """The lazy counterpart of ``datasets._build``: same kept files, labels and splits, features from the cache.

    ``decoder`` and ``names``: items that are not one file each (the rows of a HF datasets folder, named for
    warnings); ``paths`` are then the files the cache key follows. ``classes``: columns already holding class
    indices, with their names."""
    names = [p.name for p in paths] if names is None else names
    decoder = decoder if decoder is not None else _Decode(paths, cfg.sample_rate, cfg.max_seconds)
    folder, meta, built = streaming.open_or_build(
        "speech", streaming.file_fingerprint(paths), _settings(cfg), lambda tmp: _write_cache(tmp, decoder, names, cfg, where), cfg.cache_dir
    )
    # the in-memory path decodes through a DataLoader whose iterator draws one base seed from the global RNG;
    # the same draw here (the cache build itself never moves it) keeps the model a seed initialises equal
    torch.empty((), dtype=torch.int64).random_()
    kept = np.load(folder / "kept.npy").tolist()
    if meta["skipped"]:
        bad = meta["skipped"]
        shown = ", ".join(bad[:10]) + (f", and {len(bad) - 10} more" if len(bad) > 10 else "")
        warnings.warn(f"{where}: skipped {len(bad)} of {meta['files']} audio files: {shown}", stacklevel=3)
    labels, splits, classes = kept_labels_and_splits(kept, columns, split_of, seed, val, test, classes)
    decision = f"{decision}; cache {'built now' if built else 'reused'}"
    return LazySpeechSource(folder, meta, cfg, labels, splits, [names[i] for i in kept], classes, decision)
