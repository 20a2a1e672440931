"""Results of the reproductions: each JSON is canonical, its markdown table made from it.

Every reproduction (:mod:`~vdm_lite.experiments.table4`, ``table5``, ``table6``,
:mod:`~vdm_lite.experiments.tables1to3`) returns a result dict and writes it with
:func:`write_result`: ``NAME.json`` (the result without per-video lists) and ``NAME.md``, which
is made from that JSON alone by the table's ``markdown(result)``. So a table can always be made
again from its JSON, and a committed table that differs from its JSON has been edited by hand:

    python -m vdm_lite.experiments.report benchmarks/results/table4/table4.json   # rewrite table4.md
    python -m vdm_lite.experiments.report                     # every table*.json under benchmarks/results
    python -m vdm_lite.experiments.report --check             # only list the tables that differ (exit 1)
    python -m vdm_lite.experiments.report --plots             # also redraw table4.png / table5.png

The same commands (without paths) also fill the result blocks of ``README.md`` and ``docs/*.md``
from the JSONs: the text between ``<!-- results:begin KEY -->`` and ``<!-- results:end KEY -->``
is made by :func:`block_markdown` -- ``summary``, the README's one table with a row per result
and a link to its full table (:func:`summary_markdown`), or a result's path under the results
folder (``table6/table6.json``), that table's main columns (:func:`brief_markdown`). So no results
table is typed by hand anywhere; ``--check`` lists the documents whose blocks differ. Notebook 11's
summary, the paper against this run, is :func:`comparison_markdown`, made from the same JSONs when
the notebook runs.

Also here: the parts the tables share, the markdown table itself (:func:`table_markdown`),
the paired statistics (:func:`paired`, :func:`paired_text`) and the line plot of scores
against a setting (:func:`metric_plot`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Sequence

import torch

__all__ = ["paired", "paired_text", "fmt", "table_markdown", "write_result", "markdown", "regenerate", "result_files",
           "summary_markdown", "comparison_markdown", "brief_markdown", "block_markdown", "fill_blocks", "update_doc",
           "doc_files", "PAPER", "PAPER_MORE", "metric_plot", "main"]

# the table of each result name: the module whose markdown(result) makes NAME.md from NAME.json
TABLES = {"table1": "tables1to3", "table2": "tables1to3", "table3": "tables1to3", "table4": "table4", "table5": "table5",
          "table6": "table6"}  # fmt: skip
PLOTS = {"table4": "plot_table4", "table5": "plot_table5"}  # the plots drawn from the JSON alone


# ------------------------------------------------------------------ paired statistics
def paired(d: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of per-item values ``(N,)``: one score per clip or sample, or the
    differences between two models' scores on the same items."""
    return d.mean().item(), (d.std() / math.sqrt(d.shape[0])).item()


def paired_text(d: torch.Tensor, digits: int = 5, in_se: bool = True) -> str:
    """``"+0.00049 ± 0.00004 (+12.1 SE)"`` for per-item differences ``d`` ``(N,)`` (without the
    part in brackets when ``in_se`` is false)."""
    m, se = paired(d)
    return f"{m:+.{digits}f} ± {se:.{digits}f}" + (f" ({m / se:+.1f} SE)" if in_se and se > 0 else "")


# ------------------------------------------------------------------ markdown and JSON
def fmt(v) -> str:
    """A number of a table: two decimals, ``n/a`` for a missing one."""
    return "n/a" if v is None else f"{v:.2f}"


def table_markdown(title: str, intro: list[str], columns, result: dict, extra_cols=(("seconds", "seconds"),)) -> str:
    """A results page: the title, the ``intro`` lines, a table with one row per entry of
    ``result["rows"]`` (``columns`` formatted as numbers, ``extra_cols`` written as they are,
    both ``(key, label)`` pairs), the device line and the command."""
    env, rows = result["environment"], result["rows"]
    lines = [f"# {title}", "", *intro, "",
             "| | " + " | ".join(label for _, label in columns) + "".join(f" | {label}" for _, label in extra_cols) + " |",
             "|---|" + "---|" * (len(columns) + len(extra_cols))]  # fmt: skip
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(fmt(row.get(k)) for k, _ in columns)
                     + "".join(f" | {row.get(c, '')}" for c, _ in extra_cols) + " |")  # fmt: skip
    lines += ["", f"Device: {env['device']}; torch {env['torch']}, python {env['python']}, vdm_lite {env['vdm_lite']}."]
    if result.get("command"):
        lines += ["", f"Command: `{result['command']}`"]
    return "\n".join(lines + [""])


def _table_module(name: str):
    if name not in TABLES:
        raise ValueError(f"no table is made from {name!r} results; known: {', '.join(TABLES)}")
    return importlib.import_module(f"vdm_lite.experiments.{TABLES[name]}")


def markdown(result: dict, name: str | None = None) -> str:
    """The markdown page of a result (a dict, as in ``NAME.json``) of table ``name`` (default
    ``result["table"]``)."""
    name = name or result.get("table")
    return _table_module(name).markdown(result)


def write_result(out: str | Path, name: str, result: dict) -> Path:
    """``out/name.json`` (``result`` without per-video lists) and ``out/name.md``, made from that
    JSON as :func:`regenerate` makes it. Returns the JSON's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    slim = {**result, "rows": {k: {kk: vv for kk, vv in v.items() if kk != "per_video"} for k, v in result["rows"].items()}}
    text = json.dumps(slim, indent=2) + "\n"
    path = out / f"{name}.json"
    path.write_text(text)
    (out / f"{name}.md").write_text(markdown(json.loads(text), name))
    return path


def regenerate(path: str | Path, *, check: bool = False, plots: bool = False) -> bool:
    """Make ``NAME.md`` beside ``path`` (``NAME.json``, ``NAME`` one of :data:`TABLES`) from the
    JSON; with ``plots``, also redraw ``NAME.png`` where the JSON holds all it shows (Tables 4
    and 5). Returns whether the markdown differed from the file there; with ``check``, writes
    nothing."""
    path = Path(path)
    text = markdown(json.loads(path.read_text()), path.stem)
    md = path.with_suffix(".md")
    differs = not md.exists() or md.read_text() != text
    if not check:
        if differs:
            md.write_text(text)
        if plots and path.stem in PLOTS:
            getattr(_table_module(path.stem), PLOTS[path.stem])(json.loads(path.read_text()), path.with_suffix(".png"))
    return differs


def result_files(root: str | Path = "benchmarks/results") -> list[Path]:
    """Every result JSON under ``root`` that a table is made from (``table1.json`` ... ``table6.json``),
    by table, a table's main result (``table5/table5.json``) before its variants (``table5/step1000/``)."""
    return sorted((p for p in Path(root).rglob("table*.json") if p.stem in TABLES), key=lambda p: (p.stem, len(p.parts), p))


# ------------------------------------------------------------------ result blocks of README.md and docs/
# the paper's numbers beside each summary row (Tables 4-6, shared/paper-notes.md; Tables 1-3 carry theirs in their JSON)
PAPER = {"table4": "FVD 202 → 68 → 58 (0 / 4 / 8 image frames; 200k steps at batch 128)",
         "table5": "FVD 41.65 / 50.19 / 163.74, IS-avg 10.80 / 13.22 / 14.80 at w = 1 / 2 / 5",
         "table6": "FVD 451.45 with replacement, 136.22 with reconstruction guidance"}  # fmt: skip
# the paper's further numbers of Tables 4-6 that prose beside PAPER's quotes (notebook 11's readings of the tables;
# the paper's FVD to two decimals, FID-avg, its sample count)
PAPER_MORE = {"table4": "FVD 202.28 → 68.11 → 57.84, FID-avg 37.5 → 18.6 → 15.6 (0 / 4 / 8 image frames; 4096 samples)",
              "table5": "4096 samples per guidance weight",
              "table6": "FID-avg 25.95 with replacement, 13.77 with reconstruction guidance"}  # fmt: skip
BLOCK = re.compile(r"(<!-- results:begin (\S+) -->\n)(.*?)(<!-- results:end \2 -->)", re.S)


def _slash(values, spec: str) -> str:
    """``"1.48 / 1.75 / 1.87"``: values formatted by ``spec``, one after another."""
    return " / ".join(format(v, spec) for v in values)


def _method(name: str) -> str:
    """Table 6's row names spelled out: ``reconstruction w_r=5`` -> ``reconstruction guidance, w_r = 5``."""
    return name.replace("reconstruction w_r=", "reconstruction guidance, w_r = ")


def _device(result: dict) -> str:
    env = result["environment"]
    return f"{env['device']}, torch {env['torch']}"


def _rows(result: dict):
    """A result's rows, its run names (all but ``real``), the real-clips row, and ``each(key, spec)``:
    one key of every run, slash-separated."""
    rows = result["rows"]
    runs = [k for k in rows if k != "real"]

    def each(key: str, spec: str) -> str:
        return _slash([rows[k][key] for k in runs], spec)

    return rows, runs, rows.get("real", {}), each


def _summary_row(result: dict, name: str) -> tuple[str, str]:
    """The setting and the headline numbers of one result, for the summary table."""
    rows, runs, real, each = _rows(result)

    if name == "table4":
        seeds, frames = result.get("train_seeds", 1), _slash(result["image_frames"], "d")
        setting = (f"`{result['preset']}` trained {result['steps']} steps with {frames} image frames per clip, {seeds} "
                   f"training seed{'s' if seeds > 1 else ''}; {result['num_videos']} samples x "
                   f"{result.get('sample_seeds', 1)} sets per model")  # fmt: skip
        if result.get("condition"):  # the samples were told real clips' labels or captions (table4._told)
            w = result.get("guidance_weight")
            setting += f", told real clips' {'class labels' if result['condition'] == 'class' else 'captions'}" + (
                f", guidance w = {w:g}" if w else "")
        numbers = (f"held-out video loss {each('heldout_loss', '.5f')}, FD-domain {each('fd_domain', '.0f')}, coherence "
                   f"{each('coherence', '.2f')}" + (f", class match {each('class_match', '.2f')}" if result.get("condition") else "")
                   + f" with {frames} image frames (real clips: FD-domain {real['fd_domain']:.0f}, "
                   f"coherence {real['coherence']:.2f})")  # fmt: skip
    elif name == "table5":
        setting = (f"model `{result['source']}` (step {result['step']}), {result['num_videos']} samples per weight, "
                   f"{result['steps']} {result['sampler']} steps")
        numbers = (f"IS-domain {each('is_domain', '.2f')}, FD-domain {each('fd_domain', '.0f')}, p(label) "
                   f"{each('class_prob', '.2f')} at w = {' / '.join(k.removeprefix('w=') for k in runs)} (real clips "
                   f"{real['is_domain']:.2f}, {real['fd_domain']:.0f}, {real['class_prob']:.2f})")  # fmt: skip
    elif name == "table6":
        setting = (f"{result['num_videos']} real first blocks extended {result['block_frames']} → {result['total_frames']} "
                   f"frames, model `{result['source']}` (step {result['step']}), {result['steps']} {result['sampler']} steps")
        if result.get("label") == "clip":  # a class-conditional model told each clip's class
            setting += f", told each clip's class, guidance w = {result.get('guidance_weight') or 0:g}"
        elif result.get("label") == "null":  # the same network unconditioned: no guidance to give
            setting += ", told the null label"
        if result.get("context_frames", result["block_frames"] // 2) != result["block_frames"] // 2:
            setting += f", {result['context_frames']} context frames"
        numbers = "position jump at block boundaries (x typical): " + ", ".join(
            f"{r['position_ratio']:.2f} ({_method(k)})" for k, r in rows.items())
    else:  # Tables 1-3: their full tables hold this run's numbers beside the paper's
        setting, numbers = f"`{result.get('command') or name}`", "in the full table"
    return setting, numbers


def summary_markdown(root: str | Path = "benchmarks/results", doc_dir: str | Path = ".") -> str:
    """The README's results table: one row per result JSON under ``root`` (:func:`result_files`):
    its table's title, setting, headline numbers, the paper's (:data:`PAPER`), device and a link
    to the full table (relative to ``doc_dir``, where the document is); then each one's command."""
    root, doc_dir = Path(root), Path(doc_dir)
    lines = ["| table | setting | this run | the paper | device | full table |", "|---|---|---|---|---|---|"]
    commands = []
    for path in result_files(root):
        result, name = json.loads(path.read_text()), path.relative_to(root).as_posix()
        title = markdown(result, path.stem).splitlines()[0].removeprefix("# ")
        setting, numbers = _summary_row(result, path.stem)
        link = f"[{name.removesuffix('.json')}.md]({Path(os.path.relpath(path.with_suffix('.md'), doc_dir)).as_posix()})"
        lines.append(f"| {title} | {setting} | {numbers} | {PAPER.get(path.stem, 'in the full table')} | {_device(result)} "
                     f"| {link} |")
        commands.append(f"- {name}: `{result.get('command') or 'not recorded'}`")
    return "\n".join(lines + ["", "Commands, as each JSON records them:", "", *commands, ""])


def _comparison_numbers(result: dict, name: str) -> str:
    """This run's numbers of one result for :func:`comparison_markdown`: those its table is about."""
    rows, runs, real, each = _rows(result)

    if name == "table4":
        frames, seeds = _slash(result["image_frames"], "d"), result.get("train_seeds", 1)
        rel = "; ".join(f"{k.split()[0]} frames {_slash([100 * x for x in rows[k]['heldout_rel_by_seed']], '+.1f')} %"
                        if "heldout_rel_by_seed" in rows[k]  # several training seeds: one figure each
                        else f"{k.split()[0]} frames {100 * rows[k]['heldout_diff'] / rows[runs[0]]['heldout_loss']:+.1f} %"
                        for k in runs[1:])  # fmt: skip
        other = f"; another seed alone (0 frames, {rows[runs[0]]['heldout_diff_text']})" if seeds > 1 else ""
        told = " (told real clips' labels)" if result.get("condition") == "class" else (
            " (told real clips' captions)" if result.get("condition") else "")
        return (f"held-out video loss against 0 image frames, paired{', per training seed' if seeds > 1 else ''}: {rel}"
                f"{other}; with {frames} image frames{told} shape consistency "
                f"{each('shape_consistency', '.2f')}, coherence {each('coherence', '.2f')}, FD-domain {each('fd_domain', '.0f')}"
                + (f", class match {each('class_match', '.2f')}" if result.get("condition") else "")
                + f" (real clips: {real['shape_consistency']:.2f}, {real['coherence']:.2f}, {real['fd_domain']:.0f})")  # fmt: skip
    if name == "table5":
        return (f"at w = {' / '.join(k.removeprefix('w=') for k in runs)}: IS-domain {each('is_domain', '.2f')}, within-class "
                f"spread {each('spread', '.1f')}, FD-domain {each('fd_domain', '.0f')}, p(label) {each('class_prob', '.2f')} "
                f"(real clips: {real['is_domain']:.2f}, {real['spread']:.1f}, {real['fd_domain']:.0f}, {real['class_prob']:.2f})")
    if name == "table6":
        return "position jump at block boundaries (x typical) and color consistency over the video: " + "; ".join(
            f"{_method(k)}: {r['position_ratio']:.2f}, {r['color_consistency']:.2f}" for k, r in rows.items())
    return "in the full table"  # Tables 1-3: their full tables hold this run's numbers beside the paper's


def comparison_markdown(root: str | Path = "benchmarks/results") -> str:
    """Notebook 11's summary: one row per result JSON under ``root`` (:func:`result_files`), its
    table's title and setting, the paper's numbers (:data:`PAPER`) and this run's, those its table
    is about (narrower than :func:`summary_markdown`, without the device, link and command, which
    the full tables carry)."""
    root = Path(root)
    files = result_files(root)
    lines = ["| | setting | the paper | here (built-in world, CPU scale) |", "|---|---|---|---|"]
    for path in files:
        result = json.loads(path.read_text())
        title = markdown(result, path.stem).splitlines()[0].removeprefix("# ").replace(" at small scale", "")
        if sum(p.stem == path.stem for p in files) > 1 and "step" in result:  # Table 5 at two steps of one model
            title += f" (step {result['step']})"
        elif sum(p.stem == path.stem for p in files) > 1 and result.get("condition"):  # Table 4 of a conditional preset
            title += f" ({result['condition']}-conditional)"
        setting, _ = _summary_row(result, path.stem)
        lines.append(f"| {title} | {setting} | {PAPER.get(path.stem, 'in the full table')} "
                     f"| {_comparison_numbers(result, path.stem)} |")
    return "\n".join(lines + [""])


def brief_markdown(result: dict, name: str) -> str:
    """A result's main columns as one markdown table, with its device and command (every column
    is in the full table, ``NAME.md``)."""
    rows = result["rows"]
    if name == "table4":
        lines = ["| image frames per clip | held-out video loss (vs 0 frames, paired; per training seed) "
                 "| FD-domain: mean (per sample set) | coherence: mean (per sample set) "
                 "| shape consistency: mean (per sample set) | color consistency | count stability |",
                 "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        told = bool(result.get("condition"))  # samples told real clips' labels: their class match too
        if told:
            lines = [lines[0] + " class match |", lines[1] + "---:|"]
        for k, r in rows.items():
            match = f" {r['class_match']:.2f} |" if told else ""
            if k == "real":
                lines.append(f"| real clips | | {r['fd_domain']:.0f} | {r['coherence']:.2f} | {r['shape_consistency']:.2f} "
                             f"| {r['color_consistency']:.2f} | {r['count_stability']:.2f} |{match}")
                continue
            vs_0 = (f"{_slash([100 * x for x in r['heldout_rel_by_seed']], '+.1f')} %" if "heldout_rel_by_seed" in r
                    else r.get("heldout_diff_text", ""))  # the first row: its other seeds against seed 0
            lines.append(f"| {k.split()[0]} | {r['heldout_loss']:.5f}{f' ({vs_0})' if vs_0 else ''} | {r['fd_domain']:.0f} ({r['fd_domain_by_seed']}) "
                         f"| {r['coherence']:.2f} ({r['coherence_by_seed']}) | {r['shape_consistency']:.2f} ({r['shape_by_seed']}) "
                         f"| {r['color_consistency']:.2f} | {r['count_stability']:.2f} |{match}")  # fmt: skip
    elif name == "table5":
        lines = ["| guidance weight w | IS-domain (fidelity) | within-class spread (diversity) | FD-domain | coherence "
                 "| class match | p(label) (paired vs w = 0) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for k, r in rows.items():
            vs_0 = f" ({r['class_prob_diff']:+.2f} ± {r['class_prob_diff_se']:.2f})" if "class_prob_diff" in r else ""
            lines.append(f"| {'real clips' if k == 'real' else k.removeprefix('w=')} | {r['is_domain']:.2f} | {r['spread']:.1f} "
                         f"| {r['fd_domain']:.0f} | {r['coherence']:.2f} | {r['class_match']:.2f} | {r['class_prob']:.2f}{vs_0} |")
    elif name == "table6":
        lines = ["| method | position jump at block boundaries (x typical) | color jump (x typical) | color consistency "
                 "| count stability |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {_method(k)} | {r['position_ratio']:.2f} | {r['color_ratio']:.2f} | {r['color_consistency']:.2f} "
                  f"| {r['count_stability']:.2f} |" for k, r in rows.items()]
    else:  # Tables 1-3: the full table without its title and notes
        lines = [part for part in markdown(result, name).split("\n\n") if part.startswith("| ")][:1]
    return "\n".join(lines + ["", f"{_device(result)}; `{result.get('command') or 'command not recorded'}`", ""])


def block_markdown(key: str, root: str | Path = "benchmarks/results", doc_dir: str | Path = ".") -> str:
    """The text of a result block: ``summary`` (:func:`summary_markdown`) or a result JSON's path
    under ``root`` (:func:`brief_markdown`)."""
    if key == "summary":
        return summary_markdown(root, doc_dir)
    path = Path(root) / key
    if path.suffix != ".json" or path.stem not in TABLES or not path.exists():
        raise ValueError(f"result block {key!r}: neither 'summary' nor a result JSON under {root}")
    return brief_markdown(json.loads(path.read_text()), path.stem)


def fill_blocks(text: str, root: str | Path = "benchmarks/results", doc_dir: str | Path = ".") -> str:
    """``text`` with every result block made again from the JSONs under ``root``."""
    return BLOCK.sub(lambda m: m[1] + block_markdown(m[2], root, doc_dir) + m[4], text)


def update_doc(path: str | Path, root: str | Path = "benchmarks/results", *, check: bool = False) -> bool:
    """Fill the result blocks of a document (``README.md``, ``docs/*.md``) from the JSONs under
    ``root``. Returns whether it differed; with ``check``, writes nothing."""
    path = Path(path)
    old = path.read_text()
    new = fill_blocks(old, root, path.parent)
    if new != old and not check:
        path.write_text(new)
    return new != old


def doc_files(repo: str | Path = ".") -> list[Path]:
    """The documents of ``repo`` that hold result blocks: ``README.md`` and ``docs/*.md``."""
    repo = Path(repo)
    paths = [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
    return [p for p in paths if p.exists() and BLOCK.search(p.read_text())]


# ------------------------------------------------------------------ plots
def metric_plot(ax, xs, rows: dict, keys, xlabel: str, ref: dict | None = None) -> None:
    """Scores ``keys`` (``(key, label)`` pairs) of every row but ``real`` against ``xs`` on ``ax``;
    the ``ref`` row's values dotted."""
    for k, label in keys:
        ys = [rows[x].get(k) for x in rows if x != "real"]
        line, = ax.plot(xs, [float("nan") if y is None else y for y in ys], "o-", label=label)
        if ref is not None and ref.get(k) is not None:
            ax.axhline(ref[k], color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7)


# ------------------------------------------------------------------ command line
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vdm_lite.experiments.report",
                                description="Make each results table (NAME.md) again from its JSON (NAME.json).")  # fmt: skip
    p.add_argument("paths", nargs="*", help="result JSON files (default: every table*.json under --root)")
    p.add_argument("--root", default="benchmarks/results", help="where to look without paths (default benchmarks/results)")
    p.add_argument("--check", action="store_true", help="write nothing; list the tables that differ and exit 1 if any")
    p.add_argument("--plots", action="store_true", help="also redraw table4.png and table5.png from their JSON")
    p.add_argument("--docs", nargs="*", default=None,
                   help="documents whose result blocks to fill (without a value, or by default when no paths are given: "
                        "README.md and the docs/*.md that hold any)")
    a = p.parse_args(argv)
    paths = [Path(x) for x in a.paths] or result_files(a.root)
    if not paths:
        p.error(f"no result JSON files under {a.root}")
    differ = []
    for path in paths:
        if regenerate(path, check=a.check, plots=a.plots):
            differ.append(path)
        state = ("differs from its JSON" if a.check else "rewritten") if path in differ else "up to date"
        print(f"{path.with_suffix('.md')}: {state}")
    if a.docs is None:  # result blocks too when every result is made again, not for the JSONs named
        docs = [] if a.paths else doc_files()
    else:
        docs = [Path(x) for x in a.docs] or doc_files()
    for doc in docs:
        if update_doc(doc, a.root, check=a.check):
            differ.append(doc)
        state = ("result blocks differ from the JSONs" if a.check else "result blocks rewritten") if doc in differ else "up to date"
        print(f"{doc}: {state}")
    return 1 if a.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
