"""Shipped configs: listed through the plugin's config dir, valid, and each objective trains through the engine
on moving digits and on a folder of real encoded files (a few steps each)."""

from importlib.resources import files

import pytest

from omnissl.config import load_config
from omnissl.engine import run_config
from omnissl.plugins import PluginManager

CONFIG_DIR = files("omnissl_video") / "configs"
CONFIGS = sorted(p.name for p in CONFIG_DIR.iterdir() if p.name.endswith(".yaml"))
OBJECTIVES = ["videomae", "sigma", "crossvideomae"]
SMALL = ["engine.steps=2", "engine.batch_size=8", "engine.schedule.warmup_steps=1", "logging.progress=false"]


def test_every_objective_ships_a_digits_and_a_folder_config():
    assert {f"{src}_{obj}.yaml" for src in ("moving_digits", "folder") for obj in OBJECTIVES} <= set(CONFIGS)
    dirs = [str(d) for d in PluginManager().config_dirs()]
    assert any(d.endswith("omnissl_video/configs") for d in dirs)


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_validate(name, monkeypatch, tmp_path):
    monkeypatch.setenv("OMNISSL_VIDEO", str(tmp_path))
    load_config(str(CONFIG_DIR / name))


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_objective_trains_on_moving_digits(objective, tmp_path):
    overrides = SMALL + [f"logging.out_dir={tmp_path}", "tasks[0].data.num_clips=40", "eval.at_end=false"]
    result = run_config(str(CONFIG_DIR / f"moving_digits_{objective}.yaml"), overrides=overrides)
    assert result.step == 2 and all(v == v for v in result.metrics.values())  # finite, logged


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_objective_trains_on_a_folder_of_real_files(objective, videos, tmp_path):
    overrides = SMALL + [
        f"logging.out_dir={tmp_path / 'run'}", f"tasks[0].data.path={videos}", "tasks[0].data.num_frames=4", "tasks[0].data.stride=2",
        "tasks[0].data.size=32", "tasks[0].encoder.preset=micro", "tasks[0].encoder.patch_size=8", "engine.batch_size=4",
        # videomae decodes in a loader worker process, as the folder configs do (engine.workers: 8)
        f"engine.workers={1 if objective == 'videomae' else 0}", "tasks[0].eval[0].epochs=2", f"eval.at_end={'true' if objective == 'videomae' else 'false'}",
    ]
    if objective == "sigma":
        overrides += ["tasks[0].objective.num_prototypes=16", "tasks[0].objective.projector_dims=[32]"]
    result = run_config(str(CONFIG_DIR / f"folder_{objective}.yaml"), overrides=overrides)
    assert result.step == 2
    if objective == "videomae":
        (probe,) = result.evals
        assert {row["representation"] for row in probe.rows} == {"encoder", "random encoder", "raw pixels (time mean, 8x8)", "raw pixels (4 frames, 8x8)"}
        assert all(0.0 <= v <= 1.0 for v in probe.metrics.values())
