"""The shipped configs validate, and the quickstart trains a few steps through the engine with the probe."""

from pathlib import Path

import pytest

from omnissl.config import load_config
from omnissl.engine import run_config

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "plugins/speech/src/omnissl_speech/configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_validate(path):
    load_config(path)


def test_quickstart_runs(tmp_path):
    result = run_config(
        Path(__file__).resolve().parents[3] / "plugins/speech/src/omnissl_speech/configs" / "synthetic_tera.yaml",
        overrides=[
            "engine.steps=2", "engine.schedule.warmup_steps=1", "engine.batch_size=8", f"logging.out_dir={tmp_path}", "logging.progress=false",
            "tasks[0].data.num_utterances=24", "tasks[0].eval[0].epochs=2",
        ],
    )
    (probe,) = result.evals
    names = {row["representation"] for row in probe.rows}
    assert {"encoder", "random encoder", "log-mel mean", "MFCC mean+std"} <= names
    assert all(0.0 <= v <= 1.0 for v in probe.metrics.values())
