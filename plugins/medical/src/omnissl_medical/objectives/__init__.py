"""Medical objectives, one file per paper: MAE on volumes, Tang et al.'s Swin pretext trio, Chaitanya et al.'s global/local contrast."""

from omnissl_medical.objectives.global_local_contrast import GlobalLocalContrastObjective
from omnissl_medical.objectives.mae3d import MAE3DObjective
from omnissl_medical.objectives.swin_ssl import SwinSSLObjective

__all__ = ["GlobalLocalContrastObjective", "MAE3DObjective", "SwinSSLObjective"]
