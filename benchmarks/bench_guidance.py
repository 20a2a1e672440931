"""What reconstruction guidance (eq. (7)/(8), Section 3.1) costs per sampling step.

One denoiser evaluation of the shipped 32x32 model (``data/checkpoints/shapes-uncond``,
16 frames) at several batch sizes, four ways:

(a) ``unguided``: ``model(z_t, logsnr)`` under ``torch.no_grad`` (one ancestral step's work);
(b) ``guided``: ``ReconstructionGuidance(model, w, x_known=..., known_mask=...)`` with the
    first 8 of 16 frames known: one forward pass with activations kept plus one backward
    pass to ``z_t``;
(c) ``guided, chunk_size=1``: the same, one clip of the batch at a time;
(d) ``guided, checkpointing``: (b) with ``model.gradient_checkpointing = True`` (the U-Net
    recomputes each block in the backward pass instead of storing its activations).

Time: median over ``--runs`` calls after one warm-up call, all cases in one process. Peak
memory of one call: on CUDA ``torch.cuda.max_memory_allocated`` (reset before the call) minus
the memory allocated before it (model and inputs), so the number is what the call itself
needs. On CPU every (case, batch) runs in a fresh subprocess and reports the rise of the
process's peak RSS (``VmHWM``, see :func:`peak_rss_mb`) over its current RSS after loading the
model and one warm-up unguided call (glibc's mmap threshold fixed so that freed activations
leave the RSS).
Prints a markdown table and writes it to ``benchmarks/results/guidance.md``.

    python benchmarks/bench_guidance.py [--device cpu|cuda] [--batch 1 4 8] [--runs 3]
                                        [--out benchmarks/results/guidance.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import vdm_lite
from vdm_lite.guidance import ReconstructionGuidance, prediction_mask
from vdm_lite.sampling import load_model
from vdm_lite.utils import cpu_name

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "data" / "checkpoints" / "shapes-uncond.safetensors"
CASES = {
    "unguided": "(a) unguided, no_grad",
    "guided": "(b) guided (eq. (7), 8 of 16 frames known)",
    "chunked": "(c) guided, chunk_size=1",
    "checkpointing": "(d) guided, gradient checkpointing",
}
WEIGHT = 5.0  # w_r; the cost does not depend on it
MMAP_THRESHOLD = 128 * 1024  # bytes, CPU subprocesses only (see run_case)


def _proc_status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (Linux), in MiB, or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def current_rss_mb() -> float:
    """Resident set size now, in MiB."""
    rss = _proc_status_mb("VmRSS")
    if rss is None:
        raise RuntimeError("measuring CPU memory needs Linux's /proc/self/status")
    return rss


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB: ``VmHWM`` where Linux has it, which belongs
    to the process's own address space, else ``ru_maxrss``. (Linux carries ``ru_maxrss`` over
    ``execve`` from the forked copy of the parent, so in a subprocess of a big parent it starts at
    the parent's size; ``VmHWM`` starts afresh with the new program.)"""
    hwm = _proc_status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def setup(batch: int, device: torch.device):
    """The model, a batch of noisy inputs and the known frames of the guided cases."""
    model, cfg, _ = load_model(CHECKPOINT, device=device)
    T, R = cfg.frames, cfg.resolution
    g = torch.Generator().manual_seed(0)
    z = torch.randn(batch, 3, T, R, R, generator=g).to(device)
    x_known = (torch.rand(batch, 3, T, R, R, generator=g) * 2 - 1).to(device)
    logsnr = torch.linspace(-4.0, 4.0, batch).to(device)
    return model, z, x_known, logsnr, prediction_mask(T, T // 2)


def case_fn(case: str, model, z, x_known, logsnr, known):
    """A no-argument function making one denoiser evaluation of ``case``."""
    model.gradient_checkpointing = case == "checkpointing"
    if case == "unguided":

        def fn():
            with torch.no_grad():
                return model(z, logsnr)

        return fn
    guided = ReconstructionGuidance(model, WEIGHT, x_known=x_known, known_mask=known, chunk_size=1 if case == "chunked" else None)
    return lambda: guided(z, logsnr)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cases(batch: int, device: torch.device, runs: int) -> dict:
    """Median seconds per call of every case, in this process (one warm-up call each)."""
    inputs = setup(batch, device)
    out = {}
    for case in CASES:
        fn = case_fn(case, *inputs)
        fn()  # warm-up: kernels, allocator, autograd
        times = []
        for _ in range(runs):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t0)
        out[case] = statistics.median(times)
    return out


def peak_memory(case: str, batch: int, device: torch.device) -> float:
    """MiB one call of ``case`` needs beyond the model and its inputs (on CPU: call in a fresh process)."""
    inputs = setup(batch, device)
    case_fn("unguided", *inputs)()  # warm-up
    fn = case_fn(case, *inputs)
    sync(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    base = current_rss_mb()
    fn()
    return peak_rss_mb() - base


def memory_case(case: str, batch: int, device: torch.device) -> float:
    if device.type == "cuda":
        return peak_memory(case, batch, device)
    # a fresh process per case on CPU: the peak RSS is a high-water mark that never goes down. A fixed
    # mmap threshold makes glibc return every large freed block to the OS at once, so the RSS after
    # the warm-up call does not keep that call's activations cached in the heap (that would hide them).
    cmd = [sys.executable, __file__, "--worker", case, "--device", "cpu", "--batch", str(batch)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "guidance.md"))
    parser.add_argument("--worker", choices=list(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    if args.worker:  # one memory measurement in a fresh process, printed as JSON for the parent
        print(json.dumps({"peak_mb": peak_memory(args.worker, args.batch[0], device)}))
        return

    rows = {}
    for batch in args.batch:
        peaks = {case: memory_case(case, batch, device) for case in CASES}  # before this process grows
        seconds = time_cases(batch, device, args.runs)
        for case in CASES:
            rows[case, batch] = {"seconds": seconds[case], "peak_mb": peaks[case]}
            r, base = rows[case, batch], rows["unguided", batch]
            print(f"batch {batch:2d} {CASES[case]:45s} {r['seconds']:7.3f} s ({r['seconds'] / base['seconds']:4.1f}x)"
                  f" {r['peak_mb']:8.1f} MiB ({r['peak_mb'] / base['peak_mb']:4.1f}x)", flush=True)  # fmt: skip

    if args.device == "cuda":
        device_name = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
        memory = ("peak `torch.cuda.max_memory_allocated` during one call minus the memory allocated before it "
                  "(model and inputs)")  # fmt: skip
    else:
        device_name = f"{cpu_name()}, {args.threads} thread(s) (`torch.set_num_threads({args.threads})`), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
        memory = ("rise of the peak RSS (`VmHWM`: `ru_maxrss` of the process's own address space) during one call "
                  "over the RSS after loading the model and one "
                  "warm-up unguided call, in a fresh subprocess per row started with "
                  f"`MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}` (so freed activations leave the RSS); times measured "
                  "in the parent process, which has the default allocator settings")  # fmt: skip
    command = "python benchmarks/bench_guidance.py"
    if args.device != ("cuda" if torch.cuda.is_available() else "cpu"):
        command += f" --device {args.device}"
    if args.batch != [1, 4, 8]:
        command += " --batch " + " ".join(map(str, args.batch))
    if args.runs != 3:
        command += f" --runs {args.runs}"
    if args.threads != 1:
        command += f" --threads {args.threads}"
    if args.device == "cpu" and os.environ.get("OMP_NUM_THREADS"):
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " + command
    lines = [
        "# Cost of reconstruction guidance per sampling step",
        "",
        f"- command: `{command}`",
        f"- device: {device_name}",
        f"- torch {torch.__version__}, python {platform.python_version()} ({sys.platform}), vdm_lite {vdm_lite.__version__}",
        "- model: `data/checkpoints/shapes-uncond.safetensors` (3.2M parameters), clips of 16 frames of 32x32, float32",
        f"- time: median of {args.runs} calls after one warm-up call, cases one after another in one process",
        f"- memory: {memory}",
        "- one denoiser evaluation = one step of the ancestral sampler (the predictor-corrector sampler makes two)",
        "",
        "| batch | case | time per step (s) | vs (a) | peak memory (MiB) | vs (a) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for (case, batch), r in rows.items():
        base = rows["unguided", batch]
        lines.append(f"| {batch} | {CASES[case]} | {r['seconds']:.3f} | {r['seconds'] / base['seconds']:.1f}x | "
                     f"{r['peak_mb']:.0f} | {r['peak_mb'] / base['peak_mb']:.1f}x |")  # fmt: skip
    big = max(args.batch)

    def ratio(case, key):
        return rows[case, big][key] / rows["unguided", big][key]

    lines += [
        "",
        f"Reading it (batch {big}): a guided step runs the network forward with its activations kept and then",
        f"backward to `z_t`: {ratio('guided', 'seconds'):.1f}x the time of an unguided step and {ratio('guided', 'peak_mb'):.1f}x its",
        "memory (the activations of a training step, without weight gradients). `chunk_size=1` bounds",
        f"the memory by one clip ({ratio('chunked', 'peak_mb'):.1f}x) at {ratio('chunked', 'seconds'):.1f}x the time; gradient checkpointing",
        "stores only the blocks' inputs and recomputes each block in the backward pass:",
        f"{ratio('checkpointing', 'peak_mb'):.1f}x the memory at {ratio('checkpointing', 'seconds'):.1f}x the time. Eq. (8) (super-resolution) adds a",
        "downsampler to the same graph and costs the same. Timings on a shared machine are indicative;",
        "compare ratios within one table.",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
