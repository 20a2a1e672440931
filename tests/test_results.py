"""Committed results: each JSON is canonical, and its markdown table is exactly what the JSON
makes (vdm_lite.experiments.report), so no table number is edited by hand; the same holds for
the result blocks of the README and docs/, and the figures their prose quotes are those of the
results they link. Notebook 11 shows the tables and its summary as the JSONs make them, and the figures
its readings of the tables quote are those of the results they read. Every relative link of the README
and docs/ leads to a file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from vdm_lite.experiments.report import (BLOCK, PAPER, PAPER_MORE, TABLES, comparison_markdown, doc_files, fill_blocks,
                                         main, markdown, regenerate, result_files, summary_markdown, update_doc,
                                         write_result)  # fmt: skip

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FILES = result_files(RESULTS)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


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


# ------------------------------------------------------------------ the result blocks of README.md and docs/
def test_readme_and_docs_result_blocks_are_made_from_the_jsons():
    readme = (ROOT / "README.md").read_text()
    assert "<!-- results:begin summary -->" in readme and "<!-- results:end summary -->" in readme
    assert ROOT / "README.md" in doc_files(ROOT) and ROOT / "docs" / "reproducing.md" in doc_files(ROOT)
    for doc in doc_files(ROOT):
        assert fill_blocks(doc.read_text(), RESULTS, doc.parent) == doc.read_text(), f"{doc.name}: a result block was edited by hand"
        assert not update_doc(doc, RESULTS, check=True)
    summary = BLOCK.search(readme)[3]
    assert summary == summary_markdown(RESULTS, ROOT)
    for path in FILES:  # one row per result, linked to its full table
        assert f"]({path.with_suffix('.md').relative_to(ROOT).as_posix()})" in summary
    assert summary.count("\n| ") == len(FILES)  # one row per result below the header


def test_a_changed_number_changes_the_blocks(tmp_path, capsys):
    results = tmp_path / "benchmarks" / "results"
    shutil.copytree(RESULTS, results)
    (tmp_path / "docs").mkdir()
    for doc in doc_files(ROOT):
        shutil.copy(doc, tmp_path / doc.relative_to(ROOT))
    docs = doc_files(tmp_path)
    assert [d.relative_to(tmp_path) for d in docs] == [d.relative_to(ROOT) for d in doc_files(ROOT)]
    assert not any(update_doc(d, results, check=True) for d in docs)  # the copies agree with the copied JSONs
    path = results / "table6" / "table6.json"
    result = json.loads(path.read_text())
    assert f"{result['rows']['replacement']['position_ratio']:.2f}" != "9.87"
    result["rows"]["replacement"]["position_ratio"] = 9.8702
    path.write_text(json.dumps(result, indent=2) + "\n")
    readme, reproducing = tmp_path / "README.md", tmp_path / "docs" / "reproducing.md"
    before = readme.read_text(), reproducing.read_text()
    assert update_doc(readme, results, check=True) and update_doc(reproducing, results, check=True)
    assert main(["--check", "--root", str(results), "--docs", str(readme), str(reproducing)]) == 1
    assert (readme.read_text(), reproducing.read_text()) == before  # --check writes nothing
    assert "result blocks differ from the JSONs" in capsys.readouterr().out
    assert main(["--root", str(results), "--docs", str(readme), str(reproducing)]) == 0
    assert "9.87 (replacement)" in BLOCK.search(readme.read_text())[3]
    assert "| replacement | 9.87 |" in reproducing.read_text()
    assert readme.read_text().replace("9.87 (replacement)", "3.03 (replacement)") == before[0]  # that number alone changed
    assert main(["--check", "--root", str(results), "--docs", str(readme), str(reproducing)]) == 0


def test_result_blocks_name_a_known_result():
    with pytest.raises(ValueError, match="neither 'summary' nor a result JSON"):
        fill_blocks("<!-- results:begin table9/table9.json -->\n<!-- results:end table9/table9.json -->\n", RESULTS)


# ------------------------------------------------------------------ figures quoted in prose
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(%?)")


def _numbers(o) -> list[float]:
    """Every number of a JSON value, in lists, dicts and text, or of a markdown text."""
    if isinstance(o, dict):
        return [x for v in o.values() for x in _numbers(v)]
    if isinstance(o, list):
        return [x for v in o for x in _numbers(v)]
    if isinstance(o, str):
        return [float(m[1].replace(",", "")) for m in _NUMBER.finditer(o)]
    return [] if isinstance(o, bool) or o is None else [float(o)]


def _unmatched(text: str, have: list[float]) -> tuple[int, list[str]]:
    """The numbers of ``text`` checked, and those that no value of ``have`` gives as written (to the
    places written; a percentage: a fraction x 100), each with the text around it."""
    checked, missing = 0, []
    for m in _NUMBER.finditer(text):
        v, pct = float(m[1].replace(",", "")), m[2]
        places = len(m[1].split(".")[1]) if "." in m[1] else 0
        if not any(round(abs(x) * (100 if pct else 1), places) == v for x in have):
            missing.append(f"{m[0]}: ...{text[max(0, m.start() - 80):m.end() + 20]}...")
        checked += 1
    return checked, missing


def _source_numbers(doc: Path, link: str) -> list[float]:
    target = (doc.parent / link).resolve()
    js = target.with_suffix(".json")
    return _numbers(target.read_text()) + (_numbers(json.loads(js.read_text())) if js.exists() else [])


def _units(doc: Path):
    """The paragraphs of ``doc`` that link a result under benchmarks/results/ (a table without a
    link takes the links of the paragraph before it), without code, links' targets and result
    blocks: ``(text, links)``."""
    text = re.sub(r"```.*?```", "", BLOCK.sub("", doc.read_text()), flags=re.S)
    links_before: list[str] = []
    for para in text.split("\n\n"):
        links = re.findall(r"\]\(([^)#\s]*benchmarks/results/[^)#\s]+\.md)\)", para)
        if not links and para.lstrip().startswith("|"):
            links = links_before
        links_before = links
        if links:
            yield re.sub(r"`[^`]*`", "", re.sub(r"\]\([^)]*\)", "]", para)), links


# the figures of those paragraphs that no result file holds as such: each is computed here from the
# results (and checked), or comes from elsewhere, as said
def _derived(root: Path) -> dict[str, str]:
    t5k = json.loads((root / "benchmarks/results/table5/step1000/table5.json").read_text())
    t6 = json.loads((root / "benchmarks/results/table6/table6.json").read_text())["rows"]
    w1 = t5k["rows"]["w=1"]
    se = max((r["class_match"] * (1 - r["class_match"]) / t5k["num_videos"]) ** 0.5 for k, r in t5k["rows"].items() if k != "real")
    seconds = f"({sum(r.get('seconds', 0) for r in t6.values()):.0f} s for its three rows)"  # the sum of table6's rows
    return {
        "docs/reproducing.md": f"about ± {se:.2f} each; ({w1['class_prob_diff'] / w1['class_prob_diff_se']:.1f} SE); {seconds}",
        "docs/usage.md": f"{seconds}; 127 calls (64 steps and 63 corrector steps); 18-37 s and notebook 10 (a notebook's "
                         "output); ~1.7 min and ~10 min (rounded products and sums of the times quoted beside them)",
    }  # fmt: skip


def test_figures_in_docs_are_those_of_their_results():
    derived = _derived(ROOT)
    for rel, text in derived.items():
        for quote in re.findall(r"(?:about ± [\d.]+ each|\([\d.]+ SE\)|\(\d+ s for its three rows\))", text):
            assert quote in (ROOT / rel).read_text(), f"{rel}: {quote!r} is what the results give"
    paper = _numbers(" ".join(PAPER.values()))
    checked = 0
    for doc in DOCS:
        allowed = _numbers(derived.get(doc.relative_to(ROOT).as_posix(), ""))
        for text, links in _units(doc):
            have = [x for link in links for x in _source_numbers(doc, link)] + paper + allowed
            n, missing = _unmatched(text, have)
            assert not missing, f"{doc.relative_to(ROOT)}: in none of {links}: {missing[0]}"
            checked += n
    assert checked > 100


# ------------------------------------------------------------------ notebook 11: its tables, its summary, its readings
NB11 = ROOT / "notebooks" / "11_evaluation.ipynb"
SHOWN = re.compile(r'display\(Markdown\(find_repo_file\("benchmarks", "results", ((?:"[^"]+", )*"[^"]+\.md")\)')


def _cells(path: Path = NB11) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _markdown_outputs(cell: dict) -> list[str]:
    return ["".join(o["data"]["text/markdown"]) for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {})]


def _head(text: str, i: int) -> str:
    """A cell's name in the messages: ``**Reading Table 4**``, ``## Summary``, else ``cell 30``."""
    m = re.match(r"\*\*Reading Table \d+\*\*|## Summary", text)
    return m[0] if m else f"cell {i}"


def _readings(cells: list[dict], results: Path = RESULTS) -> list[tuple[str, str, list[Path]]]:
    """Notebook 11's markdown cells that read the results, ``(name, prose, result tables read)``:
    each "**Reading Table N**" cell, which reads the table the code cell before it shows and the
    results folders it names (`benchmarks/results/table5/step1000/`), and the cells of the Summary,
    which read every result; the prose without code, links' targets and the names of tables,
    figures, equations and notebooks (not results)."""
    out, summary = [], False
    for i, cell in enumerate(cells):
        text = _source(cell)
        summary = summary or text.startswith("## Summary")
        if cell["cell_type"] != "markdown" or not (summary or text.startswith("**Reading Table")):
            continue
        if summary:
            files = [p.with_suffix(".md") for p in result_files(results)]
        else:
            files = [results.joinpath(*re.findall(r'"([^"]+)"', m[1])) for m in SHOWN.finditer(_source(cells[i - 1]))]
            files += [p.with_suffix(".md") for d in re.findall(r"benchmarks/results/([\w/]+?)/?`", text)
                      for p in result_files(results / d)]  # fmt: skip
        prose = re.sub(r"`[^`]*`", "", re.sub(r"\]\([^)]*\)", "]", text))
        prose = re.sub(r"\b(?:Tables?|Figure|Section|eq\.|notebooks?) [\d(][\d.()-]*", "", prose)
        out.append((_head(text, i), prose, files))
    return out


# the figures of the readings that no result file holds as such, computed here from the results: as the prose writes them
def _derived_nb11(results: Path = RESULTS) -> dict[str, list[str]]:
    t4 = json.loads((results / "table4" / "table4.json").read_text())["rows"]["0 image frames"]
    diff = float(re.search(r"seed 1 - seed 0: ([-+\d.]+)", t4["heldout_diff_text"])[1])
    seed0 = t4["heldout_loss"] - diff / 2  # the mean over the two training seeds less half their difference
    t5k = json.loads((results / "table5" / "step1000" / "table5.json").read_text())
    w1 = t5k["rows"]["w=1"]
    se = max((r["class_match"] * (1 - r["class_match"]) / t5k["num_videos"]) ** 0.5 for k, r in t5k["rows"].items() if k != "real")
    return {"**Reading Table 4**": [f"is {abs(diff) / seed0:.1%} lower"],  # another training seed alone, against seed 0
            "**Reading Table 5**": [f"about ± {se:.2f} each", f"({w1['class_prob_diff'] / w1['class_prob_diff_se']:.1f} SE)"]}  # fmt: skip


def _check_readings(cells: list[dict], results: Path = RESULTS) -> tuple[int, list[str]]:
    paper = _numbers(" ".join([*PAPER.values(), *PAPER_MORE.values()]))
    derived = _derived_nb11(results)
    checked, missing = 0, []
    for head, prose, files in _readings(cells, results):
        assert files and all(f.exists() for f in files), (head, files)
        allowed = _numbers(" ".join(derived.get(head, [])))
        have = [x for f in files for x in _numbers(f.read_text()) + _numbers(json.loads(f.with_suffix(".json").read_text()))]
        n, miss = _unmatched(prose, have + paper + allowed)
        checked += n
        missing += [f"{head}: {m}" for m in miss]
    return checked, missing


def test_notebook_11_shows_the_tables_and_its_summary_as_the_jsons_make_them():
    cells = _cells()
    shown = [(c, m) for c in cells if c["cell_type"] == "code" for m in SHOWN.finditer(_source(c))]
    assert [m[1] for _, m in shown] == [f'"{t}", "{t}.md"' for t in ("table4", "table5", "table6")]
    for cell, m in shown:  # the committed output is the table's markdown (without its title), as committed
        path = RESULTS.joinpath(*re.findall(r'"([^"]+)"', m[1]))
        assert _markdown_outputs(cell) == [path.read_text().split("\n", 1)[1]], f"notebook 11 shows an old {path.name}"
    (summary,) = [c for c in cells if c["cell_type"] == "code" and "comparison_markdown(" in _source(c)]
    assert _markdown_outputs(summary) == [comparison_markdown(RESULTS)], "notebook 11's summary is not what the JSONs make"
    assert comparison_markdown(RESULTS).count("\n| ") == len(FILES)  # a row per result
    for i, cell in enumerate(cells):  # no results table typed into the prose
        assert cell["cell_type"] != "markdown" or not re.search(r"^\|", _source(cell), re.M), f"cell {i}: a typed table"


def test_figures_in_notebook_11_readings_are_those_of_their_results():
    cells = _cells()
    readings = _readings(cells)
    heads = [h for h, _, _ in readings]
    assert [h for h in heads if h.startswith("**Reading")] == [f"**Reading Table {n}**" for n in (4, 5, 6)]
    assert heads.count("## Summary") == 1 and len(heads) == 5  # the Summary's two markdown cells
    text = {_head(_source(c), i): _source(c) for i, c in enumerate(cells)}
    for head, quotes in _derived_nb11().items():
        for quote in quotes:
            assert quote in text[head], f"notebook 11, {head}: {quote!r} is what the results give"
    checked, missing = _check_readings(cells)
    assert not missing, "notebook 11: in none of the results read:\n" + "\n".join(missing)
    assert checked > 100


def test_a_changed_number_in_notebook_11_readings_is_caught(tmp_path):
    cells = _cells()
    # the prose changed: one number of each reading, each caught alone
    for head, old, new, caught in (("**Reading Table 4**", "3685 to 6710", "3685 to 6711", "6711"),
                                   ("**Reading Table 5**", "28.3 →", "28.4 →", "28.4"),
                                   ("**Reading Table 6**", "6.6 times", "6.7 times", "6.7")):  # fmt: skip
        changed = json.loads(json.dumps(cells))
        (cell,) = [c for c in changed if _source(c).startswith(head)]
        assert old in _source(cell), (head, old)
        cell["source"] = _source(cell).replace(old, new, 1)
        _, missing = _check_readings(changed)
        assert len(missing) == 1 and missing[0].startswith(f"{head}: {caught}: "), missing
    # a result changed: the prose that quotes it, and the summary, no longer agree with it
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    path = results / "table6" / "table6.json"
    result = json.loads(path.read_text())
    result["rows"]["replacement"]["position_ratio"] = 9.8702
    path.write_text(json.dumps(result, indent=2) + "\n")
    assert regenerate(path)  # table6.md made again from the changed JSON
    _, missing = _check_readings(cells, results)
    assert len(missing) == 1 and missing[0].startswith("**Reading Table 6**: 3.0: "), missing
    assert "replacement: 9.87" in comparison_markdown(results) and comparison_markdown(results) != comparison_markdown(RESULTS)


# ------------------------------------------------------------------ links and names of the README and docs/
def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=[d.relative_to(ROOT).as_posix() for d in DOCS])
def test_relative_links_lead_to_files(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.relative_to(ROOT)}: the link {link} leads nowhere"
        if anchor and path.suffix == ".md":
            anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", path.read_text(), re.M)}
            assert anchor in anchors, f"{doc.relative_to(ROOT)}: {link}: no such heading"


def test_package_map_names_functions_that_exist():
    readme = (ROOT / "README.md").read_text()
    package_map = readme[readme.index("## Package map"):readme.index("## Results")]
    named = re.findall(r"\[`(\w+)\.(\w+)`\]\((vdm_lite/[\w/]+\.py)\)", package_map)
    assert {f"eq. ({i})" for i in range(1, 9)} <= set(re.findall(r"eq\. \(\d\)", package_map))
    assert len(named) >= 9  # eq. (1)-(8) and DDIM
    for module, name, path in named:
        assert path == f"vdm_lite/{module}.py"
        assert re.search(rf"^(def|class) {name}\b", (ROOT / path).read_text(), re.M), f"{path} has no {name}"
    for module, what in re.findall(r"^\| `(vdm_lite/[\w/.]+)`[^|]*\| ([^|]+) \|", package_map, re.M):
        assert (ROOT / module).exists(), module
        if module.endswith(".py"):  # the names a one-file row lists are defined in that file
            source = (ROOT / module).read_text()
            for name in re.findall(r"`([A-Za-z_]\w*)`", what):
                assert re.search(rf"^(def|class) {name}\b|^{name}\b *[:=]", source, re.M), f"{module} has no {name}"


def test_table6_summary_says_what_a_class_model_was_told():
    """The summary's setting names the label and guidance of a class-conditional Table 6 run; a
    null-label run (no guidance weight recorded: ``None``) is named as such, not formatted as a weight."""
    from vdm_lite.experiments.report import _summary_row

    told = json.loads((RESULTS / "table6" / "class" / "table6.json").read_text())
    setting, _ = _summary_row(told, "table6")
    assert "told each clip's class, guidance w = 0" in setting and "12 context frames" in setting
    null = {**told, "label": "null", "guidance_weight": None}
    setting, _ = _summary_row(null, "table6")
    assert "told the null label" in setting and "guidance" not in setting
    uncond = json.loads((RESULTS / "table6" / "table6.json").read_text())
    assert "told" not in _summary_row(uncond, "table6")[0]
