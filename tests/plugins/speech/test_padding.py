"""Padding cannot leak: a batch of very different lengths embeds each utterance as encoding it alone."""

import pytest
import torch

from omnissl.plugins import PluginManager
from omnissl.specs import BuildContext
from omnissl_speech import datasets

ENCODERS = ["speech.frame_transformer", "speech.wav2vec2"]


@pytest.fixture(scope="module")
def mixed_lengths():
    # 0.05 s next to 1.5 s: the short one is ~97% padding in the batch
    source = datasets.synthetic_source(datasets.SyntheticConfig(num_utterances=12, min_seconds=0.05, max_seconds_generated=1.5, seed=1))
    lengths = source.frame_lengths
    order = torch.argsort(lengths)
    idx = torch.stack([order[0], order[-1], order[len(order) // 2]])
    assert lengths[idx].max() > 8 * lengths[idx].min()
    return source, idx


@pytest.mark.parametrize("name", ENCODERS)
def test_batch_equals_alone(name, mixed_lengths):
    source, idx = mixed_lengths
    torch.manual_seed(0)
    encoder = PluginManager().registry.get("encoders", name).build({}, BuildContext(data=source)).eval()
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


@pytest.mark.parametrize("name", ENCODERS)
def test_padding_values_do_not_matter(name, mixed_lengths):
    """Garbage in the padded region changes nothing (the mask, not zeros, protects valid frames)."""
    source, idx = mixed_lengths
    torch.manual_seed(0)
    encoder = PluginManager().registry.get("encoders", name).build({}, BuildContext(data=source)).eval()
    batch = source.gather(idx)
    noisy = type(batch)(
        features=batch.features + 100 * batch.padding_mask[..., None], padding_mask=batch.padding_mask,
        waveform=batch.waveform + 100 * (torch.arange(batch.waveform.shape[1])[None] >= batch.waveform_lengths[:, None]),
        waveform_lengths=batch.waveform_lengths,
    )
    with torch.no_grad():
        torch.testing.assert_close(encoder(batch).pooled, encoder(noisy).pooled, rtol=1e-4, atol=1e-5)
