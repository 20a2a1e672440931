"""The shipped super-resolution pair of notebook 10, section 6, on more videos and for several
32x32 models: the main job's 16x16 model samples one video per class, and each 32x32 model
super-resolves the same videos with eq. (8), told the same class.

    OMP_NUM_THREADS=2 python benchmarks/sr_pair.py --num 18 --high shapes-class.safetensors OTHER.safetensors \\
        --out benchmarks/results/sr_pair

Scores, read from pixels by :mod:`vdm_lite.metrics.world` (the 16x16 row on the 16x16 world):
color and shape consistency, count stability, tracks per video (the truth has one: an object that
jumps to another place starts a second track) and acceleration, class match (the told class), the
share of frames whose largest object has the told shape, and the low-resolution error
(RMS of ``area(SR) - x_low`` on the [0, 1] scale; bicubic upsampling for scale). Writes ``sr_pair.json`` and
``sr_pair.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from cascade_order import bicubic  # benchmarks/cascade_order.py, beside this script
from vdm_lite.config import build_dataset, build_schedule
from vdm_lite.evaluate import environment
from vdm_lite.guidance import downsample_video
from vdm_lite.metrics import detect_objects, world_scores
from vdm_lite.notebook import find_checkpoint
from vdm_lite.sampling import load_model, sample_videos
from vdm_lite.tasks import super_resolve

KEYS = ("color_consistency", "shape_consistency", "count_stability", "num_tracks", "accel", "class_match", "told_shape",
        "low_res_error")  # fmt: skip


def scores(videos: torch.Tensor, low: torch.Tensor, labels: torch.Tensor, world) -> dict:
    """World scores of ``videos`` (N, 3, T, H, W) told ``labels``, plus the share of frames in the
    told shape and the low-resolution error against ``low`` (None for the input itself)."""
    det = detect_objects(videos, dataset=world)
    s = world_scores(videos, dataset=world, detections=det, labels=labels)
    shape = labels // len(world.color_names)
    row = {k: float(s[k]) for k in KEYS[:6]}
    row["told_shape"] = float((det["shape"][:, :, 0] == shape[:, None]).float().mean())
    row["low_res_error"] = None if videos is low else float(  # RMS on the [0, 1] scale, as in notebook 10
        ((downsample_video(videos, low.shape[-1], "area") - low) / 2).square().mean().sqrt())
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num", type=int, default=18, help="videos, told classes 0, 1, ... (18 classes: each once)")
    p.add_argument("--high", nargs="+", default=["shapes-class.safetensors"], help="32x32 models to compare")
    p.add_argument("--low", default="shapes-lowres-class.safetensors", help="the 16x16 model that samples")
    p.add_argument("--low-steps", type=int, default=32, help="ancestral steps of the 16x16 samples (notebook 10: 32)")
    p.add_argument("--steps", type=int, default=20, help="ancestral steps of eq. (8) (notebook 10: 20)")
    p.add_argument("--recon-weight", type=float, default=10.0, help="w_r of eq. (8) (notebook 10: 10)")
    p.add_argument("--out", type=Path, default=None, help="folder for sr_pair.json and .md")
    args = p.parse_args(argv)
    if args.num < 1 or args.steps < 1 or args.low_steps < 1:
        p.error("--num, --steps and --low-steps must be >= 1")

    low_model, low_cfg, low_step = load_model(find_checkpoint(args.low))
    if low_cfg.condition != "class":
        p.error(f"--low must be a class-conditional model; {args.low} is {low_cfg.condition!r}")
    labels = torch.arange(args.num) % low_cfg.model.num_classes
    t0 = time.perf_counter()
    low, _ = sample_videos(low_model, low_cfg, args.num, class_label=labels, steps=args.low_steps, seed=0, progress=True)
    rows = {f"16x16 sample ({args.low}, step {low_step})": {**scores(low, low, labels, build_dataset(low_cfg)),
                                                             "seconds": round(time.perf_counter() - t0)}}
    for path in args.high:
        model, cfg, step = load_model(find_checkpoint(path))
        world = build_dataset(cfg)
        if not rows.get("bicubic to 32x32"):
            rows["bicubic to 32x32"] = {**scores(bicubic(low, cfg.resolution), low, labels, world),
                                        "seconds": None}  # fmt: skip
        t0 = time.perf_counter()
        high = super_resolve(model, low, cfg.resolution, downsampler="area", recon_weight=args.recon_weight,
                             steps=args.steps, schedule=build_schedule(cfg), generator=0, class_label=labels,
                             progress=True)  # fmt: skip
        rows[f"eq. (8): {Path(path).name} (step {step})"] = {**scores(high, low, labels, world),
                                                             "seconds": round(time.perf_counter() - t0)}
    head = ("color consistency", "shape consistency", "count stability", "tracks", "accel (px/frame^2)", "class match",
            "frames in the told shape", "low-res error", "s")  # fmt: skip
    lines = ["| | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [f"{r[k]:.{4 if k == 'low_res_error' else 3}f}" if r[k] is not None else "(input)" for k in KEYS]
        cells.append(str(r["seconds"] or ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    env = {**environment(), "command": "python benchmarks/sr_pair.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {"env": env, "num": args.num, "labels": labels.tolist(), "low_steps": args.low_steps,
                  "steps": args.steps, "recon_weight": args.recon_weight, "rows": rows}  # fmt: skip
        (args.out / "sr_pair.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "sr_pair.md").write_text(
            f"# The super-resolution pair of notebook 10, section 6, on {args.num} videos\n\n"
            f"`{env['command']}` ({env['device']}, torch {env['torch']}, vdm_lite {env['vdm_lite']}). "
            f"The 16x16 model samples one video per class ({args.low_steps} ancestral steps, its own guidance weight, "
            f"seed 0); each 32x32 model super-resolves the same videos with eq. (8), w_r = {args.recon_weight:g}, "
            f"{args.steps} ancestral steps, told the same class.\n\n{table}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
