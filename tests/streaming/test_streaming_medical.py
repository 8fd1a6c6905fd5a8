"""The lazy NIfTI path: volumes preprocessed once into the cache give the in-memory source's batches."""

import pytest
import torch

from omnissl.errors import DataError
from omnissl_medical.datasets import NiftiFolderConfig, load_nifti_folder, write_example_folder
from omnissl_medical.lazy import LazyVolumeSource


def test_lazy_nifti_equals_in_memory(tmp_path):
    params = write_example_folder(tmp_path / "nii")
    prep = {"size": [12, 12, 12], "spacing": [2.0, 2.0, 2.0], "intensity": {"mode": "zscore"}}
    memory = load_nifti_folder(NiftiFolderConfig(**params, preprocessing=prep, in_memory=True, pretrain_split="train"))
    lazy = load_nifti_folder(NiftiFolderConfig(**params, preprocessing=prep, in_memory=False, pretrain_split="train"))
    assert isinstance(lazy, LazyVolumeSource) and not isinstance(memory, LazyVolumeSource)
    assert lazy.volume_shape == memory.volume_shape == (1, 12, 12, 12) and lazy.names == memory.names
    assert all(torch.equal(lazy.labels[k], memory.labels[k]) for k in memory.labels)
    assert all(torch.equal(lazy.splits[k], memory.splits[k]) for k in memory.splits)
    idx = torch.tensor([2, 0, 1])[: len(memory)]
    assert torch.equal(lazy.batch(idx), memory.batch(idx))
    assert torch.equal(lazy.gather(torch.arange(6)), memory.gather(torch.arange(6)))
    assert torch.equal(lazy.surface_features(), memory.surface_features())
    assert not [p for p in (tmp_path / "nii").iterdir() if not p.name.endswith((".nii.gz", ".csv"))]


def test_lazy_nifti_refuses_curation(tmp_path):
    params = write_example_folder(tmp_path / "nii")
    with pytest.raises(DataError, match="curation needs the volumes in memory"):
        load_nifti_folder(NiftiFolderConfig(**params, in_memory=False, curation={"level": "volumes"}))
