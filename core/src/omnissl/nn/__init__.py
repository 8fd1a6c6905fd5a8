"""Building blocks every plugin reuses: the transformer trunk, heads and the EMA teacher."""

from omnissl.nn.ema import EMATeacher, momentum_schedule
from omnissl.nn.heads import MLPHead
from omnissl.nn.positions import sincos_positions
from omnissl.nn.trunk import TransformerTrunk, TrunkConfig, gather_tokens, masked_mean

__all__ = ["EMATeacher", "MLPHead", "TransformerTrunk", "TrunkConfig", "gather_tokens", "masked_mean", "momentum_schedule", "sincos_positions"]
