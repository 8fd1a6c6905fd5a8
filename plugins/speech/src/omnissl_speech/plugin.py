"""Registration hooks of the speech plugin (``omnissl-speech``).

Each hook imports the modules it registers when it is called, so that ``omnissl configs list`` (which
calls only ``omnissl_config_dirs``) starts without torch.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from omnissl.hookspecs import hookimpl
from omnissl.specs import DatasetSpec, EncoderSpec, EvaluatorSpec, ModalitySpec, ObjectiveSpec, ViewGeneratorSpec

if TYPE_CHECKING:
    from omnissl_speech import datasets

MODALITY = "speech.utterances"


def example_data() -> datasets.SpeechSource:
    """A tiny generated corpus (16 utterances of 0.1-0.5 s at 8 kHz) for contract tests."""
    from omnissl_speech import datasets

    return datasets.synthetic_source(datasets.SyntheticConfig(num_utterances=16, min_seconds=0.1, max_seconds_generated=0.5))


def example_batch():
    import torch

    return example_data().gather(torch.arange(4))


@hookimpl
def omnissl_modalities():
    yield ModalitySpec(
        name=MODALITY,
        summary="Right-padded utterances: SpeechBatch(features (B, T, F), padding_mask (B, T), waveform (B, S), waveform_lengths (B,)).",
        example_batch=example_batch,
        example_data=example_data,
        encoders=("speech.frame_transformer", "speech.wav2vec2"),
        views=("speech.tera_alteration", "speech.span_masking"),
        objectives=("speech.tera", "speech.wav2vec2", "speech.hubert", "speech.w2v_bert"),
        objective_pairs={
            "speech.tera": ("speech.frame_transformer", "speech.tera_alteration"),
            "speech.wav2vec2": ("speech.wav2vec2", "speech.span_masking"),
            "speech.hubert": ("speech.wav2vec2", "speech.span_masking"),
            "speech.w2v_bert": ("speech.wav2vec2", "speech.span_masking"),
        },
    )


@hookimpl
def omnissl_datasets():
    from omnissl_speech import datasets, examples

    yield DatasetSpec(name="speech.folder", modality=MODALITY, config=datasets.FolderConfig, factory=datasets.folder_source, example=examples.folder_example,
                      summary="A folder of audio files (soundfile), labels from a file-name pattern.")
    yield DatasetSpec(name="speech.manifest", modality=MODALITY, config=datasets.ManifestConfig, factory=datasets.manifest_source, example=examples.manifest_example,
                      summary="Audio files listed in a CSV/JSONL manifest with optional labels and split.")
    yield DatasetSpec(name="speech.hf_dataset", modality=MODALITY, config=datasets.HFDatasetConfig, factory=datasets.hf_dataset_source,
                      example=examples.hf_dataset_example,
                      summary="A local HF datasets folder (save_to_disk) with an audio column, decoded with soundfile; its splits and labels.")
    yield DatasetSpec(name="speech.fsdd", modality=MODALITY, config=datasets.FSDDConfig, factory=datasets.fsdd_source, example=examples.fsdd_example,
                      summary="Free Spoken Digit Dataset, official split (index 0-4 test), digit and speaker labels.")
    yield DatasetSpec(name="speech.synthetic", modality=MODALITY, config=datasets.SyntheticConfig, factory=datasets.synthetic_source,
                      example=lambda folder: {"num_utterances": 8},
                      summary="Generated vowel-like utterances (harmonic source + formants), vowel and speaker labels.")


@hookimpl
def omnissl_encoders():
    from omnissl_speech import encoders, hf

    yield EncoderSpec(name="speech.frame_transformer", config=encoders.FrameTransformerConfig, factory=encoders.frame_transformer,
                      summary="TERA-style transformer over feature frames (core trunk), masked-mean utterance embedding.")
    yield EncoderSpec(name="speech.wav2vec2", config=encoders.Wav2Vec2Config, factory=encoders.wav2vec2_encoder, hf_export=hf.export_hf,
                      summary="wav2vec 2.0 conv waveform encoder (torchaudio) + conv positions + core trunk.")


@hookimpl
def omnissl_view_generators():
    from omnissl_speech import views

    yield ViewGeneratorSpec(name="speech.tera_alteration", config=views.TERAAlterationConfig, factory=views.tera_alteration,
                            summary="TERA time (15%, blocks of 7, zero/swap/keep), frequency and magnitude alteration.")
    yield ViewGeneratorSpec(name="speech.span_masking", config=views.SpanMaskingConfig, factory=views.span_masking,
                            summary="wav2vec 2.0 span masking over the encoder's frames, padding-aware.")


@hookimpl
def omnissl_objectives():
    from omnissl_speech.objectives import hubert, tera, w2v_bert, wav2vec2

    yield ObjectiveSpec(name="speech.tera", config=tera.TERAConfig, factory=tera.TERAObjective.build,
                        summary="TERA: L1 reconstruction of altered frames (Liu et al. 2021).")
    yield ObjectiveSpec(name="speech.wav2vec2", config=wav2vec2.Wav2Vec2ContrastiveConfig, factory=wav2vec2.Wav2Vec2Objective.build,
                        summary="wav2vec 2.0: contrastive task over Gumbel product-quantized latents + diversity loss.")
    yield ObjectiveSpec(name="speech.hubert", config=hubert.HuBERTConfig, factory=hubert.HuBERTObjective.build,
                        summary="HuBERT: masked prediction of k-means cluster ids, with a second clustering iteration.")
    yield ObjectiveSpec(name="speech.w2v_bert", config=w2v_bert.W2VBERTConfig, factory=w2v_bert.W2VBERTObjective.build,
                        summary="w2v-BERT: contrastive module + MLM module predicting quantizer ids, end to end.")


@hookimpl
def omnissl_evaluators():
    from omnissl_speech import evaluators

    yield EvaluatorSpec(name="speech.probe", config=evaluators.SpeechProbeConfig, factory=evaluators.speech_probe,
                        summary="Utterance linear and kNN probes with log-mel, MFCC and random-encoder baselines.")


@hookimpl
def omnissl_config_dirs():
    folder = files("omnissl_speech") / "configs"
    return [folder] if folder.is_dir() else []
