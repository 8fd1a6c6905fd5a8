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
