"""Registration hooks of the tabular plugin: tables, the feature-token transformer, T-JEPA, SCARF and VIME.

Each hook imports the modules it registers when it is called, so that ``omnissl configs list`` (which
calls only ``omnissl_config_dirs``) starts without torch.
"""

from __future__ import annotations

from importlib.resources import files

from omnissl import hookimpl
from omnissl.specs import DatasetSpec, EncoderSpec, EvaluatorSpec, ModalitySpec, ObjectiveSpec, ViewGeneratorSpec


def _example_batch():
    from omnissl_tabular.datasets import example_source

    source = example_source()
    return source.batch(source.pretrain_index.new_tensor(list(range(8))))


@hookimpl
def omnissl_modalities():
    from omnissl_tabular.datasets import example_source

    yield ModalitySpec(
        name="tabular.rows",
        summary='Table rows: {"num": (B, F_num) float32 scaled numericals, "cat": (B, F_cat) int64 category ids}.',
        example_batch=_example_batch,
        example_data=example_source,
        encoders=("tabular.transformer",),
        views=("tabular.tjepa_masking", "tabular.marginal_corruption"),
        objectives=("tabular.tjepa", "tabular.scarf", "tabular.vime"),
        objective_pairs={
            "tabular.tjepa": ("tabular.transformer", "tabular.tjepa_masking"),
            "tabular.scarf": ("tabular.transformer", "tabular.marginal_corruption"),
            "tabular.vime": ("tabular.transformer", "tabular.marginal_corruption"),
        },
    )


@hookimpl
def omnissl_datasets():
    from omnissl_tabular.datasets import CSVTableConfig, SklearnTableConfig, csv_source, sklearn_source
    from omnissl_tabular.examples import sklearn_example, write_csv

    yield DatasetSpec(
        name="tabular.csv", modality="tabular.rows", config=CSVTableConfig, factory=csv_source, example=write_csv,
        summary="CSV or Parquet table with schema inference, train-only scaling and an optional separate test file.",
    )
    yield DatasetSpec(
        name="tabular.sklearn", modality="tabular.rows", config=SklearnTableConfig, factory=sklearn_source, example=sklearn_example,
        summary="scikit-learn's bundled tables (breast_cancer, wine, digits); no download.",
    )


@hookimpl
def omnissl_encoders():
    from omnissl_tabular.encoders import TabularTransformerConfig, build_tabular_transformer

    yield EncoderSpec(
        name="tabular.transformer", config=TabularTransformerConfig, factory=build_tabular_transformer,
        summary="Feature tokenizer + [REG] tokens + transformer trunk (FT-Transformer / T-JEPA encoder).",
    )


@hookimpl
def omnissl_view_generators():
    from omnissl_tabular.corruption import MarginalCorruptionConfig, build_marginal_corruption
    from omnissl_tabular.masking import TJEPAMaskingConfig, build_tjepa_masking

    yield ViewGeneratorSpec(
        name="tabular.tjepa_masking", config=TJEPAMaskingConfig, factory=build_tjepa_masking,
        summary="T-JEPA context / target feature sets drawn from share ranges (Thimonier et al. 2025).",
    )
    yield ViewGeneratorSpec(
        name="tabular.marginal_corruption", config=MarginalCorruptionConfig, factory=build_marginal_corruption,
        summary="Replace features by draws from their empirical marginal (SCARF, VIME).",
    )


@hookimpl
def omnissl_objectives():
    from omnissl_tabular.scarf import SCARFConfig, SCARFObjective
    from omnissl_tabular.tjepa import TJEPAConfig, TJEPAObjective
    from omnissl_tabular.vime import VIMEConfig, VIMEObjective

    yield ObjectiveSpec(
        name="tabular.tjepa", config=TJEPAConfig, factory=TJEPAObjective.build,
        summary="T-JEPA: predict EMA-target latents of target features from context features (Thimonier et al. 2025).",
    )
    yield ObjectiveSpec(
        name="tabular.scarf", config=SCARFConfig, factory=SCARFObjective.build,
        summary="SCARF: NT-Xent between a row and its randomly corrupted copy (Bahri et al. 2022).",
    )
    yield ObjectiveSpec(
        name="tabular.vime", config=VIMEConfig, factory=VIMEObjective.build,
        summary="VIME self-supervised task: mask estimation + feature reconstruction (Yoon et al. 2020).",
    )


@hookimpl
def omnissl_evaluators():
    from omnissl_tabular.probe import TabularProbeConfig, build_probe

    yield EvaluatorSpec(
        name="tabular.probe", config=TabularProbeConfig, factory=build_probe,
        summary="Linear and MLP heads on frozen representations vs raw features and a random encoder (mean ± std).",
    )


@hookimpl
def omnissl_config_dirs():
    yield files("omnissl_tabular") / "configs"
