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

    ``forward(fmap, size=None)``: with ``size`` the output is resized (trilinear) to exactly that spatial size.

    Shapes:
        ``(B, in_channels, d, h, w)`` -> ``(B, out_channels, 2^stages d, ...)`` or ``(B, out_channels, *size)``.
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int, stages: int):
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_channels
        for _ in range(stages):
            blocks += [nn.Conv3d(width, hidden, 3, padding=1), nn.GroupNorm(min(8, hidden), hidden), nn.LeakyReLU(0.01),
                       nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)]
            width = hidden
        self.features = nn.Sequential(*blocks)
        self.out = nn.Conv3d(width, out_channels, 1)

    def forward(self, fmap: Tensor, size: tuple[int, int, int] | None = None) -> Tensor:
        x = self.features(fmap)
        if size is not None and tuple(x.shape[2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
        return self.out(x)
