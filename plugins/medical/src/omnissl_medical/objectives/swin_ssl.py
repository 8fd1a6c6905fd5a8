"""The self-supervised pretext trio of Tang et al., "Self-Supervised Pre-Training of Swin Transformers for 3D
Medical Image Analysis" (CVPR 2022): rotation prediction, masked-volume inpainting and contrastive coding on
one encoder.

Reference code: Project-MONAI/research-contributions ``SwinUNETR/Pretrain`` (``models/ssl_head.py``,
``losses/loss.py``, ``utils/ops.py``). The total loss is (paper, eq. 4; ``Loss.__call__``)::

    L = λ1 L_inpaint + λ2 L_contrast + λ3 L_rot,     λ1 = λ2 = λ3 = 1

with ``L_inpaint`` the L1 distance between the reconstruction and the rotated clean volume (over the whole
volume, as ``nn.L1Loss``), ``L_rot`` the cross-entropy of the rotation class (4 angles about z), and
``L_contrast`` NT-Xent between the two sub-volumes' projections at temperature 0.5 (``Contrast``; the core's
:class:`omnissl.losses.NTXentLoss`, which also gathers across processes).

Heads as in ``SSLHead``: a linear rotation head and a linear contrastive head (512 outputs) on the encoder's
pooled vector, and an upsampling convolutional decoder for inpainting. Departure: ``SSLHead`` feeds the
rotation and contrastive heads the first and second bottleneck *tokens* (a 96³ crop leaves 3³ of them); at
MedMNIST's 28³ the bottleneck is 1³, so both heads read the pooled vector.

Pair with ``medical.swin`` (or any volume encoder with ``feature_map``) and ``medical.swin_ssl_views``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from omnissl.errors import ConfigError
from omnissl.interfaces import Encoder, Objective, ObjectiveOutput, Views
from omnissl.losses import NTXentLoss
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_medical.decoders import VolumeDecoder


class SwinSSLConfig(ComponentConfig):
    """Loss weights and heads.

    Attributes:
        inpaint_weight, contrast_weight, rotation_weight: λ1, λ2, λ3 (defaults 1.0 each, the paper's).
        temperature: NT-Xent temperature (default 0.5, ``Contrast`` in the reference code).
        contrast_dim: contrastive head output (default 512, as ``SSLHead``).
        decoder_hidden: decoder width (default 64).
        num_rotations: rotation classes, 4 per rotation axis of the views (default 4: about z only, the paper's).
    """

    inpaint_weight: float = Field(1.0, ge=0)
    contrast_weight: float = Field(1.0, ge=0)
    rotation_weight: float = Field(1.0, ge=0)
    temperature: float = Field(0.5, gt=0)
    contrast_dim: int = Field(512, gt=0)
    decoder_hidden: int = Field(64, gt=0)
    num_rotations: int = Field(4, ge=4, multiple_of=4)


class SwinSSLObjective(Objective):
    """Rotation + inpainting + contrast on two corrupted, rotated sub-volumes per volume.

    Uses ``views.info`` ``rotation (2B,)``, ``target (2B, C, D, H, W)`` and ``num_rotations`` from
    ``medical.swin_ssl_views``. Logs each term, the total, and the rotation accuracy.
    """

    def __init__(self, encoder_dim: int, feature_dim: int, channels: int, upsample_stages: int, num_rotations: int, cfg: SwinSSLConfig):
        super().__init__()
        self.cfg = cfg
        self.num_rotations = num_rotations
        self.rotation_head = nn.Linear(encoder_dim, num_rotations)
        self.contrastive_head = nn.Linear(encoder_dim, cfg.contrast_dim)
        self.decoder = VolumeDecoder(feature_dim, cfg.decoder_hidden, channels, upsample_stages)
        self.contrast = NTXentLoss(cfg.temperature)

    def forward(self, encoder: Encoder, views: Views) -> ObjectiveOutput:
        info = views.info
        if "rotation" not in info:
            raise ValueError("medical.swin_ssl needs views with rotation labels; use views: {name: medical.swin_ssl_views}")
        if info["num_rotations"] != self.num_rotations:
            raise ValueError(f"views give {info['num_rotations']} rotation classes but the objective was built for {self.num_rotations}; "
                             "set objective.num_rotations to 4 x len(views.axes)")
        x = torch.cat(views.inputs)  # (2B, C, D, H, W): one encoder pass for both sub-volumes
        fmap = encoder.feature_map(x)
        pooled = fmap.mean(dim=(2, 3, 4))
        rot_logits = self.rotation_head(pooled)
        rotation_loss = F.cross_entropy(rot_logits.float(), info["rotation"])
        z = self.contrastive_head(pooled)
        z_a, z_b = z.chunk(2)
        contrast_loss = self.contrast(z_a.float(), z_b.float())
        recon = self.decoder(fmap, size=tuple(x.shape[2:]))
        inpaint_loss = F.l1_loss(recon.float(), info["target"].float())
        cfg = self.cfg
        loss = cfg.inpaint_weight * inpaint_loss + cfg.contrast_weight * contrast_loss + cfg.rotation_weight * rotation_loss
        rot_acc = (rot_logits.argmax(dim=1) == info["rotation"]).float().mean()
        return ObjectiveOutput(loss=loss, logs={
            "inpaint_l1": inpaint_loss.detach(), "contrast": contrast_loss.detach(), "rotation_ce": rotation_loss.detach(), "rotation_acc": rot_acc.detach(),
        })

    @classmethod
    def build(cls, cfg: SwinSSLConfig, ctx: BuildContext) -> SwinSSLObjective:
        enc = ctx.encoder
        if not hasattr(enc, "feature_map"):
            raise ConfigError(["objective: medical.swin_ssl needs a volume encoder with a feature map (medical.swin, medical.resnet, medical.vit)"])
        shape = getattr(ctx.data, "volume_shape", None) or (1, 28, 28, 28)
        with torch.no_grad():
            was = enc.training
            enc.eval()
            fmap = enc.feature_map(torch.zeros(1, *shape, device=next(enc.parameters()).device))
            enc.train(was)
        stages = max(1, math.ceil(math.log2(max(shape[1:]) / max(fmap.shape[2:]))))
        return cls(enc.output_dim, fmap.shape[1], shape[0], stages, cfg.num_rotations, cfg)
