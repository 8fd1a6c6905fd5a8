"""video.vit + MAEDecoder against transformers' VideoMAEModel / VideoMAEForPreTraining, both directions.

The reference is transformers' own implementation (``models/videomae/modeling_videomae.py``), run from a
local directory written in the test; nothing is downloaded. Skips when transformers is not installed.
"""

import pytest
import torch

from omnissl_video.encoders import VideoViT
from omnissl_video.hf import load_videomae, save_videomae
from omnissl_video.objectives.decoder import MAEDecoder, normalized_patch_targets
from omnissl_video.views import tube_mask
from omnissl.nn import TransformerTrunk, TrunkConfig, gather_tokens

transformers = pytest.importorskip("transformers")

# ImageNet statistics (VideoMAE's input normalisation)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)


def _models(seed: int = 0):
    torch.manual_seed(seed)
    encoder = VideoViT(3, 4, 32, patch_size=8, tubelet_size=2, trunk=TransformerTrunk(TrunkConfig(dim=48, depth=2, heads=3)))
    decoder = MAEDecoder(48, encoder.patch_dim, encoder.num_tokens, dim=32, depth=1, heads=2)
    # random non-zero everything, including the key bias that transformers does not have
    with torch.no_grad():
        for p in list(encoder.parameters()) + list(decoder.parameters()):
            p.add_(0.05 * torch.randn_like(p))
    return encoder.eval(), decoder.eval()


def _clips(b: int = 3):
    g = torch.Generator().manual_seed(5)
    return (torch.rand(b, 3, 4, 32, 32, generator=g) - MEAN) / STD  # normalised as VideoMAE feeds them


def test_export_matches_transformers_encoder_and_pretraining_loss(tmp_path):
    encoder, decoder = _models()
    clips = _clips()
    info = tube_mask(clips.shape[0], (2, 4, 4), 0.75, torch.Generator().manual_seed(1), clips.device)
    save_videomae(encoder, tmp_path / "enc")
    save_videomae(encoder, tmp_path / "pre", decoder)
    hf_enc = transformers.VideoMAEModel.from_pretrained(tmp_path / "enc", local_files_only=True).eval()
    hf_pre = transformers.VideoMAEForPreTraining.from_pretrained(tmp_path / "pre", local_files_only=True).eval()
    pixel_values = clips.permute(0, 2, 1, 3, 4)  # transformers takes (B, T, C, H, W)
    with torch.no_grad():
        ours = encoder(clips).tokens
        theirs = hf_enc(pixel_values).last_hidden_state
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
        # masked: transformers drops masked tokens with bool_masked_pos; ours takes keep indices
        visible = encoder(clips, keep=info["keep"]).tokens
        prediction = decoder(visible, info["keep"], info["masked"])
        target = gather_tokens(normalized_patch_targets(clips, 2, 8), info["masked"])
        out = hf_pre(pixel_values, bool_masked_pos=info["mask"])
        torch.testing.assert_close(prediction, out.logits, atol=1e-5, rtol=1e-4)
        # transformers un-normalises the ImageNet statistics first; the per-tube standardisation removes them
        torch.testing.assert_close(torch.nn.functional.mse_loss(prediction, target), out.loss, atol=1e-5, rtol=1e-4)


def test_import_from_transformers_directory(tmp_path):
    torch.manual_seed(3)
    config = transformers.VideoMAEConfig(
        image_size=32, patch_size=8, num_channels=3, num_frames=4, tubelet_size=2, hidden_size=48, num_hidden_layers=2,
        num_attention_heads=3, intermediate_size=96, layer_norm_eps=1e-5, use_mean_pooling=False, decoder_hidden_size=32,
        decoder_num_hidden_layers=1, decoder_num_attention_heads=2, decoder_intermediate_size=64,
    )
    hf_pre = transformers.VideoMAEForPreTraining(config).eval()
    with torch.no_grad():
        for p in hf_pre.parameters():
            p.add_(0.05 * torch.randn_like(p))
    hf_pre.save_pretrained(tmp_path / "hf")
    encoder, decoder = load_videomae(tmp_path / "hf")
    assert encoder.trunk.config.mlp_ratio == 2.0 and decoder is not None
    clips = _clips(2)
    info = tube_mask(2, (2, 4, 4), 0.5, torch.Generator().manual_seed(2), clips.device)
    with torch.no_grad():
        out = hf_pre(clips.permute(0, 2, 1, 3, 4), bool_masked_pos=info["mask"])
        prediction = decoder(encoder(clips, keep=info["keep"]).tokens, info["keep"], info["masked"])
        torch.testing.assert_close(prediction, out.logits, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(encoder(clips).tokens, hf_pre.videomae(clips.permute(0, 2, 1, 3, 4)).last_hidden_state, atol=1e-5, rtol=1e-4)


def test_key_bias_is_dropped_because_softmax_cancels_it(tmp_path):
    encoder, _ = _models(seed=7)
    clips = _clips(2)
    with torch.no_grad():
        before = encoder(clips).tokens
        dim = encoder.dim
        for block in encoder.trunk.blocks:
            block.attn.qkv.bias[dim : 2 * dim] = 0.0
        torch.testing.assert_close(encoder(clips).tokens, before, atol=1e-5, rtol=1e-4)
