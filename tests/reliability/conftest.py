import pytest
import torch


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    """rich wraps messages at the terminal width; one message per line keeps them matchable."""
    monkeypatch.setenv("COLUMNS", "1000")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors on a shared 2-core machine: intra-op threads cost more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def quiet_toy(toy_config):
    """The toy run config, short, without a progress bar or end-of-run evaluation."""
    toy_config["engine"]["steps"] = 6
    toy_config["logging"].update(progress=False, log_every=2)
    toy_config["eval"] = {"at_end": False}
    toy_config["tasks"][0]["eval"] = []
    return toy_config
