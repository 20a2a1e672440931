"""vdm_lite against video-diffusion-pytorch (PyPI 0.7.0), side by side, as ratios.

Both libraries run at matched settings -- same frames x resolution x batch, data, optimizer
and training-step loop, models of nearly equal parameter count -- and each library runs in
its own fresh subprocess:

1. training throughput (clips/s): forward + loss + backward + AdamW step, median of
   ``--steps`` timed steps after ``--warmup`` warm-up steps;
2. peak memory of a training step. CPU: the rise of the peak RSS (``resource.getrusage``,
   its high-water mark reset through ``/proc/self/clear_refs`` after warm-up) over the RSS
   after model construction + warm-up, in a separate subprocess with glibc's mmap threshold
   fixed so that freed buffers go back to the OS. CUDA: ``torch.cuda.max_memory_allocated``
   over ``memory_allocated`` after warm-up (peak stats reset);
3. sampling time per video for the same number of denoiser calls: vdm_lite's ancestral
   sampler with ``steps=N``; the peer's ``GaussianDiffusion.sample``, which always walks all
   its ``timesteps``, is built with ``timesteps=N`` (default N = 32). Both clip x_hat to the
   data range, as the peer always does;
4. model FLOPs of one training step (forward + backward; ``FlopCounterMode`` on one eager
   step), achieved FLOP/s, and on CUDA the MFU against the GPU's dense bf16/fp16 peak.

    python benchmarks/bench_vs_peer.py --size cpu            # a few minutes on one core
    python benchmarks/bench_vs_peer.py --size gpu [--bf16] [--compile] [--channels-last] [--checkpointing]

Matched models (``--size``):

* ``cpu``: 16 frames of 32x32, batch 2. vdm_lite ``cpu-small`` (eps target) against the
  peer's ``Unet3D(dim=32, dim_mults=(1, 2, 4))``: 3.22M vs 3.16M parameters.
* ``gpu``: 16 frames of 64x64, batch 8. vdm_lite's ``ucf101`` preset (Appendix A) scaled
  down to ``base_channels=64, emb_dim=256`` (4 x base, the paper's ratio), dropout 0,
  against the peer's ``Unet3D(dim=96, dim_mults=(1, 2, 4, 8))``: 73.1M vs 77.2M parameters.

Same for both: inputs ``torch.rand`` videos (mapped to [-1, 1] by each library's own
convention), MSE noise-prediction loss (the peer with ``loss_type="l2"``, vdm_lite with the
eps target, uniform t), AdamW(lr=1e-4) (fused on CUDA), no EMA, no gradient clipping; TF32
matmuls allowed on CUDA. The switches ``--bf16`` (autocast, as the trainer's
``precision=bf16``), ``--compile`` (``torch.compile`` of the model, as the trainer's
``compile=True``), ``--checkpointing`` (``UNetConfig.gradient_checkpointing``) and
``--channels-last`` (``model.to(memory_format=torch.channels_last)``, applied by this
script, not a package option) apply to vdm_lite only. With ``--bf16`` on CUDA the peer
runs its own mixed precision, that of its ``Trainer(amp=True)``: fp16 autocast with a
``GradScaler`` (``--peer-fp32`` keeps it in fp32).

The peer is not a dependency of vdm_lite: ``pip install video-diffusion-pytorch==0.7.0``.
If pip wants to change your torch, install it with ``--no-deps`` plus ``einops
einops-exts rotary-embedding-torch``: the peer imports torchvision (and names transformers
deps) only for its text encoder, data set and GIF helpers, none of which run here; when
torchvision is missing or does not load, this script stands in a stub module for it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

PEER_DIST = "video-diffusion-pytorch"
PEER_PIN = "0.7.0"
INSTALL_HINT = (
    f"the peer library is not installed: pip install {PEER_DIST}=={PEER_PIN}\n"
    f"(if pip wants to upgrade or replace torch, use instead: pip install --no-deps {PEER_DIST}=={PEER_PIN} "
    "einops einops-exts rotary-embedding-torch)"
)
RESULT_TAG = "@@BENCH_RESULT "
LIBS = ("vdm_lite", "peer")

SIZES = {
    "cpu": dict(
        frames=16, res=32, batch=2, sample_batch=1, steps=5, warmup=1, sample_runs=1, sample_warmup=0, mem_steps=1,
        vdm=dict(preset="cpu-small", overrides=dict(parameterization="eps")),
        peer=dict(dim=32, dim_mults=(1, 2, 4)),
    ),
    "gpu": dict(
        frames=16, res=64, batch=8, sample_batch=8, steps=20, warmup=5, sample_runs=3, sample_warmup=1, mem_steps=1,
        vdm=dict(preset="ucf101", overrides=dict(base_channels=64, emb_dim=256, dropout=0.0)),
        peer=dict(dim=96, dim_mults=(1, 2, 4, 8)),
    ),
}

# dense tensor-core peaks (TFLOP/s) for MFU, bf16 unless noted; first match wins
GPU_PEAKS = [
    (r"H100.*NVL", 835.0, "H100 NVL, bf16 dense"),
    (r"H100.*PCIe", 756.0, "H100 PCIe, bf16 dense"),
    (r"H100|H200|GH200", 989.0, "H100/H200 SXM, bf16 dense"),
    (r"A100", 312.0, "A100, bf16 dense"),
    (r"\bL4\b", 121.0, "L4, bf16 dense"),
    (r"\bT4\b", 65.0, "T4, fp16 dense"),
]


# --------------------------------------------------------------------------------------- helpers
def gpu_peak(name: str) -> tuple[float | None, str]:
    for pattern, tflops, label in GPU_PEAKS:
        if re.search(pattern, name):
            return tflops, label
    return None, "unknown"


def peer_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version(PEER_DIST)
    except PackageNotFoundError:
        return None


def peer_installed() -> bool:
    try:
        return importlib.util.find_spec("video_diffusion_pytorch") is not None
    except (ImportError, ValueError):
        return False


def current_rss() -> int | None:
    """Resident set size now, in bytes (Linux)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss() -> int:
    """``ru_maxrss`` in bytes (KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (Linux >= 4.0), which getrusage reports."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def import_peer():
    """Import video_diffusion_pytorch; stand in a stub for torchvision if that is missing or
    broken (the peer uses it only in its data set / GIF helpers, which are not run here)."""
    import torch  # noqa: F401  (before any stub: torch must import the real things)

    torchvision_note = None
    try:
        import torchvision  # noqa: F401

        torchvision_note = f"torchvision {torchvision.__version__}"
    except Exception as exc:  # not installed, or a build that does not match this torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        tv, tr, ut = (types.ModuleType(n) for n in ("torchvision", "torchvision.transforms", "torchvision.utils"))

        class _Unused:
            def __init__(self, *args, **kwargs):
                pass

            def __call__(self, *args, **kwargs):
                raise RuntimeError("torchvision stub: the peer's data helpers are not available in this benchmark")

        for n in ("ToTensor", "ToPILImage", "Compose", "Resize", "RandomHorizontalFlip", "CenterCrop", "Lambda"):
            setattr(tr, n, _Unused)
        tv.transforms, tv.utils = tr, ut
        sys.modules.update({"torchvision": tv, "torchvision.transforms": tr, "torchvision.utils": ut})
        torchvision_note = f"torchvision stubbed ({type(exc).__name__}); the peer does not use it here"
    try:
        import video_diffusion_pytorch as vdp
    except ImportError as exc:
        sys.exit(f"could not import video_diffusion_pytorch ({exc}).\n{INSTALL_HINT}")
    return vdp, torchvision_note


# --------------------------------------------------------------------------------------- worker
def build_case(lib: str, args, device):
    """Model, loss closure, sampler closure and facts for one library."""
    import torch

    size = SIZES[args.size]
    B, T, R = args.batch, args.frames, args.res
    gen = torch.Generator(device=device).manual_seed(0)
    if lib == "vdm_lite":
        from vdm_lite.diffusion import diffusion_loss
        from vdm_lite.nn import UNet3D, count_parameters
        from vdm_lite.nn.presets import get_preset
        from vdm_lite.samplers import sample
        from vdm_lite.schedule import CosineSchedule

        cfg = get_preset(size["vdm"]["preset"], **size["vdm"]["overrides"], gradient_checkpointing=args.checkpointing)
        model = UNet3D(cfg).to(device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        net = torch.compile(model) if args.compile else model
        schedule = CosineSchedule()
        x = torch.rand(B, 3, T, R, R, device=device, generator=gen) * 2 - 1
        loss_gen = torch.Generator(device=device).manual_seed(1)

        def loss_of(fwd):
            return diffusion_loss(fwd, x, schedule, parameterization=cfg.parameterization, low_discrepancy=True, generator=loss_gen).mean()

        def sample_videos(n):
            return sample(
                net, (n, 3, T, R, R), sampler="ancestral", steps=args.sample_steps, schedule=schedule,
                parameterization=cfg.parameterization, clip_x=True, generator=torch.Generator(device=device).manual_seed(2),
                device=device, progress=False,
            )

        c = cfg
        desc = (
            f"`{size['vdm']['preset']}` preset, base_channels={c.base_channels}, channel_mults={c.channel_mults}, "
            f"num_res_blocks={c.num_res_blocks}, attention_resolutions={c.attention_resolutions}, head_dim={c.head_dim}, "
            f"emb_dim={c.emb_dim}, mlp_layers={c.mlp_layers}, dropout={c.dropout:g}, parameterization={c.parameterization}"
        )
        precision = "bf16 autocast" if args.bf16 else "fp32"
        extras = [s for s, on in (("torch.compile", args.compile), ("channels_last", args.channels_last), ("gradient checkpointing", args.checkpointing)) if on]
        if extras:
            precision += " + " + " + ".join(extras)
        amp = (args.bf16, torch.bfloat16, False)
        return dict(model=model, net=net, loss_of=loss_of, sample_videos=sample_videos, params=count_parameters(model),
                    desc=desc, precision=precision, amp=amp, checkpointing_attr=args.checkpointing)

    vdp, tv_note = import_peer()
    unet = vdp.Unet3D(dim=size["peer"]["dim"], dim_mults=size["peer"]["dim_mults"])
    diffusion = vdp.GaussianDiffusion(unet, image_size=R, num_frames=T, timesteps=args.sample_steps, loss_type="l2").to(device)
    x = torch.rand(B, 3, T, R, R, device=device, generator=gen)  # the peer maps [0, 1] -> [-1, 1] itself

    def loss_of(fwd):
        return fwd(x)

    def sample_videos(n):
        return diffusion.sample(batch_size=n)

    peer_amp = device.type == "cuda" and args.bf16 and not args.peer_fp32
    desc = (
        f"`Unet3D(dim={size['peer']['dim']}, dim_mults={size['peer']['dim_mults']})` (defaults otherwise: attn_heads=8, "
        f"attn_dim_head=32, sparse linear attention), `GaussianDiffusion(timesteps={args.sample_steps}, loss_type='l2')`"
    )
    return dict(model=diffusion, net=diffusion, loss_of=loss_of, sample_videos=sample_videos,
                params=sum(p.numel() for p in unet.parameters() if p.requires_grad), desc=desc,
                precision="fp16 autocast + GradScaler (its Trainer's amp)" if peer_amp else "fp32",
                amp=(peer_amp, torch.float16, peer_amp), torchvision=tv_note, checkpointing_attr=False)


def worker(args, lib: str, mode: str) -> dict:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.cuda.set_device(device.index or 0)  # set_device refuses a bare "cuda" (no index)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)

    case = build_case(lib, args, device)
    model, net, loss_of = case["model"], case["net"], case["loss_of"]
    amp_on, amp_dtype, use_scaler = case["amp"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    model.train()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def train_step(fwd, count=False):
        opt.zero_grad(set_to_none=True)
        counter = FlopCounterMode(display=False) if count else None
        # the math SDPA backend decomposes into matmuls that the counter sees (it has no
        # formula for the CPU flash kernel); used for the counted warm-up step only
        with counter if counter is not None else contextlib.nullcontext(), sdpa_kernel(SDPBackend.MATH) if count else contextlib.nullcontext():
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_on):
                loss = loss_of(fwd)
            scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return counter.get_total_flops() if counter is not None else None

    out: dict = dict(lib=lib, mode=mode, params=case["params"], desc=case["desc"], precision=case["precision"])
    if case.get("torchvision"):
        out["torchvision"] = case["torchvision"]

    # warm-up; the first step runs eagerly under FlopCounterMode (model FLOPs: no recomputation);
    # a compiled model gets at least 2 more warm-up steps, so compilation is never timed
    flops = None
    n_warm = max(args.warmup, 1) + (2 if net is not model and args.warmup < 3 else 0)
    for i in range(n_warm):
        if i == 0 and mode != "mem":
            if case["checkpointing_attr"]:
                model.gradient_checkpointing = False
            flops = train_step(model, count=True)
            if case["checkpointing_attr"]:
                model.gradient_checkpointing = True
        else:
            train_step(net)
    sync()
    out["warmup_steps"] = n_warm
    out["flops_per_step"] = flops

    if mode == "mem":  # CPU: peak RSS of a step over the RSS after construction + warm-up
        opt.zero_grad(set_to_none=True)
        gc.collect()
        base = current_rss()
        out["rss_reset"] = reset_peak_rss()
        before = peak_rss()
        for _ in range(args.mem_steps):
            train_step(net)
        peak = peak_rss()
        out.update(rss_base=base, rss_peak=peak, rss_peak_before=before)
        return out

    if device.type == "cuda":
        opt.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        sync()
        out["cuda_base"] = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.steps):
        sync()
        t0 = time.perf_counter()
        train_step(net)
        sync()
        times.append(time.perf_counter() - t0)
    out["step_times"] = times
    if device.type == "cuda":
        out["cuda_peak"] = torch.cuda.max_memory_allocated(device)

    # sampling: same number of denoiser calls, eval mode, inference mode, same autocast
    if args.sample_runs > 0:
        model.eval()
        opt.zero_grad(set_to_none=True)
        n = args.sample_batch
        s_times = []
        s_warm = max(args.sample_warmup, 1 if net is not model else 0)  # compiled: never time compilation
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp_on):
            for i in range(s_warm + args.sample_runs):
                sync()
                t0 = time.perf_counter()
                video = case["sample_videos"](n)
                sync()
                if i >= s_warm:
                    s_times.append(time.perf_counter() - t0)
        out["sample_warmup"] = s_warm
        assert tuple(video.shape) == (n, 3, args.frames, args.res, args.res), video.shape
        out["sample_times"] = s_times
    return out


# --------------------------------------------------------------------------------------- main
def run_worker(argv: list[str], lib: str, mode: str, env_extra: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--_worker", lib, "--_mode", mode]
    env = {**os.environ, "TQDM_DISABLE": "1", **env_extra}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
        elif line.strip():
            print(f"  [{lib}/{mode}] {line}")
    if proc.returncode != 0 or result is None:
        sys.exit(f"the {lib} {mode} run failed (exit code {proc.returncode}); see its output above")
    print(f"  {lib}/{mode} done in {time.perf_counter() - t0:.0f} s")
    return result


def fmt(v, digits=3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=tuple(SIZES), default="cpu", help="matched configuration (see the module docstring)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--batch", type=int, default=None, help="clips per training step (default: per size)")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--res", type=int, default=None, help="height = width")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (median reported)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (>= 1; the first counts FLOPs)")
    parser.add_argument("--mem-steps", type=int, default=None, help="CPU: steps of the separate peak-RSS run")
    parser.add_argument("--sample-steps", type=int, default=32, help="denoiser calls per sample (peer: its timesteps)")
    parser.add_argument("--sample-batch", type=int, default=None, help="videos sampled per call")
    parser.add_argument("--sample-runs", type=int, default=None, help="timed sampling calls (median; 0 skips sampling)")
    parser.add_argument("--sample-warmup", type=int, default=None, help="untimed sampling calls first")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 on the CPU)")
    parser.add_argument("--bf16", action="store_true", help="vdm_lite: bf16 autocast (peer on CUDA: its fp16 amp)")
    parser.add_argument("--compile", action="store_true", help="vdm_lite: torch.compile the model")
    parser.add_argument("--channels-last", action="store_true", help="vdm_lite: channels_last weights/activations")
    parser.add_argument("--checkpointing", action="store_true", help="vdm_lite: gradient checkpointing")
    parser.add_argument("--peer-fp32", action="store_true", help="keep the peer in fp32 even with --bf16")
    parser.add_argument("--peak-tflops", type=float, default=None, help="GPU peak for MFU, overriding the table")
    parser.add_argument("--libs", default="vdm_lite,peer", help="comma-separated subset, for debugging")
    parser.add_argument("--note", action="append", default=[], help="a line added to the result file")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/vs_peer_<size>_<device>.md")
    parser.add_argument("--_worker", choices=LIBS, help=argparse.SUPPRESS)
    parser.add_argument("--_mode", choices=("time", "mem"), default="time", help=argparse.SUPPRESS)
    args = parser.parse_args()
    argv = sys.argv[1:]

    size = SIZES[args.size]
    for k in ("batch", "frames", "res", "steps", "warmup", "mem_steps", "sample_batch", "sample_runs", "sample_warmup"):
        if getattr(args, k) is None:
            setattr(args, k, size[k])
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    dev_type = args.device.split(":")[0]
    if args.threads is None and dev_type == "cpu":
        args.threads = 1

    if args._worker:
        print(RESULT_TAG + json.dumps(worker(args, args._worker, args._mode)), flush=True)
        return

    libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    if any(lib not in LIBS for lib in libs):
        parser.error(f"--libs takes a subset of {','.join(LIBS)}")
    if "peer" in libs and not peer_installed():
        sys.exit(INSTALL_HINT)
    pv = peer_version()
    if "peer" in libs and pv != PEER_PIN:
        print(f"warning: {PEER_DIST} {pv} is installed; this benchmark was written against {PEER_PIN}")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    if args.size == "gpu" and dev_type == "cpu":
        print("warning: --size gpu on the CPU will be very slow")

    import torch

    import vdm_lite
    from vdm_lite.utils import cpu_name

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    env_extra = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(args.threads))} if args.threads else {}
    # memory run: a fixed mmap threshold stops glibc raising it, so freed activations are
    # returned to the OS and RSS follows live memory (for timing runs malloc stays as it is)
    mem_env = {**env_extra, "MALLOC_MMAP_THRESHOLD_": "131072"}
    res: dict[str, dict] = {}
    t_start = time.perf_counter()
    for lib in libs:
        print(f"{lib}: timing run ({max(args.warmup, 1)} warm-up + {args.steps} timed steps, sampling) ...", flush=True)
        r = run_worker(argv, lib, "time", env_extra)
        if dev_type == "cpu":
            print(f"{lib}: memory run ...", flush=True)
            m = run_worker(argv, lib, "mem", mem_env)
            r.update({k: m[k] for k in ("rss_base", "rss_peak", "rss_reset", "rss_peak_before")})
        res[lib] = r
    wall = time.perf_counter() - t_start
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None

    # ----- derived numbers
    gpu_name = torch.cuda.get_device_name(torch.device(args.device)) if dev_type == "cuda" else None
    peak, peak_label = (args.peak_tflops, "given with --peak-tflops") if args.peak_tflops else gpu_peak(gpu_name) if gpu_name else (None, "n/a (CPU)")
    MiB = 2**20
    for r in res.values():
        r["step_s"] = statistics.median(r["step_times"])
        r["clips_s"] = args.batch / r["step_s"]
        f = r.get("flops_per_step")
        r["tflops_s"] = f / r["step_s"] / 1e12 if f else None
        r["mfu"] = r["tflops_s"] / peak if (r["tflops_s"] and peak) else None
        r["sample_s"] = statistics.median(r["sample_times"]) / args.sample_batch if r.get("sample_times") else None
        if dev_type == "cpu":
            r["mem_inc"] = (r["rss_peak"] - r["rss_base"]) / MiB if r.get("rss_base") is not None else None
            r["mem_abs"] = r["rss_peak"] / MiB
        else:
            r["mem_inc"] = (r["cuda_peak"] - r["cuda_base"]) / MiB
            r["mem_abs"] = r["cuda_peak"] / MiB

    def get(lib, key):
        return res[lib].get(key) if lib in res else None

    mem_what = "peak RSS" if dev_type == "cpu" else "peak allocated"
    rows = [
        ("parameters (M)", "params", 1e-6, "matched: ~1"),
        ("training throughput (clips/s)", "clips_s", 1, "higher is better: > 1 favours vdm_lite"),
        ("training step, median (ms)", "step_s", 1e3, "lower is better: < 1 favours vdm_lite"),
        (f"training-step memory: {mem_what} over post-warm-up (MiB)", "mem_inc", 1, "lower is better: < 1 favours vdm_lite"),
        (f"training-step memory: {mem_what}, absolute (MiB)", "mem_abs", 1, "lower is better (includes weights, optimizer state" + (", Python and libraries)" if dev_type == "cpu" else ")")),
        (f"sampling time per video, {args.sample_steps} denoiser calls (s)", "sample_s", 1, "lower is better: < 1 favours vdm_lite"),
        ("model FLOPs per training step, fwd + bwd (GFLOP)", "flops_per_step", 1e-9, "information: the cost of the architecture"),
        ("achieved model TFLOP/s", "tflops_s", 1, "higher is better: > 1 favours vdm_lite"),
        ("MFU (% of the GPU's peak)", "mfu", 100, "higher is better: > 1 favours vdm_lite"),
    ]
    table = ["| metric | vdm_lite | peer | vdm_lite / peer | better |", "|---|---:|---:|---:|---|"]
    for label, key, scale, note in rows:
        a, b = get("vdm_lite", key), get("peer", key)
        a_s, b_s = (a * scale if a is not None else None), (b * scale if b is not None else None)
        cell = (lambda v: f"{v:.2f} %" if v is not None else ("n/a (CPU)" if dev_type == "cpu" else "n/a")) if key == "mfu" else fmt
        table.append(f"| {label} | {cell(a_s)} | {cell(b_s)} | {ratio(a, b)} | {note} |")

    # ----- the file
    command = "python benchmarks/bench_vs_peer.py" + ("" if not argv else " " + " ".join(shlex.quote(a) for a in argv))
    omp = os.environ.get("OMP_NUM_THREADS")
    if omp:
        command = f"OMP_NUM_THREADS={omp} " + command
    if dev_type == "cuda":
        device_line = f"{gpu_name} (CUDA {torch.version.cuda}), host CPU {cpu_name()}"
        threads_line = f"torch threads: {args.threads or torch.get_num_threads()}; TF32 matmuls allowed"
    else:
        device_line = f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs visible)"
        threads_line = f"{args.threads} thread{'s' if args.threads != 1 else ''} (`torch.set_num_threads({args.threads})`, OMP_NUM_THREADS={omp or 'unset'})"
    va, vp = res.get("vdm_lite"), res.get("peer")
    tv = (vp or {}).get("torchvision")
    lines = [
        f"# vdm_lite vs video-diffusion-pytorch: `--size {args.size}` on {dev_type}",
        "",
        f"- command: `{command}`",
        f"- device: {device_line}",
        f"- threads: {threads_line}",
        f"- versions: torch {torch.__version__}, python {platform.python_version()} ({sys.platform}), "
        f"vdm_lite {vdm_lite.__version__}, {PEER_DIST} {pv or 'not installed'}" + (f"; {tv}" if tv else ""),
    ]
    if load_before is not None:
        ncpu = os.cpu_count() or 1
        lines.append(
            f"- machine load (1-min load average): {load_before[0]:.2f} before, {load_after[0]:.2f} after, on {ncpu} logical CPUs; "
            f"total wall time {wall:.0f} s"
        )
        if max(load_before[0], load_after[0]) > 0.5 * ncpu:
            lines.append("- **the machine was busy during this run: timings are contaminated; re-run on a quiet machine**")
    lines += [f"- note: {n}" for n in args.note]
    def counts(key, default):
        return "/".join(str(res[lib].get(key, default)) for lib in libs)

    lines += [
        f"- shape: batch {args.batch} x 3 x {args.frames} frames x {args.res}x{args.res}; "
        f"{counts('warmup_steps', args.warmup)} warm-up ({'/'.join(libs)}; the first one eager, counting FLOPs) + {args.steps} "
        f"timed training steps (median); sampling {args.sample_batch} video(s) per call, "
        f"{counts('sample_warmup', args.sample_warmup)} warm-up + {args.sample_runs} timed call(s) (median), "
        f"per video = call time / {args.sample_batch}",
    ]
    if va:
        lines.append(f"- vdm_lite ({va['params'] / 1e6:.2f}M parameters, {va['precision']}): {va['desc']}; "
                     f"training loss `diffusion_loss` (eps MSE, low-discrepancy t); sampling `samplers.sample(sampler='ancestral', steps={args.sample_steps}, clip_x=True)`")
    if vp:
        lines.append(f"- peer ({vp['params'] / 1e6:.2f}M parameters, {vp['precision']}): {vp['desc']}; "
                     f"training loss `GaussianDiffusion.forward` (eps MSE, t uniform over its {args.sample_steps} steps); "
                     f"sampling `GaussianDiffusion.sample` ({args.sample_steps} ancestral steps = its `timesteps`; clips x_hat)")
    lines += [
        "- the designs differ at equal size: vdm_lite has `num_res_blocks` residual blocks per level (one more on the way up) "
        "and full spatial + temporal attention only at `attention_resolutions` (and in the middle); the peer has 2 residual "
        "blocks per level both ways, linear spatial attention and 8-head x 32-dim rotary temporal attention at every level "
        "(full resolution included, plus one after its 7x7 input conv), and full spatial attention in the middle only",
        "- both: AdamW(lr=1e-4)" + (" fused" if dev_type == "cuda" else "") + ", no EMA, no gradient clipping; "
        "random `torch.rand` videos; each library in its own fresh subprocess",
        "- memory: " + (
            "a separate fresh subprocess per library: peak RSS (`resource.getrusage`, high-water mark reset via "
            "`/proc/self/clear_refs` after warm-up" + ("" if all(r.get("rss_reset") for r in res.values()) else " -- reset NOT available here, so the peak covers the warm-up too")
            + f") of {args.mem_steps} training step(s) minus the RSS after model construction + the warm-up steps "
            "(gradients freed), with `MALLOC_MMAP_THRESHOLD_=131072`"
            if dev_type == "cpu" else
            "`torch.cuda.max_memory_allocated` over the timed steps minus `memory_allocated` after warm-up (gradients freed), "
            "peak stats reset after warm-up"
        ),
        "- FLOPs: `torch.utils.flop_counter.FlopCounterMode` on the first (eager) warm-up step, forward + loss + backward, "
        "no recomputation counted, attention through the math SDPA backend so that it is counted; MFU = achieved model FLOP/s / peak, peak: "
        + (f"{peak:g} TFLOP/s ({peak_label})" if peak else peak_label),
        "",
        *table,
        "",
        f"Raw timed training steps (s): vdm_lite {[round(t, 4) for t in (va or {}).get('step_times', [])]}, "
        f"peer {[round(t, 4) for t in (vp or {}).get('step_times', [])]}.",
        "",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"vs_peer_{args.size}_{dev_type}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
