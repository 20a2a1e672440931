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

Also here: the parts the tables share, the markdown table itself (:func:`table_markdown`),
the paired statistics (:func:`paired`, :func:`paired_text`) and the line plot of scores
against a setting (:func:`metric_plot`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import torch

__all__ = ["paired", "paired_text", "fmt", "table_markdown", "write_result", "markdown", "regenerate", "result_files",
           "metric_plot", "main"]

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
    """Every result JSON under ``root`` that a table is made from (``table1.json`` ... ``table6.json``)."""
    return sorted(p for p in Path(root).rglob("table*.json") if p.stem in TABLES)


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
    return 1 if a.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
