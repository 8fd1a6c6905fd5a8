"""The plugin manager: loads ``omnissl`` entry points, collects specs, records provenance.

Loading rules (design section 3):

- each entry point is loaded inside its own guard: a broken plugin costs one warning line naming the
  package and the error, the others keep working; it becomes an error when a run uses one of its
  components (the message names the plugin and why it failed) or under ``strict=True``. The guard
  catches ``BaseException`` except ``KeyboardInterrupt``: a plugin calling ``sys.exit`` at import is
  disabled like one raising ``ImportError``. Every later hook call (components, ``omnissl_config_dirs``,
  ``omnissl_cli_commands``) is guarded per plugin the same way;
- ``check_pending()`` rejects hook implementations that match no hook spec (a misspelled hook);
- a name provided twice is an error listing every provider;
- environment switches: ``OMNISSL_DISABLE_PLUGIN_AUTOLOAD`` (load no entry points),
  ``OMNISSL_PLUGINS`` (comma-separated allow-list of plugin or distribution names),
  ``OMNISSL_BLOCKED_PLUGINS`` (comma-separated block-list).

Built-in components register through the same hooks (:mod:`omnissl.builtin`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from importlib import metadata
from importlib.resources.abc import Traversable
from typing import Any

import pluggy

from omnissl import hookspecs
from omnissl.errors import PluginError, did_you_mean
from omnissl.specs import SPEC_TYPES, Provider

log = logging.getLogger("omnissl.plugins")

ENTRY_POINT_GROUP = "omnissl"
KIND_LABELS = {
    "modalities": "modality",
    "datasets": "dataset",
    "encoders": "encoder",
    "view_generators": "view generator",
    "objectives": "objective",
    "evaluators": "evaluator",
    "callbacks": "callback",
}


@dataclass(frozen=True, kw_only=True)
class PluginRecord:
    """One plugin as the manager saw it: ``status`` is ``loaded``, ``failed`` or ``blocked``."""

    name: str
    distribution: str
    version: str
    status: str
    error: str = ""


def _env_list(var: str) -> set[str]:
    return {item.strip() for item in os.environ.get(var, "").split(",") if item.strip()}


def _env_flag(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


@dataclass
class Registry:
    """Every registered spec by kind and name, plus the plugins that failed to load."""

    specs: dict[str, dict[str, Any]] = field(default_factory=lambda: {kind: {} for kind in SPEC_TYPES})
    failed: dict[str, PluginRecord] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def get(self, kind: str, name: str) -> Any:
        """Return the spec, or raise a :class:`PluginError` that lists the choices and any failed plugin."""
        try:
            return self.specs[kind][name]
        except KeyError:
            raise PluginError(self.unknown_message(kind, name)) from None

    def unknown_message(self, kind: str, name: str) -> str:
        """Why ``name`` is not a registered ``kind``: did-you-mean, choices, and a failed provider if any."""
        label = KIND_LABELS[kind]
        failed = self.failed_provider(name)
        if failed is not None:
            return (
                f"{label} {name!r} is unavailable: plugin {failed.name!r} ({failed.distribution} {failed.version}) "
                f"failed to load: {failed.error}. Fix or reinstall that package."
            )
        choices = self.names(kind)
        shown = ", ".join(choices) if choices else "none registered"
        return f"unknown {label} {name!r}{did_you_mean(name, choices)}; valid choices: {shown}"

    def failed_provider(self, name: str) -> PluginRecord | None:
        """The failed plugin whose domain prefix matches ``name`` (``graph.gat`` -> plugin ``graph``)."""
        domain = name.split(".", 1)[0]
        for record in self.failed.values():
            if record.name == domain or record.distribution in (f"omnissl-{domain}", f"omnissl_{domain}"):
                return record
        return None


class PluginManager(pluggy.PluginManager):
    """pluggy manager for the ``omnissl`` project with guarded loading and a validated registry.

    Args:
        autoload: load entry points (ignored when ``OMNISSL_DISABLE_PLUGIN_AUTOLOAD`` is set).
        strict: raise on the first broken plugin instead of warning.
        builtins: register the core's own components.
    """

    def __init__(self, *, autoload: bool = True, strict: bool = False, builtins: bool = True):
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.strict = strict
        self.records: dict[str, PluginRecord] = {}
        self._providers: dict[str, Provider] = {}
        self._registry: Registry | None = None
        if builtins:
            from omnissl import builtin

            version = metadata.version("omnissl")
            self.register(builtin, name="core", provider=Provider(plugin="core", distribution="omnissl", version=version))
        if autoload and not _env_flag("OMNISSL_DISABLE_PLUGIN_AUTOLOAD"):
            self.load_entry_points()

    def register(self, plugin: Any, name: str | None = None, provider: Provider | None = None) -> str | None:
        """Register a plugin object; ``provider`` records where it came from (defaults to in-process)."""
        registered = super().register(plugin, name=name)
        if registered is not None:
            self._providers[registered] = provider or Provider(plugin=registered, distribution="<in-process>", version="")
            self.records[registered] = PluginRecord(
                name=registered,
                distribution=self._providers[registered].distribution,
                version=self._providers[registered].version,
                status="loaded",
            )
            self._registry = None
        return registered

    def load_entry_points(self) -> None:
        """Load each ``omnissl`` entry point in its own guard, honouring the allow and block lists."""
        allowed, blocked = _env_list("OMNISSL_PLUGINS"), _env_list("OMNISSL_BLOCKED_PLUGINS")
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "<unknown>"
            version = ep.dist.version if ep.dist else ""
            if self.has_plugin(ep.name):
                continue
            if (allowed and not {ep.name, dist} & allowed) or {ep.name, dist} & blocked:
                self.records[ep.name] = PluginRecord(name=ep.name, distribution=dist, version=version, status="blocked")
                continue
            try:
                module = ep.load()
                self.register(module, name=ep.name, provider=Provider(plugin=ep.name, distribution=dist, version=version))
                self.check_pending()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a plugin may fail in any way (even sys.exit); it must not take the others down
                self._fail(ep.name, dist, version, exc)

    def _fail(self, name: str, dist: str, version: str, exc: BaseException) -> None:
        if self.has_plugin(name):
            self.unregister(name=name)
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        self.records[name] = PluginRecord(name=name, distribution=dist, version=version, status="failed", error=error)
        if self.strict:
            raise PluginError(f"plugin {name!r} ({dist} {version}) failed to load: {error}") from exc
        log.warning("omnissl: plugin %r (%s %s) failed to load and is disabled: %s", name, dist, version, error)
        self._registry = None

    def check_pending(self) -> None:
        """Like pluggy's, but as a :class:`PluginError` that names the plugin and the misspelled hook."""
        try:
            super().check_pending()
        except pluggy.PluginValidationError as exc:
            valid = sorted(n for n in dir(hookspecs) if n.startswith("omnissl_"))  # the spec, not what plugins registered
            unknown = [n for n in dir(self.hook) if n.startswith("omnissl_") and n not in valid]
            hints = "; ".join(f"{n!r}{did_you_mean(n, valid) or ' matches no hook'}" for n in unknown)
            raise PluginError(
                f"plugin {self.get_name(exc.plugin)!r} implements an unknown hook: {hints or exc}. "
                f"Valid hooks: {', '.join(valid)}"
            ) from exc

    @property
    def registry(self) -> Registry:
        """Collect every plugin's specs (once), recording provenance and rejecting duplicate names."""
        if self._registry is None:
            self._registry = self._collect()
        return self._registry

    def _collect(self) -> Registry:
        registry = Registry()
        providers: dict[tuple[str, str], list[Provider]] = {}
        for kind, spec_type in SPEC_TYPES.items():
            caller = getattr(self.hook, f"omnissl_{kind}")
            for impl in caller.get_hookimpls():
                plugin_name = self.get_name(impl.plugin)
                provider = self._providers[plugin_name]
                try:
                    specs = list(impl.function() or ())
                    for spec in specs:
                        if not isinstance(spec, spec_type):
                            raise TypeError(f"omnissl_{kind} yielded {type(spec).__name__}, expected {spec_type.__name__}")
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # see load_entry_points: isolate the broken plugin
                    self._fail(plugin_name, provider.distribution, provider.version, exc)
                    return self._collect()
                for spec in specs:
                    providers.setdefault((kind, spec.name), []).append(provider)
                    registry.specs[kind][spec.name] = replace(spec, provider=provider)
        duplicates = {key: provs for key, provs in providers.items() if len(provs) > 1}
        if duplicates:
            lines = [
                f"{KIND_LABELS[kind]} {name!r} is registered by "
                + " and ".join(f"{p.plugin} ({p.distribution} {p.version})".rstrip() for p in provs)
                for (kind, name), provs in sorted(duplicates.items())
            ]
            raise PluginError(
                "duplicate component names:\n  " + "\n  ".join(lines)
                + "\nUninstall one of the packages or block it with OMNISSL_BLOCKED_PLUGINS=<name>."
            )
        registry.failed = {n: r for n, r in self.records.items() if r.status == "failed"}
        return registry

    def _call_each(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call every implementation of ``hook`` in its own guard; a failing plugin is disabled (one warning)."""
        results = []
        for impl in reversed(getattr(self.hook, hook).get_hookimpls()):  # pluggy calls the last registered first
            name = self.get_name(impl.plugin)
            try:
                result = impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
                results.append(list(result) if hook == "omnissl_config_dirs" else result)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                provider = self._providers.get(name, Provider(plugin=name, distribution="<in-process>", version=""))
                self._fail(name, provider.distribution, provider.version, exc)
        return results

    def config_dirs(self) -> list[Traversable]:
        """Folders of example configs that plugins ship."""
        return [d for dirs in self._call_each("omnissl_config_dirs") for d in dirs]

    def add_cli_commands(self, subparsers: Any) -> None:
        """Let each plugin add its subcommands (``omnissl_cli_commands``), each in its own guard."""
        self._call_each("omnissl_cli_commands", cli=subparsers)

    def describe(self) -> list[dict[str, Any]]:
        """Every plugin with version, status, error and the components it provides (``omnissl plugins``)."""
        registry = self.registry
        out = []
        for record in self.records.values():
            components: dict[str, list[str]] = {}
            for kind in SPEC_TYPES:
                names = [n for n, s in registry.specs[kind].items() if s.provider and s.provider.plugin == record.name]
                if names:
                    components[kind] = sorted(names)
            out.append({**record.__dict__, "components": components})
        return out


_default: PluginManager | None = None


def get_plugin_manager(*, strict: bool = False, refresh: bool = False) -> PluginManager:
    """The process-wide manager, created on first use (``strict`` or ``refresh`` make a new one)."""
    global _default
    if _default is None or refresh or strict != _default.strict:
        _default = PluginManager(strict=strict)
    return _default
