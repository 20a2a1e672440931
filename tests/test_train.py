"""The trainer: exact resume, NaN stop, mismatched checkpoints, DDP over gloo, the CLI."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vdm_lite.checkpoint import CheckpointMismatch, load_state
from vdm_lite.config import TrainData, get_preset
from vdm_lite.overrides import apply_overrides
from vdm_lite.train import Trainer, TrainingDiverged

# tiny but complete: dropout (global RNG), class conditioning with CFG dropout, joint frames
TINY = [
    "frames=4", "resolution=16", "batch_size=2", "model.base_channels=8", "model.norm_groups=4",
    "model.dropout=0.1", "model.emb_dim=32", "condition=class", "cond_drop_prob=0.5", "image_frames=2",
    "ckpt_every=5", "log_every=5", "sample_every=-1", "warmup_steps=3",
]  # fmt: skip


def tiny(**kw):
    return apply_overrides(get_preset("cpu-smoke"), TINY + [f"{k}={v}" for k, v in kw.items()])


def all_state(tr: Trainer) -> dict:
    sd = {f"model.{k}": v for k, v in tr.model.state_dict().items()}
    sd.update({f"ema.{k}": v for k, v in tr.ema.state_dict().items()})
    for i, s in tr.opt.state_dict()["state"].items():
        sd.update({f"opt.{i}.{k}": v for k, v in s.items() if torch.is_tensor(v)})
    return sd


def test_resume_is_bit_identical(tmp_path):
    a = Trainer(tiny(steps=20), run_dir=tmp_path / "a")
    a.train(progress=False)
    b = Trainer(tiny(steps=20), run_dir=tmp_path / "b")
    b.train(steps=10, progress=False)
    del b
    c = Trainer(tiny(steps=20), run_dir=tmp_path / "b", resume=True)
    assert c.step == 10
    c.train(progress=False)
    sa, sc = all_state(a), all_state(c)
    assert sa.keys() == sc.keys()
    for k in sa:
        assert torch.equal(sa[k], sc[k]), f"{k} differs after resume"
    # the log has one row per logged step, none repeated
    rows = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "5", "10", "15", "20"]


def test_a_resumed_runs_log_is_on_disk_before_its_first_step(tmp_path):
    """Resuming rewrites log.csv without the rows past the checkpoint; the rewrite reaches the
    disk at once (atomically), so a run killed hard before its next log row keeps its history."""
    a = Trainer(tiny(steps=20), run_dir=tmp_path)
    a.train(steps=15, progress=False)
    a.step = 10  # as if the last checkpoint were at step 10: rows 15 must go, 5 and 10 stay
    a._open_log()
    try:
        rows = (tmp_path / "log.csv").read_text().splitlines()  # read while the log is still open
    finally:
        a._log_file.close()
    assert [r.split(",")[0] for r in rows] == ["step", "5", "10"]
    assert not list(tmp_path.glob(".log.csv.*"))  # no temporary file left behind


def test_training_reduces_the_loss(tmp_path):
    cfg = tiny(steps=40, lr=3e-3, **{"model.dropout": 0.0, "cond_drop_prob": 0.0})
    tr = Trainer(cfg, run_dir=tmp_path)
    x = tr.data.batch(0, 0, 0, 1, 8, 1, torch.Generator().manual_seed(0))
    t = torch.linspace(0.1, 0.9, 8)

    def loss():
        from vdm_lite.diffusion import diffusion_loss

        with torch.no_grad():
            return diffusion_loss(tr.model, x["video"], tr.schedule, t=t, generator=torch.Generator().manual_seed(1),
                                  class_label=x["label"], image_mask=x["image_mask"]).mean().item()  # fmt: skip

    before = loss()
    tr.train(progress=False)
    assert loss() < 0.8 * before


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    tr = Trainer(tiny(steps=20), run_dir=tmp_path)
    tr.train(steps=5, progress=False)  # checkpoint at step 5
    good = load_state(tmp_path / "checkpoint.pt")
    real = tr.forward
    tr.forward = lambda z, lam, **c: real(z, lam, **c) * float("nan")
    with pytest.raises(TrainingDiverged, match="at step 6"):
        tr.train(progress=False)
    kept = load_state(tmp_path / "checkpoint.pt")
    assert kept["step"] == 5
    assert all(torch.equal(kept["model"][k], good["model"][k]) for k in good["model"])


def test_mismatched_checkpoint_is_a_clear_error(tmp_path):
    Trainer(tiny(steps=2), run_dir=tmp_path).train(progress=False)
    with pytest.raises(CheckpointMismatch, match=r"model\.base_channels: checkpoint has 8, config asks for 16"):
        Trainer(tiny(steps=4, **{"model.base_channels": 16}), run_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointMismatch, match="frame_skip: checkpoint has 1, config asks for 2"):
        Trainer(tiny(steps=4, frame_skip=2), run_dir=tmp_path, resume=True)


def test_file_dataset_positions_resume_exactly(tmp_path):
    """Batches of a file dataset are a pure function of the step, across epochs."""
    arr = np.random.default_rng(0).integers(0, 255, size=(6, 5, 16, 16), dtype=np.uint8)  # (T, N, H, W)
    np.save(tmp_path / "mnist_test_seq.npy", arr)
    cfg = apply_overrides(get_preset("cpu-smoke"), [f"data_root={tmp_path / 'mnist_test_seq.npy'}", "dataset=mmnist",
                                                    "frames=4", "resolution=16", "model.in_channels=1"])  # fmt: skip
    g = torch.Generator()
    seq = [TrainData(cfg).batch(s, 0, 0, 1, 3, 1, g)["video"] for s in range(4)]  # fresh stream per step
    stream = TrainData(cfg)
    cont = [stream.batch(s, 0, 0, 1, 3, 1, g)["video"] for s in range(4)]  # one stream walked in order
    for a, b in zip(seq, cont):
        assert torch.equal(a, b)
    assert not torch.equal(cont[0], cont[1])


def test_ddp_two_gloo_processes_stay_in_sync(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VDM_LITE_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
           str(Path(__file__).with_name("ddp_worker.py")), str(tmp_path), *TINY, "steps=3"]  # fmt: skip
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 3
    for k in r0["final"]:
        assert torch.equal(r0["final"][k], r1["final"][k]), f"ranks disagree on {k}"
        assert torch.equal(r0["ema"][k], r1["ema"][k])
    assert any(not torch.equal(r0["init"][k], r0["final"][k]) for k in r0["init"]), "nothing was trained"
    assert (tmp_path / "checkpoint.pt").exists()  # rank 0 checkpoints


def test_cli_train_then_sample_writes_videos(tmp_path):
    env = {**os.environ, "VDM_LITE_PROGRESS": "0"}
    run = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "vdm_lite.cli", "train", "--preset=cpu-smoke", f"--run-dir={run}", "steps=6"],
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert (run / "checkpoint.pt").exists() and (run / "ema.safetensors").exists()
    assert list((run / "samples").glob("*.gif")), "training ends with sample videos"
    res = subprocess.run([sys.executable, "-m", "vdm_lite.cli", "sample", str(run), "--steps=4", "--num=2",
                          f"--out={tmp_path / 'out' / 'v'}"], env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    for ext in ("gif", "mp4", "png"):
        assert (tmp_path / "out" / f"v.{ext}").stat().st_size > 0
    bad = subprocess.run([sys.executable, "-m", "vdm_lite.cli", "train", "--preset=cpu-smoke", "stpes=3"],
                         env=env, capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "unknown config key 'stpes'" in bad.stderr


def test_cli_samples_the_shipped_class_model(tmp_path, capsys):
    from vdm_lite.cli import main

    weights = Path(__file__).resolve().parents[1] / "data" / "checkpoints" / "shapes-class.safetensors"
    out = tmp_path / "v"
    assert main(["sample", str(weights), "--steps=2", "--num=2", "--class-label", "0", "7", "--guidance=1",
                 "--formats=png", f"--out={out}", "--device=cpu"]) == 0  # fmt: skip
    assert out.with_suffix(".png").stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_init_from_adds_a_class_condition_without_changing_the_model(tmp_path):
    src = Trainer(tiny(steps=2, condition="none", **{"model.dropout": 0.0}), run_dir=tmp_path / "uncond")
    src.train(progress=False)  # writes uncond/ema.safetensors
    cfg = tiny(steps=2, init_from=str(tmp_path / "uncond"), **{"model.dropout": 0.0})
    ft = Trainer(cfg, run_dir=tmp_path / "class")
    assert ft.new_weights == ["cond.classes.table.weight"]
    assert torch.count_nonzero(ft.model.cond.classes.table.weight) == 0
    shared = src.ema.state_dict()
    for k, v in ft.ema.state_dict().items():
        if k in shared:
            assert torch.equal(v, shared[k]), k
    # every label, the null one included, gives the unconditional model's prediction at the start
    z = torch.randn(3, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    lam = torch.tensor([-3.0, 0.0, 4.0])
    with torch.no_grad():
        want = src.ema(z, lam)
        got = ft.model.eval()(z, lam, class_label=torch.tensor([0, 5, -1]))
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    # and fine-tuning then moves the class table
    ft.model.train()
    ft.train(progress=False)
    assert torch.count_nonzero(ft.model.cond.classes.table.weight) > 0


def test_fine_tuned_weights_count_the_steps_of_their_source(tmp_path):
    from vdm_lite.sampling import export_weights, load_model

    src = Trainer(tiny(steps=3), run_dir=tmp_path / "a")
    src.train(progress=False)
    assert load_model(tmp_path / "a", device="cpu")[2] == 3
    ft = Trainer(tiny(steps=2, init_from=str(tmp_path / "a")), run_dir=tmp_path / "b")
    assert (ft.step, ft.steps_before) == (0, 3)
    ft.train(progress=False)  # the run's own step stays 2: resume and the schedule count from 0
    assert load_state(tmp_path / "b" / "checkpoint.pt")["step"] == 2
    for weights in ("b", "b/ema.safetensors", "b/checkpoint.pt"):
        assert load_model(tmp_path / weights, device="cpu")[2] == 5, weights
    resumed = Trainer(tiny(steps=2, init_from=str(tmp_path / "a")), run_dir=tmp_path / "b", resume=True)
    assert (resumed.step, resumed.steps_before) == (2, 3)
    export_weights(tmp_path / "b", tmp_path / "b.safetensors")  # a shared file keeps the count
    assert load_model(tmp_path / "b.safetensors", device="cpu")[2] == 5
    again = Trainer(tiny(steps=1, init_from=str(tmp_path / "b.safetensors")), run_dir=tmp_path / "c")
    again.train(progress=False)
    assert load_model(tmp_path / "c", device="cpu")[2] == 6


def test_init_from_weights_of_another_shape_is_a_clear_error(tmp_path):
    Trainer(tiny(steps=1), run_dir=tmp_path / "a").export()
    with pytest.raises(CheckpointMismatch, match=r"init_from.*\n.*\(8,\) in .*\(16,\) here"):
        Trainer(tiny(init_from=str(tmp_path / "a" / "ema.safetensors"), **{"model.base_channels": 16}), run_dir=tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="no weights file"):
        Trainer(tiny(init_from=str(tmp_path / "missing.safetensors")), run_dir=tmp_path / "c")


def test_time_limit_stops_with_a_checkpoint_and_resume_finishes_exactly(tmp_path):
    a = Trainer(tiny(steps=6), run_dir=tmp_path / "a")
    a.train(progress=False)
    b = Trainer(tiny(steps=6), run_dir=tmp_path / "b")
    b.train(progress=False, time_limit=1e-6)  # past the deadline after the first step
    assert (b.step, b.stop_reason) == (1, "time limit")
    assert load_state(tmp_path / "b" / "checkpoint.pt")["step"] == 1
    c = Trainer(tiny(steps=6), run_dir=tmp_path / "b", resume=True)
    c.train(progress=False, time_limit=3600.0)
    assert (c.step, c.stop_reason) == (6, "")
    sa, sc = all_state(a), all_state(c)
    assert all(torch.equal(sa[k], sc[k]) for k in sa)
    with pytest.raises(ValueError, match="time_limit"):
        c.train(progress=False, time_limit=0)


def test_sigterm_stops_after_the_step_with_a_checkpoint(tmp_path):
    import signal

    tr = Trainer(tiny(steps=50), run_dir=tmp_path / "r")
    step = tr.train_step

    def step_then_term():  # the signal arrives in the middle of step 3
        out = step()
        if tr.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    tr.train_step = step_then_term
    tr.train(progress=False)
    assert (tr.step, tr.stop_reason) == (3, "SIGTERM")
    assert load_state(tmp_path / "r" / "checkpoint.pt")["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back
