"""Atomic, checksummed checkpoints and their export (safetensors, or HF transformers folders).

A checkpoint holds everything needed to continue a run exactly: model (encoders, view generators,
objectives with their heads and EMA teachers, shared modules), optimizer, scheduler, gradient scaler,
each task's data position, the task sampler's and the global RNG states, and the step. It is written to a
temporary file in the same folder, flushed to disk, then renamed over the old one, so an interrupted write
never replaces the previous good checkpoint. Loading uses ``torch.load(weights_only=True)``: a checkpoint
cannot execute code.

Checksums: :func:`save_atomic` stores, under the key ``checksums``, a BLAKE2b digest of every tensor
(its dtype, shape and bytes, keyed by its path such as ``model.tasks.toy.encoder.net.0.weight``) and one
digest of every other value (step, config, stream positions). :func:`load` recomputes them and refuses a
file that differs, naming the first tensor that does. This detects damage after the write (a flipped bit,
a partial copy); it is not a signature: someone who edits a checkpoint can recompute the digests.
torch's zip reader does not check the CRC of tensor records, which is why a corrupted tensor loaded
silently before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from omnissl.errors import CheckpointError, OmnisslError, storage_error

log = logging.getLogger("omnissl.checkpoint")

CHECKSUM_KEY = "checksums"
ALGORITHM = "blake2b-128"
TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")  # TaskConfig.name: safe as a file-name part


def _leaves(obj: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _leaves(value, f"{path}[{i}]")
    else:
        yield path, obj


def _tensor_digest(t: torch.Tensor) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
    if t.layout != torch.strided:
        t = t.coalesce() if t.is_sparse else t.to_dense()
        parts = [t.indices(), t.values()] if t.is_sparse else [t]
    else:
        parts = [t]
    for part in parts:
        flat = part.detach().to("cpu").contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return h.hexdigest()


def checksums(state: dict[str, Any]) -> dict[str, Any]:
    """Digests of ``state`` (without its own ``checksums`` entry): one per tensor, one for everything else."""
    tensors, other = {}, hashlib.blake2b(digest_size=16)
    for path, value in _leaves({k: v for k, v in state.items() if k != CHECKSUM_KEY}, ""):
        if isinstance(value, torch.Tensor):
            tensors[path] = _tensor_digest(value)
        else:
            other.update(f"{path}={value!r};".encode())
    return {"algorithm": ALGORITHM, "tensors": tensors, "other": other.hexdigest()}


def verify(state: dict[str, Any], path: Path) -> None:
    """Raise :class:`CheckpointError` naming ``path`` and the first damaged value if a digest differs."""
    stored = state.get(CHECKSUM_KEY)
    if stored is None:
        log.warning("omnissl: checkpoint %s has no checksums (written by an older omnissl); it cannot be verified", path)
        return
    if not isinstance(stored, dict) or stored.get("algorithm") != ALGORITHM:
        raise CheckpointError(f"checkpoint {path}: unknown checksum format; it was not written by this omnissl")
    now = checksums(state)
    bad = [k for k in stored["tensors"].keys() | now["tensors"].keys() if stored["tensors"].get(k) != now["tensors"].get(k)]
    if now["other"] != stored["other"]:
        bad.append("(step, config or positions)")
    if bad:
        shown = ", ".join(sorted(bad)[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(
            f"checkpoint {path} is corrupt: {shown} differ{'s' if len(bad) == 1 else ''} from the checksum written with it "
            "(the file changed after it was saved). Restore it from a copy, or resume from an earlier checkpoint "
            "(--resume PATH, or --fallback-to-previous to take the newest numbered one that verifies)."
        )


def save_atomic(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` with its checksums to ``path`` via a temporary file and ``os.replace``; returns ``path``.

    A disk that refuses the write raises :class:`StorageError` naming the cause; the temporary file is
    removed and the previous file at ``path`` is untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            torch.save({**state, CHECKSUM_KEY: checksums(state)}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise storage_error(exc, path) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load(path: str | Path) -> dict[str, Any]:
    """Load and verify a checkpoint safely; a missing, unreadable or damaged file is a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc)[:300]}. It is truncated, damaged or not an omnissl checkpoint."
        ) from None
    if not isinstance(state, dict) or not {"step", "model", "config"} <= state.keys():
        raise CheckpointError(f"{path} is not an omnissl checkpoint (no step, model and config)")
    verify(state, path)
    state.pop(CHECKSUM_KEY, None)
    return state


def numbered(checkpoint_dir: Path) -> list[Path]:
    """The numbered checkpoints ``step_<N>.pt`` of a run, newest first."""
    return sorted(Path(checkpoint_dir).glob("step_*.pt"), reverse=True)


def load_with_fallback(path: Path, fallback: bool) -> tuple[Path, dict[str, Any], list[str]]:
    """Load ``path``; if it is damaged and ``fallback``, the newest numbered checkpoint beside it that verifies.

    Returns the path loaded, its state and one note per skipped file.
    """
    try:
        return path, load(path), []
    except CheckpointError as exc:
        if not fallback:
            raise
        notes = [f"skipped {path}: {exc}"]
        for candidate in numbered(path.parent):
            if candidate == path:
                continue
            try:
                state = load(candidate)
            except CheckpointError as later:
                notes.append(f"skipped {candidate}: {later}")
                continue
            return candidate, state, [*notes, f"resuming from {candidate}, the newest numbered checkpoint that verifies"]
        raise CheckpointError(f"{exc}\nNo numbered checkpoint in {path.parent} verifies either (keep some with engine.checkpoint.keep).") from None


def task_names(state: dict[str, Any], path: Path) -> list[str]:
    """The task names a checkpoint's config lists, each checked to be a valid task name (they become file names)."""
    try:
        names = [t["name"] for t in json.loads(state["config"])["tasks"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: its stored config is unreadable ({type(exc).__name__}: {exc})") from None
    bad = [n for n in names if not isinstance(n, str) or not TASK_NAME.match(n)]
    if bad:
        raise CheckpointError(f"checkpoint {path} names tasks {bad!r}, which are not valid task names; it was not written by omnissl or was altered")
    return names


EXPORT_FILES = ("config.yaml",)


def export_encoders(checkpoint: str | Path, out_dir: str | Path, force: bool = False) -> list[Path]:
    """Write each task's encoder weights as ``encoder_<task>.safetensors`` plus ``config.yaml`` beside them.

    An existing export in ``out_dir`` is an error unless ``force``; ``out_dir`` must not be a file.
    """
    import yaml

    checkpoint = Path(checkpoint)
    state = load(checkpoint)
    names = task_names(state, checkpoint)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OmnisslError(f"export: {out} is a file; give -o a folder (it is created if missing)")
    targets = [out / f"encoder_{n}.safetensors" for n in names] + [out / name for name in EXPORT_FILES]
    existing = [p.name for p in targets if p.exists()]
    if existing and not force:
        raise OmnisslError(f"export: {out} already holds {', '.join(existing)}; pass --force to overwrite, or -o another folder")
    config = json.loads(state["config"])
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for task, name in zip(config["tasks"], names):
            prefix = f"tasks.{name}.encoder."
            weights = {k.removeprefix(prefix): v.contiguous().clone() for k, v in state["model"].items() if k.startswith(prefix)}
            if not weights:
                continue
            path = out / f"encoder_{name}.safetensors"
            save_file(weights, str(path), metadata={"task": name, "encoder": task["encoder"]["name"], "step": str(state["step"])})
            written.append(path)
        (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    except OSError as exc:
        raise storage_error(exc, out) from None
    written.append(out / "config.yaml")
    return written


def export_hf(checkpoint: str | Path, out_dir: str | Path, force: bool = False, pm=None) -> list[Path]:
    """Write each task's encoder as a transformers checkpoint folder ``out_dir/<task>/`` (``--format hf``).

    The encoder's plugin does the writing through ``EncoderSpec.hf_export`` (the core imports no plugin);
    an encoder whose spec has none is an error that names the encoders which have one. The run's model is
    rebuilt from the checkpoint's config (its data sources too, since encoders may size themselves from
    them) and the checkpoint's weights loaded into it, as ``omnissl evaluate`` does.
    """
    import tempfile

    from omnissl.config import load_config
    from omnissl.engine import Trainer
    from omnissl.plugins import get_plugin_manager

    checkpoint = Path(checkpoint)
    state = load(checkpoint)
    names = task_names(state, checkpoint)
    config = json.loads(state["config"])
    pm = pm or get_plugin_manager()
    encoders = pm.registry.specs["encoders"]
    with_hf = sorted(n for n, spec in encoders.items() if getattr(spec, "hf_export", None) is not None)
    for task, name in zip(config["tasks"], names):
        spec = encoders.get(task["encoder"]["name"])
        if spec is None or spec.hf_export is None:
            raise OmnisslError(
                f"export --format hf: task {name!r} uses encoder {task['encoder']['name']!r}, which has no HF transformers "
                f"counterpart (encoders with one: {', '.join(with_hf) or 'none installed'}); use --format safetensors"
            )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OmnisslError(f"export: {out} is a file; give -o a folder (it is created if missing)")
    existing = [n for n in names if (out / n / "config.json").exists()]
    if existing and not force:
        raise OmnisslError(f"export: {out} already holds an HF export of {', '.join(existing)}; pass --force to overwrite, or -o another folder")
    with tempfile.TemporaryDirectory(prefix="omnissl-export-") as scratch:  # whatever building the run writes stays out of the run folder
        trainer = Trainer(load_config(config, [f"logging.out_dir={scratch}", "logging.progress=false"], pm), pm)
        trainer.model.load_state_dict(state["model"])
        written = []
        try:
            for task, name in zip(config["tasks"], names):
                module = trainer.model.tasks[name]
                folder = out / name
                folder.mkdir(parents=True, exist_ok=True)
                encoders[task["encoder"]["name"]].hf_export(module.encoder.cpu().eval(), folder, module.objective.cpu())
                written.append(folder)
        except OSError as exc:
            raise storage_error(exc, out) from None
    return written
