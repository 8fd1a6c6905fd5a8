"""Speech encoders: a transformer over feature frames (TERA) and a wav2vec 2.0 style waveform encoder.

Both are a *stem* that turns a :class:`SpeechBatch` into local frame vectors ``z`` with a frame padding
mask, followed by the core :class:`omnissl.nn.TransformerTrunk` or a padding-exact conformer
(:mod:`omnissl_speech.conformer`, ``block: conformer``) as the *context network*. Masked prediction
objectives (wav2vec 2.0, HuBERT, w2v-BERT) call the two halves separately::

    z, padding = encoder.local_features(batch)               # (B, T, D), (B, T)
    out = encoder.contextualise(z, padding, mask=mask, mask_embedding=objective.mask_embedding)

Padding is exact end to end: features and waveforms are zero at padding, convolutions only produce valid
frames from valid samples (torchaudio's length formula), padded keys are masked in attention, and the
utterance embedding is the masked mean of the final tokens. A batch therefore gives each utterance the
same embedding as encoding it alone (``tests/plugins/speech/test_padding.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torchaudio.models.wav2vec2.components import ConvolutionalPositionalEmbedding, _get_feature_extractor

from omnissl.errors import ConfigError
from omnissl.interfaces import Encoded, Encoder
from omnissl.nn import TransformerTrunk, TrunkConfig, masked_mean, sincos_positions
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_speech.batch import SpeechBatch
from omnissl_speech.conformer import ConformerTrunk


@dataclass
class StemOutput:
    """What an encoder's stem produces, with fairseq ``Wav2Vec2Model.forward``'s names in brackets.

    Attributes:
        z: ``(B, T, D)`` local features after the projection, zero at padding (``features`` after
            ``post_extract_proj``): what masking replaces and the context network reads.
        padding_mask: ``(B, T)`` bool, ``True`` at padding.
        unprojected: ``(B, T, C)`` the stem's features before the projection, zero at padding
            (``unmasked_features``: after the feature layer norm): what wav2vec 2.0's quantizer reads.
        penalty: scalar, the mean squared output of the convolutional feature encoder over valid frames
            (``features_pen``, weighted 10 in fairseq's base configs); zero for stems without one.
    """

    z: Tensor
    padding_mask: Tensor
    unprojected: Tensor
    penalty: Tensor


class ContextNetworkConfig(ComponentConfig):
    """The context network's block type, shared by the speech encoders' configs.

    Attributes:
        block: ``"transformer"`` (the core pre-norm trunk, wav2vec 2.0 / HuBERT / TERA) or ``"conformer"``
            (torchaudio's conformer block made padding-exact, w2v-BERT's context network) (default
            ``"transformer"``).
        conv_kernel: the conformer's depthwise convolution kernel, odd (default 15: 150 ms at 10 ms frames;
            the Conformer paper's 32 frames of 40 ms cover 1.3 s, longer than most FSDD clips).
    """

    block: Literal["transformer", "conformer"] = "transformer"
    conv_kernel: int = Field(15, ge=1)


def context_network(cfg) -> nn.Module:
    """The core :class:`TransformerTrunk` or a :class:`ConformerTrunk`, from an encoder config."""
    if cfg.block == "conformer":
        if cfg.conv_kernel % 2 == 0:
            raise ConfigError([f"encoder.conv_kernel: {cfg.conv_kernel} must be odd (the conformer's 'same' depthwise convolution)"])
        return ConformerTrunk(cfg.dim, cfg.depth, cfg.heads, cfg.mlp_ratio, cfg.conv_kernel, cfg.dropout)
    return TransformerTrunk(TrunkConfig(dim=cfg.dim, depth=cfg.depth, heads=cfg.heads, mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout))


class SpeechEncoder(Encoder):
    """Shared context network: optional masking, positions, input norm, the core trunk, masked-mean pooling."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        self.trunk = trunk
        self.dim = trunk.dim
        self.output_dim = trunk.dim
        self.input_norm = nn.LayerNorm(trunk.dim)

    def stem(self, batch: SpeechBatch) -> StemOutput:  # pragma: no cover - interface
        """The stem's frame vectors before and after the projection (:class:`StemOutput`)."""
        raise NotImplementedError

    def local_features(self, batch: SpeechBatch) -> tuple[Tensor, Tensor]:
        """``(z (B, T, D), padding_mask (B, T))``: the stem's projected frame vectors, zero at padding."""
        out = self.stem(batch)
        return out.z, out.padding_mask

    def positions(self, x: Tensor, padding_mask: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def contextualise(
        self,
        z: Tensor,
        padding_mask: Tensor,
        mask: Tensor | None = None,
        mask_embedding: Tensor | None = None,
        keep: Tensor | None = None,
    ) -> Encoded:
        """Run the context network on local features.

        Args:
            z: ``(B, T, D)`` local features; padding_mask: ``(B, T)`` (``True`` = padding).
            mask: ``(B, T)`` bool frames to replace by ``mask_embedding`` ``(D,)`` (wav2vec 2.0 masking).
            keep: ``(B, K)`` frame positions to encode (positions are added before the gather).
        Returns:
            :class:`Encoded` with ``tokens`` ``(B, T or K, D)``, ``pooled`` (masked mean), ``padding_mask``
            and ``layers`` (each block's output, for layer-wise probing and HuBERT targets).
        """
        if mask is not None:
            if mask_embedding is None:
                raise ValueError("contextualise(mask=...) needs the objective's mask_embedding")
            z = torch.where(mask.unsqueeze(-1), mask_embedding.to(z.dtype), z)
        x = z.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = self.input_norm(x + self.positions(x, padding_mask))
        tokens, layers = self.trunk(x, padding_mask=padding_mask, keep=keep, return_layers=True)
        if keep is not None:
            padding_mask = torch.gather(padding_mask, 1, keep)
        return Encoded(pooled=masked_mean(tokens, padding_mask), tokens=tokens, padding_mask=padding_mask, layers=layers)

    def forward(self, batch: SpeechBatch, keep: Tensor | None = None) -> Encoded:
        z, padding_mask = self.local_features(batch)
        return self.contextualise(z, padding_mask, keep=keep)


# ------------------------------------------------------------------------------------ frame transformer
class FrameTransformerConfig(ContextNetworkConfig):
    """TERA-style transformer over feature frames (Liu et al. 2021, section 3.1).

    Attributes:
        dim, depth, heads, mlp_ratio, dropout: the core trunk (defaults 128, 3, 4, 4.0, 0.1; TERA base is
            768 wide, 3 layers, 12 heads).
        positions: ``"sincos"`` (TERA's fixed sinusoids) or ``"learned"`` (default ``"sincos"``).
        max_frames: table size for learned positions (default 2048).
        trunk: ``"@shared.<name>"`` to use a shared trunk from the run's ``shared:`` block (default ``None``).
        block, conv_kernel: transformer or conformer blocks (:class:`ContextNetworkConfig`).
    """

    dim: int = Field(128, gt=0)
    depth: int = Field(3, ge=0)
    heads: int = Field(4, gt=0)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    positions: Literal["sincos", "learned"] = "sincos"
    max_frames: int = Field(2048, gt=0)
    trunk: str | None = None


class FrameTransformerEncoder(SpeechEncoder):
    """Linear projection of each feature frame, positions, core trunk.

    Shapes:
        ``features (B, T, F)`` + ``padding_mask (B, T)`` -> tokens ``(B, T, dim)``, pooled ``(B, dim)``.
    """

    def __init__(self, feature_dim: int, cfg: FrameTransformerConfig, trunk: TransformerTrunk | None = None):
        super().__init__(trunk or context_network(cfg))
        self.cfg = cfg
        self.feature_dim = self.stem_dim = feature_dim
        self.project = nn.Linear(feature_dim, self.dim)
        if cfg.positions == "learned":
            self.position_table = nn.Parameter(torch.randn(cfg.max_frames, self.dim) * 0.02)
        else:
            self.register_buffer("position_table", sincos_positions(cfg.max_frames, self.dim), persistent=False)

    def positions(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        length = x.shape[1]
        if length > self.position_table.shape[0]:
            if self.cfg.positions == "learned":
                raise ValueError(f"utterance of {length} frames exceeds encoder.max_frames={self.cfg.max_frames}; raise it or set data.max_seconds")
            return sincos_positions(length, self.dim, device=x.device).to(x.dtype)
        return self.position_table[:length].to(x.dtype)

    def stem(self, batch: SpeechBatch) -> StemOutput:
        if batch.features.shape[-1] != self.feature_dim:
            raise ValueError(f"batch has {batch.features.shape[-1]} feature bins but the encoder was built for {self.feature_dim}")
        pad = batch.padding_mask.unsqueeze(-1)
        frames = batch.features.masked_fill(pad, 0.0)
        z = self.project(frames).masked_fill(pad, 0.0)
        return StemOutput(z=z, padding_mask=batch.padding_mask, unprojected=frames, penalty=frames.new_zeros(()))

    def frame_padding_mask(self, batch: SpeechBatch) -> Tensor:
        return batch.padding_mask


def frame_transformer(cfg: FrameTransformerConfig, ctx: BuildContext) -> FrameTransformerEncoder:
    feature_dim = ctx.data.feature_dim if ctx.data is not None and hasattr(ctx.data, "feature_dim") else 40
    trunk = ctx.resolve_shared(cfg.trunk) if cfg.trunk else None
    if trunk is not None and not isinstance(trunk, TransformerTrunk):
        trunk = getattr(trunk, "trunk", None)
        if not isinstance(trunk, TransformerTrunk):
            raise ConfigError([f"encoder.trunk: {cfg.trunk!r} is not a transformer trunk"])
    return FrameTransformerEncoder(feature_dim, cfg, trunk)


# ---------------------------------------------------------------------------------------- wav2vec 2.0
class Wav2Vec2Config(ContextNetworkConfig):
    """wav2vec 2.0 style encoder (Baevski et al. 2020): convolutional waveform feature encoder, then the trunk.

    Attributes:
        conv_layers: ``(channels, kernel, stride)`` per convolution (default five layers of 64 channels
            with total stride 80: 10 ms frames at 8 kHz; wav2vec 2.0 at 16 kHz uses
            ``[(512,10,5)] + [(512,3,2)]*4 + [(512,2,2)]*2``, stride 320).
        conv_bias: bias in the convolutions (default ``True``, as wav2vec 2.0 large).
        dim, depth, heads, mlp_ratio, dropout: the core trunk (defaults 128, 3, 4, 4.0, 0.1).
        pos_conv_kernel, pos_conv_groups: convolutional relative positions (defaults 16 and 4; 128 and 16
            in the paper at 50 frames/s).
        feature_grad_mult: scale of the gradient that reaches the convolutional feature encoder (default
            0.1, fairseq's ``feature_grad_mult`` in the wav2vec 2.0 and HuBERT base configs; 1.0 trains it
            at the full rate).
        input_norm: a LayerNorm on ``z + positions`` before the pre-norm blocks (default ``True``, this
            encoder's original layout). ``False`` is exactly fairseq's ``layer_norm_first`` / HF's
            ``do_stable_layer_norm=True`` layout (wav2vec 2.0 large, HuBERT large): positions added, then
            pre-norm blocks and the final LayerNorm; the layout :mod:`omnissl_speech.hf` exports.
        init_from_hf: a local transformers ``Wav2Vec2Model`` / ``HubertModel`` directory whose weights
            initialise this encoder (default ``None``). Its config sets the architecture (conv stem,
            width, depth, heads, positions; ``input_norm`` becomes ``False``); architecture fields set here
            must agree with it. Nothing is downloaded.
        block, conv_kernel: transformer or conformer blocks (:class:`ContextNetworkConfig`).
    """

    conv_layers: list[tuple[int, int, int]] = [(64, 10, 5), (64, 3, 2), (64, 3, 2), (64, 3, 2), (64, 2, 2)]
    conv_bias: bool = True
    dim: int = Field(128, gt=0)
    depth: int = Field(3, ge=0)
    heads: int = Field(4, gt=0)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    pos_conv_kernel: int = Field(16, gt=1)
    pos_conv_groups: int = Field(4, gt=0)
    feature_grad_mult: float = Field(0.1, ge=0, le=1)
    input_norm: bool = True
    init_from_hf: str | None = None


class Wav2Vec2Encoder(SpeechEncoder):
    """torchaudio's wav2vec 2.0 feature extractor (layer-norm mode) + projection + conv positions + trunk.

    Layer-norm mode normalises each frame over channels; the base model's group norm normalises each
    channel over *time*, which would let padding change valid frames, so it is not offered.

    Shapes:
        ``waveform (B, S)`` + ``waveform_lengths (B,)`` -> tokens ``(B, T', dim)`` with
        ``T' = floor((S - k) / s) + 1`` applied per convolution, pooled ``(B, dim)``.
    """

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__(context_network(cfg))
        if cfg.dim % cfg.pos_conv_groups:
            raise ConfigError([f"encoder.pos_conv_groups: {cfg.pos_conv_groups} must divide encoder.dim={cfg.dim}"])
        self.cfg = cfg
        self.feature_extractor = _get_feature_extractor("layer_norm", [tuple(x) for x in cfg.conv_layers], cfg.conv_bias)
        channels = self.stem_dim = cfg.conv_layers[-1][0]
        self.project = nn.Sequential(nn.LayerNorm(channels), nn.Linear(channels, self.dim))
        self.pos_conv = ConvolutionalPositionalEmbedding(self.dim, cfg.pos_conv_kernel, cfg.pos_conv_groups)
        if not cfg.input_norm:
            self.input_norm = nn.Identity()

    def frame_lengths(self, num_samples: Tensor | int) -> Tensor | int:
        """Valid output frames for ``num_samples`` input samples (torchaudio's per-layer formula)."""
        for _, kernel, stride in self.cfg.conv_layers:
            num_samples = (num_samples - kernel) // stride + 1
            num_samples = num_samples.clamp_min(0) if isinstance(num_samples, Tensor) else max(0, num_samples)
        return num_samples

    def _waveform(self, batch: SpeechBatch) -> tuple[Tensor, Tensor]:
        if batch.waveform is None:
            raise ValueError("speech.wav2vec2 needs waveforms: build the data source with keep_waveform: true")
        return batch.waveform, batch.waveform_lengths

    def frame_padding_mask(self, batch: SpeechBatch) -> Tensor:
        wave, lengths = self._waveform(batch)
        frames = self.frame_lengths(lengths)
        total = self.frame_lengths(int(wave.shape[1]))
        return torch.arange(total, device=wave.device)[None, :] >= frames[:, None]

    def stem(self, batch: SpeechBatch) -> StemOutput:
        """fairseq ``Wav2Vec2Model.forward`` up to masking: conv features, penalty, layer norm, projection."""
        wave, lengths = self._waveform(batch)
        x, frames = self.feature_extractor(wave, lengths)
        g = self.cfg.feature_grad_mult
        if g != 1.0:  # fairseq's GradMultiply: the same values, the gradient scaled by g
            x = x * g + x.detach() * (1.0 - g)
        padding_mask = torch.arange(x.shape[1], device=x.device)[None, :] >= frames[:, None]
        pad = padding_mask.unsqueeze(-1)
        valid = (~pad).to(torch.float32)
        # fairseq averages over the padded batch; valid frames only keeps the penalty padding-invariant
        penalty = (x.float().pow(2) * valid).sum() / (valid.sum() * x.shape[-1]).clamp_min(1.0)
        layer_norm, projection = self.project
        unprojected = layer_norm(x).masked_fill(pad, 0.0)
        z = projection(unprojected).masked_fill(pad, 0.0)
        return StemOutput(z=z, padding_mask=padding_mask, unprojected=unprojected, penalty=penalty)

    def positions(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        # x is zero at padding, so the convolution sees the same zeros a lone utterance's border padding gives
        return self.pos_conv(x)


def wav2vec2_encoder(cfg: Wav2Vec2Config, ctx: BuildContext) -> Wav2Vec2Encoder:
    if ctx.data is not None and getattr(ctx.data, "has_waveform", True) is False:
        raise ConfigError(["encoder: speech.wav2vec2 reads waveforms but the data source was built with keep_waveform: false; set data.keep_waveform: true"])
    if cfg.init_from_hf:
        from omnissl_speech.hf import load_pretrained

        return load_pretrained(cfg.init_from_hf, cfg)[0]
    return Wav2Vec2Encoder(cfg)
