import pytest
import torch

from omnissl_speech import datasets


@pytest.fixture(scope="session")
def tiny_source():
    """16 generated utterances of 0.1-0.6 s at 8 kHz, features and waveforms."""
    return datasets.synthetic_source(datasets.SyntheticConfig(num_utterances=16, min_seconds=0.1, max_seconds_generated=0.6, seed=3))


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
