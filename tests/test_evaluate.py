"""vdm-lite evaluate and the Table 6 reproduction (vdm_lite.evaluate)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vdm_lite.datasets import BouncingShapes
from vdm_lite.evaluate import evaluate, load_videos, reproduce_extension, score_videos
from vdm_lite.viz import save_video

CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "checkpoints"


pytestmark = pytest.mark.usefixtures("one_thread")


def real_clips(n=3, frames=16, seed=0):
    ds = BouncingShapes(frames, 32, num_objects=(1, 1), seed=0)
    return ds, ds.generate_batch(n, seed)


def test_real_clips_keep_every_rule_and_the_report_is_json():
    ds, batch = real_clips()
    rep = score_videos(batch["video"], dataset=ds, labels=batch["label"])
    assert rep["num_videos"] == 3 and rep["count_stability"] == 1.0 and rep["class_match"] == 1.0
    assert rep["color_consistency"] == 1.0 and rep["accel"] < 0.2
    json.dumps(rep)  # NaNs became None, tensors lists
    shuffled = batch["video"][:, :, torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    assert score_videos(shuffled, dataset=ds)["accel"] > 5 * rep["accel"] + 0.5


def test_evaluate_a_folder_of_videos(tmp_path, capsys):
    from vdm_lite.cli import main

    _, batch = real_clips()
    for i, v in enumerate(batch["video"]):
        save_video(tmp_path / f"clip{i}.gif", v[None], fps=8)
    videos, names = load_videos(tmp_path, 32)
    assert videos.shape == (3, 3, 16, 32, 32) and names == ["clip0.gif", "clip1.gif", "clip2.gif"]
    assert main(["evaluate", str(tmp_path), "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["kind"] == "folder" and report["num_videos"] == 3 and report["count_stability"] == 1.0
    assert (tmp_path / "eval" / "report.png").stat().st_size > 0
    assert "count_stability" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no video files"):
        load_videos(tmp_path / "eval", 32)


def test_evaluate_a_checkpoint_in_extend_mode(tmp_path):
    rep = evaluate(CHECKPOINTS / "shapes-uncond.safetensors", num=1, mode="extend", steps=2, total_frames=20,
                   device="cpu", out_dir=tmp_path)  # fmt: skip
    assert rep["kind"] == "model" and rep["step"] > 0 and rep["frames"] == 20
    assert "position_ratio" in rep and (tmp_path / "report.json").exists()


def test_table6_reproduction_cpu_size(tmp_path):
    res = reproduce_extension(CHECKPOINTS / "shapes-uncond.safetensors", num=1, total_frames=20, recon_weights=(2.0,),
                              steps=2, device="cpu", out_dir=tmp_path, progress=False, command="vdm-lite reproduce table6 x")  # fmt: skip
    assert list(res["rows"]) == ["replacement", "reconstruction w_r=2", "real continuation"]
    assert res["boundaries"] == [16]
    assert res["rows"]["real continuation"]["position_ratio"] < 2  # the real video has no seam
    table = (tmp_path / "table6.md").read_text()
    assert "| replacement |" in table and "| reconstruction w_r=2 |" in table and "Device:" in table
    assert "Command: `vdm-lite reproduce table6 x`" in table
    assert (tmp_path / "table6.png").exists() and json.loads((tmp_path / "table6.json").read_text())["num_videos"] == 1
