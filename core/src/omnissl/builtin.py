"""The core's own components, registered through the same hooks as any plugin.

Each hook imports the modules it registers (torch among them) when it is called, not when this module is
imported: ``omnissl configs list`` calls only ``omnissl_config_dirs`` and so starts without torch. Plugins
do the same (docs/writing-a-plugin.md).
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from omnissl.hookspecs import hookimpl
from omnissl.specs import CallbackSpec, ComponentConfig, DatasetSpec, EncoderSpec, EvaluatorSpec, ModalitySpec, ObjectiveSpec, ViewGeneratorSpec

if TYPE_CHECKING:
    import torch

    from omnissl.data import TensorSource


def toy_token_source(ctx=None) -> TensorSource:
    """Seeded ``(64, 16, 6)`` token features (a grid of 8 x 2): tokens drift smoothly, so masked ones are predictable."""
    import torch

    from omnissl.data import TensorSource

    g = torch.Generator().manual_seed(0)
    base = torch.randn(64, 1, 6, generator=g)
    drift = torch.cumsum(0.3 * torch.randn(64, 16, 6, generator=g), dim=1)
    return TensorSource(base + drift)


def toy_token_batch() -> torch.Tensor:
    return toy_token_source().data[:8]


@hookimpl
def omnissl_modalities():
    from omnissl.testing import toy

    yield ModalitySpec(
        name="toy.vectors",
        summary="Labelled Gaussian clusters: (B, dim) float rows.",
        example_batch=toy.example_batch,
        example_data=lambda: toy.toy_source(toy.ToyDataConfig(num_samples=64)),
        evaluators=("core.linear_probe", "core.knn_probe", "core.finetune"),
        encoders=("toy.mlp",),
        views=("toy.noise", "core.token_masking"),
        objectives=(
            "core.simclr", "core.moco", "core.mochi", "core.amcl", "core.barlow_twins", "core.mixed_barlow_twins",
            "core.vicreg", "core.byol", "core.swav", "core.multi",
        ),
    )
    yield ModalitySpec(
        name="toy.tokens",
        summary="Token features (B, N, F): the masked objectives (MAE, JEPA) on a token encoder that honours keep.",
        example_batch=toy_token_batch,
        example_data=toy_token_source,
        encoders=("core.token_transformer",),
        views=("core.block_masking", "core.token_masking"),  # core.identity draws nothing: the determinism check does not apply
        objectives=("core.mae", "core.jepa", "core.data2vec"),
        objective_pairs={
            "core.mae": ("core.token_transformer", "core.token_masking"),
            "core.jepa": ("core.token_transformer", "core.block_masking"),
            "core.data2vec": ("core.token_transformer", "core.identity"),
        },
    )


@hookimpl
def omnissl_datasets():
    from omnissl.testing import toy

    yield DatasetSpec(
        name="toy.clusters", modality="toy.vectors", config=toy.ToyDataConfig, factory=toy.toy_source,
        example=lambda folder: {"num_samples": 32},
        summary="Generated Gaussian clusters with class labels and a 60/20/20 split.",
    )


@hookimpl
def omnissl_encoders():
    from omnissl.nn.token_encoder import TokenTransformerConfig, token_transformer
    from omnissl.nn.trunk import TransformerTrunk, TrunkConfig
    from omnissl.testing import toy

    yield EncoderSpec(name="toy.mlp", config=toy.ToyMLPConfig, factory=toy.toy_encoder, summary="Two-layer MLP over toy vectors.")
    yield EncoderSpec(
        name="core.token_transformer", config=TokenTransformerConfig, factory=token_transformer,
        summary="Linear stem + sin-cos positions + transformer trunk over pre-tokenised (B, N, F) features; honours keep.",
    )
    yield EncoderSpec(
        name="core.transformer_trunk", config=TrunkConfig, factory=lambda cfg, ctx: TransformerTrunk(cfg),
        summary="Pre-norm transformer over (B, N, D) tokens; declare it under shared: and reference it as '@shared.<name>'.",
    )


@hookimpl
def omnissl_view_generators():
    from omnissl.objectives.block_masking import BlockMasking, BlockMaskingConfig
    from omnissl.objectives.data2vec import IdentityViews
    from omnissl.objectives.token_masking import TokenMasking, TokenMaskingConfig
    from omnissl.testing import toy

    yield ViewGeneratorSpec(
        name="toy.noise", config=toy.ToyNoiseConfig, factory=lambda cfg, ctx: toy.ToyNoiseViews(cfg),
        summary="Gaussian noise and feature dropout, batched on the device.",
    )
    yield ViewGeneratorSpec(
        name="core.identity", config=ComponentConfig, factory=IdentityViews.build,
        summary="The batch itself as the one view and the original, for objectives that mask internally (core.data2vec).",
    )
    yield ViewGeneratorSpec(
        name="core.token_masking", config=TokenMaskingConfig, factory=TokenMasking.build,
        summary="Random disjoint context/target token indices for JEPA-style objectives (info: context_idx, target_idx).",
    )
    yield ViewGeneratorSpec(
        name="core.block_masking", config=BlockMaskingConfig, factory=BlockMasking.build,
        summary="I-JEPA multi-block masks on 1-, 2- or 3-axis token grids (info: context_idx, target_idx, target_blocks).",
    )


@hookimpl
def omnissl_objectives():
    from omnissl.objectives.amcl import AMCLConfig, AMCLObjective
    from omnissl.objectives.barlow_twins import BarlowTwinsConfig, BarlowTwinsObjective
    from omnissl.objectives.byol import BYOLConfig, BYOLObjective
    from omnissl.objectives.data2vec import Data2VecConfig, Data2VecObjective
    from omnissl.objectives.jepa import JEPAConfig, JEPAObjective
    from omnissl.objectives.mae import MAEConfig, MAEObjective
    from omnissl.objectives.mixed_barlow_twins import MixedBarlowTwinsConfig, MixedBarlowTwinsObjective
    from omnissl.objectives.mochi import MoCHiConfig, MoCHiObjective
    from omnissl.objectives.moco import MoCoConfig, MoCoObjective
    from omnissl.objectives.multi import MultiObjective, MultiObjectiveConfig
    from omnissl.objectives.simclr import SimCLRConfig, SimCLRObjective
    from omnissl.objectives.swav import SwAVConfig, SwAVObjective
    from omnissl.objectives.vicreg import VICRegConfig, VICRegObjective

    yield ObjectiveSpec(
        name="core.simclr", config=SimCLRConfig, factory=SimCLRObjective.build,
        summary="SimCLR: NT-Xent over projected pooled embeddings of two views (Chen et al. 2020).",
    )
    yield ObjectiveSpec(
        name="core.moco", config=MoCoConfig, factory=MoCoObjective.build,
        summary="MoCo v2: momentum key encoder, first-in first-out key queue, InfoNCE (He et al. 2020; Chen et al. 2020).",
    )
    yield ObjectiveSpec(
        name="core.mochi", config=MoCHiConfig, factory=MoCHiObjective.build,
        summary="MoCHi: NT-Xent or MoCo queue with synthesised hard negatives (Kalantidis et al. 2020).",
    )
    yield ObjectiveSpec(
        name="core.amcl", config=AMCLConfig, factory=AMCLObjective.build,
        summary="Adaptive multi-head contrastive learning with pair-adaptive temperatures (Wang et al. 2024).",
    )
    yield ObjectiveSpec(
        name="core.barlow_twins", config=BarlowTwinsConfig, factory=BarlowTwinsObjective.build,
        summary="Barlow Twins: cross-correlation of batch-normalised embeddings to identity (Zbontar et al. 2021).",
    )
    yield ObjectiveSpec(
        name="core.mixed_barlow_twins", config=MixedBarlowTwinsConfig, factory=MixedBarlowTwinsObjective.build,
        summary="Mixed Barlow Twins: Barlow Twins plus a mixup cross-correlation regulariser (Bandara et al. 2023).",
    )
    yield ObjectiveSpec(
        name="core.vicreg", config=VICRegConfig, factory=VICRegObjective.build,
        summary="VICReg: variance, invariance and covariance terms 25/25/1 (Bardes et al. 2022).",
    )
    yield ObjectiveSpec(
        name="core.byol", config=BYOLConfig, factory=BYOLObjective.build,
        summary="BYOL: predictor + EMA teacher with cosine momentum (Grill et al. 2020).",
    )
    yield ObjectiveSpec(
        name="core.jepa", config=JEPAConfig, factory=JEPAObjective.build,
        summary="JEPA latent prediction of EMA-teacher target tokens from context tokens (Assran et al. 2023).",
    )
    yield ObjectiveSpec(
        name="core.data2vec", config=Data2VecConfig, factory=Data2VecObjective.build,
        summary="data2vec 2.0: masked tokens regress an EMA teacher's averaged, instance-normalised top-K blocks (Baevski et al. 2023).",
    )
    yield ObjectiveSpec(
        name="core.mae", config=MAEConfig, factory=MAEObjective.build,
        summary="MAE: visible tokens encoded, light decoder over all positions, MSE on the unseen tokens (He et al. 2022).",
    )
    yield ObjectiveSpec(
        name="core.swav", config=SwAVConfig, factory=SwAVObjective.build,
        summary="SwAV: prototypes with Sinkhorn-Knopp equipartitioned codes, swapped prediction (Caron et al. 2020).",
    )
    yield ObjectiveSpec(
        name="core.multi", config=MultiObjectiveConfig, factory=MultiObjective.build,
        summary="Several registered objectives on one encoder: weighted sum or MGDA min-norm weights (Sener & Koltun 2018).",
    )


@hookimpl
def omnissl_evaluators():
    from omnissl.evaluation.finetune import FinetuneConfig, finetune_evaluator
    from omnissl.evaluation.probes import KNNProbeConfig, LinearProbeConfig, knn_probe_evaluator, linear_probe_evaluator

    yield EvaluatorSpec(
        name="core.linear_probe", config=LinearProbeConfig, factory=linear_probe_evaluator,
        summary="Linear probe on frozen features vs surface features and a random encoder (mean ± std over seeds).",
    )
    yield EvaluatorSpec(
        name="core.finetune", config=FinetuneConfig, factory=finetune_evaluator,
        summary="Fine-tunes the encoder with a linear head vs the same from a random initialisation (val-selected epoch, mean ± std).",
    )
    yield EvaluatorSpec(
        name="core.knn_probe", config=KNNProbeConfig, factory=knn_probe_evaluator,
        summary="Cosine kNN probe with temperature-weighted votes vs surface features and a random encoder.",
    )


@hookimpl
def omnissl_config_dirs():
    return [files("omnissl") / "configs"]


@hookimpl
def omnissl_callbacks():
    from omnissl import loggers

    yield CallbackSpec(
        name="core.wandb", config=loggers.WandbConfig, factory=loggers.build_wandb,
        summary="Weights & Biases: the run config and every logged and evaluated metric (extra omnissl[wandb]; offline mode supported).",
    )
    yield CallbackSpec(
        name="core.mlflow", config=loggers.MLflowConfig, factory=loggers.build_mlflow,
        summary="MLflow: the flattened run config as parameters and every metric by step (extra omnissl[mlflow]; local file store by default).",
    )
