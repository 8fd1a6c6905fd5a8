"""Shared building blocks: trunk masking, heads, EMA teacher, device moves, position tables."""

import dataclasses
import math

import pytest
import torch

from omnissl.device import move_to_device
from omnissl.nn import EMATeacher, MLPHead, TransformerTrunk, TrunkConfig, gather_tokens, masked_mean, momentum_schedule, sincos_positions


@pytest.fixture
def trunk():
    torch.manual_seed(0)
    return TransformerTrunk(TrunkConfig(dim=16, depth=2, heads=4)).eval()


def test_padding_cannot_leak(trunk):
    short, long = torch.randn(1, 3, 16), torch.randn(1, 7, 16)
    padded = torch.zeros(2, 7, 16)
    padded[0, :3], padded[1] = short[0], long[0]
    padded[0, 3:] = 1e3  # garbage in the padding must not matter
    mask = torch.tensor([[False] * 3 + [True] * 4, [False] * 7])
    out = trunk(padded, padding_mask=mask)
    torch.testing.assert_close(out[0, :3], trunk(short)[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1], trunk(long)[0], rtol=1e-5, atol=1e-5)
    assert (out[0, 3:] == 0).all()
    torch.testing.assert_close(masked_mean(out, mask)[0], trunk(short)[0].mean(0), rtol=1e-5, atol=1e-5)


def test_keep_encodes_only_the_subset(trunk):
    x = torch.randn(2, 6, 16)
    keep = torch.tensor([[0, 2, 5], [1, 3, 4]])
    torch.testing.assert_close(trunk(x, keep=keep), trunk(gather_tokens(x, keep)))
    assert trunk(x, keep=keep).shape == (2, 3, 16)
    out, layers = trunk(x, return_layers=True)
    assert len(layers) == 2 and out.shape == (2, 6, 16)


def test_fully_padded_sample_stays_finite(trunk):
    out = trunk(torch.randn(2, 4, 16), padding_mask=torch.tensor([[True] * 4, [False] * 4]))
    assert torch.isfinite(out).all() and (out[0] == 0).all()


def test_trunk_rejects_bad_heads():
    with pytest.raises(ValueError, match="divisible by heads"):
        TransformerTrunk(TrunkConfig(dim=10, heads=4))


def test_mlp_head_shapes_and_bad_layers():
    head = MLPHead(8, 16, 4, num_layers=3, norm="batch", last_norm=True)
    assert head(torch.randn(5, 8)).shape == (5, 4)
    assert sum(isinstance(m, torch.nn.Linear) for m in head.modules()) == 3
    with pytest.raises(ValueError, match="num_layers >= 1"):
        MLPHead(8, 16, 4, num_layers=0)


def test_ema_teacher_update_and_momentum_schedules():
    student = torch.nn.Linear(3, 2)
    teacher = EMATeacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    before = teacher.module.weight.clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    teacher.update(student, momentum=0.9)
    torch.testing.assert_close(teacher.module.weight, 0.9 * before + 0.1 * student.weight.detach())
    assert momentum_schedule(0.996, 1.0, 0.0, "cosine") == pytest.approx(0.996)
    assert momentum_schedule(0.996, 1.0, 1.0, "cosine") == pytest.approx(1.0)
    # BYOL: tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2
    assert momentum_schedule(0.99, 1.0, 0.3, "cosine") == pytest.approx(1 - 0.01 * (math.cos(math.pi * 0.3) + 1) / 2)
    assert momentum_schedule(0.996, 1.0, 0.5, "linear") == pytest.approx(0.998)
    with pytest.raises(ValueError, match="valid choices"):
        momentum_schedule(0.9, 1.0, 0.5, "step")


def test_move_to_device_handles_nested_structures():
    @dataclasses.dataclass
    class Batch:
        x: torch.Tensor
        meta: dict

    class WithTo:
        def to(self, device):
            return "moved"

    batch = {"a": [torch.ones(1), (torch.zeros(1), 3)], "b": Batch(torch.ones(2), {"c": torch.ones(1)}), "d": WithTo(), "e": "text"}
    moved = move_to_device(batch, "meta")
    assert moved["a"][0].device.type == "meta" and moved["a"][1][0].device.type == "meta" and moved["a"][1][1] == 3
    assert moved["b"].x.device.type == "meta" and moved["b"].meta["c"].device.type == "meta"
    assert moved["d"] == "moved" and moved["e"] == "text"


def test_sincos_positions_formula():
    table = sincos_positions(5, 8)
    assert table[3, 0] == pytest.approx(math.sin(3)) and table[3, 1] == pytest.approx(math.cos(3))
    assert table[2, 2] == pytest.approx(math.sin(2 / 10000 ** (2 / 8)))
    with pytest.raises(ValueError):
        sincos_positions(4, 7)
