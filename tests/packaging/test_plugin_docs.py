"""docs/writing-a-plugin.md shows the example plugin's files exactly (datasette's rule: docs cannot drift)."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_file_block_matches_the_example_plugin():
    doc = (ROOT / "docs" / "writing-a-plugin.md").read_text()
    blocks = re.findall(r"```\w*\n# (docs/examples/\S+)\n(.*?)```", doc, flags=re.S)
    shown = {path for path, _ in blocks}
    example = {str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "examples").rglob("*") if p.suffix in {".py", ".toml", ".yaml"}}
    assert example - {p for p in example if p.endswith("__init__.py")} <= shown, "files of the example the walkthrough skips"
    for path, body in blocks:
        assert body == (ROOT / path).read_text(), f"docs/writing-a-plugin.md shows an outdated {path}"
