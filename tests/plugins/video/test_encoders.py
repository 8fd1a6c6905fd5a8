"""video.vit: keep=, presets, sin-cos positions, a shared trunk, clear errors."""

import pytest
import torch

from omnissl.errors import ConfigError
from omnissl.nn import TransformerTrunk, TrunkConfig, sincos_positions
from omnissl.specs import BuildContext
from omnissl_video.datasets import MovingDigitsConfig, moving_digits
from omnissl_video.encoders import PRESETS, VideoViT, VideoViTConfig, video_vit


@pytest.fixture(scope="module")
def digits():
    return moving_digits(MovingDigitsConfig(num_clips=20, num_frames=4, size=32, seed=2))


def test_keep_all_tokens_equals_the_full_forward_and_subsets_encode_only_the_subset(digits):
    encoder = video_vit(VideoViTConfig(preset="micro", patch_size=8), BuildContext(data=digits)).eval()
    clips = digits.gather(torch.arange(3))
    full = encoder(clips)
    assert full.tokens.shape == (3, 2 * 4 * 4, 96) and full.pooled.shape == (3, 96)
    everything = torch.arange(32).expand(3, -1)
    torch.testing.assert_close(encoder(clips, keep=everything).tokens, full.tokens)
    keep = torch.tensor([[0, 5, 17], [1, 2, 3], [30, 31, 16]])
    part = encoder(clips, keep=keep)
    assert part.tokens.shape == (3, 3, 96)
    # the subset is encoded alone: its tokens differ from the same positions of the full forward
    assert not torch.allclose(part.tokens, torch.gather(full.tokens, 1, keep[..., None].expand(-1, -1, 96)))


def test_shape_comes_from_the_data_and_positions_are_videomae_sincos(digits):
    encoder = video_vit(VideoViTConfig(preset="micro", patch_size=8, tubelet_size=2), BuildContext(data=digits))
    assert (encoder.channels, encoder.num_frames, encoder.image_size, encoder.grid) == (1, 4, 32, (2, 4, 4))
    torch.testing.assert_close(encoder.position_table, sincos_positions(32, 96))
    clips = digits.gather(torch.arange(2))
    tubes = encoder.tubes(clips)
    assert tubes.shape == (2, 32, 1 * 2 * 8 * 8)
    torch.testing.assert_close(tubes[1, 4 + 1].view(2, 8, 8), clips[1, 0, 0:2, 8:16, 8:16])  # token (t=0, h=1, w=1)


@pytest.mark.parametrize("preset", ["tiny", "small", "base"])
def test_presets(preset):
    # one block is enough to check widths and heads (building ViT-B's 12 blocks costs seconds on a CPU)
    encoder = video_vit(VideoViTConfig(preset=preset, depth=1), BuildContext())
    expected = PRESETS[preset]
    assert encoder.output_dim == expected["dim"] and len(encoder.trunk.blocks) == 1 and expected["depth"] == 12
    assert encoder.trunk.config.heads == expected["heads"] and encoder.num_tokens == 8 * 14 * 14  # 16x224x224, 2x16x16 tubes
    assert len(video_vit(VideoViTConfig(preset="micro"), BuildContext()).trunk.blocks) == PRESETS["micro"]["depth"]


def test_shared_trunk_is_used_not_copied():
    trunk = TransformerTrunk(TrunkConfig(dim=64, depth=1, heads=4))
    ctx = BuildContext(shared={"trunk": trunk})
    a = video_vit(VideoViTConfig(trunk="@shared.trunk", channels=1, num_frames=2, image_size=16, patch_size=8), ctx)
    assert a.trunk is trunk and a.output_dim == 64
    with pytest.raises(ConfigError, match="not a transformer trunk"):
        video_vit(VideoViTConfig(trunk="@shared.other"), BuildContext(shared={"other": torch.nn.Linear(2, 2)}))


def test_clear_errors_for_shapes_that_do_not_tile():
    with pytest.raises(ConfigError, match="do not split into"):
        VideoViT(3, 5, 32, patch_size=8, tubelet_size=2)
    encoder = VideoViT(3, 4, 32, patch_size=8, trunk=TransformerTrunk(TrunkConfig(dim=32, depth=1, heads=2)))
    with pytest.raises(ValueError, match=r"expects clips \(B, C=3"):
        encoder(torch.rand(2, 1, 4, 32, 32))
