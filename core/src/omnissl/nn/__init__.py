"""Building blocks every plugin reuses: the transformer trunk, heads, the EMA teacher, the FIFO feature queue and block masks."""

from omnissl.nn.ema import EMATeacher, momentum_schedule
from omnissl.nn.heads import MLPHead
from omnissl.nn.masking import BlockMasks, multi_block_masks
from omnissl.nn.positions import sincos_positions
from omnissl.nn.queue import FeatureQueue
from omnissl.nn.trunk import TransformerTrunk, TrunkConfig, gather_tokens, masked_mean

__all__ = [
    "BlockMasks", "EMATeacher", "FeatureQueue", "MLPHead", "TransformerTrunk", "TrunkConfig", "gather_tokens", "masked_mean", "momentum_schedule",
    "multi_block_masks", "sincos_positions",
]
