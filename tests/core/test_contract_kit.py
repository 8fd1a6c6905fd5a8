"""The contract kit covers datasets and evaluators, and fails on the defects it promises to catch."""

import pytest
import torch

from omnissl.data import TensorSource
from omnissl.evaluation.api import EvalResult
from omnissl.plugins import PluginManager
from omnissl.specs import DatasetSpec, EvaluatorSpec, NoConfig
from omnissl.testing.contracts import check_dataset, check_evaluator, check_plugin, check_source


def test_core_run_covers_its_dataset_and_evaluators():
    ran = check_plugin(PluginManager(autoload=False), "core")
    assert {"dataset[toy.clusters]", "evaluator[core.linear_probe]", "evaluator[core.knn_probe]"} <= set(ran)


class ShuffledSource(TensorSource):
    """Returns a different batch for the same indices: the defect check_source must catch."""

    def batch(self, indices):
        return super().batch(indices) + torch.randn(len(indices), 1)


def test_check_source_rejects_nondeterministic_batches_and_bad_splits():
    check_source(TensorSource(torch.ones(6, 2), {"y": torch.zeros(6)}, {"train": torch.arange(4)}), "ok")
    with pytest.raises(AssertionError, match="same indices differs"):
        check_source(ShuffledSource(torch.ones(6, 2)), "shuffled")
    with pytest.raises(AssertionError, match="indexes past the labels"):
        check_source(TensorSource(torch.ones(6, 2), {"y": torch.zeros(6)}, {"test": torch.tensor([7])}), "bad-split")


def test_check_dataset_builds_from_the_written_example_and_requires_one(tmp_path):
    def example(folder):
        (folder / "rows.pt").write_bytes(b"")
        return {}

    def factory(cfg, ctx):
        assert (tmp_path / "d" / "rows.pt").is_file()  # the example's file exists when the factory reads it
        return TensorSource(torch.ones(3, 2))

    check_dataset(DatasetSpec(name="demo.rows", config=NoConfig, factory=factory, example=example), tmp_path / "d")
    with pytest.raises(AssertionError, match="has no example"):
        check_dataset(DatasetSpec(name="demo.rows", config=NoConfig, factory=factory), tmp_path / "e")


def test_check_evaluator_rejects_non_finite_metrics():
    pm = PluginManager(autoload=False)
    modality = pm.registry.get("modalities", "toy.vectors")
    nan = EvaluatorSpec(name="demo.nan", config=NoConfig, factory=lambda cfg, ctx: lambda run: EvalResult("nan", {"acc": float("nan")}))
    with pytest.raises(AssertionError, match="finite"):
        check_evaluator(nan, modality, modality.encoders[0], pm.registry)


def test_kit_checks_every_dataset_and_fails_one_without_an_example():
    from omnissl import DatasetSpec, NoConfig, hookimpl
    from omnissl.plugins import PluginManager
    from omnissl.testing.contracts import check_plugin, modality_cases

    class Plugin:
        @hookimpl
        def omnissl_datasets(self):
            yield DatasetSpec(name="demo.no_example", config=NoConfig, factory=lambda cfg, ctx: None)

    pm = PluginManager(autoload=False)
    pm.register(Plugin(), name="demo")
    assert "dataset[demo.no_example]" in [name for name, _, _ in modality_cases(pm, "demo")]
    with pytest.raises(AssertionError, match="demo.no_example: DatasetSpec has no example"):
        check_plugin(pm, "demo")


def test_every_installed_dataset_gives_an_example():
    from omnissl.plugins import PluginManager

    missing = [name for name, spec in PluginManager().registry.specs["datasets"].items() if spec.example is None]
    assert not missing, f"datasets the contract kit cannot build (no DatasetSpec.example): {missing}"
