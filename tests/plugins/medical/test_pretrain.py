"""`omnissl pretrain` runs every shipped medical config: on a folder of real NIfTI files and on VesselMNIST3D."""

from importlib.resources import files
from pathlib import Path

import pytest

from omnissl.config import load_config
from omnissl.engine import run_config
from omnissl.plugins import PluginManager

CONFIGS = sorted(Path(str(files("omnissl_medical") / "configs")).glob("*.yaml"))
SMALL = {  # tiny encoders so three objectives train on CPU in seconds
    "medical.vit": ["tasks[0].encoder.dim=24", "tasks[0].encoder.depth=1", "tasks[0].encoder.heads=2", "tasks[0].encoder.patch_size=4", "tasks[0].views.patch_size=4"],
    "medical.swin": ["tasks[0].encoder.embed_dim=6", "tasks[0].encoder.depths=[1,1,1,1]", "tasks[0].encoder.heads=[1,1,2,2]", "tasks[0].encoder.window_size=2"],
    "medical.resnet": ["tasks[0].encoder.layers=[1,1,1,1]", "tasks[0].encoder.widths=[4,4,8,8]"],
}


def _overrides(path, tmp_path):
    cfg = load_config(path)
    task = cfg.tasks[0]
    out = ["engine.steps=2", "engine.schedule.warmup_steps=1", "engine.batch_size=4", f"logging.out_dir={tmp_path / path.stem}", "logging.progress=false"]
    out += SMALL[task.encoder.name]
    if task.objective.name == "medical.mae3d":
        out += ["tasks[0].objective.decoder_dim=12", "tasks[0].objective.decoder_depth=1", "tasks[0].objective.decoder_heads=2"]
    if task.objective.name == "medical.swin_ssl":
        out += ["tasks[0].objective.decoder_hidden=8", "tasks[0].objective.contrast_dim=16"]
    if task.objective.name == "medical.global_local_contrast":
        out += ["tasks[0].objective.decoder_hidden=8"]
    return out


def test_shipped_configs_are_listed_by_the_plugin():
    names = {p.name for folder in PluginManager().config_dirs() for p in folder.iterdir()}
    assert {p.name for p in CONFIGS} <= names
    assert {"vesselmnist3d_mae3d.yaml", "vesselmnist3d_swin_ssl.yaml", "vesselmnist3d_global_local.yaml",
            "nifti_mae3d.yaml", "nifti_swin_ssl.yaml", "nifti_global_local.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name.startswith("nifti_")], ids=lambda p: p.stem)
def test_nifti_configs_pretrain(path, tmp_path, nifti_folder, monkeypatch):
    monkeypatch.setenv("OMNISSL_NIFTI_DIR", str(nifti_folder))
    extra = ["tasks[0].data.preprocessing.size=[8,8,8]", "tasks[0].data.preprocessing.spacing=[1.5,1.5,1.5]"]
    if "global_local" in path.stem:
        extra.append("tasks[0].encoder.stem_stride=1")
    result = run_config(path, overrides=_overrides(path, tmp_path) + extra)
    assert result.step == 2
    assert (tmp_path / path.stem / "metrics.jsonl").read_text().strip()


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.name == "vesselmnist3d_mae3d.yaml"], ids=lambda p: p.stem)
def test_vesselmnist3d_config_pretrains_and_probes(path, tmp_path, shared_data):
    """One VesselMNIST3D config end to end with its probe (the other two objectives run on NIfTI above; the
    full-size runs are benchmarks/medical_quality.py)."""
    if not (shared_data / "medical" / "vesselmnist3d" / "vesselmnist3d.npz").is_file():
        pytest.skip("VesselMNIST3D not in the shared data folder")
    probe = ["tasks[0].eval[0].seeds=1", "tasks[0].eval[0].epochs=5", "tasks[0].eval[0].supervised_epochs=0", "tasks[0].eval[0].heads=[linear]"]
    result = run_config(path, overrides=_overrides(path, tmp_path) + probe)
    (evaluation,) = result.evals
    assert {"encoder", "random encoder", "raw voxels"} == {r["representation"] for r in evaluation.rows}
