"""MedMNIST 3-D sources (a written .npz and, when present, the real VesselMNIST3D), curation, raw-voxel features."""

import numpy as np
import pytest
import torch

from omnissl.errors import DataError
from omnissl_medical.curation import near_duplicate_slices, near_duplicate_volumes
from omnissl_medical.datasets import MedMNIST3DConfig, load_medmnist3d
from omnissl_medical.curation import CurationConfig


def write_npz(path, sizes=(6, 2, 3), side=8, channels=None):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes):
        shape = (n, side, side, side) if channels is None else (n, channels, side, side, side)
        arrays[f"{split}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return arrays


def test_medmnist_layout_splits_scaling_and_print(tmp_path, capsys):
    arrays = write_npz(tmp_path / "m.npz")
    src = load_medmnist3d(MedMNIST3DConfig(path=str(tmp_path / "m.npz")))
    assert src.volume_shape == (1, 8, 8, 8) and src.num_volumes == 11 and len(src) == 6
    assert src.splits["val"].tolist() == [6, 7] and src.splits["test"].tolist() == [8, 9, 10]
    np.testing.assert_allclose(src.gather(torch.tensor([7]))[0, 0].numpy(), arrays["val_images"][1] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(src.batch(torch.tensor([2]))[0, 0].numpy() * 255.0, arrays["train_images"][2].astype(np.float32), atol=1e-3)
    assert src.surface_features().shape == (11, 343)
    assert "loaded m.npz: 11 volumes" in capsys.readouterr().out


def test_medmnist_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_medmnist3d(MedMNIST3DConfig(path=str(tmp_path / "missing.npz")))
    np.savez(tmp_path / "partial.npz", train_images=np.zeros((2, 4, 4, 4)))
    with pytest.raises(DataError, match="partial.npz: missing arrays"):
        load_medmnist3d(MedMNIST3DConfig(path=str(tmp_path / "partial.npz")))
    with pytest.raises(DataError, match="data.path is required"):
        load_medmnist3d(MedMNIST3DConfig())


def test_near_duplicate_volumes_are_dropped():
    base = torch.randn(4, 1, 8, 8, 8, generator=torch.Generator().manual_seed(0))
    near = base[1:2] + 0.01 * torch.randn(1, 1, 8, 8, 8)
    vols = torch.cat([base, near, base[3:4] * 2.0])  # 4 distinct, a near copy of 1, a rescaled copy of 3
    kept = near_duplicate_volumes(vols, threshold=0.95, pool=4)
    assert kept.tolist() == [0, 1, 2, 3]
    assert near_duplicate_volumes(base, threshold=0.5, pool=4).tolist() == [0, 1, 2, 3]  # independent noise is far below 0.5


def test_near_duplicate_slices_consecutive_rule():
    rng = torch.Generator().manual_seed(0)
    distinct = torch.randn(3, 8, 8, generator=rng)
    stack = torch.stack([distinct[0], distinct[0] * 1.01, distinct[1], distinct[1], distinct[1], distinct[2]])  # (6, 8, 8)
    kept = near_duplicate_slices(stack[None], threshold=0.99, axis=0, pool=8)
    assert kept.tolist() == [0, 2, 5]


def test_curation_restricts_pretraining_only(tmp_path, capsys):
    arrays = write_npz(tmp_path / "d.npz", sizes=(4, 2, 2))
    arrays["train_images"][2] = arrays["train_images"][0]
    np.savez(tmp_path / "d.npz", **arrays)
    src = load_medmnist3d(MedMNIST3DConfig(path=str(tmp_path / "d.npz"), curation=CurationConfig(threshold=0.99, pool=4)))
    assert src.pretrain_index.tolist() == [0, 1, 3] and src.num_volumes == 8
    assert "curation dropped 1 near-duplicate" in capsys.readouterr().out


def test_real_vesselmnist3d(shared_data):
    path = shared_data / "medical" / "vesselmnist3d" / "vesselmnist3d.npz"
    if not path.is_file():
        pytest.skip("VesselMNIST3D not in the shared data folder")
    src = load_medmnist3d(MedMNIST3DConfig(path=str(path)))
    assert src.num_volumes == 1908 and len(src) == 1335 and src.volume_shape == (1, 28, 28, 28)
    assert src.labels["label"].sum().item() == 215  # aneurysm volumes over all splits
