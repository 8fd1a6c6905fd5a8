"""The core's own components, registered through the same hooks as any plugin."""

from __future__ import annotations

from importlib.resources import files

from omnissl.hookspecs import hookimpl
from omnissl.objectives.simclr import SimCLRConfig, SimCLRObjective
from omnissl.specs import DatasetSpec, EncoderSpec, ModalitySpec, ObjectiveSpec, ViewGeneratorSpec
from omnissl.testing import toy


@hookimpl
def omnissl_modalities():
    yield ModalitySpec(
        name="toy.vectors",
        summary="Labelled Gaussian clusters: (B, dim) float rows.",
        example_batch=toy.example_batch,
        example_data=lambda: toy.toy_source(toy.ToyDataConfig(num_samples=64)),
        encoders=("toy.mlp",),
        views=("toy.noise",),
        objectives=("core.simclr",),
    )


@hookimpl
def omnissl_datasets():
    yield DatasetSpec(
        name="toy.clusters", modality="toy.vectors", config=toy.ToyDataConfig, factory=toy.toy_source,
        summary="Generated Gaussian clusters with class labels and a 60/20/20 split.",
    )


@hookimpl
def omnissl_encoders():
    yield EncoderSpec(name="toy.mlp", config=toy.ToyMLPConfig, factory=toy.toy_encoder, summary="Two-layer MLP over toy vectors.")


@hookimpl
def omnissl_view_generators():
    yield ViewGeneratorSpec(
        name="toy.noise", config=toy.ToyNoiseConfig, factory=lambda cfg, ctx: toy.ToyNoiseViews(cfg),
        summary="Gaussian noise and feature dropout, batched on the device.",
    )


@hookimpl
def omnissl_objectives():
    yield ObjectiveSpec(
        name="core.simclr", config=SimCLRConfig, factory=SimCLRObjective.build,
        summary="SimCLR: NT-Xent over projected pooled embeddings of two views (Chen et al. 2020).",
    )


@hookimpl
def omnissl_config_dirs():
    return [files("omnissl") / "configs"]
