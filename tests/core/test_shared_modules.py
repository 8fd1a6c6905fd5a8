"""Shared modules: one trunk instance referenced by several tasks (the cross-domain run)."""

import torch
from pydantic import Field

from omnissl import ComponentConfig, EncoderSpec, Encoded, Encoder, hookimpl
from omnissl.config import load_config
from omnissl.engine import Trainer
from omnissl.nn import TransformerTrunk, TrunkConfig, masked_mean
from omnissl.plugins import PluginManager


class RowTokensConfig(ComponentConfig):
    """Each feature of a toy row becomes a token; ``trunk`` is a config or ``"@shared.<name>"``."""

    trunk: TrunkConfig | str = Field(default_factory=lambda: TrunkConfig(dim=16, depth=1, heads=2))


class RowTokens(Encoder):
    def __init__(self, features: int, trunk: TransformerTrunk):
        super().__init__()
        self.value = torch.nn.Parameter(torch.randn(features, trunk.dim) * 0.1)
        self.trunk, self.output_dim = trunk, trunk.dim

    def forward(self, batch, keep=None):
        tokens = self.trunk(batch.unsqueeze(-1) * self.value, keep=keep)
        return Encoded(pooled=masked_mean(tokens, None), tokens=tokens)


def build(cfg, ctx):
    trunk = ctx.resolve_shared(cfg.trunk)
    return RowTokens(ctx.data.data.shape[1], trunk if isinstance(trunk, torch.nn.Module) else TransformerTrunk(trunk))


class Plugin:
    @hookimpl
    def omnissl_encoders(self):
        yield EncoderSpec(name="test.row_tokens", config=RowTokensConfig, factory=build)


def test_two_tasks_share_one_trunk(toy_config):
    pm = PluginManager(autoload=False)
    pm.register(Plugin(), name="test")
    toy_config["shared"] = {"trunk": {"name": "core.transformer_trunk", "dim": 16, "depth": 1, "heads": 2}}
    first = toy_config["tasks"][0]
    first["encoder"] = {"name": "test.row_tokens", "trunk": "@shared.trunk"}
    second = {**first, "name": "other", "data": {"name": "toy.clusters", "num_samples": 128, "dim": 5, "seed": 1}}
    toy_config["tasks"].append(second)
    toy_config["engine"]["steps"] = 4
    trainer = Trainer(load_config(toy_config, pm=pm), pm)
    a, b = (trainer.model.tasks[n].encoder.trunk for n in ("toy", "other"))
    assert a is b is trainer.model.shared["trunk"]
    optimised = [p for g in trainer.optimizer.param_groups for p in g["params"]]
    assert len(optimised) == len({id(p) for p in optimised})  # the shared trunk is optimised once
    before = a.blocks[0].attn.qkv.weight.detach().clone()
    trainer.fit()
    assert not torch.equal(before, a.blocks[0].attn.qkv.weight)
