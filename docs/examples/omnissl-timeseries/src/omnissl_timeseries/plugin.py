"""Registration hooks of the example time-series plugin.

Each hook imports the modules it registers when it is called: ``omnissl configs list`` calls only
``omnissl_config_dirs``, so it never imports torch through this plugin.
"""

from __future__ import annotations

from importlib.resources import files

from omnissl import DatasetSpec, EncoderSpec, EvaluatorSpec, ModalitySpec, ViewGeneratorSpec, hookimpl


def _example_data():
    from omnissl_timeseries import datasets

    return datasets.sines(datasets.SinesConfig(num_series=48, length=32))


@hookimpl
def omnissl_modalities():
    yield ModalitySpec(
        name="timeseries.series", summary="(B, T) float series; labels by name in source.labels.",
        example_batch=lambda: _example_data().data[:8],  # seeded: the same batch on every call
        example_data=_example_data,
        encoders=("timeseries.patch_transformer",), views=("timeseries.jitter_scale",),
        objectives=("core.simclr", "core.vicreg"), evaluators=("timeseries.probe",),
    )


@hookimpl
def omnissl_datasets():
    from omnissl_timeseries import datasets

    yield DatasetSpec(name="timeseries.csv", modality="timeseries.series", config=datasets.CSVSeriesConfig,
                      factory=datasets.csv_series, example=datasets.write_example_csv,
                      summary="A CSV with a header, one series per row and an optional label column.")
    yield DatasetSpec(name="timeseries.sines", modality="timeseries.series", config=datasets.SinesConfig,
                      factory=datasets.sines, example=lambda folder: {"num_series": 16, "length": 32},
                      summary="Generated sines in frequency bands (labelled).")


@hookimpl
def omnissl_encoders():
    from omnissl_timeseries import encoders

    yield EncoderSpec(name="timeseries.patch_transformer", config=encoders.PatchConfig, factory=encoders.build_encoder,
                      summary="Patch stem + the core's transformer trunk (shareable across tasks).")


@hookimpl
def omnissl_view_generators():
    from omnissl_timeseries import views

    yield ViewGeneratorSpec(name="timeseries.jitter_scale", config=views.JitterScaleConfig,
                            factory=lambda cfg, ctx: views.JitterScale(cfg), summary="Two jitter-and-scale views.")


@hookimpl
def omnissl_evaluators():
    from omnissl_timeseries import evaluators

    yield EvaluatorSpec(name="timeseries.probe", config=evaluators.SeriesProbeConfig, factory=evaluators.build_probe,
                        summary="Linear probe vs raw series and a random encoder.")


@hookimpl
def omnissl_config_dirs():
    yield files("omnissl_timeseries") / "configs"
