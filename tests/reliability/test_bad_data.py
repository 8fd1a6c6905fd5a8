"""Bad data files for every plugin, through `omnissl pretrain`: exit 2, one message naming the file (and the
line and column for text), no traceback, and nothing written.

Issue 11 item 5 is the graph rows: the old Planetoid and TU loaders raised raw tracebacks from inside PyG.
A plugin that is not installed skips its rows. Adding a plugin is one line per case in ``CASES``: the
plugin, the base config whose encoder/views/objective fit its data, and a function that writes the bad
files into a folder and returns the ``data:`` block.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from omnissl.config import load_yaml
from omnissl.testing.data import shared_data_dir

from tests.reliability.helpers import ROOT, cli, write_config


def _plugin_config(module: str, name: str) -> Path:
    mod = pytest.importorskip(module)
    return Path(mod.__file__).parent / "configs" / name


def _write(folder: Path, name: str, content) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def _copy_shared(folder: Path, rel: str) -> Path:
    data = shared_data_dir()
    if data is None:
        pytest.skip("needs ../shared/data")
    dest = folder / Path(rel).name
    shutil.copytree(data / rel, dest)
    return dest


def _edit_line(path: Path, index: int, text: str) -> None:
    lines = path.read_text().split("\n")
    lines[index] = text
    path.write_text("\n".join(lines))


def tu_bad_line(d):
    raw = _copy_shared(d / "MUTAG", "graph/tu/MUTAG/raw")
    _edit_line(raw / "MUTAG_A.txt", 16, "3, x7")
    return {"name": "graph.tu", "root": str(d), "dataset": "MUTAG"}


def tu_missing_file(d):
    raw = _copy_shared(d / "MUTAG", "graph/tu/MUTAG/raw")
    (raw / "MUTAG_graph_indicator.txt").unlink()
    return {"name": "graph.tu", "root": str(d), "dataset": "MUTAG"}


def tu_cut_short(d):
    raw = _copy_shared(d / "MUTAG", "graph/tu/MUTAG/raw")
    text = (raw / "MUTAG_A.txt").read_text()
    (raw / "MUTAG_A.txt").write_text(text[: len(text) // 2].rsplit("\n", 1)[0] + "\n")
    return {"name": "graph.tu", "root": str(d), "dataset": "MUTAG"}


def planetoid_truncated_pickle(d):
    raw = _copy_shared(d / "Cora", "graph/planetoid/Cora/raw")
    data = (raw / "ind.cora.allx").read_bytes()
    (raw / "ind.cora.allx").write_bytes(data[: len(data) // 2])
    return {"name": "graph.planetoid", "root": str(d), "dataset": "Cora"}


def planetoid_missing_file(d):
    raw = _copy_shared(d / "Cora", "graph/planetoid/Cora/raw")
    (raw / "ind.cora.graph").unlink()
    return {"name": "graph.planetoid", "root": str(d), "dataset": "Cora"}


def planetoid_hostile_pickle(d):
    import os
    import pickle

    raw = _copy_shared(d / "Cora", "graph/planetoid/Cora/raw")

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {d / 'ran'}",))

    (raw / "ind.cora.graph").write_bytes(pickle.dumps(Payload(), protocol=2))
    return {"name": "graph.planetoid", "root": str(d), "dataset": "Cora"}


def planetoid_bad_test_index(d):
    raw = _copy_shared(d / "Cora", "graph/planetoid/Cora/raw")
    _edit_line(raw / "ind.cora.test.index", 5, "12a")
    return {"name": "graph.planetoid", "root": str(d), "dataset": "Cora"}


# (id, module of the plugin, base config, writes the bad files and returns the data block, text the message names)
CASES = [
    ("tabular: text in a numeric column", "omnissl_tabular", ROOT / "plugins/tabular/src/omnissl_tabular/configs/adult_tjepa.yaml",
     lambda d: {"name": "tabular.csv", "path": str(_write(d, "t.csv", "a,b,y\n" + "1,2,0\n" * 20 + "3,x,1\n")), "target": "y", "numeric": ["a", "b"]},
     "t.csv, line 22, column 'b'"),
    ("tabular: missing file", "omnissl_tabular", ROOT / "plugins/tabular/src/omnissl_tabular/configs/adult_tjepa.yaml",
     lambda d: {"name": "tabular.csv", "path": str(d / "nope.csv"), "target": "y"}, "nope.csv does not exist"),
    ("tabular: empty file", "omnissl_tabular", ROOT / "plugins/tabular/src/omnissl_tabular/configs/adult_tjepa.yaml",
     lambda d: {"name": "tabular.csv", "path": str(_write(d, "e.csv", "")), "target": "y"}, "e.csv: the file is empty"),
    ("speech: a .wav that is not audio", "omnissl_speech", ROOT / "plugins/speech/src/omnissl_speech/configs/synthetic_tera.yaml",
     lambda d: {"name": "speech.folder", "path": str(_write(d, "clips/a.wav", b"RIFF" + b"\x00" * 64).parent)}, "a.wav"),
    ("speech: manifest naming a missing file", "omnissl_speech", ROOT / "plugins/speech/src/omnissl_speech/configs/synthetic_tera.yaml",
     lambda d: {"name": "speech.manifest", "path": str(_write(d, "m.csv", "path,label\nmissing.wav,1\n"))}, "missing.wav"),
    ("recsys: rating that is not a number", "omnissl_recsys", ROOT / "plugins/recsys/src/omnissl_recsys/configs/generated_lightgcn.yaml",
     lambda d: {"name": "recsys.csv", "path": str(_write(d, "r.csv", "user,item,rating\n1,2,5\n1,3,x\n")), "rating_col": "rating"},
     "r.csv, line 3, column 'rating'"),
    ("graph: edge list with text", "omnissl_graph", ROOT / "plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml",
     lambda d: {"name": "graph.edge_list", "edges": str(_write(d, "e.csv", "0,1\n1,x\n"))}, "e.csv line 2, column 2: 'x' is not an integer"),
    ("graph: TU non-numeric line", "omnissl_graph", ROOT / "plugins/graph/src/omnissl_graph/configs/mutag_graphmae.yaml", tu_bad_line,
     "MUTAG_A.txt line 17, column 2: 'x7' is not an integer"),
    ("graph: TU missing file", "omnissl_graph", ROOT / "plugins/graph/src/omnissl_graph/configs/mutag_graphmae.yaml", tu_missing_file,
     "lacks MUTAG_graph_indicator.txt"),
    ("graph: TU file cut short", "omnissl_graph", ROOT / "plugins/graph/src/omnissl_graph/configs/mutag_graphmae.yaml", tu_cut_short,
     "MUTAG_edge_labels.txt: 7442 lines but MUTAG_A.txt has"),
    ("graph: Planetoid truncated pickle", "omnissl_graph", ROOT / "plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml", planetoid_truncated_pickle,
     "ind.cora.allx is not a Planetoid pickle: UnpicklingError: pickle data was truncated"),
    ("graph: Planetoid missing file", "omnissl_graph", ROOT / "plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml", planetoid_missing_file,
     "lacks the Planetoid raw file ind.cora.graph"),
    ("graph: Planetoid pickle that would run code", "omnissl_graph", ROOT / "plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml", planetoid_hostile_pickle,
     "ind.cora.graph is not a Planetoid pickle: UnpicklingError: it names posix.system"),
    ("graph: Planetoid test.index with text", "omnissl_graph", ROOT / "plugins/graph/src/omnissl_graph/configs/cora_graphmae.yaml", planetoid_bad_test_index,
     "ind.cora.test.index line 6, column 1: '12a' is not an integer"),
    ("video: an .mp4 that is not a video", "omnissl_video", ("omnissl_video", "moving_digits_videomae.yaml"),
     lambda d: {"name": "video.folder", "path": str(_write(d, "videos/a/clip.mp4", b"\x00" * 500).parent.parent)}, "clip.mp4"),
    ("medical: a .nii.gz that is not NIfTI", "omnissl_medical", ("omnissl_medical", "nifti_mae3d.yaml"),
     lambda d: {"name": "medical.nifti", "path": str(_write(d, "vols/a.nii.gz", b"\x1f\x8bgarbage").parent)}, "a.nii.gz: not a readable NIfTI file"),
    ("medical: an .npz without MedMNIST arrays", "omnissl_medical", ("omnissl_medical", "vesselmnist3d_mae3d.yaml"),
     lambda d: {"name": "medical.medmnist3d", "path": str(_savez(d / "k.npz"))}, "k.npz: missing arrays"),
]


def _savez(path: Path) -> Path:
    np.savez(path, foo=np.zeros(3))
    return path


@pytest.mark.parametrize("module,base,bad_data,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_data_is_a_clear_error(tmp_path, capsys, module, base, bad_data, message):
    pytest.importorskip(module)
    base = _plugin_config(*base) if isinstance(base, tuple) else base
    config = load_yaml(base)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config["tasks"] = config["tasks"][:1]
    config["tasks"][0]["data"] = bad_data(data_dir)
    config["logging"] = {**config.get("logging", {}), "out_dir": str(tmp_path / "run"), "progress": False}
    result = cli(capsys, "pretrain", write_config(tmp_path / "c.yaml", config))
    result.clean_exit_2()
    assert message in result.err
    assert not (tmp_path / "run").exists()  # nothing written
    assert not (data_dir / "ran").exists()  # no payload ran
