"""Run configs: YAML validated in two passes by pydantic v2.

Pass 1 checks the structure (:class:`RunConfig`: tasks, engine, eval, logging); pass 2 checks each
component's parameters against the config model its spec registered. Every problem of both passes is
reported at once, each with its full key path, the bad value, the valid choices, a "did you mean" and the
plugin that provides (or failed to provide) the component. ``extends:`` merges a base file,
``key.path=value`` overrides apply on top, ``${VAR}`` / ``${VAR:-default}`` expand from the environment,
and ``requires:`` names the distributions a config needs, checked first.
"""

from __future__ import annotations

import copy
import math
import os
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from omnissl.errors import ConfigError, did_you_mean, short_repr
from omnissl.optim import OptimizerConfig
from omnissl.plugins import PluginManager, Registry
from omnissl.schedules import ScheduleConfig

SHARED_REF = re.compile(r"^@shared\.([A-Za-z_][A-Za-z0-9_]*)$")
ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
OVERRIDE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*)*)=(.*)$", re.S)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(BaseModel):
    """``{name: <registry name>, **params}``; params are validated in pass 2 against the spec's config."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TaskConfig(Strict):
    """One task: a data source, an encoder, a view generator, an objective, a weight and evaluators.

    ``batch_size`` (None: ``engine.batch_size``) is this task's global batch; ``lr_multiplier`` (1.0) scales the
    learning rate of the task's own parameters (its stem, heads, decoders), never of ``shared:`` modules.
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
    data: ComponentRef
    encoder: ComponentRef
    views: ComponentRef
    objective: ComponentRef
    weight: float = Field(1.0, gt=0)
    batch_size: int | None = Field(None, gt=0)  # None: engine.batch_size; modalities differ in what fits a step
    lr_multiplier: float = Field(1.0, gt=0)  # scales the learning rate of this task's own modules, not shared ones
    eval: list[ComponentRef] = Field(default_factory=list)


class CheckpointConfig(Strict):
    """When ``checkpoints/last.pt`` is written, besides the end of the run and an interrupt.

    Attributes:
        every: every N steps (5000; ``null``: not by steps).
        every_minutes: every M minutes of wall time (10; ``null``: not by time). A SIGKILL or a power cut
            loses at most this much training by default.
        keep: numbered copies ``step_<N>.pt`` kept beside ``last.pt`` (0); ``--fallback-to-previous``
            resumes from the newest one that verifies when ``last.pt`` is damaged.
    """

    every: int | None = Field(5000, gt=0)
    every_minutes: float | None = Field(10.0, gt=0)
    keep: int = Field(0, ge=0)


class EngineConfig(Strict):
    """Training settings; docs/architecture.md section 5 describes each.

    ``workers > 0`` collates batches in that many DataLoader worker processes (sources stay on the CPU
    and batches are pinned and moved per step) for sources whose ``batch`` decodes or samples on the host;
    ``0`` (default) keeps data on the device and collates by indexing there.

    ``loss_balancing`` across tasks (:mod:`omnissl.nn.loss_balancing`): ``none`` (default; the task weight
    alone), ``running_mean`` (each task's loss divided by an exponential running mean of itself, so every task
    contributes about ``weight``) or ``uncertainty`` (Kendall et al. 2018: ``exp(-s_t) * L_t + s_t`` with a
    learned log-variance ``s_t`` per task).
    """

    steps: int | None = Field(None, gt=0)
    epochs: float | None = Field(None, gt=0)
    batch_size: int = Field(256, gt=0)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False
    accumulate: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(None, gt=0)
    task_sampling: Literal["round_robin", "proportional", "weighted"] = "round_robin"
    loss_balancing: Literal["none", "running_mean", "uncertainty"] = "none"
    on_nonfinite: Literal["stop", "skip"] = "stop"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    monitor_every: int | None = Field(None, gt=0)
    monitor_samples: int = Field(512, gt=1)
    collapse_floor: float = Field(0.0, ge=0)
    workers: int = Field(0, ge=0)
    # GPU path (omnissl.parallel, omnissl.accounting): ``strategy`` across processes (``ddp`` or FSDP2
    # ``fsdp``); ``count_flops`` counts one step's FLOPs at start-up for the ``tflops``/``mfu`` log fields;
    # ``peak_tflops`` is the device peak MFU is measured against (default: a known CUDA device's bf16 peak).
    strategy: Literal["ddp", "fsdp"] = "ddp"
    count_flops: bool = True
    peak_tflops: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _length(self) -> EngineConfig:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("set exactly one of engine.steps or engine.epochs; to switch on the command line, unset the "
                             "other with null, e.g. `engine.steps=500 engine.epochs=null`")
        return self


class EvalScheduleConfig(Strict):
    """When task evaluators run, and which evaluation's checkpoint to keep.

    Attributes:
        every: run them every N steps (``None``: never during training).
        at_end: run them after the last step (True).
        select: a metric to pick the best evaluation by, named as in ``metrics.jsonl`` without ``eval/``:
            ``<task>/<evaluator result>/<metric>``, e.g. ``toy/linear_probe/encoder/val_acc``; with one task
            the ``<task>/`` may be left out (None: no selection). Pick a validation metric (``val_*``): the
            evaluation with its best value is copied to ``checkpoints/best.pt`` and reported, with every
            metric of that evaluation (its ``test_*`` ones included), in ``best.json`` and at the end.
        select_mode: ``max``, ``min`` or ``auto`` (default): ``min`` for names that end in a loss or error
            (``loss``, ``rmse``, ``mse``, ``mae``, ``error``, ``perplexity``, with or without a
            ``_standardized`` suffix), ``max`` otherwise (accuracies, AUCs, NDCG, R²).
        patience: stop training after this many evaluations in a row without improving ``select``
            (None: never stop early). Needs ``select`` and ``every``.
    """

    every: int | None = Field(None, gt=0)
    at_end: bool = True
    select: str | None = Field(None, min_length=1)
    select_mode: Literal["auto", "max", "min"] = "auto"
    patience: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _selection(self) -> EvalScheduleConfig:
        if self.patience is not None and (self.select is None or self.every is None):
            raise ValueError("eval.patience needs eval.select (the metric to watch) and eval.every (how often to evaluate); "
                             "set both, or unset patience with `eval.patience=null`")
        if self.select is not None and self.every is None and not self.at_end:
            raise ValueError("eval.select needs evaluations to choose from: set eval.every or eval.at_end=true")
        return self

    def direction(self) -> Literal["max", "min"]:
        """``select_mode``, with ``auto`` resolved from the metric's name (see the class docstring)."""
        if self.select_mode != "auto":
            return self.select_mode
        last = (self.select or "").rsplit("/", 1)[-1].removesuffix("_standardized")
        return "min" if re.search(r"(loss|rmse|mse|mae|error|perplexity)$", last) else "max"


class LoggingConfig(Strict):
    """``out_dir`` for metrics, checkpoints and exports; ``log_every`` steps; TensorBoard; progress bar."""

    out_dir: str = "runs/default"
    log_every: int = Field(10, gt=0)
    tensorboard: bool = False
    progress: bool = True
    callbacks: list[ComponentRef] = Field(default_factory=list)


class RunConfig(Strict):
    """A whole run: ``tasks`` (one or more), optional ``shared`` modules, ``engine``, ``eval``, ``logging``."""

    requires: list[str] = Field(default_factory=list)
    seed: int = Field(0, ge=0, le=2**32 - 1)  # the engine derives per-step seeds from it; larger ones overflow the RNG
    shared: dict[str, ComponentRef] = Field(default_factory=dict)
    tasks: list[TaskConfig] = Field(min_length=1)
    engine: EngineConfig
    eval: EvalScheduleConfig = Field(default_factory=EvalScheduleConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @field_validator("tasks")
    @classmethod
    def _unique_names(cls, tasks: list[TaskConfig]) -> list[TaskConfig]:
        names = [t.name for t in tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"task names must be unique; repeated: {', '.join(dupes)}")
        return tasks


# ---------------------------------------------------------------------------------------------- loading


def _deep_merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key repeated in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then overriding keys is YAML's own merge, not a repeat
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line)
            except TypeError:
                continue  # an unhashable key: construct_mapping below reports it
            if first != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {short_repr(key, 60)} appears twice in one mapping (first at line {first + 1})", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


MAX_VALUES = 1_000_000  # a config is hundreds of values; nested aliases ("billion laughs") expand to billions


def _expanded_size(value: Any, memo: dict[int, int], depth: int = 0) -> int:
    """How many values ``value`` holds once aliases are expanded, computed without expanding them."""
    if not isinstance(value, (dict, list)):
        return 1
    if id(value) in memo:
        return memo[id(value)]
    if depth > 100:
        return MAX_VALUES + 1
    children = value.values() if isinstance(value, dict) else value
    memo[id(value)] = size = 1 + sum(_expanded_size(v, memo, depth + 1) for v in children)
    return size


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError([f"config file not found: {path}"])
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"YAML syntax error{where}: {getattr(exc, 'problem', exc)}"], source=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping of keys, got {type(data).__name__}"], source=str(path))
    if _expanded_size(data, {}) > MAX_VALUES:
        raise ConfigError([f"(top level): the config expands to more than {MAX_VALUES:,} values through YAML aliases; it is not a run config"], source=str(path))
    return data


def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read a YAML file and resolve ``extends:`` (a path relative to the file, or a list of them)."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError([f"extends: cycle through {' -> '.join(str(p) for p in (*_seen, path))}"])
    data = _read_yaml(path)
    bases = data.pop("extends", None)
    if bases is None:
        return data
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged = _deep_merge(merged, load_yaml(path.parent / base, (*_seen, path)))
    return _deep_merge(merged, data)


def expand_env(value: Any) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string of a nested structure."""
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            if m.group(1) in os.environ:
                return os.environ[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
            raise ConfigError([f"environment variable {m.group(1)} is not set (used as {m.group(0)}); set it or write ${{{m.group(1)}:-default}}"])

        return ENV_VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    return value


def _path_tokens(path: str) -> list[str | int]:
    tokens: list[str | int] = []
    for part in path.split("."):
        name, *indices = re.split(r"\[", part)
        tokens.append(name)
        tokens.extend(int(i.rstrip("]")) for i in indices)
    return tokens


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.path=value`` (``tasks[0].encoder.dim=64``; the value is parsed as YAML)."""
    data = copy.deepcopy(data)
    problems = []
    for item in overrides:
        m = OVERRIDE.match(item)
        if not m:
            problems.append(f"override {item!r}: expected key.path=value, for example engine.steps=100 or tasks[0].encoder.dim=64")
            continue
        path, raw = m.groups()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node: Any = data
        tokens = _path_tokens(path)
        for i, tok in enumerate(tokens[:-1]):
            nxt = tokens[i + 1]
            if isinstance(tok, int):
                if not isinstance(node, list) or tok >= len(node):
                    problems.append(f"override {item!r}: {format_path(tokens[:i + 1])} does not exist (list has {len(node) if isinstance(node, list) else 0} items)")
                    break
                node = node[tok]
            else:
                if not isinstance(node, dict):
                    problems.append(f"override {item!r}: {format_path(tokens[:i])} is not a mapping")
                    break
                node = node.setdefault(tok, [] if isinstance(nxt, int) else {})
        else:
            last = tokens[-1]
            if isinstance(last, int):
                if not isinstance(node, list) or last >= len(node):
                    problems.append(f"override {item!r}: index {last} is out of range")
                    continue
            elif not isinstance(node, dict):
                problems.append(f"override {item!r}: {format_path(tokens[:-1])} is not a mapping")
                continue
            node[last] = value
    if problems:
        raise ConfigError(problems)
    return data


def format_path(tokens: tuple | list) -> str:
    out = ""
    for tok in tokens:
        if isinstance(tok, int):
            out += f"[{tok}]"
        else:
            out += f".{tok}" if out else str(tok)
    return out or "(top level)"


# ----------------------------------------------------------------------------------------- validation

COMPONENT_KINDS = {"data": "datasets", "encoder": "encoders", "views": "view_generators", "objective": "objectives"}


def _describe_pydantic_errors(exc: ValidationError, prefix: tuple, model: type[BaseModel] | None, raw: Any) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(prefix) + tuple(err["loc"])
        path = format_path(loc)
        if err["type"] == "extra_forbidden":
            owner = _model_at(model, err["loc"][:-1])
            valid = sorted(owner.model_fields) if owner else []
            problems.append(f"{path}: unknown key{did_you_mean(str(err['loc'][-1]), valid)}; valid keys: {', '.join(valid)}")
        elif err["type"] == "missing":
            problems.append(f"{path}: required key is missing")
        else:
            problems.append(f"{path}: {err['msg']} (got {short_repr(err.get('input'))})")
    return problems


def _model_at(model: type[BaseModel] | None, loc: tuple) -> type[BaseModel] | None:
    """The nested pydantic model at ``loc`` inside ``model`` (for listing valid keys)."""
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [ann, *args]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            for c in args:
                inner = getattr(c, "__args__", ())
                model = next((i for i in inner if isinstance(i, type) and issubclass(i, BaseModel)), None)
                if model:
                    break
    return model


def _check_component(ref: Any, kind: str, path: tuple, registry: Registry, shared: set[str]) -> list[str]:
    """Pass 2 for one component: known name, then its params against the spec's config model."""
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
        return []  # pass 1 reports the structural problem
    name = ref["name"]
    if name not in registry.specs[kind]:
        return [f"{format_path((*path, 'name'))}: {registry.unknown_message(kind, name)}"]
    spec = registry.specs[kind][name]
    params = {k: v for k, v in ref.items() if k != "name"}
    problems = [
        f"{format_path((*path, key))}: unknown shared module {value!r}; defined: {', '.join(sorted(shared)) or 'none'} (add it under shared:)"
        for key, value in params.items()
        if _is_shared_ref(value) and SHARED_REF.match(value).group(1) not in shared
    ]
    problems += [
        f"{format_path((*path, key))}: {name!r} does not accept a shared module reference here (got {value!r})"
        for key, value in params.items()
        if _is_shared_ref(value) and not _accepts_str(spec.config, key)
    ]
    if problems:
        return problems
    try:
        spec.config.model_validate(params)
    except ValidationError as exc:
        provider = f" [{spec.kind} {name!r} from {spec.provider.distribution} {spec.provider.version}]".replace(" ]", "]")
        problems += [p + provider for p in _describe_pydantic_errors(exc, path, spec.config, params)]
    return problems


def _nonfinite_numbers(value: Any, path: tuple) -> list[str]:
    """Every ``.inf`` / ``.nan`` in the config: no setting of a run means infinity, and NaN compares false to every bound."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{format_path(path)}: must be a finite number (got {value}); write the largest value you mean instead"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nonfinite_numbers(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nonfinite_numbers(v, (*path, i))]
    return []


def _is_shared_ref(value: Any) -> bool:
    return isinstance(value, str) and SHARED_REF.match(value) is not None


def _accepts_str(model: type[BaseModel], key: str) -> bool:
    field = model.model_fields.get(key)
    return field is not None and (field.annotation is str or str in getattr(field.annotation, "__args__", ()))


def check_requires(requires: list[str], pm: PluginManager) -> list[str]:
    """Every distribution in ``requires`` is installed and its plugin loaded."""
    problems = []
    for i, dist in enumerate(requires):
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            installed = sorted({r.distribution for r in pm.records.values()} | {"omnissl"})
            hint = did_you_mean(dist, installed, cutoff=0.8)  # the shared "omnissl-" prefix makes every name look close
            advice = (f"check the spelling{hint}" if hint else
                      f"install it with `pip install {dist}` (or `uv pip install {dist}`); installed omnissl packages: {', '.join(installed)}")
            problems.append(f"requires[{i}]: package {dist!r} is not installed; {advice}")
            continue
        for record in pm.records.values():
            if record.distribution == dist and record.status != "loaded":
                why = f": {record.error}" if record.error else " (see OMNISSL_PLUGINS / OMNISSL_BLOCKED_PLUGINS)"
                problems.append(f"requires[{i}]: plugin {record.name!r} from {dist!r} is {record.status}{why}")
    return problems


def validate(data: dict, pm: PluginManager, source: str | None = None) -> RunConfig:
    """Two-pass validation of a config mapping; raises :class:`ConfigError` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping, got {type(data).__name__}"], source)
    requires = data.get("requires", [])
    if isinstance(requires, list):
        if problems := check_requires([r for r in requires if isinstance(r, str)], pm):
            raise ConfigError(problems, source)
    problems: list[str] = _nonfinite_numbers(data, ())
    config: RunConfig | None = None
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        problems += _describe_pydantic_errors(exc, (), RunConfig, data)
    registry = pm.registry
    shared = data.get("shared") if isinstance(data.get("shared"), dict) else {}
    for key, ref in shared.items():
        problems += _check_component(ref, "encoders", ("shared", key), registry, set())
    tasks = data.get("tasks") if isinstance(data.get("tasks"), list) else []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        for field, kind in COMPONENT_KINDS.items():
            problems += _check_component(task.get(field), kind, ("tasks", i, field), registry, set(shared))
        for j, ev in enumerate(task.get("eval") or []):
            problems += _check_component(ev, "evaluators", ("tasks", i, "eval", j), registry, set(shared))
    logging_cfg = data.get("logging") if isinstance(data.get("logging"), dict) else {}
    for j, cb in enumerate(logging_cfg.get("callbacks") or []):
        problems += _check_component(cb, "callbacks", ("logging", "callbacks", j), registry, set(shared))
    if problems or config is None:
        raise ConfigError(problems, source)
    return config


def load_config(path: str | Path | dict, overrides: list[str] | tuple[str, ...] = (), pm: PluginManager | None = None) -> RunConfig:
    """Read, merge, override, expand and validate a run config."""
    from omnissl.plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    source = None if isinstance(path, dict) else str(path)
    data = copy.deepcopy(path) if isinstance(path, dict) else load_yaml(path)
    data = expand_env(apply_overrides(data, list(overrides)))
    try:
        return validate(data, pm, source)
    except ConfigError as exc:
        exc.source = exc.source or source
        raise


def json_schema(pm: PluginManager) -> dict:
    """JSON Schema of run configs; ``$defs.components`` holds each registered component's parameters."""
    schema = RunConfig.model_json_schema()
    components = {}
    for kind in ("datasets", "encoders", "view_generators", "objectives", "evaluators", "callbacks"):
        for name, spec in pm.registry.specs[kind].items():
            params = spec.config.model_json_schema()
            params.setdefault("properties", {})["name"] = {"const": name}
            params["description"] = spec.summary
            components[f"{kind}:{name}"] = params
    schema.setdefault("$defs", {})["components"] = components
    return schema


# --------------------------------------------------------------------------------------------- resume

# Keys a resumed run may change: they set how long it runs and what it logs, evaluates and saves, or where
# it runs, not what it trains. Anything else changed would make the checkpoint continue a different run.
RESUME_SAFE = (
    "engine.steps", "engine.epochs", "engine.checkpoint.", "engine.monitor_every", "engine.monitor_samples",
    "engine.collapse_floor", "engine.on_nonfinite", "engine.workers", "engine.device", "engine.compile",
    "engine.count_flops", "engine.peak_tflops", "engine.strategy",
    "eval.", "logging.", "requires",
)
_TASK_EVAL = re.compile(r"^tasks\[\d+\]\.eval(\[|$)")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}.{key}" if prefix else str(key)).items()}
    if isinstance(value, list) and value and not all(not isinstance(v, (dict, list)) for v in value):
        return {k: v for i, item in enumerate(value) for k, v in _flatten(item, f"{prefix}[{i}]").items()}
    return {prefix: value}


def resume_changes(saved: dict, config: RunConfig) -> tuple[list[str], list[str]]:
    """Compare the config saved in a checkpoint with ``config``: ``(allowed changes, refused changes)``, one line each.

    Both are normalised through :class:`RunConfig` first, so a default added by a newer omnissl is not a change.
    """
    try:
        old = RunConfig.model_validate(saved).model_dump(mode="json")
    except ValidationError:
        old = saved
    new = config.model_dump(mode="json")
    a, b = _flatten(old), _flatten(new)
    allowed, refused = [], []
    for key in sorted(a.keys() | b.keys()):
        before, after = a.get(key, "(absent)"), b.get(key, "(absent)")
        if before == after:
            continue
        line = f"{key}: {short_repr(before, 80)} -> {short_repr(after, 80)}"
        safe = key.startswith(RESUME_SAFE) or key in {s.rstrip(".") for s in RESUME_SAFE} or _TASK_EVAL.match(key)
        (allowed if safe else refused).append(line)
    refused = [f"{line} (this would not continue the same run)" for line in refused]
    return allowed, refused
