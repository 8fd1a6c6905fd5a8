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


def user_data_overrides(data: dict, folder: Path) -> list[str]:
    """Recipes for the user's own files (a video folder, a NIfTI folder) point at a folder this machine lacks:
    give them the tiny real input their dataset's ``example`` writes (encoded mp4s, NIfTI volumes)."""
    from omnissl.config import expand_env

    registry = get_plugin_manager().registry
    overrides = []
    for i, task in enumerate(data.get("tasks", [])):
        params = dict(task.get("data", {}))
        spec = registry.get("datasets", params.pop("name"))
        where = params.get("path") or params.get("root")
        if spec.example is None or not isinstance(where, str) or Path(expand_env(where)).exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        overrides += [f"tasks[{i}].data.{key}={value}" for key, value in spec.example(folder / str(i)).items()]
    return overrides


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name)
def test_shipped_config_trains_two_steps(path, tmp_path):
    if needs_shared_data(path) and shared_data_dir() is None:
        pytest.skip("config reads ../shared/data, which this machine lacks")
    from omnissl.config import load_yaml

    data = load_yaml(path)
    overrides = ["engine.steps=2", f"logging.out_dir={tmp_path / 'run'}", "logging.progress=false", "eval.at_end=false", "eval.every=null"]
    overrides += user_data_overrides(data, tmp_path / "user-data")
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
