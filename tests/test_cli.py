"""The ``vdm-lite`` command as users meet it: nothing lost, one-line errors, outputs where
users expect them, every config key in the help. Each test runs the command as a subprocess
on a tiny run (``cpu-smoke``, 2 steps) and files made in ``tmp_path``."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from vdm_lite.viz import save_video


def cli(*args, cwd=None, home=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VDM_LITE_PROGRESS": "0", **({"HOME": str(home)} if home else {})}
    return subprocess.run([sys.executable, "-m", "vdm_lite.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def assert_one_line_error(res: subprocess.CompletedProcess, command: str, *words: str) -> str:
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2, res.stderr[-3000:]
    assert len(lines) == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "weights_only" not in res.stderr
    assert lines[0].startswith(f"vdm-lite {command}: error: "), lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 2-step cpu-smoke run (16x16, 8 frames), shared read-only by the tests."""
    path = tmp_path_factory.mktemp("cli") / "run"
    res = cli("train", "--preset=cpu-smoke", f"--run-dir={path}", "steps=2", "sample_every=-1")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "samples" not in res.stdout.splitlines()[-1], "sample_every=-1 writes no samples, and the last line says so"
    return path


def test_resuming_a_finished_run_trains_nothing_and_says_so(run, tmp_path):
    """--resume of a run at its last step (e.g. to take a changed sampling setting of its preset
    into its config) trains no step and reports that, not a loss of nan."""
    mine = tmp_path / "run"
    shutil.copytree(run, mine)
    before = torch.load(mine / "checkpoint.pt", weights_only=True)["ema"]
    res = cli("train", "--preset=cpu-smoke", f"--run-dir={mine}", "steps=2", "sample_every=-1", "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "done at step 2, no steps left to train" in res.stdout and "nan" not in res.stdout, res.stdout
    after = torch.load(mine / "checkpoint.pt", weights_only=True)["ema"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resume_without_preset_takes_the_runs_own_config(run, tmp_path):
    """``--resume --run-dir=RUN`` alone continues RUN with its config.json, overrides and all
    (the run is cpu-smoke with steps=2 and sample_every=-1, not the default preset); an
    override still applies on top, and an unreadable config.json is a one-line error."""
    mine = tmp_path / "run"
    shutil.copytree(run, mine)
    res = cli("train", f"--run-dir={mine}", "--resume", "steps=3")
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"config of {mine / 'config.json'}" in res.stdout and "resuming at step 2" in res.stdout, res.stdout
    assert "done at step 3" in res.stdout and "samples/" not in res.stdout, res.stdout
    saved = json.loads((mine / "config.json").read_text())
    assert saved["steps"] == 3 and saved["description"] == json.loads((run / "config.json").read_text())["description"]
    (mine / "config.json").write_text("{not json")
    assert_one_line_error(cli("train", f"--run-dir={mine}", "--resume"), "train", "config.json", "--preset")


def test_paths_may_start_with_a_tilde(run, tmp_path):
    """``--run-dir=~/runs/x``: the shell does not expand a "~" after "=", the command does
    (here HOME is a temporary folder holding a copy of the run)."""
    shutil.copytree(run, tmp_path / "run")
    res = cli("train", "--preset=cpu-smoke", "--run-dir=~/run", "steps=2", "sample_every=-1", "--resume", home=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "no steps left to train" in res.stdout and str(tmp_path / "run") in res.stdout, res.stdout
    res = cli("export", "~/run", "~/weights.safetensors", home=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "weights.safetensors").is_file() and not (tmp_path / "~").exists()


def test_train_refuses_to_overwrite_a_run(run):
    before = {name: (run / name).read_bytes() for name in ("checkpoint.pt", "log.csv")}
    res = cli("train", "--preset=cpu-smoke", f"--run-dir={run}", "steps=2", "sample_every=-1")
    assert_one_line_error(res, "train", str(run), "--resume", "--overwrite")
    assert {name: (run / name).read_bytes() for name in before} == before


def test_overwrite_moves_the_old_run_aside(run, tmp_path):
    mine = tmp_path / "run"
    shutil.copytree(run, mine)
    old = (mine / "checkpoint.pt").read_bytes(), (mine / "log.csv").read_bytes()
    res = cli("train", "--preset=cpu-smoke", f"--run-dir={mine}", "steps=2", "sample_every=-1", "--overwrite")
    assert res.returncode == 0, res.stderr[-3000:]
    (moved,) = tmp_path.glob("run.old-*")
    assert ((moved / "checkpoint.pt").read_bytes(), (moved / "log.csv").read_bytes()) == old
    assert (mine / "checkpoint.pt").exists() and str(moved) in res.stdout


def test_overwrite_puts_the_old_run_back_when_the_new_one_cannot_start(run, tmp_path):
    mine = tmp_path / "run"
    shutil.copytree(run, mine)
    before = sorted(p.name for p in mine.iterdir())
    res = cli("train", "--preset=cpu-smoke", f"--run-dir={mine}", "steps=2", "--overwrite", "dataset=folder",
              f"data_root={tmp_path / 'missing'}")  # fmt: skip
    assert_one_line_error(res, "train", "does not exist")
    assert sorted(p.name for p in mine.iterdir()) == before and not list(tmp_path.glob("run.old-*"))


def test_export_refuses_to_overwrite_a_file_unless_asked(run, tmp_path):
    out = tmp_path / "model.safetensors"
    from safetensors.torch import load_file

    assert cli("export", run, out).returncode == 0
    mine = {k: v.clone() for k, v in load_file(out).items()}  # a copy: load_file maps the file it reads
    out.write_bytes(b"a user's own file")
    assert_one_line_error(cli("export", run, out), "export", str(out), "--overwrite")
    assert out.read_bytes() == b"a user's own file"
    res = cli("export", run, out, "--overwrite")
    assert res.returncode == 0, res.stderr[-3000:]
    again = load_file(out)
    assert again.keys() == mine.keys() and all(torch.equal(again[k], mine[k]) for k in mine)


@pytest.mark.parametrize("case", ["video to evaluate", "text as checkpoint", "sample --num=0", "evaluate --num=0",
                                  "superres 24x24", "superres 64x32", "unknown key", "unknown preset", "missing path"])  # fmt: skip
def test_bad_input_is_one_line_and_exit_code_2(case, run, tmp_path):
    """The model is 16x16, so --mode=superres at --scale=2 takes exactly 8x8 frames."""
    save_video(tmp_path / "clip.mp4", torch.zeros(3, 4, 24, 24))
    save_video(tmp_path / "wide.gif", torch.zeros(3, 4, 32, 64))
    (tmp_path / "checkpoint.pt").write_text("not a checkpoint\n")
    command, args, words = {
        "video to evaluate": ("evaluate", [tmp_path / "clip.mp4"], ["clip.mp4", "video file", "folder"]),
        "text as checkpoint": ("sample", [tmp_path / "checkpoint.pt"], ["unknown kind of file", "run directory"]),
        "sample --num=0": ("sample", [run, "--num=0"], ["--num", "at least 1"]),
        "evaluate --num=0": ("evaluate", [run, "--num=0"], ["--num", "at least 1"]),
        "superres 24x24": ("sample", [run, "--mode=superres", f"--input={tmp_path / 'clip.mp4'}"], ["24x24", "8x8"]),
        "superres 64x32": ("sample", [run, "--mode=superres", f"--input={tmp_path / 'wide.gif'}"], ["64x32", "8x8"]),
        "unknown key": ("train", ["--preset=cpu-smoke", f"--run-dir={tmp_path / 'new'}", "stpes=3"], ["'stpes'", "valid keys"]),
        "unknown preset": ("train", ["--preset=cpu-smokey", f"--run-dir={tmp_path / 'new'}"], ["'cpu-smokey'", "cpu-smoke"]),
        "missing path": ("sample", [tmp_path / "nowhere"], ["nowhere"]),
    }[case]
    assert_one_line_error(cli(command, *args, cwd=tmp_path), command, *words)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "new").exists(), "an error writes nothing"


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    res = cli("--debug", "sample", tmp_path / "notes.txt")
    assert res.returncode != 0 and "Traceback" in res.stderr and "unknown kind of file" in res.stderr


def test_folder_evaluation_skips_and_names_a_corrupt_video(tmp_path):
    from vdm_lite.datasets import BouncingShapes

    clips = BouncingShapes(8, 32, num_objects=(1, 1)).generate_batch(2, 0)["video"]
    for i, v in enumerate(clips):
        save_video(tmp_path / f"clip{i}.gif" if i == 0 else tmp_path / f"clip{i}.mp4", v)
    (tmp_path / "x.mp4").write_bytes(os.urandom(2000))
    res = cli("evaluate", tmp_path, f"--out={tmp_path / 'eval'}")
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["num_videos"] == 2 and report["files"] == ["clip0.gif", "clip1.mp4"]
    assert report["num_skipped"] == 1 and list(report["skipped"]) == ["x.mp4"]
    assert "skipped 1" in res.stdout and "x.mp4" in res.stdout


def test_sampling_a_weights_file_writes_a_new_folder_each_time(run, tmp_path):
    weights = tmp_path / "shipped" / "w.safetensors"
    weights.parent.mkdir()
    shutil.copy(run / "ema.safetensors", weights)
    work = tmp_path / "work"
    work.mkdir()
    folders = []
    for _ in range(2):
        res = cli("sample", weights, "--steps=1", "--num=1", "--formats=png", cwd=work)
        assert res.returncode == 0, res.stderr[-3000:]
        (png,) = [work / p for p in res.stdout.strip().split("wrote ", 1)[1].split(", ")]
        assert png.stat().st_size > 0
        folders.append(png.parent)
    assert folders == [work / "runs" / "samples" / "w-sample-001", work / "runs" / "samples" / "w-sample-002"]
    assert os.listdir(weights.parent) == ["w.safetensors"], "nothing is written next to the weights"


def test_train_help_lists_every_config_key_with_its_default():
    from vdm_lite.config import TRAIN_KEYS, TrainConfig
    from vdm_lite.nn.unet import MODEL_KEYS, UNetConfig

    assert set(TRAIN_KEYS) == {f.name for f in dataclasses.fields(TrainConfig)}, "a one-line meaning per TrainConfig field"
    assert set(MODEL_KEYS) == {f.name for f in dataclasses.fields(UNetConfig)}, "a one-line meaning per UNetConfig field"
    res = cli("train", "--help")
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    for key, shown in [("steps", "steps=1000"), ("sample_every", "sample_every=0"), ("model.dropout", "model.dropout=0.0"),
                       ("model.channel_mults", "model.channel_mults=1,2"), ("init_from", 'init_from=""')]:  # fmt: skip
        (line,) = [ln for ln in lines if ln.strip().startswith(f"{key}=")]
        assert line.strip().startswith(shown) and len(line.split()) > 2, line
    n = sum(1 for ln in lines if ln.startswith("  ") and "=" in ln.split()[0])
    assert n == len(TRAIN_KEYS) - 1 + len(MODEL_KEYS)  # "model" itself is the model.* rows


def test_config_prints_a_preset_as_training_uses_it():
    res = cli("config", "cpu-smoke", "steps=3", "frames=4")
    assert res.returncode == 0, res.stderr[-3000:]
    values = dict(ln.split()[0].split("=", 1) for ln in res.stdout.splitlines()[1:])
    assert values["steps"] == "3" and values["model.num_frames"] == "4" and values["model.image_size"] == "16"
