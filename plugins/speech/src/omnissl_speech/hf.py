"""Interoperability with HF transformers' ``Wav2Vec2Model`` and ``HubertModel``, both directions.

``save_pretrained(encoder, directory, architecture="wav2vec2" | "hubert")`` writes a transformers checkpoint
(``config.json`` + safetensors) of a :class:`~omnissl_speech.encoders.Wav2Vec2Encoder` that
``transformers.AutoModel.from_pretrained`` loads as a ``Wav2Vec2Model`` or a ``HubertModel``;
``load_pretrained(directory)`` builds the encoder from such a local directory (the ``speech.wav2vec2``
preset read from its HF config), which ``encoder.init_from_hf: <dir>`` uses as an initialisation.
``export_hf(encoder, directory, objective)`` is the ``hf_export`` of the ``speech.wav2vec2`` spec behind
``omnissl export --format hf``: a run trained with ``speech.hubert`` exports a ``HubertModel`` (the
HuBERT-shaped preset: the same stem and context network, no quantizer), any other a ``Wav2Vec2Model``.
Nothing is downloaded; transformers is imported only inside these functions (the ``omnissl-speech[hf]``
extra).

The two models compute the same function, on padded batches with an attention mask, in the layout HF
calls ``do_stable_layer_norm=True`` (fairseq ``layer_norm_first``; ``tests/plugins/speech/test_hf_parity.py``):
- the conv feature extractor is torchaudio's layer-norm mode, HF's ``feat_extract_norm="layer"`` (conv,
  LayerNorm over channels, exact GELU per layer), with ``conv_bias`` as configured;
- ``feature_projection`` is the same LayerNorm + Linear as ``encoder.project``;
- the positional convolution is weight-normalised over ``dim=2`` in both (torchaudio and HF keep
  ``parametrizations.weight.original0`` (g) and ``original1`` (v)), drops its last frame for an even
  kernel, then exact GELU;
- positions are added to the projected features, zero at padding in both, and the pre-norm blocks follow
  with no LayerNorm in between: the encoder must be built with ``input_norm: false`` (the default ``true``
  adds a LayerNorm there, a layout neither HF class has, and export says so);
- the blocks are pre-norm with a final LayerNorm (``encoder.layer_norm``); our fused ``qkv`` projection is
  HF's ``q_proj``/``k_proj``/``v_proj`` stacked, all with biases; both scale by ``head_dim ** -0.5``;
  padded keys are masked in both; every LayerNorm uses eps 1e-5 (``layer_norm_eps``);
- ``masked_spec_embed`` is the objective's mask embedding when the run has one (wav2vec 2.0, HuBERT).

transformers 5 records ``hidden_states`` as the features with positions added, then every layer's output
(before the final LayerNorm); ours are every block's output: HF ``hidden_states[i + 1]`` equals our
``layers[i]``, and ``last_hidden_state`` our tokens. Padded frames are zero in our output and unspecified in
HF's.

Not expressible (a clear error, never a silent approximation): the group-norm feature extractor
(``feat_extract_norm="group"``: wav2vec 2.0 / HuBERT *base*; it normalises each channel over time, so
padding would change valid frames), the post-norm layout (``do_stable_layer_norm=False``), conformer blocks,
adapters, and activations other than exact GELU.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from omnissl.errors import ConfigError, OmnisslError
from omnissl_speech.encoders import Wav2Vec2Config, Wav2Vec2Encoder

ARCHITECTURES = ("wav2vec2", "hubert")
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, used by every norm of our encoder
#: encoder fields that describe the architecture; the HF config decides them on import
ARCHITECTURE_FIELDS = ("conv_layers", "conv_bias", "dim", "depth", "heads", "mlp_ratio", "pos_conv_kernel", "pos_conv_groups", "input_norm", "block")


def _pairs(cfg: Wav2Vec2Config) -> list[tuple[str, str]]:
    """``(our name, transformers name)`` for every tensor that maps one to one (the fused qkv is apart)."""
    pairs = []
    for i in range(len(cfg.conv_layers)):
        parts = ("conv.weight", "conv.bias", "layer_norm.weight", "layer_norm.bias") if cfg.conv_bias else ("conv.weight", "layer_norm.weight", "layer_norm.bias")
        pairs += [(f"feature_extractor.conv_layers.{i}.{p}", f"feature_extractor.conv_layers.{i}.{p}") for p in parts]
    for p in ("weight", "bias"):
        pairs += [(f"project.0.{p}", f"feature_projection.layer_norm.{p}"), (f"project.1.{p}", f"feature_projection.projection.{p}"),
                  (f"trunk.norm.{p}", f"encoder.layer_norm.{p}")]
    pairs += [("pos_conv.conv.bias", "encoder.pos_conv_embed.conv.bias"),
              ("pos_conv.conv.parametrizations.weight.original0", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
              ("pos_conv.conv.parametrizations.weight.original1", "encoder.pos_conv_embed.conv.parametrizations.weight.original1")]
    for i in range(cfg.depth):
        ours, theirs = f"trunk.blocks.{i}", f"encoder.layers.{i}"
        for p in ("weight", "bias"):
            pairs += [(f"{ours}.norm1.{p}", f"{theirs}.layer_norm.{p}"), (f"{ours}.attn.out.{p}", f"{theirs}.attention.out_proj.{p}"),
                      (f"{ours}.norm2.{p}", f"{theirs}.final_layer_norm.{p}"), (f"{ours}.mlp.0.{p}", f"{theirs}.feed_forward.intermediate_dense.{p}"),
                      (f"{ours}.mlp.2.{p}", f"{theirs}.feed_forward.output_dense.{p}")]
    return pairs


def check_exportable(encoder: nn.Module) -> None:
    """Raise a :class:`ConfigError` listing every reason ``encoder`` has no exact transformers counterpart."""
    if not isinstance(encoder, Wav2Vec2Encoder):
        raise OmnisslError(f"{type(encoder).__name__} has no transformers counterpart; only speech.wav2vec2 encoders export (as Wav2Vec2Model or HubertModel)")
    cfg, problems = encoder.cfg, []
    if cfg.block != "transformer":
        problems.append(f"encoder.block: {cfg.block!r}; Wav2Vec2Model/HubertModel have transformer blocks (train with block: transformer)")
    if cfg.input_norm:
        problems.append("encoder.input_norm: true puts a LayerNorm after adding positions, before pre-norm blocks, a layout "
                        "neither HF layout has; train with encoder.input_norm: false (HF's do_stable_layer_norm=True)")
    if cfg.dim * cfg.mlp_ratio != int(cfg.dim * cfg.mlp_ratio):
        problems.append(f"encoder.mlp_ratio: {cfg.mlp_ratio} x dim {cfg.dim} is not a whole intermediate_size")
    if problems:
        raise OmnisslError("cannot export this speech.wav2vec2 encoder to transformers:\n" + "\n".join(f"  - {p}" for p in problems))


def hf_config(encoder: Wav2Vec2Encoder, architecture: str = "wav2vec2", with_mask_embedding: bool = False):
    """The ``transformers.Wav2Vec2Config`` or ``HubertConfig`` describing ``encoder`` (checked exportable).

    Dropouts follow the encoder's ``dropout`` (attention and residual branches); layer drop, SpecAugment
    on features and the other HF-only dropouts are off, as in our encoder. ``mask_time_prob`` is HF's
    default 0.05 only when a mask embedding is exported (HF creates ``masked_spec_embed`` only then).
    """
    from transformers import HubertConfig, Wav2Vec2Config as HFWav2Vec2Config

    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture {architecture!r}: choose one of {ARCHITECTURES}")
    check_exportable(encoder)
    cfg = encoder.cfg
    common = dict(
        hidden_size=cfg.dim, num_hidden_layers=cfg.depth, num_attention_heads=cfg.heads, intermediate_size=int(cfg.dim * cfg.mlp_ratio),
        hidden_act="gelu", hidden_dropout=cfg.dropout, attention_dropout=cfg.dropout, activation_dropout=0.0, feat_proj_dropout=0.0,
        final_dropout=0.0, layerdrop=0.0, layer_norm_eps=LAYER_NORM_EPS, feat_extract_norm="layer", feat_extract_activation="gelu",
        conv_dim=[c for c, _, _ in cfg.conv_layers], conv_kernel=[k for _, k, _ in cfg.conv_layers], conv_stride=[s for _, _, s in cfg.conv_layers],
        conv_bias=cfg.conv_bias, num_conv_pos_embeddings=cfg.pos_conv_kernel, num_conv_pos_embedding_groups=cfg.pos_conv_groups,
        do_stable_layer_norm=True, mask_time_prob=0.05 if with_mask_embedding else 0.0, mask_feature_prob=0.0,
    )
    if architecture == "hubert":
        return HubertConfig(**common, feat_proj_layer_norm=True, conv_pos_batch_norm=False)
    return HFWav2Vec2Config(**common)


def to_hf_state_dict(encoder: Wav2Vec2Encoder, mask_embedding: Tensor | None = None) -> dict[str, Tensor]:
    """transformers parameter names -> tensors of ``encoder`` (and ``masked_spec_embed``)."""
    check_exportable(encoder)
    ours = encoder.state_dict()
    out = {theirs: ours[name] for name, theirs in _pairs(encoder.cfg)}
    for i, block in enumerate(encoder.trunk.blocks):
        att = f"encoder.layers.{i}.attention"
        (out[f"{att}.q_proj.weight"], out[f"{att}.k_proj.weight"], out[f"{att}.v_proj.weight"]) = block.attn.qkv.weight.chunk(3)
        (out[f"{att}.q_proj.bias"], out[f"{att}.k_proj.bias"], out[f"{att}.v_proj.bias"]) = block.attn.qkv.bias.chunk(3)
    if mask_embedding is not None:
        out["masked_spec_embed"] = mask_embedding
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def to_hf(encoder: Wav2Vec2Encoder, architecture: str = "wav2vec2", mask_embedding: Tensor | None = None):
    """A transformers ``Wav2Vec2Model`` or ``HubertModel`` holding ``encoder``'s weights (eval mode)."""
    from transformers import HubertModel, Wav2Vec2Model

    config = hf_config(encoder, architecture, with_mask_embedding=mask_embedding is not None)
    model = (HubertModel if architecture == "hubert" else Wav2Vec2Model)(config)
    missing, unexpected = model.load_state_dict(to_hf_state_dict(encoder, mask_embedding), strict=False)
    if missing or unexpected:  # the mapping is explicit: any difference is a bug, never a tensor left at random
        raise RuntimeError(f"speech.wav2vec2 -> {type(model).__name__}: missing {missing}, unexpected {unexpected}")
    return model.eval()


def save_pretrained(encoder: Wav2Vec2Encoder, directory: str | Path, architecture: str = "wav2vec2", mask_embedding: Tensor | None = None) -> Path:
    """Write a local transformers checkpoint of ``encoder`` to ``directory`` (``AutoModel`` loads it)."""
    directory = Path(directory)
    to_hf(encoder, architecture, mask_embedding).save_pretrained(directory)
    return directory


def export_hf(encoder: nn.Module, directory: Path, objective: nn.Module | None = None) -> Path:
    """``EncoderSpec.hf_export`` of ``speech.wav2vec2``: HuBERT runs give a ``HubertModel``, others a ``Wav2Vec2Model``."""
    from omnissl_speech.objectives.hubert import HuBERTObjective

    architecture = "hubert" if isinstance(objective, HuBERTObjective) else "wav2vec2"
    mask_embedding = getattr(objective, "mask_embedding", None)
    if mask_embedding is not None and tuple(mask_embedding.shape) != (encoder.dim,):
        mask_embedding = None
    return save_pretrained(encoder, directory, architecture, mask_embedding)


def encoder_config_from_hf(config, base: Wav2Vec2Config | None = None, where: str = "transformers config") -> Wav2Vec2Config:
    """The ``speech.wav2vec2`` config of a ``Wav2Vec2Config``/``HubertConfig``; ``base`` keeps the training-only fields.

    Raises a :class:`ConfigError` naming each setting that our encoder cannot express, and each
    architecture field set in ``base`` that disagrees with the checkpoint.
    """
    problems = []
    if config.model_type not in ARCHITECTURES:
        raise ConfigError([f"{where}: model_type {config.model_type!r}; speech.wav2vec2 imports {ARCHITECTURES} checkpoints"])
    if config.feat_extract_norm != "layer":
        problems.append(f"feat_extract_norm={config.feat_extract_norm!r}: the group-norm feature extractor (wav2vec 2.0 / HuBERT base) "
                        "normalises each channel over time, which our padding-exact stem does not offer; use a 'layer' checkpoint (the large models)")
    if not config.do_stable_layer_norm:
        problems.append("do_stable_layer_norm=False: post-norm layers (wav2vec 2.0 / HuBERT base); speech.wav2vec2 has pre-norm blocks")
    for key in ("hidden_act", "feat_extract_activation"):
        if getattr(config, key) != "gelu":
            problems.append(f"{key}={getattr(config, key)!r}: speech.wav2vec2 uses exact GELU")
    if abs(config.layer_norm_eps - LAYER_NORM_EPS) > 1e-12:
        problems.append(f"layer_norm_eps={config.layer_norm_eps}: speech.wav2vec2's LayerNorms use {LAYER_NORM_EPS}")
    if getattr(config, "add_adapter", False) or getattr(config, "adapter_attn_dim", None) is not None:
        problems.append("adapters (add_adapter / adapter_attn_dim) have no counterpart in speech.wav2vec2")
    if config.model_type == "hubert" and (not config.feat_proj_layer_norm or getattr(config, "conv_pos_batch_norm", False)):
        problems.append("feat_proj_layer_norm=False or conv_pos_batch_norm=True: speech.wav2vec2 has a projection LayerNorm and weight-normalised positions")
    if problems:
        raise ConfigError(problems, source=where)
    arch = dict(
        conv_layers=[tuple(x) for x in zip(config.conv_dim, config.conv_kernel, config.conv_stride)], conv_bias=bool(config.conv_bias),
        dim=config.hidden_size, depth=config.num_hidden_layers, heads=config.num_attention_heads,
        mlp_ratio=config.intermediate_size / config.hidden_size, pos_conv_kernel=config.num_conv_pos_embeddings,
        pos_conv_groups=config.num_conv_pos_embedding_groups, input_norm=False, block="transformer",
    )
    base = base or Wav2Vec2Config()
    clashes = [f"encoder.{k}: {getattr(base, k)!r} but {where} has {arch[k]!r}; remove it from the encoder config (init_from_hf sets it)"
               for k in ARCHITECTURE_FIELDS if k in base.model_fields_set and _normalised(getattr(base, k)) != _normalised(arch[k])]
    if clashes:
        raise ConfigError(clashes, source=where)
    return base.model_copy(update=arch)


def _normalised(value):
    return [tuple(v) for v in value] if isinstance(value, list) else value


def load_pretrained(directory: str | Path, base: Wav2Vec2Config | None = None) -> tuple[Wav2Vec2Encoder, Tensor | None]:
    """Build a ``speech.wav2vec2`` encoder from a local ``Wav2Vec2Model``/``HubertModel`` directory.

    Returns the encoder (eval mode) and HF's ``masked_spec_embed`` (``None`` when the checkpoint has none).
    ``base``: the run's encoder config; its training-only fields (dropout, feature_grad_mult) are kept.
    """
    from transformers import AutoConfig, AutoModel

    directory = Path(directory)
    where = f"encoder.init_from_hf: {directory}"
    if not (directory / "config.json").is_file():
        raise ConfigError([f"{where} has no config.json; give a local folder written by save_pretrained / omnissl export --format hf (nothing is downloaded)"])
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    cfg = encoder_config_from_hf(config, base, where)
    model = AutoModel.from_pretrained(directory, local_files_only=True)
    state = model.state_dict()
    ours = {name: state[theirs] for name, theirs in _pairs(cfg)}
    for i in range(cfg.depth):
        att = f"encoder.layers.{i}.attention"
        ours[f"trunk.blocks.{i}.attn.qkv.weight"] = torch.cat([state[f"{att}.{p}_proj.weight"] for p in "qkv"])
        ours[f"trunk.blocks.{i}.attn.qkv.bias"] = torch.cat([state[f"{att}.{p}_proj.bias"] for p in "qkv"])
    encoder = Wav2Vec2Encoder(cfg)
    encoder.load_state_dict(ours)  # strict: every tensor of our encoder comes from the checkpoint
    mask = state.get("masked_spec_embed")
    print(f"speech.wav2vec2: initialised from {type(model).__name__} at {directory} "
          f"({cfg.depth} x {cfg.dim}, {len(cfg.conv_layers)} conv layers, {sum(p.numel() for p in encoder.parameters()):,} parameters)")
    return encoder.eval(), (mask.detach().clone() if mask is not None else None)
