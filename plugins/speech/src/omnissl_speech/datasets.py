"""Speech data sources: a folder of audio files, a manifest, the Free Spoken Digit Dataset, generated audio.

Files are decoded once at construction with soundfile (in ``torch.utils.data.DataLoader`` workers when
``num_workers > 0``), mixed to mono, resampled with torchaudio and turned into frame features. Small
corpora then live on the device *packed* (all frames of all utterances concatenated, plus offsets and
lengths), and :meth:`SpeechSource.batch` gathers a right-padded batch with its padding mask on the device.

Unreadable and empty files are skipped and counted with one warning naming them; a corpus with no
readable audio is a :class:`omnissl.errors.DataError`.

``speech.hf_dataset`` reads a local HF ``datasets`` folder (``save_to_disk``) with an audio column. Its
``Audio`` column is cast to ``decode=False`` and the stored bytes (or the file each row names) are decoded
here with soundfile, like every other file: ``datasets``' own decoding needs torchcodec, which omnissl does
not depend on.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import soundfile as sf
import torch
import torchaudio
from pydantic import Field
from torch import Tensor

from omnissl.errors import DataError
from omnissl.specs import BuildContext, ComponentConfig
from omnissl.streaming import StreamingFields, choose_in_memory
from omnissl_speech.batch import SpeechBatch
from omnissl_speech.features import FeatureConfig, FrameFeatures, mfcc_from_log_mel, normalise_global, normalise_utterance
from omnissl_speech.synthetic import synth_corpus

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
FSDD_PATTERN = r"(?P<digit>\d+)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)"


def _pack(items: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Concatenate variable-length items along dim 0: ``(values, offsets, lengths)``."""
    lengths = torch.tensor([len(x) for x in items], dtype=torch.long)
    offsets = torch.cumsum(lengths, 0) - lengths
    return torch.cat(list(items), dim=0), offsets, lengths


def _gather_padded(values: Tensor, offsets: Tensor, lengths: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    """Right-padded ``(B, L_max, ...)`` items and the ``(B, L_max)`` padding mask, gathered on the device."""
    lens = lengths[idx]
    # one host read per batch: trimming to the batch's longest item instead of the corpus's
    longest = int(lens.max())
    pos = torch.arange(longest, device=values.device)
    padding = pos[None, :] >= lens[:, None]
    flat = (offsets[idx][:, None] + pos[None, :]).clamp_max(values.shape[0] - 1)
    out = values[flat]
    pad_shape = padding.shape + (1,) * (out.dim() - 2)
    return out.masked_fill(padding.view(pad_shape), 0.0), padding


class SpeechSource:
    """Utterances resident in memory (on the device after :meth:`to`), packed without padding.

    Args:
        features: one ``(T_i, F)`` tensor per utterance (already normalised).
        waveforms: one ``(S_i,)`` tensor per utterance, or ``None`` to keep features only.
        labels: per-utterance integer targets by name (probes only; never reach objectives).
        splits: ``train``/``val``/``test`` index tensors over all utterances.
        surface: utterance-level surface-feature baselines by name (``(N, D)`` each).
        names: file names (or generated ids) per utterance.
        pretrain_split: which split the engine samples for pretraining (``None``: every utterance).
        classes: for string labels, the class names in index order.

    ``len(source)`` and :meth:`batch` address the pretraining utterances; :meth:`gather` takes absolute
    utterance indices (what ``labels`` and ``splits`` refer to) and is what evaluators use.
    """

    def __init__(
        self,
        features: Sequence[Tensor],
        waveforms: Sequence[Tensor] | None,
        labels: dict[str, Tensor],
        splits: dict[str, Tensor],
        surface: dict[str, Tensor],
        sample_rate: int,
        names: Sequence[str],
        pretrain_split: str | None = None,
        classes: dict[str, list[str]] | None = None,
    ):
        self.frames, self.frame_offsets, self.frame_lengths = _pack(features)
        self.waves = self.wave_offsets = self.wave_lengths = None
        if waveforms is not None:
            self.waves, self.wave_offsets, self.wave_lengths = _pack(waveforms)
        self.labels, self.splits, self.surface = labels, splits, surface
        self.sample_rate, self.names, self.classes = sample_rate, list(names), classes or {}
        self.num_utterances = len(features)
        if pretrain_split is not None and pretrain_split not in splits:
            raise DataError(f"pretrain_split {pretrain_split!r} is not a split of this corpus; choose one of {sorted(splits)} or null")
        self.pretrain_index = splits[pretrain_split] if pretrain_split else torch.arange(self.num_utterances)

    def describe(self) -> str:
        """One line for the start of a run: utterances per split, sample rate, durations, label sets and classes."""
        order = sorted(self.splits, key=lambda k: ("train", "val", "test").index(k) if k in ("train", "val", "test") else 3)
        splits = " / ".join(f"{k} {int(self.splits[k].shape[0]):,}" for k in order)
        if self.wave_lengths is not None:
            seconds = self.wave_lengths.double() / self.sample_rate
            total = float(seconds.sum())
            length = (f"{total / 3600:.2f} h" if total >= 3600 else f"{total / 60:.1f} min") + (
                      f", {float(seconds.min()):.2f}-{float(seconds.max()):.2f} s "
                      f"per utterance (mean {float(seconds.mean()):.2f} s)")
        else:
            length = f"{int(self.frame_lengths.min())}-{int(self.frame_lengths.max())} feature frames per utterance (waveforms not kept)"
        labels = "; ".join(
            f"label {name!r}: {len(self.classes[name]) if name in self.classes else int(y.max()) + 1} classes" for name, y in self.labels.items()
        ) or "no labels"
        return (f"{self.num_utterances:,} utterances ({splits}), pretraining on {len(self):,}; {self.sample_rate} Hz; {length}; "
                f"{self.feature_dim}-dim frame features; {labels}")

    @property
    def feature_dim(self) -> int:
        return int(self.frames.shape[1])

    @property
    def has_waveform(self) -> bool:
        return self.waves is not None

    def __len__(self) -> int:
        return int(self.pretrain_index.numel())

    def batch(self, indices: Tensor) -> SpeechBatch:
        """The batch for pretraining positions ``indices`` (``0 <= i < len(self)``)."""
        return self.gather(self.pretrain_index[indices.to(self.pretrain_index.device)])

    def gather(self, idx: Tensor) -> SpeechBatch:
        """The right-padded batch of absolute utterance indices ``idx`` ``(B,)``."""
        idx = idx.to(self.frames.device)
        features, padding = _gather_padded(self.frames, self.frame_offsets, self.frame_lengths, idx)
        waveform = lengths = None
        if self.waves is not None:
            waveform, _ = _gather_padded(self.waves, self.wave_offsets, self.wave_lengths, idx)
            lengths = self.wave_lengths[idx]
        return SpeechBatch(features=features, padding_mask=padding, waveform=waveform, waveform_lengths=lengths)

    def to(self, device: torch.device | str) -> SpeechSource:
        for name in ("frames", "frame_offsets", "frame_lengths", "waves", "wave_offsets", "wave_lengths", "pretrain_index"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        self.labels = {k: v.to(device) for k, v in self.labels.items()}
        self.splits = {k: v.to(device) for k, v in self.splits.items()}
        self.surface = {k: v.to(device) for k, v in self.surface.items()}
        return self

    def surface_features(self) -> Tensor:
        """The raw-feature baseline: per-utterance mean of the un-normalised log filter-bank frames ``(N, F)``."""
        return self.surface["log-mel mean"]


# ------------------------------------------------------------------------------------------ configs
class SpeechDataConfig(StreamingFields):
    """Fields every speech source shares (and ``in_memory``, ``memory_budget_gb``, ``cache_dir``: see
    :class:`omnissl.streaming.StreamingFields`; the folder, manifest and FSDD sources stream through
    :mod:`omnissl_speech.lazy` when the corpus does not fit).

    Attributes:
        sample_rate: resample everything to this rate in Hz (default 16000; FSDD is 8000).
        features: frame features (see :class:`FeatureConfig`).
        max_seconds: crop longer utterances to their first ``max_seconds`` (default ``None``: no crop).
        keep_waveform: also keep the waveforms (needed by ``speech.wav2vec2``) (default ``True``).
        pretrain_split: the split pretraining samples from (default ``None``: every utterance; labels are
            never used for pretraining, but ``"train"`` keeps test audio unseen).
        num_workers: DataLoader workers that decode files at construction (default 0: in-process).
    """

    sample_rate: int = Field(16000, gt=0)
    features: FeatureConfig = FeatureConfig()
    max_seconds: float | None = Field(None, gt=0)
    keep_waveform: bool = True
    pretrain_split: Literal["train", "val", "test"] | None = None
    num_workers: int = Field(0, ge=0)


class FolderConfig(SpeechDataConfig):
    """A folder of audio files, searched recursively.

    Attributes:
        path: the folder (required; the empty default is rejected with a message).
        label_pattern: a regular expression with named groups matched against each file's stem; every
            group except ``index`` becomes a label (default ``None``: no labels). For FSDD:
            ``(?P<digit>\\d+)_(?P<speaker>[A-Za-z]+)_(?P<index>\\d+)``.
        val_fraction, test_fraction: random split sizes (defaults 0.1 and 0.1), drawn with ``seed``.
        seed: split seed (default 0).
    """

    path: str = ""
    label_pattern: str | None = None
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    seed: int = 0


class ManifestConfig(SpeechDataConfig):
    """A CSV (with a header) or JSONL manifest: a ``path`` column (relative to the manifest's folder or
    absolute), an optional ``split`` column (``train``/``val``/``test``) and any other columns as labels.

    Attributes:
        path: the manifest file (required; the empty default is rejected with a message).
        val_fraction, test_fraction, seed: random split when the manifest has no ``split`` column.
    """

    path: str = ""
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    seed: int = 0


class HFDatasetConfig(SpeechDataConfig):
    """A local HF ``datasets`` folder written by ``save_to_disk`` (``datasets.load_from_disk``: memory-mapped
    Arrow, nothing downloaded), one split or a ``DatasetDict`` of splits.

    Attributes:
        path: the folder (required; the empty default is rejected with a message).
        audio_column: the ``Audio`` column (default ``"audio"``); each row's stored bytes are decoded, or,
            without bytes, the file it names (a relative path from the dataset's folder when the file is there,
            else from the working directory).
        label_columns: columns kept as labels (default ``None``: every integer, ``ClassLabel`` or string
            column besides the audio); ``[]`` keeps none.
        val_fraction, test_fraction, seed: random split of a one-split folder. A ``DatasetDict``'s own
            splits are used instead: ``train``, ``validation`` (or ``val``, ``valid``, ``dev``) and ``test``.
    """

    path: str = ""
    audio_column: str = "audio"
    label_columns: list[str] | None = None
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    seed: int = 0


class FSDDConfig(SpeechDataConfig):
    """The Free Spoken Digit Dataset (Jackson et al.): ``{digit}_{speaker}_{index}.wav`` at 8 kHz.

    Official split: recordings with index 0-4 are the test set. Validation is carved from the training
    indices: index 5-9 (``val_indices``), the rest (10-49) train. Labels: ``digit`` (10) and ``speaker`` (6).

    Attributes:
        path: the ``recordings`` folder (default: ``$OMNISSL_DATA/speech/fsdd/recordings``, with
            ``OMNISSL_DATA`` defaulting to ``../shared/data``).
        sample_rate: default 8000 (the recordings' rate).
        val_indices: the recording indices held out for validation (default 5-9).
    """

    path: str | None = None
    sample_rate: int = Field(8000, gt=0)
    val_indices: tuple[int, int] = (5, 9)


class SyntheticConfig(SpeechDataConfig):
    """Generated vowel-like utterances (see :mod:`omnissl_speech.synthetic`), labels ``vowel`` and ``speaker``.

    Attributes:
        num_utterances: corpus size (default 256).
        min_seconds, max_seconds_generated: length range (defaults 0.2 and 0.8 s, so batches are padded).
        sample_rate: default 8000.
        formant_jitter: std of a per-utterance scaling of each formant (default 0.0; 0.1 makes vowels overlap
            so that surface features no longer separate them perfectly).
        noise: breath noise std relative to the peak (default 0.02).
        seed: generation and split seed (default 0); split 60/20/20.
    """

    num_utterances: int = Field(256, ge=4)
    min_seconds: float = Field(0.2, gt=0)
    max_seconds_generated: float = Field(0.8, gt=0)
    sample_rate: int = Field(8000, gt=0)
    formant_jitter: float = Field(0.0, ge=0)
    noise: float = Field(0.02, ge=0)
    seed: int = 0


# ----------------------------------------------------------------------------------------- decoding
class _Decode(torch.utils.data.Dataset):
    """Decodes one file per item with soundfile; returns ``(samples or None, reason)``."""

    def __init__(self, paths: Sequence[Path], sample_rate: int, max_seconds: float | None):
        self.paths, self.sample_rate, self.max_seconds = list(paths), sample_rate, max_seconds

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, i: int) -> tuple[Any, int]:
        """Item ``i``'s samples ``(S, C)`` float32 and its sample rate."""
        return sf.read(str(self.paths[i]), dtype="float32", always_2d=True)

    def __getitem__(self, i: int) -> tuple[Tensor | None, str]:
        try:
            data, rate = self.read(i)
        except Exception as err:  # soundfile raises LibsndfileError, RuntimeError or OSError by format
            return None, f"unreadable ({type(err).__name__}: {str(err).splitlines()[0][:80]})"
        wave = torch.from_numpy(data).mean(dim=1)
        if wave.numel() == 0:
            return None, "empty"
        if rate != self.sample_rate:
            wave = torchaudio.functional.resample(wave, rate, self.sample_rate)
        if self.max_seconds is not None:
            wave = wave[: int(self.max_seconds * self.sample_rate)]
        if not torch.isfinite(wave).all():
            return None, "non-finite samples"
        return wave, ""


def decode_files(paths: Sequence[Path], sample_rate: int, max_seconds: float | None, num_workers: int, where: str,
                 decoder: _Decode | None = None) -> tuple[list[Tensor], list[int]]:
    """Decode ``paths`` (or ``decoder``'s items, named by ``paths``); returns the waveforms and the positions that decoded."""
    loader = torch.utils.data.DataLoader(
        decoder or _Decode(paths, sample_rate, max_seconds), batch_size=None, num_workers=num_workers, collate_fn=lambda x: x
    )
    waves, kept, bad = [], [], []
    for i, (wave, reason) in enumerate(loader):
        if wave is None:
            bad.append(f"{paths[i].name if isinstance(paths[i], Path) else paths[i]} ({reason})")
        else:
            waves.append(wave)
            kept.append(i)
    if not waves:
        raise DataError(f"no readable audio in {where}: {len(bad)} file(s) failed, e.g. {bad[:3]}; check the path and the file formats")
    if bad:
        shown = ", ".join(bad[:10]) + (f", and {len(bad) - 10} more" if len(bad) > 10 else "")
        warnings.warn(f"{where}: skipped {len(bad)} of {len(paths)} audio files: {shown}", stacklevel=2)
    return waves, kept


def _featurise(waves: list[Tensor], cfg: SpeechDataConfig) -> tuple[list[Tensor], dict[str, Tensor]]:
    """Frame features per utterance and the utterance-level surface baselines (from un-normalised frames)."""
    extractor = FrameFeatures(cfg.features, cfg.sample_rate)
    raw = [extractor(w) for w in waves]
    mfcc = [mfcc_from_log_mel(r) for r in raw]
    surface = {
        "log-mel mean": torch.stack([r.mean(0) for r in raw]),
        "log-mel mean+std": torch.stack([torch.cat([r.mean(0), r.std(0, unbiased=False)]) for r in raw]),
        "MFCC mean+std": torch.stack([torch.cat([m.mean(0), m.std(0, unbiased=False)]) for m in mfcc]),
    }
    if cfg.features.normalise == "utterance":
        feats = [normalise_utterance(r) for r in raw]
    elif cfg.features.normalise == "global":
        values, _, lengths = _pack(raw)
        feats = list(torch.split(normalise_global(values), lengths.tolist()))
    else:
        feats = raw
    return feats, surface


def _normalise_waves(waves: list[Tensor]) -> list[Tensor]:
    """Zero mean, unit variance per utterance (wav2vec 2.0's ``normalize=True``)."""
    return [(w - w.mean()) / (w.std(unbiased=False) + 1e-5) for w in waves]


def _random_splits(n: int, val: float, test: float, seed: int) -> dict[str, Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test, n_val = int(round(test * n)), int(round(val * n))
    return {"test": perm[:n_test].sort().values, "val": perm[n_test : n_test + n_val].sort().values, "train": perm[n_test + n_val :].sort().values}


def _encode_labels(columns: dict[str, list[Any]]) -> tuple[dict[str, Tensor], dict[str, list[str]]]:
    """Integer labels; string columns become class indices (sorted class names kept in ``classes``)."""
    labels, classes = {}, {}
    for name, values in columns.items():
        if all(isinstance(v, int) or (isinstance(v, str) and v.lstrip("-").isdigit()) for v in values):
            labels[name] = torch.tensor([int(v) for v in values])
        else:
            names = sorted({str(v) for v in values})
            lookup = {c: i for i, c in enumerate(names)}
            labels[name], classes[name] = torch.tensor([lookup[str(v)] for v in values]), names
    return labels, classes


def _build(cfg: SpeechDataConfig, paths: list[Path], columns: dict[str, list[Any]], split_of: list[str] | None, where: str, seed: int, val: float, test: float) -> SpeechSource:
    if cfg.in_memory is not True:
        from omnissl_speech import lazy

        in_memory, decision = choose_in_memory(cfg.in_memory, lazy.estimated_bytes(paths, cfg), cfg.memory_budget_gb)
        if not in_memory:
            return lazy.build_lazy(cfg, paths, columns, split_of, where, seed, val, test, decision)
    waves, kept = decode_files(paths, cfg.sample_rate, cfg.max_seconds, cfg.num_workers, where)
    return _assemble(cfg, waves, kept, [p.name for p in paths], columns, split_of, seed, val, test)


def kept_labels_and_splits(kept: list[int], columns: dict[str, list[Any]], split_of: list[str] | None, seed: int, val: float, test: float,
                           classes: dict[str, list[str]] | None = None) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, list[str]]]:
    """Labels, splits and class names of the items ``kept`` (the ones that decoded); ``classes`` names the columns
    that already hold class indices (HF ``ClassLabel``), with their class names."""
    columns = {k: [v[i] for i in kept] for k, v in columns.items()}
    labels, found = _encode_labels({k: v for k, v in columns.items() if k not in (classes or {})})
    labels.update({k: torch.tensor([int(x) for x in columns[k]]) for k in classes or {}})
    if split_of is not None:
        split_of = [split_of[i] for i in kept]
        splits = {s: torch.tensor([i for i, x in enumerate(split_of) if x == s], dtype=torch.long) for s in ("train", "val", "test")}
    else:
        splits = _random_splits(len(kept), val, test, seed)
    return labels, splits, {**found, **(classes or {})}


def _assemble(cfg: SpeechDataConfig, waves: list[Tensor], kept: list[int], names: list[str], columns: dict[str, list[Any]],
              split_of: list[str] | None, seed: int, val: float, test: float, classes: dict[str, list[str]] | None = None) -> SpeechSource:
    """The in-memory source from decoded ``waves`` (items ``kept`` of ``names``, ``columns`` and ``split_of``)."""
    labels, splits, classes = kept_labels_and_splits(kept, columns, split_of, seed, val, test, classes)
    feats, surface = _featurise(waves, cfg)
    return SpeechSource(
        feats, _normalise_waves(waves) if cfg.keep_waveform else None, labels, splits, surface, cfg.sample_rate,
        [names[i] for i in kept], cfg.pretrain_split, classes,
    )


def _list_audio(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"audio folder not found: {folder}; set data.path to a folder of audio files")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not paths:
        raise DataError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {folder}; check data.path")
    return paths


def folder_source(cfg: FolderConfig, ctx: BuildContext | None = None) -> SpeechSource:
    """Every audio file under ``cfg.path``; labels from ``label_pattern`` named groups."""
    if not cfg.path:
        raise DataError("speech.folder: set data.path to a folder of audio files")
    folder = Path(os.path.expandvars(cfg.path)).expanduser()
    paths = _list_audio(folder)
    columns: dict[str, list[Any]] = {}
    if cfg.label_pattern:
        try:
            pattern = re.compile(cfg.label_pattern)
        except re.error as err:
            raise DataError(f"data.label_pattern {cfg.label_pattern!r} is not a valid regular expression: {err}") from err
        groups = [g for g in pattern.groupindex if g != "index"]
        matched = []
        for p in paths:
            m = pattern.fullmatch(p.stem)
            if m is None:
                raise DataError(f"{p}: file name does not match data.label_pattern {cfg.label_pattern!r}; rename it or loosen the pattern")
            matched.append(m)
        columns = {g: [m.group(g) for m in matched] for g in groups}
    return _build(cfg, paths, columns, None, str(folder), cfg.seed, cfg.val_fraction, cfg.test_fraction)


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"manifest not found: {path}; set data.path to a CSV or JSONL file")
    rows = []
    if path.suffix.lower() in (".jsonl", ".json"):
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}, line {line_no}, column {err.colno}: invalid JSON ({err.msg}); one object per line") from err
            if not isinstance(row, dict) or "path" not in row:
                raise DataError(f"{path}, line {line_no}: each line must be an object with a 'path' key")
            rows.append(row)
    else:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "path" not in reader.fieldnames:
                raise DataError(f"{path}, line 1: the CSV header must have a 'path' column, found {reader.fieldnames}")
            rows = list(reader)
    if not rows:
        raise DataError(f"manifest {path} lists no files")
    return rows


def manifest_source(cfg: ManifestConfig, ctx: BuildContext | None = None) -> SpeechSource:
    """The files listed in a CSV/JSONL manifest; other columns become labels, ``split`` the split."""
    if not cfg.path:
        raise DataError("speech.manifest: set data.path to a CSV or JSONL manifest")
    manifest = Path(os.path.expandvars(cfg.path)).expanduser()
    rows = _read_manifest(manifest)
    paths = [p if (p := Path(str(r["path"])).expanduser()).is_absolute() else manifest.parent / p for r in rows]
    label_keys = [k for k in rows[0] if k not in ("path", "split")]
    columns = {k: [r.get(k) for r in rows] for k in label_keys}
    split_of = None
    if "split" in rows[0]:
        split_of = [str(r.get("split")) for r in rows]
        unknown = sorted(set(split_of) - {"train", "val", "test"})
        if unknown:
            raise DataError(f"{manifest}: split values must be train, val or test; found {unknown}")
    return _build(cfg, paths, columns, split_of, str(manifest), cfg.seed, cfg.val_fraction, cfg.test_fraction)


HF_SPLITS = {"train": "train", "validation": "val", "valid": "val", "val": "val", "dev": "val", "test": "test"}


class _HFDecode(_Decode):
    """Rows of saved HF datasets (their audio column cast to ``decode=False``): the stored bytes, else the file
    named in ``path`` (a relative one from ``folder`` when it is there, else from the working directory, as
    ``datasets`` reads it), decoded with soundfile in the loader's workers."""

    def __init__(self, parts: Sequence[Any], column: str, folder: Path, sample_rate: int, max_seconds: float | None):
        self.rows = [(part, i) for part in parts for i in range(part.num_rows)]
        self.column, self.folder = column, folder
        super().__init__([], sample_rate, max_seconds)

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, i: int) -> tuple[Any, int]:
        part, row = self.rows[i]
        cell = part[row][self.column]
        if cell.get("bytes"):
            return sf.read(io.BytesIO(cell["bytes"]), dtype="float32", always_2d=True)
        if not cell.get("path"):
            raise ValueError("the row holds neither audio bytes nor a path")
        path = Path(cell["path"]).expanduser()
        if not path.is_absolute() and (self.folder / path).is_file():
            path = self.folder / path  # else relative to the working directory, as datasets reads it
        return sf.read(str(path), dtype="float32", always_2d=True)


def _load_hf_audio(folder: Path, column: str) -> dict[str, Any]:
    """The saved dataset's parts by split name (``{"all": ds}`` for one split), ``column`` cast to ``Audio(decode=False)``."""
    try:
        from datasets import Audio, Dataset, load_from_disk
    except ImportError as err:
        raise DataError(f"{folder}: reading a HF datasets folder needs the 'datasets' package: pip install 'omnissl-speech[hf]'") from err
    if not ((folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()):
        raise DataError(f"{folder} is not a folder written by datasets' save_to_disk (no state.json or dataset_dict.json); set data.path to one")
    loaded = load_from_disk(str(folder))
    parts = {"all": loaded} if isinstance(loaded, Dataset) else dict(loaded)
    out = {}
    for name, part in parts.items():
        feature = part.features.get(column)
        if feature is None:
            raise DataError(f"{folder}{'' if name == 'all' else f' (split {name!r})'}: no column {column!r}; its columns are {sorted(part.features)}; set data.audio_column")
        if not isinstance(feature, Audio):
            raise DataError(f"{folder}: column {column!r} is {type(feature).__name__}, not an Audio column; set data.audio_column to the audio column")
        out[name] = part.cast_column(column, Audio(decode=False))  # datasets' decoding needs torchcodec; soundfile decodes here
    return out


def _hf_label_columns(part: Any, cfg: HFDatasetConfig, folder: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The label columns and, for ``ClassLabel`` ones, their class names."""
    from datasets import ClassLabel, Value

    features = part.features
    if cfg.label_columns is None:
        names = [k for k, f in features.items() if k != cfg.audio_column and (isinstance(f, ClassLabel) or (
                 isinstance(f, Value) and (f.dtype.startswith(("int", "uint")) or f.dtype in ("string", "large_string"))))]
    else:
        names = list(cfg.label_columns)
        missing = [k for k in names if k not in features]
        if missing:
            raise DataError(f"{folder}: data.label_columns {missing} are not columns; its columns are {sorted(features)}")
    return names, {k: list(features[k].names) for k in names if isinstance(features[k], ClassLabel)}


def _hf_row_names(part: Any, column: str, split: str) -> list[str]:
    """What warnings call each row: its split and row number, and the file name its audio cell records."""
    column_arrow = part.with_format("arrow")[column]  # Arrow, memory-mapped: the audio bytes are not read
    stored = [p for chunk in column_arrow.chunks for p in chunk.field("path").to_pylist()]
    where = "row" if split == "all" else f"{split} row"
    return [f"{where} {i} ({Path(p).name})" if p else f"{where} {i}" for i, p in enumerate(stored)]


def hf_dataset_source(cfg: HFDatasetConfig, ctx: BuildContext | None = None) -> SpeechSource:
    """The audio column of a local HF ``datasets`` folder, decoded with soundfile; other columns become labels."""
    if not cfg.path:
        raise DataError("speech.hf_dataset: set data.path to a folder written by datasets' save_to_disk")
    folder = Path(os.path.expandvars(cfg.path)).expanduser()
    parts = _load_hf_audio(folder, cfg.audio_column)
    unknown = sorted(set(parts) - {"all", *HF_SPLITS})
    if unknown:
        raise DataError(f"{folder}: splits {unknown} are not train, validation (val, valid, dev) or test; save those splits, or point data.path at one split's folder")
    first = next(iter(parts.values()))
    label_names, classes = _hf_label_columns(first, cfg, folder)
    columns: dict[str, list[Any]] = {k: [v for part in parts.values() for v in part[k]] for k in label_names}
    split_of = None if "all" in parts else [HF_SPLITS[name] for name, part in parts.items() for _ in range(part.num_rows)]
    names = [n for name, part in parts.items() for n in _hf_row_names(part, cfg.audio_column, name)]
    decoder = _HFDecode(list(parts.values()), cfg.audio_column, folder, cfg.sample_rate, cfg.max_seconds)
    if cfg.in_memory is not True:
        from omnissl_speech import lazy

        # save_to_disk embeds each row's audio bytes (a row naming a file is read into the Arrow files), so the
        # folder's own files are what the cache key must follow
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        in_memory, decision = choose_in_memory(cfg.in_memory, lazy.estimated_bytes(files, cfg), cfg.memory_budget_gb)
        if not in_memory:
            return lazy.build_lazy(cfg, files, columns, split_of, str(folder), cfg.seed, cfg.val_fraction, cfg.test_fraction, decision,
                                   decoder=decoder, names=names, classes=classes)
    waves, kept = decode_files(names, cfg.sample_rate, cfg.max_seconds, cfg.num_workers, str(folder), decoder)
    return _assemble(cfg, waves, kept, names, columns, split_of, cfg.seed, cfg.val_fraction, cfg.test_fraction, classes)


def default_data_root() -> Path:
    """``$OMNISSL_DATA``, else ``../shared/data`` relative to the working directory."""
    return Path(os.environ.get("OMNISSL_DATA", "../shared/data"))


def fsdd_source(cfg: FSDDConfig, ctx: BuildContext | None = None) -> SpeechSource:
    """FSDD with the official test split (index 0-4) and validation carved from train."""
    folder = Path(os.path.expandvars(cfg.path)).expanduser() if cfg.path else default_data_root() / "speech" / "fsdd" / "recordings"
    paths = _list_audio(folder)
    pattern = re.compile(FSDD_PATTERN)
    parsed = []
    for p in paths:
        m = pattern.fullmatch(p.stem)
        if m is None:
            raise DataError(f"{p}: not an FSDD file name ({{digit}}_{{speaker}}_{{index}}.wav); point data.path at fsdd/recordings")
        parsed.append(m)
    lo, hi = cfg.val_indices
    split_of = ["test" if int(m["index"]) <= 4 else "val" if lo <= int(m["index"]) <= hi else "train" for m in parsed]
    columns = {"digit": [int(m["digit"]) for m in parsed], "speaker": [m["speaker"] for m in parsed]}
    return _build(cfg, paths, columns, split_of, str(folder), 0, 0.0, 0.0)


def synthetic_source(cfg: SyntheticConfig, ctx: BuildContext | None = None) -> SpeechSource:
    """Generated vowel-like utterances with ``vowel`` and ``speaker`` labels and a 60/20/20 split."""
    if cfg.in_memory is False:
        raise DataError("speech.synthetic generates its corpus in memory; data.in_memory: false streams files (speech.folder, speech.manifest, speech.fsdd)")
    if cfg.max_seconds_generated < cfg.min_seconds:
        raise DataError(f"data.max_seconds_generated ({cfg.max_seconds_generated}) must be >= data.min_seconds ({cfg.min_seconds})")
    waves, labels = synth_corpus(cfg.num_utterances, cfg.sample_rate, cfg.min_seconds, cfg.max_seconds_generated, cfg.seed,
                                 cfg.formant_jitter, cfg.noise)
    if cfg.max_seconds is not None:
        waves = [w[: int(cfg.max_seconds * cfg.sample_rate)] for w in waves]
    feats, surface = _featurise(waves, cfg)
    splits = _random_splits(len(waves), 0.2, 0.2, cfg.seed)
    return SpeechSource(
        feats, _normalise_waves(waves) if cfg.keep_waveform else None, labels, splits, surface, cfg.sample_rate,
        [f"synthetic_{i}" for i in range(len(waves))], cfg.pretrain_split,
    )
