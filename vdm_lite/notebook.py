"""What the setup cell of every notebook does, written once.

* :func:`setup` -- the device, the CPU thread count and the figure style of a notebook.
  Threads are torch's default (``torch.get_num_threads()``: from the machine's cores, or
  ``OMP_NUM_THREADS`` when set) unless the environment variable ``VDM_LITE_THREADS`` says otherwise,
  or a notebook asks for a number; ``VDM_LITE_THREADS`` wins over both.
* :func:`find_checkpoint` and :func:`find_repo_file` -- files that the repository ships
  beside the package (the models of ``data/checkpoints/``, the results of
  ``benchmarks/results/``), looked for next to ``vdm_lite``, in the working directory or its
  parent, and on Colab in the clone that the notebook's first cell makes.
* :func:`strip_widgets` -- remove saved widget outputs (tqdm bars, sliders) and the widget
  state from a notebook file before it is committed: ``python -m vdm_lite.notebook
  --strip-widgets notebooks/*.ipynb``. GitHub cannot render them (a bar saved at "0%").

``REPOSITORY_URL`` is the ``Repository`` of ``[project.urls]`` in ``pyproject.toml`` (the
test suite checks that they, the notebooks' Colab cells and the README's badges agree).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from .utils import default_device

__all__ = ["REPOSITORY_URL", "THREADS_ENV", "FIGURE_DPI", "setup", "resolve_threads", "find_repo_file", "find_checkpoint",
           "strip_widgets"]

REPOSITORY_URL = "https://github.com/vdm-lite/vdm_lite"
THREADS_ENV = "VDM_LITE_THREADS"
FIGURE_DPI = 100  # inline figures: readable on a laptop screen; the figure sizes (inches) are the notebooks' own
COLAB_CLONE = Path("/content/vdm_lite")  # where the Colab cell of a notebook clones the repository
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def resolve_threads(threads: int | None = None) -> int | None:
    """The CPU thread count a notebook should set: ``VDM_LITE_THREADS`` if set, else
    ``threads``; ``None`` keeps torch's default."""
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{THREADS_ENV}={env!r}: give a positive number of CPU threads, or unset it for torch's default")
        return n
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads={threads!r}: give a positive number of CPU threads, or None for torch's default")
    return None if threads is None else int(threads)


def setup(*, threads: int | None = None, dpi: float = FIGURE_DPI, font_size: float = 9) -> torch.device:
    """Set up a notebook and return its device (:func:`vdm_lite.utils.default_device`).

    * CPU threads: ``torch.set_num_threads`` only when ``VDM_LITE_THREADS`` or ``threads`` asks
      for a number (the variable wins); otherwise torch's default is left alone.
    * Figures: ``figure.dpi`` and ``savefig.dpi`` = ``dpi`` and ``font.size`` = ``font_size``
      (call it after ``%matplotlib inline``, which resets the style).
    """
    n = resolve_threads(threads)
    if n is not None:
        torch.set_num_threads(n)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "font.size": font_size})
    return default_device()


def _roots() -> list[Path]:
    import vdm_lite

    return [Path(vdm_lite.__file__).resolve().parents[1], Path.cwd(), Path.cwd().parent, COLAB_CLONE]


def _find(parts: tuple[str, ...]) -> Path | None:
    for root in _roots():
        path = root.joinpath(*parts)
        if path.is_file():
            return path
    return None


def find_repo_file(*parts: str) -> Path:
    """A file shipped in the repository, e.g. ``find_repo_file("benchmarks", "results",
    "table6", "table6.json")``; on Colab: in the clone made by the notebook's first cell."""
    path = _find(parts)
    if path is None:
        raise FileNotFoundError(
            f"{'/'.join(parts)} was not found next to vdm_lite, in the working directory or its parent. "
            f"Run this notebook from a clone of {REPOSITORY_URL}"
        )
    return path


def find_checkpoint(name: str) -> Path:
    """A checkpoint shipped in the repository's ``data/checkpoints/`` (on Colab: the clone
    made by the notebook's first cell)."""
    path = _find(("data", "checkpoints", name))
    if path is None:
        raise FileNotFoundError(
            f"the shipped checkpoint data/checkpoints/{name} was not found next to vdm_lite, in the working "
            f"directory or its parent. Run this notebook from a clone of {REPOSITORY_URL}, "
            "or make your own: vdm-lite train --preset=... then vdm-lite export RUN_DIR data/checkpoints/" + name
        )
    return path


def strip_widgets(path: str | Path) -> int:
    """Remove the outputs of type ``application/vnd.jupyter.widget-view+json`` and the
    ``metadata.widgets`` state from the notebook file ``path``, keeping every other output and
    the file's JSON layout (nbformat's: indent 1, UTF-8); return the number of outputs removed."""
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    removed = 0
    for cell in nb["cells"]:
        if "outputs" in cell:
            kept = [out for out in cell["outputs"] if WIDGET_VIEW not in out.get("data", {})]
            removed += len(cell["outputs"]) - len(kept)
            cell["outputs"] = kept
    had_state = nb.get("metadata", {}).pop("widgets", None) is not None
    if removed or had_state:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return removed


def _main(argv: list[str]) -> int:
    if not argv or argv[0] != "--strip-widgets":
        print("usage: python -m vdm_lite.notebook --strip-widgets NOTEBOOK.ipynb ...", file=sys.stderr)
        return 2
    for name in argv[1:]:
        print(f"{name}: {strip_widgets(name)} widget output(s) removed")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
