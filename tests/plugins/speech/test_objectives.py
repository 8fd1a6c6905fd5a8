"""Objective mechanics: HuBERT's two clustering iterations, distractor sampling, w2v-BERT, TERA's scoring."""

import pytest
import torch

from omnissl.checkpoint import save_atomic
from omnissl.errors import ConfigError
from omnissl.interfaces import Progress
from omnissl.specs import BuildContext
from omnissl_speech import encoders, views
from omnissl_speech.clustering import kmeans, resample_targets
from omnissl_speech.objectives import hubert, tera, w2v_bert
from omnissl_speech.objectives.wav2vec2 import sample_distractors


def _encoder(source):
    torch.manual_seed(0)
    return encoders.frame_transformer(encoders.FrameTransformerConfig(dim=32, depth=2, heads=2, dropout=0.0), BuildContext(data=source))


def test_kmeans_recovers_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.1 * torch.randn(50, 2, generator=g) for c in centres])
    found = kmeans(x, 3, seed=1)
    assert torch.cdist(centres, found).min(dim=1).values.max() < 0.2


def test_resample_targets_nearest_position():
    targets = torch.tensor([[0, 1, 2, 3, 0, 0]])
    src_pad = torch.tensor([[False] * 4 + [True] * 2])
    dst_pad = torch.tensor([[False] * 2 + [True]])
    # frame j of 2 takes source frame floor((j + 0.5) * 4 / 2) = 1, 3
    assert resample_targets(targets, src_pad, dst_pad)[0, :2].tolist() == [1, 3]


def test_hubert_recluster_switches_to_the_models_own_layer(tiny_source):
    encoder = _encoder(tiny_source)
    cfg = hubert.HuBERTConfig(num_clusters=4, recluster_step=1, target_layer=1, max_frames=2000, kmeans_iters=5, final_dim=8)
    objective = hubert.HuBERTObjective.build(cfg, BuildContext(data=tiny_source, encoder=encoder))
    batch = tiny_source.gather(torch.arange(4))
    before = objective.targets(batch, batch.padding_mask)
    feature_centroids = objective.centroids.clone()
    assert feature_centroids.shape == (4, 39)  # 13 MFCCs + deltas + delta-deltas per frame in iteration 1
    objective.after_step(Progress(step=1, total_steps=10))
    assert int(objective.iteration) == 2
    for (name, a), b in zip(encoder.state_dict().items(), objective.target_encoder.state_dict().values()):
        assert torch.equal(a, b), name
    assert objective.centroids.shape == (4, 32)  # now clusters of block-1 outputs
    after = objective.targets(batch, batch.padding_mask)
    assert after.shape == before.shape and after.max() < 4
    # the frozen target model stays frozen while the student trains
    assert not any(p.requires_grad for p in objective.target_encoder.parameters())
    assert "target_encoder.trunk.blocks.0.attn.qkv.weight" in objective.state_dict()


def test_hubert_iteration_two_from_a_run_checkpoint(tiny_source, tmp_path):
    first = _encoder(tiny_source)
    with torch.no_grad():
        for p in first.parameters():
            p.add_(0.5)
    path = tmp_path / "last.pt"
    save_atomic({"step": 10, "config": {}, "model": {f"tasks.vowels.encoder.{k}": v for k, v in first.state_dict().items()}}, path)
    cfg = hubert.HuBERTConfig(num_clusters=3, target="checkpoint", target_checkpoint=str(path), max_frames=1000, kmeans_iters=3, final_dim=8)
    student = _encoder(tiny_source)
    objective = hubert.HuBERTObjective.build(cfg, BuildContext(data=tiny_source, encoder=student))
    assert int(objective.iteration) == 2
    torch.testing.assert_close(objective.target_encoder.project.weight, first.project.weight)
    assert not torch.equal(objective.target_encoder.project.weight, student.project.weight)


def test_distractors_are_other_masked_frames_of_the_same_utterance():
    torch.manual_seed(0)
    mask = torch.zeros(3, 30, dtype=torch.bool)
    mask[0, 3:12] = True
    mask[1, 20:22] = True
    mask[2, 5] = True  # a single masked frame: no distractor available
    neg = sample_distractors(mask, 50)
    for b in range(2):
        for t in mask[b].nonzero().flatten():
            drawn = neg[b, t]
            assert mask[b, drawn].all() and (drawn != t).all()
    assert (neg[2, 5] == 5).all()  # the loss then drops it (neg_is_pos)


def test_w2v_bert_needs_an_mlm_module_and_trains(tiny_source):
    encoder = _encoder(tiny_source)
    with pytest.raises(ValueError, match="MLM module"):
        w2v_bert.W2VBERTObjective.build(w2v_bert.W2VBERTConfig(contrastive_layers=2), BuildContext(encoder=encoder))
    objective = w2v_bert.W2VBERTObjective.build(w2v_bert.W2VBERTConfig(entries=16, num_negatives=5), BuildContext(encoder=encoder))
    masking = views.SpanMasking(views.SpanMaskingConfig(mask_prob=0.2, span=3), encoder)
    out = objective(encoder, masking(tiny_source.gather(torch.arange(6)), torch.Generator().manual_seed(0)))
    assert torch.isfinite(out.loss) and {"contrastive", "mlm", "diversity"} <= set(out.logs)
    # MLM cross-entropy starts near log(V) (uniform predictions over the 16 quantizer ids)
    assert abs(float(out.logs["mlm"]) - torch.log(torch.tensor(16.0))) < 1.0


def test_tera_scores_only_altered_positions(tiny_source):
    encoder = _encoder(tiny_source).eval()  # no dropout: the same input gives the same prediction
    objective = tera.TERAObjective.build(tera.TERAConfig(), BuildContext(data=tiny_source, encoder=encoder))
    batch = tiny_source.gather(torch.arange(6))
    v = views.TERAAlteration(views.TERAAlterationConfig())(batch, torch.Generator().manual_seed(0))
    target_mask = v.info["target_mask"]
    loss = objective(encoder, v).loss
    # changing the reconstruction target outside the altered positions (or in padding) changes nothing
    v.original = type(batch)(features=batch.features + 5.0 * ~target_mask, padding_mask=batch.padding_mask)
    assert torch.equal(objective(encoder, v).loss, loss)
    v.original = type(batch)(features=batch.features + 5.0 * target_mask, padding_mask=batch.padding_mask)
    assert objective(encoder, v).loss > loss + 1.0


def test_gumbel_temperature_is_checkpointed(tiny_source):
    """The annealed temperature lives in the state dict, so a resumed run continues the anneal."""
    encoder = _encoder(tiny_source)
    cfg = w2v_bert.W2VBERTConfig(entries=16, num_negatives=5, tau_start=2.0, tau_end=0.5, tau_decay=0.9)
    objective = w2v_bert.W2VBERTObjective.build(cfg, BuildContext(encoder=encoder))
    objective.after_step(Progress(step=5, total_steps=100))
    assert float(objective.quantizer.tau) == pytest.approx(2.0 * 0.9**5)
    resumed = w2v_bert.W2VBERTObjective.build(cfg, BuildContext(encoder=encoder))
    assert float(resumed.quantizer.tau) == 2.0
    resumed.load_state_dict(objective.state_dict())
    assert float(resumed.quantizer.tau) == pytest.approx(2.0 * 0.9**5)
    objective.after_step(Progress(step=100, total_steps=100))
    assert float(objective.quantizer.tau) == 0.5  # floored at tau_end


def test_w2v_bert_trains_conformer_blocks(tiny_source):
    """The paper's context network: gradients of both losses reach the conformer's convolution modules."""
    torch.manual_seed(0)
    cfg = encoders.FrameTransformerConfig(dim=32, depth=2, heads=2, dropout=0.0, block="conformer", conv_kernel=5)
    encoder = encoders.frame_transformer(cfg, BuildContext(data=tiny_source))
    objective = w2v_bert.W2VBERTObjective.build(w2v_bert.W2VBERTConfig(entries=16, num_negatives=5), BuildContext(encoder=encoder))
    masking = views.SpanMasking(views.SpanMaskingConfig(mask_prob=0.2, span=3), encoder)
    out = objective(encoder, masking(tiny_source.gather(torch.arange(6)), torch.Generator().manual_seed(0)))
    out.loss.backward()
    for block in encoder.trunk.blocks:
        depthwise = block.conv_module.sequential[2].weight
        assert depthwise.grad is not None and depthwise.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="must be odd"):
        encoders.frame_transformer(cfg.model_copy(update={"conv_kernel": 4}), BuildContext(data=tiny_source))
