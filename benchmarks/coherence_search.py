"""The coherent-videos search: arms of the 16x16 long-video model (`cpu-lowres`) compared at
equal compute, two training seeds each (results: benchmarks/results/coherence/).

    OMP_NUM_THREADS=1 python benchmarks/coherence_search.py steptime          # s/step of every arm, 1 thread
    python benchmarks/coherence_search.py commands --budget-min 20 --runs ~/vdm-runs/search

Equal compute, not equal wall time on a shared machine: each arm trains for
``budget / (its seconds per training step on one quiet thread)`` steps, so the comparison
does not depend on what else ran beside it (runs may be stopped and resumed at will:
``--resume`` is exact). ``steptime`` measures those seconds (median of 4 steps after one
warm-up step, batch and data of the preset); ``commands`` prints one training command per
arm and seed, then the probe command (`benchmarks/coherence_probe.py`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

# name: (overrides of the cpu-lowres preset, what the arm tests)
ARMS = {
    "base": ("", "cpu-lowres as shipped: attention at 16, 8 (levels 0-1) + middle, head_dim 32"),
    "coarse": ("model.attention_resolutions=8,4", "attention at 8, 4 (levels 1-2) + middle"),
    "deep": ("model.channel_mults=1,2,4,4 model.attention_resolutions=8,4,2",
             "channel_mults 1,2,4,4, attention at 8, 4, 2 (levels 1-3) + middle at 2x2"),
    "heads": ("model.head_dim=16", "head_dim 16: 2 temporal heads at 16x16, 4 at 8x8, 8 in the middle"),
    # round 2: keep attention at 16x16, change what it can learn to do
    "nobias": ("model.max_rel_distance=0", "no relative position bias (one shared entry): temporal attention by content only"),
    "shift": ("schedule_shift=-2.7726", "cosine shifted by -2 log 4 in training and sampling: log-SNR <= -4 in 32% of "
              "training draws instead of 9% (outside the paper's schedule)"),
    "class": ("condition=class", "conditioned on the object's class (shape x color, 18) from step 0, dropout 0.1; "
              "sampled with labels 0, 1, ... (uniform, as the data), no guidance"),
}  # fmt: skip
# not an arm: the shipped long-video model, as a reference row (what 10x base's training buys)
REFERENCE = {"shipped": "data/checkpoints/shapes-lowres.safetensors: cpu-lowres as shipped, 6000 steps"}
# seconds per training step, one quiet thread of the 2-core AMD EPYC CPU, torch 2.13.0+cpu
# (`steptime`, 2026-12-01); the step budgets of the committed search come from these
STEP_SECONDS = {"base": 1.965, "coarse": 1.381, "deep": 1.628, "heads": 2.078,
                # same network and batch as base (a smaller bias table; another schedule; one class
                # embedding added to the time embedding), so base's time and base's step budget
                "nobias": 1.965, "shift": 1.965, "class": 1.965}


def step_seconds(overrides: str, steps: int = 4) -> float:
    import torch

    from vdm_lite.config import get_preset
    from vdm_lite.overrides import apply_overrides
    from vdm_lite.train import Trainer

    torch.set_num_threads(1)
    cfg = apply_overrides(get_preset("cpu-lowres"), overrides.split() + ["sample_every=-1", "ckpt_every=0"])
    with tempfile.TemporaryDirectory() as d:
        tr = Trainer(cfg, run_dir=d)
        tr.train_step()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            tr.train_step()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("steptime", help="seconds per training step of every arm (one thread)")
    c = sub.add_parser("commands", help="the training and probe commands at equal compute")
    c.add_argument("--budget-min", type=float, default=20.0, help="minutes of one quiet thread per run (default 20)")
    c.add_argument("--runs", default="~/vdm-runs/search", help="folder of the runs")
    c.add_argument("--seeds", default="0,1")
    c.add_argument("--arms", default=",".join(ARMS))
    args = ap.parse_args()
    if args.cmd == "steptime":
        for name, (ov, _) in ARMS.items():
            print(f"{name}: {step_seconds(ov):.3f} s/step", flush=True)
        return
    for name in args.arms.split(","):
        ov, desc = ARMS[name]
        steps = round(args.budget_min * 60 / STEP_SECONDS[name])
        print(f"# {name} ({desc}): {steps} steps = {args.budget_min:g} min at {STEP_SECONDS[name]} s/step")
        for seed in args.seeds.split(","):
            print(f"OMP_NUM_THREADS=1 vdm-lite train --preset=cpu-lowres {ov} seed={seed} steps={steps} sample_every=-1 "
                  f"ckpt_every=100 --run-dir={args.runs}/{name}-s{seed}".replace("  ", " "))
    print(f"OMP_NUM_THREADS=1 python benchmarks/coherence_probe.py {args.runs}/<arm>-s<seed> --num 32 --steps 32 --probe 16 "
          f"--out <arm>-s<seed>.json")


if __name__ == "__main__":
    main()
