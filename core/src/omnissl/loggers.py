"""Experiment-tracker callbacks: Weights & Biases and MLflow, selected in ``logging.callbacks``.

Each is an optional extra (``omnissl[wandb]``, ``omnissl[mlflow]``); the tracker is imported when the run
starts, so choosing one without its extra stops the run before training with an error that says what to
install. Both receive what the engine logs at each log interval (losses, RankMe, learning rate,
throughput, every evaluation's metrics), on the host, never inside the step, and the run config as
hyperparameters.

    logging:
      callbacks:
        - {name: core.wandb, project: my-ssl, mode: offline}        # offline: wandb sync later
        - {name: core.mlflow, experiment: my-ssl}                  # default store: OUT_DIR/mlruns

Only rank 0 builds callbacks' trackers, so a torchrun job makes one tracker run, not one per process.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from omnissl.errors import ConfigError
from omnissl.specs import BuildContext, ComponentConfig


def _require(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError as exc:
        raise ConfigError([f"logging.callbacks asks for {extra}, which needs the {module!r} package: "
                           f"pip install 'omnissl[{extra}]' (or remove the callback)"]) from exc


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"tasks": [{"lr": 1e-3}]}`` -> ``{"tasks.0.lr": 1e-3}``: names every tracker accepts as parameter keys."""
    if isinstance(config, (dict, list)) and config:
        items = config.items() if isinstance(config, dict) else enumerate(config)
        return {k: v for key, value in items for k, v in flatten(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): config}


class WandbConfig(ComponentConfig):
    """``project`` ("omnissl"), ``name`` (None: W&B picks), ``tags`` ([]), ``mode`` (None: ``$WANDB_MODE`` or
    online; ``offline`` writes under ``dir`` for a later ``wandb sync``), ``dir`` (None: the run's out_dir)."""

    project: str = "omnissl"
    name: str | None = None
    tags: list[str] = []
    mode: Literal["online", "offline", "disabled"] | None = None
    dir: str | None = None


class WandbCallback:
    """Logs every log interval's metrics to a W&B run at the engine's step; finishes the run at the end."""

    def __init__(self, cfg: WandbConfig):
        self.cfg, self.run = cfg, None

    def on_start(self, config: dict[str, Any], out_dir: Path) -> None:
        wandb = _require("wandb", "wandb")
        self.run = wandb.init(project=self.cfg.project, name=self.cfg.name, tags=self.cfg.tags, mode=self.cfg.mode,
                              dir=self.cfg.dir or str(out_dir), config=config, reinit="finish_previous")

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        if self.run is not None:
            self.run.log(dict(metrics), step=step)

    def on_end(self, step: int) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
            # wandb-core 0.31 can shut its writer down before the last records reach an offline run's file;
            # tearing the service down waits for it (a later run starts a new one)
            _require("wandb", "wandb").teardown()


class MLflowConfig(ComponentConfig):
    """``experiment`` ("omnissl"), ``run_name`` (None), ``tracking_uri`` (None: ``$MLFLOW_TRACKING_URI`` if set,
    else MLflow's local file store at ``OUT_DIR/mlruns``, viewable with ``mlflow ui --backend-store-uri``; any
    MLflow URI, such as a tracking server's ``http://...``)."""

    experiment: str = "omnissl"
    run_name: str | None = None
    tracking_uri: str | None = None


class MLflowCallback:
    """Logs the flattened run config as parameters and every interval's metrics at the engine's step."""

    def __init__(self, cfg: MLflowConfig):
        self.cfg, self.client, self.run_id = cfg, None, None

    def on_start(self, config: dict[str, Any], out_dir: Path) -> None:
        import os

        mlflow = _require("mlflow", "mlflow")
        uri = self.cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # MLflow 3 keeps the file store behind an opt-in; it needs no server and no database driver
            uri = (Path(out_dir).resolve() / "mlruns").as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = mlflow.tracking.MlflowClient(tracking_uri=uri)
        experiment = self.client.get_experiment_by_name(self.cfg.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(self.cfg.experiment)
        run = self.client.create_run(experiment_id, run_name=self.cfg.run_name)
        self.run_id = run.info.run_id
        params = [mlflow.entities.Param(k[:250], str(v)[:6000]) for k, v in flatten(config).items()]
        for start in range(0, len(params), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=params[start:start + 100])

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        if self.client is None:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        # MLflow metric names allow letters, digits and _-./ and spaces
        batch = [Metric(re.sub(r"[^\w\-./ ]", "_", k), float(v), now, step) for k, v in metrics.items() if isinstance(v, (int, float))]
        for start in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[start:start + 1000])

    def on_end(self, step: int) -> None:
        if self.client is not None:
            self.client.set_terminated(self.run_id)
            self.client = None


def build_wandb(cfg: WandbConfig, ctx: BuildContext) -> WandbCallback:
    _require("wandb", "wandb")  # at build time: a missing extra stops the run before anything is written
    return WandbCallback(cfg)


def build_mlflow(cfg: MLflowConfig, ctx: BuildContext) -> MLflowCallback:
    _require("mlflow", "mlflow")
    return MLflowCallback(cfg)
