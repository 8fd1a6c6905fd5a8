"""The core's contract suite over every spec the video plugin registers."""

from omnissl.plugins import PluginManager
from omnissl.testing.contracts import check_plugin


def test_video_plugin_contracts():
    ran = check_plugin(PluginManager(), "video")
    for name in ("encoder[video.vit]", "views[video.tube_masking]", "views[video.augment]", "views[video.masked_augment]",
                 "objective[video.videomae]", "objective[video.sigma]", "objective[video.crossvideomae]",
                 "config[video.folder]", "config[video.moving_digits]", "config[video.probe]"):
        assert name in ran, f"{name} was not checked"


def test_every_dataset_is_built_from_its_example():
    ran = check_plugin(PluginManager(), "video")
    for name in ('video.folder', 'video.moving_digits'):
        assert f"dataset[{name}]" in ran, name
