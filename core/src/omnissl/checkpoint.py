"""Atomic checkpoints and safetensors export.

A checkpoint holds everything needed to continue a run exactly: model (encoders, view generators,
objectives with their heads and EMA teachers, shared modules), optimizer, scheduler, gradient scaler,
each task's data position, the task sampler's and the global RNG states, and the step. It is written to a
temporary file in the same folder, flushed to disk, then renamed over the old one, so an interrupted write
never replaces the previous good checkpoint. Loading uses ``torch.load(weights_only=True)``: a checkpoint
cannot execute code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from omnissl.errors import OmnisslError


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` to ``path`` via a temporary file and ``os.replace``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely; a missing or corrupt file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise OmnisslError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise OmnisslError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}. Is it an omnissl checkpoint?") from None


def export_encoders(checkpoint: str | Path, out_dir: str | Path) -> list[Path]:
    """Write each task's encoder weights as ``encoder_<task>.safetensors`` plus ``config.yaml`` beside them."""
    import yaml

    state = load(checkpoint)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads(state["config"])
    written = []
    for task in config["tasks"]:
        prefix = f"tasks.{task['name']}.encoder."
        weights = {k.removeprefix(prefix): v.contiguous().clone() for k, v in state["model"].items() if k.startswith(prefix)}
        if not weights:
            continue
        path = out / f"encoder_{task['name']}.safetensors"
        save_file(weights, str(path), metadata={"task": task["name"], "encoder": task["encoder"]["name"], "step": str(state["step"])})
        written.append(path)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    written.append(out / "config.yaml")
    return written
