"""Issue 11 item 3: a broken plugin costs one warning line and its own components, never another command."""

import json
import logging
import sys
import textwrap
from importlib import metadata

import pytest

import omnissl.plugins
from omnissl.plugins import PluginManager

from tests.reliability.helpers import cli, write_config

BROKEN = {
    "exits at import": "import sys\nsys.exit(3)\n",
    "raises SystemExit in a hook": """
        from omnissl import hookimpl
        @hookimpl
        def omnissl_encoders():
            raise SystemExit("no")
    """,
    "raises in omnissl_cli_commands": """
        from omnissl import hookimpl
        @hookimpl
        def omnissl_cli_commands(cli):
            raise RuntimeError("cli hook broke")
    """,
    "raises in omnissl_config_dirs": """
        from omnissl import hookimpl
        @hookimpl
        def omnissl_config_dirs():
            raise RuntimeError("config dirs broke")
    """,
    "yields from a failing config_dirs generator": """
        from omnissl import hookimpl
        @hookimpl
        def omnissl_config_dirs():
            yield from ()
            raise ValueError("late failure")
    """,
}


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install one fake plugin distribution beside the real ones; the CLI's manager is rebuilt to see it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    real = metadata.entry_points(group="omnissl")
    eps = list(real)

    class Dist:
        name, version = "omnissl-brokenplugin", "0.0.1"

    def add(source: str) -> None:
        (tmp_path / "brokenplugin.py").write_text(textwrap.dedent(source))
        sys.modules.pop("brokenplugin", None)
        ep = metadata.EntryPoint(name="brokenplugin", value="brokenplugin", group="omnissl")
        eps.append(ep._for(Dist()))

    original = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points", lambda group=None, **kw: eps if group == "omnissl" else original(group=group, **kw))
    monkeypatch.setattr(omnissl.plugins, "_default", None)
    yield add
    omnissl.plugins._default = None
    sys.modules.pop("brokenplugin", None)


@pytest.mark.parametrize("source", BROKEN.values(), ids=BROKEN.keys())
def test_every_command_survives_a_broken_plugin(installed, source, toy_config, tmp_path, capsys, caplog):
    installed(source)
    config = write_config(tmp_path / "c.yaml", toy_config)
    with caplog.at_level(logging.WARNING, logger="omnissl.plugins"):
        shipped = cli(capsys, "configs", "list")
        valid = cli(capsys, "validate", config)
        # a command the core does not know makes the CLI load the plugins' commands (omnissl_cli_commands)
        with pytest.raises(SystemExit) as usage:
            cli(capsys, "no-such-command")
        assert usage.value.code == 2 and "invalid choice: 'no-such-command'" in capsys.readouterr().err
        listed = cli(capsys, "plugins", "--json")
        assert listed.rc == 0, listed.err
    assert shipped.rc == 0 and "toy_simclr.yaml" in shipped.out
    assert valid.rc == 0 and "valid" in valid.out
    assert "Traceback" not in listed.err + shipped.err + valid.err
    record = next(p for p in json.loads(listed.out) if p["name"] == "brokenplugin")
    assert record["status"] == "failed" and record["distribution"] == "omnissl-brokenplugin"
    warnings = [r.getMessage() for r in caplog.records if "brokenplugin" in r.getMessage()]
    assert len(warnings) == 1 and "disabled" in warnings[0]
    assert {"graph", "core"} <= {p["name"] for p in json.loads(listed.out) if p["status"] == "loaded"}


def test_keyboard_interrupt_at_plugin_import_is_not_swallowed(installed):
    installed("raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        PluginManager()
