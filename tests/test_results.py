"""Committed results: each JSON is canonical, and its markdown table is exactly what the JSON
makes (vdm_lite.experiments.report), so no table number is edited by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vdm_lite.experiments.report import TABLES, main, markdown, regenerate, result_files, write_result

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
FILES = result_files(RESULTS)


def test_every_results_table_is_found():
    names = {p.relative_to(RESULTS).as_posix() for p in FILES}
    assert {"table4/table4.json", "table5/table5.json", "table5/step1000/table5.json", "table6/table6.json"} <= names
    assert all(p.stem in TABLES and p.with_suffix(".md").exists() for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(RESULTS).as_posix() for p in FILES])
def test_committed_markdown_is_made_from_its_json(path):
    text = path.read_text()
    result = json.loads(text)
    assert json.dumps(result, indent=2) + "\n" == text, "the JSON is not in the writer's format"
    assert markdown(result, path.stem) == path.with_suffix(".md").read_text()
    assert not regenerate(path, check=True)


def test_writer_and_generator_agree(tmp_path, capsys):
    src = RESULTS / "table6" / "table6.json"
    result = json.loads(src.read_text())
    result["rows"]["replacement"]["per_video"] = {"accel": [0.1, 0.2]}  # left out of the JSON
    write_result(tmp_path, "table6", result)
    assert (tmp_path / "table6.json").read_text() == src.read_text()
    assert (tmp_path / "table6.md").read_text() == src.with_suffix(".md").read_text()
    (tmp_path / "table6.md").write_text("edited by hand\n")
    assert main(["--check", str(tmp_path / "table6.json")]) == 1
    assert (tmp_path / "table6.md").read_text() == "edited by hand\n"  # --check writes nothing
    assert main([str(tmp_path / "table6.json")]) == 0
    assert (tmp_path / "table6.md").read_text() == src.with_suffix(".md").read_text()
    assert "differs from its JSON" in capsys.readouterr().out
