"""Reconstruction losses against numpy versions of the reference code.

Sources: MAE ``models_mae.py`` ``forward_loss`` (norm_pix_loss: ``(target - mean) / (var + 1e-6) ** .5`` with
torch's unbiased var; ``(pred - target) ** 2 .mean(-1)``; ``(loss * mask).sum() / mask.sum()``);
GraphMAE ``sce_loss`` (``(1 - (x_n * y_n).sum(-1)).pow(alpha).mean()``).
"""

import numpy as np
import pytest
import torch

from omnissl.losses.reconstruction import MaskedL1Loss, NormalizedMSELoss, ScaledCosineError, latent_prediction_loss


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    pred, target = torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g) * 3 + 1
    mask = torch.rand(2, 5, generator=g) > 0.5
    return pred, target, mask


def test_normalized_mse_matches_mae_reference():
    pred, target, mask = _data()
    t = target.double().numpy()
    t = (t - t.mean(-1, keepdims=True)) / (t.var(-1, ddof=1, keepdims=True) + 1e-6) ** 0.5
    per = ((pred.double().numpy() - t) ** 2).mean(-1)
    m = mask.double().numpy()
    ref = (per * m).sum() / m.sum()
    p = pred.clone().requires_grad_(True)
    loss = NormalizedMSELoss()(p, target, mask)
    loss.backward()
    assert abs(float(loss.detach()) - ref) < 1e-5
    ref_grad = 2 * (pred.double().numpy() - t) / 6 * m[..., None] / m.sum()
    assert np.allclose(p.grad.double().numpy(), ref_grad, atol=1e-6)
    assert abs(float(NormalizedMSELoss(normalize_target=False)(pred, target)) - float(((pred - target) ** 2).mean())) < 1e-5


def test_l1_and_scaled_cosine_error_match_references():
    pred, target, mask = _data(1)
    m = mask.double().numpy()
    l1 = (np.abs(pred.double().numpy() - target.double().numpy()).mean(-1) * m).sum() / m.sum()
    assert abs(float(MaskedL1Loss()(pred, target, mask)) - l1) < 1e-5
    x = pred.double().numpy()
    y = target.double().numpy()
    xn, yn = x / np.linalg.norm(x, axis=-1, keepdims=True), y / np.linalg.norm(y, axis=-1, keepdims=True)
    for gamma in (1.0, 2.0, 3.0):
        sce = ((1 - (xn * yn).sum(-1)) ** gamma).mean()
        assert abs(float(ScaledCosineError(gamma)(pred, target)) - sce) < 1e-5
    # gradient of the gamma = 2 error w.r.t. the prediction against the plain formula's gradient
    p = pred.clone().requires_grad_(True)
    ScaledCosineError(2.0)(p, target).backward()
    r = pred.double().clone().requires_grad_(True)
    y = target.double()
    cos = (r * y).sum(-1) / (r.norm(dim=-1) * y.norm(dim=-1))
    ((1 - cos) ** 2).mean().backward()
    assert torch.allclose(p.grad.double(), r.grad, atol=1e-6)


def test_reconstruction_bad_inputs():
    pred, target, mask = _data()
    with pytest.raises(ValueError, match="same shape"):
        NormalizedMSELoss()(pred, target[..., :3])
    with pytest.raises(ValueError, match="mask"):
        MaskedL1Loss()(pred, target, mask[:, :2])
    with pytest.raises(ValueError, match="gamma"):
        ScaledCosineError(0.5)
    with pytest.raises(ValueError, match="valid choices"):
        latent_prediction_loss(pred, target, "huber")
    assert float(ScaledCosineError()(target, target * 2)) < 1e-6
