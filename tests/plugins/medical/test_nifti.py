"""NIfTI reading against nibabel's affine: orientation, spacing, intensity, sizing, and errors that name the file."""

import gzip

import nibabel as nib
import numpy as np
import pytest
import torch

from omnissl.errors import DataError
from omnissl_medical.datasets import NiftiFolderConfig, load_nifti_folder
from omnissl_medical.nifti import IntensityConfig, VolumePreprocessing, preprocess, read_nifti, reorient, resample

from .conftest import write_nifti


def world(affine, ijk):
    return affine[:3, :3] @ np.asarray(ijk, dtype=float) + affine[:3, 3]


def test_reorientation_keeps_every_voxel_at_its_world_position(tmp_path):
    # an LPS-stored volume (x and y axes flipped) with anisotropic spacing and an origin offset
    affine = np.diag([-0.8, -0.9, 2.5, 1.0])
    affine[:3, 3] = [40.0, 30.0, -20.0]
    data = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    img = read_nifti(write_nifti(tmp_path / "lps.nii.gz", data, affine))
    out = reorient(img, "RAS")
    assert nib.aff2axcodes(out.affine) == ("R", "A", "S")
    out_data = np.asanyarray(out.dataobj)
    inv = np.linalg.inv(out.affine)
    for ijk in [(0, 0, 0), (4, 5, 6), (2, 1, 3), (1, 4, 0)]:
        ijk_new = np.round(inv[:3, :3] @ world(affine, ijk) + inv[:3, 3]).astype(int)
        assert out_data[tuple(ijk_new)] == data[ijk]
    assert np.allclose(np.sqrt((out.affine[:3, :3] ** 2).sum(0)), [0.8, 0.9, 2.5])


def test_reorientation_to_lps_and_axis_permutation(tmp_path):
    # voxel axes stored as (S, R, A): a permuted orientation
    affine = np.array([[0, 1.0, 0, 0], [0, 0, 1.0, 0], [1.0, 0, 0, 0], [0, 0, 0, 1]])
    data = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    img = read_nifti(write_nifti(tmp_path / "sra.nii", data, affine))
    assert nib.aff2axcodes(img.affine) == ("S", "R", "A")
    out = reorient(img, "LPS")
    assert nib.aff2axcodes(out.affine) == ("L", "P", "S")
    assert np.asanyarray(out.dataobj).shape == (4, 5, 3)
    inv = np.linalg.inv(out.affine)
    for ijk in [(0, 0, 0), (2, 3, 4), (1, 0, 2)]:
        new = np.round(inv[:3, :3] @ world(affine, ijk) + inv[:3, 3]).astype(int)
        assert np.asanyarray(out.dataobj)[tuple(new)] == pytest.approx(data[ijk])


def test_resampling_to_target_spacing_follows_the_affine(tmp_path):
    affine = np.diag([2.0, 2.0, 4.0, 1.0])
    x = np.arange(10, dtype=np.float32)
    data = np.broadcast_to(x[:, None, None], (10, 8, 6)).copy()  # intensity = voxel index along the first axis
    img = read_nifti(write_nifti(tmp_path / "coarse.nii.gz", data, affine))
    out = resample(img, [1.0, 1.0, 2.0])
    assert np.asanyarray(out.dataobj).shape == (20, 16, 12)
    assert np.allclose(np.sqrt((out.affine[:3, :3] ** 2).sum(0)), [1.0, 1.0, 2.0])
    # a linear ramp is reproduced exactly by trilinear interpolation: value = world x / 2 mm
    out_data = np.asanyarray(out.dataobj)
    for i in (2, 7, 15):
        assert out_data[i, 5, 5] == pytest.approx(world(out.affine, (i, 5, 5))[0] / 2.0, abs=1e-4)


def test_preprocess_window_zscore_and_size(tmp_path):
    data = np.linspace(-1500, 1500, 6 * 6 * 6, dtype=np.float32).reshape(6, 6, 6)
    path = write_nifti(tmp_path / "ct.nii.gz", data)
    win = preprocess(path, VolumePreprocessing(intensity=IntensityConfig(mode="window", low=-1000, high=1000), size=[8, 4, 6]))
    assert win.array.shape == (1, 8, 4, 6)
    inside = win.array[0, 1:7]  # the padded planes along the first axis are zero
    assert inside.min() >= 0.0 and inside.max() <= 1.0 and inside.max() == pytest.approx(1.0) and inside.min() == pytest.approx(0.0)
    z = preprocess(path, VolumePreprocessing(intensity=IntensityConfig(mode="zscore"), size=[6, 6, 6]))
    assert z.array.mean() == pytest.approx(0.0, abs=1e-5) and z.array.std() == pytest.approx(1.0, abs=1e-3)


def test_two_d_file_names_the_file(tmp_path):
    path = write_nifti(tmp_path / "slice.nii.gz", np.zeros((16, 16, 1), dtype=np.float32))
    with pytest.raises(DataError, match="slice.nii.gz.*not a 3-D volume"):
        read_nifti(path)


def test_corrupt_file_names_the_file(tmp_path, nifti_folder):
    bad = nifti_folder / "broken.nii.gz"
    bad.write_bytes(gzip.compress(b"this is not a nifti header" * 3))
    with pytest.raises(DataError, match="broken.nii.gz"):
        load_nifti_folder(NiftiFolderConfig(path=str(nifti_folder), preprocessing=VolumePreprocessing(size=[8, 8, 8])))


def test_missing_label_row_names_the_file(tmp_path, nifti_folder):
    write_nifti(nifti_folder / "extra.nii", np.zeros((4, 4, 4)))
    with pytest.raises(DataError, match="extra.nii: no row"):
        load_nifti_folder(NiftiFolderConfig(path=str(nifti_folder), labels_csv=str(tmp_path / "labels.csv")))


def test_folder_loads_labels_splits_and_prints(tmp_path, nifti_folder, capsys):
    src = load_nifti_folder(NiftiFolderConfig(path=str(nifti_folder), labels_csv=str(tmp_path / "labels.csv"),
                                              preprocessing=VolumePreprocessing(size=[8, 8, 8])))
    assert src.volume_shape == (1, 8, 8, 8) and len(src) == 8
    assert src.labels["label"].tolist() == [i % 2 for i in range(8)]
    assert sorted(torch.cat(list(src.splits.values())).tolist()) == list(range(8))
    assert "medical.nifti: loaded 8 files" in capsys.readouterr().out


def test_headerless_csv_and_split_column(tmp_path, nifti_folder):
    (tmp_path / "plain.csv").write_text("".join(f"case{i},{1 - i % 2}\n" for i in range(8)))
    src = load_nifti_folder(NiftiFolderConfig(path=str(nifti_folder), labels_csv=str(tmp_path / "plain.csv"), preprocessing=VolumePreprocessing(size=[8, 8, 8])))
    assert src.labels["label"].tolist() == [1 - i % 2 for i in range(8)]
    splits = ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    (tmp_path / "split.csv").write_text("file,grade,split\n" + "".join(f"case{i}.nii.gz,{i % 3},{splits[i]}\n" for i in range(8)))
    src = load_nifti_folder(NiftiFolderConfig(path=str(nifti_folder), labels_csv=str(tmp_path / "split.csv"), pretrain_split="train",
                                              preprocessing=VolumePreprocessing(size=[8, 8, 8])))
    assert src.splits["val"].tolist() == [4, 5] and len(src) == 4
    assert src.labels["grade"].tolist() == [i % 3 for i in range(8)]
