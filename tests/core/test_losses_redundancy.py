"""Barlow Twins, Mixed Barlow Twins and VICReg against the authors' formulas, written out plainly.

Sources: Barlow Twins eq. (1)-(2) and github.com/facebookresearch/barlowtwins (BatchNorm1d(affine=False),
``c = bn(z1).T @ bn(z2) / N``); Mixed Barlow Twins github.com/wgcban/mix-bt ``main.py`` (cc_m_1, cc_m_1_gt,
cc_m_2, cc_m_2_gt, ``mixup_loss_scale * lambda * (...)``); VICReg github.com/facebookresearch/vicreg
``main_vicreg.py`` (repr_loss, std_loss with eps 1e-4, cov_loss / num_features, 25/25/1).
"""

import numpy as np
import pytest
import torch

from omnissl.losses.barlow_twins import BarlowTwinsLoss
from omnissl.losses.mixed_barlow_twins import MixedBarlowTwinsRegulariser
from omnissl.losses.vicreg import VICRegLoss


def _pair(b=8, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=torch.float64) * 2 + 1, torch.randn(b, d, generator=g, dtype=torch.float64)


def barlow_reference(z1, z2, lam):
    """Element-wise loops over the cross-correlation, BatchNorm statistics by hand (biased var, eps 1e-5)."""
    n, d = z1.shape

    def bn(z):
        cols = []
        for j in range(d):
            col = z[:, j]
            mean = col.sum() / n
            var = ((col - mean) ** 2).sum() / n
            cols.append((col - mean) / torch.sqrt(var + 1e-5))
        return torch.stack(cols, dim=1)

    a, b = bn(z1), bn(z2)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c_ij = sum(a[k, i] * b[k, j] for k in range(n)) / n
            loss = loss + ((1 - c_ij) ** 2 if i == j else lam * c_ij**2)
    return loss


def _grads(fn, *xs):
    xs = [x.clone().requires_grad_(True) for x in xs]
    loss = fn(*xs)
    return loss.detach(), torch.autograd.grad(loss, xs)


def test_barlow_twins_matches_reference_loss_and_gradient():
    z1, z2 = _pair()
    loss, grads = _grads(BarlowTwinsLoss(0.0051), z1, z2)
    ref, ref_grads = _grads(lambda a, b: barlow_reference(a, b, 0.0051), z1, z2)
    assert torch.allclose(loss.double(), ref, rtol=1e-5)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g.double(), r, atol=1e-5)


def test_barlow_twins_symmetric_identity_and_bad_inputs():
    z1, z2 = _pair()
    loss = BarlowTwinsLoss()
    assert torch.allclose(loss(z1, z2), loss(z2, z1), atol=1e-5)
    # identical decorrelated views: c is the identity up to BatchNorm's eps, so the loss is ~0
    q, _ = torch.linalg.qr(torch.randn(64, 4, dtype=torch.float64))
    q = (q - q.mean(0)) * 8
    assert loss(q, q) < 1e-3
    with pytest.raises(ValueError, match="at least 2"):
        loss(z1[:1], z2[:1])
    with pytest.raises(ValueError, match="equal shape"):
        loss(z1, z2[:, :2])
    with pytest.raises(ValueError, match="lambda"):
        BarlowTwinsLoss(-1.0)


def mix_reference(z1, z2, zm, alpha, index, lam, scale):
    """The authors' mix-bt lines, transcribed with numpy-style operations on torch float64."""
    n = z1.shape[0]
    out_1_norm = (z1 - z1.mean(dim=0)) / z1.std(dim=0)
    out_2_norm = (z2 - z2.mean(dim=0)) / z2.std(dim=0)
    out_m_norm = (zm - zm.mean(dim=0)) / zm.std(dim=0)
    cc_m_1 = out_m_norm.T @ out_1_norm / n
    cc_m_1_gt = alpha * out_1_norm.T @ out_1_norm / n + (1 - alpha) * out_2_norm[index, :].T @ out_1_norm / n
    cc_m_2 = out_m_norm.T @ out_2_norm / n
    cc_m_2_gt = alpha * out_1_norm.T @ out_2_norm / n + (1 - alpha) * out_2_norm[index, :].T @ out_2_norm / n
    return scale * lam * ((cc_m_1 - cc_m_1_gt).pow(2).sum() + (cc_m_2 - cc_m_2_gt).pow(2).sum())


def test_mixed_barlow_twins_matches_authors_code():
    z1, z2 = _pair(seed=1)
    zm = torch.randn_like(z1)
    alpha, index = torch.tensor(0.3, dtype=torch.float64), torch.randperm(8, generator=torch.Generator().manual_seed(0))
    reg = MixedBarlowTwinsRegulariser(0.0051, 2.0)
    loss, grads = _grads(lambda a, b, m: reg(a, b, m, alpha, index), z1, z2, zm)
    ref, ref_grads = _grads(lambda a, b, m: mix_reference(a, b, m, alpha, index, 0.0051, 2.0), z1, z2, zm)
    assert torch.allclose(loss.double(), ref, rtol=1e-5)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g.double(), r, atol=1e-6)


def test_mixed_barlow_twins_is_zero_when_the_mix_is_view_one():
    # with a = 1 the mixed sample is view 1, and the linearity targets reduce to C(1, 1) and C(1, 2) exactly
    z1, z2 = _pair(seed=2)
    index = torch.arange(8)
    assert MixedBarlowTwinsRegulariser()(z1, z2, z1, torch.tensor(1.0, dtype=torch.float64), index) < 1e-10


def vicreg_reference(x, y):
    x_np, y_np = x, y
    n, d = x_np.shape
    repr_loss = ((x_np - y_np) ** 2).mean()
    x_c, y_c = x_np - x_np.mean(0), y_np - y_np.mean(0)
    std_x = torch.sqrt((x_c**2).sum(0) / (n - 1) + 1e-4)
    std_y = torch.sqrt((y_c**2).sum(0) / (n - 1) + 1e-4)
    std_loss = torch.clamp(1 - std_x, min=0).mean() / 2 + torch.clamp(1 - std_y, min=0).mean() / 2
    cov_loss = 0.0
    for c in (x_c, y_c):
        cov = c.T @ c / (n - 1)
        cov_loss = cov_loss + sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d
    return 25 * repr_loss + 25 * std_loss + 1 * cov_loss


def test_vicreg_matches_reference_loss_and_gradient():
    x, y = _pair(seed=4)
    x = x * 0.5  # some dimensions below std 1 so the hinge is active
    loss, grads = _grads(VICRegLoss(), x, y)
    ref, ref_grads = _grads(vicreg_reference, x, y)
    assert torch.allclose(loss.double(), ref, rtol=1e-5)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g.double(), r, atol=1e-5)


def test_vicreg_symmetric_and_bad_inputs():
    x, y = _pair()
    loss = VICRegLoss()
    assert torch.allclose(loss(x, y), loss(y, x), atol=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        loss(x[:1], y[:1])
    with pytest.raises(ValueError, match="equal shape"):
        loss(x, y[:3])
    bad = x.clone()
    bad[2, 1] = float("nan")
    assert not torch.isfinite(loss(bad, y))
    # numpy check of the variance hinge at collapse: identical constant embeddings give std_loss = 1 - sqrt(1e-4)
    const = torch.ones(4, 3)
    inv, var, cov = loss.terms(const, const)
    assert float(inv) == 0 and abs(float(var) - (1 - np.sqrt(1e-4))) < 1e-6 and float(cov) == 0
