"""The student version of the notebooks: solution blocks found, blanked and written out.

**One source of truth.** The committed notebook holds each exercise *with* its solution, between
two marker lines, and runs it (so its outputs, and the tests, exercise the graders)::

    def q_sample(x, logsnr, noise):
        \"\"\"... shapes, and the equation it implements ...\"\"\"
        # --- solution (your turn: write eq. (1), z_t = alpha_t x + sigma_t eps) ---
        lam = logsnr.reshape(-1, *[1] * (x.ndim - 1))
        return torch.sigmoid(lam).sqrt() * x + torch.sigmoid(-lam).sqrt() * noise
        # --- end solution ---

The next cell grades it: ``exercises.check_q_sample(q_sample)``. The **student version** is
generated from the committed notebooks::

    python -m vdm_lite.exercises --student notebooks/ student/

Each solution block (markers included) becomes one line at the same indentation,
``raise NotImplementedError("your turn: write eq. (1), z_t = alpha_t x + sigma_t eps")``, and the
outputs of the exercise and grader cells are cleared; every other cell keeps its code and its
outputs. ``python -m vdm_lite.exercises --list notebooks/`` lists the exercises.

Rules that keep exercises testable (``tests/test_exercises.py`` checks them):

* an exercise cell defines one or more functions and imports what it uses, so it runs on its own;
* every function that holds a solution block has a grader ``check_<name>`` in
  :data:`vdm_lite.exercises.GRADERS`, called as ``exercises.check_<name>(<name>)`` by the next
  code cell;
* later cells use the library, never the student's function, so a student notebook with an
  unsolved exercise still runs to the end (only its grader cell fails)."""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
from pathlib import Path

SOLUTION_START = re.compile(r"^(?P<indent>[ \t]*)# --- solution \(your turn: (?P<hint>.+)\) ---[ \t]*$")
SOLUTION_END = re.compile(r"^[ \t]*# --- end solution ---[ \t]*$")
MARKER = re.compile(r"^[ \t]*# --- (solution|end solution)\b")
STUDENT_NOTE = ("\n\n> **Student version.** Each exercise cell raises *\"your turn\"* until you write its body; the cell "
                "after it grades your function against the library and says what is off.")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def student_source(source: str) -> str:
    """``source`` with every solution block (markers included) replaced by
    ``raise NotImplementedError("your turn: HINT")`` at the marker's indentation."""
    out, hint, start = [], None, 0
    lines = source.split("\n")
    for n, line in enumerate(lines, 1):
        m = SOLUTION_START.match(line)
        if hint is None:
            if m:
                hint, start = m, n
                out.append(f'{m["indent"]}raise NotImplementedError({json.dumps("your turn: " + m["hint"])})')
            elif MARKER.match(line):
                raise ValueError(f"line {n}: {line.strip()!r} outside a solution block (or a start marker without "
                                 "'(your turn: ...)')")
            else:
                out.append(line)
        elif SOLUTION_END.match(line):
            hint = None
        elif MARKER.match(line):
            raise ValueError(f"line {n}: {line.strip()!r} inside the solution block opened on line {start}")
    if hint is not None:
        raise ValueError(f"the solution block opened on line {start} has no '# --- end solution ---'")
    return "\n".join(out)


def _solved_functions(source: str) -> list[str]:
    """Names of the functions whose body holds a solution block."""
    starts = [n for n, line in enumerate(source.split("\n"), 1) if SOLUTION_START.match(line)]
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and any(node.lineno < n <= node.end_lineno for n in starts):
            names.append(node.name)
    return names


def is_exercise_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and any(SOLUTION_START.match(l) for l in _source(cell).split("\n"))


def is_grader_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and re.search(r"\bexercises\.check_\w+\(", _source(cell)) is not None


def find_exercises(nb: dict) -> list[dict]:
    """The exercises of a notebook (a dict from its JSON): one dict per function with a solution
    block, ``{"name", "cell" (index), "source", "grader_cell" (index of the next code cell)}``."""
    found = []
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        if is_exercise_cell(cell):
            nxt = next((j for j in range(i + 1, len(cells)) if cells[j].get("cell_type") == "code"), None)
            for name in _solved_functions(_source(cell)):
                found.append({"name": name, "cell": i, "source": _source(cell), "grader_cell": nxt})
    return found


def _as_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def student_notebook(nb: dict) -> dict:
    """A copy of the notebook ``nb`` (its JSON as a dict): solution blocks replaced by the "your
    turn" error, outputs of exercise and grader cells cleared, a note in the first cell."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        exercise, grader = is_exercise_cell(cell), is_grader_cell(cell)
        if exercise:
            cell["source"] = _as_lines(student_source(_source(cell)))
        if exercise or grader:
            cell["outputs"], cell["execution_count"] = [], None
    if nb["cells"] and nb["cells"][0].get("cell_type") == "markdown":
        first = nb["cells"][0]
        text = _source(first)
        head, sep, rest = text.partition("\n\n")  # after the title block
        first["source"] = _as_lines(head + STUDENT_NOTE + (sep + rest if sep else ""))
    return nb


def write_student_version(sources: list[Path], out_dir: Path) -> list[tuple[str, int]]:
    """Write the student version of the notebooks ``sources`` (files, or folders whose
    ``NN_*.ipynb`` are taken) into ``out_dir``; returns ``(file name, number of exercises)``."""
    files: list[Path] = []
    for src in sources:
        src = Path(src)
        files += sorted(src.glob("[0-9][0-9]_*.ipynb")) if src.is_dir() else [src]
    if not files:
        raise ValueError(f"no notebooks found in {', '.join(map(str, sources))}")
    out_dir = Path(out_dir)
    if any(f.resolve().parent == out_dir.resolve() for f in files):
        raise ValueError(f"{out_dir} holds the source notebooks: write the student version to another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        nb = json.loads(f.read_text(encoding="utf-8"))
        n = len(find_exercises(nb))
        (out_dir / f.name).write_text(json.dumps(student_notebook(nb), indent=1, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
        written.append((f.name, n))
    return written


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m vdm_lite.exercises",
                                     description="The notebooks' graded exercises: list them, or write the student version.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--student", action="store_true",
                      help="write the student version: SRC... (notebook files or folders) OUT_DIR")
    mode.add_argument("--list", action="store_true", help="list the exercises of SRC... (notebook files or folders)")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.student:
        if len(args.paths) < 2:
            parser.error("--student needs SRC... OUT_DIR")
        try:
            written = write_student_version(args.paths[:-1], args.paths[-1])
        except ValueError as exc:
            parser.error(str(exc))
        for name, n in written:
            print(f"{args.paths[-1] / name}: {n} exercise(s)")
        return 0
    for src in args.paths:
        for f in sorted(src.glob("[0-9][0-9]_*.ipynb")) if src.is_dir() else [src]:
            names = [e["name"] for e in find_exercises(json.loads(f.read_text(encoding="utf-8")))]
            print(f"{f.name}: {', '.join(names) if names else '-'}")
    return 0
