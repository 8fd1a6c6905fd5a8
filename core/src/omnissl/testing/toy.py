"""The toy modality: labelled Gaussian clusters in R^d, an MLP encoder and noise + dropout views.

Small enough for the quickstart before any domain plugin, engine tests and the overhead benchmark, and
real enough that a probe on SimCLR features beats a random encoder.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from omnissl.data import TensorSource
from omnissl.interfaces import Encoded, Encoder, ViewGenerator, Views
from omnissl.specs import BuildContext, ComponentConfig


class ToyDataConfig(ComponentConfig):
    """``num_samples`` (512), ``dim`` (16), ``num_classes`` (4), cluster ``noise`` (1.0), data ``seed`` (0)."""

    num_samples: int = Field(512, ge=2)
    dim: int = Field(16, gt=0)
    num_classes: int = Field(4, ge=2)
    noise: float = Field(1.0, ge=0)
    seed: int = 0


def toy_source(cfg: ToyDataConfig, ctx: BuildContext | None = None) -> TensorSource:
    """Clusters centred on random unit directions scaled by 3, with a 60/20/20 train/val/test split."""
    g = torch.Generator().manual_seed(cfg.seed)
    centres = torch.nn.functional.normalize(torch.randn(cfg.num_classes, cfg.dim, generator=g), dim=1) * 3.0
    y = torch.randint(cfg.num_classes, (cfg.num_samples,), generator=g)
    x = centres[y] + cfg.noise * torch.randn(cfg.num_samples, cfg.dim, generator=g)
    perm = torch.randperm(cfg.num_samples, generator=g)
    a, b = int(0.6 * cfg.num_samples), int(0.8 * cfg.num_samples)
    return TensorSource(x, labels={"class": y}, splits={"train": perm[:a], "val": perm[a:b], "test": perm[b:]})


class ToyMLPConfig(ComponentConfig):
    """``hidden_dim`` (64) and ``output_dim`` (32) of a two-layer MLP encoder."""

    hidden_dim: int = Field(64, gt=0)
    output_dim: int = Field(32, gt=0)


class ToyMLPEncoder(Encoder):
    """``(B, dim) -> Encoded(pooled=(B, output_dim))``."""

    def __init__(self, in_dim: int, cfg: ToyMLPConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, cfg.hidden_dim), nn.ReLU(), nn.Linear(cfg.hidden_dim, cfg.output_dim))
        self.output_dim = cfg.output_dim

    def forward(self, batch: Tensor, keep: Tensor | None = None) -> Encoded:
        return Encoded(pooled=self.net(batch))


def toy_encoder(cfg: ToyMLPConfig, ctx: BuildContext) -> ToyMLPEncoder:
    in_dim = ctx.data.data.shape[1] if ctx.data is not None else 16
    return ToyMLPEncoder(in_dim, cfg)


class ToyNoiseConfig(ComponentConfig):
    """Gaussian ``sigma`` (0.3) and feature ``drop`` probability (0.1) per view; ``num_views`` (2)."""

    sigma: float = Field(0.3, ge=0)
    drop: float = Field(0.1, ge=0, lt=1)
    num_views: int = Field(2, ge=1)


class ToyNoiseViews(ViewGenerator):
    """Each view: ``x * bernoulli(1 - drop) + sigma * noise``, drawn batched from the given generator."""

    def __init__(self, cfg: ToyNoiseConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, batch: Tensor, generator: torch.Generator) -> Views:
        views = []
        for _ in range(self.cfg.num_views):
            keep = torch.rand(batch.shape, generator=generator, device=batch.device) >= self.cfg.drop
            noise = torch.randn(batch.shape, generator=generator, device=batch.device)
            views.append(batch * keep + self.cfg.sigma * noise)
        return Views(inputs=views, original=batch)


def example_batch() -> Tensor:
    return toy_source(ToyDataConfig(num_samples=8)).data


def toy_run_config(out_dir: str = "runs/toy-test", steps: int = 20) -> dict:
    """A small valid run config (SimCLR on toy clusters, CPU) as a mapping, for tests and examples."""
    return {
        "seed": 0,
        "tasks": [
            {
                "name": "toy",
                "data": {"name": "toy.clusters", "num_samples": 256, "dim": 8},
                "encoder": {"name": "toy.mlp", "hidden_dim": 32, "output_dim": 16},
                "views": {"name": "toy.noise", "sigma": 0.3, "drop": 0.1},
                "objective": {"name": "core.simclr", "hidden_dim": 32, "proj_dim": 16},
            }
        ],
        "engine": {"steps": steps, "batch_size": 64, "optimizer": {"name": "adamw", "lr": 0.003}, "device": "cpu"},
        "logging": {"out_dir": out_dir, "log_every": 5, "progress": False},
    }
