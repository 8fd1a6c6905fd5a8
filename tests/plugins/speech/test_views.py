"""TERA alteration policy proportions and wav2vec 2.0 span-masking statistics against the reference loops."""

import numpy as np
import torch

from omnissl_speech.batch import SpeechBatch
from omnissl_speech.views import KEEP, SWAP, ZERO, SpanMaskingConfig, TERAAlteration, TERAAlterationConfig, span_mask


def _batch(lengths, bins=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.as_tensor(lengths)
    T = int(lengths.max())
    padding = torch.arange(T)[None] >= lengths[:, None]
    feats = (torch.randn(len(lengths), T, bins, generator=g) + 3.0).masked_fill(padding[..., None], 0.0)
    return SpeechBatch(features=feats, padding_mask=padding)


def _reference_tera_time_coverage(length, rng):
    """s3prl pretrain/mockingjay/task.py time masking with TERA's config (consecutive 7, overlap allowed)."""
    consecutive = 7
    valid_start_max = max(length - consecutive - 1, 0)
    proportion = round(length * 0.15 / consecutive)
    starts = rng.permutation(valid_start_max + 1)[:proportion]
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + consecutive] = True
    return covered.mean()


def test_tera_policy_proportions():
    lengths = torch.randint(60, 300, (2000,), generator=torch.Generator().manual_seed(1))
    batch = _batch(lengths)
    views = TERAAlteration(TERAAlterationConfig())(batch, torch.Generator().manual_seed(0))
    info = views.info
    policy = info["policy"]
    # per-utterance dice: zero 80 % / swap 10 % / keep 10 % (TERA section 3.2; s3prl task.py)
    assert abs((policy == ZERO).float().mean() - 0.8) < 0.025
    assert abs((policy == SWAP).float().mean() - 0.1) < 0.02
    assert abs((policy == KEEP).float().mean() - 0.1) < 0.02
    assert abs(info["noised"].float().mean() - 0.15) < 0.025
    # time coverage matches the reference loop (blocks of 7 may overlap, so it is a bit under 15 %)
    rng = np.random.default_rng(0)
    ref = np.mean([_reference_tera_time_coverage(int(L), rng) for L in lengths])
    ours = (info["time_mask"].sum(1).float() / lengths).mean()
    assert 0.12 < ref < 0.15 and abs(float(ours) - ref) < 0.004
    # frequency band: width uniform in [0, int(0.2 * 40)] = [0, 8] bins
    width = info["freq_mask"].sum(1).float()
    assert width.max() <= 8 and abs(width.mean() - 4.0) < 0.2
    # padding is never a target nor altered
    assert not (info["target_mask"] & batch.padding_mask[..., None]).any()
    assert (views.inputs[0].features[batch.padding_mask] == 0).all()


def test_tera_policies_do_what_they_say():
    cfg = TERAAlterationConfig(noise_prob=0.0, freq_proportion=0.0)
    batch = _batch(torch.full((200,), 120))
    views = TERAAlteration(cfg)(batch, torch.Generator().manual_seed(2))
    x, y, info = batch.features, views.inputs[0].features, views.info
    tm = info["time_mask"]
    for b in range(200):
        chosen = tm[b]
        assert chosen.any()
        if info["policy"][b] == ZERO:
            assert (y[b, chosen] == 0).all()
        elif info["policy"][b] == KEEP:
            assert torch.equal(y[b], x[b])
        else:  # swapped frames are copies of frames of the same utterance
            frames = y[b, chosen]
            match = (frames[:, None, :] == x[b][None, :, :]).all(-1).any(1)
            assert match.all()
        assert torch.equal(y[b, ~chosen], x[b, ~chosen])
        # the loss targets exactly the chosen frames when there is no frequency alteration
        assert torch.equal(info["target_mask"][b].any(-1), chosen)


def test_tera_views_are_deterministic_and_respect_short_utterances():
    batch = _batch([3, 9, 200])
    a = TERAAlteration(TERAAlterationConfig())(batch, torch.Generator().manual_seed(5))
    b = TERAAlteration(TERAAlterationConfig())(batch, torch.Generator().manual_seed(5))
    assert torch.equal(a.inputs[0].features, b.inputs[0].features)
    assert not (a.info["time_mask"] & batch.padding_mask).any()


def _reference_span_fraction(length, mask_prob, span, rng):
    """fairseq data_utils.compute_mask_indices (static lengths, no_overlap=False), one utterance."""
    num_mask = max(1, int(mask_prob * length + rng.random()))
    starts = rng.choice(length - span, num_mask, replace=False)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + span] = True
    return covered.mean()


def test_span_masking_statistics_match_fairseq():
    lengths = torch.randint(150, 500, (1000,), generator=torch.Generator().manual_seed(0))
    padding = torch.arange(int(lengths.max()))[None] >= lengths[:, None]
    mask = span_mask(padding, SpanMaskingConfig(), torch.Generator().manual_seed(0))
    assert not (mask & padding).any()
    ours = (mask.sum(1) / lengths).mean()
    rng = np.random.default_rng(0)
    ref = np.mean([_reference_span_fraction(int(L), 0.065, 10, rng) for L in lengths])
    # the paper: p = 0.065, M = 10 masks about 49 % of all time steps
    assert 0.44 < ref < 0.52 and abs(float(ours) - ref) < 0.01
    # masked frames come in runs of at least M (overlapping spans only merge)
    m = mask[0, : lengths[0]].int().tolist()
    runs = [len(r) for r in "".join(map(str, m)).split("0") if r]
    assert min(runs) >= 10


def test_span_masking_short_clips_and_min_masks():
    lengths = torch.tensor([0, 2, 5, 12])
    padding = torch.arange(12)[None] >= lengths[:, None]
    mask = span_mask(padding, SpanMaskingConfig(mask_prob=0.0, span=5, min_masks=1), torch.Generator().manual_seed(0))
    assert mask.sum(1).tolist()[0] == 0
    assert (mask.sum(1)[1:] >= 1).all()  # at least one span even with p = 0
    assert not (mask & padding).any()
