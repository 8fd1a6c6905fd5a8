"""Cross-domain runs: per-task batch sizes and learning rates, loss balancing, task agreement under torchrun,
exact resume of a multi-task run, and every token encoder training with one shared trunk."""

import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from omnissl import checkpoint as ckpt
from omnissl.config import load_config
from omnissl.engine import Trainer
from omnissl.nn.loss_balancing import LossBalancer

SIGTERM_CLI = Path(__file__).with_name("sigterm_cli.py")


def _three_tasks(toy_config: dict, out_dir: str) -> dict:
    """Three toy tasks with different batch sizes, sampled by weight."""
    cfg = copy.deepcopy(toy_config)
    base = cfg["tasks"][0]
    base["encoder"]["name"] = "toy.mlp"
    cfg["tasks"] = []
    for name, batch, weight, lr_mult in (("a", 16, 1.0, 1.0), ("b", 32, 2.0, 0.5), ("c", 64, 1.0, 2.0)):
        cfg["tasks"].append({**copy.deepcopy(base), "name": name, "batch_size": batch, "weight": weight, "lr_multiplier": lr_mult})
    cfg["engine"].update(steps=24, batch_size=48, task_sampling="weighted", loss_balancing="running_mean",
                         schedule={"name": "cosine", "warmup_steps": 3})
    cfg["logging"].update(out_dir=out_dir, log_every=1)
    return cfg


def test_per_task_batch_size_and_lr_multiplier(tmp_path, toy_config):
    cfg = _three_tasks(toy_config, str(tmp_path / "run"))
    cfg["tasks"][0].pop("batch_size")  # falls back to engine.batch_size
    trainer = Trainer(load_config(cfg))
    assert {n: s.global_batch for n, s in trainer.streams.items()} == {"a": 48, "b": 32, "c": 64}
    assert trainer.streams["c"].next().numel() == 64
    lrs = {}
    for group in trainer.optimizer.param_groups:
        for p in group["params"]:
            lrs[id(p)] = group["lr"]
    base = cfg["engine"]["optimizer"]["lr"] * trainer.scheduler.get_last_lr()[0] / trainer.scheduler.base_lrs[0]
    for name, mult in (("a", 1.0), ("b", 0.5), ("c", 2.0)):
        for p in trainer.model.tasks[name].parameters():
            if p.requires_grad:
                assert lrs[id(p)] == pytest.approx(base * mult), name


def test_lr_multiplier_leaves_shared_modules_at_the_base_rate(tmp_path):
    """A shared trunk used by two tasks with multipliers 0.1 and 3 trains at the base rate; their stems do not."""
    cfg = {
        "seed": 0,
        "shared": {"trunk": {"name": "core.transformer_trunk", "dim": 16, "depth": 1, "heads": 2}},
        "tasks": [
            {"name": name, "lr_multiplier": mult, "data": {"name": "tabular.sklearn", "table": "wine"},
             "encoder": {"name": "tabular.transformer", "dim": 16, "trunk": "@shared.trunk"},
             "views": {"name": "tabular.marginal_corruption"}, "objective": {"name": "core.simclr", "hidden_dim": 16, "proj_dim": 8}}
            for name, mult in (("x", 0.1), ("y", 3.0))
        ],
        "engine": {"steps": 2, "batch_size": 32, "device": "cpu", "optimizer": {"name": "sgd", "lr": 0.1}},
        "logging": {"out_dir": str(tmp_path / "run"), "progress": False},
    }
    trainer = Trainer(load_config(cfg))
    lr_of = {id(p): g["lr"] for g in trainer.optimizer.param_groups for p in g["params"]}
    trunk = trainer.model.shared["trunk"]
    assert all(lr_of[id(p)] == pytest.approx(0.1) for p in trunk.parameters())
    stem_x = [p for n, p in trainer.model.tasks["x"].encoder.named_parameters() if not n.startswith("trunk.")]
    stem_y = [p for n, p in trainer.model.tasks["y"].encoder.named_parameters() if not n.startswith("trunk.")]
    assert stem_x and all(lr_of[id(p)] == pytest.approx(0.01) for p in stem_x)
    assert stem_y and all(lr_of[id(p)] == pytest.approx(0.3) for p in stem_y)


def test_running_mean_balancing_follows_its_formula():
    bal = LossBalancer("running_mean", ["a", "b"], beta=0.9)
    first = bal("a", torch.tensor(1000.0))
    assert first.item() == pytest.approx(1.0)  # the first value seeds the mean
    second = bal("a", torch.tensor(500.0))
    mean = 0.9 * 1000.0 + 0.1 * 500.0
    assert second.item() == pytest.approx(500.0 / mean)
    assert bal.scales()["a"].item() == pytest.approx(mean)
    assert bal("b", torch.tensor(0.002)).item() == pytest.approx(1.0)  # each task its own scale
    loss = torch.tensor(3.0, requires_grad=True)
    bal("b", loss).backward()
    assert loss.grad.item() == pytest.approx(1.0 / (0.9 * 0.002 + 0.1 * 3.0))  # the mean is a constant


def test_uncertainty_weighting_is_kendall_2018():
    """``exp(-s) L + s``: d/ds = 1 - exp(-s) L, zero at ``exp(s) = L`` (Kendall et al. 2018, eq. 7)."""
    bal = LossBalancer("uncertainty", ["a", "b"])
    with torch.no_grad():
        bal.log_var[0] = 0.5
    loss = torch.tensor(4.0, requires_grad=True)
    out = bal("a", loss)
    assert out.item() == pytest.approx(torch.exp(torch.tensor(-0.5)).item() * 4.0 + 0.5)
    out.backward()
    assert bal.log_var.grad[0].item() == pytest.approx(1 - torch.exp(torch.tensor(-0.5)).item() * 4.0)
    assert bal.log_var.grad[1].item() == 0.0
    opt = torch.optim.SGD(bal.parameters(), lr=0.1)
    for _ in range(500):
        opt.zero_grad()
        bal("b", torch.tensor(20.0)).backward()
        opt.step()
    assert torch.exp(bal.log_var[1]).item() == pytest.approx(20.0, rel=1e-3)


def test_uncertainty_balancing_trains_in_the_engine(tmp_path, toy_config):
    cfg = _three_tasks(toy_config, str(tmp_path / "run"))
    cfg["engine"].update(steps=6, loss_balancing="uncertainty")
    result = Trainer(load_config(cfg)).fit()
    state = ckpt.load(result.checkpoint)
    assert state["model"]["balancer.log_var"].abs().sum() > 0  # learned, and saved with the model
    assert {"a/loss_scale", "b/loss_scale", "c/loss_scale"} & set(result.metrics)


def _cli(tmp_path, config, args, stop_at=0):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(config))
    env = {"STOP_AT": str(stop_at), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SIGTERM_CLI), "pretrain", str(path), *args], capture_output=True, text=True, env=env, timeout=300)


def test_multi_task_per_task_batch_resume_is_bitwise_equal(tmp_path, toy_config):
    """Three tasks, three batch sizes, lr multipliers, weighted sampling, running-mean balancing: 24 steps
    straight equal 11 steps, SIGTERM, resume to 24 (model, optimizer, streams, sampler, balancer)."""
    straight = _three_tasks(toy_config, str(tmp_path / "straight"))
    straight["logging"]["callbacks"] = [{"name": "test.kill_at"}]
    done = _cli(tmp_path, straight, [])
    assert done.returncode == 0, done.stderr
    resumed = dict(straight, logging={**straight["logging"], "out_dir": str(tmp_path / "resumed")})
    first = _cli(tmp_path, resumed, [], stop_at=11)
    assert first.returncode == 128 + 15, first.stderr
    assert ckpt.load(tmp_path / "resumed" / "checkpoints" / "last.pt")["step"] == 11
    second = _cli(tmp_path, resumed, ["--resume"])
    assert second.returncode == 0, second.stderr
    a = ckpt.load(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = ckpt.load(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 24
    assert a["streams"] == b["streams"] and a["sampler"]["count"] == b["sampler"]["count"]
    assert len({s["epoch"] * 1000 + s["cursor"] for s in a["streams"].values()}) > 1  # the tasks moved at different rates
    assert "balancer.running" in a["model"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


_RECORD_TASKS = '''
import os, sys
from omnissl import engine
from omnissl.cli import main
record = open(os.path.join(os.environ["RECORD_DIR"], f"tasks_rank{os.environ['RANK']}.txt"), "w")
_next = engine.TaskSampler.next
def next_task(self):
    name = _next(self)
    record.write(name + "\\n"); record.flush()
    return name
engine.TaskSampler.next = next_task
sys.exit(main())
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_take_the_same_task_at_every_step(tmp_path, toy_config):
    """torchrun, 2 gloo processes, 3 tasks sampled at random by weight: both ranks pick the same task at each
    of 30 steps (the sampler's generator is seeded identically and never reads rank-local state)."""
    cfg = _three_tasks(toy_config, str(tmp_path / "run"))
    cfg["engine"].update(steps=30)
    (tmp_path / "run.json").write_text(json.dumps(cfg))
    script = tmp_path / "record_tasks.py"
    script.write_text(_RECORD_TASKS)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "RECORD_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(script), "pretrain", str(tmp_path / "run.json")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [(tmp_path / f"tasks_rank{r}.txt").read_text().split() for r in (0, 1)]
    assert len(ranks[0]) == 30 and ranks[0] == ranks[1]
    assert set(ranks[0]) == {"a", "b", "c"}  # a random, not a constant, sequence
    assert ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 30


QUICKSTART = Path(__file__).parents[2] / "configs" / "cross_domain" / "quickstart.yaml"
TOKEN_TASKS = ("table", "speech", "graph", "video", "volume")
_SMALL = [  # the quickstart's components at test size
    "tasks[0].batch_size=16", "tasks[1].data.num_utterances=24", "tasks[1].batch_size=8", "tasks[2].data.num_nodes=60",
    "tasks[3].data.num_clips=24", "tasks[3].batch_size=8", "tasks[4].data.num_volumes=16", "tasks[4].batch_size=8",
    "tasks[5].data.num_users=40", "tasks[5].data.num_items=60", "tasks[5].batch_size=64",
]


def test_every_token_encoder_trains_with_the_shared_trunk_and_sends_it_gradients(tmp_path):
    """Tabular, speech frames, graph nodes, video tubes and volume patches share one trunk instance; a
    data2vec step of each task alone gives every trunk parameter a non-zero gradient."""
    trainer = Trainer(load_config(QUICKSTART, [*_SMALL, f"logging.out_dir={tmp_path / 'run'}", "engine.steps=6", "eval.at_end=false"]))
    trunk = trainer.model.shared["trunk"]
    generator = torch.Generator().manual_seed(0)
    for name in TOKEN_TASKS:
        task = trainer.model.tasks[name]
        assert task.encoder.trunk is trunk, name
        trainer.model.zero_grad(set_to_none=True)
        out = task(trainer.sources[name].batch(trainer.streams[name].next()), generator)
        assert torch.isfinite(out.loss), name
        out.loss.backward()
        missing = [n for n, p in trunk.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
        assert not missing, f"{name}: no gradient reached trunk {missing}"
    assert {id(p) for p in trunk.parameters()} <= {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    before = [p.detach().clone() for p in trunk.parameters()]
    result = trainer.fit()
    assert result.step == 6
    assert all(not torch.equal(a, b) for a, b in zip(before, trunk.parameters()))
    assert all(f"{name}/loss" in result.metrics for name in (*TOKEN_TASKS, "recsys"))


def test_tabular_transformer_projects_its_tokens_to_a_wider_shared_trunk(tmp_path):
    """A 16-wide feature tokenizer on a 32-wide shared trunk: tokens come out at the trunk's width, the
    projection and the trunk both receive gradients from a data2vec step, and equal widths add no projection."""
    cfg = {
        "seed": 0,
        "shared": {"trunk": {"name": "core.transformer_trunk", "dim": 32, "depth": 1, "heads": 2}},
        "tasks": [{"name": "table", "data": {"name": "tabular.sklearn", "table": "wine"},
                   "encoder": {"name": "tabular.transformer", "dim": 16, "trunk": "@shared.trunk"},
                   "views": {"name": "core.identity"}, "objective": {"name": "core.data2vec", "mask_ratio": 0.5, "num_masks": 2}}],
        "engine": {"steps": 2, "batch_size": 16, "device": "cpu"},
        "logging": {"out_dir": str(tmp_path / "run"), "progress": False},
        "eval": {"at_end": False},
    }
    trainer = Trainer(load_config(cfg))
    task = trainer.model.tasks["table"]
    encoder = task.encoder
    assert isinstance(encoder.project, torch.nn.Linear) and tuple(encoder.project.weight.shape) == (32, 16)
    batch = trainer.sources["table"].batch(trainer.streams["table"].next())
    out = encoder(batch)
    assert out.tokens.shape[-1] == 32 and out.pooled.shape[-1] == 32 and encoder.output_dim == 32
    loss = task(batch, torch.Generator().manual_seed(0)).loss
    loss.backward()
    assert encoder.project.weight.grad is not None and encoder.project.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.model.shared["trunk"].parameters())
    assert trainer.fit().step == 2

    cfg["tasks"][0]["encoder"]["dim"] = 32
    same = Trainer(load_config({**cfg, "logging": {"out_dir": str(tmp_path / "same"), "progress": False}}))
    assert isinstance(same.model.tasks["table"].encoder.project, torch.nn.Identity)


def _linear_test_accuracy(x, y, splits) -> float:
    from sklearn.linear_model import LogisticRegression

    train, test = splits["train"].numpy(), splits["test"].numpy()
    return LogisticRegression(max_iter=2000).fit(x[train], y[train]).score(x[test], y[test])


def test_the_quickstart_generated_sets_do_not_saturate_surface_features():
    """The quickstart's harder options (speech formant jitter and noise, noisy low-contrast volumes, a noisy SBM)
    leave the surface-feature linear probe well short of 100%, where the default volumes and SBM give 100% (and the
    default speech set does too: docs/results.md); so a pretrained encoder has room to beat the baselines. The
    options are read from the shipped quickstart itself."""
    import yaml
    from omnissl_graph.datasets import SBMConfig, generate_sbm
    from omnissl_medical.datasets import SyntheticVolumesConfig, synthetic_volumes
    from omnissl_speech.datasets import SyntheticConfig, synthetic_source

    tasks = {t["name"]: t["data"] for t in yaml.safe_load(QUICKSTART.read_text())["tasks"]}
    options = lambda name: {k: v for k, v in tasks[name].items() if k != "name"}  # noqa: E731

    def speech_vowel(**kw):
        src = synthetic_source(SyntheticConfig(**kw))
        return _linear_test_accuracy(src.surface["log-mel mean"].numpy(), src.labels["vowel"].numpy(), src.splits)

    def volume_label(**kw):
        src = synthetic_volumes(SyntheticVolumesConfig(**kw))
        x = torch.nn.functional.adaptive_avg_pool3d(src.volumes, 4).flatten(1).numpy()
        return _linear_test_accuracy(x, src.labels["label"].numpy(), src.splits)

    def graph_class(**kw):
        src = generate_sbm(SBMConfig(**kw))
        return _linear_test_accuracy(src.data.x.numpy(), src.labels["class"].numpy(), src.splits)

    assert speech_vowel(**options("speech")) < 0.95
    assert volume_label(num_volumes=128) == 1.0
    assert volume_label(**options("volume")) < 0.9
    assert graph_class() > 0.95
    assert graph_class(**options("graph")) < 0.85
