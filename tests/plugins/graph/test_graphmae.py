"""GraphMAE: masking and re-masking invariants, the scaled cosine error and the exact GAT decoder.

Reference behaviour: github.com/THUDM/GraphMAE ``graphmae/models/edcoder.py`` (``encoding_mask_noise``,
``mask_attr_prediction``) and ``loss_func.py`` (``sce_loss``).
"""

import math

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GATConv

from omnissl.losses.reconstruction import ScaledCosineError
from omnissl.specs import BuildContext
from omnissl_graph.datasets import SBMConfig, generate_sbm
from omnissl_graph.decoders import GATDecoder
from omnissl_graph.encoders import GATEncoder, GATEncoderConfig
from omnissl_graph.masking import AttributeMasking, AttributeMaskingConfig
from omnissl_graph.objectives.graphmae import GraphMAEConfig, GraphMAEObjective


@pytest.fixture
def graph():
    return generate_sbm(SBMConfig(num_nodes=120, num_features=12)).batch(None)


def test_mask_counts_follow_official_rounding(graph):
    views = AttributeMasking(AttributeMaskingConfig(mask_rate=0.5, replace_rate=0.05))(graph, torch.Generator().manual_seed(0))
    n = graph.x.shape[0]
    m = int(0.5 * n)
    info = views.info
    assert info["mask_nodes"].numel() == m and info["mask_nodes"].unique().numel() == m
    assert info["token_nodes"].numel() == int(0.95 * m)
    assert info["noise_nodes"].numel() == int(0.05 * m)
    masked = set(info["mask_nodes"].tolist())
    assert set(info["token_nodes"].tolist()) <= masked and set(info["noise_nodes"].tolist()) <= masked
    assert not set(info["token_nodes"].tolist()) & set(info["noise_nodes"].tolist())


def test_masked_view_features(graph):
    views = AttributeMasking(AttributeMaskingConfig(mask_rate=0.5, replace_rate=0.1))(graph, torch.Generator().manual_seed(1))
    x, out = graph.x, views.inputs[0].x
    token, noise, mask = views.info["token_nodes"], views.info["noise_nodes"], views.info["mask_nodes"]
    assert torch.all(out[token] == 0), "token nodes are zeroed (the objective adds the [MASK] token)"
    unmasked = torch.ones(x.shape[0], dtype=torch.bool)
    unmasked[mask] = False
    assert torch.equal(out[unmasked], x[unmasked]), "unmasked nodes keep their features"
    # every replaced node carries the features of some node of the graph
    assert all(any(torch.equal(out[i], x[j]) for j in range(x.shape[0])) for i in noise.tolist())
    assert views.original is graph and torch.equal(graph.x, x)


def test_no_replacement_masks_everything_with_token(graph):
    views = AttributeMasking(AttributeMaskingConfig(mask_rate=0.3, replace_rate=0.0))(graph, torch.Generator().manual_seed(0))
    assert torch.equal(views.info["token_nodes"], views.info["mask_nodes"])
    assert views.info["noise_nodes"].numel() == 0


def _objective(graph, decoder="gat"):
    torch.manual_seed(0)
    ctx = BuildContext(data=None)
    encoder = GATEncoder(graph.x.shape[1], GATEncoderConfig(hidden_dim=16, heads=2, feat_drop=0.0, attn_drop=0.0))
    ctx.encoder = encoder
    objective = GraphMAEObjective.build(GraphMAEConfig(in_dim=graph.x.shape[1], decoder=decoder, feat_drop=0.0, attn_drop=0.0), ctx)
    return encoder, objective


@pytest.mark.parametrize("decoder", ["gat", "gin", "gcn"])
def test_remask_and_mask_token(graph, decoder):
    encoder, objective = _objective(graph, decoder)
    with torch.no_grad():
        objective.enc_mask_token.normal_()
    views = AttributeMasking(AttributeMaskingConfig())(graph, torch.Generator().manual_seed(0))
    seen = {}

    def record(key, get):
        def hook(module, args):
            seen.setdefault(key, get(args).detach().clone())  # returns None: inputs are not replaced

        return hook

    encoder.register_forward_pre_hook(record("enc_in", lambda args: args[0].x))
    objective.decoder.register_forward_pre_hook(record("dec_in", lambda args: args[0]))
    out = objective(encoder, views)
    token, mask = views.info["token_nodes"], views.info["mask_nodes"]
    assert torch.allclose(seen["enc_in"][token], objective.enc_mask_token.detach().expand(token.numel(), -1))
    assert torch.all(seen["dec_in"][mask] == 0), "re-mask: masked nodes enter the decoder as zeros"
    keep = torch.ones(graph.x.shape[0], dtype=torch.bool)
    keep[mask] = False
    assert (seen["dec_in"][keep].abs().sum(1) > 0).all()
    out.loss.backward()
    assert objective.enc_mask_token.grad is not None and objective.enc_mask_token.grad.abs().sum() > 0


def test_loss_reads_masked_nodes_only(graph):
    encoder, objective = _objective(graph)
    encoder.eval(), objective.eval()
    views = AttributeMasking(AttributeMaskingConfig())(graph, torch.Generator().manual_seed(0))
    base = objective(encoder, views).loss
    mask = views.info["mask_nodes"]
    keep = torch.ones(graph.x.shape[0], dtype=torch.bool)
    keep[mask] = False
    other = graph.clone()
    other.x = graph.x.clone()
    other.x[keep] = torch.randn_like(other.x[keep])
    views.original = other  # targets change at unmasked nodes only: the loss must not
    assert torch.allclose(objective(encoder, views).loss, base)
    other.x[mask] = torch.randn_like(other.x[mask])
    assert not torch.allclose(objective(encoder, views).loss, base)


def test_scaled_cosine_error_matches_formula():
    # GraphMAE eq. (2) / sce_loss: mean over rows of (1 - x.z / (|x| |z|)) ** alpha
    torch.manual_seed(0)
    x, z = torch.randn(5, 7), torch.randn(5, 7)
    for gamma in (1, 2, 3):
        expected = sum((1 - float(x[i] @ z[i]) / (float(x[i].norm()) * float(z[i].norm()))) ** gamma for i in range(5)) / 5
        assert math.isclose(float(ScaledCosineError(gamma)(z, x)), expected, rel_tol=1e-5)
    assert float(ScaledCosineError(3)(x, 2 * x)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        ScaledCosineError(0.5)


@pytest.mark.parametrize("heads", [1, 3])
def test_gat_decoder_equals_pyg_gatconv(heads):
    torch.manual_seed(0)
    dec = GATDecoder(8, 5, heads, attn_drop=0.0).eval()
    torch.nn.init.normal_(dec.conv.bias)
    h, edge_index = torch.randn(25, 8), torch.randint(0, 25, (2, 80))
    assert isinstance(dec.conv, GATConv)
    ref = dec.conv(h, edge_index)
    rows = torch.tensor([4, 0, 17, 9])
    assert torch.allclose(dec(h, edge_index), ref, atol=1e-5)
    assert torch.allclose(dec(h, edge_index, rows), ref[rows], atol=1e-5)


def test_graph_level_masking_on_a_batch():
    from omnissl_graph.datasets import SyntheticGraphsConfig, generate_graphs

    batch = generate_graphs(SyntheticGraphsConfig(num_graphs=6)).batch(torch.arange(6))
    views = AttributeMasking(AttributeMaskingConfig(mask_rate=0.75, replace_rate=0.1))(batch, torch.Generator().manual_seed(0))
    assert views.info["mask_nodes"].numel() == int(0.75 * batch.x.shape[0])
    assert torch.equal(views.inputs[0].batch, batch.batch)
    assert isinstance(views.inputs[0], Data)


def test_gat_uses_graphmae_initialisation():
    """GraphMAE's GATConv.reset_parameters: xavier_normal_(gain=calculate_gain('relu')) on fc, attn_l, attn_r; bias 0."""
    torch.manual_seed(0)
    enc = GATEncoder(1433, GATEncoderConfig(hidden_dim=512, heads=4))
    conv = enc.convs[0]
    expected = math.sqrt(2.0) * math.sqrt(2.0 / (1433 + 512))
    assert abs(conv.lin.weight.std().item() / expected - 1) < 0.02
    att_expected = math.sqrt(2.0) * math.sqrt(2.0 / (4 * 128 + 128))  # (1, heads, C): fan_in heads*C, fan_out C
    assert abs(torch.cat([conv.att_src.flatten(), conv.att_dst.flatten()]).std().item() / att_expected - 1) < 0.1
    assert torch.all(conv.bias == 0)
    dec = GATDecoder(512, 1433, 1, 0.0)
    assert abs(dec.conv.lin.weight.std().item() / expected - 1) < 0.02
    pyg = GATEncoder(1433, GATEncoderConfig(hidden_dim=512, heads=4, init="pyg")).convs[0]
    assert pyg.lin.weight.std().item() < 0.8 * conv.lin.weight.std().item()
