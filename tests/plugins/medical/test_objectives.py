"""Objectives against their formulas: partition positives (G^D), local contrast, MAE's visible-only encoding and masked loss."""

import math

import torch
import torch.nn.functional as F

from omnissl.interfaces import Views
from omnissl.specs import BuildContext
from omnissl_medical.datasets import SyntheticVolumesConfig, synthetic_volumes
from omnissl_medical.encoders import VolumeViT, VolumeViTConfig, sincos_positions_3d
from omnissl_medical.objectives.global_local_contrast import local_contrastive_loss, partition_contrastive_loss
from omnissl_medical.objectives.mae3d import MAE3DConfig, MAE3DObjective
from omnissl_medical.views import PatchMasking, PatchMaskingConfig


def reference_partition_loss(z, partition, t):
    """Chaitanya et al.'s G^D loss written loop by loop: anchors a, positives = other rows of the same partition."""
    total, n = 0.0, z.shape[0]
    for a in range(n):
        denominator = sum(math.exp(float(z[a] @ z[k]) / t) for k in range(n) if k != a)
        positives = [p for p in range(n) if p != a and partition[p] == partition[a]]
        total += -sum(math.log(math.exp(float(z[a] @ z[p]) / t) / denominator) for p in positives) / len(positives)
    return total / n


def test_partition_loss_matches_the_formula():
    z = F.normalize(torch.randn(12, 5, generator=torch.Generator().manual_seed(0)), dim=1)
    partition = torch.arange(12) % 3
    got = partition_contrastive_loss(z, z, partition, partition, 0, 0.1)
    assert abs(float(got) - reference_partition_loss(z, partition, 0.1)) < 1e-4


def test_partition_positives_are_the_same_partition_of_other_volumes():
    """Embeddings that cluster by partition index (whatever the volume) minimise the loss; clustering by volume does not."""
    S, V = 4, 3
    partition = torch.arange(S * V) % S
    volume = torch.arange(S * V) // S
    by_partition = F.one_hot(partition, 8).float()
    by_volume = F.one_hot(volume, 8).float()
    good = partition_contrastive_loss(by_partition, by_partition, partition, partition, 0, 0.1)
    bad = partition_contrastive_loss(by_volume, by_volume, partition, partition, 0, 0.1)
    assert good < 0.8 * math.log(S * V - 1) < bad


def test_local_loss_prefers_aligned_regions():
    f = F.normalize(torch.randn(2, 8, 16, generator=torch.Generator().manual_seed(0)), dim=2)
    aligned = local_contrastive_loss(f, f, 0.1)
    shuffled = local_contrastive_loss(f, f[:, torch.randperm(8, generator=torch.Generator().manual_seed(1))], 0.1)
    assert aligned < 0.1 < shuffled


def test_sincos_3d_positions_are_distinct_and_axis_separable():
    pos = sincos_positions_3d((3, 4, 5), 36)
    assert pos.shape == (60, 36)
    assert torch.cdist(pos, pos).add(torch.eye(60) * 10).min() > 1e-3
    # the first 12 channels depend only on the d index
    grid = pos.view(3, 4, 5, 36)
    assert torch.equal(grid[:, 0, 0, :12], grid[:, 3, 4, :12])


def _mae_setup():
    src = synthetic_volumes(SyntheticVolumesConfig(num_volumes=8, size=12))
    torch.manual_seed(0)
    enc = VolumeViT(src.volume_shape, VolumeViTConfig(patch_size=4, dim=24, depth=1, heads=2))
    obj = MAE3DObjective.build(MAE3DConfig(decoder_dim=12, decoder_depth=1, decoder_heads=2), BuildContext(data=src, encoder=enc))
    views = PatchMasking(PatchMaskingConfig(patch_size=4, mask_ratio=0.75))(src.gather(torch.arange(4)), torch.Generator().manual_seed(0))
    return enc, obj, views


def test_mae_encoder_sees_only_visible_patches():
    enc, obj, views = _mae_setup()
    seen = []
    enc.trunk.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs.get("keep")), with_kwargs=True)
    obj(enc, views)
    assert len(seen) == 1 and torch.equal(seen[0], views.info["keep"])
    # and what the trunk encodes is K tokens, not N
    tokens = enc(views.inputs[0], keep=views.info["keep"]).tokens
    assert tokens.shape[1] == views.info["keep"].shape[1] == round(27 * 0.25)


def test_mae_loss_is_on_masked_patches_only():
    enc, obj, views = _mae_setup()
    grads = []

    def capture(module, args, out):
        out.register_hook(grads.append)

    obj.predict.register_forward_hook(capture)
    obj(enc, views).loss.backward()
    per_token = grads[0].abs().sum(-1)  # (B, N)
    keep, masked = views.info["keep"], views.info["masked"]
    assert torch.all(per_token.gather(1, keep) == 0)
    assert torch.all(per_token.gather(1, masked) > 0)


def test_mae_rejects_mismatched_patch_size():
    enc, obj, views = _mae_setup()
    bad = Views(inputs=views.inputs, original=views.original, info={**views.info, "patch_size": 2})
    try:
        obj(enc, bad)
    except ValueError as err:
        assert "patch_size=2" in str(err)
    else:
        raise AssertionError("a patch-size mismatch must raise")


def test_instance_strategy_positives_are_the_other_view_only():
    """G^R (``strategy: instance``): rows (view, volume, partition); the one positive of a row is the same volume
    and partition in the other view. Against the loop-by-loop reference with those positives."""
    from omnissl_medical.objectives.global_local_contrast import positive_groups

    B, S = 3, 2
    rows_of, cols_of = positive_groups(2 * B * S, 2 * B * S, S, B * S, torch.device("cpu"))
    positives = (rows_of[:, None] == cols_of[None, :]) & ~torch.eye(2 * B * S, dtype=torch.bool)
    assert torch.equal(positives.sum(1), torch.ones(2 * B * S, dtype=torch.long))
    assert torch.equal(positives.float().argmax(1), (torch.arange(2 * B * S) + B * S) % (2 * B * S))
    z = F.normalize(torch.randn(2 * B * S, 5, generator=torch.Generator().manual_seed(0)), dim=1)
    got = partition_contrastive_loss(z, z, rows_of, cols_of, 0, 0.1)
    assert abs(float(got) - reference_partition_loss(z, rows_of, 0.1)) < 1e-4
    # G^D groups by partition index instead: every row has 2B - 1 positives
    rows_d, cols_d = positive_groups(2 * B * S, 2 * B * S, S, None, torch.device("cpu"))
    assert torch.equal(((rows_d[:, None] == cols_d[None, :]).sum(1) - 1), torch.full((2 * B * S,), 2 * B - 1))


def test_partitions_beyond_the_map_depth_are_not_duplicated():
    """A 2-deep last map cannot give 4 partitions: pooled to 4 they were two pairs of identical vectors (the G^D
    loss then sat at ln 127 on VesselMNIST3D). The objective warns and uses the map's depth."""
    import pytest

    from omnissl_medical.encoders import VolumeResNet, VolumeResNetConfig
    from omnissl_medical.objectives.global_local_contrast import GlobalLocalContrastConfig, GlobalLocalContrastObjective

    torch.manual_seed(0)
    enc = VolumeResNet((1, 16, 16, 16), VolumeResNetConfig(layers=[1, 1, 1, 1], widths=[4, 4, 8, 8], stem_stride=2))
    x = torch.randn(3, 1, 16, 16, 16)
    assert enc.feature_map(x).shape[2] == 1
    obj = GlobalLocalContrastObjective(8, GlobalLocalContrastConfig(partitions=4, decoder_hidden=8, projection_dim=8))
    with pytest.warns(UserWarning, match="partitions"):
        out = obj(enc, Views(inputs=[x, x + 0.01], original=x))
    # one partition left: G^D then has every other row as a positive, and the loss is finite
    assert torch.isfinite(out.loss)
