"""T-JEPA's collapse signals read what the probe reads, and mean what docs/objectives.md says.

The symptom this guards against (issue 19): the engine's monitor read the *context* encoder's mean token,
uncentred, and logged RankMe ~1.2 and std ~0.002 for a whole run while the probe, reading the EMA *target*
encoder's flattened tokens after standardising them, kept improving.
"""

import torch

from omnissl.evaluation.monitors import collapse_metrics, embedding_std, monitored_representation, rankme
from omnissl.specs import BuildContext
from omnissl_tabular.datasets import example_source
from omnissl_tabular.encoders import TabularTransformerConfig, build_tabular_transformer
from omnissl_tabular.probe import encode_rows
from omnissl_tabular.tjepa import TJEPAConfig, TJEPAObjective


def _tjepa(seed=0, dim=16):
    torch.manual_seed(seed)
    source = example_source()
    ctx = BuildContext(data=source)
    encoder = build_tabular_transformer(TabularTransformerConfig(dim=dim, depth=1, heads=2), ctx)
    ctx.encoder = encoder
    objective = TJEPAObjective.build(TJEPAConfig(pred_dim=16, pred_depth=1), ctx)
    return source, encoder, objective


def test_monitor_reads_the_probes_representation():
    source, encoder, objective = _tjepa()
    with torch.no_grad():  # the student moves away from its EMA target, as in training
        for p in encoder.parameters():
            p.add_(0.3 * torch.randn_like(p))
    rows = torch.arange(source.num_rows)
    encoder.eval()
    with torch.no_grad():
        monitored = monitored_representation(encoder, source.rows(rows))
    probed = encode_rows(encoder, source, "flatten", torch.device("cpu"))[rows]
    torch.testing.assert_close(monitored, probed)
    # it is the target encoder's tokens, flattened, not the student's mean token
    with torch.no_grad():
        target_tokens = objective.teacher.module(source.rows(rows)).tokens.flatten(1)
        student_tokens = encoder(source.rows(rows)).tokens.flatten(1)
    torch.testing.assert_close(monitored, target_tokens)
    assert not torch.allclose(monitored, student_tokens)


def test_collapse_signals_mean_what_the_docs_say():
    """Collapse (every row the same) reads RankMe 1 and std 0; a shared offset, which a standardising probe
    removes, no longer reads as collapse."""
    source, encoder, _ = _tjepa(dim=64)
    encoder.eval()
    batch = source.rows(torch.arange(source.num_rows))
    with torch.no_grad():
        pooled = encoder(batch).pooled
        flat = monitored_representation(encoder, batch)
    # the old reading: the uncentred mean token is dominated by what every row shares
    assert float(rankme(pooled)) < 0.5 * float(collapse_metrics(pooled)["rankme"])
    # the monitor's reading ignores a shared offset, exactly
    shifted = collapse_metrics(flat + 50.0 * torch.randn(flat.shape[1]))
    for key, value in collapse_metrics(flat).items():
        torch.testing.assert_close(shifted[key], value, rtol=1e-3, atol=1e-4)
    assert float(rankme(flat + 50.0)) < 1.5  # while the raw formula calls the shifted rows collapsed
    assert float(collapse_metrics(flat)["rankme"]) > 5.0
    # a truly collapsed encoder (every row gives the same tokens) reads as collapsed
    target = encoder.representation_encoder()
    with torch.no_grad():
        target.tokenizer.num_weight.zero_()
        target.tokenizer.cat_embedding.weight.zero_()
        collapsed = collapse_metrics(monitored_representation(encoder, batch))
    assert float(collapsed["rankme"]) < 1.01 and float(collapsed["embedding_std"]) < 1e-4
