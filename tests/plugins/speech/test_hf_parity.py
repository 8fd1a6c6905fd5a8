"""speech.wav2vec2 against transformers' Wav2Vec2Model and HubertModel, both directions.

The reference is transformers' own implementation (``models/wav2vec2/modeling_wav2vec2.py``,
``models/hubert/modeling_hubert.py``), run from local directories written in the test with random weights;
nothing is downloaded. Every comparison is on a padded batch with an attention mask, over valid frames
(padded frames are zero in ours and unspecified in HF's). Skips when transformers is not installed.
"""

import pytest
import torch

from omnissl.errors import ConfigError, OmnisslError
from omnissl.specs import BuildContext
from omnissl_speech.batch import SpeechBatch
from omnissl_speech.encoders import Wav2Vec2Config, Wav2Vec2Encoder, wav2vec2_encoder
from omnissl_speech.hf import load_pretrained, save_pretrained

transformers = pytest.importorskip("transformers")

SMALL = dict(dim=32, depth=3, heads=4, dropout=0.0, conv_layers=[(16, 10, 5), (16, 3, 2), (16, 2, 2)], pos_conv_kernel=16, pos_conv_groups=4)


def _encoder(seed: int = 0, **overrides) -> Wav2Vec2Encoder:
    torch.manual_seed(seed)
    encoder = Wav2Vec2Encoder(Wav2Vec2Config(**{**SMALL, "input_norm": False, **overrides}))
    with torch.no_grad():  # move every weight off its initial value (unit norms, zero biases would hide a swap)
        for p in encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return encoder.eval()


def _batch(lengths=(1600, 1100, 703)):
    lengths = torch.tensor(lengths)
    valid = torch.arange(int(lengths.max()))[None, :] < lengths[:, None]
    wave = torch.randn(len(lengths), int(lengths.max()), generator=torch.Generator().manual_seed(7)) * valid
    # the encoder reads waveforms only; features are a placeholder of the right type
    batch = SpeechBatch(features=torch.zeros(len(lengths), 1, 40), padding_mask=torch.zeros(len(lengths), 1, dtype=torch.bool),
                        waveform=wave, waveform_lengths=lengths)
    return batch, valid.long()


def _assert_same(ours, theirs):
    valid = ~ours.padding_mask
    assert valid.sum() < valid.numel(), "the batch must contain padded frames"
    torch.testing.assert_close(ours.tokens[valid], theirs.last_hidden_state[valid], atol=1e-5, rtol=1e-4)
    assert len(theirs.hidden_states) == len(ours.layers) + 1
    for i, layer in enumerate(ours.layers):  # HF: [positions added, layer 1, ..., layer L]
        torch.testing.assert_close(layer[valid], theirs.hidden_states[i + 1][valid], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("architecture,cls", [("wav2vec2", "Wav2Vec2Model"), ("hubert", "HubertModel")])
@pytest.mark.parametrize("conv_bias", [True, False])
def test_export_loads_with_automodel_and_gives_equal_hidden_states(tmp_path, architecture, cls, conv_bias):
    encoder = _encoder(conv_bias=conv_bias)
    save_pretrained(encoder, tmp_path, architecture)
    model = transformers.AutoModel.from_pretrained(tmp_path, local_files_only=True).eval()
    assert type(model).__name__ == cls
    batch, attention_mask = _batch()
    with torch.no_grad():
        ours, theirs = encoder(batch), model(batch.waveform, attention_mask=attention_mask, output_hidden_states=True)
        _assert_same(ours, theirs)
        z, padding = encoder.local_features(batch)  # HF's hidden_states[0]: projected features + conv positions
        torch.testing.assert_close((z + encoder.positions(z, padding))[~padding], theirs.hidden_states[0][~padding], atol=1e-5, rtol=1e-4)


def test_odd_positional_kernel_and_the_mask_embedding_match(tmp_path):
    encoder = _encoder(pos_conv_kernel=7, pos_conv_groups=2)  # odd kernel: nothing is trimmed, in both
    mask_embedding = torch.randn(32, generator=torch.Generator().manual_seed(1))
    save_pretrained(encoder, tmp_path, "wav2vec2", mask_embedding=mask_embedding)
    model = transformers.Wav2Vec2Model.from_pretrained(tmp_path, local_files_only=True).eval()
    torch.testing.assert_close(model.masked_spec_embed.detach(), mask_embedding)
    batch, attention_mask = _batch()
    with torch.no_grad():
        z, padding = encoder.local_features(batch)
        mask = torch.zeros_like(padding)
        mask[:, 3:9] = True  # wav2vec 2.0 masking: these frames are replaced by the embedding before the positions
        ours = encoder.contextualise(z, padding, mask=mask, mask_embedding=mask_embedding)
        theirs = model(batch.waveform, attention_mask=attention_mask, mask_time_indices=mask, output_hidden_states=True)
        _assert_same(ours, theirs)


@pytest.mark.parametrize("architecture", ["wav2vec2", "hubert"])
def test_a_transformers_directory_initialises_the_encoder_through_the_config(tmp_path, architecture):
    torch.manual_seed(4)
    common = dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48, conv_dim=[8, 8], conv_kernel=[10, 3],
                  conv_stride=[5, 2], conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=8,
                  num_conv_pos_embedding_groups=2, layer_norm_eps=1e-5)
    if architecture == "hubert":
        model = transformers.HubertModel(transformers.HubertConfig(**common))
    else:
        model = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**common))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path)
    # the speech.wav2vec2 factory with the config a run file gives (what EncoderSpec.build calls)
    cfg = Wav2Vec2Config.model_validate({"init_from_hf": str(tmp_path), "dropout": 0.0, "feature_grad_mult": 1.0})
    encoder = wav2vec2_encoder(cfg, BuildContext()).eval()
    assert (encoder.cfg.dim, encoder.cfg.depth, encoder.cfg.mlp_ratio, encoder.cfg.input_norm) == (24, 2, 2.0, False)
    assert encoder.cfg.feature_grad_mult == 1.0  # training-only fields come from our config
    batch, attention_mask = _batch((900, 640))
    with torch.no_grad():
        _assert_same(encoder(batch), model.eval()(batch.waveform, attention_mask=attention_mask, output_hidden_states=True))
    _, mask_embedding = load_pretrained(tmp_path)
    torch.testing.assert_close(mask_embedding, model.masked_spec_embed.detach())


def test_import_then_export_gives_back_the_same_weights(tmp_path):
    encoder = _encoder(seed=2)
    save_pretrained(encoder, tmp_path / "a", "hubert")
    again, _ = load_pretrained(tmp_path / "a")
    for name, tensor in encoder.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], tensor, atol=0, rtol=0)


def test_default_layout_keeps_its_input_norm_and_refuses_export(tmp_path):
    encoder = Wav2Vec2Encoder(Wav2Vec2Config(**SMALL))  # the original layout, which existing checkpoints hold
    assert {"input_norm.weight", "input_norm.bias"} <= set(encoder.state_dict())
    with pytest.raises(OmnisslError, match="input_norm: false"):
        save_pretrained(encoder, tmp_path)
    with pytest.raises(OmnisslError, match="block"):
        save_pretrained(Wav2Vec2Encoder(Wav2Vec2Config(**SMALL, input_norm=False, block="conformer")), tmp_path)
    assert not (tmp_path / "config.json").exists()


@pytest.mark.parametrize("change,message", [
    ({"feat_extract_norm": "group"}, "feat_extract_norm='group'"),
    ({"do_stable_layer_norm": False}, "do_stable_layer_norm=False"),
    ({"hidden_act": "relu"}, "hidden_act='relu'"),
    ({"layer_norm_eps": 1e-6}, "layer_norm_eps"),
])
def test_checkpoints_we_cannot_express_are_refused_by_name(tmp_path, change, message):
    config = transformers.Wav2Vec2Config(**{**dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=[8],
                                                   conv_kernel=[10], conv_stride=[5], feat_extract_norm="layer", do_stable_layer_norm=True,
                                                   num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2, layer_norm_eps=1e-5), **change})
    transformers.Wav2Vec2Model(config).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match=message):
        load_pretrained(tmp_path)


def test_architecture_fields_that_disagree_with_the_checkpoint_are_errors(tmp_path):
    save_pretrained(_encoder(), tmp_path)
    with pytest.raises(ConfigError, match=r"encoder.dim: 64 but .* has 32"):
        load_pretrained(tmp_path, Wav2Vec2Config(dim=64))
    with pytest.raises(ConfigError, match="no config.json"):
        load_pretrained(tmp_path / "missing")
