"""Throughput accounting: FLOPs counted once on a copy (the run is untouched), and the log fields of a CPU run."""

import json

import pytest
import torch
from torch import nn

from omnissl import accounting
from omnissl.engine import run_config


def test_flops_of_a_linear_layer_match_the_formula():
    # forward 2*B*I*O; backward 2*B*I*O for the weight's gradient, and 2*B*I*O more for the input's when it needs one
    layer = nn.Linear(32, 16, bias=False)
    x = torch.randn(8, 32)
    assert accounting.task_flops(layer, lambda m: m(x).sum()) == 4 * 8 * 32 * 16
    x.requires_grad_(True)
    assert accounting.task_flops(layer, lambda m: m(x).sum()) == 6 * 8 * 32 * 16


def test_counting_on_a_copy_leaves_the_module_and_the_rng_alone():
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    flops = accounting.task_flops(net, lambda m: m(torch.randn(16, 4)).pow(2).mean())
    assert flops > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BatchNorm stats unchanged
    assert all(p.grad is None for p in net.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_read_reports_wait_share_tflops_and_mfu_only_with_a_peak(monkeypatch):
    clock = iter([0.0, 1.0, 1.5, 4.0] + [5.0] * 4)  # reset, fetch start, fetch end, read, then later readings
    monkeypatch.setattr(accounting.time, "perf_counter", lambda: next(clock))
    acc = accounting.Accounting(torch.device("cpu"), {"a": 2 * 10**12}, peak_tflops=4.0)
    acc.fetch(lambda: None)
    acc.count("a")
    acc.step_done()
    out = acc.read()
    assert out["data_wait_fraction"] == pytest.approx(0.5 / 4.0)
    assert out["step_time_s"] == pytest.approx(4.0)
    assert out["tflops"] == pytest.approx(0.5) and out["mfu"] == pytest.approx(0.125)
    assert out["peak_memory_gb"] > 0
    no_peak = accounting.Accounting(torch.device("cpu"), {"a": 10}, peak_tflops=None)
    no_peak.count("a")
    assert "mfu" not in no_peak.read()


def test_a_task_without_a_count_logs_no_tflops():
    acc = accounting.Accounting(torch.device("cpu"), {"a": 10}, peak_tflops=1.0)
    acc.count("b")
    assert not {"tflops", "mfu"} & set(acc.read())


def test_known_cuda_peaks_and_configured_peak():
    assert accounting.device_peak_tflops(torch.device("cpu"), None) is None
    assert accounting.device_peak_tflops(torch.device("cpu"), 2.5) == 2.5


def test_cpu_run_logs_the_accounting_fields_and_trains_as_without_them(toy_config, tmp_path):
    toy_config["engine"].update(steps=6, peak_tflops=0.5)
    toy_config["logging"]["log_every"] = 3
    with_acc = run_config(toy_config)
    lines = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl") if '"loss"' in l]
    last = lines[-1]
    assert {"tflops", "mfu", "data_wait_fraction", "peak_memory_gb", "step_time_s"} <= set(last)
    assert last["tflops"] > 0 and last["mfu"] == pytest.approx(last["tflops"] / 0.5)
    assert 0 <= last["data_wait_fraction"] < 1
    toy_config["engine"]["count_flops"] = False
    toy_config["logging"]["out_dir"] = str(tmp_path / "plain")
    without = run_config(toy_config)
    plain = [json.loads(l) for l in open(tmp_path / "plain" / "metrics.jsonl") if '"loss"' in l]
    assert "tflops" not in plain[-1] and "data_wait_fraction" in plain[-1]
    for key, value in with_acc.model.state_dict().items():  # counting on a copy changed nothing the run trains
        assert torch.equal(value, without.model.state_dict()[key]), key


def test_flops_of_a_data2vec_task_are_counted():
    """core.data2vec reads its teacher's blocks through forward hooks; on the copy the count runs on, they must
    fill the copy's list (they filled the original's, and every cross-domain task printed 'FLOPs not counted')."""
    from omnissl.interfaces import Views
    from omnissl.nn.token_encoder import TokenTransformer, TokenTransformerConfig
    from omnissl.objectives.data2vec import Data2VecConfig, Data2VecObjective

    encoder = TokenTransformer(6, TokenTransformerConfig(dim=16, depth=2, heads=2))
    task = nn.ModuleDict({"encoder": encoder, "objective": Data2VecObjective(encoder, Data2VecConfig(num_masks=2), seed=0)})
    x = torch.randn(4, 10, 6)
    flops = accounting.task_flops(task, lambda m: m["objective"](m["encoder"], Views(inputs=[x], original=x)).loss)
    # at least the teacher's forward: two blocks' QKV, output and two MLP projections (4x width) on every token
    assert flops >= 4 * 10 * 2 * (2 * 16 * (3 * 16 + 16 + 2 * 4 * 16))
