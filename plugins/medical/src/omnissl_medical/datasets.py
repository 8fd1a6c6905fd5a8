"""Medical volume data sources: MedMNIST 3-D ``.npz`` files and a user's folder of NIfTI volumes.

Every source is a :class:`VolumeSource`: all volumes stacked in one ``(N, C, D, H, W)`` tensor that moves
to the device once (VesselMNIST3D 28³ is 29 MB as uint8), so a batch is a gather and a cast. Labels and
splits live beside it for probes; they never reach an objective. Each loader prints one line saying what
it loaded (files, shape, labels, splits, what curation dropped).

Batches are ``float32`` tensors ``(B, C, D, H, W)``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from omnissl.errors import DataError
from omnissl.specs import BuildContext, ComponentConfig
from omnissl.streaming import StreamingFields, choose_in_memory
from omnissl_medical.curation import CurationConfig, near_duplicate_slices, near_duplicate_volumes
from omnissl_medical.nifti import VolumePreprocessing, preprocess

SPLITS = ("train", "val", "test")


class VolumeSource:
    """Volumes resident in memory (on the device after :meth:`to`).

    Args:
        volumes: ``(N, C, D, H, W)`` tensor (uint8 or float); ``scale`` multiplies it when batched.
        labels: per-volume integer targets by name (probes only).
        splits: ``train``/``val``/``test`` index tensors over all volumes.
        names: one name per volume (file name or ``"<split>/<i>"``).
        pretrain_split: the split the engine samples for pretraining (``None``: every volume).
        surface_size: side of the average-pooled grid of the raw-voxel baseline (default 7: 343 features).

    ``len(source)`` and :meth:`batch` address the pretraining volumes; :meth:`gather` takes absolute indices
    (what ``labels`` and ``splits`` refer to) and is what evaluators use.
    """

    def __init__(
        self,
        volumes: Tensor,
        labels: dict[str, Tensor] | None = None,
        splits: dict[str, Tensor] | None = None,
        names: list[str] | None = None,
        pretrain_split: str | None = None,
        scale: float = 1.0,
        surface_size: int = 7,
    ):
        if volumes.dim() != 5:
            raise DataError(f"volumes must be (N, C, D, H, W), got shape {tuple(volumes.shape)}")
        self.volumes = volumes
        self.scale = scale
        self.labels = labels or {}
        self.splits = splits or {}
        self.names = names or [str(i) for i in range(volumes.shape[0])]
        self.surface_size = surface_size
        if pretrain_split is not None and pretrain_split not in self.splits:
            raise DataError(f"pretrain_split {pretrain_split!r} is not a split of this dataset; choose one of {sorted(self.splits)} or null")
        self.pretrain_index = self.splits[pretrain_split].clone() if pretrain_split else torch.arange(volumes.shape[0])

    @property
    def num_volumes(self) -> int:
        return int(self.volumes.shape[0])

    @property
    def volume_shape(self) -> tuple[int, int, int, int]:
        """``(C, D, H, W)`` of one volume; encoders size their stems from it."""
        return tuple(int(s) for s in self.volumes.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.pretrain_index.numel())

    def batch(self, indices: Tensor) -> Tensor:
        """The ``(B, C, D, H, W)`` float batch for pretraining positions ``indices``."""
        return self.gather(self.pretrain_index[indices.to(self.pretrain_index.device)])

    def gather(self, idx: Tensor) -> Tensor:
        """The ``(B, C, D, H, W)`` float batch of absolute volume indices ``idx``."""
        return self.volumes[idx.to(self.volumes.device)].float() * self.scale

    def to(self, device: torch.device | str) -> VolumeSource:
        self.volumes = self.volumes.to(device)
        self.pretrain_index = self.pretrain_index.to(device)
        self.labels = {k: v.to(device) for k, v in self.labels.items()}
        self.splits = {k: v.to(device) for k, v in self.splits.items()}
        return self

    @torch.no_grad()
    def surface_features(self, chunk: int = 256) -> Tensor:
        """Raw voxels average-pooled to ``surface_size³`` per channel: ``(N, C * s³)`` (the raw-voxel baseline)."""
        out = []
        for start in range(0, self.num_volumes, chunk):
            idx = torch.arange(start, min(start + chunk, self.num_volumes))  # gather moves it to where the volumes are
            out.append(F.adaptive_avg_pool3d(self.gather(idx), self.surface_size).flatten(1))
        return torch.cat(out)

    def describe(self) -> str:
        counts = ", ".join(f"{k} {int(v.numel())}" for k, v in self.splits.items())
        label_info = "; ".join(f"{k}: {torch.bincount(v.long().cpu()).tolist()}" for k, v in self.labels.items()) or "none"
        return f"{self.num_volumes} volumes of shape {self.volume_shape} ({counts}); label counts {label_info}; pretraining on {len(self)}"


def _apply_volume_curation(source: VolumeSource, curation: CurationConfig | None, who: str) -> None:
    """Restrict the pretraining index to volumes that are not near duplicates (labels and splits untouched)."""
    if curation is None:
        return
    if curation.level != "volumes":
        raise DataError(f"{who}: curation.level {curation.level!r} needs per-file slices; use level: volumes here")
    pool = source.gather(source.pretrain_index)
    kept = near_duplicate_volumes(pool, curation.threshold, curation.pool).to(source.pretrain_index.device)
    dropped = len(source) - int(kept.numel())
    source.pretrain_index = source.pretrain_index[kept]
    print(f"{who}: curation dropped {dropped} near-duplicate volumes (similarity > {curation.threshold}); pretraining on {len(source)}")


# ------------------------------------------------------------------------------------------- MedMNIST
class MedMNIST3DConfig(ComponentConfig):
    """A MedMNIST v2 3-D ``.npz`` (OrganMNIST3D, NoduleMNIST3D, VesselMNIST3D, ...; 28³ or 64³).

    Attributes:
        path: the ``.npz`` file with ``{train,val,test}_{images,labels}`` (the official splits; required, the
            empty default is rejected with a message).
        label: name given to the label column (default ``"label"``); multi-label files give one label per
            column, ``label_0``, ``label_1``, ...
        pretrain_split: which split pretraining samples (default ``"train"``: val and test stay unseen).
        surface_size: side of the pooled raw-voxel baseline (default 7).
        curation: optional near-duplicate removal over the pretraining volumes (default ``None``).
    """

    path: str = ""
    label: str = "label"
    pretrain_split: Literal["train", "val", "test"] | None = "train"
    surface_size: int = Field(7, ge=1)
    curation: CurationConfig | None = None


def load_medmnist3d(cfg: MedMNIST3DConfig, ctx: BuildContext | None = None) -> VolumeSource:
    if not cfg.path:
        raise DataError("data.path is required: the MedMNIST 3-D .npz file, e.g. ${OMNISSL_DATA:-../shared/data}/medical/vesselmnist3d/vesselmnist3d.npz")
    path = Path(cfg.path)
    if not path.is_file():
        raise DataError(f"data.path: {path} does not exist; point it at a MedMNIST 3-D .npz such as vesselmnist3d.npz")
    try:
        archive = np.load(path)
        keys = set(archive.files)
    except Exception as err:
        raise DataError(f"{path}: not a readable .npz ({type(err).__name__}: {err})") from err
    missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in keys]
    if missing:
        raise DataError(f"{path}: missing arrays {missing}; a MedMNIST file has train/val/test _images and _labels")
    images, labels, splits, start = [], [], {}, 0
    for split in SPLITS:
        x = archive[f"{split}_images"]
        if x.ndim == 4:
            x = x[:, None]
        elif x.ndim != 5:
            raise DataError(f"{path}: {split}_images has shape {x.shape}; expected (N, D, H, W) or (N, C, D, H, W) volumes")
        y = archive[f"{split}_labels"].reshape(len(x), -1)
        images.append(torch.from_numpy(np.ascontiguousarray(x)))
        labels.append(torch.from_numpy(y.astype(np.int64)))
        splits[split] = torch.arange(start, start + len(x))
        start += len(x)
    volumes = torch.cat(images)
    y = torch.cat(labels)
    named = {cfg.label: y[:, 0]} if y.shape[1] == 1 else {f"{cfg.label}_{i}": y[:, i] for i in range(y.shape[1])}
    scale = 1.0 / 255.0 if volumes.dtype == torch.uint8 else 1.0
    names = [f"{s}/{i}" for s in SPLITS for i in range(int(splits[s].numel()))]
    source = VolumeSource(volumes, named, splits, names, cfg.pretrain_split, scale, cfg.surface_size)
    print(f"medical.medmnist3d: loaded {path.name}: {source.describe()}")
    _apply_volume_curation(source, cfg.curation, "medical.medmnist3d")
    return source


# ---------------------------------------------------------------------------------------------- NIfTI
class NiftiFolderConfig(StreamingFields):
    """A folder of ``.nii`` / ``.nii.gz`` volumes, with optional labels (and ``in_memory``, ``memory_budget_gb``,
    ``cache_dir``: volumes that do not fit are preprocessed once into a cache, :mod:`omnissl_medical.lazy`).

    Attributes:
        path: the folder (required); searched recursively when ``recursive`` (default ``False``).
        labels_csv: optional CSV with a ``file`` column (file name, with or without ``.nii``/``.nii.gz``)
            and one integer column per label; an optional ``split`` column (train/val/test) gives the splits.
            Without a header row, the columns are ``file,label``. Every file needs a row.
        preprocessing: orientation, spacing, intensity and region of interest (:class:`VolumePreprocessing`).
        split_seed: seed of the 60/20/20 split used when the CSV has no ``split`` column (default 0).
        pretrain_split: split sampled for pretraining (default ``None``: every volume).
        surface_size, curation: as for ``medical.medmnist3d``; ``curation.level: slices`` drops near-duplicate
            slices of each file before sizing.
    """

    path: str = ""
    labels_csv: str | None = None
    recursive: bool = False
    preprocessing: VolumePreprocessing = VolumePreprocessing()
    split_seed: int = 0
    pretrain_split: Literal["train", "val", "test"] | None = None
    surface_size: int = Field(7, ge=1)
    curation: CurationConfig | None = None


def _stem(name: str) -> str:
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_label_csv(path: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    """``{file stem: {column: value}}`` and the label columns; headerless files are ``file,label``."""
    if not path.is_file():
        raise DataError(f"data.labels_csv: {path} does not exist")
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path}: the labels CSV is empty")
    header = [c.strip() for c in rows[0]]
    if "file" in header:
        body = rows[1:]
    else:
        if len(header) != 2:
            raise DataError(f"{path}: without a header row the CSV must have two columns file,label; line 1 has {len(header)}")
        header, body = ["file", "label"], rows
    table = {}
    for line, row in enumerate(body, start=2 if header is not rows[0] else 1):
        if len(row) != len(header):
            raise DataError(f"{path}, line {line}: {len(row)} columns but the header has {len(header)} ({','.join(header)})")
        record = dict(zip(header, (c.strip() for c in row)))
        table[_stem(Path(record["file"]).name)] = record
    label_columns = [c for c in header if c not in ("file", "split")]
    return table, label_columns


def load_nifti_folder(cfg: NiftiFolderConfig, ctx: BuildContext | None = None) -> VolumeSource:
    if not cfg.path:
        raise DataError("data.path is required: a folder of .nii/.nii.gz volumes")
    folder = Path(cfg.path)
    if not folder.is_dir():
        raise DataError(f"data.path: {folder} is not a folder; point it at a folder of .nii/.nii.gz files")
    pattern = "**/*" if cfg.recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.name.endswith((".nii", ".nii.gz")))
    if not files:
        raise DataError(f"data.path: {folder} holds no .nii or .nii.gz files{' (recursive: false)' if not cfg.recursive else ''}")
    table, label_columns = read_label_csv(Path(cfg.labels_csv)) if cfg.labels_csv else ({}, [])
    if cfg.in_memory is not True:
        from omnissl_medical import lazy

        in_memory, decision = choose_in_memory(cfg.in_memory, lazy.estimated_bytes(files, cfg), cfg.memory_budget_gb)
        if not in_memory:
            if cfg.curation is not None:
                raise DataError("medical.nifti: data.curation needs the volumes in memory; set data.in_memory: true or remove data.curation")
            missing = [p.name for p in files if cfg.labels_csv and _stem(p.name) not in table]
            if missing:
                raise DataError(f"{folder / missing[0]}: no row for this file in {cfg.labels_csv}; add a row '{_stem(missing[0])},<label>' or move the file out of the folder")
            names = [p.name for p in files]
            source = lazy.build_lazy(cfg, files, _nifti_labels(names, table, label_columns), _nifti_splits(names, table, len(files), cfg), decision)
            print(f"medical.nifti: {len(files)} files from {folder}: {source.describe()}")
            return source
    arrays, names = [], []
    slices_kept = slices_total = 0
    for path in files:
        if cfg.labels_csv and _stem(path.name) not in table:
            raise DataError(f"{path}: no row for this file in {cfg.labels_csv}; add a row '{_stem(path.name)},<label>' or move the file out of the folder")
        if cfg.curation is not None and cfg.curation.level == "slices":
            raw = preprocess(path, cfg.preprocessing.model_copy(update={"size": [10**6] * 3, "crop_foreground": False}))
            vol = torch.from_numpy(raw.array)
            kept = near_duplicate_slices(vol, cfg.curation.threshold, cfg.curation.axis, cfg.curation.pool)
            slices_kept, slices_total = slices_kept + int(kept.numel()), slices_total + vol.shape[cfg.curation.axis + 1]
            from monai.transforms import ResizeWithPadOrCrop

            vol = vol.index_select(cfg.curation.axis + 1, kept)
            array = torch.as_tensor(np.asarray(ResizeWithPadOrCrop(spatial_size=tuple(cfg.preprocessing.size))(vol)))
        else:
            array = torch.from_numpy(preprocess(path, cfg.preprocessing).array)
        arrays.append(array)
        names.append(path.name)
    channels = {a.shape[0] for a in arrays}
    if len(channels) > 1:
        raise DataError(f"{folder}: files have different channel counts {sorted(channels)}; " + ", ".join(f"{n}: {a.shape[0]}" for n, a in zip(names, arrays)))
    volumes = torch.stack(arrays)
    labels = _nifti_labels(names, table, label_columns)
    splits = _nifti_splits(names, table, len(arrays), cfg)
    source = VolumeSource(volumes, labels, splits, names, cfg.pretrain_split, 1.0, cfg.surface_size)
    print(f"medical.nifti: loaded {len(files)} files from {folder}: {source.describe()}; "
          f"orientation {cfg.preprocessing.orientation or 'as stored'}, spacing {cfg.preprocessing.spacing or 'as stored'}, "
          f"intensity {cfg.preprocessing.intensity.mode}")
    if cfg.curation is not None and cfg.curation.level == "slices":
        print(f"medical.nifti: curation kept {slices_kept} of {slices_total} slices (similarity > {cfg.curation.threshold} dropped)")
    elif cfg.curation is not None:
        _apply_volume_curation(source, cfg.curation, "medical.nifti")
    return source


def _nifti_labels(names: list[str], table: dict, label_columns: list[str]) -> dict[str, Tensor]:
    labels: dict[str, Tensor] = {}
    for column in label_columns:
        values = [table[_stem(n)][column] for n in names]
        try:
            labels[column] = torch.tensor([int(float(v)) for v in values])
        except ValueError:
            classes = sorted(set(values))
            labels[column] = torch.tensor([classes.index(v) for v in values])
    return labels


def _nifti_splits(names: list[str], table: dict, n: int, cfg: NiftiFolderConfig) -> dict[str, Tensor]:
    if table and all("split" in table[_stem(x)] for x in names):
        splits = {s: [] for s in SPLITS}
        for i, name in enumerate(names):
            value = table[_stem(name)]["split"].lower()
            if value not in splits:
                raise DataError(f"{cfg.labels_csv}: split {value!r} for {name} is not one of train, val, test")
            splits[value].append(i)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in splits.items()}
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.split_seed))
    a, b = max(1, int(0.6 * n)), max(1, int(0.8 * n))
    return {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}


# ------------------------------------------------------------------------------------------- example
class SyntheticVolumesConfig(ComponentConfig):
    """Generated tubes vs blobs (no files needed), for tests and the quickstart.

    Attributes:
        num_volumes: how many (default 32). size: cube side (default 16). seed: default 0.
        noise: std of the Gaussian voxel noise over a peak of 1 (default 0.05).
        contrast: lowest peak intensity; each volume's shape is scaled by a random peak in ``[contrast, 1]``
            (default 1.0: every peak is 1). With ``noise`` near 1 and ``contrast`` below 1, raw voxels and a
            random encoder no longer separate tubes from blobs perfectly.
    """

    num_volumes: int = Field(32, ge=4)
    size: int = Field(16, ge=8)
    noise: float = Field(0.05, ge=0)
    contrast: float = Field(1.0, gt=0, le=1)
    seed: int = 0


def synthetic_volumes(cfg: SyntheticVolumesConfig, ctx: BuildContext | None = None) -> VolumeSource:
    """Class 0: a Gaussian blob; class 1: a straight tube along a random axis; noise added."""
    g = torch.Generator().manual_seed(cfg.seed)
    n, s = cfg.num_volumes, cfg.size
    grid = torch.stack(torch.meshgrid(*(torch.arange(s, dtype=torch.float32),) * 3, indexing="ij"))  # (3, s, s, s)
    centre = s / 2 + (torch.rand(n, 3, generator=g) - 0.5) * s / 3
    labels = torch.arange(n) % 2
    diff = grid[None] - centre[:, :, None, None, None]  # (n, 3, s, s, s)
    axis = torch.randint(0, 3, (n,), generator=g)
    keep_axes = torch.ones(n, 3).scatter_(1, axis[:, None], 0.0)
    tube_dist = (diff.pow(2) * keep_axes[:, :, None, None, None]).sum(1)
    blob_dist = diff.pow(2).sum(1)
    dist = torch.where(labels[:, None, None, None] == 1, tube_dist, blob_dist)
    shape = torch.exp(-dist / (2 * (s / 8) ** 2))
    noise = cfg.noise * torch.randn(n, s, s, s, generator=g)
    if cfg.contrast < 1:  # drawn after the noise, so the default volumes stay as they were
        shape = shape * (cfg.contrast + (1 - cfg.contrast) * torch.rand(n, 1, 1, 1, generator=g))
    volumes = shape + noise
    perm = torch.randperm(n, generator=g)
    a, b = int(0.6 * n), int(0.8 * n)
    splits = {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}
    return VolumeSource(volumes[:, None], {"label": labels}, splits, [f"synthetic/{i}" for i in range(n)], None, 1.0, 4)


def write_example_folder(folder: Path) -> dict:
    """A tiny real NIfTI folder for the contract suite and smoke tests: six 16³ volumes (1.5 mm voxels) written with
    nibabel, blobs and tubes as :func:`synthetic_volumes` draws them, and a labels CSV; returns ``medical.nifti`` params."""
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    source = synthetic_volumes(SyntheticVolumesConfig(num_volumes=6, size=16))
    rows = ["file,label"]
    for i in range(6):
        affine = np.diag([1.5, 1.5, 1.5, 1.0])
        nib.save(nib.Nifti1Image(source.gather(torch.tensor([i]))[0, 0].numpy().astype(np.float32), affine), str(folder / f"vol{i}.nii.gz"))
        rows.append(f"vol{i}.nii.gz,{int(source.labels['label'][i])}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return {"path": str(folder), "labels_csv": str(folder / "labels.csv")}
