"""Padding cannot leak: a batch of very different lengths embeds each utterance as encoding it alone.

Every encoder and context network is checked: the transformer trunk and the conformer (w2v-BERT's blocks,
whose depthwise convolution and batch norm would otherwise read padded frames).
"""

import pytest
import torch

from omnissl.plugins import PluginManager
from omnissl.specs import BuildContext
from omnissl_speech import datasets

ENCODERS = [
    ("speech.frame_transformer", {}),
    ("speech.wav2vec2", {}),
    ("speech.frame_transformer", {"block": "conformer", "conv_kernel": 7}),
    ("speech.wav2vec2", {"block": "conformer", "conv_kernel": 7}),
]
IDS = ["frame_transformer", "wav2vec2", "frame_conformer", "wav2vec2_conformer"]


@pytest.fixture(scope="module")
def mixed_lengths():
    # 0.05 s next to 1.5 s: the short one is ~97% padding in the batch
    source = datasets.synthetic_source(datasets.SyntheticConfig(num_utterances=12, min_seconds=0.05, max_seconds_generated=1.5, seed=1))
    lengths = source.frame_lengths
    order = torch.argsort(lengths)
    idx = torch.stack([order[0], order[-1], order[len(order) // 2]])
    assert lengths[idx].max() > 8 * lengths[idx].min()
    return source, idx


def _build(name, overrides, source):
    torch.manual_seed(0)
    return PluginManager().registry.get("encoders", name).build(dict(overrides), BuildContext(data=source))


@pytest.mark.parametrize(("name", "overrides"), ENCODERS, ids=IDS)
def test_batch_equals_alone(name, overrides, mixed_lengths):
    source, idx = mixed_lengths
    encoder = _build(name, overrides, source).eval()
    with torch.no_grad():
        together = encoder(source.gather(idx))
        for row, i in enumerate(idx):
            alone = encoder(source.gather(i[None]))
            torch.testing.assert_close(together.pooled[row], alone.pooled[0], rtol=1e-4, atol=1e-5)
            valid = ~together.padding_mask[row]
            assert int(valid.sum()) == alone.tokens.shape[1]
            torch.testing.assert_close(together.tokens[row][valid], alone.tokens[0], rtol=1e-4, atol=1e-4)
            for a, b in zip(together.layers, alone.layers):
                torch.testing.assert_close(a[row][valid], b[0], rtol=1e-4, atol=1e-4)


def _noisy(batch):
    return type(batch)(
        features=batch.features + 100 * batch.padding_mask[..., None], padding_mask=batch.padding_mask,
        waveform=batch.waveform + 100 * (torch.arange(batch.waveform.shape[1])[None] >= batch.waveform_lengths[:, None]),
        waveform_lengths=batch.waveform_lengths,
    )


@pytest.mark.parametrize(("name", "overrides"), ENCODERS[2:], ids=IDS[2:])
def test_conformer_training_statistics_ignore_padding(name, overrides, mixed_lengths):
    """In training the conformer's batch norm takes statistics over valid frames only: garbage in the padding
    changes neither the outputs at valid frames nor the running statistics eval mode will use."""
    source, idx = mixed_lengths
    overrides = {**overrides, "dropout": 0.0}
    encoder, twin = _build(name, overrides, source).train(), _build(name, overrides, source).train()
    batch = source.gather(idx)
    clean, noisy = encoder(batch), twin(_noisy(batch))
    valid = ~clean.padding_mask
    torch.testing.assert_close(clean.tokens[valid], noisy.tokens[valid], rtol=1e-4, atol=1e-4)
    for a, b in zip(encoder.trunk.blocks, twin.trunk.blocks):
        norm_a, norm_b = a.conv_module.sequential[3], b.conv_module.sequential[3]
        assert not torch.equal(norm_a.running_var, torch.ones_like(norm_a.running_var))  # they were updated
        torch.testing.assert_close(norm_a.running_mean, norm_b.running_mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(norm_a.running_var, norm_b.running_var, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "overrides"), ENCODERS, ids=IDS)
def test_padding_values_do_not_matter(name, overrides, mixed_lengths):
    """Garbage in the padded region changes nothing (the mask, not zeros, protects valid frames)."""
    source, idx = mixed_lengths
    encoder = _build(name, overrides, source).eval()
    batch = source.gather(idx)
    noisy = _noisy(batch)
    with torch.no_grad():
        torch.testing.assert_close(encoder(batch).pooled, encoder(noisy).pooled, rtol=1e-4, atol=1e-5)
