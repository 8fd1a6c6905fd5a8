"""Scale-out on PyTorch's own stack: FSDP2 sharding per block, regional compilation, DCP checkpoints.

- :func:`blocks` finds a model's repeated blocks: the children of every ``nn.ModuleList`` (transformer
  layers, GNN layers, conv stages), which is how every omnissl encoder and decoder holds its stack.
- :func:`shard` applies FSDP2 (``torch.distributed.fsdp.fully_shard``) to each block, then to the root,
  with a :class:`~torch.distributed.fsdp.MixedPrecisionPolicy` (bf16 parameters and fp32 gradient
  reduction when the run trains in bf16), as in torchtitan's ``apply_fsdp``.
- :func:`compile_blocks` compiles each block in place (regional compilation: one compiled graph reused for
  every identical layer, so start-up stays short), rather than the whole task.
- :func:`full_state` / :func:`load_full_state` gather and scatter full (unsharded) state dicts through
  ``torch.distributed.checkpoint.state_dict``, so a sharded run writes the same single-file checkpoint
  as a DDP run (``omnissl evaluate`` and ``export`` read it unchanged); :func:`save_sharded` /
  :func:`load_sharded` write and read ``torch.distributed.checkpoint`` (DCP) directories, one shard per
  process, for models too large to gather on one host.

Nothing here is home-made distribution: every collective is FSDP2's or DCP's.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard


def blocks(model: nn.Module) -> list[nn.Module]:
    """The children of every ``nn.ModuleList`` in ``model`` that hold parameters, outermost lists first.

    A block inside another block (a ModuleList inside a layer) is left to its enclosing block.
    """
    found: list[nn.Module] = []
    seen: set[int] = set()
    for _, module in model.named_modules():
        if id(module) in seen or not isinstance(module, nn.ModuleList):
            continue
        for child in module:
            if any(True for _ in child.parameters()):
                found.append(child)
                seen.update(id(m) for m in child.modules())
    return found


def mixed_precision(autocast_dtype: torch.dtype | None) -> MixedPrecisionPolicy:
    """bf16/fp16 parameters with fp32 gradient reduction when the run trains in low precision, else fp32."""
    if autocast_dtype is None:
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(param_dtype=autocast_dtype, reduce_dtype=torch.float32)


def shard(model: nn.Module, autocast_dtype: torch.dtype | None = None) -> nn.Module:
    """FSDP2: ``fully_shard`` each of :func:`blocks`, then the root; returns ``model`` (sharded in place).

    The root keeps what no block holds (embeddings, heads, norms). Build the optimizer afterwards: its
    parameters are then the sharded ``DTensor`` s.
    """
    policy = mixed_precision(autocast_dtype)
    for block in blocks(model):
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def compile_blocks(model: nn.Module, *, fullgraph: bool = False, backend: str = "inductor") -> list[nn.Module]:
    """Compile each of :func:`blocks` in place (``nn.Module.compile``); returns the compiled blocks.

    ``fullgraph=True`` makes a graph break an error, which is how the tests prove a block has no host sync
    or data-dependent branch.
    """
    found = blocks(model)
    for block in found:
        block.compile(fullgraph=fullgraph, backend=backend)
    return found


@contextmanager
def gathered(model: nn.Module):
    """Within: the root's own (non-block) parameters of a sharded ``model`` are gathered, so a submodule such
    as an encoder can be called outside the root's forward (a collective: every rank must enter)."""
    model.unshard()
    try:
        yield model
    finally:
        model.reshard()


_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Full model and optimizer state dicts of a sharded model, on the CPU (a collective: call on every rank)."""
    return get_state_dict(model, optimizer, options=_FULL)


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, model_state: dict[str, Any], optim_state: dict[str, Any]) -> None:
    """Scatter full state dicts (read by every rank) into a sharded model and its optimizer."""
    set_state_dict(model, optimizer, model_state_dict=model_state, optim_state_dict=optim_state, options=StateDictOptions(full_state_dict=True))


def save_sharded(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, extra: dict[str, Any] | None = None) -> Path:
    """Write a DCP checkpoint directory: each process writes its own shards (a collective)."""
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optim_state, **(extra or {})}, checkpoint_id=str(path))
    return Path(path)


def load_sharded(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, extra: dict[str, Any] | None = None) -> None:
    """Read a DCP directory written by :func:`save_sharded` into ``model``/``optimizer`` (and ``extra`` in place)."""
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optim_state, **(extra or {})}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
