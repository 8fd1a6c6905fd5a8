"""Pure loss functions on embeddings, one per file, named after the paper."""

from omnissl.losses.amcl import AMCLLoss
from omnissl.losses.barlow_twins import BarlowTwinsLoss
from omnissl.losses.byol import BYOLLoss
from omnissl.losses.mgda import min_norm_weights
from omnissl.losses.mixed_barlow_twins import MixedBarlowTwinsRegulariser
from omnissl.losses.mochi import MoCHiNTXentLoss, MoCHiQueueLoss, mix_hard_negatives
from omnissl.losses.moco import MoCoLoss
from omnissl.losses.ntxent import NTXentLoss
from omnissl.losses.reconstruction import MaskedL1Loss, NormalizedMSELoss, ScaledCosineError, latent_prediction_loss
from omnissl.losses.swav import Prototypes, SwAVLoss, sinkhorn_knopp
from omnissl.losses.vicreg import VICRegLoss

__all__ = [
    "AMCLLoss", "BYOLLoss", "BarlowTwinsLoss", "MaskedL1Loss", "MixedBarlowTwinsRegulariser", "MoCHiNTXentLoss",
    "MoCHiQueueLoss", "MoCoLoss", "NTXentLoss", "NormalizedMSELoss", "Prototypes", "ScaledCosineError", "SwAVLoss",
    "VICRegLoss", "latent_prediction_loss", "min_norm_weights", "mix_hard_negatives", "sinkhorn_knopp",
]
