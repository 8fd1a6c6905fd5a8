"""VideoMAE's target and loss, SIGMA's Sinkhorn assignments and swapped loss, CrossVideoMAE's frame branch."""

import pytest
import torch
import torch.nn.functional as F

from omnissl.nn import TransformerTrunk, TrunkConfig
from omnissl_video.encoders import VideoViT
from omnissl_video.objectives.crossvideomae import CrossVideoMAEConfig, CrossVideoMAEObjective, frame_clip
from omnissl_video.objectives.decoder import normalized_patch_targets
from omnissl_video.objectives.sigma import SIGMAConfig, SIGMAObjective, swapped_assignment_loss
from omnissl_video.objectives.videomae import VideoMAEConfig, VideoMAEObjective
from omnissl_video.views import MaskedAugment, MaskedAugmentConfig, TubeMasking
from omnissl.interfaces import Progress


def _encoder(channels: int = 3):
    torch.manual_seed(0)
    return VideoViT(channels, 4, 16, patch_size=4, tubelet_size=2, trunk=TransformerTrunk(TrunkConfig(dim=32, depth=1, heads=2)))


def test_normalized_target_matches_the_formula_tube_by_tube():
    torch.manual_seed(0)
    clips = torch.rand(2, 3, 4, 8, 8)
    target = normalized_patch_targets(clips, tubelet=2, patch=4)
    assert target.shape == (2, 2 * 2 * 2, 2 * 4 * 4 * 3)
    # VideoMAE engine_for_pretraining.py: per tube and channel, (x - mean) / (std_unbiased + 1e-6), order (pt ph pw c)
    for b in range(2):
        for ti in range(2):
            for hi in range(2):
                for wi in range(2):
                    tube = clips[b, :, 2 * ti : 2 * ti + 2, 4 * hi : 4 * hi + 4, 4 * wi : 4 * wi + 4]  # (c, pt, ph, pw)
                    pixels = tube.permute(1, 2, 3, 0).reshape(-1, 3)  # (pt ph pw, c)
                    expected = (pixels - pixels.mean(0)) / (pixels.std(0, unbiased=True) + 1e-6)
                    n = (ti * 2 + hi) * 2 + wi
                    torch.testing.assert_close(target[b, n], expected.reshape(-1))
    raw = normalized_patch_targets(clips, tubelet=2, patch=4, normalize=False)
    torch.testing.assert_close(raw[1, 3].view(-1, 3)[:, 2], clips[1, 2, 0:2, 4:8, 4:8].reshape(-1))


def test_normalized_target_ignores_per_channel_affine_input_normalisation():
    clips = torch.rand(2, 3, 4, 8, 8)
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1, 1), torch.tensor([0.2, 0.3, 0.25]).view(1, 3, 1, 1, 1)
    torch.testing.assert_close(normalized_patch_targets((clips - mean) / std, 2, 4), normalized_patch_targets(clips, 2, 4), atol=1e-4, rtol=1e-4)


def test_videomae_loss_is_mse_on_masked_tubes_only(gen):
    encoder = _encoder()
    objective = VideoMAEObjective(encoder, VideoMAEConfig(decoder_dim=16, decoder_depth=1))
    clips = torch.rand(3, 3, 4, 16, 16)
    views = TubeMasking(0.75, 2, 4)(clips, gen)
    out = objective(encoder, views)
    keep, masked = views.info["keep"], views.info["masked"]
    prediction = objective.decoder(encoder(clips, keep=keep).tokens, keep, masked)
    target = normalized_patch_targets(clips, 2, 4)
    expected = torch.stack([F.mse_loss(prediction[b], target[b, masked[b]], reduction="none") for b in range(3)]).mean()
    torch.testing.assert_close(out.loss, expected)
    # pixels of visible tubes are never targets: predictions are only made for masked positions
    assert prediction.shape[1] == masked.shape[1] == 2 * 12


def test_videomae_learns_a_fixed_batch():
    encoder = _encoder(1)
    objective = VideoMAEObjective(encoder, VideoMAEConfig(decoder_dim=16, decoder_depth=1))
    clips = torch.rand(4, 1, 4, 16, 16)
    opt = torch.optim.Adam(list(encoder.parameters()) + list(objective.parameters()), lr=3e-3)
    views = TubeMasking(0.5, 2, 4)(clips, torch.Generator().manual_seed(0))
    first = None
    for _ in range(40):
        loss = objective(encoder, views).loss
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.8 * first


def test_sinkhorn_codes_have_balanced_marginals():
    torch.manual_seed(0)
    scores = F.normalize(torch.randn(240, 16), dim=1) @ F.normalize(torch.randn(12, 16), dim=1).T
    scores[:, 0] += 1.0  # one prototype is everyone's favourite: Sinkhorn must still spread the mass
    _, q_a, q_b = swapped_assignment_loss(scores, scores.roll(1, 0), temperature=0.1, epsilon=0.05, iterations=10)
    for q in (q_a, q_b):
        torch.testing.assert_close(q.sum(dim=1), torch.ones(240))  # every tube's codes sum to 1
        torch.testing.assert_close(q.sum(dim=0), torch.full((12,), 240 / 12), rtol=0.05, atol=0.0)  # equal share per prototype
    assert (scores.argmax(dim=1) == 0).float().mean() > 0.8 and q_a.argmax(dim=1).bincount(minlength=12).max() < 60


def test_sigma_loss_is_the_swapped_cross_entropy_of_the_official_code(gen):
    encoder = _encoder()
    cfg = SIGMAConfig(feature_dim=8, projector_dims=[16], num_prototypes=10, decoder_dim=16, decoder_depth=1)
    objective = SIGMAObjective(encoder, cfg)
    clips = torch.rand(3, 3, 4, 16, 16)
    views = TubeMasking(0.75, 2, 4)(clips, gen)
    out = objective(encoder, views)
    keep, masked = views.info["keep"], views.info["masked"]
    x = objective.decoder(encoder(clips, keep=keep).tokens, keep, masked).flatten(0, 1)
    labels = torch.stack([normalized_patch_targets(clips, 2, 4)[b, masked[b]] for b in range(3)]).flatten(0, 1)
    proj = objective.projector(labels)
    s1 = F.normalize(proj, dim=-1) @ objective.prototypes.T
    s2 = F.normalize(x, dim=-1) @ objective.prototypes.T
    from omnissl.losses import sinkhorn_knopp

    q1, q2 = sinkhorn_knopp(s1, 0.05, 10), sinkhorn_knopp(s2, 0.05, 10)
    expected = F.cross_entropy(s1 / 0.1, q2.argmax(-1)) + F.cross_entropy(s2 / 0.1, q1.argmax(-1))
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert objective.prototypes.grad is not None and objective.projector[0].weight.grad is not None
    objective.prototypes.data.mul_(3.0)
    objective.after_step(Progress(step=1, total_steps=10))
    torch.testing.assert_close(objective.prototypes.norm(dim=1), torch.ones(10))


def test_sigma_prototypes_learn_from_the_projection_side_only(gen):
    encoder = _encoder()
    objective = SIGMAObjective(encoder, SIGMAConfig(feature_dim=8, projector_dims=[16], num_prototypes=10, decoder_dim=16, decoder_depth=1))
    views = TubeMasking(0.75, 2, 4)(torch.rand(2, 3, 4, 16, 16), gen)
    objective.projector.requires_grad_(False)
    with torch.no_grad():
        objective.projector[-1].weight.zero_()
        objective.projector[-1].bias.zero_()  # projected features 0: normalize() gives 0 scores, no gradient to prototypes
    objective(encoder, views).loss.backward()
    assert objective.prototypes.grad is None or torch.all(objective.prototypes.grad == 0)


def test_sigma_ema_target_builds_a_teacher_and_updates_it(gen):
    encoder = _encoder()
    objective = SIGMAObjective(encoder, SIGMAConfig(target="ema", feature_dim=8, projector_dims=[16], num_prototypes=10, decoder_dim=16, decoder_depth=1, momentum=0.5, final_momentum=0.5))
    views = TubeMasking(0.75, 2, 4)(torch.rand(2, 3, 4, 16, 16), gen)
    objective(encoder, views).loss.backward()
    assert all(not p.requires_grad for p in objective.teacher.parameters())
    with torch.no_grad():
        encoder.patch_embed.weight.add_(1.0)
    before = objective.teacher.module.patch_embed.weight.clone()
    objective.after_step(Progress(step=1, total_steps=10))
    torch.testing.assert_close(objective.teacher.module.patch_embed.weight, 0.5 * before + 0.5 * encoder.patch_embed.weight)


def test_frame_clip_repeats_the_chosen_frame():
    clips = torch.arange(2 * 1 * 5 * 2 * 2, dtype=torch.float32).view(2, 1, 5, 2, 2)
    out = frame_clip(clips, torch.tensor([3, 0]), tubelet=2)
    assert out.shape == (2, 1, 2, 2, 2)
    assert torch.equal(out[0, :, 1], clips[0, :, 3]) and torch.equal(out[1, :, 0], clips[1, :, 0])


def test_crossvideomae_combines_four_terms_and_needs_two_views(gen):
    encoder = _encoder()
    objective = CrossVideoMAEObjective(encoder, CrossVideoMAEConfig(decoder_dim=16, decoder_depth=1, proj_hidden=16, proj_dim=8))
    views = MaskedAugment(MaskedAugmentConfig(mask_ratio=0.75), 2, 4)(torch.rand(4, 3, 4, 16, 16), gen)
    out = objective(encoder, views)
    logs = out.logs
    torch.testing.assert_close(out.loss, logs["mae_video"] + logs["mae_frame"] + logs["intra"] + logs["cross"])
    assert all(torch.isfinite(v) for v in logs.values())
    views.inputs = views.inputs[:1]
    with pytest.raises(ValueError, match="two views"):
        objective(encoder, views)
