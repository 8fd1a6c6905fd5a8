"""Sinkhorn-Knopp and the SwAV loss against SwAV's ``distributed_sinkhorn`` (one process) written in numpy.

Source: github.com/facebookresearch/swav ``main_swav.py``: ``Q = exp(out / eps).t(); Q /= sum(Q)``; per
iteration ``Q /= sum_rows; Q /= K; Q /= sum_cols; Q /= B``; ``Q *= B``; loss
``-mean(sum(q * log_softmax(out / T)))`` over the swapped pair.
"""

import numpy as np
import pytest
import torch

from omnissl.losses.swav import Prototypes, SwAVLoss, sinkhorn_knopp


def sinkhorn_numpy(scores, eps, iters):
    q = np.exp(scores / eps).T
    k, b = q.shape
    q /= q.sum()
    for _ in range(iters):
        q /= q.sum(axis=1, keepdims=True)
        q /= k
        q /= q.sum(axis=0, keepdims=True)
        q /= b
    return (q * b).T


def test_sinkhorn_matches_reference_and_equipartitions():
    g = torch.Generator().manual_seed(0)
    scores = torch.nn.functional.normalize(torch.randn(12, 8, generator=g), dim=1) @ torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1).T
    q = sinkhorn_knopp(scores, epsilon=0.05, iterations=3)
    ref = sinkhorn_numpy(scores.double().numpy(), 0.05, 3)
    assert np.allclose(q.numpy(), ref, atol=1e-5)
    assert torch.allclose(q.sum(dim=1), torch.ones(12), atol=1e-5)
    # many iterations: every prototype receives B / K of the mass
    q_long = sinkhorn_knopp(scores, epsilon=0.05, iterations=200)
    assert torch.allclose(q_long.sum(dim=0), torch.full((5,), 12 / 5), atol=1e-3)


def test_sinkhorn_is_stable_for_small_epsilon():
    scores = torch.randn(6, 4) * 3
    q = sinkhorn_knopp(scores, epsilon=0.001, iterations=3)
    assert torch.isfinite(q).all()


def test_swav_loss_matches_reference_and_gradient():
    g = torch.Generator().manual_seed(1)
    s_a, s_b = torch.randn(6, 4, generator=g) * 0.5, torch.randn(6, 4, generator=g) * 0.5
    loss_fn = SwAVLoss(temperature=0.1, epsilon=0.05, sinkhorn_iterations=3)
    a, b = s_a.clone().requires_grad_(True), s_b.clone().requires_grad_(True)
    loss = loss_fn(a, b)
    loss.backward()
    q_a = torch.from_numpy(sinkhorn_numpy(s_a.double().numpy(), 0.05, 3))
    q_b = torch.from_numpy(sinkhorn_numpy(s_b.double().numpy(), 0.05, 3))
    ra, rb = s_a.double().requires_grad_(True), s_b.double().requires_grad_(True)
    ref = -0.5 * ((q_a * torch.log_softmax(rb / 0.1, 1)).sum(1).mean() + (q_b * torch.log_softmax(ra / 0.1, 1)).sum(1).mean())
    ref.backward()
    assert torch.allclose(loss.double(), ref, atol=1e-5)
    assert torch.allclose(a.grad.double(), ra.grad, atol=1e-5) and torch.allclose(b.grad.double(), rb.grad, atol=1e-5)
    assert torch.allclose(loss_fn(s_a, s_b), loss_fn(s_b, s_a))


def test_swav_bad_inputs_and_prototypes():
    with pytest.raises(ValueError):
        SwAVLoss(epsilon=0)
    with pytest.raises(ValueError, match="equal shape"):
        SwAVLoss()(torch.randn(4, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match="scores"):
        sinkhorn_knopp(torch.randn(4))
    protos = Prototypes(8, 5)
    with torch.no_grad():
        protos.weight.mul_(3)
    protos.normalise_()
    assert torch.allclose(protos.weight.norm(dim=1), torch.ones(5))
    assert protos(torch.randn(3, 8)).abs().max() <= 1 + 1e-6
