"""Registration hooks of the medical plugin (``omnissl-medical``).

Each hook imports the modules it registers when it is called, so that ``omnissl configs list`` (which
calls only ``omnissl_config_dirs``) starts without torch.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from omnissl.hookspecs import hookimpl
from omnissl.specs import DatasetSpec, EncoderSpec, EvaluatorSpec, ModalitySpec, ObjectiveSpec, ViewGeneratorSpec

if TYPE_CHECKING:
    import torch
    from omnissl_medical import datasets

MODALITY = "medical.volumes"


def example_data() -> datasets.VolumeSource:
    """16 generated 16³ volumes (blobs vs tubes) for contract tests."""
    from omnissl_medical import datasets

    return datasets.synthetic_volumes(datasets.SyntheticVolumesConfig(num_volumes=16, size=16))


def example_batch() -> torch.Tensor:
    import torch

    return example_data().gather(torch.arange(4))


@hookimpl
def omnissl_modalities():
    yield ModalitySpec(
        name=MODALITY,
        summary="Volumes as a float tensor (B, C, D, H, W); labels and splits stay in the source.",
        example_batch=example_batch,
        example_data=example_data,
        encoders=("medical.vit", "medical.resnet", "medical.swin"),
        views=("medical.augment", "medical.patch_masking", "medical.swin_ssl_views", "medical.global_local_views"),
        objectives=("medical.mae3d", "medical.swin_ssl", "medical.global_local_contrast"),
        objective_pairs={
            "medical.mae3d": ("medical.vit", "medical.patch_masking"),
            "medical.swin_ssl": ("medical.swin", "medical.swin_ssl_views"),
            "medical.global_local_contrast": ("medical.resnet", "medical.global_local_views"),
        },
    )


@hookimpl
def omnissl_datasets():
    from omnissl_medical import datasets, examples

    yield DatasetSpec(name="medical.medmnist3d", modality=MODALITY, config=datasets.MedMNIST3DConfig, factory=datasets.load_medmnist3d, example=examples.write_medmnist3d,
                      summary="A MedMNIST v2 3-D .npz (28³ or 64³) with its official train/val/test splits.")
    yield DatasetSpec(name="medical.nifti", modality=MODALITY, config=datasets.NiftiFolderConfig, factory=datasets.load_nifti_folder,
                      example=datasets.write_example_folder,
                      summary="A folder of .nii/.nii.gz (nibabel): reorientation, spacing, CT window or z-score, crop/pad; labels from a CSV.")
    yield DatasetSpec(name="medical.synthetic", modality=MODALITY, config=datasets.SyntheticVolumesConfig, factory=datasets.synthetic_volumes,
                      example=lambda folder: {"num_volumes": 8, "size": 12},
                      summary="Generated blob vs tube volumes with labels (no files needed).")


@hookimpl
def omnissl_encoders():
    from omnissl_medical import encoders

    yield EncoderSpec(name="medical.vit", config=encoders.VolumeViTConfig, factory=encoders.build_vit,
                      summary="3-D ViT: cubic patch embedding + 3-D sin-cos positions + core trunk (keep=, shared trunk).")
    yield EncoderSpec(name="medical.resnet", config=encoders.VolumeResNetConfig, factory=encoders.build_resnet,
                      summary="MONAI's 3-D ResNet (basic blocks), global average pooled.")
    yield EncoderSpec(name="medical.swin", config=encoders.VolumeSwinConfig, factory=encoders.build_swin,
                      summary="MONAI's SwinUNETR encoder (3-D Swin transformer), global average pooled.")


@hookimpl
def omnissl_view_generators():
    from omnissl_medical import views

    yield ViewGeneratorSpec(name="medical.augment", config=views.AugmentConfig, factory=views.build_two_views,
                            summary="Two views: random crop + flips, 90° rotation, intensity scale/shift, noise (batched on device).")
    yield ViewGeneratorSpec(name="medical.patch_masking", config=views.PatchMaskingConfig, factory=views.build_patch_masking,
                            summary="MAE random masking of cubic patches (keep and masked indices).")
    yield ViewGeneratorSpec(name="medical.swin_ssl_views", config=views.SwinSSLViewsConfig, factory=views.build_swin_ssl_views,
                            summary="Tang et al.: two rotated sub-volumes (rotation class labels) with noise cutouts for inpainting.")
    yield ViewGeneratorSpec(name="medical.global_local_views", config=views.GlobalLocalViewsConfig, factory=views.build_global_local_views,
                            summary="Chaitanya et al.: two copies with shared geometry and independent intensity augmentation.")


@hookimpl
def omnissl_objectives():
    from omnissl_medical.objectives import global_local_contrast, mae3d, swin_ssl

    yield ObjectiveSpec(name="medical.mae3d", config=mae3d.MAE3DConfig, factory=mae3d.MAE3DObjective.build,
                        summary="MAE on volumes: visible patches only in the encoder, light decoder, MSE on masked patches.")
    yield ObjectiveSpec(name="medical.swin_ssl", config=swin_ssl.SwinSSLConfig, factory=swin_ssl.SwinSSLObjective.build,
                        summary="Tang et al. (CVPR 2022): rotation + inpainting + contrastive coding, weights 1/1/1.")
    yield ObjectiveSpec(name="medical.global_local_contrast", config=global_local_contrast.GlobalLocalContrastConfig,
                        factory=global_local_contrast.GlobalLocalContrastObjective.build,
                        summary="Chaitanya et al. (NeurIPS 2020): partition-wise global contrast (G^D) + local decoder contrast.")


@hookimpl
def omnissl_evaluators():
    from omnissl_medical import evaluators

    yield EvaluatorSpec(name="medical.auc_probe", config=evaluators.AUCProbeConfig, factory=evaluators.auc_probe,
                        summary="ROC-AUC / balanced accuracy (linear, MLP) with random-encoder, raw-voxel and supervised-from-scratch baselines.")


@hookimpl
def omnissl_config_dirs():
    folder = files("omnissl_medical") / "configs"
    return [folder] if folder.is_dir() else []
