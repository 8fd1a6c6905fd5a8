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
    """Writes ``metrics.jsonl`` under ``out_dir``; shows a progress bar with loss, samples/s and ETA."""

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
        if progress:
            self.bar = Progress(
                TextColumn("[bold]pretrain"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[rate]} samples/s"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
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
        if self.bar is not None and "loss" in metrics:
            loss = metrics.get("loss")
            self.bar.update(self.bar_task, completed=step, loss=f"{loss:.4f}" if isinstance(loss, float) else "-",
                            rate=f"{metrics.get('samples_per_s', 0):.0f}")

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
