"""Every hook an omnissl plugin can implement.

A plugin is a module (or object) with functions decorated by ``omnissl.hookimpl``, exposed through the
``omnissl`` entry-point group::

    [project.entry-points.omnissl]
    mydomain = "omnissl_mydomain.plugin"

Registration hooks yield frozen spec records (:mod:`omnissl.specs`); the plugin manager records which
distribution provided each one, rejects duplicate names and builds the registry. Hooks run once at
start-up; nothing in the training step calls a hook. The examples below are runnable: each defines a
plugin, registers it on a fresh manager and looks the component up.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources.abc import Traversable
from typing import Any

import pluggy

from omnissl.specs import (
    CallbackSpec,
    DatasetSpec,
    EncoderSpec,
    EvaluatorSpec,
    ModalitySpec,
    ObjectiveSpec,
    ViewGeneratorSpec,
)

PROJECT = "omnissl"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def omnissl_modalities() -> Iterable[ModalitySpec]:
    """Register modalities: a batch schema with ``example_batch()`` for the contract tests.

    Example::

        >>> import torch
        >>> from omnissl import hookimpl, BuildContext, PluginManager, ModalitySpec
        >>> from omnissl.plugins import PluginManager
        >>> class Plugin:
        ...     @hookimpl
        ...     def omnissl_modalities(self):
        ...         yield ModalitySpec(name="demo.vectors", summary="Rows of 8 floats.",
        ...                            example_batch=lambda: torch.randn(4, 8))
        >>> pm = PluginManager(autoload=False); _ = pm.register(Plugin(), name="demo")
        >>> pm.registry.get("modalities", "demo.vectors").example_batch().shape
        torch.Size([4, 8])
    """


@hookspec
def omnissl_datasets() -> Iterable[DatasetSpec]:
    """Register data sources: ``factory(config, ctx) -> DataSource``.

    Example::

        >>> import torch
        >>> from omnissl import hookimpl, BuildContext, PluginManager, DatasetSpec, ComponentConfig
        >>> from omnissl.data import TensorSource
        >>> class Rows(ComponentConfig):
        ...     n: int = 32
        >>> class Plugin:
        ...     @hookimpl
        ...     def omnissl_datasets(self):
        ...         yield DatasetSpec(name="demo.rows", config=Rows, summary="Random rows.",
        ...                           factory=lambda cfg, ctx: TensorSource(torch.randn(cfg.n, 8)))
        >>> pm = PluginManager(autoload=False); _ = pm.register(Plugin(), name="demo")
        >>> len(pm.registry.get("datasets", "demo.rows").build({"n": 10}, BuildContext()))
        10
    """


@hookspec
def omnissl_encoders() -> Iterable[EncoderSpec]:
    """Register encoders: ``factory(config, ctx) -> Encoder`` (``ctx.data`` is the task's data source).

    Example::

        >>> from torch import nn
        >>> from omnissl import hookimpl, BuildContext, PluginManager, EncoderSpec, ComponentConfig, Encoder, Encoded
        >>> class Linear(Encoder):
        ...     def __init__(self, dim):
        ...         super().__init__(); self.fc = nn.Linear(8, dim); self.output_dim = dim
        ...     def forward(self, batch, keep=None):
        ...         return Encoded(pooled=self.fc(batch))
        >>> class Cfg(ComponentConfig):
        ...     dim: int = 16
        >>> class Plugin:
        ...     @hookimpl
        ...     def omnissl_encoders(self):
        ...         yield EncoderSpec(name="demo.linear", config=Cfg, summary="One linear layer.",
        ...                           factory=lambda cfg, ctx: Linear(cfg.dim))
        >>> pm = PluginManager(autoload=False); _ = pm.register(Plugin(), name="demo")
        >>> pm.registry.get("encoders", "demo.linear").build({"dim": 4}, BuildContext()).output_dim
        4
    """


@hookspec
def omnissl_view_generators() -> Iterable[ViewGeneratorSpec]:
    """Register view generators: ``factory(config, ctx) -> ViewGenerator`` (batched, on the device).

    Example::

        >>> import torch
        >>> from omnissl import hookimpl, BuildContext, PluginManager, ViewGeneratorSpec, ViewGenerator, Views
        >>> class Noise(ViewGenerator):
        ...     def forward(self, batch, generator):
        ...         noise = lambda: torch.randn(batch.shape, generator=generator, device=batch.device)
        ...         return Views(inputs=[batch + noise(), batch + noise()], original=batch)
        >>> class Plugin:
        ...     @hookimpl
        ...     def omnissl_view_generators(self):
        ...         yield ViewGeneratorSpec(name="demo.noise", summary="Two noisy views.",
        ...                                 factory=lambda cfg, ctx: Noise())
        >>> pm = PluginManager(autoload=False); _ = pm.register(Plugin(), name="demo")
        >>> views = pm.registry.get("view_generators", "demo.noise").build({}, BuildContext())
        >>> len(views(torch.zeros(2, 8), torch.Generator().manual_seed(0)).inputs)
        2
    """


@hookspec
def omnissl_objectives() -> Iterable[ObjectiveSpec]:
    """Register objectives: ``factory(config, ctx) -> Objective`` (``ctx.encoder`` is the task's encoder).

    Example::

        >>> from omnissl import hookimpl, BuildContext, PluginManager, ObjectiveSpec, Objective, ObjectiveOutput
        >>> class Align(Objective):
        ...     def forward(self, encoder, views):
        ...         a, b = (encoder(v).pooled for v in views.inputs)
        ...         return ObjectiveOutput(loss=(a - b).pow(2).mean())
        >>> class Plugin:
        ...     @hookimpl
        ...     def omnissl_objectives(self):
        ...         yield ObjectiveSpec(name="demo.align", summary="Pull two views together.",
        ...                             factory=lambda cfg, ctx: Align())
        >>> pm = PluginManager(autoload=False); _ = pm.register(Plugin(), name="demo")
        >>> pm.registry.get("objectives", "demo.align").summary
        'Pull two views together.'
    """


@hookspec
def omnissl_evaluators() -> Iterable[EvaluatorSpec]:
    """Register evaluators: probes and domain metrics, ``factory(config, ctx) -> Evaluator``.

    An evaluator is called as ``evaluator(run) -> EvalResult`` with an :class:`omnissl.evaluation.api.EvalRun`
    (live encoder, data source, device, a builder for a randomly initialised encoder).

    Example::

        >>> from omnissl import hookimpl, BuildContext, PluginManager, EvaluatorSpec
        >>> from omnissl.evaluation.api import EvalResult
        >>> class Plugin:
        ...     @hookimpl
        ...     def omnissl_evaluators(self):
        ...         yield EvaluatorSpec(name="demo.size", summary="Counts samples.",
        ...                             factory=lambda cfg, ctx: lambda run: EvalResult(
        ...                                 name="size", metrics={"n": float(len(run.data))}))
        >>> pm = PluginManager(autoload=False); _ = pm.register(Plugin(), name="demo")
        >>> "demo.size" in pm.registry.names("evaluators")
        True
    """


@hookspec
def omnissl_callbacks() -> Iterable[CallbackSpec]:
    """Register callbacks chosen by name in a run config (``logging.callbacks``).

    A callback has ``on_log(step: int, metrics: dict[str, float])`` and ``on_end(step: int)``; both run at
    log intervals on the host, never inside the step.

    Example::

        >>> from omnissl import hookimpl, BuildContext, PluginManager, CallbackSpec
        >>> class PrintLoss:
        ...     def on_log(self, step, metrics): print(step, metrics.get("loss"))
        ...     def on_end(self, step): pass
        >>> class Plugin:
        ...     @hookimpl
        ...     def omnissl_callbacks(self):
        ...         yield CallbackSpec(name="demo.print_loss", summary="Prints the loss.",
        ...                            factory=lambda cfg, ctx: PrintLoss())
        >>> pm = PluginManager(autoload=False); _ = pm.register(Plugin(), name="demo")
        >>> pm.registry.get("callbacks", "demo.print_loss").name
        'demo.print_loss'
    """


@hookspec
def omnissl_config_dirs() -> Iterable[Traversable]:
    """Return folders of example run configs shipped inside the plugin (``omnissl configs list``).

    Example::

        >>> from importlib.resources import files
        >>> from omnissl import hookimpl, BuildContext, PluginManager
        >>> class Plugin:
        ...     @hookimpl
        ...     def omnissl_config_dirs(self):
        ...         return [files("omnissl") / "configs"]
        >>> pm = PluginManager(autoload=False); _ = pm.register(Plugin(), name="demo")
        >>> any(d.name == "configs" for d in pm.config_dirs())
        True
    """


@hookspec
def omnissl_cli_commands(cli: Any) -> None:
    """Add sub-commands to the ``omnissl`` command line; ``cli`` is the argparse sub-parsers object.

    Set ``func`` on the new parser; it is called with the parsed arguments and returns an exit status.

    Example::

        >>> import argparse
        >>> from omnissl import hookimpl, BuildContext, PluginManager
        >>> class Plugin:
        ...     @hookimpl
        ...     def omnissl_cli_commands(self, cli):
        ...         cmd = cli.add_parser("hello", help="Say hello.")
        ...         cmd.set_defaults(func=lambda args: print("hello") or 0)
        >>> pm = PluginManager(autoload=False); _ = pm.register(Plugin(), name="demo")
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
        >>> pm.hook.omnissl_cli_commands(cli=sub)
        []
        >>> args = parser.parse_args(["hello"]); args.func(args)
        hello
        0
    """

