import pytest

from omnissl.testing.toy import toy_run_config


@pytest.fixture
def toy_config(tmp_path):
    """A small valid toy run config writing under ``tmp_path``."""
    return toy_run_config(out_dir=str(tmp_path / "run"))
