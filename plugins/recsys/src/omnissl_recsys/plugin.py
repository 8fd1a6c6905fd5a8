"""Registration hooks of the recommender plugin: datasets, encoders, views, objectives and the ranking evaluator.

Each hook imports the modules it registers when it is called, so that ``omnissl configs list`` (which
calls only ``omnissl_config_dirs``) starts without torch.
"""

from __future__ import annotations

from importlib.resources import files

from omnissl.hookspecs import hookimpl
from omnissl.specs import DatasetSpec, EncoderSpec, EvaluatorSpec, ModalitySpec, ObjectiveSpec, ViewGeneratorSpec


@hookimpl
def omnissl_modalities():
    from omnissl_recsys import datasets

    yield ModalitySpec(
        name="recsys.interactions",
        summary="User-item interaction batches {'user': (B,), 'pos': (B,)} over a source holding the graph and item fields.",
        example_batch=datasets.example_batch,
        example_data=datasets.example_data,
        encoders=("recsys.mf", "recsys.lightgcn", "recsys.two_tower", "recsys.bm3"),
        views=("recsys.negatives", "recsys.sgl_dropout", "recsys.embedding_noise", "recsys.feature_masking"),
        objectives=("recsys.bpr", "recsys.sgl", "recsys.simgcl", "recsys.xsimgcl", "recsys.two_tower", "recsys.bm3"),
        objective_pairs={
            "recsys.bpr": ("recsys.mf", "recsys.negatives"),
            "recsys.sgl": ("recsys.lightgcn", "recsys.sgl_dropout"),
            "recsys.simgcl": ("recsys.lightgcn", "recsys.embedding_noise"),
            "recsys.xsimgcl": ("recsys.lightgcn", "recsys.embedding_noise"),
            "recsys.two_tower": ("recsys.two_tower", "recsys.feature_masking"),
            "recsys.bm3": ("recsys.bm3", "recsys.negatives"),
        },
    )


@hookimpl
def omnissl_datasets():
    from omnissl_recsys import datasets, examples

    mod = "recsys.interactions"
    yield DatasetSpec(name="recsys.movielens", modality=mod, config=datasets.MovieLensConfig, factory=datasets.load_movielens, example=examples.movielens_example,
                      summary="MovieLens ratings >= threshold, per-user hold-out; item fields genres, top tags, decade.")
    yield DatasetSpec(name="recsys.csv", modality=mod, config=datasets.CSVConfig, factory=datasets.load_csv, example=examples.csv_example,
                      summary="Any CSV interaction log (user, item, optional rating/timestamp), per-user hold-out.")
    yield DatasetSpec(name="recsys.sparse", modality=mod, config=datasets.SparseConfig, factory=datasets.load_sparse, example=examples.write_sparse,
                      summary="Pre-split scipy.sparse user x item matrices (.npz), optional dense item features.")
    yield DatasetSpec(name="recsys.generated", modality=mod, config=datasets.GeneratedConfig, factory=datasets.generate,
                      example=lambda folder: {"num_users": 30, "num_items": 40, "interactions_per_user": 8},
                      summary="Generated latent-factor interactions with power-law item popularity and item categories/tags.")


@hookimpl
def omnissl_encoders():
    from omnissl_recsys import encoders

    yield EncoderSpec(name="recsys.mf", config=encoders.MFConfig, factory=encoders.build_mf,
                      summary="Matrix factorisation (free user and item vectors; MF-BPR baseline).")
    yield EncoderSpec(name="recsys.lightgcn", config=encoders.LightGCNConfig, factory=encoders.build_lightgcn,
                      summary="LightGCN: layer-mean of sparse normalised-adjacency propagation (He et al. 2020).")
    yield EncoderSpec(name="recsys.two_tower", config=encoders.TwoTowerConfig, factory=encoders.build_two_tower,
                      summary="Two-tower retrieval model: user-id tower and item tower over categorical item fields.")
    yield EncoderSpec(name="recsys.bm3", config=encoders.BM3EncoderConfig, factory=encoders.build_bm3_encoder,
                      summary="BM3's LightGCN encoder with the shared predictor (Zhou et al. 2023).")


@hookimpl
def omnissl_view_generators():
    from omnissl_recsys import views

    yield ViewGeneratorSpec(name="recsys.negatives", config=views.NegativesConfig, factory=views.build_negatives,
                            summary="Uniform negative items per interaction, drawn on the device.")
    yield ViewGeneratorSpec(name="recsys.sgl_dropout", config=views.GraphDropoutConfig, factory=views.build_graph_dropout,
                            summary="SGL: two edge- or node-dropout subgraphs with their normalised adjacencies.")
    yield ViewGeneratorSpec(name="recsys.embedding_noise", config=views.EmbeddingNoiseConfig, factory=views.build_embedding_noise,
                            summary="SimGCL: uniform random directions of norm eps added at every LightGCN layer.")
    yield ViewGeneratorSpec(name="recsys.feature_masking", config=views.FeatureMaskingConfig, factory=views.build_feature_masking,
                            summary="Yao et al. 2021: random or correlated complementary feature masking of uniform items.")


@hookimpl
def omnissl_objectives():
    from omnissl_recsys import objectives

    yield ObjectiveSpec(name="recsys.bpr", config=objectives.BPRConfig, factory=objectives.build_bpr,
                        summary="BPR with L2 on the batch's free embeddings (Rendle et al. 2009).")
    yield ObjectiveSpec(name="recsys.sgl", config=objectives.GraphContrastConfig, factory=objectives.build_graph_contrast,
                        summary="SGL: BPR + λ InfoNCE between two dropout subgraph views (Wu et al. 2021).")
    yield ObjectiveSpec(name="recsys.simgcl", config=objectives.SimGCLConfig, factory=objectives.build_graph_contrast,
                        summary="SimGCL: BPR + λ InfoNCE between two noise-perturbed propagations (Yu et al. 2022).")
    yield ObjectiveSpec(name="recsys.xsimgcl", config=objectives.XSimGCLConfig, factory=objectives.build_xsimgcl,
                        summary="XSimGCL: one noisy propagation, InfoNCE between final and layer-l* embeddings (Yu et al. 2023).")
    yield ObjectiveSpec(name="recsys.two_tower", config=objectives.TwoTowerObjectiveConfig, factory=objectives.build_two_tower_objective,
                        summary="In-batch softmax with logQ correction + α feature-masking SSL on the item tower (Yao et al. 2021).")
    yield ObjectiveSpec(name="recsys.bm3", config=objectives.BM3Config, factory=objectives.build_bm3,
                        summary="BM3: dropout-view reconstruction and modality alignment, no negatives (Zhou et al. 2023).")


@hookimpl
def omnissl_evaluators():
    from omnissl_recsys import evaluators

    yield EvaluatorSpec(name="recsys.ranking", config=evaluators.RankingConfig, factory=evaluators.build_ranking,
                        summary="Full-catalogue Recall@K / NDCG@K (SSLRec protocol) on val and test, with popularity/random baselines.")


@hookimpl
def omnissl_config_dirs():
    yield files("omnissl_recsys") / "configs"
