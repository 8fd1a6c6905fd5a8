"""The lazy speech path: same batches as the in-memory path, and a feature cache that is never read stale or half-written."""

import json
import os
import warnings

import pytest
import torch

from omnissl import streaming
from omnissl.engine import run_config
from omnissl_speech import datasets
from omnissl_speech.lazy import LazySpeechSource

from tests.streaming.helpers import PATTERN, write_wavs


def _folder(path, **kw):
    return datasets.folder_source(datasets.FolderConfig(path=str(path), label_pattern=PATTERN, **kw))


def _assert_same_batch(a, b, atol=1e-5):
    torch.testing.assert_close(b.features, a.features, rtol=0, atol=atol)
    assert torch.equal(b.padding_mask, a.padding_mask)
    if a.waveform is None:
        assert b.waveform is None
    else:
        assert torch.equal(b.waveform, a.waveform)
        assert torch.equal(b.waveform_lengths, a.waveform_lengths)


def _assert_same_source(memory, lazy):
    assert isinstance(lazy, LazySpeechSource) and not isinstance(memory, LazySpeechSource)
    assert lazy.names == memory.names and lazy.classes == memory.classes
    for name in memory.labels:
        assert torch.equal(lazy.labels[name], memory.labels[name])
    for name in memory.splits:
        assert torch.equal(lazy.splits[name], memory.splits[name])
    for name in memory.surface:
        assert torch.equal(lazy.surface[name], memory.surface[name]), name
    everything = torch.arange(memory.num_utterances)
    _assert_same_batch(memory.gather(everything), lazy.gather(everything))  # what probes read, in batches


@pytest.mark.parametrize("normalise", ["global", "utterance"])
def test_lazy_folder_gives_the_in_memory_batches(wav_folder, normalise):
    features = {"normalise": normalise}
    memory = _folder(wav_folder, in_memory=True, features=features, pretrain_split="train")
    lazy = _folder(wav_folder, in_memory=False, features=features, pretrain_split="train")
    _assert_same_source(memory, lazy)
    assert len(lazy) == len(memory) and lazy.feature_dim == memory.feature_dim
    perm = torch.randperm(len(memory), generator=torch.Generator().manual_seed(1))
    for chunk in perm.split(7):  # a short last batch too
        _assert_same_batch(memory.batch(chunk), lazy.batch(chunk))
    assert "streamed from the feature cache" in lazy.describe()


def test_manifest_lazy_equals_in_memory(wav_folder, tmp_path):
    rows = sorted(wav_folder.glob("*.wav"))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,split,vowel\n" + "".join(f"{p},{'test' if i % 4 == 0 else 'train'},{p.name[0]}\n" for i, p in enumerate(rows)))
    memory = datasets.manifest_source(datasets.ManifestConfig(path=str(manifest), in_memory=True))
    lazy = datasets.manifest_source(datasets.ManifestConfig(path=str(manifest), in_memory=False))
    assert isinstance(lazy, LazySpeechSource)
    assert torch.equal(lazy.splits["test"], memory.splits["test"]) and torch.equal(lazy.labels["vowel"], memory.labels["vowel"])
    idx = torch.tensor([5, 0, 31, 2])
    _assert_same_batch(memory.batch(idx), lazy.batch(idx))


def test_auto_streams_only_beyond_the_budget(wav_folder):
    size = sum(p.stat().st_size for p in wav_folder.glob("*.wav"))
    assert not isinstance(_folder(wav_folder, keep_waveform=False), LazySpeechSource)  # the default budget: half the RAM
    assert not isinstance(_folder(wav_folder, keep_waveform=False, memory_budget_gb=2 * size / 2**30), LazySpeechSource)
    lazy = _folder(wav_folder, keep_waveform=False, memory_budget_gb=0.5 * size / 2**30)
    assert isinstance(lazy, LazySpeechSource) and "exceeds data.memory_budget_gb" in lazy.describe()


def _cache_dirs(tmp_path):
    return sorted(p for p in (tmp_path / "cache" / "speech").iterdir() if p.is_dir())


def test_cache_key_follows_settings_and_files(wav_folder, tmp_path):
    first = _folder(wav_folder, in_memory=False)
    assert "cache built now" in first.describe()
    assert "cache reused" in _folder(wav_folder, in_memory=False).describe()
    assert len(_cache_dirs(tmp_path)) == 1
    fewer_mels = _folder(wav_folder, in_memory=False, features={"n_mels": 24})  # a changed setting: a new cache
    assert fewer_mels.feature_dim == 24 and "cache built now" in fewer_mels.describe()
    assert len(_cache_dirs(tmp_path)) == 2
    # a rewritten file (new content, same name) must not be read from the old cache
    victim = sorted(wav_folder.glob("*.wav"))[3]
    write_wavs(tmp_path / "other", 4, seed=9)
    os.replace(sorted((tmp_path / "other").glob("*.wav"))[0], victim)
    changed = _folder(wav_folder, in_memory=False)
    assert "cache built now" in changed.describe() and len(_cache_dirs(tmp_path)) == 3
    fresh = _folder(wav_folder, in_memory=True)
    _assert_same_batch(fresh.gather(torch.tensor([3])), changed.gather(torch.tensor([3])))
    # the cache is never written beside the raw files
    assert not [p for p in wav_folder.iterdir() if p.suffix != ".wav"]


def test_corrupted_cache_is_rebuilt_not_read(wav_folder, tmp_path):
    memory = _folder(wav_folder, in_memory=True)
    _folder(wav_folder, in_memory=False)
    (cache,) = _cache_dirs(tmp_path)
    frames = cache / "frames.f32"
    frames.write_bytes(frames.read_bytes()[: frames.stat().st_size // 2])  # a truncated file
    with pytest.warns(UserWarning, match="incomplete or corrupted"):
        rebuilt = _folder(wav_folder, in_memory=False)
    assert "cache built now" in rebuilt.describe()
    _assert_same_batch(memory.gather(torch.arange(32)), rebuilt.gather(torch.arange(32)))
    (cache / "meta.json").write_text("{not json")  # a damaged index
    with pytest.warns(UserWarning, match="incomplete or corrupted"):
        _folder(wav_folder, in_memory=False)


def test_a_killed_build_leaves_nothing_that_is_read(wav_folder, tmp_path):
    def dies_half_way(folder):
        (folder / "frames.f32").write_bytes(b"\0" * 100)
        raise KeyboardInterrupt  # what a Ctrl-C in the first pass looks like

    key_args = ("speech", [("x", 1, 2)], {"n_mels": 40})
    with pytest.raises(KeyboardInterrupt):
        streaming.open_or_build(*key_args, dies_half_way)
    root = tmp_path / "cache" / "speech"
    assert [p.name for p in root.iterdir()] == [f".{streaming.cache_key(*key_args)}.lock"]  # no cache, no temporary folder
    # a SIGKILL leaves its temporary folder behind: it is never taken for the cache
    stale = root / f".tmp-{streaming.cache_key(*key_args)}-1-dead"
    stale.mkdir()
    (stale / "frames.f32").write_bytes(b"\0" * 100)
    folder, meta, built = streaming.open_or_build(*key_args, lambda f: (f / "frames.f32").write_bytes(b"\1" * 8) and {"ok": True})
    assert built and folder.name == streaming.cache_key(*key_args) and (folder / "frames.f32").read_bytes() == b"\1" * 8
    assert json.loads((folder / "meta.json").read_text())["files"] == {"frames.f32": 8}


def test_one_process_builds_while_the_others_wait(wav_folder, tmp_path):
    """Four processes ask for the same cache at once (as the ranks of a torchrun job do): one builds it."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        described = pool.starmap(_describe_lazy, [(str(wav_folder),)] * 4)
    assert sum("cache built now" in d for d in described) == 1, described
    assert len(_cache_dirs(tmp_path)) == 1


def _describe_lazy(folder: str) -> str:
    return _folder(folder, in_memory=False, keep_waveform=False).describe()


def test_engine_trains_on_the_same_batches_either_way(wav_folder, tmp_path):
    """Same seed, in memory in-process vs lazy through 2 loader workers: the same losses step by step."""
    losses = {}
    for name, in_memory, workers in (("memory", True, 0), ("lazy", False, 2)):
        cfg = {
            "seed": 0,
            "tasks": [{"name": "s", "data": {"name": "speech.folder", "path": str(wav_folder), "label_pattern": PATTERN, "keep_waveform": False, "in_memory": in_memory},
                       "encoder": {"name": "speech.frame_transformer", "dim": 32, "depth": 1, "heads": 2, "dropout": 0.0},
                       "views": {"name": "speech.tera_alteration"}, "objective": {"name": "speech.tera"}}],
            "engine": {"steps": 6, "batch_size": 8, "workers": workers, "device": "cpu", "optimizer": {"name": "adamw", "lr": 1e-3}},
            "eval": {"every": None, "at_end": False},
            "logging": {"out_dir": str(tmp_path / name), "log_every": 1, "progress": False},
        }
        run_config(cfg)
        losses[name] = [json.loads(line)["loss"] for line in open(tmp_path / name / "metrics.jsonl") if '"loss"' in line]
    assert len(losses["memory"]) == 6 and losses["memory"][0] != losses["memory"][-1]
    assert losses["lazy"] == pytest.approx(losses["memory"], rel=1e-4)


def test_hf_dataset_streams_the_in_memory_batches(tmp_path):
    """A saved DatasetDict (audio bytes, ClassLabel and string labels, its own splits) streamed from the cache
    gives the in-memory source's names, classes, splits, surfaces and batches."""
    pytest.importorskip("datasets")
    from omnissl_speech.examples import write_hf_dataset

    cfg = datasets.HFDatasetConfig(path=str(write_hf_dataset(tmp_path)), sample_rate=8000)
    memory = datasets.hf_dataset_source(cfg.model_copy(update={"in_memory": True}))
    lazy = datasets.hf_dataset_source(cfg.model_copy(update={"in_memory": False}))
    _assert_same_source(memory, lazy)
    assert "cache built now" in lazy.describe()


def test_hf_dataset_cache_follows_the_saved_folder(tmp_path):
    """The cache is reused while the folder is unchanged, and rebuilt when another dataset is saved over it."""
    pytest.importorskip("datasets")
    from datasets import Audio, Dataset, Features, Value

    def save(n, seed):
        paths = sorted(write_wavs(tmp_path / f"clips{seed}", n, seed=seed).glob("*.wav"))
        rows = {"audio": [{"bytes": p.read_bytes(), "path": p.name} for p in paths], "label": ["a", "b"] * (n // 2)}
        features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "label": Value("string")})
        Dataset.from_dict(rows, features=features).cast_column("audio", Audio(decode=False)).save_to_disk(str(tmp_path / "ds"))

    save(6, seed=0)
    cfg = datasets.HFDatasetConfig(path=str(tmp_path / "ds"), sample_rate=8000, val_fraction=0.2, test_fraction=0.2, in_memory=False)
    assert "cache built now" in datasets.hf_dataset_source(cfg).describe()
    assert "cache reused" in datasets.hf_dataset_source(cfg).describe()
    save(8, seed=9)
    changed = datasets.hf_dataset_source(cfg)
    assert "cache built now" in changed.describe() and changed.num_utterances == 8
    _assert_same_source(datasets.hf_dataset_source(cfg.model_copy(update={"in_memory": True})), changed)
