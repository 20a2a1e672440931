"""The two orders of the 16x16 -> 32x32, frame skip 4 -> 1 cascade of notebook 10, section 5, on
several real clips of the built-in world (the notebook shows one).

    OMP_NUM_THREADS=2 python benchmarks/cascade_order.py --clips 4 --out benchmarks/results/cascade_order

* **cascade** (Figure 2): ``upsample_video(high, low, 32, factor=4)``, the 32x32 model fills the
  frames between the low-resolution observations and super-resolves them at once (eq. (8) on
  the observed frames, replacement and eq. (7) on the frames carried between blocks).
* **frame rate first**: ``interpolate_video(low_model, low, 4)`` at 16x16 (eq. (7) on the known
  low-resolution frames, the 16x16 model's own ``recon_weight``), then
  ``upsample_video(high, ..., factor=1)``: every frame super-resolved with eq. (8).
* **bicubic + linear in time**: no model.

Scores per clip against the ground truth: PSNR (pixel values on [0, 1]) at the observed frames
and at the frames in between, the median centroid error of the largest object found there, and
the number of tracks found (the truth has one). Writes ``cascade_order.json`` and
``cascade_order.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from vdm_lite.config import build_schedule
from vdm_lite.datasets import BouncingShapes
from vdm_lite.evaluate import environment
from vdm_lite.guidance import downsample_video
from vdm_lite.metrics import detect_objects, world_scores
from vdm_lite.notebook import find_checkpoint
from vdm_lite.sampling import load_model
from vdm_lite.tasks import interpolate_video, upsample_video

FACTOR, LOW, CONTEXT, SR_WEIGHT = 4, 16, 4, 10.0  # notebook 10, section 5


def psnr_per_frame(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(T,) PSNR in dB of (1, C, T, H, W) videos in [-1, 1], as images in [0, 1]."""
    return -10 * torch.log10(((a - b) / 2).square().mean(dim=(0, 1, 3, 4)))


def bicubic(v: torch.Tensor, size: int) -> torch.Tensor:
    """Frame-by-frame bicubic upsampling of (B, C, T, h, w) to size x size, clamped to [-1, 1]."""
    B, C, T, h, w = v.shape
    out = F.interpolate(v.transpose(1, 2).reshape(B * T, C, h, w), size=(size, size), mode="bicubic", align_corners=False)
    return out.clamp(-1, 1).reshape(B, T, C, size, size).transpose(1, 2)


def bicubic_linear(low: torch.Tensor, size: int, total: int) -> torch.Tensor:
    """Bicubic in space, linear in time between the observed frames: (B, C, T, h, w) -> (B, C, total, size, size)."""
    B, C, T = low.shape[:3]
    frames = bicubic(low, size).permute(0, 1, 3, 4, 2).reshape(B, C * size * size, T)
    lin = F.interpolate(frames, size=total, mode="linear", align_corners=True)
    return lin.reshape(B, C, size, size, total).permute(0, 1, 4, 2, 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=4, help="real clips, one cascade each")
    p.add_argument("--low-frames", type=int, default=16, help="low-resolution frames at frame skip 4 per clip")
    p.add_argument("--steps", type=int, default=20, help="ancestral steps of every stage (notebook 10: 20)")
    p.add_argument("--high", default="shapes-class.safetensors", help="the 32x32 model")
    p.add_argument("--low", default="shapes-lowres-class.safetensors", help="the 16x16 model of the frame rate")
    p.add_argument("--seed", type=int, default=21, help="clip i is drawn with seed + i (notebook 10's clip: 21)")
    p.add_argument("--out", type=Path, default=None, help="folder for cascade_order.json and .md")
    args = p.parse_args(argv)
    if args.clips < 1 or args.low_frames < 2 or args.steps < 1:
        p.error("--clips and --steps must be >= 1 and --low-frames >= 2")

    high, cfg, high_step = load_model(find_checkpoint(args.high))
    low_model, low_cfg, low_step = load_model(find_checkpoint(args.low))
    schedule, low_schedule = build_schedule(cfg), build_schedule(low_cfg)
    total = (args.low_frames - 1) * FACTOR + 1
    world = BouncingShapes(total, cfg.resolution, cfg.frame_skip, num_objects=tuple(cfg.num_objects), seed=cfg.data_seed)
    observed = torch.arange(total) % FACTOR == 0
    rows, times = [], {"cascade": 0.0, "frame rate first": 0.0}
    for i in range(args.clips):
        clip = world.generate_batch(1, torch.Generator().manual_seed(args.seed + i))
        x, y = clip["video"], clip["label"]
        low = downsample_video(x[:, :, ::FACTOR], LOW, "area")
        t0 = time.perf_counter()
        videos = {"cascade": upsample_video(high, low, cfg.resolution, factor=FACTOR, block_frames=cfg.frames,
                                            context_frames=CONTEXT, downsampler="area", recon_weight=SR_WEIGHT,
                                            steps=args.steps, schedule=schedule, generator=0, class_label=y,
                                            progress=False)}  # fmt: skip
        t1 = time.perf_counter()
        filled = interpolate_video(low_model, low, FACTOR, recon_weight=low_cfg.recon_weight, steps=args.steps,
                                   schedule=low_schedule, generator=0, class_label=y, progress=False)  # fmt: skip
        videos["frame rate first"] = upsample_video(high, filled, cfg.resolution, factor=1, block_frames=cfg.frames,
                                                    context_frames=CONTEXT, downsampler="area", recon_weight=SR_WEIGHT,
                                                    steps=args.steps, schedule=schedule, generator=0, class_label=y,
                                                    progress=False)  # fmt: skip
        t2 = time.perf_counter()
        times["cascade"] += t1 - t0
        times["frame rate first"] += t2 - t1
        videos["bicubic + linear in time"] = bicubic_linear(low, cfg.resolution, total)
        truth = detect_objects(x, dataset=world)["centroid"][0, :, 0]
        for method, v in videos.items():
            det = detect_objects(v, dataset=world)
            err = (det["centroid"][0, :, 0] - truth).norm(dim=-1)
            ps = psnr_per_frame(v, x)
            rows.append({
                "clip": args.seed + i, "method": method,
                "psnr_observed": ps[observed].mean().item(), "psnr_between": ps[~observed].mean().item(),
                "centroid_error_between": err[~observed].nanmedian().item(),
                "tracks": float(world_scores(v, dataset=world, detections=det)["num_tracks"]),
            })  # fmt: skip
        print(f"clip {args.seed + i}: " + "; ".join(
            f"{r['method']} {r['psnr_between']:.1f} dB between, {r['tracks']:.0f} tracks" for r in rows[-3:]))

    methods = list(videos)
    mean = {m: {k: sum(r[k] for r in rows if r["method"] == m) / args.clips
                for k in ("psnr_observed", "psnr_between", "centroid_error_between", "tracks")} for m in methods}  # fmt: skip
    lines = [
        f"| method | PSNR at the observed frames (dB) | PSNR between (dB) | centroid error between (px, median) | tracks (truth: 1) | s per clip |",
        "|---|---|---|---|---|---|",
    ]
    for m in methods:
        per = [r for r in rows if r["method"] == m]
        cells = [" / ".join(f"{r[k]:.{d}f}" for r in per) for k, d in
                 (("psnr_observed", 1), ("psnr_between", 1), ("centroid_error_between", 1), ("tracks", 0))]  # fmt: skip
        sec = f"{times[m] / args.clips:.0f}" if m in times else ""
        lines.append(f"| {m} | " + " | ".join(f"**{mean[m][k]:.{d}f}** ({c})" for (k, d), c in zip(
            (("psnr_observed", 1), ("psnr_between", 1), ("centroid_error_between", 1), ("tracks", 1)), cells)) + f" | {sec} |")
    env = {**environment(), "command": "python benchmarks/cascade_order.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    table = "\n".join(lines)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        models = {"high": f"{args.high} (step {high_step})", "low": f"{args.low} (step {low_step})"}
        report = {"env": env, "models": models, "steps": args.steps, "total_frames": total, "rows": rows, "mean": mean}
        (args.out / "cascade_order.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "cascade_order.md").write_text(
            f"# The two orders of notebook 10's cascade, {args.clips} clips\n\n"
            f"`{env['command']}` ({env['device']}, torch {env['torch']}, vdm_lite {env['vdm_lite']}); "
            f"32x32 model {models['high']}, 16x16 model {models['low']}, {args.steps} ancestral steps, "
            f"{args.low_frames} low-resolution frames at frame skip {FACTOR} -> {total} frames per clip. "
            f"Means in bold, then each clip (seeds {args.seed} to {args.seed + args.clips - 1}).\n\n{table}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
