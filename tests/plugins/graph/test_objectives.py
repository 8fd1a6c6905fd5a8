"""GRACE, GraphCL augmentations, D-SLA perturbations and encoder readouts."""

import contextlib
import math

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_add_pool
from torch_geometric.utils import erdos_renyi_graph

from omnissl_graph import augment
from omnissl_graph.datasets import SyntheticGraphsConfig, generate_graphs
from omnissl_graph.encoders import GCNEncoder, GINEncoder, GINEncoderConfig, GraphEncoderConfig
from omnissl_graph.objectives.grace import grace_loss
from omnissl_graph.perturb import GradedPerturbation, GradedPerturbationConfig
from omnissl_graph.views import AUGMENTATIONS, GraphCLViews, GraphCLViewsConfig


def _batch(n=6):
    return generate_graphs(SyntheticGraphsConfig(num_graphs=n)).batch(torch.arange(n))


def test_grace_loss_matches_official_formula():
    # github.com/CRIPAC-DIG/GRACE model.py: semi_loss = -log(between.diag / (refl.sum(1) + between.sum(1) - refl.diag))
    torch.manual_seed(0)
    h1, h2, tau = torch.randn(6, 4), torch.randn(6, 4), 0.5
    z1, z2 = torch.nn.functional.normalize(h1, dim=1), torch.nn.functional.normalize(h2, dim=1)

    def semi(a, b):
        refl, between = torch.exp(a @ a.T / tau), torch.exp(a @ b.T / tau)
        return -torch.log(between.diag() / (refl.sum(1) + between.sum(1) - refl.diag()))

    expected = (0.5 * (semi(z1, z2) + semi(z2, z1))).mean()
    assert math.isclose(float(grace_loss(h1, h2, tau)), float(expected), rel_tol=1e-5)


def test_graphcl_augmentations_keep_every_graph():
    batch = _batch()
    g = torch.Generator().manual_seed(0)
    for out in (augment.drop_nodes(batch, 0.9, g), augment.khop_subgraph(batch, 1, g)):
        assert out.num_graphs == batch.num_graphs
        assert (torch.bincount(out.batch, minlength=6) >= 1).all()
        assert out.edge_index.max() < out.x.shape[0]
        assert (out.batch[out.edge_index[0]] == out.batch[out.edge_index[1]]).all()
    pert = augment.perturb_edges(batch, 0.3, g)
    assert (batch.batch[pert.edge_index[0]] == batch.batch[pert.edge_index[1]]).all(), "added edges stay inside a graph"
    masked = augment.mask_node_attributes(batch, 0.5, g)
    changed = (masked.x != batch.x).any(1).float().mean()
    assert 0.2 < changed < 0.8


@contextlib.contextmanager
def _no_host_reads():
    """Any Python-side read of a tensor's value (``.item()``, ``.tolist()``, ``bool``, ``int``) raises."""
    names = ("item", "tolist", "__bool__", "__int__", "__float__", "numpy")
    saved = {n: getattr(torch.Tensor, n) for n in names}

    def refuse(*args, **kwargs):
        raise AssertionError("a tensor value was read on the host inside the view")

    try:
        for n in names:
            setattr(torch.Tensor, n, refuse)
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.Tensor, n, f)


def test_graphcl_draws_the_augmentation_per_graph_without_host_reads():
    """GraphCL's ``random4`` picks one of four augmentations for every graph (its dataset's ``__getitem__``),
    not one per batch; each graph of the view shows the signature of the augmentation it was given."""
    batch = _random_graphs(0.3, num=64)
    with _no_host_reads():
        views = GraphCLViews(GraphCLViewsConfig(ratio=0.2, subgraph_hops=1))(batch, torch.Generator().manual_seed(0))
    choices = views.info["augmentations"]
    assert choices.shape == (2, 64)
    for c in choices:
        assert len(set(c.tolist())) == 4, "all four augmentations occur inside one batch"
    assert not torch.equal(choices[0], choices[1]), "the two views draw independently"
    for view, choice in zip(views.inputs, choices):
        assert view.num_graphs == 64 and (torch.bincount(view.batch, minlength=64) >= 1).all()
        assert (view.batch[view.edge_index[0]] == view.batch[view.edge_index[1]]).all(), "edges stay inside a graph"
        for gi, aug in enumerate(AUGMENTATIONS[int(c)] for c in choice):
            x0, x1 = batch.x[batch.batch == gi], view.x[view.batch == gi]
            e0 = int((batch.batch[batch.edge_index[0]] == gi).sum())
            e1 = int((view.batch[view.edge_index[0]] == gi).sum())
            n = x0.shape[0]
            if aug == "node_drop":
                assert x1.shape[0] == n - int(0.2 * n)
            elif aug == "edge_perturb":
                assert torch.equal(x1, x0) and e1 == e0
            elif aug == "attr_mask":
                assert e1 == e0 and int((x1 != x0).any(1).sum()) == int(0.2 * n)
            else:
                assert 1 <= x1.shape[0] <= n
                assert int((x1[:, None, :] == x0[None, :, :]).all(-1).any(1).sum()) == x1.shape[0], "a subgraph keeps original rows"
    fixed = GraphCLViews(GraphCLViewsConfig(aug_1="attr_mask", aug_2="node_drop"))(batch, torch.Generator().manual_seed(0))
    assert (fixed.info["augmentations"][0] == 2).all() and (fixed.info["augmentations"][1] == 0).all()


def _random_graphs(density: float, num: int = 24, seed: int = 0) -> Batch:
    """Erdos-Renyi graphs of 1-30 nodes, every third one directed; ``edge_index`` without duplicates."""
    torch.manual_seed(seed)
    graphs = []
    for i in range(num):
        n = int(torch.randint(1, 31, (1,)))
        edge_index = erdos_renyi_graph(n, density, directed=i % 3 == 0)
        graphs.append(Data(x=torch.rand(n, 5) + 0.1, edge_index=edge_index, num_nodes=n))
    return Batch.from_data_list(graphs)


def _edge_set(batch, graph: int) -> set[tuple[int, int]]:
    mine = batch.batch[batch.edge_index[0]] == graph
    return set(map(tuple, batch.edge_index[:, mine].T.tolist()))


@pytest.mark.parametrize("density", [0.05, 0.3, 0.9, 1.0])
def test_dsla_edit_distance_is_the_symmetric_difference(density):
    """D-SLA (official ``edge_pert``) adds only non-edges, so the recorded distance is exact: it equals
    ``|E xor E_k|`` per graph, on sparse graphs, dense ones and complete ones (nothing left to add)."""
    batch = _random_graphs(density)
    views = GradedPerturbation(GradedPerturbationConfig(strengths=[0.1, 0.2, 0.3]))(batch, torch.Generator().manual_seed(1))
    dist = views.info["edit_distance"]
    assert dist.shape == (3, batch.num_graphs)
    for k, view in enumerate(views.inputs[1:]):
        for gi in range(batch.num_graphs):
            before, after = _edge_set(batch, gi), _edge_set(view, gi)
            mine = view.batch[view.edge_index[0]] == gi
            assert int(mine.sum()) == len(after), "no duplicate edge was added"
            assert {(u, u) for u in range(view.num_nodes)}.isdisjoint(after - before), "no self-loop was added"
            assert int(dist[k, gi]) == len(before ^ after)
            n_edges, n_nodes = len(before), int((batch.batch == gi).sum())
            if n_edges and n_nodes * (n_nodes - 1) - n_edges >= 2 * len(before):
                # non-edges are plentiful: the official scheme, m removed and m added
                m = max(1, int([0.1, 0.2, 0.3][k] * n_edges))
                assert len(before - after) == m and len(after - before) == m


def test_dsla_masks_the_attributes_of_every_candidate():
    """Official ``attr_mask``: ``int(0.2 n)`` nodes of each graph masked in every candidate, the original too."""
    batch = _random_graphs(0.2)
    views = GradedPerturbation(GradedPerturbationConfig(strengths=[0.1], mask_strength=0.2))(batch, torch.Generator().manual_seed(0))
    assert views.original is batch and len(views.inputs) == 2
    counts = torch.bincount(batch.batch)
    for view in views.inputs:
        masked = (view.x == 0).all(1)
        assert torch.equal(torch.bincount(batch.batch[masked], minlength=batch.num_graphs), (0.2 * counts).long())
        assert torch.equal(view.x[~masked], batch.x[~masked])
    assert not torch.equal((views.inputs[0].x == 0).all(1), (views.inputs[1].x == 0).all(1)), "drawn per candidate"
    unmasked = GradedPerturbation(GradedPerturbationConfig(strengths=[0.1], mask_strength=0.0))(batch, torch.Generator())
    assert unmasked.inputs[0] is batch


def test_gin_sum_readout_and_concat_layers():
    batch = _batch(4)
    torch.manual_seed(0)
    enc = GINEncoder(batch.x.shape[1], GINEncoderConfig(hidden_dim=8, num_layers=2, feat_drop=0.0, readout="sum", concat_layers=True)).eval()
    out = enc(batch)
    assert out.pooled.shape == (4, 16) and enc.output_dim == 16
    assert torch.allclose(out.pooled, global_add_pool(torch.cat(out.layers, 1), batch.batch), atol=1e-5)


def test_inner_dim_gives_grace_layer_widths():
    """GRACE's Cora encoder: GCNConv(F, 2h) then GCNConv(2h, h); concatenated layers sum the widths."""
    batch = _batch(3)
    enc = GCNEncoder(batch.x.shape[1], GraphEncoderConfig(hidden_dim=16, inner_dim=32, num_layers=2, activation="relu", readout="node"))
    assert [tuple(conv.lin.weight.shape) for conv in enc.convs] == [(32, batch.x.shape[1]), (16, 32)]
    out = enc(batch)
    assert [h.shape[1] for h in out.layers] == [32, 16] and out.pooled.shape == (batch.num_nodes, 16) and enc.output_dim == 16
    wide = GINEncoder(batch.x.shape[1], GINEncoderConfig(hidden_dim=8, inner_dim=12, num_layers=3, concat_layers=True))
    assert wide.output_dim == 12 + 12 + 8 and wide(batch).pooled.shape == (3, 32)


def test_link_reconstruction_ignores_self_loops():
    """Self-loops are not edges to predict: a graph of self-loops only leaves just the negative pairs in the loss."""
    from torch_geometric.data import Data

    from omnissl.interfaces import Views
    from omnissl_graph.objectives.link import LinkReconstructionConfig, LinkReconstructionObjective

    n = 20
    loops = torch.arange(n).repeat(2, 1)
    graph = Data(x=torch.randn(n, 4), edge_index=loops, num_nodes=n)
    enc = GCNEncoder(4, GraphEncoderConfig(hidden_dim=8, feat_drop=0.0, readout="node"))
    objective = LinkReconstructionObjective(8, LinkReconstructionConfig(max_edges=64))
    torch.manual_seed(0)
    loss = objective(enc, Views(inputs=[graph], original=graph)).loss
    torch.manual_seed(0)
    z = objective.projector(enc(graph).pooled)
    torch.randint(n, (n,))  # the positives' draw
    neg = torch.randint(n, (2, n))
    expected = torch.nn.functional.binary_cross_entropy_with_logits((z[neg[0]] * z[neg[1]]).sum(-1), torch.zeros(n))
    torch.testing.assert_close(loss, expected)


def test_decorrelation_matches_paretognn_p_decor():
    """ParetoGNN ``src/model.py`` ``p_decor``, written out with sums: ``sqrt(sum ((z1 - z2) / N)^2)`` plus
    ``lambd`` times the Frobenius norms of ``I - Z^T Z / N``; zero invariance for identical views."""
    from omnissl_graph.objectives.decorrelation import decorrelation_loss

    g = torch.Generator().manual_seed(0)
    h1, h2 = torch.randn(50, 6, generator=g), torch.randn(50, 6, generator=g)
    n = 50

    def standardize(h):
        return (h - h.mean(0)) / h.std(0)

    z1, z2 = standardize(h1), standardize(h2)
    inv = (((z1 - z2) / n) ** 2).sum().sqrt()
    dec = sum(((torch.eye(6) - z.T @ z / n) ** 2).sum().sqrt() for z in (z1, z2))
    torch.testing.assert_close(decorrelation_loss(h1, h2, 0.3), inv + 0.3 * dec)
    same = decorrelation_loss(h1, h1, 0.0)
    assert float(same) == 0.0


def test_dgi_matches_paretognn_p_ming():
    """ParetoGNN ``p_ming``: BCE(sigmoid(H W s), 1) + BCE(sigmoid(H~ W s), 0), ``s = sigmoid(mean H)``,
    ``H~`` the encoding of the feature rows shuffled by the step's RNG."""
    from omnissl.interfaces import Views
    from omnissl_graph.encoders import node_states, with_x
    from omnissl_graph.objectives.dgi import DGIConfig, DGIObjective

    batch = _batch(3)
    enc = GCNEncoder(batch.x.shape[1], GraphEncoderConfig(hidden_dim=8, feat_drop=0.0, readout="node")).eval()
    objective = DGIObjective(8, DGIConfig())
    torch.manual_seed(0)
    loss = objective(enc, Views(inputs=[batch], original=batch)).loss
    torch.manual_seed(0)
    perm = torch.randperm(batch.x.shape[0])
    pos, neg = node_states(enc(batch)), node_states(enc(with_x(batch, batch.x[perm])))
    s = torch.sigmoid(pos.mean(0))
    bce = torch.nn.functional.binary_cross_entropy
    p, q = torch.sigmoid(pos @ (objective.weight @ s)), torch.sigmoid(neg @ (objective.weight @ s))
    expected = bce(p, torch.ones_like(p)) + bce(q, torch.zeros_like(q))
    torch.testing.assert_close(loss, expected)
