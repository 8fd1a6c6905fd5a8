"""NT-Xent, MoCHi and AMCL against plain per-row implementations of the papers' formulas.

Sources: SimCLR eq. (1) (Chen et al. 2020); MoCHi eqs. (3)-(4) (Kalantidis et al. 2020); AMCL's SimCLR loss
with the temperature map ``eta + iota * sigmoid(-phi(x).phi(y))`` and ``Omega(tau) = d/2 log tau + 1/tau``
(Wang et al. 2024, authors' code github.com/LeiWangR/cl ``amcl/losses.py``). The references below loop over
rows and negatives with scalar operations; gradients are those of the reference computation.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from omnissl.losses.amcl import AMCLLoss
from omnissl.losses.mochi import MoCHiNTXentLoss, MoCHiQueueLoss
from omnissl.losses.ntxent import NTXentLoss


def _views(b=6, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=torch.float64), torch.randn(b, d, generator=g, dtype=torch.float64)


def ntxent_reference(z_a, z_b, t):
    z = torch.cat([z_a, z_b])
    z = z / z.norm(dim=1, keepdim=True)
    n2 = z.shape[0]
    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        denom = sum(torch.exp(z[i] @ z[k] / t) for k in range(n2) if k != i)
        total = total - torch.log(torch.exp(z[i] @ z[j] / t) / denom)
    return total / n2


def _grads(fn, *xs):
    xs = [x.clone().requires_grad_(True) for x in xs]
    loss = fn(*xs)
    return loss.detach(), torch.autograd.grad(loss, xs)


def test_ntxent_matches_reference_loss_and_gradient():
    z_a, z_b = _views()
    loss, grads = _grads(lambda a, b: NTXentLoss(0.5)(a, b), z_a, z_b)
    ref, ref_grads = _grads(lambda a, b: ntxent_reference(a, b, 0.5), z_a, z_b)
    # the loss computes in float32
    assert torch.allclose(loss.double(), ref, atol=1e-5)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-5)


def test_ntxent_symmetric_and_bad_inputs():
    z_a, z_b = _views()
    loss = NTXentLoss(0.2)
    assert torch.allclose(loss(z_a, z_b), loss(z_b, z_a), atol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        loss(z_a[:1], z_b[:1])
    with pytest.raises(ValueError, match="equal shape"):
        loss(z_a, z_b[:, :3])
    bad = z_a.clone()
    bad[0, 0] = float("nan")
    assert not torch.isfinite(loss(bad, z_b))
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)




def mochi_ntxent_reference(z_a, z_b, t, n_hard, s, s_prime, seed):
    """Per-row MoCHi on SimCLR negatives; draws replayed in the documented order (pairs, alpha, pick, beta)."""
    z = torch.cat([z_a, z_b])
    z = z / z.norm(dim=1, keepdim=True)
    n2 = z.shape[0]
    n = min(n_hard, n2 - 2)
    g = torch.Generator().manual_seed(seed)
    pairs = torch.randint(n, (n2, s, 2), generator=g)
    alpha = torch.rand(n2, s, 1, generator=g, dtype=torch.float32).double()
    pick = torch.randint(n, (n2, s_prime, 1), generator=g)
    beta = 0.5 * torch.rand(n2, s_prime, 1, generator=g, dtype=torch.float32).double()
    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        negatives = [k for k in range(n2) if k not in (i, j)]
        ranked = sorted(negatives, key=lambda k: -float(z[i].detach() @ z[k].detach()))[:n]
        hard = z.detach()[ranked]
        synthetic = []
        for m in range(s):
            h = alpha[i, m, 0] * hard[pairs[i, m, 0]] + (1 - alpha[i, m, 0]) * hard[pairs[i, m, 1]]
            synthetic.append(h / h.norm())
        for m in range(s_prime):
            h = beta[i, m, 0] * z.detach()[i] + (1 - beta[i, m, 0]) * hard[pick[i, m, 0]]
            synthetic.append(h / h.norm())
        terms = [torch.exp(z[i] @ z[k] / t) for k in range(n2) if k != i] + [torch.exp(z[i] @ h / t) for h in synthetic]
        total = total - torch.log(torch.exp(z[i] @ z[j] / t) / sum(terms))
    return total / n2


def test_mochi_without_synthetic_points_is_ntxent():
    z_a, z_b = _views()
    assert torch.allclose(MoCHiNTXentLoss(0.3, 4, 0, 0)(z_a, z_b), NTXentLoss(0.3)(z_a, z_b), atol=1e-6)


def test_mochi_ntxent_matches_reference_loss_and_gradient():
    z_a, z_b = _views(b=5, d=4, seed=3)
    loss_fn = MoCHiNTXentLoss(0.2, num_hard=4, num_mix=3, num_query_mix=2)
    loss, grads = _grads(lambda a, b: loss_fn(a, b, generator=torch.Generator().manual_seed(7)), z_a, z_b)
    ref, ref_grads = _grads(lambda a, b: mochi_ntxent_reference(a, b, 0.2, 4, 3, 2, seed=7), z_a, z_b)
    assert torch.allclose(loss.double(), ref, atol=1e-5)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-5)
    # the synthetic hard negatives make the task harder than plain NT-Xent
    assert loss > NTXentLoss(0.2)(z_a, z_b)


def test_mochi_queue_matches_reference():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    queue = F.normalize(torch.randn(10, 6, generator=g), dim=1)  # the objectives push unit keys
    loss_fn = MoCHiQueueLoss(0.2, num_hard=5, num_mix=3, num_query_mix=2)
    qv = q.clone().requires_grad_(True)
    loss = loss_fn(qv, k, queue, generator=torch.Generator().manual_seed(5))
    (grad,) = torch.autograd.grad(loss, qv)

    qr = q.double().clone().requires_grad_(True)
    qn = qr / qr.norm(dim=1, keepdim=True)
    kn, bank = F.normalize(k.double(), dim=1), F.normalize(queue.double(), dim=1)
    dg = torch.Generator().manual_seed(5)
    pairs = torch.randint(5, (4, 3, 2), generator=dg)
    alpha = torch.rand(4, 3, 1, generator=dg).double()
    pick = torch.randint(5, (4, 2, 1), generator=dg)
    beta = 0.5 * torch.rand(4, 2, 1, generator=dg).double()
    total = 0.0
    for i in range(4):
        ranked = sorted(range(10), key=lambda m: -float(qn[i].detach() @ bank[m]))[:5]
        hard = bank[ranked]
        synth = [alpha[i, m, 0] * hard[pairs[i, m, 0]] + (1 - alpha[i, m, 0]) * hard[pairs[i, m, 1]] for m in range(3)]
        synth += [beta[i, m, 0] * qn[i].detach() + (1 - beta[i, m, 0]) * hard[pick[i, m, 0]] for m in range(2)]
        synth = [h / h.norm() for h in synth]
        logits = [qn[i] @ kn[i]] + [qn[i] @ bank[m] for m in range(10)] + [qn[i] @ h for h in synth]
        logits = torch.stack(logits) / 0.2
        total = total - (logits[0] - torch.logsumexp(logits, 0))
    ref = total / 4
    (ref_grad,) = torch.autograd.grad(ref, qr)
    assert torch.allclose(loss.double(), ref, atol=1e-5)
    assert torch.allclose(grad.double(), ref_grad, atol=1e-5)


def test_mochi_bad_inputs():
    with pytest.raises(ValueError, match="num_hard"):
        MoCHiNTXentLoss(0.2, num_hard=0)
    z_a, z_b = _views()
    with pytest.raises(ValueError, match="at least 2"):
        MoCHiNTXentLoss()(z_a[:1], z_b[:1])
    with pytest.raises(ValueError, match="queue"):
        MoCHiQueueLoss()(z_a, z_b, torch.randn(8, 3))


def amcl_reference(loss_fn, z_a, z_b, topk=None):
    """Per-head, per-anchor loop of AMCL with pair temperatures and both regularisers.

    ``topk=None``: the paper's eq. (2.1), NT-Xent over all negatives, ``+ beta * Omega(tau_pos)`` and
    ``- beta * sum_k (log tau_k + 1/tau_k)`` over all negatives. ``topk=K``: the authors' code
    (github.com/LeiWangR/cl ``amcl/losses.py`` at 755799d, ``AMCLNTXentLoss._direction``): the K negatives of
    highest similarity, ``-s_pos / tau_pos + mean_k(s_k / tau_k) + beta * Omega(tau_pos) - beta * sum_k(log tau_k
    + 1/tau_k)``; both directions averaged (here: every anchor of both views), heads summed.
    """
    b, heads, d = z_a.shape
    phi, lo, hi, beta = loss_fn.temperature.phi.double(), loss_fn.temperature.tau_min, loss_fn.temperature.tau_max, loss_fn.beta
    total = 0.0
    for c in range(heads):
        z = torch.cat([z_a[:, c], z_b[:, c]])
        z = z / z.norm(dim=1, keepdim=True)
        f = phi(z)
        head_total = 0.0
        for i in range(2 * b):
            j = (i + b) % (2 * b)

            def tau(k):
                return lo + (hi - lo) / (1 + math.e ** (f[i] @ f[k]))  # sigma(r) = iota / (1 + e^r) + eta

            negatives = [k for k in range(2 * b) if k not in (i, j)]
            omega_pos = d / 2 * torch.log(tau(j)) + 1 / tau(j)
            if topk is None:
                denom = sum(torch.exp((z[i] @ z[k]) / tau(k)) for k in range(2 * b) if k != i)
                term = -torch.log(torch.exp((z[i] @ z[j]) / tau(j)) / denom)
            else:
                negatives = sorted(negatives, key=lambda k: -float(z[i].detach() @ z[k].detach()))[:topk]
                term = -(z[i] @ z[j]) / tau(j) + sum((z[i] @ z[k]) / tau(k) for k in negatives) / len(negatives)
            omega_neg = sum(torch.log(tau(k)) + 1 / tau(k) for k in negatives)
            head_total = head_total + term + beta * omega_pos - beta * omega_neg
        total = total + head_total / (2 * b)
    return total


@pytest.mark.parametrize("topk", [None, 3])
def test_amcl_matches_reference_loss_and_gradient(topk):
    torch.manual_seed(0)
    kwargs = dict(dim=4, beta=0.05, tau_min=0.05, tau_max=1.0, hidden_dim=6, negatives="all" if topk is None else "topk", topk=topk or 100)
    loss_fn = AMCLLoss(**kwargs)
    g = torch.Generator().manual_seed(2)
    z_a, z_b = torch.randn(4, 2, 4, generator=g, dtype=torch.float64), torch.randn(4, 2, 4, generator=g, dtype=torch.float64)
    loss, grads = _grads(lambda a, b: loss_fn(a, b), z_a, z_b)
    phi_grads = torch.autograd.grad(loss_fn(z_a, z_b), list(loss_fn.parameters()))
    ref_fn = AMCLLoss(**kwargs)
    ref_fn.load_state_dict(loss_fn.state_dict())
    ref, ref_grads = _grads(lambda a, b: amcl_reference(ref_fn, a, b, topk), z_a, z_b)
    ref_phi_grads = torch.autograd.grad(amcl_reference(ref_fn, z_a, z_b, topk), list(ref_fn.parameters()))
    assert torch.allclose(loss.double(), ref, atol=1e-4)
    for g_, r in zip(grads, ref_grads):
        assert torch.allclose(g_.double(), r, atol=1e-4)
    for g_, r in zip(phi_grads, ref_phi_grads):
        assert torch.allclose(g_.double(), r, atol=1e-4)


def test_amcl_negative_regulariser_is_subtracted():
    """beta only enters through the two regularisers: d loss / d beta = mean Omega(tau_pos) - mean sum_neg(...)."""
    torch.manual_seed(0)
    z_a, z_b = torch.randn(5, 2, 4), torch.randn(5, 2, 4)
    for negatives in ("all", "topk"):
        loss_fn = AMCLLoss(dim=4, beta=0.0, negatives=negatives, topk=3)
        zero = loss_fn(z_a, z_b)
        loss_fn.beta = 1.0
        one = loss_fn(z_a, z_b)
        tau = loss_fn.temperature
        rows = F.normalize(torch.cat([z_a, z_b]), dim=-1)
        t = tau.from_scores(torch.einsum("rcd,kcd->crk", tau.phi(rows), tau.phi(rows)))  # (C, 10, 10)
        pos = torch.cat([torch.arange(5) + 5, torch.arange(5)])
        t_pos = t[:, torch.arange(10), pos]
        omega_pos = (2 * torch.log(t_pos) + 1 / t_pos).mean(dim=1).sum()
        assert one - zero < omega_pos  # something positive was subtracted
        if negatives == "all":
            neg = torch.ones(10, 10, dtype=torch.bool)
            neg[torch.arange(10), torch.arange(10)] = False
            neg[torch.arange(10), pos] = False
            omega_neg = ((torch.log(t) + 1 / t) * neg).sum(dim=2).mean(dim=1).sum()
            assert torch.allclose(one - zero, omega_pos - omega_neg, atol=1e-4)


def test_amcl_symmetric_and_bad_inputs():
    torch.manual_seed(0)
    loss_fn = AMCLLoss(dim=4)
    z_a, z_b = torch.randn(5, 3, 4), torch.randn(5, 3, 4)
    assert torch.allclose(loss_fn(z_a, z_b), loss_fn(z_b, z_a), atol=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        loss_fn(z_a[:1], z_b[:1])
    with pytest.raises(ValueError, match="heads"):
        loss_fn(z_a[:, 0], z_b[:, 0])
    with pytest.raises(ValueError, match="tau_min"):
        AMCLLoss(dim=4, tau_min=2.0, tau_max=1.0)
    bad = z_a.clone()
    bad[0, 0, 0] = float("inf")
    assert not torch.isfinite(loss_fn(bad, z_b))
