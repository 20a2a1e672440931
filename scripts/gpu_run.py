"""One prepared GPU run: environment, GPU-path smoke tests, the benchmark against
video-diffusion-pytorch 0.7.0 and the shipped models trained at GPU scale -- one command,
inside one wall-time budget.

On the GPU machine (from the repository root; the machine needs no registry), one command
that ends inside 10 minutes (the budget, plus at most a few seconds of summary and kill grace)::

    bash scripts/gpu_run.sh --out "$OUT/gpu_run" --budget-min 9 --pack

(with the device tool: that command, ``carry: [".whl"]``, ``timeout_s: 600``). Here, on the
CPU, the same code path at tiny sizes in under a minute (``tests/test_gpu_run.py`` runs it)::

    bash scripts/gpu_run.sh --dry-run --out /tmp/gpu_dry

What the GPU machine must carry besides the git-tracked tree: ``.whl/`` (ignored by git),
filled here by ``bash scripts/fetch_gpu_wheels.sh``: the pure-Python wheels of
video-diffusion-pytorch 0.7.0, einops, einops-exts and rotary-embedding-torch. Everything
else is expected there already: python3 with a CUDA torch, numpy, matplotlib, tqdm
and safetensors. Nothing is installed into that environment: ``gpu_run.sh`` puts the tree
on ``PYTHONPATH`` (vdm_lite runs from source) and the peer goes, ``pip install --no-index
--no-deps``, into ``WORK/peer_site``, which only the benchmark's subprocesses see.

Stages, in order; every item runs in its own subprocess under ``timeout`` with its share of
the budget (``share x budget`` seconds, at least ``MIN_TIMEOUT_S``), so a hang or a crash
costs that item alone; a failed item is recorded (status, seconds, the last line of its
log) and the run goes on:

1. ``env``: device, torch / CUDA / cuDNN versions, bf16, which SDPA kernels run (a tiny
   ``scaled_dot_product_attention`` under ``sdpa_kernel`` for each backend), memory, CPUs.
2. ``smoke/<path>``: one training step through the real ``Trainer`` (preset ``cpu-smoke``)
   and one short sampling call per GPU path (fp32, bf16, channels-last, gradient
   checkpointing, torch.compile); ``smoke/ddp`` under ``torchrun --nproc_per_node=2`` if the
   machine has >= 2 GPUs.
3. ``install/peer`` and ``bench/<name>``: ``benchmarks/bench_vs_peer.py`` at ``--size gpu``
   (fp32, ``--bf16``, then ``--bf16 --compile`` for vdm_lite alone) and ``--size cpu`` on the
   GPU; its markdown lands in ``logs/`` and, joined, in ``benchmarks.md``.
4. ``train/<name>``: the models of ``MODELS`` below, each trained for a time slice
   (``Trainer.train(time_limit=...)``; the slices share what the budget has left) and
   exported (EMA, float16) with ``vdm_lite.sampling.export_weights``; the safetensors
   metadata holds the config, the step and the command.
5. ``summary.md`` (rewritten after every item, so a killed run still has one) and
   ``results.json``.

The output folder (``--out``): ``summary.md``, ``results.json``, ``benchmarks.md``, the
exported ``*.safetensors`` and ``logs/`` (a log and a JSON per item, the bench reports, each
model's ``log.csv`` and ``config.json``). ``--pack`` turns ``logs/`` into ``logs.tar.gz`` at
the end, so that the folder holds at most 8 files (what the device tool brings back).
Training run directories (with optimizer state) stay in ``--work``, outside ``--out``.

``--dry-run``: the same stages on the CPU at cpu-smoke sizes (1-2 steps): compile is
skipped (minutes on the CPU), the benchmark runs at its smallest settings only if the peer
is importable (else it is recorded 'skipped: peer not installed'). ``--fail-stage NAME``
(hidden, for the test) makes an item -- or every item of a stage -- fail on purpose.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# What to train (edit freely): name, training preset, overrides (TrainConfig keys, dotted
# `model.x` keys reach the U-Net), share of the budget, export file name in --out. The shares
# are weights: the models split whatever the budget has left when training starts.
# GPU batch: 64 clips (8x the CPU presets' 8); lr 2e-3 (sqrt-of-batch scaling of their 1e-3
# would be 2.8e-3, held lower for bf16) with a longer warmup.
GPU_TRAIN = dict(batch_size=64, lr=2e-3, warmup_steps=200, precision="bf16")
MODELS = [
    # name           preset              overrides       share  export file
    ("shapes-uncond", "cpu-small",        {**GPU_TRAIN}, 0.11, "shapes-uncond.safetensors"),
    ("shapes-lowres", "cpu-lowres-class", {**GPU_TRAIN}, 0.11, "shapes-lowres.safetensors"),
    ("shapes-class",  "cpu-small-class",  {**GPU_TRAIN}, 0.11, "shapes-class.safetensors"),
]  # fmt: skip
# every model: the time slice ends the run, no periodic samples, rare checkpoints
TRAIN_COMMON = dict(steps=100_000, sample_every=-1, ckpt_every=1000, log_every=25)
# --dry-run: the same presets shrunk to cpu-smoke size (the U-Net becomes `cpu-tiny`), in fp32
# (bf16 autocast is slow on the CPU; smoke/bf16 covers it)
DRY_TRAIN = dict(frames=8, resolution=16, batch_size=4, steps=2, log_every=1, warmup_steps=1, precision="fp32")

# Shares of the budget (at 9 min: 0.1 = 54 s) are each item's timeout; items that finish early
# leave their time to training, and until training starts TRAIN_KEEP of the budget is kept for it.
TRAIN_KEEP = 0.25
# smoke paths: overrides of the cpu-smoke preset (fp32), share of the budget
SMOKE = {
    "fp32": ({}, 0.04),
    "bf16": ({"precision": "bf16"}, 0.04),
    "channels-last": ({}, 0.04),  # + model.to(memory_format=torch.channels_last)
    "checkpointing": ({"model.gradient_checkpointing": True}, 0.04),
    "compile": ({"compile": True}, 0.10),
}
DDP_SHARE = 0.05
# bench items: bench_vs_peer.py arguments, share; compile last, vdm_lite alone, no sampling
# (its ratio is taken against the peer of bench/gpu-bf16)
BENCH = [
    ("gpu", ["--size", "gpu", "--device", "cuda:0"], 0.10),
    ("gpu-bf16", ["--size", "gpu", "--device", "cuda:0", "--bf16"], 0.10),
    ("cpu-size", ["--size", "cpu", "--device", "cuda:0"], 0.06),
    ("gpu-bf16-compile", ["--size", "gpu", "--device", "cuda:0", "--bf16", "--compile", "--libs", "vdm_lite", "--sample-runs", "0"], 0.15),
]
BENCH_DRY = [("cpu-tiny", ["--size", "cpu", "--device", "cpu", "--batch", "1", "--frames", "4", "--res", "16", "--steps", "1",
                           "--warmup", "1", "--mem-steps", "1", "--sample-runs", "1", "--sample-batch", "1", "--sample-steps", "2"], 0.2)]
ENV_SHARE, INSTALL_SHARE = 0.03, 0.02
PEER_WHEELS = ["video-diffusion-pytorch==0.7.0", "einops", "einops-exts", "rotary-embedding-torch"]
MIN_TIMEOUT_S = 20  # no item gets less (unless the budget is spent)
RESERVE_S = 10  # kept back for the summary and packing
EXPORT_MARGIN_S = 8  # a training slice stops this long before its timeout, to save and export


# ------------------------------------------------------------------------------- the children
def _device(args):
    import torch

    # an index: torch.cuda.set_device (in the Trainer) refuses a bare "cuda"
    return torch.device("cuda:0" if torch.cuda.is_available() and not args.dry_run else "cpu")


def _sync_and_peak(dev) -> float | None:
    import torch

    if dev.type != "cuda":
        return None
    torch.cuda.synchronize(dev)
    return torch.cuda.max_memory_allocated(dev) / 2**20


def item_env(args) -> dict:
    import platform
    import warnings

    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    import vdm_lite
    from vdm_lite.utils import cpu_name

    dev = _device(args)
    info = dict(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                vdm_lite=vdm_lite.__version__, cpu_count=os.cpu_count(), cpu=cpu_name(),
                gpu_count=torch.cuda.device_count() if torch.cuda.is_available() else 0, device_type=dev.type)  # fmt: skip
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        free, total = torch.cuda.mem_get_info(dev)
        info.update(device=p.name, capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count,
                    gpu_memory_gib=round(total / 2**30, 1), gpu_free_gib=round(free / 2**30, 1), bf16=torch.cuda.is_bf16_supported())
        info["driver"] = _output(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    else:
        info.update(device=f"CPU: {info['cpu']}", gpu_memory_gib=None)
        try:  # bf16 on the CPU: does an autocast matmul run?
            with torch.autocast("cpu", dtype=torch.bfloat16):
                info["bf16"] = (torch.ones(8, 8) @ torch.ones(8, 8)).dtype == torch.bfloat16
        except Exception:
            info["bf16"] = False
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    q = torch.randn(2, 4, 128, 64, device=dev, dtype=dtype)
    sdpa = {}
    for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"):
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            sdpa[name.lower()] = "not in this torch"
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with sdpa_kernel(backend):
                    F.scaled_dot_product_attention(q, q, q)
                _sync_and_peak(dev)
                sdpa[name.lower()] = "ok"
            except Exception as e:
                why = "; ".join(str(w.message).strip().splitlines()[0] for w in caught)[:200]
                sdpa[name.lower()] = f"no ({type(e).__name__}{': ' + why if why else ''})"
    info["sdpa"] = sdpa
    info["git"] = _output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) or "unknown (no .git)"
    return info


def _output(cmd: list[str]) -> str | None:
    """The first line a command prints, or None if it is missing or fails."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip().splitlines()[0] if p.returncode == 0 and p.stdout.strip() else None


def item_smoke(args, path: str) -> dict:
    import torch

    from vdm_lite.config import get_preset
    from vdm_lite.overrides import apply_overrides
    from vdm_lite.sampling import sample_videos
    from vdm_lite.train import Trainer

    ddp = path == "ddp"
    dev = None if ddp else _device(args)  # under torchrun: the Trainer picks cuda:LOCAL_RANK
    overrides = {"batch_size": 4, "steps": 2} if ddp else {**SMOKE[path][0], "steps": 1}
    cfg = apply_overrides(get_preset("cpu-smoke"), {**overrides, "sample_every": -1})
    t0 = time.perf_counter()
    trainer = Trainer(cfg, run_dir=Path(args.work) / "smoke" / path, device=dev)
    dev = trainer.device
    if path == "channels-last":
        for m in (trainer.model, trainer.ema):
            m.to(memory_format=torch.channels_last)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t1 = time.perf_counter()
    logged = trainer.train(progress=False)
    _sync_and_peak(dev)
    t2 = time.perf_counter()
    out = dict(device=str(dev), loss=logged["loss"], build_s=t1 - t0, train_s=t2 - t1)
    if ddp:
        torch.distributed.destroy_process_group()
        return dict(out, world=trainer.dist.world, steps=trainer.step)
    den = torch.compile(trainer.ema) if cfg.compile else trainer.ema
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        videos, _ = sample_videos(den, trainer.cfg, 2, steps=4, device=dev, progress=False)
    peak = _sync_and_peak(dev)
    if not torch.isfinite(videos).all():
        raise RuntimeError("sampling produced non-finite values")
    return dict(out, sample_s=time.perf_counter() - t2, sample_shape=list(videos.shape), peak_mib=peak)


def _model(name: str):
    for entry in MODELS:
        if entry[0] == name:
            return entry
    raise ValueError(f"no model {name!r} in MODELS")


def _cli(v) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v))
    return str(v).lower() if isinstance(v, bool) else str(v)


def item_train(args, name: str, deadline: float) -> dict:
    import csv
    import statistics

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from vdm_lite.config import get_preset
    from vdm_lite.nn.presets import get_preset as get_model_preset
    from vdm_lite.nn.unet import count_parameters
    from vdm_lite.overrides import apply_overrides
    from vdm_lite.sampling import export_weights, load_model
    from vdm_lite.train import Trainer

    _, preset, overrides, _, export = _model(name)
    overrides = {**TRAIN_COMMON, **overrides}
    cfg = apply_overrides(get_preset(preset), overrides)
    if args.dry_run:
        cfg = apply_overrides(cfg, {**DRY_TRAIN, "model": get_model_preset("cpu-tiny", parameterization=cfg.model.parameterization)})
    run_dir = Path(args.work) / "train" / name
    shutil.rmtree(run_dir, ignore_errors=True)
    dev = _device(args)
    trainer = Trainer(cfg, run_dir=run_dir, device=dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    limit = max(deadline - time.time() - EXPORT_MARGIN_S, 1.0)
    t0 = time.perf_counter()
    last = trainer.train(progress=False, time_limit=limit)
    train_s = time.perf_counter() - t0
    peak = _sync_and_peak(dev)

    out = Path(args.out) / export
    export_weights(run_dir, out)  # EMA weights, float16, config and step in the metadata
    equivalent = (f"vdm-lite train --preset={preset} --run-dir=runs/gpu-{name} --time-limit={limit / 60:.2f} "
                  + " ".join(f"{k}={_cli(v)}" for k, v in overrides.items())
                  + f" && vdm-lite export runs/gpu-{name} {export}")  # fmt: skip
    if args.dry_run:
        equivalent += "  # dry run: shrunk with " + " ".join(f"{k}={_cli(v)}" for k, v in DRY_TRAIN.items()) + " model=cpu-tiny"
    facts = dict(device=str(dev), torch=torch.__version__, step=trainer.step, stop_reason=trainer.stop_reason,
                 train_s=round(train_s, 1), gpu_run=os.environ.get("GPU_RUN_COMMAND", ""))
    with safe_open(str(out), framework="pt") as f:  # the command beside the config, as the CPU exports record it
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(out), metadata={**meta, "command": equivalent, "gpu_run": json.dumps(facts)})
    load_model(out, device="cpu")  # the file must load

    logs = Path(args.out) / "logs"
    shutil.copy(run_dir / "log.csv", logs / f"train_{name}_log.csv")
    shutil.copy(run_dir / "config.json", logs / f"train_{name}_config.json")
    with open(run_dir / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["loss"]) for r in rows]
    rates = [float(r["clips_per_s"]) for r in rows[1:]] or [float(r["clips_per_s"]) for r in rows]  # first log: warm-up
    return dict(facts, preset=preset, steps=cfg.steps, loss=last.get("loss"), loss_mean8=statistics.fmean(losses[-8:]) if losses else None,
                clips_per_s=statistics.median(rates) if rates else None, peak_mib=peak, params=count_parameters(trainer.model),
                export=export, export_mb=round(out.stat().st_size / 1e6, 2), command=equivalent, time_limit_s=round(limit, 1))  # fmt: skip


def item_install(args) -> dict:
    site, wheels = Path(args.work) / "peer_site", Path(args.wheels)
    shutil.rmtree(site, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
           "--find-links", str(wheels), "--target", str(site), *PEER_WHEELS]  # fmt: skip
    print("$", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    sys.path[:0] = [str(site), str(ROOT / "benchmarks")]
    import bench_vs_peer  # noqa: E402

    _, torchvision = bench_vs_peer.import_peer()
    return dict(site=str(site), peer=bench_vs_peer.peer_version(), torchvision=torchvision,
                wheels=sorted(p.name for p in wheels.glob("*.whl")))


def child(args) -> None:
    name = args._item
    if name == "env":
        result = item_env(args)
    elif name == "install/peer":
        result = item_install(args)
    elif name.startswith("smoke/"):
        result = item_smoke(args, name.split("/", 1)[1])
    elif name.startswith("train/"):
        result = item_train(args, name.split("/", 1)[1], args._deadline)
    else:
        raise ValueError(f"unknown item {name!r}")
    if int(os.environ.get("RANK", 0)) == 0:
        Path(args._result).write_text(json.dumps(result, indent=2, default=str) + "\n")


# ------------------------------------------------------------------------------- the parent
@dataclass
class Runner:
    args: argparse.Namespace
    budget_s: float
    start: float = field(default_factory=time.time)
    items: list = field(default_factory=list)
    keep_s: float = 0.0  # seconds no item may take (kept for later stages)

    @property
    def out(self) -> Path:
        return Path(self.args.out)

    def left(self) -> float:
        return self.start + self.budget_s - time.time() - RESERVE_S

    def record(self, name, status, seconds=0.0, error="", data=None, **extra) -> dict:
        item = dict(name=name, status=status, seconds=round(seconds, 1), error=error, data=data or {}, **extra)
        self.items.append(item)
        mark = {"pass": "ok  ", "fail": "FAIL", "skipped": "skip"}[status]
        print(f"[{time.time() - self.start:6.0f} s] {mark} {name} ({seconds:.1f} s){'  ' + error if error else ''}", flush=True)
        write_results(self)
        return item

    def run(self, name, share=None, cmd=None, seconds=None, min_s=MIN_TIMEOUT_S, env=None) -> dict:
        """Run one item in a subprocess under `timeout`: its own command, or this script's child."""
        timeout = min(seconds if seconds is not None else max(share * self.budget_s, MIN_TIMEOUT_S), self.left() - self.keep_s)
        if timeout < min_s:
            return self.record(name, "skipped", error=f"skipped: out of budget ({max(timeout, 0):.0f} s for it, needs {min_s:.0f} s)")
        stem = name.replace("/", "_")
        log, result = self.out / "logs" / f"{stem}.log", self.out / "logs" / f"{stem}.json"
        deadline = time.time() + timeout
        if cmd is None:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_item", name, "--_result", str(result), "--_deadline", f"{deadline:.1f}",
                   "--out", str(self.out), "--work", str(self.args.work), "--wheels", str(self.args.wheels)] + (["--dry-run"] if self.args.dry_run else [])  # fmt: skip
        fail = self.args.fail_stage
        if fail and (name == fail or name.startswith(fail + "/")):
            cmd = [sys.executable, "-c", f"raise RuntimeError('forced failure (--fail-stage {fail})')"]
        if shutil.which("timeout"):
            cmd = ["timeout", "--preserve-status", "-k", "10", f"{timeout:.0f}", *cmd]  # SIGTERM, then KILL 10 s later
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **(env or {})}
        t0 = time.perf_counter()
        with open(log, "w") as f:
            f.write(f"$ {shlex.join(cmd)}\n")
            f.flush()
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
            try:
                rc = proc.wait(timeout=timeout + 30)  # `timeout` should have ended it; this is the backstop
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                rc = proc.wait()
        seconds = time.perf_counter() - t0
        data = json.loads(result.read_text()) if result.exists() else {}
        if rc == 0:
            return self.record(name, "pass", seconds, data=data, log=f"logs/{log.name}", timeout_s=round(timeout))
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip() and not ln.startswith("$ ")]
        why = lines[-1] if lines else f"exit code {rc}, no output"
        if seconds >= timeout - 1:  # (a trainer stops at SIGTERM after its step, exports and exits 0: a pass)
            why = f"timeout after {timeout:.0f} s (last output: {why[:160]})"
        return self.record(name, "fail", seconds, error=why[:300], data=data, log=f"logs/{log.name}", timeout_s=round(timeout))


def peer_importable(site: Path) -> bool:
    import importlib.util

    return (site / "video_diffusion_pytorch").is_dir() or importlib.util.find_spec("video_diffusion_pytorch") is not None


def parent(args) -> int:
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    os.environ["GPU_RUN_COMMAND"] = shlex.join(["python", "scripts/gpu_run.py", *sys.argv[1:]])
    r = Runner(args, budget_s=60.0 * args.budget_min)
    r.keep_s = TRAIN_KEEP * r.budget_s
    print(f"gpu_run: {'dry run on the CPU' if args.dry_run else 'GPU run'}, budget {args.budget_min:g} min, out {out}", flush=True)

    env = r.run("env", ENV_SHARE)["data"]
    for path, (_, share) in SMOKE.items():
        if path == "compile" and args.dry_run:
            r.record("smoke/compile", "skipped", error="skipped: torch.compile takes minutes on the CPU (dry run)")
        else:
            r.run(f"smoke/{path}", share)
    gpus = env.get("gpu_count")
    if gpus is not None and gpus >= 2:
        runner = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(Path(__file__).resolve())]
        r.run("smoke/ddp", DDP_SHARE, cmd=runner + ["--_item", "smoke/ddp", "--_result", str(out / "logs" / "smoke_ddp.json"),
                                                     "--out", str(out), "--work", str(args.work)])  # fmt: skip
    else:
        r.record("smoke/ddp", "skipped", error="skipped: " + ("GPU count unknown (env failed)" if gpus is None else f"{gpus} GPU"))

    site = Path(args.work) / "peer_site"
    if Path(args.wheels).is_dir() and any(Path(args.wheels).glob("*.whl")):
        r.run("install/peer", INSTALL_SHARE)
    else:
        r.record("install/peer", "skipped", error=f"skipped: no wheels in {args.wheels} (run scripts/fetch_gpu_wheels.sh, carry .whl/)")
    have_peer = peer_importable(site)
    for name, bench_args, share in BENCH_DRY if args.dry_run else BENCH:
        if not have_peer and args.dry_run:
            r.record(f"bench/{name}", "skipped", error="skipped: peer not installed")
            continue
        md = out / "logs" / f"bench_{name}.md"
        extra = [] if have_peer or "--libs" in bench_args else ["--libs", "vdm_lite", "--note", "peer not installed: vdm_lite alone"]
        cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_vs_peer.py"), *bench_args, *extra, "--out", str(md),
               "--note", f"scripts/gpu_run.py item bench/{name}"]  # fmt: skip
        path = os.pathsep.join(filter(None, [str(site), str(ROOT), os.environ.get("PYTHONPATH")]))
        item = r.run(f"bench/{name}", share, cmd=cmd, env={"PYTHONPATH": path})
        if md.exists():
            item["data"] = dict(report=f"logs/{md.name}", **bench_figures(md.read_text()))
    compiled, eager = (next((i["data"] for i in r.items if i["name"] == f"bench/{n}"), {}) for n in ("gpu-bf16-compile", "gpu-bf16"))
    if "clips_s" in compiled and "clips_s" in eager:  # compiled vdm_lite against the peer of the bf16 run
        a, b = (_number(d["clips_s"][k]) for d, k in ((compiled, "vdm_lite"), (eager, "peer")))
        compiled["clips_s"].update(peer=f"{eager['clips_s']['peer']} (bench/gpu-bf16)", ratio=f"{a / b:.2f}" if a and b else "n/a")
    write_benchmarks(r)

    r.keep_s, todo = 0.0, list(MODELS)
    while todo:  # the slices share what is left, by weight
        name, share = todo[0][0], todo[0][3]
        slice_s = r.left() * share / sum(m[3] for m in todo)
        r.run(f"train/{name}", seconds=slice_s, min_s=EXPORT_MARGIN_S + 10)
        todo.pop(0)

    write_results(r, final=True)
    if args.pack:
        with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
            tar.add(out / "logs", arcname="logs")
        shutil.rmtree(out / "logs")
        write_results(r, final=True)
    print(f"gpu_run: wrote {out / 'summary.md'}", flush=True)
    return 0


# ------------------------------------------------------------------------------- reporting
def bench_figures(md: str) -> dict:
    """vdm_lite, peer and ratio of the key rows of a bench_vs_peer.py table."""
    rows = {"clips_s": "training throughput", "mem_mib": "training-step memory", "mfu": "MFU"}
    out = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for key, label in rows.items():
            if len(cells) >= 4 and cells[0].startswith(label) and (key != "mem_mib" or "absolute" in cells[0]):
                out[key] = dict(vdm_lite=cells[1], peer=cells[2], ratio=cells[3])
    return out


def _number(cell: str) -> float | None:
    try:
        return float(cell.replace(",", "").replace("%", "").strip())
    except ValueError:
        return None


def figures(item: dict) -> str:
    """The key figures of an item, one short cell."""
    d, name = item.get("data") or {}, item["name"]

    def f(v, fmt="{:.2f}"):
        return "n/a" if v is None else fmt.format(v)

    if not d:
        return ""
    if name == "env":
        sdpa = ", ".join(f"{k.split('_')[0]} {v.split(' ')[0]}" for k, v in d.get("sdpa", {}).items())
        mem = f", {d['gpu_memory_gib']} GiB" if d.get("gpu_memory_gib") else ""
        return (f"{d.get('device')}{mem}; torch {d.get('torch')}, CUDA {d.get('cuda')}, cuDNN {d.get('cudnn')}, "
                f"bf16 {'yes' if d.get('bf16') else 'no'}; SDPA: {sdpa}; {d.get('gpu_count')} GPU, {d.get('cpu_count')} CPUs")  # fmt: skip
    if name.startswith("smoke/"):
        s = f"loss {f(d.get('loss'), '{:.3f}')}; build {f(d.get('build_s'), '{:.1f}')} s, train {f(d.get('train_s'), '{:.1f}')} s"
        if "sample_s" in d:
            s += f", sample {f(d.get('sample_s'), '{:.1f}')} s"
        return s + (f"; peak {d['peak_mib']:.0f} MiB" if d.get("peak_mib") else "")
    if name == "install/peer":
        return f"video-diffusion-pytorch {d.get('peer')} from {len(d.get('wheels', []))} wheels; {d.get('torchvision')}"
    if name.startswith("bench/"):
        parts = []  # (the whole report: benchmarks.md)
        for key, label in (("clips_s", "clips/s"), ("mem_mib", "peak MiB"), ("mfu", "MFU")):
            if key in d:
                ratio = "" if d[key]["ratio"] == "n/a" else f" (x{d[key]['ratio']})"
                parts.append(f"{label} {d[key]['vdm_lite']} vs {d[key]['peer']}{ratio}")
        return "; ".join(parts)
    if name.startswith("train/"):
        return (f"step {d.get('step')}{' (' + d['stop_reason'] + ')' if d.get('stop_reason') else ''}, loss {f(d.get('loss'), '{:.4f}')}, "
                f"{f(d.get('clips_per_s'), '{:.0f}')} clips/s" + (f", peak {d['peak_mib']:.0f} MiB" if d.get("peak_mib") else "")
                + f" -> `{d.get('export')}`")  # fmt: skip
    return ""


def write_benchmarks(r: Runner) -> None:
    parts = []
    for item in r.items:
        report = (item.get("data") or {}).get("report")
        if report and (r.out / report).exists():
            parts.append(f"<!-- {item['name']} -->\n" + (r.out / report).read_text())
    if parts:
        (r.out / "benchmarks.md").write_text("\n\n".join(parts))


def write_results(r: Runner, final: bool = False) -> None:
    a = r.args
    wall = time.time() - r.start
    counts = {s: sum(i["status"] == s for i in r.items) for s in ("pass", "fail", "skipped")}
    res = dict(command=os.environ.get("GPU_RUN_COMMAND"), mode="dry-run" if a.dry_run else "gpu", budget_s=r.budget_s,
               wall_s=round(wall, 1), finished=final, counts=counts, items=r.items)  # fmt: skip
    (r.out / "results.json").write_text(json.dumps(res, indent=2, default=str) + "\n")

    env = next((i["data"] for i in r.items if i["name"] == "env"), {})
    where = "logs.tar.gz" if a.pack and final else "logs/"
    lines = [
        f"# GPU run{' (dry run on the CPU, tiny sizes)' if a.dry_run else ''}: {env.get('device', 'device unknown')}",
        "",
        f"- command: `{res['command']}`",
        f"- {time.strftime('%Y-%m-%d %H:%M', time.localtime(r.start))}; budget {r.budget_s / 60:g} min, wall time {wall / 60:.1f} min"
        + ("" if final else " (**still running or killed**)"),
        f"- items: {counts['pass']} passed, {counts['fail']} failed, {counts['skipped']} skipped; logs, JSON and bench reports in `{where}`",
        "",
        "| item | status | seconds | key figures | error (last line) |",
        "|---|---|---:|---|---|",
    ]
    for i in r.items:
        err = i["error"].replace("|", "\\|")
        lines.append(f"| {i['name']} | {i['status']} | {i['seconds']:.1f} | {figures(i)} | {err} |")
    trained = [i for i in r.items if i["name"].startswith("train/") and i["status"] == "pass"]
    if trained:
        lines += ["", "## Trained models", "", "| model | preset | steps | last loss (mean of last 8 logs) | clips/s | params | export | command |",
                  "|---|---|---:|---:|---:|---:|---|---|"]  # fmt: skip
        for i in trained:
            d = i["data"]
            loss = f"{d['loss']:.4f} ({d['loss_mean8']:.4f})" if d.get("loss") is not None else "n/a"
            rate = f"{d['clips_per_s']:.0f}" if d.get("clips_per_s") else "n/a"
            lines.append(f"| {i['name'][6:]} | `{d['preset']}` | {d['step']} of {d['steps']}{' (stopped: ' + d['stop_reason'] + ')' if d['stop_reason'] else ''} "
                         f"| {loss} | {rate} | {d['params'] / 1e6:.2f}M | `{d['export']}` ({d['export_mb']} MB) | `{d['command']}` |")  # fmt: skip
    (r.out / "summary.md").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (summary.md, results.json, exports, logs/)")
    p.add_argument("--budget-min", type=float, default=9.0, help="total wall-time budget in minutes (default 9)")
    p.add_argument("--dry-run", action="store_true", help="the same stages on the CPU at tiny sizes (seconds)")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "vdm_gpu_run"), help="training run directories, peer_site/")
    p.add_argument("--wheels", default=str(ROOT / ".whl"), help="folder of the peer's wheels (scripts/fetch_gpu_wheels.sh)")
    p.add_argument("--pack", action="store_true", help="end by packing logs/ into logs.tar.gz (at most 8 files in --out)")
    p.add_argument("--fail-stage", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_item", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_result", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_deadline", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._item:
        child(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
