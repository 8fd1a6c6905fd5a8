"""T-JEPA on UCI Adult: probe accuracy against pretraining epochs, beside the random-encoder and raw baselines.

One pretraining run of ``plugins/tabular/src/omnissl_tabular/configs/adult_tjepa.yaml`` (overridable) writes a checkpoint every
``--every`` steps; each checkpoint's representation (the EMA target encoder's flattened tokens, what
``tabular.probe`` reads) is then probed with the config's probe, and so is the untrained initial model
(epoch 0). The raw-feature and random-encoder rows are computed once, in the same process, with the same
probe seeds. Beside each point: the collapse signals as the engine logged them before issue 19 (RankMe and
embedding std of the context encoder's uncentred mean token) and as they are read now (the same signals,
centred, on the representation the probe reads; ``omnissl.evaluation.monitors``).

The EMA momentum and the learning rate follow the schedule of the whole run, so the point at epoch ``e``
is epoch ``e`` of an ``--epochs`` run, not a run that stopped at ``e``.

Usage (depth 2: about 12 s per epoch on one idle CPU core, a few minutes on a loaded one)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tabular_tjepa_curve.py --epochs 20 --every 57 \\
        --probe-epochs 0,1,2,5,10,20 --out runs/tjepa_curve [tasks[0].encoder.depth=4 ...]

``--probe-epochs`` picks the checkpoints to probe by epoch (step ``round(epoch * every_per_epoch)``, with
``--every`` the checkpoint interval; 57 steps is one Adult epoch at batch 512). Both heads and the three
baselines' seeds follow the config's probe (``--heads``, ``--seeds`` override it). ``--train-only`` pretrains
and stops; ``--skip-train`` probes checkpoints already in ``--out``; ``--wait`` polls for the wanted
checkpoints while another process trains.

Writes ``<out>/curve.json`` after every point (so a stopped run keeps what it measured), ``<out>/curve.png``
(probe accuracy against pretraining epochs, the baselines as bands of mean ± std) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from omnissl import checkpoint as ckpt
from omnissl.config import load_config
from omnissl.engine import Trainer
from omnissl.evaluation.api import EvalRun
from omnissl.evaluation.monitors import collapse_metrics, embedding_std, monitored_representation, rankme
from omnissl.plugins import get_plugin_manager
from omnissl.specs import BuildContext
from omnissl_tabular.probe import TabularProbe, TabularProbeConfig

ROOT = Path(__file__).resolve().parents[1]


def signals(encoder, source, samples: int = 512) -> dict[str, float]:
    batch = source.batch(torch.arange(min(samples, len(source))))
    modules = [encoder, encoder.representation_encoder()]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    with torch.no_grad():
        pooled = encoder(batch).pooled
        probed = monitored_representation(encoder, batch)
    for m, mode in zip(modules, modes):
        m.train(mode)
    now = collapse_metrics(probed)
    return {
        "old_rankme": float(rankme(pooled)), "old_embedding_std": float(embedding_std(pooled)),
        "rankme": float(now["rankme"]), "embedding_std": float(now["embedding_std"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "plugins/tabular/src/omnissl_tabular/configs/adult_tjepa.yaml"))
    parser.add_argument("--epochs", type=float, default=16)
    parser.add_argument("--every", type=int, default=114, help="checkpoint interval in steps (57 steps = 1 Adult epoch at batch 512)")
    parser.add_argument("--out", default="runs/tjepa_curve")
    parser.add_argument("--seeds", type=int, default=3, help="probe seeds per point")
    parser.add_argument("--heads", default="linear,mlp", help="comma-separated probe heads (linear, mlp)")
    parser.add_argument("--skip-train", action="store_true", help="probe the checkpoints already in --out")
    parser.add_argument("--train-only", action="store_true", help="pretrain and stop (probe later with --skip-train)")
    parser.add_argument("--wait", action="store_true", help="with --skip-train: wait for each wanted checkpoint to appear")
    parser.add_argument("--probe-epochs", default="", help="comma-separated epochs to probe, as checkpoints every --every steps (0 = untrained)")
    parser.add_argument("--probe-steps", default="", help="comma-separated checkpoint steps to probe (default: all)")
    parser.add_argument("--final-only", action="store_true", help="probe only the last checkpoint (with --compare)")
    parser.add_argument("--compare", action="store_true",
                        help="also probe the last checkpoint's context encoder and mean-token (pooled) representations")
    parser.add_argument("--baselines-from", default="",
                        help="a curve.json of the same config, seed, probe and heads: reuse its raw, random and epoch-0 rows")
    parser.add_argument("--random-inits", type=int, default=0,
                        help="only probe this many more random encoders of the config (init seeds 10000 + i), the "
                             "random-encoder row's spread over initialisations; writes <out>/random_inits.json")
    parser.add_argument("overrides", nargs="*", help="config overrides, key.path=value")
    args = parser.parse_args()

    pm = get_plugin_manager()
    out = Path(args.out)
    run_overrides = [
        *args.overrides, f"engine.epochs={args.epochs}", f"engine.checkpoint.every={args.every}", "engine.checkpoint.keep=1000",
        "engine.checkpoint.every_minutes=null", "eval.at_end=false", f"logging.out_dir={out}", "logging.progress=false",
    ]
    if not args.skip_train:
        start = time.time()
        Trainer(load_config(args.config, run_overrides, pm), pm).fit(force_out_dir=True)
        print(f"pretraining: {time.time() - start:.0f} s")
        if args.train_only:
            return

    config = load_config(args.config, [*run_overrides[:-2], f"logging.out_dir={out / 'curve'}"], pm)
    trainer = Trainer(config, pm)
    task = config.tasks[0]
    source = trainer.sources[task.name]
    encoder = trainer.model.tasks[task.name].encoder
    probe_params = dict(task.eval[0].params) if task.eval else {}
    probe_params.update(heads=args.heads.split(","), seeds=args.seeds, baselines=[])
    probe = TabularProbe(TabularProbeConfig(**probe_params))
    steps_per_epoch = len(source) / config.engine.batch_size

    def probe_now(step: int, enc, baselines=()) -> dict[str, float]:
        probe.cfg = probe.cfg.model_copy(update={"baselines": list(baselines)})
        run = EvalRun(encoder=enc, data=source, device=trainer.device, random_encoder=trainer._random_encoder_builder(task), seed=config.seed, step=step)
        return probe(run).metrics

    heads = args.heads.split(",")
    if args.random_inits:
        inits = []
        for i in range(args.random_inits):
            torch.manual_seed(10_000 + i)
            enc = trainer.registry.get("encoders", task.encoder.name).build(task.encoder.params, BuildContext(data=source, seed=config.seed))
            metrics = probe_now(0, enc.to(trainer.device))
            inits.append({"init_seed": 10_000 + i, **{k.removeprefix("pretrained/"): v for k, v in metrics.items()}})
            print(json.dumps(inits[-1]), flush=True)
            out.mkdir(parents=True, exist_ok=True)
            (out / "random_inits.json").write_text(json.dumps({"overrides": run_overrides, "seeds": args.seeds, "inits": inits}, indent=1))
        for h in heads:
            means = torch.tensor([r[f"{h}/accuracy"] for r in inits])
            print(f"random encoders, {h}: " + ", ".join(f"{float(m):.4f}" for m in means) + f"; over inits {float(means.mean()):.4f} ± {float(means.std(unbiased=False)):.4f}")
        return
    points: list[dict] = []
    every_per_epoch = round(steps_per_epoch)  # checkpoint steps are multiples of --every; 57 = one Adult epoch
    wanted = [round(float(e) * every_per_epoch) for e in args.probe_epochs.split(",")] if args.probe_epochs else []
    if args.probe_steps:
        wanted = [int(s) for s in args.probe_steps.split(",")]
    result = {"config": args.config, "overrides": run_overrides, "seeds": args.seeds, "heads": heads, "baselines": {}, "points": points, "compared": {}}
    name = "compare.json" if args.final_only else "curve.json"

    def save() -> None:
        (out / name).write_text(json.dumps(result, indent=1))
        if not args.final_only:
            plot(result, out / "curve.png")

    if args.baselines_from:  # same architecture, seed and probe: the same random encoder, raw features and initial weights
        earlier = json.loads(Path(args.baselines_from).read_text())
        assert earlier["heads"] == heads and earlier["seeds"] == args.seeds, "--baselines-from: other heads or seeds"
        baselines = earlier["baselines"]
        result["baselines_from"] = args.baselines_from
    else:
        baselines = {} if args.final_only else probe_now(0, encoder, ("raw", "random"))
    result["baselines"] = baselines
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}  # the run's own initial weights (epoch 0)
    for step in wanted or [None]:
        if step == 0:
            path = None
        else:
            found = sorted((out / "checkpoints").glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
            if step is None:  # no list: every checkpoint (or the last with --final-only), after the initial model
                for p in [found[-1]] if args.final_only else [None, *found]:
                    probe_point(p, trainer, encoder, initial, source, probe_now, baselines, points, steps_per_epoch)
                    save()
                break
            path = out / "checkpoints" / f"step_{step:08d}.pt"
            while args.wait and not path.exists():
                time.sleep(10)
            if not path.exists():
                print(f"no checkpoint {path}; skipped", flush=True)
                continue
            time.sleep(1)  # the writer renames a finished file into place; give it a moment anyway
        probe_point(path, trainer, encoder, initial, source, probe_now, baselines, points, steps_per_epoch)
        save()
    compared = {}
    if args.compare:  # which representation should the probe read? the last checkpoint, read four ways
        for use_target in (True, False):
            for representation in ("flatten", "pooled"):
                probe.cfg = probe.cfg.model_copy(update={"use_target": use_target, "representation": representation})
                name = f"{'target' if use_target else 'context'} {representation}"
                compared[name] = {k: v for k, v in probe_now(points[-1]["step"], encoder).items() if k.startswith("pretrained/")}
                print(name, json.dumps(compared[name]), flush=True)
        probe.cfg = probe.cfg.model_copy(update={"use_target": True, "representation": "pooled"})
        compared["random encoder pooled"] = {k: v for k, v in probe_now(0, encoder, ("random",)).items() if k.startswith("random")}
        print("random encoder pooled", json.dumps(compared["random encoder pooled"]), flush=True)
    result["compared"] = compared
    save()

    print("\n| epoch | " + " | ".join(f"T-JEPA {h}" for h in heads) + " | RankMe (old / now) | emb. std (old / now) |")
    print("|---|" + "---|" * len(heads) + "---|---|")
    for p in points:
        accs = " | ".join(f"{p[f'pretrained/{h}/accuracy']:.4f} ± {p[f'pretrained/{h}/accuracy_std']:.4f}" for h in heads)
        print(f"| {p['epoch']} | {accs} | {p['old_rankme']:.2f} / {p['rankme']:.1f} | {p['old_embedding_std']:.4f} / {p['embedding_std']:.4f} |")
    for name in ("random_encoder", "raw_features") if baselines else ():
        accs = " | ".join(f"{baselines[f'{name}/{h}/accuracy']:.4f} ± {baselines[f'{name}/{h}/accuracy_std']:.4f}" for h in heads)
        print(f"| {name.replace('_', ' ')} | {accs} | | |")


def probe_point(path, trainer, encoder, initial, source, probe_now, baselines, points, steps_per_epoch) -> None:
    """Load checkpoint ``path`` (``None``: the run's initial weights) and append its probe and signals to ``points``."""
    trainer.model.load_state_dict(initial if path is None else ckpt.load(path)["model"])
    step = 0 if path is None else int(path.stem.split("_")[1])
    metrics = baselines if path is None and baselines else probe_now(step, encoder)
    point = {"step": step, "epoch": round(step / steps_per_epoch, 2), **signals(encoder, source)}
    point.update({k: v for k, v in metrics.items() if k.startswith("pretrained/")})
    points.append(point)
    print(json.dumps(point), flush=True)


def plot(result: dict, path: Path) -> None:
    """Probe accuracy against pretraining epochs, one panel per head; baselines as mean ± std bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads, points, base = result["heads"], sorted(result["points"], key=lambda p: p["step"]), result["baselines"]
    if not points:
        return
    fig, axes = plt.subplots(1, len(heads), figsize=(5 * len(heads), 3.6), squeeze=False)
    epochs = [p["epoch"] for p in points]
    for ax, head in zip(axes[0], heads):
        mean = [p[f"pretrained/{head}/accuracy"] for p in points]
        std = [p[f"pretrained/{head}/accuracy_std"] for p in points]
        ax.errorbar(epochs, mean, yerr=std, marker="o", capsize=3, label="T-JEPA (target encoder)")
        for key, colour in (("random_encoder", "tab:red"), ("raw_features", "tab:grey")):
            if f"{key}/{head}/accuracy" in base:
                m, s = base[f"{key}/{head}/accuracy"], base[f"{key}/{head}/accuracy_std"]
                ax.axhline(m, color=colour, lw=1, label=key.replace("_", " "))
                ax.axhspan(m - s, m + s, color=colour, alpha=0.15)
        ax.set(title=f"Adult, {head} probe ({result['seeds']} seeds)", xlabel="pretraining epoch", ylabel="test accuracy")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

if __name__ == "__main__":
    main()
