"""Every kind of bad config exits with status 2 and one message carrying the key path — no traceback."""

import copy

import pytest
import yaml

from omnissl.cli import main
from omnissl.testing.toy import toy_run_config

TOY = toy_run_config()


def _set(cfg, path, value):
    node = cfg
    *parents, last = path
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return cfg


DELETE = object()

# (id, edit of the toy config, overrides, text the error must contain)
CASES = [
    ("unknown top-level key", lambda c: _set(c, ["egnine"], {}), [], "egnine: unknown key"),
    ("unknown engine key, did you mean", lambda c: _set(c, ["engine", "batch_sise"], 3), [], "engine.batch_sise: unknown key (did you mean 'batch_size'?)"),
    ("wrong type", lambda c: _set(c, ["engine", "steps"], "many"), [], "engine.steps: Input should be a valid integer"),
    ("unknown component near name", lambda c: _set(c, ["tasks", 0, "encoder", "name"], "toy.mpl"), [], "tasks[0].encoder.name: unknown encoder 'toy.mpl' (did you mean 'toy.mlp'?); valid choices:"),
    ("missing requires plugin", lambda c: _set(c, ["requires"], ["omnissl-nonexistent"]), [], "requires[0]: package 'omnissl-nonexistent' is not installed; install it with"),
    ("typo in requires", lambda c: _set(c, ["requires"], ["omnissl-grpah"]), [], "requires[0]: package 'omnissl-grpah' is not installed; check the spelling (did you mean 'omnissl-graph'?)"),
    ("bad override syntax", lambda c: c, ["engine.steps"], "override 'engine.steps': expected key.path=value"),
    ("empty tasks", lambda c: _set(c, ["tasks"], []), [], "tasks: List should have at least 1 item"),
    ("negative learning rate", lambda c: _set(c, ["engine", "optimizer", "lr"], -0.1), [], "engine.optimizer.lr: Input should be greater than 0 (got -0.1)"),
    ("unknown component param", lambda c: _set(c, ["tasks", 0, "encoder", "hiden_dim"], 3), [], "tasks[0].encoder.hiden_dim: unknown key (did you mean 'hidden_dim'?)"),
    ("wrong component param type", lambda c: _set(c, ["tasks", 0, "encoder", "hidden_dim"], "big"), [], "tasks[0].encoder.hidden_dim: Input should be a valid integer"),
    ("steps and epochs", lambda c: _set(c, ["engine", "epochs"], 2), [], "engine: Value error, set exactly one of engine.steps or engine.epochs"),
    ("steps and epochs from the command line", lambda c: c, ["engine.epochs=3"], "unset the other with null, e.g. `engine.steps=500 engine.epochs=null`"),
    ("neither steps nor epochs", lambda c: _set(c, ["engine", "steps"], DELETE), [], "set exactly one of engine.steps or engine.epochs"),
    ("bad precision", lambda c: _set(c, ["engine", "precision"], "fp8"), [], "engine.precision: Input should be 'auto', 'fp32', 'bf16' or 'fp16'"),
    ("unknown optimizer", lambda c: _set(c, ["engine", "optimizer", "name"], "adam_w"), [], "engine.optimizer.name: Input should be 'adamw', 'adam', 'sgd' or 'lars' (got 'adam_w')"),
    ("unknown schedule", lambda c: _set(c, ["engine", "schedule"], {"name": "cosin"}), [], "engine.schedule.name: Input should be 'cosine'"),
    ("duplicate task names", lambda c: _set(c, ["tasks"], [c["tasks"][0], c["tasks"][0]]), [], "tasks: Value error, task names must be unique; repeated: toy"),
    ("undefined shared module", lambda c: _set(c, ["tasks", 0, "encoder", "hidden_dim"], "@shared.trunk"), [], "tasks[0].encoder.hidden_dim: unknown shared module '@shared.trunk'"),
    ("missing encoder", lambda c: _set(c, ["tasks", 0, "encoder"], DELETE), [], "tasks[0].encoder: required key is missing"),
    ("non-positive task weight", lambda c: _set(c, ["tasks", 0, "weight"], -1), [], "tasks[0].weight: Input should be greater than 0"),
    ("override index out of range", lambda c: c, ["tasks[3].weight=2"], "override 'tasks[3].weight=2': tasks[3] does not exist"),
    ("unknown evaluator", lambda c: _set(c, ["tasks", 0, "eval"], [{"name": "core.lineer_probe"}]), [], "tasks[0].eval[0].name: unknown evaluator 'core.lineer_probe'"),
    ("zero batch size", lambda c: _set(c, ["engine", "batch_size"], 0), [], "engine.batch_size: Input should be greater than 0"),
    ("component without name", lambda c: _set(c, ["tasks", 0, "encoder"], {"hidden_dim": 3}), [], "tasks[0].encoder.name: required key is missing"),
    ("both warmups", lambda c: _set(c, ["engine", "schedule"], {"name": "cosine", "warmup_steps": 5, "warmup_fraction": 0.1}), [], "engine.schedule: Value error, set warmup_steps or warmup_fraction, not both"),
    ("unknown objective param value", lambda c: _set(c, ["tasks", 0, "objective", "temperature"], 0), [], "tasks[0].objective.temperature: Input should be greater than 0"),
    ("bad task name", lambda c: _set(c, ["tasks", 0, "name"], "my task!"), [], "tasks[0].name: String should match pattern"),
    ("unknown env variable", lambda c: _set(c, ["logging", "out_dir"], "${OMNISSL_SURELY_UNSET_VAR}/run"), [], "environment variable OMNISSL_SURELY_UNSET_VAR is not set"),
    ("unknown dataset", lambda c: _set(c, ["tasks", 0, "data", "name"], "toy.cluster"), [], "tasks[0].data.name: unknown dataset 'toy.cluster' (did you mean 'toy.clusters'?)"),
]


@pytest.mark.parametrize("edit,overrides,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_exits_2_with_key_path(tmp_path, capsys, edit, overrides, expected):
    cfg = edit(copy.deepcopy(TOY))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["validate", str(path), *overrides]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err
    assert err.startswith("omnissl: error: ")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("tasks: [\n  {name: a\n", "YAML syntax error at line"),
        ("- just\n- a list\n", "(top level): expected a mapping of keys"),
    ],
    ids=["yaml syntax", "not a mapping"],
)
def test_unreadable_yaml(tmp_path, capsys, text, expected):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    assert expected in capsys.readouterr().err


def test_missing_file_and_extends_cycle(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    assert main(["validate", str(tmp_path / "a.yaml")]) == 2
    assert "extends: cycle" in capsys.readouterr().err


def test_every_error_reported_at_once(tmp_path, capsys):
    cfg = copy.deepcopy(TOY)
    cfg["engine"]["optimizer"]["lr"] = -1
    cfg["tasks"][0]["encoder"]["name"] = "toy.mpl"
    cfg["tasks"][0]["objective"]["temprature"] = 0.1
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "(3 problems)" in err
    for piece in ("engine.optimizer.lr", "tasks[0].encoder.name", "tasks[0].objective.temprature: unknown key (did you mean 'temperature'?)"):
        assert piece in err


def test_param_error_names_the_provider(tmp_path, capsys):
    cfg = _set(copy.deepcopy(TOY), ["tasks", 0, "encoder", "hidden_dim"], -3)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["validate", str(path)]) == 2
    assert "[encoder 'toy.mlp' from omnissl 0.1.0]" in capsys.readouterr().err


def test_extends_and_overrides_merge(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(TOY))
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nengine: {steps: 7}\n")
    from omnissl.config import load_config

    cfg = load_config(tmp_path / "child.yaml", ["tasks[0].encoder.hidden_dim=48", "engine.optimizer.lr=1e-2"])
    assert cfg.engine.steps == 7 and cfg.engine.batch_size == 64
    assert cfg.tasks[0].encoder.params["hidden_dim"] == 48 and cfg.engine.optimizer.lr == 0.01
    assert main(["validate", str(tmp_path / "child.yaml")]) == 0


def test_schema_export(capsys):
    import json

    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "tasks" in schema["properties"] and "encoders:toy.mlp" in schema["$defs"]["components"]
