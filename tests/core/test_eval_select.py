"""``eval.select``: best.pt is the evaluation with the best validation value; early stopping; resume keeps the best."""

import json

import pytest

from omnissl import checkpoint as ckpt
from omnissl.engine import run_config
from omnissl.errors import ConfigError
from omnissl.evaluation.api import EvalResult
from omnissl.hookspecs import hookimpl
from omnissl.plugins import PluginManager
from omnissl.specs import EvaluatorSpec

# a validation curve that is not monotone in the step: it peaks at step 4, dips, recovers partly at 8
VAL = {2: 0.50, 4: 0.90, 6: 0.70, 8: 0.80, 10: 0.60, 12: 0.95}


class StepwisePlugin:
    """An evaluator whose val_acc follows VAL and whose test_acc is step / 100, so the step can be read back."""

    @hookimpl
    def omnissl_evaluators(self):
        def build(cfg, ctx):
            return lambda run: EvalResult(name="stepwise", metrics={"val_acc": VAL[run.step], "test_acc": run.step / 100, "loss": 1 - VAL[run.step]})

        yield EvaluatorSpec(name="test.stepwise", factory=build)


@pytest.fixture
def pm():
    manager = PluginManager(autoload=False)
    manager.register(StepwisePlugin(), name="test")
    return manager


def _config(toy_config, steps, **eval_cfg):
    toy_config["engine"].update(steps=steps, checkpoint={"every": 2})
    toy_config["tasks"][0]["eval"] = [{"name": "test.stepwise"}]
    toy_config["eval"] = {"every": 2, **eval_cfg}
    return toy_config


def _evals(out_dir):
    return [json.loads(line) for line in open(out_dir / "evals.jsonl")]


def test_best_checkpoint_is_the_argmax_of_the_validation_metric(toy_config, tmp_path, pm, capsys):
    result = run_config(_config(toy_config, 10, select="stepwise/val_acc"), pm=pm)
    evals = _evals(result.out_dir)
    assert [e["step"] for e in evals] == [2, 4, 6, 8, 10] and {e["task"] for e in evals} == {"toy"}
    argmax = max(evals, key=lambda e: e["metrics"]["val_acc"])["step"]
    best_pt = ckpt.load(result.out_dir / "checkpoints" / "best.pt")
    assert best_pt["step"] == argmax == 4
    best = json.loads((result.out_dir / "best.json").read_text())
    assert best["select"] == "toy/stepwise/val_acc" and best["mode"] == "max" and best["step"] == 4
    assert best["metrics"]["toy/stepwise/test_acc"] == pytest.approx(0.04)  # the test metric at that evaluation
    assert best["test"] == {"toy/stepwise/test_acc": pytest.approx(0.04), "toy/stepwise/loss": pytest.approx(0.1)}  # no val_*
    assert result.best == best and result.step == 10  # no patience: the run trains to the end
    out = " ".join(capsys.readouterr().err.split())  # the run's log goes to stderr, wrapped to the terminal
    assert "best evaluation by toy/stepwise/val_acc (max): step 4" in out and "toy/stepwise/test_acc = 0.04" in out


def test_select_mode_min_and_auto_for_a_loss(toy_config, pm):
    result = run_config(_config(toy_config, 10, select="toy/stepwise/loss"), pm=pm)  # auto: a loss is minimised
    assert result.best["mode"] == "min" and result.best["step"] == 4
    toy_config["logging"]["out_dir"] = str(result.out_dir.parent / "max")
    result = run_config(_config(toy_config, 10, select="stepwise/loss", select_mode="max"), pm=pm)
    assert result.best["step"] == 2  # 1 - 0.5 is the largest loss


def test_patience_stops_early_after_evaluations_without_improvement(toy_config, pm, capsys):
    result = run_config(_config(toy_config, 12, select="stepwise/val_acc", patience=2), pm=pm)
    # best at 4; 6 and 8 do not improve on it: stop at 8, before the better value at 12 is ever reached
    assert result.step == 8 and result.best["step"] == 4
    assert [e["step"] for e in _evals(result.out_dir)] == [2, 4, 6, 8]  # no second evaluation of step 8 at the end
    assert ckpt.load(result.checkpoint)["step"] == 8
    assert "stopping early at step 8" in " ".join(capsys.readouterr().err.split())


def test_patience_that_is_never_exhausted_trains_to_the_end(toy_config, pm):
    result = run_config(_config(toy_config, 12, select="stepwise/val_acc", patience=4), pm=pm)  # 6, 8, 10 do not improve: 3 < 4
    assert result.step == 12 and result.best["step"] == 12


def test_resume_keeps_the_best_value_from_the_checkpoint(toy_config, pm):
    first = run_config(_config(toy_config, 6, select="stepwise/val_acc"), pm=pm)
    assert first.best["step"] == 4
    assert ckpt.load(first.checkpoint)["selection"]["best_step"] == 4
    resumed = run_config(_config(toy_config, 10, select="stepwise/val_acc"), resume="last", pm=pm)
    # a fresh selection would pick step 8 (0.80) among the evaluations after the resume; the saved 0.90 wins
    assert resumed.best["step"] == 4 and ckpt.load(resumed.out_dir / "checkpoints" / "best.pt")["step"] == 4


def test_resume_after_an_early_stop_trains_nothing(toy_config, pm):
    run_config(_config(toy_config, 12, select="stepwise/val_acc", patience=2), pm=pm)
    again = run_config(_config(toy_config, 12, select="stepwise/val_acc", patience=2), resume="last", pm=pm)
    assert again.step == 8


def test_unknown_select_metric_lists_the_metrics(toy_config, pm):
    with pytest.raises(ConfigError, match=r"no evaluation metric is named 'stepwise/val_ac'.*did you mean 'stepwise/val_acc'.*toy/stepwise/test_acc"):
        run_config(_config(toy_config, 2, select="stepwise/val_ac"), pm=pm)


def test_patience_without_select_or_every_is_a_config_error(toy_config, pm):
    toy_config["eval"] = {"patience": 2, "every": 2}
    with pytest.raises(ConfigError, match=r"eval.patience needs eval.select"):
        run_config(toy_config, pm=pm)
