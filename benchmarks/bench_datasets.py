"""How fast the built-in world generates training batches on one CPU core.

Times ``BouncingShapes.generate_batch(16)`` for 16-frame 32x32 clips (the default dataset;
the bar: well under a second, so it can be generated on the fly during training), and a
few neighbours for context: elastic collisions on, 64x64, Moving MNIST protocol with real
digits, and a joint batch with 8 appended image frames. Median of several runs after a
warm-up; prints a markdown table and writes it to ``benchmarks/results/datasets.md``.

    python benchmarks/bench_datasets.py [--runs 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from vdm_lite.datasets import BouncingShapes, MovingDigits, append_image_frames
from vdm_lite.utils import cpu_name


def median_seconds(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "datasets.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    g = torch.Generator().manual_seed(0)
    default = BouncingShapes(frames=16, resolution=32)
    cases = [
        ("BouncingShapes (default), 16 x 16x32x32", lambda: default.generate_batch(16, g)),
        ("BouncingShapes, collisions=True, 16 x 16x32x32", lambda: BouncingShapes(collisions=True).generate_batch(16, g)),
        ("BouncingShapes, 16 x 16x64x64", lambda: BouncingShapes(resolution=64).generate_batch(16, g)),
        (
            "BouncingShapes + 8 joint image frames, 16 x (16+8)x32x32",
            lambda: append_image_frames(default.generate_batch(16, g), 8, g),
        ),
    ]
    try:
        digits = MovingDigits()
        cases.append(("MovingDigits (Moving MNIST protocol), 16 x 20x64x64", lambda: digits.generate_batch(16, g)))
    except ImportError as exc:
        print(f"skipping MovingDigits: {exc}")

    rows = []
    for name, fn in cases:
        s = median_seconds(fn, args.runs)
        rows.append((name, s))
        print(f"{name:60s} {1000 * s:8.1f} ms")

    command = "python benchmarks/bench_datasets.py" + (f" --runs {args.runs}" if args.runs != 20 else "")
    lines = [
        "# Dataset generation speed",
        "",
        f"- command: `{command}`",
        f"- device: {cpu_name()}, 1 thread (`torch.set_num_threads(1)`)",
        f"- torch {torch.__version__}, python {platform.python_version()} ({sys.platform})",
        f"- median of {args.runs} runs after one warm-up; one batch of 16 clips, video and all ground truth",
        "",
        "| batch | median time (ms) | clips / s |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {1000 * s:.1f} | {16 / s:.0f} |" for name, s in rows]
    lines += [
        "",
        "The bar for the default dataset is well under a second per batch, so training can",
        "generate every batch on the fly instead of reading files.",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
