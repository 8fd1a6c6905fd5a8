"""``omnissl export CHECKPOINT --format hf``: a trained run's encoder loads with transformers and gives equal outputs.

Each test trains a tiny run for 2 steps through the engine, exports it with the CLI, loads the folder with
``transformers.AutoModel.from_pretrained`` (local files only) and compares it with the run's own encoder
rebuilt from the checkpoint. Encoders without an HF counterpart exit 2 with a message naming those that have one.
"""

import pytest
import torch

from omnissl import checkpoint as ckpt
from omnissl.cli import main
from omnissl.config import load_config
from omnissl.engine import Trainer, run_config

transformers = pytest.importorskip("transformers")


def _trained(result):
    """The run's model with the checkpoint's weights, as ``omnissl evaluate`` rebuilds it."""
    state = ckpt.load(result.checkpoint)
    trainer = Trainer(load_config(__import__("json").loads(state["config"]), [f"logging.out_dir={result.out_dir}/rebuilt"]))
    trainer.model.load_state_dict(state["model"])
    return trainer.model.eval(), trainer


def _speech_run(tmp_path, objective, input_norm=False):
    pytest.importorskip("omnissl_speech")
    return run_config({
        "seed": 0,
        "tasks": [{
            "name": "speech",
            "data": {"name": "speech.synthetic", "num_utterances": 16, "keep_waveform": True, "max_seconds_generated": 0.6},
            "encoder": {"name": "speech.wav2vec2", "dim": 32, "depth": 2, "heads": 2, "input_norm": input_norm,
                        "conv_layers": [[16, 10, 5], [16, 3, 2], [16, 3, 2], [16, 3, 2], [16, 2, 2]], "pos_conv_kernel": 8, "pos_conv_groups": 2},
            "views": {"name": "speech.span_masking", "mask_prob": 0.2, "span": 3},
            "objective": objective,
        }],
        "engine": {"steps": 2, "batch_size": 8, "optimizer": {"name": "adamw", "lr": 1e-3}},
        "eval": {"every": None, "at_end": False},
        "logging": {"out_dir": str(tmp_path / "run"), "progress": False},
    })


@pytest.mark.parametrize("objective,cls", [
    ({"name": "speech.wav2vec2", "num_negatives": 4, "groups": 2, "entries": 8, "code_dim": 16, "final_dim": 16}, "Wav2Vec2Model"),
    ({"name": "speech.hubert", "num_clusters": 4}, "HubertModel"),
])
def test_speech_run_exports_a_folder_automodel_loads_with_equal_outputs(tmp_path, capsys, objective, cls):
    result = _speech_run(tmp_path, objective)
    assert main(["export", str(result.checkpoint), "--format", "hf", "-o", str(tmp_path / "hf")]) == 0
    assert "AutoModel.from_pretrained" in capsys.readouterr().out
    model = transformers.AutoModel.from_pretrained(tmp_path / "hf" / "speech", local_files_only=True).eval()
    assert type(model).__name__ == cls
    run_model, trainer = _trained(result)
    task = run_model.tasks["speech"]
    batch = trainer.sources["speech"].batch(torch.arange(6))
    valid_samples = (torch.arange(batch.waveform.shape[1])[None, :] < batch.waveform_lengths[:, None]).long()
    with torch.no_grad():
        ours = task.encoder(batch)
        theirs = model(batch.waveform, attention_mask=valid_samples, output_hidden_states=True)
    valid = ~ours.padding_mask
    assert valid.sum() < valid.numel()  # utterances of different lengths: the mask matters
    torch.testing.assert_close(ours.tokens[valid], theirs.last_hidden_state[valid], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.layers[0][valid], theirs.hidden_states[1][valid], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.masked_spec_embed.detach(), task.objective.mask_embedding.detach())


def test_video_run_exports_videomae(tmp_path):
    pytest.importorskip("omnissl_video")
    result = run_config({
        "seed": 0,
        "tasks": [{
            "name": "digits",
            "data": {"name": "video.moving_digits", "num_clips": 16, "num_frames": 4, "size": 16, "digit_size": 6},
            "encoder": {"name": "video.vit", "preset": "micro", "patch_size": 8, "tubelet_size": 2},
            "views": {"name": "video.tube_masking", "ratio": 0.5},
            "objective": {"name": "video.videomae", "decoder_dim": 32, "decoder_depth": 1},
        }],
        "engine": {"steps": 2, "batch_size": 8, "optimizer": {"name": "adamw", "lr": 1e-3}},
        "eval": {"every": None, "at_end": False},
        "logging": {"out_dir": str(tmp_path / "run"), "progress": False},
    })
    assert main(["export", str(result.checkpoint), "--format", "hf", "-o", str(tmp_path / "hf")]) == 0
    model = transformers.AutoModel.from_pretrained(tmp_path / "hf" / "digits", local_files_only=True).eval()
    assert type(model).__name__ == "VideoMAEModel"
    run_model, trainer = _trained(result)
    clips = trainer.sources["digits"].batch(torch.arange(4))
    with torch.no_grad():
        torch.testing.assert_close(run_model.tasks["digits"].encoder(clips).tokens, model(clips.permute(0, 2, 1, 3, 4)).last_hidden_state, atol=1e-5, rtol=1e-4)


def test_an_encoder_without_an_hf_counterpart_exits_2(toy_config, tmp_path, capsys):
    toy_config["engine"]["steps"] = 2
    result = run_config(toy_config)
    assert main(["export", str(result.checkpoint), "--format", "hf", "-o", str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert "has no HF transformers counterpart" in err and "--format safetensors" in err and "Traceback" not in err
    assert not (tmp_path / "hf").exists()


def test_a_wav2vec2_layout_hf_cannot_express_exits_2(tmp_path, capsys):
    result = _speech_run(tmp_path, {"name": "speech.wav2vec2", "num_negatives": 4, "groups": 2, "entries": 8, "code_dim": 16, "final_dim": 16}, input_norm=True)
    assert main(["export", str(result.checkpoint), "--format", "hf", "-o", str(tmp_path / "hf")]) == 2
    assert "input_norm: false" in capsys.readouterr().err
