"""HuBERT: predict k-means cluster ids of masked frames (Hsu et al., IEEE/ACM TASLP 2021).

Reference: fairseq ``HubertModel`` (``compute_nce``: cosine similarity between projected context outputs
and learned cluster embeddings, temperature 0.1, loss on masked frames only; ``features_pen`` weighted 10,
``loss_weights: [10]`` in the base config) and the paper's two iterations: targets from k-means on 39-d
MFCC + delta + delta-delta frames, then on an intermediate layer of the first model.

How targets are made (``target``):
    ``"features"`` — iteration 1: k-means on 39-d MFCC + delta + delta-delta frames of the waveforms
    (``mfcc: true``, :func:`omnissl_speech.features.mfcc_deltas`, as fairseq's ``dump_mfcc_feature.py``)
    or on the data source's own frames (``mfcc: false``), fitted once when the objective is built.
    ``"checkpoint"`` — iteration 2: load the encoder from ``target_checkpoint`` (a run's ``last.pt``)
    into a frozen copy, k-means its layer ``target_layer`` frames, predict those ids.
    ``recluster_step: N`` — iteration 2 in the same run: at step ``N`` the current encoder is frozen
    into the target copy and its layer ``target_layer`` is re-clustered.
Pair with ``speech.span_masking`` views.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from omnissl.errors import ConfigError
from omnissl.interfaces import Objective, ObjectiveOutput, Progress, Views
from omnissl.specs import BuildContext, ComponentConfig
from omnissl_speech.clustering import assign, collect_frames, kmeans, load_encoder_weights, resample_targets
from omnissl_speech.features import mfcc_deltas


class HuBERTConfig(ComponentConfig):
    """HuBERT objective settings.

    Attributes:
        num_clusters: k-means ``K`` (default 100, iteration 1 of the paper; 500 in iteration 2).
        target: ``"features"`` or ``"checkpoint"`` (default ``"features"``; see the module docstring).
        mfcc: cluster 39-d Kaldi MFCC + delta + delta-delta of the waveforms, the paper's iteration-1
            features (default True; needs ``data.keep_waveform: true``); ``false`` clusters the source's frames.
        target_checkpoint: run checkpoint whose encoder gives iteration-2 targets (``target: checkpoint``).
        target_task: the task of that checkpoint (default ``None``: its only task).
        target_layer: 1-based block whose output is clustered (default 2; the paper uses layer 6 of 12).
        recluster_step: re-cluster the current model's ``target_layer`` at this step (default ``None``).
        final_dim: projection width (default 64). temperature: cosine logit temperature (default 0.1).
        max_frames: frames sampled for k-means (default 50000). kmeans_iters: Lloyd iterations (default 25).
        feature_penalty: weight of the stem's feature L2 penalty (default 10, fairseq's ``loss_weights``;
            zero-valued for stems without a convolutional feature encoder).
    """

    num_clusters: int = Field(100, ge=2)
    target: Literal["features", "checkpoint"] = "features"
    mfcc: bool = True
    target_checkpoint: str | None = None
    target_task: str | None = None
    target_layer: int = Field(2, ge=1)
    recluster_step: int | None = Field(None, ge=1)
    final_dim: int = Field(64, gt=0)
    temperature: float = Field(0.1, gt=0)
    max_frames: int = Field(50_000, ge=1)
    kmeans_iters: int = Field(25, ge=1)
    feature_penalty: float = Field(10.0, ge=0)


class HuBERTObjective(Objective):
    """Masked prediction of cluster ids with cosine logits against learned cluster embeddings.

    Buffers ``feature_centroids``, ``layer_centroids``, ``iteration`` (1 or 2) and the frozen
    ``target_encoder`` are saved in checkpoints. Logs ``masked_ce``, ``masked_accuracy`` and ``iteration``.
    """

    def __init__(self, encoder, source, cfg: HuBERTConfig, seed: int = 0):
        super().__init__()
        self.cfg, self.seed = cfg, seed
        dim = encoder.output_dim
        self.mask_embedding = nn.Parameter(torch.empty(dim).uniform_())
        self.final_proj = nn.Linear(dim, cfg.final_dim)
        self.cluster_embeddings = nn.Parameter(torch.empty(cfg.num_clusters, cfg.final_dim).uniform_())  # fairseq label_embs_concat
        # plain references (not submodules): they belong to the task and the engine
        self._student, self._source = [encoder], source
        if cfg.mfcc and cfg.target == "features" and source is not None and getattr(source, "has_waveform", True) is False:
            raise ConfigError(["objective.mfcc: HuBERT's MFCC targets are computed from waveforms but the data source has none; "
                               "set data.keep_waveform: true (or objective.mfcc: false to cluster the source's frames)"])
        self.sample_rate = getattr(source, "sample_rate", 16000)
        self.target_encoder = None
        if cfg.target == "checkpoint" or cfg.recluster_step is not None:
            self.target_encoder = copy.deepcopy(encoder).requires_grad_(False).eval()
        self.register_buffer("iteration", torch.tensor(1))
        # both centroid tables exist from the start so checkpoints keep one layout across iterations
        self.register_buffer("layer_centroids", torch.zeros(cfg.num_clusters, dim) if self.target_encoder is not None else torch.zeros(0))
        if cfg.target == "checkpoint":
            if not cfg.target_checkpoint:
                raise ConfigError(["objective.target_checkpoint: required with target: checkpoint (a run's checkpoints/last.pt)"])
            load_encoder_weights(self.target_encoder, cfg.target_checkpoint, cfg.target_task)
            self.register_buffer("feature_centroids", torch.zeros(0))
            self.layer_centroids.copy_(self._fit_layer_centroids())
            self.iteration.fill_(2)
        else:
            self.register_buffer("feature_centroids", self._fit_feature_centroids())

        # a host-side mirror of the buffer so the training step never reads a device tensor
        self.current_iteration = int(self.iteration)
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "current_iteration", int(module.iteration)))

    @property
    def centroids(self) -> Tensor:
        """The cluster centres targets are assigned to in the current iteration."""
        return self.feature_centroids if self.current_iteration == 1 else self.layer_centroids

    # ------------------------------------------------------------------------------------ targets
    def _target_features(self, batch) -> tuple[Tensor, Tensor]:
        """Iteration-1 clustering frames ``(B, T, F)`` and their padding mask ``(B, T)``."""
        if not self.cfg.mfcc:
            return batch.features, batch.padding_mask
        if batch.waveform is None:
            raise ValueError("speech.hubert with mfcc: true needs waveforms in the batch; set data.keep_waveform: true")
        return mfcc_deltas(batch.waveform, batch.waveform_lengths, self.sample_rate)

    def _fit_feature_centroids(self) -> Tensor:
        if self._source is None:
            raise ValueError("speech.hubert builds its iteration-1 targets from the task's data source; none was given")
        frames = collect_frames(self._source, self._target_features, self.cfg.max_frames, seed=self.seed)
        return kmeans(frames, self.cfg.num_clusters, self.cfg.kmeans_iters, self.seed)

    def _layer_frames(self, encoder, batch) -> tuple[Tensor, Tensor]:
        z, padding = encoder.local_features(batch)
        layers = encoder.contextualise(z, padding).layers
        if self.cfg.target_layer > len(layers):
            raise ValueError(f"objective.target_layer={self.cfg.target_layer} but the encoder has {len(layers)} layers")
        return layers[self.cfg.target_layer - 1], padding

    @torch.no_grad()
    def _fit_layer_centroids(self) -> Tensor:
        self.target_encoder.eval()
        frames = collect_frames(self._source, lambda b: self._layer_frames(self.target_encoder, b), self.cfg.max_frames, seed=self.seed)
        return kmeans(frames, self.cfg.num_clusters, self.cfg.kmeans_iters, self.seed)

    @torch.no_grad()
    def targets(self, batch, frame_padding: Tensor) -> Tensor:
        """Cluster ids ``(B, T')`` on the encoder's frame grid."""
        if self.current_iteration == 1:
            features, padding = self._target_features(batch)
            return resample_targets(assign(features, self.centroids), padding, frame_padding)
        self.target_encoder.eval()
        frames, _ = self._layer_frames(self.target_encoder, batch)
        return assign(frames, self.centroids)

    @torch.no_grad()
    def recluster(self) -> None:
        """Iteration 2 now: freeze the current encoder as the target model and cluster its layer."""
        student = self._student[0]
        self.target_encoder.load_state_dict(student.state_dict())
        self.layer_centroids.copy_(self._fit_layer_centroids())
        self.iteration.fill_(2)
        self.current_iteration = 2

    # ------------------------------------------------------------------------------------- the loss
    def forward(self, encoder, views: Views) -> ObjectiveOutput:
        batch, mask = views.inputs[0], views.info["mask"]
        stem = encoder.stem(batch)
        z, padding = stem.z, stem.padding_mask
        if mask.shape != padding.shape:
            raise ValueError(f"span mask {tuple(mask.shape)} does not match the encoder's frames {tuple(padding.shape)}")
        target = self.targets(views.original if views.original is not None else batch, padding)
        out = encoder.contextualise(z, padding, mask=mask, mask_embedding=self.mask_embedding)
        pred = F.normalize(self.final_proj(out.tokens).float(), dim=-1)
        logits = pred @ F.normalize(self.cluster_embeddings.float(), dim=-1).T / self.cfg.temperature
        nll = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        weight = mask.float()
        masked_ce = (nll * weight).sum() / weight.sum().clamp_min(1.0)
        accuracy = ((logits.argmax(-1) == target).float() * weight).sum() / weight.sum().clamp_min(1.0)
        loss = masked_ce + self.cfg.feature_penalty * stem.penalty
        return ObjectiveOutput(loss=loss, logs={
            "masked_ce": masked_ce.detach(), "masked_accuracy": accuracy.detach(), "feature_penalty": stem.penalty.detach(),
            "iteration": self.iteration.float(),
        })

    def after_step(self, progress: Progress) -> None:
        if self.cfg.recluster_step is not None and progress.step == self.cfg.recluster_step:
            was_training = self._student[0].training
            self.recluster()
            self._student[0].train(was_training)

    @classmethod
    def build(cls, cfg: HuBERTConfig, ctx: BuildContext) -> HuBERTObjective:
        return cls(ctx.encoder, ctx.data, cfg, ctx.seed)
