"""The core's commands start without importing torch or any plugin until they need them (issue: slow --help)."""

import subprocess
import sys

import pytest

PROBE = """
import sys
from omnissl.cli import main
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "omnissl_graph", "omnissl_speech", "omnissl.engine") if m in sys.modules)
print("HEAVY", heavy, "CODE", code)
"""


@pytest.mark.parametrize("argv, code", [(["--help"], 0), (["pretrain", "--help"], 0), (["validate", "no/such/run.yaml"], 2)])
def test_command_answers_without_importing_torch(argv, code):
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, timeout=120)
    assert f"HEAVY [] CODE {code}" in out.stdout, out.stdout + out.stderr


def test_pytest_fixtures_module_imports_nothing_heavy():
    out = subprocess.run([sys.executable, "-c", "import sys, omnissl.testing.pytest_plugin; print('torch' in sys.modules)"],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_plugins_command_loads_the_manager_inside_the_command(capsys):
    from omnissl.cli import main

    assert main(["plugins", "--json"]) == 0
    assert '"name": "graph"' in capsys.readouterr().out


def test_plugins_table_wraps_instead_of_truncating_in_a_narrow_terminal():
    import os

    out = subprocess.run([sys.executable, "-m", "omnissl.cli", "plugins"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COLUMNS": "60"})
    assert out.returncode == 0 and "…" not in out.stdout
    assert "core.linear_probe" in out.stdout.replace("\n", "").replace("│", "").replace(" ", "")


CONFIGS_PROBE = """
import sys
from omnissl.cli import main
code = main(["configs", "list"])
heavy = sorted(m for m in sys.modules if m == "torch" or m.startswith(("omnissl_graph.", "omnissl_speech.", "omnissl_tabular."))
               and not m.endswith(".plugin"))
print("HEAVY", heavy, "CODE", code)
"""


def test_configs_list_reads_every_plugins_folders_without_importing_torch():
    # every installed plugin is loaded (its registration module) and asked for its folders; none imports torch
    out = subprocess.run([sys.executable, "-c", CONFIGS_PROBE], capture_output=True, text=True, timeout=120)
    assert "HEAVY [] CODE 0" in out.stdout, out.stdout + out.stderr
    listed = set(out.stdout.split())
    assert {f"{d}_smoke.yaml" for d in ("graph", "medical", "recsys", "speech", "tabular", "video")} <= listed, out.stdout
