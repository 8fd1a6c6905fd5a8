"""Metrics to JSONL (always), TensorBoard (optional) and a rich progress bar; host-side only.

A disk that refuses a write (full, read-only) raises :class:`~omnissl.errors.StorageError` naming the file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from omnissl.errors import storage_error


class MetricsLogger:
    """Writes ``metrics.jsonl`` under ``out_dir``; shows progress with loss, throughput and ETA.

    On a terminal the progress is a rich bar. Where stderr is not a terminal (``nohup``, a batch scheduler,
    output redirected to a file) a bar would only be drawn at the end, so every log interval prints one
    plain line instead. Throughput is steps/s, plus samples/s where a step holds more than one sample (a
    full-graph task's step is the whole dataset, so samples/s would say nothing).
    """

    def __init__(self, out_dir: Path, total_steps: int, start_step: int = 0, tensorboard: bool = False, progress: bool = True, enabled: bool = True):
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.file = None
        self.tb = None
        self.bar = None
        if not enabled:
            return
        self.path = out_dir / "metrics.jsonl"
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "a", buffering=1)
        except OSError as exc:
            raise storage_error(exc, self.path) from None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.console.print("[yellow]logging.tensorboard is on but tensorboard is not installed: pip install tensorboard[/]")
            else:
                self.tb = SummaryWriter(str(out_dir / "tensorboard"))
        self.total_steps, self.plain = total_steps, progress and not self.console.is_terminal
        self.last_step, self.start_time = start_step, time.perf_counter()
        if progress and not self.plain:
            self.bar = Progress(
                TextColumn("[bold]pretrain"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self.bar_task = self.bar.add_task("train", total=total_steps, completed=start_step, loss="-", rate="-")
            self.bar.start()
        self.last_time = time.perf_counter()

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            self.file.write(json.dumps({"step": step, "time": time.time(), **metrics}) + "\n")
        except OSError as exc:
            raise storage_error(exc, self.path) from None
        if self.tb is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, step)
        if "loss" not in metrics or not (self.bar is not None or self.plain):
            return
        now = time.perf_counter()
        steps_per_s = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        rate = f"{steps_per_s:.2f} steps/s"
        samples = metrics.get("samples_per_s", 0.0)
        if samples > 1.5 * steps_per_s:
            rate += f", {samples:,.0f} samples/s"
        loss = metrics.get("loss")
        loss_text = f"{loss:.4f}" if isinstance(loss, float) else "-"
        if self.bar is not None:
            self.bar.update(self.bar_task, completed=step, loss=loss_text, rate=rate)
        else:
            elapsed = now - self.start_time
            eta = (self.total_steps - step) / steps_per_s if steps_per_s > 0 else float("nan")
            print(f"step {step}/{self.total_steps}  loss {loss_text}  {rate}  elapsed {_clock(elapsed)}  eta {_clock(eta)}",
                  file=self.console.file, flush=True)

    def print(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)

    def table(self, title: str, rows: list[dict[str, Any]]) -> None:
        if not (self.enabled and rows):
            return
        table = Table(title=title)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        for col in columns:
            table.add_column(str(col))
        for row in rows:
            table.add_row(*(str(row.get(c, "")) for c in columns))
        # above a live progress bar, print through its console so the bar stays at the bottom
        (self.bar.console if self.bar is not None else Console()).print(table)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if self.tb is not None:
            self.tb.close()
        if self.file is not None:
            file, self.file = self.file, None
            try:
                file.close()
            except OSError:
                pass  # flushing a full disk again fails again; the error that stopped the run was already raised


def _clock(seconds: float) -> str:
    if seconds != seconds:  # NaN: no rate yet
        return "-"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{sec:02d}"
