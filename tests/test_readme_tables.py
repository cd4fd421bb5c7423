"""The README's benchmark tables are the renderings of the recorded results: each generated
section equals what its benchmark script renders from ``benchmarks/results/NAME.json``."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

import report  # noqa: E402

SECTIONS = ["hardware", "accuracy", "compression", "peers"]


@pytest.mark.parametrize("name", SECTIONS)
def test_readme_section_is_rendered_from_its_results(name):
    module = importlib.import_module(name)
    record = json.loads((report.RESULTS / f"{name}.json").read_text())
    begin, end = report.markers(name)
    text = (ROOT / "README.md").read_text()
    expected = f"{begin}\n{module.readme_body(record)}\n{end}"
    assert report.readme_section(text, name) == expected, \
        f"README section '{name}' is stale: run python benchmarks/{name}.py --readme-only"


def test_a_section_is_replaced_in_place_and_added_once(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\ntext\n\n## Layout\n\nend\n")
    report.update_readme("demo", "| a |\n|---|", readme)
    once = readme.read_text()
    report.update_readme("demo", "| a |\n|---|", readme)
    assert readme.read_text() == once
    begin, end = report.markers("demo")
    assert once.count(begin) == 1 and once.index(end) < once.index("## Layout")
    report.update_readme("demo", "| b |\n|---|", readme)
    changed = readme.read_text()
    assert "| b |" in changed and "| a |" not in changed and changed.endswith("end\n")
