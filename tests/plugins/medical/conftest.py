import nibabel as nib
import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    """The test machine is shared: keep each test on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_nifti(path, data, affine=None, zooms=None):
    """Write a real NIfTI-1 file with nibabel; returns the path."""
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.eye(4) if affine is None else affine)
    nib.save(img, str(path))
    return path


@pytest.fixture
def nifti_folder(tmp_path):
    """Eight 12x10x8 volumes (1 mm, RAS), labels 0/1 in a CSV with a header, half bright blobs."""
    folder = tmp_path / "volumes"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,label"]
    for i in range(8):
        data = rng.normal(size=(12, 10, 8)).astype(np.float32)
        if i % 2:
            data[4:8, 3:7, 2:6] += 4.0
        write_nifti(folder / f"case{i}.nii.gz", data)
        rows.append(f"case{i}.nii.gz,{i % 2}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder
