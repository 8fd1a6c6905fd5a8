"""The core objectives as modules: contracts, teachers, queues, JEPA on a token encoder, multi-objective.

Reference values: BYOL eq. (2) and its EMA update (Grill et al. 2020); I-JEPA's layer-normed targets and
smooth-L1 (github.com/facebookresearch/ijepa ``train.py``); MGDA weights from the Gram matrix of the
member gradients (Sener & Koltun 2018).
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from omnissl.interfaces import Encoded, Encoder, Progress, Views
from omnissl.losses.mgda import min_norm_weights
from omnissl.nn import TransformerTrunk, TrunkConfig
from omnissl.objectives.byol import BYOLConfig, BYOLObjective
from omnissl.objectives.jepa import JEPAConfig, JEPAObjective
from omnissl.objectives.mixed_barlow_twins import mix_inputs
from omnissl.objectives.mochi import MoCHiConfig, MoCHiMoCoObjective, MoCHiObjective
from omnissl.objectives.moco import MoCoConfig, MoCoObjective
from omnissl.objectives.multi import MemberConfig, MultiObjectiveConfig, MultiObjective
from omnissl.objectives.swav import SwAVConfig, SwAVObjective
from omnissl.objectives.token_masking import TokenMasking, TokenMaskingConfig
from omnissl.plugins import PluginManager
from omnissl.specs import BuildContext
from omnissl.testing import toy
from omnissl.testing.contracts import check_plugin


_REGISTRY = []


def _registry():
    """The core's own components only (loading every installed plugin costs seconds on a shared CI machine)."""
    if not _REGISTRY:
        _REGISTRY.append(PluginManager(autoload=False).registry)
    return _REGISTRY[0]


def _toy(seed=0):
    torch.manual_seed(seed)
    encoder = toy.ToyMLPEncoder(16, toy.ToyMLPConfig(hidden_dim=16, output_dim=8))
    batch = toy.toy_source(toy.ToyDataConfig(num_samples=12)).data
    views = toy.ToyNoiseViews(toy.ToyNoiseConfig())(batch, torch.Generator().manual_seed(0))
    return encoder, views


def test_core_plugin_passes_the_contract_suite():
    ran = check_plugin(PluginManager(autoload=False), "core")
    for name in ("core.moco", "core.mochi", "core.amcl", "core.barlow_twins", "core.mixed_barlow_twins", "core.vicreg", "core.byol", "core.swav", "core.multi"):
        assert f"objective[{name}]" in ran
    assert "views[core.token_masking]" in ran and "config[core.jepa]" in ran and "config[core.knn_probe]" in ran


@pytest.mark.parametrize("name", ["core.simclr", "core.moco", "core.mochi", "core.amcl", "core.barlow_twins", "core.mixed_barlow_twins", "core.vicreg", "core.byol", "core.swav"])
def test_two_view_objectives_reject_one_view(name):
    encoder, views = _toy()
    objective = _registry().get("objectives", name).build({"hidden_dim": 16, "proj_dim": 8}, BuildContext(encoder=encoder))
    with pytest.raises(ValueError, match="two views"):
        objective(encoder, Views(inputs=views.inputs[:1], original=views.original))


def test_byol_loss_and_ema_update():
    encoder, views = _toy()
    objective = BYOLObjective(encoder, BYOLConfig(hidden_dim=16, proj_dim=8, pred_hidden_dim=16, momentum=0.9, momentum_final=1.0))
    out = objective(encoder, views)
    with torch.no_grad():
        p = [objective.predictor(objective.projector(encoder(v).pooled)) for v in views.inputs]
        t = [objective.teacher_projector(objective.teacher_encoder(v).pooled) for v in views.inputs]
    ref = sum(((F.normalize(a, dim=1) - F.normalize(b, dim=1)) ** 2).sum(dim=1).mean() for a, b in ((p[0], t[1]), (p[1], t[0])))
    assert torch.allclose(out.loss, ref, atol=1e-5)
    out.loss.backward()
    assert all(q.grad is None for q in objective.teacher_encoder.parameters())
    with torch.no_grad():
        for q in encoder.parameters():
            q.add_(1.0)
    before = [q.clone() for q in objective.teacher_encoder.parameters()]
    objective.after_step(Progress(step=0, total_steps=10))  # cosine schedule at fraction 0: momentum 0.9
    for old, new, s in zip(before, objective.teacher_encoder.parameters(), encoder.parameters()):
        assert torch.allclose(new, 0.9 * old + 0.1 * s, atol=1e-6)


def test_mochi_queue_mode_is_moco_with_mixing():
    encoder, views = _toy()
    cfg = MoCHiConfig(queue_size=20, num_hard=8, num_mix=4, num_query_mix=2, hidden_dim=16, proj_dim=8)
    objective = MoCHiObjective.build(cfg, BuildContext(encoder=encoder))
    assert isinstance(objective, MoCHiMoCoObjective) and isinstance(objective, MoCoObjective)
    out = objective(encoder, views)
    assert torch.isfinite(out.loss) and "mochi" in out.logs
    assert objective.queue.filled == 20 and int(objective.queue.written) == 12
    keys = objective.keys(views.inputs[1])
    assert torch.allclose(objective.queue.features[:12], keys, atol=1e-6)
    objective(encoder, views)
    assert torch.allclose(objective.queue.ordered()[-12:], keys, atol=1e-6)  # the newest keys, oldest dropped
    objective.after_step(Progress(step=1, total_steps=2))
    # without mixing, MoCHi's queue mode is exactly core.moco on the same weights and queue
    plain = MoCHiObjective.build(cfg.model_copy(update={"num_mix": 0, "num_query_mix": 0}), BuildContext(encoder=encoder))
    moco = MoCoObjective(encoder, MoCoConfig(queue_size=20, hidden_dim=16, proj_dim=8, temperature=cfg.temperature))
    moco.load_state_dict(plain.state_dict(), strict=False)
    assert torch.allclose(plain(encoder, views).loss, moco(encoder, views).loss, atol=1e-6)


def test_swav_after_step_renormalises_prototypes():
    encoder, views = _toy()
    objective = SwAVObjective(8, SwAVConfig(num_prototypes=6, hidden_dim=16, proj_dim=8))
    with torch.no_grad():
        objective.prototypes.weight.mul_(5)
    objective.after_step(Progress(step=1, total_steps=2))
    assert torch.allclose(objective.prototypes.weight.norm(dim=1), torch.ones(6), atol=1e-6)
    assert torch.isfinite(objective(encoder, views).loss)


def test_mix_inputs_mixes_float_entries_and_rejects_other_batches():
    a = {"x": torch.ones(3, 2), "ids": torch.arange(3)}
    b = {"x": torch.zeros(3, 2), "ids": torch.arange(3) + 10}
    mixed = mix_inputs(a, b, torch.tensor(0.25), torch.tensor([2, 0, 1]))
    assert torch.allclose(mixed["x"], torch.full((3, 2), 0.25)) and torch.equal(mixed["ids"], a["ids"])
    with pytest.raises(ValueError, match="core.barlow_twins"):
        mix_inputs([1, 2], [3, 4], torch.tensor(0.5), torch.tensor([0, 1]))


# ----------------------------------------------------------------------------------- JEPA on tokens
class TinyTokenEncoder(Encoder):
    """Each feature is a token: value * w + feature embedding, then the core trunk; honours keep."""

    def __init__(self, num_features=10, dim=16):
        super().__init__()
        self.value = nn.Linear(1, dim)
        self.feature = nn.Parameter(torch.randn(num_features, dim) * 0.1)
        self.trunk = TransformerTrunk(TrunkConfig(dim=dim, depth=1, heads=2))
        self.output_dim = dim

    def forward(self, batch, keep=None):
        tokens = self.value(batch.unsqueeze(-1)) + self.feature
        out = self.trunk(tokens, keep=keep)
        return Encoded(pooled=out.mean(dim=1), tokens=out)


def test_token_masking_gives_disjoint_sorted_sets():
    masking = TokenMasking(TokenMaskingConfig(context_ratio=0.5, target_ratio=0.3))
    views = masking(torch.randn(4, 10), torch.Generator().manual_seed(0))
    ctx, tgt = views.info["context_idx"], views.info["target_idx"]
    assert ctx.shape == (4, 5) and tgt.shape == (4, 3)
    for c, t in zip(ctx, tgt):
        assert not set(c.tolist()) & set(t.tolist())
        assert torch.equal(c, c.sort().values)
    with pytest.raises(ValueError, match="disjoint"):
        TokenMaskingConfig(context_ratio=0.7, target_ratio=0.5)


def test_jepa_matches_its_formula_and_trains_only_the_student():
    torch.manual_seed(0)
    encoder = TinyTokenEncoder()
    objective = JEPAObjective(encoder, JEPAConfig(predictor_dim=8, predictor_heads=2, predictor_depth=1))
    batch = torch.randn(6, 10)
    views = TokenMasking(TokenMaskingConfig())(batch, torch.Generator().manual_seed(1))
    out = objective(encoder, views)
    ctx_idx, tgt_idx = views.info["context_idx"], views.info["target_idx"]
    with torch.no_grad():
        context = encoder(batch, keep=ctx_idx).tokens
        full = F.layer_norm(objective.teacher(batch).tokens, (16,))
        target = torch.stack([full[b, tgt_idx[b]] for b in range(6)])
        pred = objective.predictor(context, ctx_idx, tgt_idx, 10)
    assert torch.allclose(out.loss, F.smooth_l1_loss(pred, target), atol=1e-6)
    out.loss.backward()
    assert all(p.grad is not None for p in encoder.parameters())
    assert all(p.grad is not None for p in objective.predictor.parameters())
    assert all(p.grad is None for p in objective.teacher.parameters())
    objective.after_step(Progress(step=5, total_steps=10))


def test_jepa_bad_inputs():
    torch.manual_seed(0)
    encoder = TinyTokenEncoder()
    objective = JEPAObjective(encoder, JEPAConfig(predictor_dim=8, predictor_heads=2, predictor_depth=1))
    with pytest.raises(ValueError, match="context_idx"):
        objective(encoder, Views(inputs=[torch.randn(2, 10)]))
    toy_encoder, _ = _toy()
    toy_objective = JEPAObjective(toy_encoder, JEPAConfig(predictor_dim=8, predictor_heads=2, predictor_depth=1))
    views = TokenMasking(TokenMaskingConfig())(torch.randn(3, 16), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="token encoder"):
        toy_objective(toy_encoder, views)


# ----------------------------------------------------------------------------------- multi-objective
def _multi(combine):
    encoder, views = _toy()
    cfg = MultiObjectiveConfig(
        combine=combine,
        objectives={
            "contrast": MemberConfig(name="core.simclr", weight=0.5, params={"hidden_dim": 16, "proj_dim": 8}),
            "redundancy": MemberConfig(name="core.vicreg", weight=2.0, params={"hidden_dim": 16, "proj_dim": 8}),
        },
    )
    torch.manual_seed(1)
    return encoder, views, MultiObjective.build(cfg, BuildContext(encoder=encoder), _registry())


def test_multi_sum_is_the_weighted_sum():
    encoder, views, objective = _multi("sum")
    out = objective(encoder, views)
    ref = 0.5 * objective.members["contrast"](encoder, views).loss + 2.0 * objective.members["redundancy"](encoder, views).loss
    assert torch.allclose(out.loss, ref, atol=1e-5)
    assert "contrast/ntxent" in out.logs and "redundancy/variance" in out.logs


def test_multi_mgda_weights_are_the_min_norm_of_member_gradients():
    encoder, views, objective = _multi("mgda")
    out = objective(encoder, views)
    alpha = torch.stack([out.logs["contrast/alpha"], out.logs["redundancy/alpha"]])
    assert abs(float(alpha.sum()) - 1) < 1e-5 and not alpha.requires_grad
    shared = list(encoder.parameters())
    losses = [0.5 * objective.members["contrast"](encoder, views).loss, 2.0 * objective.members["redundancy"](encoder, views).loss]
    grads = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, shared)]) for loss in losses]
    g = torch.stack(grads)
    assert torch.allclose(alpha, min_norm_weights(g @ g.T), atol=1e-4)
    assert torch.allclose(out.loss, (alpha * torch.stack(losses)).sum(), atol=1e-5)
    out.loss.backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_multi_rejects_unknown_and_nested_members():
    encoder, _ = _toy()
    from omnissl.errors import PluginError

    with pytest.raises(PluginError):
        MultiObjective.build(MultiObjectiveConfig(objectives={"x": MemberConfig(name="core.nope")}), BuildContext(encoder=encoder), _registry())
    with pytest.raises(ValueError, match="core.multi"):
        MultiObjective.build(MultiObjectiveConfig(objectives={"x": MemberConfig(name="core.multi")}), BuildContext(encoder=encoder), _registry())


def test_docs_list_every_core_component_and_field():
    from pathlib import Path

    from omnissl.specs import iter_fields

    text = (Path(__file__).resolve().parents[2] / "docs" / "objectives.md").read_text()
    registry = _registry()
    for kind in ("objectives", "view_generators", "evaluators"):
        for name, spec in registry.specs[kind].items():
            if name.startswith("core."):
                assert f"`{name}`" in text, f"docs/objectives.md does not list {name}"
                for field, _, _ in iter_fields(spec.config):
                    assert f"`{field}`" in text, f"docs/objectives.md does not document {name}.{field}"


def test_random_draws_are_reproducible_after_loading_a_checkpoint():
    from omnissl.objectives.mixed_barlow_twins import MixedBarlowTwinsConfig, MixedBarlowTwinsObjective

    encoder, views = _toy()
    for make in (
        lambda: MoCHiObjective(encoder, MoCHiConfig(num_hard=8, num_mix=4, num_query_mix=2, hidden_dim=16, proj_dim=8), seed=3),
        lambda: MixedBarlowTwinsObjective(8, MixedBarlowTwinsConfig(hidden_dim=16, proj_dim=8), seed=3),
    ):
        torch.manual_seed(0)
        first = make()
        first(encoder, views)
        first.after_step(Progress(step=7, total_steps=10))
        expected = first(encoder, views).loss
        resumed = make()
        resumed.load_state_dict(first.state_dict())
        assert torch.allclose(resumed(encoder, views).loss, expected)
        # a different step gives different draws
        resumed.after_step(Progress(step=8, total_steps=10))
        assert not torch.allclose(resumed(encoder, views).loss, expected)
