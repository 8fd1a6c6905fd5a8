"""The training engine: one loop for every domain, readable top to bottom in :meth:`Trainer.fit`.

Per step: pick a task, take its next index batch, collate it (a gather on the device for resident data),
make views on the device, compute the objective under autocast, scale and backpropagate (with gradient
accumulation), clip, step the optimizer and the schedule, update teachers, and accumulate metrics on the
device. The host reads metrics only every ``logging.log_every`` steps.

Randomness: the view generator is re-seeded every step from ``(seed, step, rank)``, so views are a pure
function of where the run is (exact resume, and identical views for a sample whatever the process
count); data order comes from a permutation seeded by ``(seed, task, epoch)``; dropout uses the global
torch RNG, whose state is checkpointed.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from omnissl import checkpoint as ckpt
from omnissl import accounting, distributed, parallel, rundir
from omnissl.config import RunConfig, load_config, resume_changes
from omnissl.device import move_to_device
from omnissl.errors import CheckpointError, ConfigError, OmnisslError, TrainingError, storage_error
from omnissl.evaluation.api import EvalResult, EvalRun
from omnissl.evaluation.selection import Selection
from omnissl.interfaces import ObjectiveOutput, Progress
from omnissl.logger import MetricsLogger
from omnissl.nn.loss_balancing import LossBalancer
from omnissl.optim import build_optimizer
from omnissl.plugins import PluginManager, get_plugin_manager
from omnissl.positions import CollateDataset, StreamSampler, TaskSampler, TaskStream
from omnissl.schedules import lr_multiplier
from omnissl.specs import BuildContext


class Interrupted(OmnisslError):
    """SIGINT/SIGTERM stopped the run after writing a checkpoint; ``exit_code`` is ``128 + signal``."""

    def __init__(self, signum: int, step: int, path: Path | None, during_eval: bool = False):
        self.exit_code = 128 + signum
        written = f"checkpoint written to {path}" if path else "rank 0 wrote the checkpoint"
        where = "during the evaluation " if during_eval else ""
        then = f"Evaluate it with `omnissl evaluate {path}`, or continue" if during_eval and path else "Continue"
        super().__init__(f"interrupted by {signal.Signals(signum).name} {where}at step {step}; {written}. {then} with `omnissl pretrain CONFIG --resume`.")


class _Signalled(BaseException):
    """Raised by the signal handlers during an evaluation, which has no step boundary to stop at."""

    def __init__(self, signum: int):
        self.signum = signum


@dataclass
class RunResult:
    """What a finished run returns: the final step, last logged metrics, evaluations and modules."""

    step: int
    out_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    evals: list[EvalResult] = field(default_factory=list)
    checkpoint: Path | None = None
    model: nn.Module | None = None
    best: dict[str, Any] | None = None  # eval.select: best.json's content (step, value, metrics there)


class TaskModule(nn.Module):
    """One task's encoder, view generator and objective: ``forward(batch, generator) -> ObjectiveOutput``."""

    def __init__(self, encoder: nn.Module, views: nn.Module, objective: nn.Module):
        super().__init__()
        self.encoder, self.views, self.objective = encoder, views, objective

    def forward(self, batch: Any, generator: torch.Generator) -> ObjectiveOutput:
        return self.objective(self.encoder, self.views(batch, generator))


class RunModel(nn.Module):
    """Every module of a run, so one DDP wrapper and one state dict cover them all.

    ``forward(task, batch, generator) -> (ObjectiveOutput, loss to backpropagate)``: the second is the
    objective's loss, through the :class:`LossBalancer` when ``engine.loss_balancing`` is set (inside the
    forward, so DDP sees the balancer's parameters used).
    """

    def __init__(self, shared: dict[str, nn.Module], tasks: dict[str, TaskModule], balancer: LossBalancer | None = None):
        super().__init__()
        self.shared = nn.ModuleDict(shared)
        self.tasks = nn.ModuleDict(tasks)
        if balancer is not None:  # absent otherwise, so single-task checkpoints keep their keys
            self.balancer = balancer
        self.compiled: dict[str, Any] = {}

    def forward(self, task: str, batch: Any, generator: torch.Generator) -> tuple[ObjectiveOutput, Tensor]:
        out = self.compiled.get(task, self.tasks[task])(batch, generator)
        balancer = getattr(self, "balancer", None)
        return out, (balancer(task, out.loss) if balancer is not None else out.loss)


def _device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise OmnisslError("engine.device is 'cuda' but no CUDA device is available; use device: auto or cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class Trainer:
    """Builds a run from a validated :class:`RunConfig` and trains it (:meth:`fit`)."""

    def __init__(self, config: RunConfig, pm: PluginManager | None = None):
        self.config = config
        self.pm = pm or get_plugin_manager()
        self.registry = self.pm.registry
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not distributed.is_distributed():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() and config.engine.device != "cpu" else "gloo")
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.device = _device(config.engine.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.out_dir = Path(config.logging.out_dir)
        # what out_dir held before datasets (which may write there, like the recsys id map) were built
        self._found_in_out_dir = rundir.listing(self.out_dir) if self.rank == 0 else []
        self._build()

    # ------------------------------------------------------------------------------------------- build
    def _build(self) -> None:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        shared = {name: self.registry.get("encoders", ref.name).build(ref.params, BuildContext(seed=cfg.seed)) for name, ref in cfg.shared.items()}
        self.sources, self.evaluators, tasks = {}, {}, {}
        for task in cfg.tasks:
            ctx = BuildContext(shared=shared, seed=cfg.seed)
            source = self.registry.get("datasets", task.data.name).build(task.data.params, ctx)
            # with loader workers, collation happens in worker processes on the CPU; pinned batches move per step
            self.sources[task.name] = source if cfg.engine.workers else source.to(self.device)
            ctx.data = self.sources[task.name]
            encoder = self.registry.get("encoders", task.encoder.name).build(task.encoder.params, ctx)
            ctx.encoder = encoder
            views = self.registry.get("view_generators", task.views.name).build(task.views.params, ctx)
            objective = self.registry.get("objectives", task.objective.name).build(task.objective.params, ctx)
            tasks[task.name] = TaskModule(encoder, views, objective)
            self.evaluators[task.name] = [(ref.name, self.registry.get("evaluators", ref.name).build(ref.params, ctx)) for ref in task.eval]
        self.callbacks = [self.registry.get("callbacks", ref.name).build(ref.params, BuildContext(seed=cfg.seed)) for ref in cfg.logging.callbacks]
        balancer = LossBalancer(cfg.engine.loss_balancing, list(tasks)) if cfg.engine.loss_balancing != "none" else None
        self.model = RunModel(shared, tasks, balancer).to(self.device)
        if self.device.type == "cuda" and self.world > 1:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if cfg.engine.compile:  # regional: each block (omnissl.parallel.blocks) compiled once, not each whole task
            parallel.compile_blocks(self.model)
        self.ddp = None
        self.fsdp = self.world > 1 and cfg.engine.strategy == "fsdp"
        if self.fsdp:
            parallel.shard(self.model, _autocast_dtype(cfg.engine.precision, self.device))
        elif self.world > 1:
            self.ddp = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=len(tasks) > 1,
            )
        eng = cfg.engine
        self.streams = {
            t.name: TaskStream(len(self.sources[t.name]), t.batch_size or eng.batch_size, cfg.seed + 1000 * i, self.rank, self.world, self.device)
            for i, t in enumerate(cfg.tasks)
        }
        first = self.streams[cfg.tasks[0].name]
        self.total_steps = eng.steps or max(1, math.ceil(eng.epochs * first.steps_per_epoch / eng.accumulate))
        self.sampler = TaskSampler(
            eng.task_sampling, [t.name for t in cfg.tasks], [len(self.sources[t.name]) for t in cfg.tasks], [t.weight for t in cfg.tasks], cfg.seed
        )
        self.optimizer = build_optimizer(eng.optimizer, self.model.named_parameters(), self.device, self._lr_scales())
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_multiplier(eng.schedule, self.total_steps))
        self.autocast_dtype = _autocast_dtype(eng.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self.view_generator = torch.Generator(device=self.device)
        self.step = 0
        ev = cfg.eval
        self.selection = Selection(ev.select, ev.direction(), ev.patience) if ev.select else None

    def _lr_scales(self) -> dict[int, float]:
        """``id(param) -> tasks[i].lr_multiplier`` for each task's own parameters; shared modules keep the base rate."""
        shared = {id(p) for p in self.model.shared.parameters()}
        scales = {}
        for task in self.config.tasks:
            if task.lr_multiplier != 1.0:
                scales.update({id(p): task.lr_multiplier for p in self.model.tasks[task.name].parameters() if id(p) not in shared})
        return scales

    # -------------------------------------------------------------------------------------- checkpoints
    def state_dict(self, full: tuple[dict, dict] | None = None) -> dict[str, Any]:
        """``full``: the gathered (model, optimizer) state of a sharded run (:func:`parallel.full_state`)."""
        return {
            "step": self.step,
            "model": full[0] if full else self.model.state_dict(),
            "optimizer": full[1] if full else self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "streams": {name: s.state_dict() for name, s in self.streams.items()},
            "sampler": self.sampler.state_dict(),
            "rng": {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "config": self.config.model_dump_json(),
            "selection": self.selection.state_dict() if self.selection else None,
        }

    def load_state_dict(self, state: dict[str, Any], source: Path | str = "the checkpoint") -> list[str]:
        """Restore a checkpoint; returns one line per config change it allowed (see :func:`config.resume_changes`).

        A change that would not continue the same run (model, data, views, objective, optimizer, ...) is a
        :class:`CheckpointError` listing every differing key, raised before any state is touched.
        """
        try:
            saved = json.loads(state["config"])
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{source}: its stored config is unreadable ({exc})") from None
        allowed, refused = resume_changes(saved, self.config)
        if refused:
            lines = "\n".join(f"  - {line}" for line in refused)
            raise CheckpointError(
                f"cannot resume from {source}: the config differs from the one saved in it in {len(refused)} "
                f"key{'s' if len(refused) > 1 else ''} that change what is trained:\n{lines}\n"
                "Resume with the config that wrote it, or start a fresh run (without --resume) in another logging.out_dir. "
                "Length (engine.steps/epochs), logging, evaluation and checkpointing may change on resume."
            )
        step = int(state["step"])
        if step >= self.total_steps:
            allowed.append(f"the checkpoint is at step {step}, at or past the {self.total_steps} steps of this config: no step is trained")
        if self.fsdp:  # every rank read the full checkpoint; each keeps its shards
            parallel.load_full_state(self.model, self.optimizer, state["model"], state["optimizer"])
        else:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        for name, s in state["streams"].items():
            self.streams[name].load_state_dict(s)
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["rng"]["cpu"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.step = step
        if self.selection and (note := self.selection.load_state_dict(state.get("selection"))):
            allowed.append(note)
        return [f"resume: {line}" for line in allowed]

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/last.pt`` (and a numbered copy if ``checkpoint.keep``) on rank 0."""
        path = None
        full = parallel.full_state(self.model, self.optimizer) if self.fsdp else None  # a collective: every rank
        if self.rank == 0:
            self._check_finite()
            state = self.state_dict(full)
            path = ckpt.save_atomic(state, self.out_dir / "checkpoints" / "last.pt")
            keep = self.config.engine.checkpoint.keep
            if keep:
                ckpt.save_atomic(state, self.out_dir / "checkpoints" / f"step_{self.step:08d}.pt")
                for old in sorted((self.out_dir / "checkpoints").glob("step_*.pt"))[:-keep]:
                    old.unlink()
            self.last_checkpoint = path
        self.last_save_time = time.monotonic()
        if self.world > 1:
            dist.barrier()
        return path

    # ----------------------------------------------------------------------------------------- the loop
    def fit(self, resume: str | Path | None = None, *, fallback: bool = False, force_out_dir: bool = False) -> RunResult:
        """Train to ``engine.steps``; ``resume``: ``"last"`` (must exist), ``"auto"`` (if it exists) or a path.

        Before anything is written: the checks that need the built run pass (:meth:`_preflight`), the lock on
        ``out_dir`` is taken (:class:`rundir.RunLock`; it creates the folder and the lock file), and the
        checkpoint to resume is verified and its config compared with this one. ``fallback`` resumes from the
        newest numbered checkpoint that verifies when the chosen one does not; ``force_out_dir`` writes into a
        folder that holds files but no run.
        """
        self.last_checkpoint: Path | None = None
        self.last_save_time = time.monotonic()
        lock = rundir.RunLock(self.out_dir)
        self._preflight()
        notes: list[str] = list(self.preflight_notes)
        try:
            notes += self._on_rank0(lambda: [w for w in [lock.acquire()] if w])
            notes += self._resume(resume, fallback)
            notes += self._on_rank0(lambda: self._prepare_out_dir(force_out_dir))
            return self._train(notes)
        finally:
            lock.release()

    def _on_rank0(self, fn) -> list[str]:
        """Run ``fn`` on rank 0 only; every rank learns whether it failed, so none waits for the others forever."""
        error, result = None, []
        if self.rank == 0:
            try:
                result = fn()
            except OmnisslError as exc:
                error = exc
        if self.world > 1:
            flag = torch.tensor([error is not None], dtype=torch.int32, device=self.device)
            dist.broadcast(flag, src=0)  # start-up only: one sync, before the first step
            if error is None and flag.item():
                raise OmnisslError("rank 0 could not start the run (its message says why); this rank stops too")
        if error is not None:
            raise error
        return result

    def _resume(self, resume: str | Path | None, fallback: bool) -> list[str]:
        """Load the checkpoint to continue from, if any; returns notes to print once the log is open."""
        if resume is None:
            return []
        last = self.out_dir / "checkpoints" / "last.pt"
        if str(resume) in ("auto", "last"):
            if not last.is_file() and not (fallback and ckpt.numbered(last.parent)):
                if str(resume) == "auto":
                    return [f"--resume auto: no checkpoint at {last}; starting a fresh run"]
                raise CheckpointError(
                    f"--resume: nothing to resume, there is no checkpoint at {last}. Run without --resume to start a "
                    "fresh run, pass --resume auto to resume only when a checkpoint exists, or --resume PATH for another checkpoint."
                )
            path = last
        else:
            path = Path(resume)
        path, state, notes = ckpt.load_with_fallback(path, fallback)
        notes += self.load_state_dict(state, path)
        self.last_checkpoint = path
        return notes

    def _preflight(self) -> None:
        """What can only be known once the run is built, checked before anything is written."""
        problems, self.preflight_notes = [], []
        batchnorm = nn.modules.batchnorm._BatchNorm
        for i, task in enumerate(self.config.tasks):
            stream = self.streams[task.name]
            module = self.model.tasks[task.name]
            norms = [n for n, m in module.named_modules() if isinstance(m, batchnorm)]
            if len(self.sources[task.name]) > 1 and stream.global_batch // self.world == 1 and norms:
                problems.append(
                    f"tasks[{i}] ({task.name!r}): one sample per batch per process (batch size {stream.global_batch}, "
                    f"{self.world} process{'es' if self.world > 1 else ''}), but {norms[0]} is a BatchNorm layer, which needs more "
                    "than one sample per batch in training; use a larger engine.batch_size"
                )
        if self.fsdp and any(self.evaluators.values()) and (self.config.eval.at_end or self.config.eval.every):
            problems.append(
                "engine.strategy: fsdp across processes cannot run the evaluators in the run (they run on rank 0 alone, and "
                "a sharded encoder needs every rank); set eval.at_end=false and eval.every=null, then evaluate the "
                "checkpoint with `omnissl evaluate CHECKPOINT` (it holds the full, unsharded weights)"
            )
        if problems:
            raise ConfigError(problems)
        warmup = self.config.engine.schedule.warmup_steps
        if warmup and warmup >= self.total_steps:  # the schedules clamp it; a smoke test with engine.steps=2 is legitimate
            self.preflight_notes.append(
                f"[yellow]engine.schedule.warmup_steps={warmup} is not less than the run's {self.total_steps} steps: "
                "the learning rate never leaves warm-up[/]"
            )

    def _prepare_out_dir(self, force: bool) -> list[str]:
        """Rank 0: archive an earlier run (fresh) or tidy after a kill (resume); mark the folder; write config.json."""
        notes = []
        if self.last_checkpoint is not None and self.last_checkpoint.resolve().parent == (self.out_dir / "checkpoints").resolve():
            for tmp in rundir.remove_stale_temporaries(self.out_dir / "checkpoints"):
                notes.append(f"removed {tmp.name}, a partial checkpoint left by a killed run")
            for log_name in ("metrics.jsonl", "evals.jsonl"):
                if n := rundir.roll_back_log(self.out_dir / log_name, self.step):
                    aside = log_name.replace(".jsonl", ".rolled-back.jsonl")
                    notes.append(f"moved {n} line{'s' if n > 1 else ''} of {log_name} logged after step {self.step} (past the checkpoint) to {aside}")
            notes += self._roll_back_best()
        else:  # a fresh run, or a checkpoint from elsewhere continued here: the folder must be free or an earlier run
            moved = rundir.prepare_fresh(self.out_dir, self._found_in_out_dir, force)
            if moved is not None:
                notes.append(f"{self.out_dir} held an earlier run; its files are now in {moved} (pass --resume to continue a run instead)")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            rundir.write_marker(self.out_dir)
            (self.out_dir / "config.json").write_text(self.config.model_dump_json(indent=2))
        except OSError as exc:
            raise storage_error(exc, self.out_dir / "config.json") from None
        return notes

    def _roll_back_best(self) -> list[str]:
        """A ``best.pt`` written after the resumed checkpoint's step is past it: remove it and choose afresh."""
        best = self.out_dir / "checkpoints" / "best.pt"
        if self.selection is None or not best.is_file():
            return []
        try:
            step = json.loads((self.out_dir / "best.json").read_text())["step"]
        except (OSError, ValueError, KeyError):
            step = None
        if step is not None and step <= self.step:
            return []
        best.unlink()
        (self.out_dir / "best.json").unlink(missing_ok=True)
        self.selection.best_value = self.selection.best_step = None
        self.selection.best_metrics, self.selection.stale = {}, 0
        return [f"removed checkpoints/best.pt and best.json (from step {step}, past the checkpoint at step {self.step}); "
                "the best evaluation is chosen afresh from here"]

    def _train(self, notes: list[str]) -> RunResult:
        cfg, eng = self.config, self.config.engine
        self.logger = MetricsLogger(self.out_dir, self.total_steps, self.step, cfg.logging.tensorboard, cfg.logging.progress, enabled=self.rank == 0)
        for note in notes:
            self.logger.print(note)
        if self.rank == 0:
            for name, source in self.sources.items():
                if hasattr(source, "describe"):
                    self.logger.print(f"data {name!r}: {source.describe()}")
            for callback in self.callbacks:
                if hasattr(callback, "on_start"):
                    callback.on_start(json.loads(cfg.model_dump_json()), self.out_dir)
        self._init_metrics()
        self.accounting = accounting.Accounting(self.device, self._count_flops() if eng.count_flops and not self.fsdp else {}, accounting.device_peak_tflops(self.device, eng.peak_tflops))
        self.loaders = {name: self._loader(name) for name in self.streams} if eng.workers else {}
        stop = distributed.StopAgreement()
        previous = self._install_signal_handlers(stop.signals)
        net = self.ddp or self.model
        start_time, start_step = time.perf_counter(), self.step
        every_s = eng.checkpoint.every_minutes * 60 if eng.checkpoint.every_minutes else None
        evals: list[EvalResult] = []
        stopped = bool(self.selection and self.selection.exhausted)  # resumed from a run that had stopped early
        if stopped:
            self.logger.print(f"eval.patience: the checkpoint's run had already stopped early at step {self.step}; no step is trained")
        try:
            while self.step < self.total_steps and not stopped:
                # rank 0's clock decides a timed checkpoint; the agreement makes every rank save at the same step
                timed = every_s is not None and self.rank == 0 and time.monotonic() - self.last_save_time >= every_s
                signum, save_now = stop.check(timed)
                if signum:
                    raise Interrupted(signum, self.step, self.save_checkpoint())
                if save_now and self.step > 0:
                    self.save_checkpoint()
                name = self.sampler.next()
                task = self.model.tasks[name]
                weight = 1.0 if eng.task_sampling == "weighted" else self.config_task(name).weight
                self.view_generator.manual_seed((cfg.seed * 1_000_003 + self.step) * 1009 + self.rank)
                for micro in range(eng.accumulate):
                    indices = self.streams[name].next()  # the loader's workers produce the same batches ahead
                    batch = self.accounting.fetch(
                        lambda: move_to_device(next(self.loaders[name]) if self.loaders else self.sources[name].batch(indices), self.device)
                    )
                    self.accounting.count(name)
                    if self.fsdp:
                        self.model.set_requires_gradient_sync(micro == eng.accumulate - 1)
                    sync = nullcontext() if self.ddp is None or micro == eng.accumulate - 1 else self.ddp.no_sync()
                    with sync:
                        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
                            out, loss = net(name, batch, self.view_generator)
                        self.scaler.scale(loss * (weight / eng.accumulate)).backward()
                    self._accumulate_metrics(name, out, indices.numel() * self.world)
                if eng.on_nonfinite == "skip" and not torch.isfinite(out.loss):  # one host sync per step, by choice
                    self.optimizer.zero_grad(set_to_none=True)
                    self.logger.print(f"[yellow]task {name!r}: non-finite loss at step {self.step + 1}; step skipped[/]")
                    self.step += 1
                    continue
                if eng.clip_grad_norm is not None:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), eng.clip_grad_norm, foreach=True)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
                self.step += 1
                self.accounting.step_done()
                task.objective.after_step(Progress(step=self.step, total_steps=self.total_steps))
                if self.step % cfg.logging.log_every == 0 or self.step == self.total_steps:
                    self._log(start_time, start_step)
                # before the checkpoint of the same step, so that checkpoint holds this evaluation's selection state
                if cfg.eval.every and self.step % cfg.eval.every == 0 and self.step < self.total_steps:
                    evals = self._evaluate_interruptibly(checkpoint=None)
                    stopped = self._select(evals)
                if eng.checkpoint.every and self.step % eng.checkpoint.every == 0:
                    self.save_checkpoint()
            if signum := stop.final_check():  # a signal during the last step: honour it, do not evaluate
                raise Interrupted(signum, self.step, self.save_checkpoint())
            final = self.save_checkpoint()
            if cfg.eval.at_end and not stopped:  # an early stop has just evaluated this step
                evals = self._evaluate_interruptibly(checkpoint=final)
                if self.selection:
                    self._select(evals)
                    final = self.save_checkpoint()  # again, so a later --resume knows this evaluation too
            best = None
            if self.selection and self.rank == 0:
                self.logger.print(self.selection.report())
                best = self.selection.summary()
            for callback in self.callbacks if self.rank == 0 else []:
                callback.on_end(self.step)
            return RunResult(step=self.step, out_dir=self.out_dir, metrics=self.last_metrics, evals=evals, checkpoint=final, model=self.model, best=best)
        finally:
            stop.finish()  # every rank started the same reductions; none is left in flight
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.logger.close()

    def _evaluate_interruptibly(self, checkpoint: Path | None) -> list[EvalResult]:
        """Run the evaluators with signal handlers that stop them (an evaluation has no step boundary to wait for).

        SIGINT/SIGTERM during an evaluation raise :class:`Interrupted` with ``128 + signal``: mid-run, after
        writing a checkpoint at this step; at the end, naming the final checkpoint already written.
        """
        def stop(signum, frame):
            raise _Signalled(signum)

        previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: leave signals to the caller
            pass
        try:
            return self.evaluate()
        except _Signalled as sig:
            for s, handler in previous.items():  # a second signal while saving must not cut the save
                signal.signal(s, handler)
            raise Interrupted(sig.signum, self.step, checkpoint or self.save_checkpoint(), during_eval=True) from None
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _select(self, results: list[EvalResult]) -> bool:
        """``eval.select``: keep ``best.pt`` and ``best.json`` when this evaluation is the best; True to stop early.

        Rank 0 evaluates and decides; the other ranks learn whether to stop from one broadcast (at evaluation
        time only, never inside a step).
        """
        if self.selection is None:
            return False
        stop, error = False, None
        if self.rank == 0:
            try:
                stop = self._select_on_rank0(results)
            except OmnisslError as exc:  # the other ranks must hear of it, or they wait at the broadcast forever
                error = exc
        if self.world > 1:
            flag = torch.tensor([2 if error is not None else int(stop)], dtype=torch.int32, device=self.device)
            dist.broadcast(flag, src=0)  # evaluation time only
            if error is None and flag.item() == 2:
                raise OmnisslError("rank 0 could not select the best evaluation (its message says why); this rank stops too")
            stop = bool(flag.item())
        if error is not None:
            raise error
        return stop

    def _select_on_rank0(self, results: list[EvalResult]) -> bool:
        flat = {f"{r_task}/{r.name}/{k}": v for r_task, r in self._eval_tasks(results) for k, v in r.metrics.items()}
        if self.selection.update(self.step, flat):
            ckpt.save_atomic(self.state_dict(), self.out_dir / "checkpoints" / "best.pt")
            try:
                (self.out_dir / "best.json").write_text(json.dumps(self.selection.summary(), indent=2, default=str))
            except OSError as exc:
                raise storage_error(exc, self.out_dir / "best.json") from None
        stop = self.selection.exhausted and self.step < self.total_steps
        if stop:
            self.logger.print(
                f"eval.patience: {self.selection.key} has not improved for {self.selection.stale} evaluations "
                f"(best {self.selection.best_value:.4g} at step {self.selection.best_step}); stopping early at step {self.step}"
            )
        return stop

    def _eval_tasks(self, results: list[EvalResult]) -> list[tuple[str, EvalResult]]:
        """Each result with its task's name, in the order :meth:`evaluate` ran them."""
        names = [task.name for task in self.config.tasks for _ in self.evaluators[task.name]]
        return list(zip(names, results, strict=True))

    def _loader(self, name: str):
        # its own generator: the loader's worker seeds must not draw from the global RNG, which the checkpoint
        # restores before this loader exists on a resume but after it on a fresh start (dropout would diverge)
        loader = torch.utils.data.DataLoader(
            CollateDataset(self.sources[name]), sampler=StreamSampler(self.streams[name]), batch_size=None,
            num_workers=self.config.engine.workers, pin_memory=self.device.type == "cuda", prefetch_factor=4,
            persistent_workers=True, generator=torch.Generator().manual_seed(self.config.seed),
        )
        return iter(loader)

    def config_task(self, name: str):
        return next(t for t in self.config.tasks if t.name == name)

    def _install_signal_handlers(self, stop_signal: list[int]) -> dict:
        previous = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda signum, frame: stop_signal.append(signum))
        except ValueError:  # not the main thread: leave signals to the caller
            pass
        return previous

    # ------------------------------------------------------------------------------------------ metrics
    def _init_metrics(self) -> None:
        zero = lambda: torch.zeros((), device=self.device)  # noqa: E731
        self.sums = {name: {"loss": zero()} for name in self.streams}
        self.counts = {name: 0 for name in self.streams}
        self.samples = 0
        self.first_bad_step = {name: torch.full((), -1, dtype=torch.long, device=self.device) for name in self.streams}
        self.last_metrics: dict[str, float] = {}
        self.last_log_time, self.last_log_step = time.perf_counter(), self.step

    def _accumulate_metrics(self, name: str, out: ObjectiveOutput, samples: int) -> None:
        sums = self.sums[name]
        loss = out.loss.detach().float()
        sums["loss"] += loss
        for key, value in out.logs.items():
            sums[key] = sums.get(key, torch.zeros((), device=self.device)) + value.detach().float()
        bad = self.first_bad_step[name]
        self.first_bad_step[name] = torch.where((bad < 0) & ~torch.isfinite(loss), torch.full_like(bad, self.step + 1), bad)
        self.counts[name] += 1
        self.samples += samples

    def _check_finite(self) -> None:
        """Stop on a non-finite loss seen since the last check (one host sync, at log and checkpoint time)."""
        if self.config.engine.on_nonfinite != "stop":
            return
        names = list(self.first_bad_step)
        bad = torch.stack([self.first_bad_step[n] for n in names]).tolist()
        for name, step in zip(names, bad):
            if step >= 0:
                last = f"last good checkpoint: {self.last_checkpoint}" if self.last_checkpoint else "no checkpoint was written yet"
                raise TrainingError(
                    f"task {name!r}: non-finite loss at step {step}; training stopped ({last}). Lower the learning rate, "
                    "enable engine.clip_grad_norm, or set engine.on_nonfinite: skip."
                )

    def _monitor(self) -> dict[str, Tensor]:
        from omnissl.evaluation.monitors import collapse_metrics, monitored_representation

        out = {}
        for name, source in self.sources.items():
            encoder = self.model.tasks[name].encoder
            idx = torch.arange(min(len(source), self.config.engine.monitor_samples), device=self.device)
            was_training = encoder.training
            encoder.eval()
            with torch.no_grad(), parallel.gathered(self.model) if self.fsdp else nullcontext():
                z = monitored_representation(encoder, move_to_device(source.batch(idx), self.device))  # what the probes read
            encoder.train(was_training)
            if z.shape[0] > self.config.engine.monitor_samples:  # node-level: one graph, many nodes
                z = z[: self.config.engine.monitor_samples]
            if not bool(torch.isfinite(z).all()):  # at log time only; an SVD cannot take inf/NaN (weights blew up)
                nan = torch.full((), float("nan"), device=z.device)
                out.update({f"{name}/rankme": nan, f"{name}/embedding_std": nan})
                continue
            out.update({f"{name}/{k}": v for k, v in collapse_metrics(z).items()})
        return out

    def _count_flops(self) -> dict[str, int]:
        """FLOPs of one micro-batch of each task on this process, counted on a copy (see :mod:`omnissl.accounting`)."""
        flops = {}
        for name, stream in self.streams.items():
            local = stream.global_batch // self.world
            batch = move_to_device(self.sources[name].batch(torch.arange(local, device=self.device) if not self.config.engine.workers else torch.arange(local)), self.device)
            generator = torch.Generator(device=self.device).manual_seed(self.config.seed)

            def forward(task: nn.Module) -> Tensor:
                with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
                    return task(batch, generator).loss

            try:
                flops[name] = accounting.task_flops(self.model.tasks[name], forward)
            except Exception as exc:  # noqa: BLE001 - an op FlopCounterMode or deepcopy cannot take: log no tflops, say why
                self.logger.print(f"[yellow]task {name!r}: FLOPs not counted ({type(exc).__name__}: {exc}); tflops and mfu are not logged[/]")
        return flops

    def _callbacks_on_log(self, metrics: dict[str, float]) -> None:
        """Callbacks see what rank 0 logs (one tracker run per job, not one per process)."""
        for callback in self.callbacks if self.rank == 0 else []:
            callback.on_log(self.step, metrics)

    def _log(self, start_time: float, start_step: int) -> None:
        self._check_finite()
        eng = self.config.engine
        device_values: dict[str, Tensor] = {}
        for name, sums in self.sums.items():
            if self.counts[name]:
                device_values.update({(f"{name}/{k}" if len(self.sums) > 1 or k != "loss" else k): v / self.counts[name] for k, v in sums.items()})
        if (balancer := getattr(self.model, "balancer", None)) is not None:  # what each task's loss is divided by
            device_values.update({f"{n}/loss_scale": v for n, v in balancer.scales().items() if self.counts[n]})
        if self.world > 1 and device_values:  # report the global-batch mean, not rank 0's share
            stacked = distributed.all_reduce_sum(torch.stack(list(device_values.values()))) / self.world
            device_values = dict(zip(device_values, stacked))
        monitor_every = eng.monitor_every or self.config.logging.log_every
        if (self.rank == 0 or self.fsdp) and self.step % monitor_every == 0:  # sharded: every rank runs the forward
            monitored = self._monitor()
            if self.rank == 0:
                device_values.update(monitored)
        keys = list(device_values)
        values = torch.stack([device_values[k] for k in keys]).tolist() if keys else []  # the one host sync
        now = time.perf_counter()
        metrics = dict(zip(keys, values))
        if len(self.sums) > 1:
            metrics["loss"] = sum(metrics[f"{n}/loss"] for n in self.sums if f"{n}/loss" in metrics) / max(1, sum(1 for n in self.sums if self.counts[n]))
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        metrics["samples_per_s"] = self.samples / max(now - self.last_log_time, 1e-9)
        metrics.update(self.accounting.read())  # host-side timers and counters, read after the sync above
        self.last_metrics = metrics
        self.logger.log(self.step, metrics)
        self._callbacks_on_log(metrics)
        floor = eng.collapse_floor
        for key, value in metrics.items():
            if floor and key.endswith(("/rankme", "/embedding_std")) and value < floor:
                self.logger.print(f"[yellow]collapse warning at step {self.step}: {key} = {value:.4g} < collapse_floor {floor}[/]")
        for sums in self.sums.values():
            for v in sums.values():
                v.zero_()
        self.counts = {n: 0 for n in self.counts}
        self.samples, self.last_log_time = 0, now

    # --------------------------------------------------------------------------------------- evaluation
    def evaluate(self) -> list[EvalResult]:
        results: list[EvalResult] = []
        if self.rank == 0:
            for task in self.config.tasks:
                for name, evaluator in self.evaluators[task.name]:
                    run = EvalRun(
                        encoder=self.model.tasks[task.name].encoder, data=self.sources[task.name], device=self.device,
                        random_encoder=self._random_encoder_builder(task), seed=self.config.seed, step=self.step, task=task.name,
                    )
                    result = evaluator(run)
                    results.append(result)
                    flat = {f"eval/{task.name}/{result.name}/{k}": v for k, v in result.metrics.items()}
                    self.logger.log(self.step, flat)
                    self._callbacks_on_log(flat)
                    self.logger.table(f"{task.name}: {result.name} (step {self.step})", result.rows)
            try:
                with open(self.out_dir / "evals.jsonl", "a") as fh:
                    for t, r in self._eval_tasks(results):
                        fh.write(json.dumps({"step": self.step, "task": t, "name": r.name, "metrics": r.metrics, "rows": r.rows}, default=str) + "\n")
            except OSError as exc:
                raise storage_error(exc, self.out_dir / "evals.jsonl") from None
        if self.world > 1:
            dist.barrier()
        return results

    def _random_encoder_builder(self, task):
        def build():
            state = torch.get_rng_state()
            torch.manual_seed(self.config.seed + 99991)
            ctx = BuildContext(data=self.sources[task.name], shared={}, seed=self.config.seed)
            shared_refs = {k: v for k, v in task.encoder.params.items() if isinstance(v, str) and v.startswith("@shared.")}
            for key, ref in shared_refs.items():
                name = ref.removeprefix("@shared.")
                spec = self.config.shared[name]
                ctx.shared[name] = self.registry.get("encoders", spec.name).build(spec.params, ctx)
            encoder = self.registry.get("encoders", task.encoder.name).build(task.encoder.params, ctx).to(self.device)
            torch.set_rng_state(state)
            return encoder

        return build


def run_config(
    config: str | Path | dict | RunConfig,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    resume: str | Path | None = None,
    fallback: bool = False,
    force_out_dir: bool = False,
    pm: PluginManager | None = None,
) -> RunResult:
    """Validate ``config`` (a path, a mapping or a :class:`RunConfig`) and train it (see :meth:`Trainer.fit`)."""
    pm = pm or get_plugin_manager()
    if not isinstance(config, RunConfig):
        config = load_config(config, overrides, pm)
    trainer = Trainer(config, pm)
    try:
        return trainer.fit(resume=resume, fallback=fallback, force_out_dir=force_out_dir)
    finally:
        if distributed.is_distributed() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            dist.destroy_process_group()
