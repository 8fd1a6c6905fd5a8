"""wav2vec 2.0 and HuBERT details checked against fairseq.

References: fairseq ``fairseq/models/wav2vec/wav2vec2.py`` (``Wav2Vec2Model.forward``: ``features_pen``,
``unmasked_features`` into the quantizer, ``GradMultiply`` by ``feature_grad_mult``),
``fairseq/criterions/wav2vec_criterion.py`` (``loss_weights`` [0.1, 10]) and
``examples/hubert/simple_kmeans/dump_mfcc_feature.py`` (Kaldi MFCC + deltas).
"""

import pytest
import torch
import torchaudio

from omnissl.errors import ConfigError
from omnissl.specs import BuildContext
from omnissl_speech import datasets, encoders, views
from omnissl_speech.features import mfcc_deltas
from omnissl_speech.objectives import hubert
from omnissl_speech.objectives.wav2vec2 import Wav2Vec2ContrastiveConfig, Wav2Vec2Objective


def _wav2vec2(source, **overrides):
    torch.manual_seed(0)
    cfg = encoders.Wav2Vec2Config(dim=32, depth=2, heads=2, dropout=0.0, **overrides)
    return encoders.wav2vec2_encoder(cfg, BuildContext(data=source))


def _masked_views(encoder, source, n=6):
    masking = views.SpanMasking(views.SpanMaskingConfig(mask_prob=0.2, span=3), encoder)
    return masking(source.gather(torch.arange(n)), torch.Generator().manual_seed(0))


def test_mfcc_deltas_match_fairseqs_per_utterance_dump():
    """The batched 39-d features equal fairseq's dump_mfcc_feature.py run on each utterance alone,
    whatever the padding holds."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([150, 1234, 8000, 3001])  # the first is shorter than one 25 ms window
    wave = 0.1 * torch.randn(4, 8000, generator=g)
    wave[torch.arange(8000)[None] >= lengths[:, None]] = 7.0  # garbage padding
    features, padding = mfcc_deltas(wave, lengths, 8000)
    assert features.shape[-1] == 39
    assert (~padding).sum(1).tolist() == [0, 13, 98, 36]  # 1 + (S - 200) // 80 valid frames
    for row, n in enumerate(lengths.tolist()):
        if n < 200:
            continue
        mfccs = torchaudio.compliance.kaldi.mfcc(waveform=wave[row, :n][None], sample_frequency=8000, use_energy=False).T
        deltas = torchaudio.functional.compute_deltas(mfccs)
        ddeltas = torchaudio.functional.compute_deltas(deltas)
        reference = torch.cat([mfccs, deltas, ddeltas], dim=0).T
        torch.testing.assert_close(features[row][~padding[row]], reference, rtol=1e-5, atol=1e-4)
    assert (features[padding] == 0).all()


def test_hubert_iteration_one_clusters_39d_mfcc(tiny_source):
    encoder = _wav2vec2(tiny_source)
    cfg = hubert.HuBERTConfig(num_clusters=4, max_frames=2000, kmeans_iters=5, final_dim=8)
    objective = hubert.HuBERTObjective.build(cfg, BuildContext(data=tiny_source, encoder=encoder))
    assert objective.centroids.shape == (4, 39)
    out = objective(encoder, _masked_views(encoder, tiny_source))
    # fairseq HuBERT: loss = masked NCE + 10 * features_pen
    torch.testing.assert_close(out.loss, out.logs["masked_ce"] + 10.0 * out.logs["feature_penalty"])
    no_waves = datasets.synthetic_source(datasets.SyntheticConfig(num_utterances=8, max_seconds_generated=0.3, keep_waveform=False))
    with pytest.raises(ConfigError, match="keep_waveform: true"):
        hubert.HuBERTObjective.build(cfg, BuildContext(data=no_waves, encoder=encoder))


def test_wav2vec2_quantizer_reads_features_before_the_projection(tiny_source):
    encoder = _wav2vec2(tiny_source).eval()
    objective = Wav2Vec2Objective.build(Wav2Vec2ContrastiveConfig(entries=16, num_negatives=5), BuildContext(encoder=encoder)).eval()
    assert objective.quantizer.to_logits.in_features == encoder.cfg.conv_layers[-1][0]  # conv channels, not dim
    seen = []
    objective.quantizer.register_forward_hook(lambda module, args, out: seen.append((args[0], out.codes)))
    v = _masked_views(encoder, tiny_source)
    objective(encoder, v)
    stem = encoder.stem(v.inputs[0])
    torch.testing.assert_close(seen[0][0], stem.unprojected)
    # retraining the projection changes what the context network reads but not the targets
    with torch.no_grad():
        encoder.project[1].weight.mul_(-3.0)
    objective(encoder, v)
    assert torch.equal(seen[0][1], seen[1][1])
    assert not torch.allclose(encoder.stem(v.inputs[0]).z, stem.z)


def test_wav2vec2_loss_terms_and_feature_penalty(tiny_source):
    encoder = _wav2vec2(tiny_source).eval()
    objective = Wav2Vec2Objective.build(Wav2Vec2ContrastiveConfig(entries=16, num_negatives=5), BuildContext(encoder=encoder)).eval()
    v = _masked_views(encoder, tiny_source)
    out = objective(encoder, v)
    torch.testing.assert_close(out.loss, out.logs["contrastive"] + 0.1 * out.logs["diversity"] + 10.0 * out.logs["feature_penalty"])
    # features_pen: mean of the squared conv outputs, over valid frames only
    batch = v.inputs[0]
    squares, count = 0.0, 0
    for row in range(batch.waveform.shape[0]):
        n = int(batch.waveform_lengths[row])
        conv, _ = encoder.feature_extractor(batch.waveform[row : row + 1, :n], None)
        squares, count = squares + conv.pow(2).sum(), count + conv.numel()
    torch.testing.assert_close(out.logs["feature_penalty"], squares / count, rtol=1e-4, atol=1e-6)
    # diversity: code usage of the masked frames that were quantized (fairseq quantizes only those)
    stem = encoder.stem(batch)
    on_masked = objective.quantizer(stem.unprojected, v.info["mask"])
    on_all = objective.quantizer(stem.unprojected, ~stem.padding_mask)
    torch.testing.assert_close(out.logs["perplexity"], on_masked.perplexity)
    assert not torch.allclose(on_masked.perplexity, on_all.perplexity)


def test_feature_grad_mult_scales_only_the_conv_gradient(tiny_source):
    batch = tiny_source.gather(torch.arange(4))
    grads = {}
    for mult in (1.0, 0.1):
        encoder = _wav2vec2(tiny_source, feature_grad_mult=mult)
        stem = encoder.stem(batch)
        (stem.z.sum() + stem.penalty).backward()
        grads[mult] = {name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None}
    conv = [n for n in grads[1.0] if n.startswith("feature_extractor")]
    assert conv
    for n in conv:
        torch.testing.assert_close(grads[0.1][n], 0.1 * grads[1.0][n], rtol=1e-3, atol=1e-3 * float(grads[1.0][n].abs().max()))
    torch.testing.assert_close(grads[0.1]["project.1.weight"], grads[1.0]["project.1.weight"])
