"""Interoperability with HF transformers' ``VideoMAEModel`` / ``VideoMAEForPreTraining``, both directions.

``save_videomae(encoder, directory, decoder=None)`` writes a transformers checkpoint (``config.json`` +
safetensors) that ``VideoMAEModel.from_pretrained`` (or ``VideoMAEForPreTraining`` with a decoder) loads;
``load_videomae(directory)`` builds a :class:`~omnissl_video.encoders.VideoViT` (and an
:class:`~omnissl_video.objectives.decoder.MAEDecoder` when the checkpoint has one) from a local
transformers directory; ``export_hf`` is the ``video.vit`` spec's ``hf_export`` behind ``omnissl export --format
hf``. Nothing is downloaded; transformers is imported only inside these functions
(install the ``omnissl-video[hf]`` extra).

The two models compute the same function (``tests/plugins/video/test_hf_parity.py``):
- the tube projection is a ``Conv3d`` with kernel = stride in transformers and a ``Linear`` over
  ``(c pt ph pw)``-flattened tubes here: the weights are a reshape of each other;
- transformers' attention has no key bias; a key bias adds ``q . b_k`` to every logit of a query, which the
  softmax cancels, so it is dropped on export and zero on import;
- both use the fixed sin-cos table over ``(t h w)`` token order, exact GELU and pre-norm blocks; the
  export sets ``layer_norm_eps = 1e-5`` (PyTorch's default, the core trunk's) and ``use_mean_pooling =
  False`` so that the final LayerNorm is applied, as in VideoMAE's pretraining encoder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from omnissl.nn import TransformerTrunk, TrunkConfig
from omnissl_video.encoders import VideoViT
from omnissl_video.objectives.decoder import MAEDecoder


def _trunk_to_hf(trunk: TransformerTrunk, prefix: str) -> dict[str, Tensor]:
    out = {}
    dim = trunk.dim
    for i, block in enumerate(trunk.blocks):
        p = f"{prefix}.{i}"
        w, b = block.attn.qkv.weight, block.attn.qkv.bias
        out[f"{p}.attention.attention.query.weight"], out[f"{p}.attention.attention.key.weight"], out[f"{p}.attention.attention.value.weight"] = w.split(dim)
        out[f"{p}.attention.attention.query.bias"], out[f"{p}.attention.attention.value.bias"] = b[:dim], b[2 * dim :]
        out[f"{p}.attention.output.dense.weight"], out[f"{p}.attention.output.dense.bias"] = block.attn.out.weight, block.attn.out.bias
        out[f"{p}.intermediate.dense.weight"], out[f"{p}.intermediate.dense.bias"] = block.mlp[0].weight, block.mlp[0].bias
        out[f"{p}.output.dense.weight"], out[f"{p}.output.dense.bias"] = block.mlp[2].weight, block.mlp[2].bias
        out[f"{p}.layernorm_before.weight"], out[f"{p}.layernorm_before.bias"] = block.norm1.weight, block.norm1.bias
        out[f"{p}.layernorm_after.weight"], out[f"{p}.layernorm_after.bias"] = block.norm2.weight, block.norm2.bias
    return out


def _trunk_from_hf(state: dict[str, Tensor], prefix: str, depth: int, dim: int) -> dict[str, Tensor]:
    out = {}
    for i in range(depth):
        p, q = f"{prefix}.{i}", f"blocks.{i}"
        att = f"{p}.attention.attention"
        out[f"{q}.attn.qkv.weight"] = torch.cat([state[f"{att}.query.weight"], state[f"{att}.key.weight"], state[f"{att}.value.weight"]])
        zeros = torch.zeros(dim, dtype=state[f"{att}.query.weight"].dtype)
        out[f"{q}.attn.qkv.bias"] = torch.cat([state.get(f"{att}.query.bias", zeros), zeros, state.get(f"{att}.value.bias", zeros)])
        out[f"{q}.attn.out.weight"], out[f"{q}.attn.out.bias"] = state[f"{p}.attention.output.dense.weight"], state[f"{p}.attention.output.dense.bias"]
        out[f"{q}.mlp.0.weight"], out[f"{q}.mlp.0.bias"] = state[f"{p}.intermediate.dense.weight"], state[f"{p}.intermediate.dense.bias"]
        out[f"{q}.mlp.2.weight"], out[f"{q}.mlp.2.bias"] = state[f"{p}.output.dense.weight"], state[f"{p}.output.dense.bias"]
        out[f"{q}.norm1.weight"], out[f"{q}.norm1.bias"] = state[f"{p}.layernorm_before.weight"], state[f"{p}.layernorm_before.bias"]
        out[f"{q}.norm2.weight"], out[f"{q}.norm2.bias"] = state[f"{p}.layernorm_after.weight"], state[f"{p}.layernorm_after.bias"]
    return out


def hf_config(encoder: VideoViT, decoder: MAEDecoder | None = None, norm_pix_loss: bool = True):
    """The ``transformers.VideoMAEConfig`` describing ``encoder`` (and ``decoder``)."""
    from transformers import VideoMAEConfig

    trunk = encoder.trunk
    kwargs = {}
    if decoder is not None:
        dtrunk = decoder.trunk
        kwargs = dict(
            decoder_hidden_size=dtrunk.dim, decoder_num_hidden_layers=len(dtrunk.blocks), decoder_num_attention_heads=dtrunk.blocks[0].attn.heads if len(dtrunk.blocks) else 1,
            decoder_intermediate_size=int(dtrunk.config.dim * dtrunk.config.mlp_ratio),
        )
    return VideoMAEConfig(
        image_size=encoder.image_size, patch_size=encoder.patch_size, num_channels=encoder.channels, num_frames=encoder.num_frames,
        tubelet_size=encoder.tubelet_size, hidden_size=trunk.dim, num_hidden_layers=len(trunk.blocks), num_attention_heads=trunk.config.heads,
        intermediate_size=int(trunk.config.dim * trunk.config.mlp_ratio), hidden_act="gelu", hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, layer_norm_eps=1e-5, qv_bias=True, use_mean_pooling=False, norm_pix_loss=norm_pix_loss, **kwargs,
    )


def to_hf_state_dict(encoder: VideoViT, decoder: MAEDecoder | None = None) -> dict[str, Tensor]:
    """transformers parameter names -> tensors (``videomae.``-prefixed when a decoder is given)."""
    base = "videomae." if decoder is not None else ""
    state = {
        f"{base}embeddings.patch_embeddings.projection.weight": encoder.patch_embed.weight.reshape(
            encoder.dim, encoder.channels, encoder.tubelet_size, encoder.patch_size, encoder.patch_size
        ),
        f"{base}embeddings.patch_embeddings.projection.bias": encoder.patch_embed.bias,
        f"{base}layernorm.weight": encoder.trunk.norm.weight,
        f"{base}layernorm.bias": encoder.trunk.norm.bias,
        **_trunk_to_hf(encoder.trunk, f"{base}encoder.layer"),
    }
    if decoder is not None:
        state.update(_trunk_to_hf(decoder.trunk, "decoder.decoder_layers"))
        state.update({
            "encoder_to_decoder.weight": decoder.encoder_to_decoder.weight, "mask_token": decoder.mask_token,
            "decoder.norm.weight": decoder.trunk.norm.weight, "decoder.norm.bias": decoder.trunk.norm.bias,
            "decoder.head.weight": decoder.head.weight, "decoder.head.bias": decoder.head.bias,
        })
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def to_hf(encoder: VideoViT, decoder: MAEDecoder | None = None):
    """A transformers ``VideoMAEModel`` (or ``VideoMAEForPreTraining`` with ``decoder``) with these weights."""
    from transformers import VideoMAEForPreTraining, VideoMAEModel

    config = hf_config(encoder, decoder)
    model = (VideoMAEForPreTraining if decoder is not None else VideoMAEModel)(config)
    missing, unexpected = model.load_state_dict(to_hf_state_dict(encoder, decoder), strict=False)
    # transformers registers the sin-cos tables as plain tensors, not parameters: nothing else may be missing
    if missing or unexpected:
        raise RuntimeError(f"VideoMAE export does not match transformers' parameters: missing {missing}, unexpected {unexpected}")
    return model.eval()


def save_videomae(encoder: VideoViT, directory: str | Path, decoder: MAEDecoder | None = None) -> Path:
    """Write a local transformers checkpoint of ``encoder`` (and ``decoder``) to ``directory``."""
    directory = Path(directory)
    to_hf(encoder, decoder).save_pretrained(directory)
    return directory


def export_hf(encoder: VideoViT, directory: Path, objective=None) -> Path:
    """``EncoderSpec.hf_export`` of ``video.vit``: a ``VideoMAEModel`` (the encoder alone; the objective is not needed)."""
    return save_videomae(encoder, directory)


def load_videomae(directory: str | Path) -> tuple[VideoViT, MAEDecoder | None]:
    """Build a ``VideoViT`` (and ``MAEDecoder`` if the checkpoint is a ``VideoMAEForPreTraining``) from a local directory."""
    from transformers import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEModel

    directory = Path(directory)
    config = VideoMAEConfig.from_pretrained(directory, local_files_only=True)
    pretraining = any("ForPreTraining" in a for a in (config.architectures or []))
    model = (VideoMAEForPreTraining if pretraining else VideoMAEModel).from_pretrained(directory, local_files_only=True)
    state = model.state_dict()
    base = "videomae." if pretraining else ""
    if abs(config.layer_norm_eps - 1e-5) > 1e-12 or config.hidden_act != "gelu":
        raise ValueError(f"{directory}: layer_norm_eps={config.layer_norm_eps}, hidden_act={config.hidden_act!r}; omnissl's trunk uses 1e-5 and exact GELU")
    trunk = TransformerTrunk(TrunkConfig(dim=config.hidden_size, depth=config.num_hidden_layers, heads=config.num_attention_heads,
                                         mlp_ratio=config.intermediate_size / config.hidden_size))
    encoder = VideoViT(config.num_channels, config.num_frames, config.image_size, config.patch_size, config.tubelet_size, trunk)
    ours = {
        "patch_embed.weight": state[f"{base}embeddings.patch_embeddings.projection.weight"].reshape(config.hidden_size, -1),
        "patch_embed.bias": state[f"{base}embeddings.patch_embeddings.projection.bias"],
        **{f"trunk.{k}": v for k, v in _trunk_from_hf(state, f"{base}encoder.layer", config.num_hidden_layers, config.hidden_size).items()},
    }
    if f"{base}layernorm.weight" in state:
        ours["trunk.norm.weight"], ours["trunk.norm.bias"] = state[f"{base}layernorm.weight"], state[f"{base}layernorm.bias"]
    else:  # use_mean_pooling checkpoints have no final norm: an identity LayerNorm is not representable, say so
        raise ValueError(f"{directory}: use_mean_pooling=True checkpoints (fine-tuned classifiers) have no final LayerNorm; load a pretraining checkpoint")
    encoder.load_state_dict(ours)
    decoder = None
    if pretraining:
        decoder = MAEDecoder(config.hidden_size, config.num_channels * config.tubelet_size * config.patch_size**2, encoder.num_tokens,
                             dim=config.decoder_hidden_size, depth=config.decoder_num_hidden_layers, heads=config.decoder_num_attention_heads,
                             mlp_ratio=config.decoder_intermediate_size / config.decoder_hidden_size)
        dec = {
            "encoder_to_decoder.weight": state["encoder_to_decoder.weight"], "mask_token": state["mask_token"],
            "trunk.norm.weight": state["decoder.norm.weight"], "trunk.norm.bias": state["decoder.norm.bias"],
            "head.weight": state["decoder.head.weight"], "head.bias": state["decoder.head.bias"],
            **{f"trunk.{k}": v for k, v in _trunk_from_hf(state, "decoder.decoder_layers", config.decoder_num_hidden_layers, config.decoder_hidden_size).items()},
        }
        decoder.load_state_dict(dec)
    return encoder.eval(), (decoder.eval() if decoder is not None else None)
