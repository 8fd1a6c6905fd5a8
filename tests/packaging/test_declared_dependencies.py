"""Every plugin declares each third-party package it imports, so that it installs and runs alone.

A plugin installed on its own beside the core gets only what its ``pyproject.toml`` names (and what those
packages pull in by accident, which may change under it). The scan reads every ``import`` in the plugin's
sources, including imports inside functions, and maps each top-level module to the distribution that
provides it in this environment (``importlib.metadata.packages_distributions``). Optional extras count as
declared: a module imported only where an extra's feature is used (``transformers`` for HF export) is the
documented way to keep a heavy dependency optional.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions(pyproject: Path) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {_normalise(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]) for req in requirements}


def imported_top_level_modules(package_dir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for source in sorted(package_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], source)
    return found


def undeclared_imports(plugin: Path) -> list[str]:
    declared = declared_distributions(plugin / "pyproject.toml")
    providers = md.packages_distributions()
    problems = []
    for package_dir in (plugin / "src").iterdir():
        own = package_dir.name
        for module, source in imported_top_level_modules(package_dir).items():
            if module in sys.stdlib_module_names or module == own or module == "__future__":
                continue
            distributions = {_normalise(d) for d in providers.get(module, [module])}
            if not distributions & declared:
                problems.append(f"{source.relative_to(plugin)} imports {module!r} (from {sorted(distributions)})")
    return problems


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_plugin_declares_every_import(plugin):
    problems = undeclared_imports(plugin)
    assert not problems, f"{plugin.name}/pyproject.toml does not declare:\n" + "\n".join(problems)


def test_scan_catches_an_undeclared_import(tmp_path):
    (tmp_path / "src" / "omnissl_fake").mkdir(parents=True)
    (tmp_path / "src" / "omnissl_fake" / "probe.py").write_text("import os\n\ndef f():\n    from sklearn.svm import SVC\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "omnissl-fake"\ndependencies = ["omnissl"]\n')
    problems = undeclared_imports(tmp_path)
    assert len(problems) == 1 and "'sklearn'" in problems[0] and "scikit-learn" in problems[0]
