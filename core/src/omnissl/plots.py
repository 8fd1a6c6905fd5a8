"""Figures of a finished (or running) run: ``omnissl plot RUN_DIR``.

Reads what the engine writes — ``metrics.jsonl`` (training logs and every evaluation's metrics) and, for
the embedding maps, ``checkpoints/last.pt`` — and writes PNG files into ``RUN_DIR/plots`` (or ``out``):

- ``training.png``: per task, the objective's logged terms against the step, and the learning rate;
- ``collapse.png``: per task, RankMe (effective rank of the batch embeddings) and the embedding standard
  deviation, the two label-free collapse signals (a collapsed encoder drives both towards their floor);
- ``probes.png``: every probe metric across evaluations, the encoder against the surface-feature and
  random-encoder baselines of the same evaluation, with the spread over probe seeds as a band;
- ``embedding_<task>.png``: a t-SNE map (scikit-learn) of the pooled embeddings of up to ``max_points``
  samples, coloured by the task's first label set, beside the same map for a random encoder of the same
  architecture, so the structure pretraining added is visible against what the architecture gives alone.

matplotlib and scikit-learn are the ``omnissl[plot]`` extra; nothing here is imported by training.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from omnissl.errors import DataError

COLLAPSE_KEYS = ("rankme", "embedding_std")
# evaluators name their representations in their own words (encoder, ssl, pretrained; surface, raw_features,
# raw pixels, log-mel; random, random_encoder; supervised): a keyword decides which of the four each is
ROLES = (("random encoder", ("random",)), ("supervised", ("supervised", "scratch")),
         ("surface features", ("surface", "raw", "pixel", "voxel", "mel", "mfcc", "feature", "popularity")),
         ("pretrained encoder", ("encoder", "ssl", "pretrained")))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` in step order; a step logged twice (a resumed run) keeps its last record."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise DataError(f"{run_dir} has no metrics.jsonl: point `omnissl plot` at a run's out_dir (logging.out_dir)")
    records: dict[tuple[int, tuple[str, ...]], dict] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill mid-write: the rest of the file is still valid
        if "step" in record:
            records[(int(record["step"]), tuple(sorted(k for k in record if k != "time")))] = record
    return [records[k] for k in sorted(records, key=lambda k: k[0])]


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _grid(plt, rows: int, cols: int, width: float = 5.0, height: float = 3.2):
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    return fig, axes


def _training_figure(plt, records: list[dict], tasks: list[str], path: Path) -> Path:
    fig, axes = _grid(plt, 1, len(tasks) + 1)
    for ax, task in zip(axes[0], tasks):
        keys = sorted({k for r in records for k in r if k.startswith(f"{task}/") and k.split("/", 1)[1] not in COLLAPSE_KEYS})
        for key in keys:
            ax.plot(*_series(records, key), label=key.split("/", 1)[1])
        ax.set(title=f"{task}: objective", xlabel="step")
        if keys:
            ax.legend(fontsize=8)
    ax = axes[0][-1]
    ax.plot(*_series(records, "lr"), color="black")
    ax.set(title="learning rate", xlabel="step")
    return _save(fig, path)


def _collapse_figure(plt, records: list[dict], tasks: list[str], path: Path) -> Path:
    fig, axes = _grid(plt, 1, 2)
    for col, (name, title) in enumerate((("rankme", "RankMe (effective rank)"), ("embedding_std", "embedding std"))):
        ax = axes[0][col]
        for task in tasks:
            steps, values = _series(records, f"{task}/{name}")
            if steps:
                ax.plot(steps, values, label=task)
        ax.set(title=title, xlabel="step")
        if len(tasks) > 1:
            ax.legend(fontsize=8)
    return _save(fig, path)


def _role(segment: str) -> str | None:
    word = segment.lower()
    return next((role for role, keys in ROLES if any(k in word for k in keys)), None)


def _probe_figure(plt, records: list[dict], path: Path) -> Path | None:
    """One panel per (task, evaluator, metric), one line per representation role, spread over seeds as a band."""
    panels: dict[tuple[str, ...], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for key, value in r.items():
            parts = key.split("/")
            if parts[0] != "eval" or len(parts) < 4 or key.endswith("_std") or not isinstance(value, (int, float)):
                continue
            rest = parts[3:]
            roles = [(i, _role(p)) for i, p in enumerate(rest[:-1])]
            where = next(((i, role) for i, role in roles if role), None)
            if where is None:
                continue
            panel = (parts[1], parts[2], *(p for i, p in enumerate(rest) if i != where[0]))
            panels[panel][where[1]].append((r["step"], value, r.get(f"{key}_std", 0.0)))
    tested = {k: v for k, v in panels.items() if any(w in k[-1] for w in ("test", "acc", "auc", "recall", "ndcg"))}
    panels = tested or panels
    if not panels:
        return None
    cols = min(3, len(panels))
    fig, axes = _grid(plt, math.ceil(len(panels) / cols), cols)
    for ax, (panel, reps) in zip(axes.flat, sorted(panels.items())):
        for role, _ in reversed(ROLES):
            if role not in reps:
                continue
            steps, mean, std = zip(*sorted(reps[role]))
            line = ax.plot(steps, mean, marker="o", label=role)[0]
            ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], color=line.get_color(), alpha=0.2)
        ax.set(title=f"{panel[0]}: {' / '.join(panel[1:])}", xlabel="step")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    return _save(fig, path)


def _embedding_figures(plt, run_dir: Path, out: Path, max_points: int, seed: int) -> list[Path]:
    import torch
    from sklearn.manifold import TSNE

    from omnissl import checkpoint as ckpt
    from omnissl.config import load_config
    from omnissl.data import encode_all
    from omnissl.engine import Trainer

    path = run_dir / "checkpoints" / "last.pt"
    if not path.is_file():
        return []
    state = ckpt.load(path)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(load_config(json.loads(state["config"]), [f"logging.out_dir={scratch}", "engine.device=cpu"]))
        trainer.model.load_state_dict(state["model"])
        written = []
        for task in trainer.config.tasks:
            source = trainer.sources[task.name]
            labels = getattr(source, "labels", None) or {}
            if not labels:
                continue
            label_name, label = next(iter(labels.items()))
            encoder = trainer.model.tasks[task.name].encoder
            random_encoder = trainer._random_encoder_builder(task)()
            feats = {"pretrained encoder": encode_all(encoder, source, device="cpu"), "random encoder": encode_all(random_encoder, source, device="cpu")}
            n = feats["pretrained encoder"].shape[0]
            if n != label.shape[0] or n < 5:
                continue
            pick = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_points]
            colours = label.cpu()[pick].numpy()
            fig, axes = _grid(plt, 1, 2, width=5.0, height=4.5)
            for ax, (name, x) in zip(axes[0], feats.items()):
                points = TSNE(2, init="pca", random_state=seed, perplexity=min(30.0, (len(pick) - 1) / 3)).fit_transform(x[pick].numpy())
                ax.scatter(points[:, 0], points[:, 1], c=colours, cmap="tab10" if colours.max() < 10 else "viridis", s=6)
                ax.set(title=f"{task.name}: {name} (t-SNE, colour = {label_name})", xticks=[], yticks=[])
            written.append(_save(fig, out / f"embedding_{task.name}.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_run(run_dir: str | Path, out: str | Path | None = None, embeddings: bool = True, max_points: int = 1500, seed: int = 0) -> list[Path]:
    """Write the run's figures (see the module docstring) and return their paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise DataError("omnissl plot needs matplotlib: pip install 'omnissl[plot]'") from exc
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    out = Path(out) if out else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    tasks = sorted({k.split("/", 1)[0] for r in records for k in r if "/" in k and not k.startswith("eval/")})
    written = [_training_figure(plt, records, tasks, out / "training.png"), _collapse_figure(plt, records, tasks, out / "collapse.png")]
    probes = _probe_figure(plt, records, out / "probes.png")
    written += [probes] if probes else []
    if embeddings:
        written += _embedding_figures(plt, run_dir, out, max_points, seed)
    return written
