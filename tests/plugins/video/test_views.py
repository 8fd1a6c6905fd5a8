"""Tube masking invariants and the batched augmentation."""

import pytest
import torch

from omnissl_video.views import MaskedAugment, MaskedAugmentConfig, TubeMasking, VideoAugmentConfig, random_resized_crop, tube_mask


@pytest.mark.parametrize("ratio", [0.9, 0.75, 0.5])
def test_tube_mask_exact_ratio_and_same_mask_in_every_frame(ratio, gen):
    t, h, w = 4, 6, 5
    info = tube_mask(7, (t, h, w), ratio, gen, torch.device("cpu"))
    mask = info["mask"].view(7, t, h * w)
    masked_per_slot = mask.sum(dim=2)
    assert (masked_per_slot == round(ratio * h * w)).all()  # the exact count, in every clip and every slot
    assert (mask == mask[:, :1]).all()  # the same spatial patches in every temporal slot: whole tubes
    # keep and masked partition the tokens, are sorted, and agree with the boolean mask
    both = torch.cat([info["keep"], info["masked"]], dim=1).sort(dim=1).values
    assert torch.equal(both, torch.arange(t * h * w).expand(7, -1))
    assert (info["keep"].diff(dim=1) > 0).all() and (info["masked"].diff(dim=1) > 0).all()
    assert not torch.gather(info["mask"], 1, info["keep"]).any() and torch.gather(info["mask"], 1, info["masked"]).all()


def test_tube_masks_differ_between_clips_and_follow_the_generator():
    a = tube_mask(16, (2, 8, 8), 0.9, torch.Generator().manual_seed(0), torch.device("cpu"))["mask"]
    b = tube_mask(16, (2, 8, 8), 0.9, torch.Generator().manual_seed(0), torch.device("cpu"))["mask"]
    c = tube_mask(16, (2, 8, 8), 0.9, torch.Generator().manual_seed(1), torch.device("cpu"))["mask"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len({tuple(row.tolist()) for row in a}) > 1


def test_tube_mask_rejects_a_ratio_that_leaves_nothing_visible(gen):
    with pytest.raises(ValueError, match="leaves some visible"):
        tube_mask(2, (2, 2, 2), 0.9, gen, torch.device("cpu"))


def test_tube_masking_view_reads_the_grid_from_the_clip(gen):
    clips = torch.rand(3, 1, 8, 32, 32)
    views = TubeMasking(0.75, tubelet_size=2, patch_size=8)(clips, gen)
    assert views.info["grid"] == (4, 4, 4)
    assert views.info["keep"].shape == (3, 4 * 4) and views.info["masked"].shape == (3, 4 * 12)
    assert views.inputs[0] is clips


def test_full_crop_with_certain_flip_is_an_exact_horizontal_flip(gen):
    clips = torch.rand(2, 3, 4, 16, 16)
    out = random_resized_crop(clips, gen, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=1.0)
    torch.testing.assert_close(out, clips.flip(-1), atol=1e-5, rtol=0)
    same = random_resized_crop(clips, gen, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.0)
    torch.testing.assert_close(same, clips, atol=1e-5, rtol=0)


def test_crop_is_the_same_for_every_frame_of_a_clip(gen):
    frame = torch.rand(1, 1, 1, 24, 24)
    clips = frame.expand(3, 1, 5, 24, 24).contiguous()
    out = random_resized_crop(clips, gen, scale=(0.2, 0.5), ratio=(0.75, 1.33), flip=0.5)
    assert torch.allclose(out, out[:, :, :1].expand_as(out))  # a static clip stays static
    assert not torch.allclose(out[0], out[1])  # different clips get different crops


def test_masked_augment_gives_two_masked_views_and_a_frame(gen):
    clips = torch.rand(4, 1, 8, 32, 32)
    views = MaskedAugment(MaskedAugmentConfig(flip=0.0), tubelet_size=2, patch_size=8)(clips, gen)
    assert len(views.inputs) == 2 and all(v.shape == clips.shape for v in views.inputs)
    assert len(views.info["keep"]) == 2 and not torch.equal(views.info["mask"][0], views.info["mask"][1])
    assert views.info["frame"].shape == (4,) and ((0 <= views.info["frame"]) & (views.info["frame"] < 8)).all()
    assert VideoAugmentConfig().flip == 0.5
