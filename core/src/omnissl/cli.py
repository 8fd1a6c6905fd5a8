"""The ``omnissl`` command line.

Commands: ``pretrain CONFIG [key.path=value ...]``, ``validate CONFIG``, ``evaluate CHECKPOINT``,
``plugins [--json]``, ``configs list|copy``, ``config schema``, ``export CHECKPOINT [--format hf|safetensors]``, ``bench CONFIG``. User mistakes, bad
data, damaged checkpoints and disk faults (full, read-only) print one clear message (no traceback) and exit
with status 2; an interrupted run exits with ``128 + signal`` after writing a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from omnissl.errors import STORAGE_CAUSES, ConfigError, OmnisslError, storage_error


def _manager(args):
    from omnissl.plugins import get_plugin_manager

    return get_plugin_manager(strict=getattr(args, "strict_plugins", False))


def cmd_pretrain(args) -> int:
    from omnissl.config import load_config
    from omnissl.engine import Trainer

    pm = _manager(args)
    config = load_config(args.config, args.overrides, pm)
    result = Trainer(config, pm).fit(resume=args.resume, fallback=args.fallback_to_previous, force_out_dir=args.force_out_dir)
    print(f"finished {result.step} steps; checkpoint: {result.checkpoint}; metrics: {result.out_dir / 'metrics.jsonl'}")
    return 0


def cmd_validate(args) -> int:
    if not Path(args.config).is_file():  # before torch and the plugins load: a mistyped path answers at once
        raise ConfigError([f"config file not found: {args.config}"])
    from omnissl.config import load_config

    config = load_config(args.config, args.overrides, _manager(args))
    names = ", ".join(f"{t.name} ({t.objective.name} on {t.data.name})" for t in config.tasks)
    print(f"{args.config}: valid; tasks: {names}")
    return 0


def cmd_evaluate(args) -> int:
    from omnissl import checkpoint as ckpt
    from omnissl.config import load_config
    from omnissl.engine import Trainer

    checkpoint = Path(args.checkpoint)
    state = ckpt.load(checkpoint)
    ckpt.task_names(state, checkpoint)
    pm = _manager(args)
    # results go beside the checkpoint (or to --output), never to the out_dir recorded inside it
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    out = Path(args.output) if args.output else run_dir / f"evaluate-step{int(state['step'])}"
    config = load_config(json.loads(state["config"]), [*args.overrides, f"logging.out_dir={out}"], pm)
    trainer = Trainer(config, pm)
    trainer.model.load_state_dict(state["model"])
    trainer.step = int(state["step"])
    from omnissl.logger import MetricsLogger

    trainer.logger = MetricsLogger(trainer.out_dir, trainer.total_steps, trainer.step, progress=False)
    try:
        trainer.evaluate()
    finally:
        trainer.logger.close()
    print(f"evaluations written to {out / 'evals.jsonl'}")
    return 0


def cmd_plugins(args) -> int:
    pm = _manager(args)
    described = pm.describe()
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="omnissl plugins")
    for col in ("plugin", "distribution", "version", "status", "components"):
        table.add_column(col, overflow="fold")  # wrap long component names in narrow terminals instead of cutting them
    for p in described:
        comps = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["components"].items()) or p["error"]
        table.add_row(p["name"], p["distribution"], p["version"], p["status"], comps)
    Console().print(table)
    return 0


def _shipped_configs(pm) -> dict[str, object]:
    found = {}
    for folder in pm.config_dirs():
        if folder.is_dir():
            for item in folder.iterdir():
                if item.name.endswith((".yaml", ".yml")):
                    found[item.name] = item
    return found


def cmd_configs(args) -> int:
    from omnissl.errors import did_you_mean

    configs = _shipped_configs(_manager(args))
    if args.action == "list":
        for name in sorted(configs):
            print(name)
        return 0
    if args.name not in configs:
        raise OmnisslError(f"no shipped config named {args.name!r}{did_you_mean(args.name, configs)}; see `omnissl configs list`")
    dest = Path(args.dest or args.name)
    if dest.is_dir():
        dest = dest / args.name
    if dest.exists() and not args.force:
        raise OmnisslError(f"{dest} exists; pass --force to overwrite it")
    dest.write_text(configs[args.name].read_text())
    print(f"wrote {dest}")
    return 0


def cmd_config_schema(args) -> int:
    from omnissl.config import json_schema

    text = json.dumps(json_schema(_manager(args)), indent=2)
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text)
    return 0


def cmd_export(args) -> int:
    from omnissl.checkpoint import export_encoders, export_hf

    if args.format == "hf":
        out = args.output or str(Path(args.checkpoint).parent.parent / "export-hf")
        for path in export_hf(args.checkpoint, out, force=args.force, pm=_manager(args)):
            print(f"wrote {path} (load it with transformers.AutoModel.from_pretrained({str(path)!r}))")
        return 0
    out = args.output or str(Path(args.checkpoint).parent.parent / "export")
    for path in export_encoders(args.checkpoint, out, force=args.force):
        print(f"wrote {path}")
    return 0


def cmd_plot(args) -> int:
    from omnissl.plots import plot_run

    for path in plot_run(args.run_dir, args.output, embeddings=not args.no_embeddings, max_points=args.max_points):
        print(f"wrote {path}")
    return 0


def cmd_bench(args) -> int:
    if not Path(args.config).is_file():
        raise ConfigError([f"config file not found: {args.config}"])
    from omnissl.bench import format_result, run_bench

    result = run_bench(args.config, args.overrides, steps=args.steps, warmup=args.warmup, device=args.device, out_dir=args.out, json_path=args.json, pm=_manager(args))
    print(format_result(result))
    print(f"wrote {args.json}")
    return 0


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser that takes options before, between and after its positionals.

    ``omnissl evaluate CKPT -o DIR key=value`` would otherwise be refused: argparse fills ``overrides``
    (``nargs="*"``) with the empty run of positionals before ``-o`` and then rejects ``key=value``.
    ``parse_known_intermixed_args`` is argparse's own two-pass remedy; it cannot handle a parser that holds
    subcommands of its own (``config schema``), which keeps the ordinary parse.
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        nested = any(a.nargs in (argparse.PARSER, argparse.REMAINDER) for a in self._actions)
        if nested or self._intermixing:  # parse_known_intermixed_args calls back into this method
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


CORE_COMMANDS = ("pretrain", "validate", "evaluate", "plugins", "configs", "config", "export", "plot", "bench")


def build_parser(pm=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnissl", description="Self-supervised pretraining for every modality.",
        epilog="Plugins may add commands of their own; `omnissl plugins` lists the installed plugins and what they provide.",
    )
    parser.add_argument("--strict-plugins", action="store_true", help="fail when any plugin fails to load")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_CommandParser)

    p = sub.add_parser("pretrain", help="train from a run config")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides")
    p.add_argument(
        "--resume", nargs="?", const="last", default=None, metavar="auto|CHECKPOINT",
        help="continue from OUT_DIR/checkpoints/last.pt (an error if there is none), from CHECKPOINT, "
        "or with 'auto' from last.pt when it exists and from scratch otherwise",
    )
    p.add_argument("--fallback-to-previous", action="store_true",
                   help="if the checkpoint to resume fails its checksum, resume from the newest numbered checkpoint that verifies")
    p.add_argument("--force-out-dir", action="store_true",
                   help="write into a logging.out_dir that holds files but no omnissl run (the names a run writes are moved aside)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("validate", help="check a run config without training")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("evaluate", help="run a checkpoint's task evaluators (probes with their baselines)")
    p.add_argument("checkpoint")
    p.add_argument("overrides", nargs="*")
    p.add_argument("-o", "--output", "--out", dest="output",
                   help="folder for evals.jsonl (default: evaluate-step<N>/ in the checkpoint's run folder; the run's own evals.jsonl is never appended to)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("plugins", help="list plugins, their status and components")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("configs", help="example configs shipped inside plugins")
    p.add_argument("action", choices=["list", "copy"])
    p.add_argument("name", nargs="?")
    p.add_argument("dest", nargs="?")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_configs)

    p = sub.add_parser("config", help="config tools")
    csub = p.add_subparsers(dest="config_command", required=True)
    s = csub.add_parser("schema", help="JSON Schema of run configs, for editors")
    s.add_argument("-o", "--output")
    s.set_defaults(func=cmd_config_schema)

    p = sub.add_parser("export", help="export encoder weights: safetensors with the config beside them, or HF transformers folders")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output")
    p.add_argument("--format", choices=("safetensors", "hf"), default="safetensors",
                   help="hf: one transformers folder per task (AutoModel.from_pretrained loads it), for encoders with an HF counterpart")
    p.add_argument("--force", action="store_true", help="overwrite an earlier export in the output folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("plot", help="PNG figures of a run: losses, collapse signals, probes vs baselines, t-SNE maps")
    p.add_argument("run_dir", help="the run's logging.out_dir")
    p.add_argument("-o", "--output", help="folder for the figures (default: RUN_DIR/plots)")
    p.add_argument("--no-embeddings", action="store_true", help="skip the t-SNE maps (they load the last checkpoint and encode the data)")
    p.add_argument("--max-points", type=int, default=1500, help="samples per t-SNE map (default 1500)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("bench", help="throughput of a config: samples/s, step time, data-wait share, MFU, peak memory (JSON)")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, as for pretrain")
    p.add_argument("--steps", type=int, default=20, help="measured steps after the warm-up (default 20; rounded up to whole warm-up windows)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up steps, not measured: compilation, first allocations (default 5)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override engine.device")
    p.add_argument("--json", default="bench.json", help="where to write the results (default bench.json)")
    p.add_argument("--out", help="run folder to keep (default: a temporary folder, removed afterwards)")
    p.set_defaults(func=cmd_bench)

    if pm is not None:
        pm.add_cli_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    argv = sys.argv[1:] if argv is None else argv
    verbose = "-v" in argv or "--verbose" in argv
    try:
        parser = build_parser(None)
        command = next((a for a in argv if not a.startswith("-")), None)
        if command is not None and command not in CORE_COMMANDS:
            # a plugin's command: only now load the plugins (each imports torch), so that the core's
            # commands and --help start in a fraction of a second
            from omnissl.plugins import get_plugin_manager

            parser = build_parser(get_plugin_manager(strict="--strict-plugins" in argv))
        args = parser.parse_args(argv)
        if args.command == "configs" and args.action == "copy" and not args.name:
            parser.error("configs copy needs a NAME (see `omnissl configs list`)")
        return int(args.func(args) or 0)
    except OmnisslError as exc:
        if verbose:
            raise
        print(f"omnissl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if verbose or exc.errno not in STORAGE_CAUSES:
            raise
        print(f"omnissl: error: {storage_error(exc, action='accessing')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("omnissl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
