"""Loading audio: folders, manifests, FSDD; bad files are skipped with one warning; no audio is an error."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from omnissl.errors import DataError
from omnissl_speech import datasets
from omnissl_speech.features import FeatureConfig, FrameFeatures


def _tone(path: Path, seconds: float, rate: int = 8000, freq: float = 220.0):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * freq * t), rate)


@pytest.fixture
def folder(tmp_path):
    for i, sec in enumerate([0.3, 0.5, 0.2]):
        _tone(tmp_path / f"{i}_alice_{i}.wav", sec, freq=200 + 100 * i)
    (tmp_path / "9_bob_0.wav").write_bytes(b"RIFF not really a wav")
    sf.write(str(tmp_path / "8_bob_1.wav"), np.zeros(0), 8000)
    return tmp_path


def test_folder_skips_bad_files_with_one_warning(folder):
    cfg = datasets.FolderConfig(path=str(folder), sample_rate=8000, label_pattern=datasets.FSDD_PATTERN)
    with pytest.warns(UserWarning, match=r"skipped 2 of 5 audio files: .*8_bob_1.wav \(empty\).*9_bob_0.wav \(unreadable"):
        source = datasets.folder_source(cfg)
    assert source.num_utterances == 3
    assert source.labels["digit"].tolist() == [0, 1, 2]
    assert source.classes["speaker"] == ["alice"]
    batch = source.gather(torch.arange(3))
    lengths = (~batch.padding_mask).sum(1)
    extractor = FrameFeatures(FeatureConfig(), 8000)
    assert lengths.tolist() == [extractor.num_frames(int(s * 8000)) for s in (0.3, 0.5, 0.2)]
    assert (batch.features[batch.padding_mask] == 0).all()
    assert batch.waveform_lengths.tolist() == [2400, 4000, 1600]


def test_folder_without_readable_audio_is_a_data_error(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"junk")
    with pytest.raises(DataError, match="no readable audio"):
        datasets.folder_source(datasets.FolderConfig(path=str(tmp_path)))
    with pytest.raises(DataError, match="no audio files"):
        (tmp_path / "sub").mkdir()
        datasets.folder_source(datasets.FolderConfig(path=str(tmp_path / "sub")))


def test_manifest_csv_and_jsonl_with_resampling(tmp_path):
    _tone(tmp_path / "a.wav", 0.5, rate=16000)
    _tone(tmp_path / "b.wav", 0.25, rate=8000)
    (tmp_path / "m.csv").write_text("path,word,split\na.wav,yes,train\nb.wav,no,test\n")
    source = datasets.manifest_source(datasets.ManifestConfig(path=str(tmp_path / "m.csv"), sample_rate=8000))
    assert source.wave_lengths.tolist() == [4000, 2000]  # 16 kHz resampled to 8 kHz
    assert source.classes["word"] == ["no", "yes"] and source.labels["word"].tolist() == [1, 0]
    assert source.splits["train"].tolist() == [0] and source.splits["test"].tolist() == [1]
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "a.wav"}) + "\n{not json\n")
    with pytest.raises(DataError, match=r"m.jsonl, line 2, column 2"):
        datasets.manifest_source(datasets.ManifestConfig(path=str(tmp_path / "m.jsonl")))
    (tmp_path / "bad.csv").write_text("file,label\na.wav,1\n")
    with pytest.raises(DataError, match="'path' column"):
        datasets.manifest_source(datasets.ManifestConfig(path=str(tmp_path / "bad.csv")))


def test_pretrain_split_addresses_only_that_split():
    source = datasets.synthetic_source(datasets.SyntheticConfig(num_utterances=20, pretrain_split="train"))
    assert len(source) == len(source.splits["train"])
    a = source.batch(torch.tensor([0]))
    b = source.gather(source.splits["train"][:1])
    assert torch.equal(a.features, b.features)


def test_global_normalisation_and_fbank():
    cfg = datasets.SyntheticConfig(num_utterances=8, features=FeatureConfig(kind="fbank", normalise="global", n_mels=23))
    source = datasets.synthetic_source(cfg)
    assert source.feature_dim == 23
    assert torch.allclose(source.frames.mean(0), torch.zeros(23), atol=1e-4)
    assert torch.allclose(source.frames.std(0, unbiased=False), torch.ones(23), atol=1e-3)


def _fsdd_root():
    root = Path(os.environ.get("OMNISSL_DATA", Path(__file__).resolve().parents[3] / ".." / "shared" / "data")) / "speech" / "fsdd" / "recordings"
    if not root.is_dir():
        pytest.skip("FSDD not available (set OMNISSL_DATA)")
    return root


def test_fsdd_official_split():
    root = _fsdd_root()
    # 50 files keep the test fast: digit 0 of speaker george, every index 0-49
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for p in sorted(root.glob("*_george_*.wav"))[:50]:
            os.symlink(p, Path(tmp) / p.name)
        source = datasets.fsdd_source(datasets.FSDDConfig(path=tmp, keep_waveform=False))
        index = torch.tensor([int(n.split("_")[2].split(".")[0]) for n in source.names])
        assert (index[source.splits["test"]] <= 4).all()
        assert ((index[source.splits["val"]] >= 5) & (index[source.splits["val"]] <= 9)).all()
        assert (index[source.splits["train"]] >= 10).all()
        assert set(source.labels["digit"].tolist()) <= set(range(10))


def test_describe_gives_utterances_per_split_rate_durations_and_labels():
    from omnissl_speech.plugin import example_data

    source = example_data()
    line = source.describe()
    sizes = {k: int(v.shape[0]) for k, v in source.splits.items()}
    assert line.startswith(f"{source.num_utterances} utterances (train {sizes['train']} / val {sizes['val']} / test {sizes['test']})")
    seconds = source.wave_lengths.double() / source.sample_rate
    assert f"{source.sample_rate} Hz" in line and f"{float(seconds.max()):.2f} s per utterance" in line
    assert "label 'vowel': 5 classes" in line and "label 'speaker': 4 classes" in line


@pytest.mark.parametrize("stored_decode", [True, False], ids=["saved-as-Audio()", "saved-as-Audio(decode=False)"])
def test_hf_dataset_audio_column_is_decoded_here_without_torchcodec(tmp_path, stored_decode):
    """A saved DatasetDict with an Audio column reads as a source (datasets' own decoding needs torchcodec,
    which is not a dependency): its splits, its ClassLabel and string labels, and the same frames as the
    folder source gives for the same WAV files."""
    pytest.importorskip("datasets")
    from omnissl_speech.examples import write_hf_dataset

    path = write_hf_dataset(tmp_path, stored_decode=stored_decode)
    source = datasets.hf_dataset_source(datasets.HFDatasetConfig(path=str(path), sample_rate=8000))
    assert {k: int(v.numel()) for k, v in source.splits.items()} == {"train": 8, "val": 4, "test": 4}
    assert source.classes == {"digit": ["zero", "one"], "speaker": ["alice", "bob"]}
    folder = datasets.folder_source(datasets.FolderConfig(path=str(tmp_path / "recordings"), sample_rate=8000, label_pattern=datasets.FSDD_PATTERN))
    by_name = {n: i for i, n in enumerate(folder.names)}
    for i, name in enumerate(source.names):
        file = name.split("(")[1].rstrip(")")  # "train row 3 (1_bob_10.wav)"
        j = by_name[file]
        assert source.labels["digit"][i] == int(file[0]) and source.classes["speaker"][int(source.labels["speaker"][i])] == file.split("_")[1]
        split = next(s for s, idx in source.splits.items() if i in idx.tolist())
        assert split == ("test" if int(file.split("_")[2][:-4]) <= 4 else "val" if int(file.split("_")[2][:-4]) <= 9 else "train")
        mine, theirs = source.gather(torch.tensor([i])), folder.gather(torch.tensor([j]))
        torch.testing.assert_close(mine.waveform, theirs.waveform)
    # global normalisation covers the same frames, in another order: the corpus statistics agree
    torch.testing.assert_close(source.surface["log-mel mean"].mean(0), folder.surface["log-mel mean"].mean(0))


def test_hf_dataset_rows_naming_files_and_bad_columns(tmp_path):
    """Rows without bytes are read from the file they name; a wrong or
    non-audio column is a DataError naming the columns; a folder not saved by datasets says so."""
    pytest.importorskip("datasets")
    from datasets import Audio, Dataset, Features, Value

    for i, sec in enumerate([0.3, 0.5, 0.2, 0.4]):
        _tone(tmp_path / f"clip{i}.wav", sec, freq=200 + 100 * i)
    rows = {"audio": [{"bytes": None, "path": str(tmp_path / f"clip{i}.wav")} for i in range(4)], "label": ["a", "b", "a", "b"]}
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "label": Value("string")})
    Dataset.from_dict(rows, features=features).cast_column("audio", Audio(decode=False)).save_to_disk(str(tmp_path / "ds"))
    cfg = datasets.HFDatasetConfig(path=str(tmp_path / "ds"), sample_rate=8000, val_fraction=0.25, test_fraction=0.25)
    source = datasets.hf_dataset_source(cfg)
    assert source.num_utterances == 4 and source.classes == {"label": ["a", "b"]}
    assert source.wave_lengths.tolist() == [2400, 4000, 1600, 3200]
    assert source.names[1] == "row 1 (clip1.wav)"
    with pytest.raises(DataError, match=r"no column 'speech'; its columns are \['audio', 'label'\]"):
        datasets.hf_dataset_source(cfg.model_copy(update={"audio_column": "speech"}))
    with pytest.raises(DataError, match="column 'label' is Value, not an Audio column"):
        datasets.hf_dataset_source(cfg.model_copy(update={"audio_column": "label"}))
    with pytest.raises(DataError, match="not a folder written by datasets' save_to_disk"):
        datasets.hf_dataset_source(cfg.model_copy(update={"path": str(tmp_path)}))
