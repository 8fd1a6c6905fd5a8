"""Registration hooks of the graph plugin (``omnissl-graph``).

Each hook imports the modules it registers when it is called, so that ``omnissl configs list`` (which
calls only ``omnissl_config_dirs``) starts without torch.
"""

from __future__ import annotations

from importlib.resources import files

from omnissl.hookspecs import hookimpl
from omnissl.specs import DatasetSpec, EncoderSpec, EvaluatorSpec, ModalitySpec, ObjectiveSpec, ViewGeneratorSpec


def _node_data():
    from omnissl_graph import datasets

    return datasets.generate_sbm(datasets.SBMConfig(num_nodes=40, num_features=8, holdout_edges=0.1))


def _graph_data():
    from omnissl_graph import datasets

    return datasets.generate_graphs(datasets.SyntheticGraphsConfig(num_graphs=8))


@hookimpl
def omnissl_modalities():
    import torch

    yield ModalitySpec(
        name="graph.nodes",
        summary="One graph for node-level learning: a PyG Data with x (N, F) and edge_index (2, E).",
        example_batch=lambda: _node_data().batch(None),
        example_data=_node_data,
        encoders=("graph.gat", "graph.gcn", "graph.gin"),
        views=("graph.attribute_masking", "graph.grace_views", "graph.multi_pretext_views"),
        objectives=("graph.graphmae", "graph.grace", "graph.link_reconstruction", "graph.dgi", "graph.decorrelation"),
        objective_pairs={
            "graph.graphmae": ("graph.gat", "graph.attribute_masking"),
            "graph.grace": ("graph.gcn", "graph.grace_views"),
            "graph.link_reconstruction": ("graph.gcn", "graph.attribute_masking"),
            "graph.dgi": ("graph.gcn", "graph.attribute_masking"),
            "graph.decorrelation": ("graph.gcn", "graph.grace_views"),
        },
    )
    yield ModalitySpec(
        name="graph.graphs",
        summary="A batch of graphs for graph-level learning: a PyG Batch with x, edge_index, batch and ptr.",
        example_batch=lambda: _graph_data().batch(torch.arange(8)),
        example_data=_graph_data,
        encoders=("graph.gin", "graph.gat", "graph.gcn"),
        views=("graph.attribute_masking", "graph.graphcl_views", "graph.graded_perturbation"),
        objectives=("graph.graphcl", "graph.dsla"),
        objective_pairs={"graph.graphcl": ("graph.gin", "graph.graphcl_views"), "graph.dsla": ("graph.gin", "graph.graded_perturbation")},
    )


@hookimpl
def omnissl_datasets():
    from omnissl_graph import datasets, examples

    yield DatasetSpec(name="graph.planetoid", modality="graph.nodes", config=datasets.PlanetoidConfig, factory=datasets.load_planetoid, example=examples.write_planetoid,
                      summary="Planetoid citation graph (Cora/CiteSeer/PubMed) from PyG raw files, public split.")
    yield DatasetSpec(name="graph.tu", modality="graph.graphs", config=datasets.TUConfig, factory=datasets.load_tu, example=examples.write_tu,
                      summary="TU benchmark graph set (MUTAG, PROTEINS, ...) from its raw directory.")
    yield DatasetSpec(name="graph.edge_list", modality="graph.nodes", config=datasets.EdgeListConfig, factory=datasets.load_edge_list, example=examples.write_edge_list,
                      summary="One graph from an edge list (CSV/NPY), node features and labels.")
    yield DatasetSpec(name="graph.sbm", modality="graph.nodes", config=datasets.SBMConfig, factory=datasets.generate_sbm,
                      example=lambda folder: {"num_nodes": 40, "num_features": 8, "holdout_edges": 0.1},
                      summary="Generated stochastic block model with community labels (no files needed).")
    yield DatasetSpec(name="graph.synthetic_graphs", modality="graph.graphs", config=datasets.SyntheticGraphsConfig,
                      factory=datasets.generate_graphs, example=lambda folder: {"num_graphs": 8},
                      summary="Generated rings vs two-community graphs (no files needed).")


@hookimpl
def omnissl_encoders():
    from omnissl_graph import encoders, token_encoder

    yield EncoderSpec(name="graph.gat", config=encoders.GATEncoderConfig, factory=encoders.build_gat,
                      summary="Multi-head GAT with PReLU, residual and norm options (GraphMAE's settings).")
    yield EncoderSpec(name="graph.gcn", config=encoders.GraphEncoderConfig, factory=encoders.build_gcn, summary="GCN encoder with readout.")
    yield EncoderSpec(name="graph.gin", config=encoders.GINEncoderConfig, factory=encoders.build_gin, summary="GIN encoder with readout.")
    yield EncoderSpec(name="graph.node_tokens", config=token_encoder.GraphTokenEncoderConfig, factory=token_encoder.build_graph_token_encoder,
                      summary="GCN stem, projection, transformer trunk over each graph's nodes (accepts trunk: '@shared.<name>', keep=).")


@hookimpl
def omnissl_view_generators():
    from omnissl_graph import masking, perturb, views

    yield ViewGeneratorSpec(name="graph.attribute_masking", config=masking.AttributeMaskingConfig, factory=lambda cfg, ctx: masking.AttributeMasking(cfg),
                            summary="GraphMAE node masking: [MASK] token for most masked nodes, random-node features for a few.")
    yield ViewGeneratorSpec(name="graph.grace_views", config=views.GRACEViewsConfig, factory=lambda cfg, ctx: views.GRACEViews(cfg),
                            summary="GRACE: two views by edge dropping and feature-column masking.")
    yield ViewGeneratorSpec(name="graph.multi_pretext_views", config=views.MultiPretextViewsConfig, factory=lambda cfg, ctx: views.MultiPretextViews(cfg),
                            summary="GraphMAE masking plus GRACE's two views in one step, for core.multi (ParetoGNN).")
    yield ViewGeneratorSpec(name="graph.graphcl_views", config=views.GraphCLViewsConfig, factory=lambda cfg, ctx: views.GraphCLViews(cfg),
                            summary="GraphCL: two views by node dropping, edge perturbation, attribute masking or subgraphs.")
    yield ViewGeneratorSpec(name="graph.graded_perturbation", config=perturb.GradedPerturbationConfig,
                            factory=lambda cfg, ctx: perturb.GradedPerturbation(cfg),
                            summary="D-SLA: the original graph and edge-edit perturbations of graded strength with edit distances.")


@hookimpl
def omnissl_objectives():
    from omnissl_graph.objectives import decorrelation, dgi, dsla, grace, graphcl, graphmae, link

    yield ObjectiveSpec(name="graph.graphmae", config=graphmae.GraphMAEConfig, factory=graphmae.GraphMAEObjective.build,
                        summary="GraphMAE: masked feature reconstruction with re-masking and scaled cosine error (Hou et al. 2022).")
    yield ObjectiveSpec(name="graph.grace", config=grace.GRACEConfig, factory=grace.GRACEObjective.build,
                        summary="GRACE: node contrast with intra- and inter-view negatives (Zhu et al. 2020).")
    yield ObjectiveSpec(name="graph.graphcl", config=graphcl.GraphCLConfig, factory=graphcl.GraphCLObjective.build,
                        summary="GraphCL: NT-Xent on pooled embeddings of augmented graphs (You et al. 2020).")
    yield ObjectiveSpec(name="graph.dsla", config=dsla.DSLAConfig, factory=dsla.DSLAObjective.build,
                        summary="D-SLA: discriminate originals from graded perturbations, learn edit distances (Kim et al. 2022).")
    yield ObjectiveSpec(name="graph.link_reconstruction", config=link.LinkReconstructionConfig, factory=link.LinkReconstructionObjective.build,
                        summary="Link reconstruction from node embeddings (structural pretext, GAE-style).")
    yield ObjectiveSpec(name="graph.dgi", config=dgi.DGIConfig, factory=dgi.DGIObjective.build,
                        summary="Deep Graph Infomax: node-summary MI against shuffled features (Velickovic et al. 2019; ParetoGNN's p_ming).")
    yield ObjectiveSpec(name="graph.decorrelation", config=decorrelation.DecorrelationConfig, factory=decorrelation.DecorrelationObjective.build,
                        summary="CCA-SSG-style invariance + feature decorrelation of two views (ParetoGNN's p_decor).")


@hookimpl
def omnissl_evaluators():
    from omnissl_graph import evaluators

    yield EvaluatorSpec(name="graph.node_probe", config=evaluators.NodeProbeConfig, factory=evaluators.build_node_probe,
                        summary="Node classification linear probe (GraphMAE protocol: best validation epoch).")
    yield EvaluatorSpec(name="graph.graph_probe", config=evaluators.GraphProbeConfig, factory=evaluators.build_graph_probe,
                        summary="Graph classification: 10-fold CV of an SVM on pooled embeddings.")
    yield EvaluatorSpec(name="graph.link_auc", config=evaluators.LinkAUCConfig, factory=evaluators.build_link_auc,
                        summary="Link prediction AUC on held-out edges.")


@hookimpl
def omnissl_config_dirs():
    return [files("omnissl_graph") / "configs"] if (files("omnissl_graph") / "configs").is_dir() else []
