"""T-JEPA mask sampler invariants and the encoder's [REG]-aware ``keep``.

Reference values: the released ``MaskCollator`` (github.com/jose-melo/t-jepa ``src/mask.py``) computes the
bounds as ``round(F * share)`` and draws ``min + round((max - min) * U)``.
"""

import pytest
import torch

from omnissl.specs import BuildContext
from omnissl_tabular.datasets import example_source
from omnissl_tabular.encoders import TabularTransformerConfig, build_tabular_transformer
from omnissl_tabular.masking import TJEPAMasking, TJEPAMaskingConfig, share_bounds


def test_share_bounds_match_released_formula_on_adult():
    cfg = TJEPAMaskingConfig()
    # Adult has 14 features: round(14 * 0.136) = 2, round(14 * 0.368) = 5, round(14 * 0.156) = 2, round(14 * 0.622) = 9
    assert share_bounds(14, cfg.min_context_share, cfg.max_context_share) == (2, 5)
    assert share_bounds(14, cfg.min_target_share, cfg.max_target_share) == (2, 9)


@pytest.mark.parametrize("num_features", [2, 5, 14, 30])
def test_context_and_targets_are_disjoint_in_range_and_sized_by_shares(num_features):
    masking = TJEPAMasking(num_features, TJEPAMaskingConfig())
    batch = {"num": torch.zeros(64, num_features), "cat": torch.zeros(64, 0, dtype=torch.long)}
    c_lo, c_hi = masking.context_bounds
    t_lo, t_hi = masking.target_bounds
    seen = torch.zeros(num_features, dtype=torch.bool)
    for seed in range(40):
        info = masking(batch, torch.Generator().manual_seed(seed)).info
        context, targets = info["context"], info["targets"]
        k_c, k_t = context.shape[1], targets.shape[2]
        assert c_lo <= k_c <= c_hi and t_lo <= k_t <= t_hi and k_c + k_t <= num_features
        assert targets.shape[:2] == (64, 4)
        assert context.min() >= 0 and context.max() < num_features and targets.min() >= 0 and targets.max() < num_features
        # no repeats inside a set, and no target feature is in the same row's context
        assert (context.sort(1).values.diff(dim=1) > 0).all() and (targets.diff(dim=2) > 0).all()
        overlap = (targets.unsqueeze(-1) == context[:, None, None, :]).any(-1)
        assert not overlap.any()
        seen |= torch.zeros(num_features, dtype=torch.bool).index_fill(0, targets.flatten(), True)
    # unlike the released sampler, the last feature can be a target
    assert seen[-1]


def test_keep_offsets_past_reg_tokens_and_context_sees_only_context():
    source = example_source()
    ctx = BuildContext(data=source)
    torch.manual_seed(0)
    encoder = build_tabular_transformer(TabularTransformerConfig(dim=16, depth=1, heads=2, num_reg_tokens=2), ctx).eval()
    batch = source.batch(torch.arange(4))
    keep = torch.tensor([[0, 2]] * 4)
    out = encoder(batch, keep=keep).tokens
    assert out.shape == (4, 2 + 2, 16)  # two [REG] tokens always kept, then the two kept features
    # manual reference: tokens at positions [0, 1] (REG) and [2, 4] (features 0 and 2 offset by 2)
    tokens = encoder.tokenizer(batch["num"], batch["cat"]) + encoder.positions
    expected = encoder.trunk(tokens[:, [0, 1, 2, 4]])
    torch.testing.assert_close(out, expected)
    # changing a feature outside the context leaves the context encoding unchanged; a context feature does not
    changed = {"num": batch["num"].clone(), "cat": batch["cat"]}
    changed["num"][:, 1] += 5.0
    torch.testing.assert_close(encoder(changed, keep=keep).tokens, out)
    changed["num"][:, 0] += 5.0
    assert not torch.allclose(encoder(changed, keep=keep).tokens, out)


def test_masking_reproducible_under_seed():
    masking = TJEPAMasking(10, TJEPAMaskingConfig())
    batch = {"num": torch.zeros(8, 10), "cat": torch.zeros(8, 0, dtype=torch.long)}
    a = masking(batch, torch.Generator().manual_seed(3)).info
    b = masking(batch, torch.Generator().manual_seed(3)).info
    assert torch.equal(a["context"], b["context"]) and torch.equal(a["targets"], b["targets"])
