import pytest
import torch

from tests.streaming.helpers import write_wavs


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Every feature cache of a test goes under its own tmp_path (never ~/.cache)."""
    monkeypatch.setenv("OMNISSL_CACHE", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def wav_folder(tmp_path):
    return write_wavs(tmp_path / "audio", 32)
