"""Batched 3-D views: rotation labels against the rotated volumes, the masking ratio, determinism."""

import numpy as np
import pytest
import torch

from omnissl_medical.views import (
    AugmentConfig, PatchMasking, PatchMaskingConfig, SwinSSLViews, SwinSSLViewsConfig, augment, crop_flip, cutout_noise, patchify, rotate90,
)


def volumes(b=6, s=8, seed=0):
    return torch.randn(b, 1, s, s, s, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_rotate90_matches_numpy_per_sample(axis):
    x = volumes()
    k = torch.tensor([0, 1, 2, 3, 1, 2])
    out = rotate90(x, k, axis).numpy()
    plane = {0: (2, 3), 1: (1, 3), 2: (1, 2)}[axis]  # numpy axes of one (C, D, H, W) volume
    for b in range(6):
        np.testing.assert_array_equal(out[b], np.rot90(x[b].numpy(), int(k[b]), axes=plane))


def test_swin_ssl_rotation_labels_describe_the_rotation():
    """Undoing the labelled rotation of each clean target must give back the (crop/flip-free) input volume."""
    x = volumes(8)
    views = SwinSSLViews(SwinSSLViewsConfig(axes=[0, 2], crop_min=1.0, flip_p=0.0, cutouts=1))(x, torch.Generator().manual_seed(3))
    rotation, target = views.info["rotation"], views.info["target"]
    assert views.info["num_rotations"] == 8 and rotation.shape == (16,)
    assert rotation.min() >= 0 and rotation.max() < 8 and len(set(rotation.tolist())) > 2
    axes = [0, 2]
    for i in range(16):
        axis, k = axes[int(rotation[i]) // 4], int(rotation[i]) % 4
        plane = {0: (2, 3), 1: (1, 3), 2: (1, 2)}[axis]
        undone = np.rot90(target[i].numpy(), -k, axes=plane)
        np.testing.assert_array_equal(undone, x[i % 8].numpy())


def test_swin_ssl_cutouts_only_change_masked_voxels():
    x = volumes(4)
    views = SwinSSLViews(SwinSSLViewsConfig(crop_min=1.0, flip_p=0.0))(x, torch.Generator().manual_seed(0))
    corrupted = torch.cat(views.inputs)
    mask = views.info["cutout"]
    assert mask.any() and not mask.all()
    assert torch.equal(corrupted[~mask.expand_as(corrupted)], views.info["target"][~mask.expand_as(corrupted)])
    assert not torch.equal(corrupted[mask.expand_as(corrupted)], views.info["target"][mask.expand_as(corrupted)])


@pytest.mark.parametrize("ratio", [0.5, 0.75, 0.9])
def test_patch_masking_ratio_and_partition(ratio):
    x = volumes(5, 12)
    views = PatchMasking(PatchMaskingConfig(patch_size=4, mask_ratio=ratio))(x, torch.Generator().manual_seed(0))
    keep, masked = views.info["keep"], views.info["masked"]
    n = 27
    assert keep.shape == (5, round(n * (1 - ratio))) and masked.shape == (5, n - keep.shape[1])
    for b in range(5):  # every patch exactly once, either kept or masked
        assert sorted(torch.cat([keep[b], masked[b]]).tolist()) == list(range(n))
    assert not torch.equal(keep[0], keep[1])  # each volume draws its own mask


def test_patch_masking_rejects_indivisible_size():
    with pytest.raises(ValueError, match="not divisible by views.patch_size=5"):
        PatchMasking(PatchMaskingConfig(patch_size=5))(volumes(2, 8), torch.Generator())


def test_patchify_order_matches_vit_tokens():
    x = torch.arange(2 * 4 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4, 4)
    patches = patchify(x, 2)
    assert patches.shape == (1, 8, 16)
    # patch 1 is (d=0, h=0, w=1): voxels [0:2, 0:2, 2:4] of each channel, channel last
    np.testing.assert_array_equal(patches[0, 1].view(2, 2, 2, 2).permute(3, 0, 1, 2).numpy(), x[0, :, 0:2, 0:2, 2:4].numpy())


def test_crop_flip_identity_and_flip():
    x = volumes(3)
    assert torch.allclose(crop_flip(x, torch.Generator().manual_seed(0), 1.0, 0.0), x, atol=1e-5)
    flipped = crop_flip(x, torch.Generator().manual_seed(0), 1.0, 1.0)  # every axis flipped
    assert torch.allclose(flipped, x.flip(2, 3, 4), atol=1e-5)


def test_augment_is_seeded_and_batched():
    x = volumes(4)
    cfg = AugmentConfig()
    a = augment(x, torch.Generator().manual_seed(1), cfg)
    b = augment(x, torch.Generator().manual_seed(1), cfg)
    c = augment(x, torch.Generator().manual_seed(2), cfg)
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == x.shape


def test_cutout_mask_boxes():
    x = torch.zeros(3, 1, 10, 10, 10)
    out, mask = cutout_noise(x, torch.Generator().manual_seed(0), 1, 0.5)
    for b in range(3):  # one box: the masked voxels form an axis-aligned cuboid
        idx = mask[b, 0].nonzero()
        lo, hi = idx.min(0).values, idx.max(0).values
        assert mask[b, 0, lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1].all()
        assert int(mask[b].sum()) == int(((hi - lo) + 1).prod())


def test_crop_flip_flips_only_the_allowed_axes():
    x = volumes(3)
    for axes in ((0,), (1,), (2,), (1, 2)):
        got = crop_flip(x, torch.Generator().manual_seed(0), 1.0, 1.0, flip_axes=axes)
        assert torch.allclose(got, x.flip(*(2 + a for a in axes)), atol=1e-5), axes


def test_global_local_views_keep_the_partition_axis_order():
    """G^D positives are the same partition index along the first axis: the views must never flip that axis."""
    from omnissl_medical.views import GlobalLocalViews, GlobalLocalViewsConfig

    ramp = torch.linspace(0, 1, 12).view(1, 1, 12, 1, 1).expand(16, 1, 12, 12, 12).contiguous()
    views = GlobalLocalViews(GlobalLocalViewsConfig(flip_p=1.0, crop_min=1.0, noise_std=0.0, scale=0.0, shift=0.0))(ramp, torch.Generator().manual_seed(0))
    for v in views.inputs:
        profile = v.mean(dim=(1, 3, 4))  # (B, D)
        assert (profile[:, 1:] > profile[:, :-1]).all()
        assert torch.allclose(v, ramp, atol=1e-5)  # the other two axes' flips leave a ramp along the first unchanged
