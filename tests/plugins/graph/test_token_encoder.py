"""graph.node_tokens: hop tokens on one graph (NAGphormer's Hop2Token), nodes as tokens on a batch of graphs."""

import pytest
import torch
from torch_geometric.data import Data

from omnissl.config import load_config
from omnissl.engine import Trainer
from omnissl_graph.datasets import SBMConfig, SyntheticGraphsConfig, generate_graphs, generate_sbm
from omnissl_graph.evaluators import NodeProbeConfig, node_probe_scores
from omnissl_graph.token_encoder import GraphTokenEncoder, GraphTokenEncoderConfig


def _bag_of_words_sbm(num_nodes=400, blocks=4, vocab=200, words=12, topical=0.3):
    """graph.sbm's graph with Cora-like features: a few words per node, a share of them from the node's community's
    slice of the vocabulary, binary and row-normalised (as PyG's Planetoid features), so every feature is small
    and the spread between nodes is a small part of each value."""
    src = generate_sbm(SBMConfig(num_nodes=num_nodes, num_blocks=blocks, p_in=0.5))
    y = src.labels["class"]
    g = torch.Generator().manual_seed(1)
    own = y.unsqueeze(1) * (vocab // blocks) + torch.randint(vocab // blocks, (num_nodes, words), generator=g)
    idx = torch.where(torch.rand(num_nodes, words, generator=g) < topical, own, torch.randint(vocab, (num_nodes, words), generator=g))
    x = torch.zeros(num_nodes, vocab).scatter_(1, idx, 1.0)
    return Data(x=x / x.sum(1, keepdim=True), edge_index=src.data.edge_index, num_nodes=num_nodes), y, src.splits


def test_random_node_token_embeddings_are_not_oversmoothed():
    """A random encoder keeps nodes apart on a Cora-like graph. The first design (one attention sequence over all
    nodes, unnormalised stem) gave a per-dimension spread over nodes below 0.01 here and a probe at 0.35-0.46
    (seeds 0-2); on Cora the probe sat at the majority class."""
    data, y, splits = _bag_of_words_sbm()
    majority = float(torch.bincount(y[splits["test"]]).max()) / splits["test"].numel()
    torch.manual_seed(0)
    encoder = GraphTokenEncoder(data.x.shape[1], GraphTokenEncoderConfig()).eval()
    with torch.no_grad():
        z = encoder(data).pooled
    assert z.shape == (data.num_nodes, encoder.output_dim)
    assert float(z.std(dim=0).mean()) > 0.3
    accuracy = node_probe_scores(z, y, splits, NodeProbeConfig(), seed=0)["test_acc"]  # the GraphMAE probe, raw embeddings
    assert accuracy > majority + 0.3, (accuracy, majority)


def test_hop_tokens_are_powers_of_the_gcn_normalised_adjacency():
    """With an empty trunk (its final LayerNorm only), token k of node i is LayerNorm((Â^k h)_i), Â = D^-1/2 (A+I)
    D^-1/2 as NAGphormer's data.py builds it and utils.re_features propagates it."""
    data = generate_sbm(SBMConfig(num_nodes=30, num_features=5)).data
    encoder = GraphTokenEncoder(5, GraphTokenEncoderConfig(depth=0, hops=3, dim=8, heads=2, stem_dim=6)).eval()
    with torch.no_grad():
        tokens = encoder(data).tokens
        h = encoder.stem(data, None, standardize=True)
        a = torch.eye(30)
        a[data.edge_index[1], data.edge_index[0]] = 1.0
        d = a.sum(1).rsqrt()
        adj = d[:, None] * a * d[None, :]
        expected = torch.stack([torch.linalg.matrix_power(adj, k) @ h for k in range(4)], dim=1)
    assert tokens.shape == (30, 4, 8)
    torch.testing.assert_close(tokens, torch.nn.functional.layer_norm(expected, (8,)), atol=1e-4, rtol=1e-4)


def test_keep_selects_hop_tokens_and_hides_a_masked_node_from_every_token():
    """``keep`` ``(N, K')`` picks hops per node; a node whose hop 0 is not kept enters the stem as [MASK], so no
    token of any node changes when its features do (GraphMAE's masking before message passing)."""
    data = generate_sbm(SBMConfig(num_nodes=40, num_features=6)).data
    encoder = GraphTokenEncoder(6, GraphTokenEncoderConfig(hops=3, dim=16, heads=2, depth=1)).eval()
    keep = torch.tensor([[0, 2]] * 40)
    keep[7] = torch.tensor([1, 3])  # node 7's own token is masked
    with torch.no_grad():
        before = encoder(data, keep=keep).tokens
        changed = data.clone()
        changed.x[7] += 5.0
        after = encoder(changed, keep=keep).tokens
        changed.x[8] += 5.0  # node 8 is visible: its change reaches the tokens
        visible = encoder(changed, keep=keep).tokens
    assert before.shape == (40, 2, 16)
    torch.testing.assert_close(before, after)
    assert not torch.allclose(after, visible)


def _run(tmp_path, data, objective=None, steps=2):
    cfg = {
        "seed": 0,
        "shared": {"trunk": {"name": "core.transformer_trunk", "dim": 16, "depth": 2, "heads": 2}},
        "tasks": [{"name": "g", "data": data, "encoder": {"name": "graph.node_tokens", "stem_dim": 16, "trunk": "@shared.trunk"},
                   "views": {"name": "core.identity"},
                   "objective": objective or {"name": "core.data2vec", "mask_ratio": 0.5, "num_masks": 2}}],
        "engine": {"steps": steps, "batch_size": 8, "device": "cpu"},
        "logging": {"out_dir": str(tmp_path / "run"), "progress": False},
        "eval": {"at_end": False},
    }
    return Trainer(load_config(cfg))


@pytest.mark.parametrize("data", [
    {"name": "graph.sbm", "num_nodes": 60},
    {"name": "graph.sbm", "num_nodes": 60, "num_neighbors": [4, 4, 4, 4]},
    {"name": "graph.synthetic_graphs", "num_graphs": 16},
], ids=["one-graph", "neighbour-sampled", "graph-batch"])
def test_node_tokens_train_with_a_shared_trunk_under_data2vec(tmp_path, data):
    trainer = _run(tmp_path, data)
    trunk = trainer.model.shared["trunk"]
    task = trainer.model.tasks["g"]
    assert task.encoder.trunk is trunk
    batch = trainer.sources["g"].batch(trainer.streams["g"].next())
    out = task(batch, torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trunk.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in task.encoder.convs.parameters())
    before = [p.detach().clone() for p in trunk.parameters()]
    assert trainer.fit().step == 2
    assert all(not torch.equal(a, b) for a, b in zip(before, trunk.parameters()))


def test_a_neighbour_sampled_batch_builds_tokens_for_its_seeds_only():
    source = generate_sbm(SBMConfig(num_nodes=200, num_neighbors=[5, 5, 5, 5]))
    batch = source.batch(torch.arange(10))
    encoder = GraphTokenEncoder(source.num_features, GraphTokenEncoderConfig(hops=3, dim=16, heads=2, depth=1))
    out = encoder(batch)
    assert batch.num_nodes > 10
    assert out.tokens.shape == (10, 4, 16) and out.pooled.shape == (10, 16)
    assert encoder(batch, keep=torch.tensor([[0, 1]] * 10)).tokens.shape == (10, 2, 16)


def test_a_batch_of_graphs_keeps_nodes_as_tokens():
    batch = generate_graphs(SyntheticGraphsConfig(num_graphs=4)).batch(torch.arange(4))
    encoder = GraphTokenEncoder(batch.x.shape[1], GraphTokenEncoderConfig(dim=16, heads=2, depth=1)).eval()
    out = encoder(batch)
    n_max = int((batch.ptr[1:] - batch.ptr[:-1]).max())
    assert out.tokens.shape == (4, n_max, 16) and out.pooled.shape == (4, 16)
    assert out.padding_mask.sum() == 4 * n_max - batch.num_nodes
