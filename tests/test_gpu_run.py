"""scripts/gpu_run.py, the prepared one-command GPU run, as a dry run on the CPU at tiny sizes."""

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _gpu_run():
    spec = importlib.util.spec_from_file_location("gpu_run", ROOT / "scripts" / "gpu_run.py")
    mod = sys.modules.setdefault("gpu_run", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_records_every_stage_survives_a_failure_and_exports(tmp_path):
    from safetensors import safe_open

    from vdm_lite.sampling import load_model

    g = _gpu_run()
    out = tmp_path / "out"
    cmd = ["bash", str(ROOT / "scripts" / "gpu_run.sh"), "--dry-run", "--out", str(out), "--work", str(tmp_path / "work"),
           "--wheels", str(tmp_path / "no-wheels"), "--fail-stage", "smoke", "--pack"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    res = json.loads((out / "results.json").read_text())
    summary = (out / "summary.md").read_text()
    items = {i["name"]: i for i in res["items"]}
    expected = ["env", *(f"smoke/{p}" for p in g.SMOKE), "smoke/ddp", "install/peer",
                *(f"bench/{b[0]}" for b in g.BENCH_DRY), *(f"train/{m[0]}" for m in g.MODELS)]  # fmt: skip
    assert list(items) == expected
    assert res["finished"] and res["mode"] == "dry-run"
    for name, item in items.items():  # every stage in the table with its status
        assert item["status"] in ("pass", "fail", "skipped")
        assert f"| {name} | {item['status']} |" in summary

    # the forced failure of the smoke stage is recorded with its last line, and the later stages ran
    for path in ("fp32", "bf16", "channels-last", "checkpointing"):
        item = items[f"smoke/{path}"]
        assert item["status"] == "fail" and item["error"] == "RuntimeError: forced failure (--fail-stage smoke)"
    assert items["smoke/compile"]["status"] == "skipped" and "CPU" in items["smoke/compile"]["error"]
    assert items["smoke/ddp"]["error"] == "skipped: 0 GPU"
    assert items["env"]["status"] == "pass" and items["env"]["data"]["sdpa"]["math"] == "ok"
    assert items["install/peer"]["status"] == "skipped"
    assert all(items[f"bench/{b[0]}"]["error"] == "skipped: peer not installed" for b in g.BENCH_DRY)

    for name, preset, _, _, export in g.MODELS:
        item = items[f"train/{name}"]
        assert item["status"] == "pass", item
        assert item["data"]["step"] == 2 and math.isfinite(item["data"]["loss"])
        assert f"vdm-lite train --preset={preset} " in item["data"]["command"]
        model, cfg, step = load_model(out / export, device="cpu")
        assert step == 2 and cfg.resolution == 16 and cfg.batch_size == 4
        with safe_open(str(out / export), framework="pt") as f:
            assert f.metadata()["command"] == item["data"]["command"]
    assert "## Trained models" in summary

    # packed for the device tool, which brings back at most 8 files
    assert len(list(out.iterdir())) <= 8 and not (out / "logs").exists()
    with tarfile.open(out / "logs.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"logs/env.log", "logs/env.json", "logs/smoke_fp32.log", f"logs/train_{g.MODELS[0][0]}_log.csv"} <= names


def test_smoke_paths_in_process(tmp_path):
    """What each smoke child runs (the dry run above forces them to fail), here in-process."""
    g = _gpu_run()
    args = argparse.Namespace(dry_run=True, work=str(tmp_path))
    for path in ("fp32", "bf16", "channels-last", "checkpointing"):
        r = g.item_smoke(args, path)
        assert r["device"] == "cpu" and math.isfinite(r["loss"]) and r["sample_shape"] == [2, 3, 8, 16, 16], (path, r)


def test_a_hanging_item_is_stopped_at_its_timeout_and_recorded(tmp_path):
    g = _gpu_run()
    args = argparse.Namespace(out=str(tmp_path), work=str(tmp_path), wheels=str(tmp_path), dry_run=True, fail_stage=None, pack=False)
    (tmp_path / "logs").mkdir()
    r = g.Runner(args, budget_s=60.0)
    hang = [sys.executable, "-c", "import time; print('working', flush=True); time.sleep(60)"]
    item = r.run("bench/hang", cmd=hang, seconds=2, min_s=1)
    assert item["status"] == "fail" and item["seconds"] < 20
    assert item["error"] == "timeout after 2 s (last output: working)"
    assert r.run("bench/late", cmd=hang, seconds=0.5, min_s=1)["status"] == "skipped"
    assert "| bench/hang | fail |" in (tmp_path / "summary.md").read_text()
