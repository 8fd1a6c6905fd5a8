"""Every shipped config (repository configs/ and configs inside plugins) validates and trains a few steps on CPU."""

from pathlib import Path

import pytest
from omnissl.config import load_config
from omnissl.engine import run_config
from omnissl.errors import ConfigError
from omnissl.plugins import get_plugin_manager
from omnissl.testing.data import shared_data_dir

ROOT = Path(__file__).parents[2]


def shipped_configs() -> list[Path]:
    found = sorted((ROOT / "configs").rglob("*.yaml"))
    for folder in get_plugin_manager().config_dirs():
        if folder.is_dir():
            found += sorted(Path(str(item)) for item in folder.iterdir() if item.name.endswith(".yaml"))
    return found


def needs_shared_data(path: Path) -> bool:
    return "OMNISSL_DATA" in path.read_text() or "shared/data" in path.read_text()


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name)
def test_shipped_config_trains_two_steps(path, tmp_path):
    if needs_shared_data(path) and shared_data_dir() is None:
        pytest.skip("config reads ../shared/data, which this machine lacks")
    from omnissl.config import load_yaml

    data = load_yaml(path)
    overrides = ["engine.steps=2", f"logging.out_dir={tmp_path}", "logging.progress=false", "eval.at_end=false", "eval.every=null"]
    if "epochs" in data.get("engine", {}):
        overrides.append("engine.epochs=null")
    try:
        cfg = load_config(path, overrides)
    except ConfigError as exc:
        pytest.fail(f"{path} does not validate:\n{exc}")
    assert run_config(cfg).step == 2


def test_configs_list_and_copy(tmp_path, capsys):
    from omnissl.cli import main

    assert main(["configs", "list"]) == 0
    assert "toy_simclr.yaml" in capsys.readouterr().out
    assert main(["configs", "copy", "toy_simclr.yaml", str(tmp_path)]) == 0
    assert (tmp_path / "toy_simclr.yaml").is_file()
    assert main(["configs", "copy", "toy_simclr.yaml", str(tmp_path)]) == 2  # refuses to overwrite
    assert main(["configs", "copy", "toy_simclr.yml", str(tmp_path)]) == 2
    assert "did you mean 'toy_simclr.yaml'" in capsys.readouterr().err
