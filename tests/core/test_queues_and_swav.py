"""FIFO queues (MoCo, SwAV), MoCo's InfoNCE, SwAV multi-crop / queue / frozen prototypes, Sinkhorn's two paths.

References: MoCo ``moco/builder.py`` (logits ``[q.k, q.queue] / T``, key at index 0; ``_dequeue_and_enqueue``
replaces the oldest keys); SwAV ``main_swav.py`` (codes only for ``crops_for_assign``; each crop's loss
averaged over the other ``V - 1`` crops; the queue's scores join Sinkhorn and are dropped;
``freeze_prototypes_niters``); ``distributed_sinkhorn`` for the Sinkhorn iterates.
"""

import pytest
import torch
import torch.nn.functional as F

from omnissl.interfaces import Progress, Views
from omnissl.losses.moco import MoCoLoss
from omnissl.losses.swav import SwAVLoss, sinkhorn_knopp
from omnissl.nn.queue import FeatureQueue
from omnissl.objectives.moco import MoCoConfig, MoCoObjective
from omnissl.objectives.swav import SwAVConfig, SwAVObjective
from omnissl.testing import toy


def _toy(num_views=2, seed=0):
    torch.manual_seed(seed)
    encoder = toy.ToyMLPEncoder(16, toy.ToyMLPConfig(hidden_dim=16, output_dim=8))
    batch = toy.toy_source(toy.ToyDataConfig(num_samples=12)).data
    views = toy.ToyNoiseViews(toy.ToyNoiseConfig(num_views=num_views))(batch, torch.Generator().manual_seed(0))
    return encoder, views


def test_queue_is_first_in_first_out_across_steps_and_checkpointed():
    queue = FeatureQueue(5, 2, init="empty", gather=False)
    assert queue.filled == 0 and queue.values().shape == (0, 2)
    pushed = [torch.full((2, 2), float(i)) for i in range(4)]  # four steps of two rows
    queue.push(pushed[0])
    assert queue.filled == 2 and not queue.full
    queue.push(pushed[1])
    queue.push(pushed[2])  # 6 rows into 5: the oldest is dropped
    assert queue.full and torch.equal(queue.ordered()[:, 0], torch.tensor([0.0, 1, 1, 2, 2]))
    state = {k: v.clone() for k, v in queue.state_dict().items()}
    queue.push(pushed[3])
    assert torch.equal(queue.ordered()[:, 0], torch.tensor([1.0, 2, 2, 3, 3]))
    # a queue restored from the checkpoint continues exactly where the saved one was
    resumed = FeatureQueue(5, 2, init="empty", gather=False)
    resumed.load_state_dict(state)
    assert resumed.filled == 5 and torch.equal(resumed.ordered()[:, 0], torch.tensor([0.0, 1, 1, 2, 2]))
    resumed.push(pushed[3])
    assert torch.equal(resumed.ordered(), queue.ordered()) and torch.equal(resumed.values(), queue.values())
    # a batch larger than the queue keeps its last rows
    queue.push(torch.arange(14.0).view(7, 2))
    assert torch.equal(queue.ordered()[:, 0], torch.tensor([4.0, 6, 8, 10, 12]))
    with pytest.raises(ValueError, match="width"):
        queue.push(torch.zeros(2, 3))


def test_moco_loss_is_infonce_with_the_key_first():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g, dtype=torch.float64)
    bank = F.normalize(torch.randn(9, 6, generator=g, dtype=torch.float64), dim=1)
    qv = q.clone().requires_grad_(True)
    loss = MoCoLoss(0.2)(qv, k, bank)
    (grad,) = torch.autograd.grad(loss, qv)
    qr = q.clone().requires_grad_(True)
    qn, kn = qr / qr.norm(dim=1, keepdim=True), k / k.norm(dim=1, keepdim=True)
    ref = 0.0
    for i in range(4):
        logits = torch.stack([qn[i] @ kn[i]] + [qn[i] @ bank[m] for m in range(9)]) / 0.2
        ref = ref - (logits[0] - torch.logsumexp(logits, 0)) / 4
    (ref_grad,) = torch.autograd.grad(ref, qr)
    assert torch.allclose(loss.double(), ref, atol=1e-5) and torch.allclose(grad.double(), ref_grad, atol=1e-5)
    with pytest.raises(ValueError, match="queue"):
        MoCoLoss()(q, k, torch.randn(3, 5))


def test_moco_objective_pushes_keys_fifo_and_resumes_exactly():
    encoder, views = _toy()
    cfg = MoCoConfig(queue_size=30, hidden_dim=16, proj_dim=8, momentum=0.9, momentum_final=0.9)
    objective = MoCoObjective(encoder, cfg)
    start = objective.queue.ordered()
    out = objective(encoder, views)
    out.loss.backward()
    assert all(p.grad is None for p in objective.teacher_encoder.parameters())
    keys = objective.keys(views.inputs[1])
    assert torch.allclose(objective.queue.ordered()[-12:], keys) and torch.equal(objective.queue.ordered()[:18], start[12:])
    objective.after_step(Progress(step=1, total_steps=10))
    state = {k: v.clone() for k, v in objective.state_dict().items()}
    expected = objective(encoder, views).loss
    resumed = MoCoObjective(encoder, cfg)
    resumed.load_state_dict(state)
    assert torch.allclose(resumed(encoder, views).loss, expected)
    assert torch.equal(resumed.queue.ordered(), objective.queue.ordered())
    symmetric = MoCoObjective(encoder, cfg.model_copy(update={"symmetric": True}))
    symmetric(encoder, views)
    assert int(symmetric.queue.written) == 24


def test_sinkhorn_direct_path_equals_the_log_domain():
    g = torch.Generator().manual_seed(0)
    scores = F.normalize(torch.randn(40, 8, generator=g), dim=1) @ F.normalize(torch.randn(12, 8, generator=g), dim=1).T
    for eps, iters in ((0.05, 3), (0.03, 10)):
        direct = sinkhorn_knopp(scores, eps, iters, score_bound=1.0)
        log_domain = sinkhorn_knopp(scores, eps, iters)
        assert torch.allclose(direct, log_domain, atol=1e-5)
    # below the safe epsilon the bound is ignored and the log domain keeps the codes finite
    tiny = sinkhorn_knopp(scores * 3, 0.002, 3, score_bound=3.0)
    assert torch.isfinite(tiny).all() and torch.allclose(tiny.sum(dim=1), torch.ones(40), atol=1e-4)


def swav_reference(large, small, queue, loss_fn):
    """``main_swav.py``: for each assignment crop, codes (with the queue, then cut), CE with every other crop."""
    crops = large + small
    total = 0.0
    for i, s in enumerate(large):
        joint = s.detach() if queue is None else torch.cat([s.detach(), queue[i]])
        q = sinkhorn_knopp(joint, loss_fn.epsilon, loss_fn.iterations)[: s.shape[0]]
        sub = 0.0
        for v, p in enumerate(crops):
            if v != i:
                sub = sub - (q * F.log_softmax(p / loss_fn.temperature, dim=1)).sum(dim=1).mean()
        total = total + sub / (len(crops) - 1)
    return total / len(large)


def test_swav_multi_crop_codes_come_from_the_large_crops_only():
    g = torch.Generator().manual_seed(0)

    def scores(n=6):
        return F.normalize(torch.randn(n, 8, generator=g), dim=1) @ F.normalize(torch.randn(5, 8, generator=g), dim=1).T

    large, small, queue = [scores(), scores()], [scores(), scores(), scores()], [scores(10), scores(10)]
    loss_fn = SwAVLoss(0.1, 0.05, 3)
    assert torch.allclose(loss_fn.multi_crop(large, small), swav_reference(large, small, None, loss_fn), atol=1e-5)
    assert torch.allclose(loss_fn.multi_crop(large, small, queue), swav_reference(large, small, queue, loss_fn), atol=1e-5)
    # the small crops only predict: changing them changes the loss only through their own predictions, and
    # the codes are those of the large crops (a small crop identical to a large one gets no codes of its own)
    calls = []
    original = loss_fn.codes
    loss_fn.codes = lambda s, q=None: calls.append(s) or original(s, q)
    loss_fn.multi_crop(large, small)
    assert len(calls) == 2 and all(any(c is l for l in large) for c in calls)


def test_swav_objective_multi_crop_queue_and_frozen_prototypes():
    encoder, views = _toy(num_views=4)
    cfg = SwAVConfig(num_prototypes=6, hidden_dim=16, proj_dim=8, queue_size=24, freeze_prototypes_steps=2)
    objective = SwAVObjective(8, cfg)
    seen = []
    original = objective.loss.codes
    objective.loss.codes = lambda s, q=None: seen.append((s.shape, None if q is None else q.shape)) or original(s, q)
    out = objective(encoder, views)
    assert len(seen) == 2 and all(q is None for _, q in seen)  # two large crops; the queue is not full yet
    out.loss.backward()
    assert objective.prototypes.weight.grad is None  # frozen for the first steps
    assert objective.queues[0].filled == 12 and float(out.logs["queue_used"]) == 0
    objective.after_step(Progress(step=1, total_steps=10))
    objective(encoder, views)
    objective.after_step(Progress(step=2, total_steps=10))
    seen.clear()
    out = objective(encoder, views)
    assert [q for _, q in seen] == [(24, 6), (24, 6)] and float(out.logs["queue_used"]) == 1
    out.loss.backward()
    assert objective.prototypes.weight.grad is not None  # unfrozen at step 2
    # the step and the queues are checkpointed: a resumed objective is at the same point
    resumed = SwAVObjective(8, cfg)
    resumed.load_state_dict(objective.state_dict())
    assert resumed._step == 2 and torch.equal(resumed.queues[1].ordered(), objective.queues[1].ordered())
    with pytest.raises(ValueError, match="two views"):
        objective(encoder, Views(inputs=views.inputs[:1]))


def test_swav_takes_the_direct_sinkhorn_on_cosine_scores_and_the_log_domain_below_safe_epsilon(monkeypatch):
    import omnissl.losses.swav as swav

    calls = []
    for name in ("_direct_sinkhorn", "_log_sinkhorn"):
        original = getattr(swav, name)
        monkeypatch.setattr(swav, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    g = torch.Generator().manual_seed(0)
    scores = F.normalize(torch.randn(6, 4, generator=g), dim=1) @ F.normalize(torch.randn(5, 4, generator=g), dim=1).T
    SwAVLoss(epsilon=0.05)(scores, scores.flip(0))
    assert calls == ["_direct_sinkhorn", "_direct_sinkhorn"]
    calls.clear()
    loss = SwAVLoss(epsilon=0.01)(scores * 1.05, scores.flip(0) * 1.05)  # range 2.1 / 0.01 > 80: log domain
    assert calls == ["_log_sinkhorn", "_log_sinkhorn"] and torch.isfinite(loss)


def test_mochi_without_mixing_returns_before_ranking_negatives():
    from omnissl.losses.mochi import mix_hard_negatives

    q = torch.randn(3, 4)
    # scores=None would fail in top-k: nothing may touch them when nothing is mixed
    out = mix_hard_negatives(q, torch.randn(7, 4), None, num_hard=5, num_mix=0, num_query_mix=0, generator=None, row_ids=torch.arange(3), total_rows=3)
    assert out.shape == (3, 0, 4)
