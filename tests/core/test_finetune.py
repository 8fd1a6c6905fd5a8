"""core.finetune: trains a copy of the encoder with a head, against a random init, on every modality's data."""

import pytest
import torch

from omnissl.evaluation.api import EvalRun
from omnissl.evaluation.finetune import FinetuneConfig, finetune, finetune_evaluator
from omnissl.plugins import PluginManager
from omnissl.specs import BuildContext
from omnissl.testing import toy


def _run(pm, modality_name, encoder_name=None):
    modality = pm.registry.get("modalities", modality_name)
    data = modality.example_data()
    ctx = BuildContext(data=data)
    spec = pm.registry.get("encoders", encoder_name or modality.encoders[0])

    def build(seed):
        torch.manual_seed(seed)
        return spec.build({}, ctx)

    return EvalRun(encoder=build(0), data=data, device=torch.device("cpu"), random_encoder=lambda: build(1))


def test_finetuning_learns_and_leaves_the_runs_encoder_untouched():
    source = toy.toy_source(toy.ToyDataConfig(num_samples=200, dim=8))
    encoder = toy.ToyMLPEncoder(8, toy.ToyMLPConfig(hidden_dim=32, output_dim=16))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    run = EvalRun(encoder=encoder, data=source, device=torch.device("cpu"),
                  random_encoder=lambda: toy.ToyMLPEncoder(8, toy.ToyMLPConfig(hidden_dim=32, output_dim=16)))
    result = finetune_evaluator(FinetuneConfig(epochs=15, encoder_lr=1e-3, head_lr=1e-2, batch_size=32), BuildContext())(run)
    chance = 1 / (int(source.labels["class"].max()) + 1)
    assert result.metrics["pretrained/test_acc"] > chance + 0.3 and result.metrics["random/test_acc"] > chance + 0.3
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    assert [row["initialisation"] for row in result.rows] == ["pretrained encoder", "random encoder"]


def test_the_encoder_itself_is_trained_not_only_the_head():
    source = toy.toy_source(toy.ToyDataConfig(num_samples=64, dim=8))
    encoder = toy.ToyMLPEncoder(8, toy.ToyMLPConfig(hidden_dim=16, output_dim=8))
    first = next(encoder.parameters()).detach().clone()
    splits = {"train": torch.arange(40), "val": torch.arange(40, 52), "test": torch.arange(52, 64)}
    finetune(encoder, source, source.labels["class"], splits, FinetuneConfig(epochs=2), 0, torch.device("cpu"))
    assert not torch.equal(first, next(encoder.parameters()))
    frozen = toy.ToyMLPEncoder(8, toy.ToyMLPConfig(hidden_dim=16, output_dim=8))
    first = next(frozen.parameters()).detach().clone()
    finetune(frozen, source, source.labels["class"], splits, FinetuneConfig(epochs=2, encoder_lr=0.0, weight_decay=0.0), 0, torch.device("cpu"))
    assert torch.equal(first, next(frozen.parameters()))  # encoder_lr 0: only the head moves


@pytest.mark.parametrize("modality", ["tabular.rows", "speech.utterances", "graph.nodes", "video.clips", "medical.volumes"])
def test_finetune_runs_on_each_domains_example_data(modality):
    pm = PluginManager()
    if modality not in pm.registry.specs["modalities"]:
        pytest.skip(f"{modality} is not registered (plugin not installed)")
    run = _run(pm, modality)
    label = sorted(run.data.labels)[0]
    result = finetune_evaluator(FinetuneConfig(label=label, epochs=2, seeds=1, batch_size=8), BuildContext())(run)
    assert set(result.metrics) >= {"pretrained/test_acc", "random/test_acc"}
    assert all(0.0 <= result.metrics[k] <= 1.0 for k in ("pretrained/test_acc", "random/test_acc"))
