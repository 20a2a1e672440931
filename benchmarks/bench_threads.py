"""One CPU thread or torch's default? The notebooks' workloads timed at each thread count.

    python benchmarks/bench_threads.py --threads 1,2 --out benchmarks/results/threads.md

Workloads (each timed as the median of ``--runs`` runs after one warm-up):
* ``sample``: 8 ancestral steps of 4 videos of the shipped ``shapes-lowres`` (16x16, notebook 09);
* ``sample32``: 4 ancestral steps of 2 videos of the shipped ``shapes-uncond`` (32x32, notebook 10);
* ``train``: one training step of ``cpu-small`` at batch 8 (notebook 06);
* ``toy``: 200 tiny matrix products of a 2-D toy sampler's size (notebooks 02 and 03).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def workloads():
    from vdm_lite.config import get_preset
    from vdm_lite.overrides import apply_overrides
    from vdm_lite.sampling import load_model, sample_videos
    from vdm_lite.train import Trainer

    low, low_cfg, _ = load_model(ROOT / "data/checkpoints/shapes-lowres.safetensors", device="cpu")
    hi, hi_cfg, _ = load_model(ROOT / "data/checkpoints/shapes-uncond.safetensors", device="cpu")
    tmp = tempfile.mkdtemp()
    tr = Trainer(apply_overrides(get_preset("cpu-small"), ["sample_every=-1", "ckpt_every=0"]), run_dir=tmp)
    a, b = torch.randn(64, 2), torch.randn(2, 2)
    return {
        "sample": lambda: sample_videos(low, low_cfg, 4, steps=8, seed=0, progress=False),
        "sample32": lambda: sample_videos(hi, hi_cfg, 2, steps=4, seed=0, progress=False),
        "train": tr.train_step,
        "toy": lambda: [a @ b for _ in range(200)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    jobs = workloads()
    res = {name: {} for name in jobs}
    for name, fn in jobs.items():
        for n in counts:
            torch.set_num_threads(n)
            fn()
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            res[name][n] = statistics.median(times)
            print(f"{name}: {n} thread(s) {res[name][n]:.3f} s", flush=True)
    load = os.getloadavg()[0]
    lines = [f"# One thread or torch's default ({torch.get_num_threads()} here)", "",
             f"- command: `python benchmarks/bench_threads.py --threads {args.threads} --runs {args.runs}`",
             f"- device: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}",
             f"- 1-min load average at the end: {load:.2f}", "",
             "| workload | " + " | ".join(f"{n} thread(s) (s)" for n in counts) + f" | {counts[0]} / {counts[-1]} |",
             "|---|" + "---:|" * (len(counts) + 1)]
    for name, r in res.items():
        lines.append(f"| {name} | " + " | ".join(f"{r[n]:.3f}" for n in counts) + f" | {r[counts[0]] / r[counts[-1]]:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
