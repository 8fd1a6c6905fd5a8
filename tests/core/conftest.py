import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Core tests use tiny tensors: on a shared 2-core machine intra-op threads cost more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
