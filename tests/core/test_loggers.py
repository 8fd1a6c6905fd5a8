"""Experiment trackers as callbacks: W&B in offline mode and MLflow with a local file store, through a real run."""

import json

import pytest

from omnissl.config import load_config
from omnissl.engine import run_config
from omnissl.loggers import flatten
from omnissl.testing.toy import toy_run_config


def _config(tmp_path, callback):
    cfg = toy_run_config(str(tmp_path / "run"), steps=10)
    cfg["tasks"][0]["eval"] = [{"name": "core.knn_probe", "seeds": 1}]
    cfg["eval"] = {"every": None, "at_end": True}
    cfg["logging"]["callbacks"] = [callback]
    return load_config(cfg)


def test_mlflow_local_store_holds_params_training_and_eval_metrics(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="omnissl[mlflow] extra not installed")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # set by the callback too; restored after the test
    run_config(_config(tmp_path, {"name": "core.mlflow", "experiment": "omnissl-test"}))
    client = mlflow.tracking.MlflowClient(tracking_uri=(tmp_path / "run" / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("omnissl-test").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["engine.optimizer.lr"] == "0.003" and run.data.params["tasks.0.name"] == "toy"
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == [5, 10]
    logged = {json.loads(line)["step"]: json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if "loss" in line}
    assert [m.value for m in losses] == pytest.approx([logged[5], logged[10]])
    assert "eval/toy/knn_probe/random/test_acc" in run.data.metrics


def test_wandb_offline_run_is_written_under_the_out_dir(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="omnissl[wandb] extra not installed")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_config(_config(tmp_path, {"name": "core.wandb", "project": "omnissl-test", "mode": "offline"}))
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (log,) = offline.glob("run-*.wandb")  # W&B's record log, synced later by `wandb sync`
    records = log.read_bytes()
    assert b"samples_per_s" in records and b"eval/toy/knn_probe/random/test_acc" in records  # training and eval metrics
    assert b"optimizer" in records and b"toy.clusters" in records  # the run config


def test_a_missing_extra_stops_the_run_before_it_writes(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    from omnissl.errors import ConfigError

    with pytest.raises(ConfigError, match=r"omnissl\[wandb\]"):
        run_config(_config(tmp_path, {"name": "core.wandb"}))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_flatten_names_nested_keys_and_list_items():
    assert flatten({"a": {"b": 1, "c": [{"d": 2}, 3]}, "e": []}) == {"a.b": 1, "a.c.0.d": 2, "a.c.1": 3, "e": []}
