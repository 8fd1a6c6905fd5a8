"""Real encoded files (written with PyAV) decoded back; folder and manifest layouts; bad files; moving digits."""

import warnings

import numpy as np
import pytest
import torch

from omnissl.errors import DataError
from omnissl_video.datasets import MovingDigitsConfig, VideoFolderConfig, moving_digits, raw_pixel_features, video_folder
from omnissl_video.decoding import clip_indices, clip_start, probe, read_clip, write_video

from .conftest import moving_square


@pytest.mark.parametrize("ext", ["mp4", "avi", "mkv", "webm"])
def test_written_file_decodes_back_to_its_frames(tmp_path, ext):
    frames = moving_square(10)
    path = write_video(tmp_path / f"v.{ext}", frames)
    info = probe(path)
    assert info.frames == 10 and info.fps == pytest.approx(25.0)
    clip = read_clip(info, num_frames=5, stride=2, size=40)  # evaluation: centred start, centre crop
    assert clip.shape == (3, 5, 40, 40)
    # lossy codecs: the decoded square is where it was drawn, in the right colour, frame by frame
    start = clip_start(10, 5, 2, None)
    for k, t in enumerate(clip_indices(5, 2, 10, start)):
        expected = torch.from_numpy(frames[t]).permute(2, 0, 1).float()[:, :, 4:44] / 255  # centre crop of the 48-wide frame
        assert (clip[:, k] - expected).abs().mean() < 0.03
        assert clip[0, k, 17, 7 + 2 * t - 4] > 0.8 and clip[2, k, 17, 7 + 2 * t - 4] < 0.2


def test_clip_sampling_random_in_training_fixed_in_evaluation():
    assert clip_start(100, 16, 4, None) == clip_start(100, 16, 4, None) == (100 - 15 * 4 - 1) // 2
    starts = {clip_start(100, 16, 4, np.random.default_rng(s)) for s in range(20)}
    assert len(starts) > 5 and all(0 <= s <= 100 - 15 * 4 - 1 for s in starts)
    assert list(clip_indices(4, 3, 7, 2)) == [2, 5, 6, 6]  # past the end: the last frame repeats


def test_folder_with_class_subfolders(videos, capsys):
    source = video_folder(VideoFolderConfig(path=str(videos), num_frames=4, stride=2, size=32, normalize="none"))
    assert "6 videos" in capsys.readouterr().out
    assert source.classes["label"] == ["blue", "red"] and source.labels["label"].tolist().count(1) == 3
    clips = source.gather(torch.arange(6))
    assert clips.shape == (6, 3, 4, 32, 32)
    red = source.labels["label"] == 1
    assert (clips[red, 0].mean() > clips[red, 2].mean()) and (clips[~red, 2].mean() > clips[~red, 0].mean())
    a, b = source.batch(torch.tensor([0, 1, 2])), source.batch(torch.tensor([0, 1, 2]))
    assert torch.equal(a, b)  # training clips are a function of the batch's indices and the seed (resume-exact)
    assert source.surface()["raw pixels (time mean, 8x8)"].shape == (6, 3 * 64)


def test_folder_normalises_with_imagenet_statistics(videos):
    raw = video_folder(VideoFolderConfig(path=str(videos), num_frames=2, stride=1, size=16, normalize="none")).gather(torch.arange(2))
    norm = video_folder(VideoFolderConfig(path=str(videos), num_frames=2, stride=1, size=16)).gather(torch.arange(2))
    torch.testing.assert_close(norm[:, 0], (raw[:, 0] - 0.485) / 0.229)


def test_manifest_with_header_and_segments(videos, tmp_path):
    manifest = tmp_path / "list.csv"
    rows = ["path,label,start,end"] + [f"{p},{p.parent.name},0.0,0.3" for p in sorted(videos.rglob("*.*"))]
    manifest.write_text("\n".join(rows) + "\n")
    source = video_folder(VideoFolderConfig(path=str(manifest), num_frames=2, stride=1, size=16))
    assert source.num_clips == 6 and source.segments[0] == (0.0, 0.3)
    headerless = tmp_path / "plain.csv"
    headerless.write_text("\n".join(f"{p.relative_to(tmp_path)},{p.parent.name}" for p in sorted(videos.rglob("*.*"))))
    assert video_folder(VideoFolderConfig(path=str(headerless), num_frames=2, stride=1, size=16)).num_clips == 6
    bad = tmp_path / "bad.csv"
    bad.write_text("a.mp4,x,1\n")
    with pytest.raises(DataError, match=r"bad.csv, line 1: expected path,label\[,start,end\]"):
        video_folder(VideoFolderConfig(path=str(bad)))


def test_a_corrupt_file_is_skipped_with_one_warning_naming_it(videos):
    (videos / "red" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = video_folder(VideoFolderConfig(path=str(videos), num_frames=2, stride=1, size=16, max_bad_fraction=0.2))
    messages = [str(w.message) for w in caught if "video.folder" in str(w.message)]
    assert len(messages) == 1 and "broken.mp4" in messages[0]
    assert source.num_clips == 6


def test_too_many_bad_files_or_none_at_all_stop_the_run(videos, tmp_path):
    for k in range(3):
        (videos / "red" / f"broken{k}.avi").write_bytes(b"not a video")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"3 of 9 files .* unreadable .*max_bad_fraction"):
            video_folder(VideoFolderConfig(path=str(videos), max_bad_fraction=0.2))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no videos"):
        video_folder(VideoFolderConfig(path=str(tmp_path / "empty")))
    with pytest.raises(DataError, match="does not exist"):
        video_folder(VideoFolderConfig(path=str(tmp_path / "nowhere")))
    with pytest.raises(DataError, match="set data.path"):
        video_folder(VideoFolderConfig())


def test_moving_digits_labels_describe_the_motion_and_the_digit():
    source = moving_digits(MovingDigitsConfig(num_clips=200, num_frames=6, size=32, noise=0.0, seed=3))
    clips = source.gather(torch.arange(200))[:, 0]  # (N, T, H, W)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    mass = clips.sum(dim=(2, 3))
    cx, cy = (clips * xs).sum(dim=(2, 3)) / mass, (clips * ys).sum(dim=(2, 3)) / mass
    dx, dy = cx[:, -1] - cx[:, 0], cy[:, -1] - cy[:, 0]
    expected = {0: (1, 0), 1: (-1, 0), 2: (0, 1), 3: (0, -1)}  # right, left, down, up
    for d, (ex, ey) in expected.items():
        sel = source.labels["direction"] == d
        assert torch.allclose(dx[sel], torch.full_like(dx[sel], 7.5 * ex), atol=0.6)
        assert torch.allclose(dy[sel], torch.full_like(dy[sel], 7.5 * ey), atol=0.6)
    assert set(source.labels["digit"].tolist()) == set(range(10))
    again = moving_digits(MovingDigitsConfig(num_clips=200, num_frames=6, size=32, noise=0.0, seed=3))
    assert torch.equal(again.clips, source.clips)
    assert not torch.equal(moving_digits(MovingDigitsConfig(num_clips=200, num_frames=6, size=32, noise=0.0, seed=4)).clips, source.clips)


def test_moving_digits_splits_and_pretraining_subset():
    source = moving_digits(MovingDigitsConfig(num_clips=100, seed=0))
    sizes = {k: v.numel() for k, v in source.splits.items()}
    assert sizes == {"train": 60, "val": 20, "test": 20} and len(source) == 60
    assert torch.equal(source.batch(torch.arange(3)), source.gather(source.splits["train"][:3]))
    with pytest.raises(DataError, match="leaves a 32 px canvas"):
        moving_digits(MovingDigitsConfig(speed=4.0))


def test_raw_pixel_baseline_is_time_mean_then_area_downsample():
    clips = torch.rand(2, 3, 4, 16, 16)
    feats = raw_pixel_features(clips, grid=8)
    assert feats.shape == (2, 3 * 64)
    torch.testing.assert_close(feats.view(2, 3, 8, 8)[1, 2, 0, 0], clips[1, 2, :, 0:2, 0:2].mean())


@pytest.mark.parametrize("ext", ["mp4", "avi", "mkv", "webm"])
def test_seeking_decode_gives_the_frames_of_a_decode_from_the_start(tmp_path, ext):
    import av

    from omnissl_video import decoding

    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, size=(90, 1, 1, 3), dtype=np.uint8), 32, axis=1).repeat(48, axis=2)  # a flat colour per frame
    path = str(write_video(tmp_path / f"long.{ext}", frames))
    with av.open(path) as container:
        everything = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    indices = clip_indices(8, 4, len(everything), 55)
    got = decoding.decode_frames(path, indices)
    assert np.array_equal(got, np.stack([everything[i] for i in indices]))
    with av.open(path) as container:  # the seek path itself found them (no fall-back to decoding from frame 0)
        stream = container.streams.video[0]
        found = decoding._decode_from_key_frame(container, stream, {int(i) for i in indices}, int(indices[0]), int(indices[-1]), None)
    assert found is not None and sorted(found) == sorted({int(i) for i in indices})
    small = decoding.decode_frames(path, indices, short_side=16)  # converted at the resized shape in FFmpeg
    assert small.shape == (8, 16, 24, 3)
    assert np.abs(small.astype(float).mean((1, 2)) - got.astype(float).mean((1, 2))).max() < 8
