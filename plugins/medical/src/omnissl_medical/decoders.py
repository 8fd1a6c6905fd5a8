"""A light convolutional decoder from an encoder's feature map back up in resolution.

Used by ``medical.swin_ssl`` (inpainting: up to the input size, as the upsampling head of Tang et al.'s
``SSLHead``: Conv3d -> InstanceNorm -> LeakyReLU -> x2 trilinear upsampling per stage; GroupNorm here,
because the deepest Swin map of a 28³ volume is 1³ and instance norm over one voxel is undefined) and by
``medical.global_local_contrast`` (the decoder whose feature maps the local loss contrasts). MONAI's
``UnetrUpBlock`` expects skip connections from a specific encoder; this decoder only needs the last map,
so it works on every encoder here (ViT token grid, ResNet, Swin).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class VolumeDecoder(nn.Module):
    """``stages`` x (Conv3d 3³ -> GroupNorm -> LeakyReLU -> x2 trilinear upsample), then a 1³ conv to ``out_channels``.

    The width halves at every stage (``hidden``, ``hidden/2``, ... down to 8), as ``SSLHead``'s upsampling
    head narrows while it grows: the last stages run at full resolution, where a constant width would
    dominate the step (64 channels at 32³ made a 28³ Swin step 50x slower than 8 channels).

    ``forward(fmap, size=None)``: with ``size`` the output is resized (trilinear) to exactly that spatial size.

    Shapes:
        ``(B, in_channels, d, h, w)`` -> ``(B, out_channels, 2^stages d, ...)`` or ``(B, out_channels, *size)``.
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int, stages: int):
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_channels
        for stage in range(stages):
            out = max(8, hidden // 2**stage)
            blocks += [nn.Conv3d(width, out, 3, padding=1), nn.GroupNorm(min(8, out), out), nn.LeakyReLU(0.01),
                       nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)]
            width = out
        self.features = nn.Sequential(*blocks)
        self.out = nn.Conv3d(width, out_channels, 1)

    def forward(self, fmap: Tensor, size: tuple[int, int, int] | None = None) -> Tensor:
        x = self.features(fmap)
        if size is not None and tuple(x.shape[2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
        return self.out(x)
