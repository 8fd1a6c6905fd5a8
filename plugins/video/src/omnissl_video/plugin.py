"""Registration hooks of the video plugin (``omnissl-video``).

Each hook imports the modules it registers when it is called, so that ``omnissl configs list`` (which
calls only ``omnissl_config_dirs``) starts without torch.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from omnissl.hookspecs import hookimpl
from omnissl.specs import DatasetSpec, EncoderSpec, EvaluatorSpec, ModalitySpec, ObjectiveSpec, ViewGeneratorSpec

if TYPE_CHECKING:
    from omnissl_video import datasets

MODALITY = "video.clips"


def example_data() -> datasets.ClipSource:
    """16 generated moving-digit clips of 4 frames at 64x64 (4x4 patches of 16 per frame) for contract tests."""
    from omnissl_video import datasets

    return datasets.moving_digits(datasets.MovingDigitsConfig(num_clips=16, num_frames=4, size=64, digit_size=16, speed=2.0, seed=1))


def example_batch():
    import torch

    return example_data().gather(torch.arange(4))


@hookimpl
def omnissl_modalities():
    yield ModalitySpec(
        name=MODALITY,
        summary="Clips (B, C, T, H, W) float; labels stay in the data source.",
        example_batch=example_batch,
        example_data=example_data,
        encoders=("video.vit",),
        views=("video.tube_masking", "video.augment", "video.masked_augment"),
        objectives=("video.videomae", "video.sigma", "video.crossvideomae"),
        objective_pairs={
            "video.videomae": ("video.vit", "video.tube_masking"),
            "video.sigma": ("video.vit", "video.tube_masking"),
            "video.crossvideomae": ("video.vit", "video.masked_augment"),
        },
    )


@hookimpl
def omnissl_datasets():
    from omnissl_video import datasets

    yield DatasetSpec(name="video.folder", modality=MODALITY, config=datasets.VideoFolderConfig, factory=datasets.video_folder,
                      example=datasets.write_example_folder,
                      summary="Your videos (mp4/avi/mkv/webm) in class subfolders or a CSV manifest, decoded with PyAV.")
    yield DatasetSpec(name="video.moving_digits", modality=MODALITY, config=datasets.MovingDigitsConfig, factory=datasets.moving_digits,
                      example=lambda folder: {"num_clips": 10, "num_frames": 4, "size": 32, "digit_size": 12},
                      summary="Generated clips of scikit-learn digits moving across a canvas; digit and direction labels.")


@hookimpl
def omnissl_encoders():
    from omnissl_video import encoders, hf

    yield EncoderSpec(name="video.vit", config=encoders.VideoViTConfig, factory=encoders.video_vit, hf_export=hf.export_hf,
                      summary="ViT over 2x16x16 tubelets with sin-cos positions (core SDPA trunk), micro to base.")


@hookimpl
def omnissl_view_generators():
    from omnissl_video import views

    yield ViewGeneratorSpec(name="video.tube_masking", config=views.TubeMaskingConfig, factory=views.tube_masking,
                            summary="VideoMAE tube masking (ratio 0.9): the same spatial mask in every frame.")
    yield ViewGeneratorSpec(name="video.augment", config=views.VideoAugmentConfig, factory=views.video_augment,
                            summary="Random resized crop and horizontal flip per clip, batched on the device.")
    yield ViewGeneratorSpec(name="video.masked_augment", config=views.MaskedAugmentConfig, factory=views.masked_augment,
                            summary="Two augmented, tube-masked views and a random frame per clip (CrossVideoMAE).")


@hookimpl
def omnissl_objectives():
    from omnissl_video.objectives import crossvideomae, sigma, videomae

    yield ObjectiveSpec(name="video.videomae", config=videomae.VideoMAEConfig, factory=videomae.VideoMAEObjective.build,
                        summary="VideoMAE: MSE on per-tube normalised pixels of masked tubes (Tong et al. 2022).")
    yield ObjectiveSpec(name="video.sigma", config=sigma.SIGMAConfig, factory=sigma.SIGMAObjective.build,
                        summary="SIGMA: predict Sinkhorn cluster assignments of projected tube features, symmetric (Salehi et al. 2024).")
    yield ObjectiveSpec(name="video.crossvideomae", config=crossvideomae.CrossVideoMAEConfig, factory=crossvideomae.CrossVideoMAEObjective.build,
                        summary="CrossVideoMAE: video + frame MAE with intra- and cross-modal NT-Xent alignment.")


@hookimpl
def omnissl_evaluators():
    from omnissl_video import evaluators

    yield EvaluatorSpec(name="video.probe", config=evaluators.VideoProbeConfig, factory=evaluators.video_probe,
                        summary="Clip linear and kNN probes per label set, with raw-pixel and random-encoder baselines.")


@hookimpl
def omnissl_config_dirs():
    folder = files("omnissl_video") / "configs"
    return [folder] if folder.is_dir() else []
