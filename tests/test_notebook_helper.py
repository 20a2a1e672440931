"""The notebooks' setup helper (vdm_lite.notebook) and what the notebooks share: the repository
URL of pyproject.toml in the Colab cells and badges, and no saved widget state."""

import json
import re
import sys
from pathlib import Path

import matplotlib
import pytest
import torch

from vdm_lite import notebook
from vdm_lite.notebook import REPOSITORY_URL, THREADS_ENV, find_checkpoint, find_repo_file, resolve_threads, setup

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_find_checkpoint_finds_a_shipped_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # found next to the package, wherever the notebook runs
    path = find_checkpoint("shapes-uncond.safetensors")
    assert path.is_file() and path.parts[-3:] == ("data", "checkpoints", "shapes-uncond.safetensors")
    assert find_repo_file("benchmarks", "results", "table6", "table6.json").is_file()


def test_a_missing_checkpoint_names_the_fix():
    with pytest.raises(FileNotFoundError) as err:
        find_checkpoint("no-such-model.safetensors")
    msg = str(err.value)
    assert "data/checkpoints/no-such-model.safetensors was not found" in msg
    assert f"Run this notebook from a clone of {REPOSITORY_URL}" in msg
    assert "vdm-lite export RUN_DIR data/checkpoints/no-such-model.safetensors" in msg
    with pytest.raises(FileNotFoundError, match=re.escape(f"from a clone of {REPOSITORY_URL}")):
        find_repo_file("benchmarks", "no-such-file.md")


def test_threads_default_to_torch_and_the_variable_wins(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert resolve_threads() is None and resolve_threads(1) == 1
    monkeypatch.setenv(THREADS_ENV, "3")
    assert resolve_threads() == 3 and resolve_threads(1) == 3
    for bad in ("0", "two"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            resolve_threads()


def test_setup_keeps_torch_threads_and_sets_the_figure_style(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    n = torch.get_num_threads()
    try:
        with matplotlib.rc_context():
            device = setup()
            assert torch.get_num_threads() == n
            assert matplotlib.rcParams["figure.dpi"] == notebook.FIGURE_DPI == matplotlib.rcParams["savefig.dpi"]
            assert isinstance(device, torch.device)
            monkeypatch.setenv(THREADS_ENV, "1")
            setup(threads=2)
            assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(n)


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_one_repository_url_for_the_colab_cells_and_badges():
    project = _pyproject()["project"]
    assert project["urls"]["Repository"] == REPOSITORY_URL
    owner_name = REPOSITORY_URL.removeprefix("https://github.com/")
    readme = (ROOT / "README.md").read_text()
    extras = project["optional-dependencies"]
    assert len(NOTEBOOKS) == 11
    for path in NOTEBOOKS:
        badge = f"https://colab.research.google.com/github/{owner_name}/blob/main/notebooks/{path.name}"
        assert badge in readme, f"README has no Colab badge for {path.name}"
        cells = _cells(path)
        assert badge in "".join(cells[0]["source"]), f"{path.name}: no Colab badge in the first cell"
        colab = "".join(cells[1]["source"])
        assert 'if "google.colab" in sys.modules:' in colab
        assert re.findall(r"https://github\.com/[\w./-]+", colab) == [REPOSITORY_URL], path.name
        (spec,) = re.findall(r'vdm_lite\[([\w,]+)\]', colab)
        needs = [req for extra in spec.split(",") for req in extras[extra]]
        assert not any(re.match(r"(jupyterlab|notebook|nbval|pytest)\b", req) for req in needs), (path.name, needs)
    for url in re.findall(r"https://colab\.research\.google\.com/github/[\w./-]+", readme):
        assert url.startswith(f"https://colab.research.google.com/github/{owner_name}/"), url


def test_strip_widgets_keeps_every_other_output(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": [], "metadata": {}, "execution_count": 1, "outputs": [
        {"output_type": "display_data", "metadata": {}, "data": {WIDGET_VIEW: {"model_id": "x"}, "text/plain": ["0%"]}},
        {"output_type": "stream", "name": "stdout", "text": ["kept\n"]}]}],
        "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {}}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert notebook.strip_widgets(path) == 1 and notebook.strip_widgets(path) == 0
    out = json.loads(path.read_text())
    assert out["metadata"] == {} and out["cells"][0]["outputs"] == [nb["cells"][0]["outputs"][1]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_no_saved_widget_state(path):
    """Progress bars and sliders saved as widgets show as stale "0%" bars or nothing on GitHub:
    after a full re-run, `python -m vdm_lite.notebook --strip-widgets notebooks/*.ipynb`."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in nb["metadata"]
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            assert WIDGET_VIEW not in out.get("data", {}), f"{path.name} cell {i}: a saved widget output"
