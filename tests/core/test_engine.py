"""Engine behaviour on the toy modality: training works, checkpoints are atomic, failures are clear."""

import errno
import json
import math

import pytest
import torch

from omnissl import checkpoint as ckpt
from omnissl.config import load_config
from omnissl.engine import TaskSampler, TaskStream, Trainer, run_config
from omnissl.errors import StorageError, TrainingError
from omnissl.schedules import ScheduleConfig, lr_multiplier


def test_toy_run_learns_and_logs(toy_config, tmp_path):
    toy_config["engine"]["steps"] = 60
    result = run_config(toy_config)
    lines = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
    assert lines[0]["loss"] > lines[-1]["loss"]  # SimCLR loss goes down
    assert {"lr", "samples_per_s", "toy/rankme", "toy/embedding_std"} <= set(lines[-1])
    assert result.step == 60 and result.checkpoint.is_file()


def test_fresh_run_in_a_used_out_dir_keeps_the_earlier_run(toy_config, tmp_path):
    toy_config["engine"]["steps"] = 4
    run_config(toy_config)
    first = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    toy_config["seed"] = 1
    run_config(toy_config)
    (moved,) = (tmp_path / "run").glob("previous-*")
    assert (moved / "checkpoints" / "last.pt").read_bytes() == first
    assert json.loads((moved / "config.json").read_text())["seed"] == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == 1
    steps = [json.loads(l)["step"] for l in open(tmp_path / "run" / "metrics.jsonl")]
    assert steps and steps == [json.loads(l)["step"] for l in open(moved / "metrics.jsonl")]  # not appended to the old log


def test_interrupted_write_keeps_previous_checkpoint(toy_config, tmp_path, monkeypatch):
    trainer = Trainer(load_config(toy_config))
    trainer.last_checkpoint = None
    trainer._init_metrics()
    good = trainer.save_checkpoint()
    before = good.read_bytes()

    def crash(state, fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", crash)
    trainer.step = 5
    with pytest.raises(StorageError, match=r"no space left on device while writing .*last\.pt"):
        trainer.save_checkpoint()
    assert good.read_bytes() == before and ckpt.load(good)["step"] == 0
    assert not list(good.parent.glob(".*tmp*"))


def test_nonfinite_loss_stops_naming_task_step_and_checkpoint(toy_config):
    toy_config["engine"].update(steps=30, optimizer={"name": "sgd", "lr": 1e30}, checkpoint={"every": 1})
    toy_config["logging"]["log_every"] = 1
    with pytest.raises(TrainingError, match=r"task 'toy': non-finite loss at step \d+; training stopped \(last good checkpoint: .*last.pt\)"):
        run_config(toy_config)


class SometimesNaN(torch.nn.Module):
    """Toy views whose inputs are NaN on about half of the steps."""

    def forward(self, batch, generator):
        from omnissl import Views

        poison = torch.where(torch.rand((), generator=generator) < 0.5, float("nan"), 1.0)
        return Views(inputs=[batch * poison, batch * poison], original=batch)


def test_nonfinite_skip_policy_continues(toy_config):
    from omnissl import ViewGeneratorSpec, hookimpl
    from omnissl.plugins import PluginManager

    class Plugin:
        @hookimpl
        def omnissl_view_generators(self):
            yield ViewGeneratorSpec(name="test.sometimes_nan", factory=lambda cfg, ctx: SometimesNaN())

    pm = PluginManager(autoload=False)
    pm.register(Plugin(), name="test")
    toy_config["engine"].update(steps=12, on_nonfinite="skip")
    toy_config["tasks"][0]["views"] = {"name": "test.sometimes_nan"}
    result = run_config(toy_config, pm=pm)
    assert result.step == 12
    params = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    assert torch.isfinite(params).all()
    toy_config["engine"]["on_nonfinite"] = "stop"
    with pytest.raises(TrainingError, match="non-finite loss"):
        run_config(toy_config, pm=pm)


def test_corrupt_checkpoint_is_clear_error(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="cannot read checkpoint .*bad.pt"):
        ckpt.load(path)


def test_export_safetensors(toy_config, tmp_path):
    from safetensors.torch import load_file

    result = run_config(toy_config)
    written = ckpt.export_encoders(result.checkpoint, tmp_path / "export")
    weights = load_file(str(tmp_path / "export" / "encoder_toy.safetensors"))
    enc = result.model.tasks["toy"].encoder.state_dict()
    assert weights.keys() == enc.keys() and all(torch.equal(weights[k], enc[k]) for k in enc)
    assert (tmp_path / "export" / "config.yaml") in written


def test_multi_task_round_robin(toy_config):
    second = json.loads(json.dumps(toy_config["tasks"][0]))
    second["name"] = "toy2"
    second["data"]["seed"] = 3
    toy_config["tasks"].append(second)
    toy_config["engine"]["steps"] = 10
    result = run_config(toy_config)
    assert result.step == 10 and {"toy/loss", "toy2/loss"} <= set(result.metrics)


def test_gradient_accumulation_matches_large_batch(toy_config):
    """Two accumulated micro-batches give the update of their averaged losses (linear projector: no BatchNorm)."""
    toy_config["tasks"][0]["objective"]["proj_layers"] = 1
    toy_config["tasks"][0]["views"].update(sigma=0.0, drop=0.0)
    toy_config["engine"].update(steps=1, batch_size=32, accumulate=2, optimizer={"name": "sgd", "lr": 0.1, "weight_decay": 0.0})
    acc = Trainer(load_config(toy_config))
    first = acc.streams["toy"].next(), acc.streams["toy"].next()
    acc.streams["toy"].load_state_dict({"epoch": 0, "cursor": 0})
    model = acc.fit().model
    assert first[0].numel() == 32
    # reference: average of the two micro-batch losses computed by hand from the same initial weights
    ref = Trainer(load_config(toy_config))
    task = ref.model.tasks["toy"]
    loss = sum(task(ref.sources["toy"].batch(i), torch.Generator()).loss for i in first) / 2
    loss.backward()
    with torch.no_grad():
        for p in task.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    for (name, p), q in zip(task.named_parameters(), model.tasks["toy"].parameters()):
        torch.testing.assert_close(p, q, msg=name)


def test_task_stream_covers_epoch_and_shards():
    one = TaskStream(10, 4, seed=0, rank=0, world=1, device=torch.device("cpu"))
    epoch = torch.cat([one.next(), one.next()])
    assert epoch.unique().numel() == 8 and one.steps_per_epoch == 2
    r0 = TaskStream(10, 4, seed=0, rank=0, world=2, device=torch.device("cpu"))
    r1 = TaskStream(10, 4, seed=0, rank=1, world=2, device=torch.device("cpu"))
    fresh = TaskStream(10, 4, seed=0, rank=0, world=1, device=torch.device("cpu"))
    assert torch.equal(torch.cat([r0.next(), r1.next()]), fresh.next())
    with pytest.raises(Exception, match="divisible"):
        TaskStream(10, 3, seed=0, rank=0, world=2, device=torch.device("cpu"))


@pytest.mark.parametrize("mode,expected", [("round_robin", [0.5, 0.5]), ("proportional", [0.25, 0.75]), ("weighted", [0.8, 0.2])])
def test_task_sampling_frequencies(mode, expected):
    sampler = TaskSampler(mode, ["a", "b"], sizes=[100, 300], weights=[4.0, 1.0], seed=0)
    draws = [sampler.next() for _ in range(4000)]
    freq = [draws.count("a") / 4000, draws.count("b") / 4000]
    assert freq == pytest.approx(expected, abs=0.03)


def test_schedules():
    total = 1000
    cos = lr_multiplier(ScheduleConfig(name="cosine", warmup_steps=100, min_lr_ratio=0.1), total)
    assert cos(0) == pytest.approx(0.01) and cos(99) == pytest.approx(1.0) and cos(999) == pytest.approx(0.1, abs=1e-4)
    assert cos(550) == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-2)
    wsd = lr_multiplier(ScheduleConfig(name="wsd", warmup_steps=10, decay_fraction=0.2, decay_shape="linear"), total)
    assert wsd(500) == 1.0 and wsd(799) == 1.0 and wsd(900) == pytest.approx(0.5) and wsd(999) == pytest.approx(1 / 200)
    inf = lr_multiplier(ScheduleConfig(name="infinite", warmup_steps=10, cooldown_steps=90, constant_lr_ratio=0.25, anneal_steps=100), total)
    assert inf(9) == pytest.approx(1.0) and inf(55) == pytest.approx(0.25 + 0.75 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert inf(100) == pytest.approx(0.25) and inf(850) == pytest.approx(0.25) and inf(950) == pytest.approx(0.125)
    assert inf(999) == pytest.approx(0.0025)


def test_lars_trust_ratio():
    from omnissl.optim import LARS

    w = torch.nn.Parameter(torch.full((2, 2), 2.0))
    b = torch.nn.Parameter(torch.ones(2))
    opt = LARS([{"params": [w], "lars": True, "weight_decay": 0.0}, {"params": [b], "lars": False, "weight_decay": 0.0}], lr=1.0, momentum=0.0, trust_coefficient=0.1)
    w.grad, b.grad = torch.ones(2, 2), torch.ones(2)
    opt.step()
    # trust = 0.1 * ||w|| / ||g|| = 0.1 * 4 / 2 = 0.2; update = lr * trust * g
    torch.testing.assert_close(w.detach(), torch.full((2, 2), 1.8))
    torch.testing.assert_close(b.detach(), torch.zeros(2))


def test_loader_workers_give_the_same_run(toy_config, tmp_path):
    toy_config["engine"]["steps"] = 12
    toy_config["engine"]["checkpoint"] = {"every": 6}
    direct = run_config(toy_config).model.state_dict()
    toy_config["engine"]["workers"] = 2
    toy_config["logging"]["out_dir"] = str(tmp_path / "workers")
    loaded = run_config(toy_config).model.state_dict()
    assert all(torch.equal(direct[k], loaded[k]) for k in direct)


def test_evaluators_report_baselines_and_cli_evaluate(toy_config, capsys):
    from omnissl.cli import main

    toy_config["engine"]["steps"] = 60
    toy_config["tasks"][0]["eval"] = [{"name": "core.linear_probe", "seeds": 2}]
    result = run_config(toy_config)
    rows = result.evals[0].rows
    assert len(rows) == 3 and len({r["representation"] for r in rows}) == 3
    assert main(["evaluate", str(result.checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "linear" in out.lower() and "random" in out.lower()


def test_adam_with_l2_on_every_parameter():
    from omnissl.optim import OptimizerConfig, build_optimizer

    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(OptimizerConfig(name="adam", weight_decay=0.1, decay_all_params=True), model.named_parameters(), torch.device("cpu"))
    assert isinstance(opt, torch.optim.Adam) and not isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1] and len(opt.param_groups[0]["params"]) == 2
    default = build_optimizer(OptimizerConfig(name="adam", weight_decay=0.1), model.named_parameters(), torch.device("cpu"))
    assert [g["weight_decay"] for g in default.param_groups] == [0.1, 0.0]
