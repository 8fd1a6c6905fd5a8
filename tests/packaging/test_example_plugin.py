"""The out-of-tree example plugin (docs/examples/omnissl-timeseries) builds, installs from its wheel and passes.

The wheel is built with hatchling (the build backend its pyproject names) and unpacked into a fresh folder
put on ``PYTHONPATH`` of a child process: exactly what an installer does with a pure-Python wheel, without
the network. The child runs from outside the repository, so the plugin can only come from the wheel: it
must be discovered through its entry point, pass its own contract tests, list its shipped config and train.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "omnissl-timeseries"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    pytest.importorskip("hatchling", reason="hatchling (the example's build backend) is a dev dependency")
    work = tmp_path_factory.mktemp("example-plugin")
    build = subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(work / "dist")],
                           cwd=EXAMPLE, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    (wheel,) = (work / "dist").glob("omnissl_timeseries-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(work / "site")
    shutil.copytree(EXAMPLE / "tests", work / "tests")
    env = dict(os.environ, PYTHONPATH=str(work / "site"), OMP_NUM_THREADS="1")
    return work, env


def run(work, env, *args, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)


def test_wheel_registers_the_plugin_with_its_config(installed):
    work, env = installed
    script = ("import json, omnissl_timeseries; from omnissl.plugins import PluginManager; "
              "print(omnissl_timeseries.__file__); print(json.dumps(PluginManager().describe())); "
              "from omnissl.cli import main; raise SystemExit(main(['configs', 'list']))")
    result = run(work, env, "-c", script)
    assert result.returncode == 0, result.stderr
    module_file, described, *listing = result.stdout.splitlines()
    assert module_file.startswith(str(work / "site"))
    plugins = {p["name"]: p for p in json.loads(described)}
    assert plugins["timeseries"]["status"] == "loaded"
    assert "timeseries_sines_simclr.yaml" in "\n".join(listing)


def test_wheel_passes_its_own_contract_tests(installed):
    work, env = installed
    result = run(work, env, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(work / "tests"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout


def test_shipped_config_trains_and_probes(installed):
    work, env = installed
    script = ("import sys; from omnissl.cli import main; "
              f"assert main(['configs', 'copy', 'timeseries_sines_simclr.yaml', {str(work)!r}]) == 0; "
              f"sys.exit(main(['pretrain', {str(work / 'timeseries_sines_simclr.yaml')!r}, 'engine.steps=30', "
              f"'logging.out_dir={work / 'run'}', 'logging.progress=false']))")
    result = run(work, env, "-c", script)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    evals = [json.loads(line) for line in (work / "run" / "evals.jsonl").read_text().splitlines()]
    metrics = evals[-1]["metrics"]
    assert {"encoder/test_acc", "surface/test_acc", "random/test_acc"} <= set(metrics)
