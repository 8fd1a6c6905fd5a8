"""The core's contract suite over every spec the speech plugin registers."""

from omnissl.plugins import PluginManager
from omnissl.testing.contracts import check_plugin


def test_speech_plugin_contracts():
    ran = check_plugin(PluginManager(), "speech")
    for name in ("speech.frame_transformer", "speech.wav2vec2", "speech.tera", "speech.wav2vec2", "speech.hubert", "speech.w2v_bert"):
        assert any(name in r for r in ran)
    for name in ("speech.folder", "speech.manifest", "speech.fsdd", "speech.synthetic", "speech.hf_dataset"):  # built from the files it writes
        assert f"dataset[{name}]" in ran, name
