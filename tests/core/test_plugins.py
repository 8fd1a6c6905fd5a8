"""Plugin manager behaviour: provenance, broken plugins, misspelled hooks, duplicates, env switches."""

import json
import logging
import sys
import textwrap
from importlib import metadata

import pytest
import torch

from omnissl import ComponentConfig, EncoderSpec, hookimpl
from omnissl.cli import main
from omnissl.config import load_config
from omnissl.errors import ConfigError, PluginError
from omnissl.plugins import PluginManager


def test_core_components_listed_with_provenance(capsys):
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    core = next(p for p in listed if p["name"] == "core")
    assert core["distribution"] == "omnissl" and core["version"] == metadata.version("omnissl")
    assert "core.simclr" in core["components"]["objectives"]
    spec = PluginManager().registry.get("objectives", "core.simclr")
    assert spec.provider.distribution == "omnissl"


@pytest.fixture
def fake_entry_points(tmp_path, monkeypatch):
    """Install plugin modules written to ``tmp_path`` as ``omnissl`` entry points of fake distributions."""
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = []

    class Dist:
        def __init__(self, name):
            self.name, self.version = name, "9.9"

    def add(ep_name: str, source: str) -> None:
        (tmp_path / f"fakeplugin_{ep_name}.py").write_text(textwrap.dedent(source))
        ep = metadata.EntryPoint(name=ep_name, value=f"fakeplugin_{ep_name}", group="omnissl")
        eps.append(ep._for(Dist(f"omnissl-{ep_name}")) if hasattr(ep, "_for") else ep)
        sys.modules.pop(f"fakeplugin_{ep_name}", None)

    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points", lambda group=None, **kw: eps if group == "omnissl" else real(group=group, **kw))
    return add


GOOD = """
from omnissl import hookimpl, EncoderSpec
from omnissl.testing.toy import ToyMLPConfig, toy_encoder

@hookimpl
def omnissl_encoders():
    yield EncoderSpec(name="good.mlp", config=ToyMLPConfig, factory=toy_encoder, summary="ok")
"""


def test_import_error_warns_once_and_others_keep_working(fake_entry_points, caplog):
    fake_entry_points("good", GOOD)
    fake_entry_points("broken", "import does_not_exist_anywhere\n")
    with caplog.at_level(logging.WARNING, logger="omnissl.plugins"):
        pm = PluginManager()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "'broken'" in warnings[0] and "omnissl-broken" in warnings[0]
    assert "ModuleNotFoundError" in warnings[0]
    assert "good.mlp" in pm.registry.names("encoders")
    assert pm.records["broken"].status == "failed"
    # using a component of the failed plugin names the plugin and its error
    with pytest.raises(PluginError, match="plugin 'broken' .*failed to load: ModuleNotFoundError"):
        pm.registry.get("encoders", "broken.mlp")


def test_strict_plugins_raise(fake_entry_points):
    fake_entry_points("broken", "raise RuntimeError('boom')\n")
    with pytest.raises(PluginError, match="boom"):
        PluginManager(strict=True)


def test_misspelled_hook_disables_plugin(fake_entry_points, caplog):
    fake_entry_points("typo", """
        from omnissl import hookimpl
        @hookimpl
        def omnissl_encoder():
            return []
    """)
    with caplog.at_level(logging.WARNING, logger="omnissl.plugins"):
        pm = PluginManager()
    assert pm.records["typo"].status == "failed"
    assert "omnissl_encoder" in pm.records["typo"].error and "unknown hook" in pm.records["typo"].error


def test_misspelled_hook_in_process_raises():
    class Typo:
        @hookimpl
        def omnissl_objectivs(self):
            return []

    pm = PluginManager(autoload=False)
    pm.register(Typo(), name="typo")
    with pytest.raises(PluginError, match="omnissl_objectivs") as err:
        pm.check_pending()
    message = str(err.value)
    assert "'omnissl_objectivs' (did you mean 'omnissl_objectives'?)" in message
    assert "omnissl_objectivs" not in message.split("Valid hooks:")[1]  # the typo is not offered as a valid hook


def test_duplicate_names_list_every_provider(fake_entry_points):
    fake_entry_points("one", GOOD)
    fake_entry_points("two", GOOD)
    pm = PluginManager()
    with pytest.raises(PluginError) as err:
        pm.registry
    message = str(err.value)
    assert "'good.mlp'" in message and "omnissl-one" in message and "omnissl-two" in message
    assert "OMNISSL_BLOCKED_PLUGINS" in message


def test_env_switches(fake_entry_points, monkeypatch):
    fake_entry_points("one", GOOD)
    monkeypatch.setenv("OMNISSL_BLOCKED_PLUGINS", "one")
    assert "good.mlp" not in PluginManager().registry.names("encoders")
    monkeypatch.delenv("OMNISSL_BLOCKED_PLUGINS")
    monkeypatch.setenv("OMNISSL_PLUGINS", "someone-else")
    pm = PluginManager()
    assert pm.records["one"].status == "blocked" and "good.mlp" not in pm.registry.names("encoders")
    monkeypatch.setenv("OMNISSL_PLUGINS", "omnissl-one")
    assert "good.mlp" in PluginManager().registry.names("encoders")
    monkeypatch.setenv("OMNISSL_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = PluginManager()
    assert "good.mlp" not in pm.registry.names("encoders") and "core.simclr" in pm.registry.names("objectives")


def test_run_using_failed_plugin_component_is_config_error(fake_entry_points, toy_config):
    fake_entry_points("broken", "raise ImportError('missing native library libfoo.so')\n")
    pm = PluginManager()
    toy_config["tasks"][0]["encoder"] = {"name": "broken.encoder"}
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.encoder\.name: encoder 'broken.encoder' is unavailable: plugin 'broken'.*libfoo"):
        load_config(toy_config, pm=pm)


def test_spec_records_are_frozen_and_keyword_only():
    spec = EncoderSpec(name="demo.enc", factory=lambda c, x: None, config=ComponentConfig)
    with pytest.raises(Exception):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        EncoderSpec("demo.enc", lambda c, x: None)  # type: ignore[misc]
    with pytest.raises(ValueError, match="<domain>.<thing>"):
        EncoderSpec(name="NoDomain", factory=lambda c, x: None)


def test_hook_examples_run():
    import doctest

    from omnissl import hookspecs

    result = doctest.testmod(hookspecs, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 9 and result.failed == 0


def test_hook_reference_documents_every_hook_signature():
    """datasette's rule: docs cannot drift from the hook specs."""
    import inspect
    from pathlib import Path

    from omnissl import hookspecs

    doc = (Path(__file__).parents[2] / "docs" / "hooks.md").read_text()
    hooks = [n for n in dir(hookspecs) if n.startswith("omnissl_")]
    assert len(hooks) == 9
    for name in hooks:
        signature = f"{name}{inspect.signature(getattr(hookspecs, name))}"
        assert signature in doc, f"docs/hooks.md lacks the exact signature {signature}"
