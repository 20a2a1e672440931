"""The ``vdm-lite`` command.

    vdm-lite train --preset=cpu-small                     # train on the built-in dataset, write samples
    vdm-lite train --preset=cpu-small --resume            # continue exactly where it stopped
    vdm-lite train --preset=cpu-smoke steps=50 lr=1e-3    # any config field as key=value (or --key=value)
    vdm-lite sample runs/cpu-small --sampler=pc --steps=128 --num=8
    vdm-lite export runs/cpu-small data/checkpoints/x.safetensors   # fp16 weights to share
    vdm-lite presets                                      # the training presets

Multi-GPU: ``torchrun --nproc_per_node=8 -m vdm_lite.cli train --preset=ucf101 data_root=...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _split_overrides(extra: list[str]) -> list[str]:
    out = []
    for a in extra:
        if "=" not in a:
            raise SystemExit(f"vdm-lite: unrecognized argument {a!r} (config overrides look like key=value)")
        out.append(a[2:] if a.startswith("--") else a)
    return out


def cmd_train(args, extra) -> int:
    from .config import get_preset
    from .overrides import apply_overrides
    from .train import Trainer, TrainingDiverged

    cfg = apply_overrides(get_preset(args.preset), _split_overrides(extra))
    trainer = Trainer(cfg, run_dir=args.run_dir, resume=args.resume)
    if trainer.dist.main:
        n = sum(p.numel() for p in trainer.model.parameters())
        print(
            f"vdm-lite train: preset {args.preset!r}, {n / 1e6:.2f}M parameters, device {trainer.device}, "
            f"world size {trainer.dist.world}, run dir {trainer.run_dir}" + (f", resuming at step {trainer.step}" if args.resume else "")
        )
    try:
        last = trainer.train()
    except TrainingDiverged as e:
        print(f"vdm-lite train: {e}", file=sys.stderr)
        return 3
    if trainer.dist.main:
        print(f"vdm-lite train: done at step {trainer.step}, last loss {last.get('loss', float('nan')):.5f}; "
              f"checkpoint and samples in {trainer.run_dir}")
    return 0


def cmd_sample(args, extra) -> int:
    from .sampling import load_model, sample_videos, write_outputs

    if extra:
        raise SystemExit(f"vdm-lite sample: unrecognized arguments {extra}")
    model, cfg, _ = load_model(args.run, weights=args.weights, device=args.device)
    videos, captions = sample_videos(
        model,
        cfg,
        args.num,
        sampler=args.sampler,
        steps=args.steps,
        gamma=args.gamma,
        guidance_weight=args.guidance,
        class_label=args.class_label,
        text=args.text,
        seed=args.seed,
        frames=args.frames,
        device=args.device,
    )
    out = Path(args.out) if args.out else Path(args.run if Path(args.run).is_dir() else Path(args.run).parent) / "samples" / "sample"
    paths = write_outputs(videos, out, fps=args.fps, captions=captions, formats=args.formats.split(","))
    print("vdm-lite sample: wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_export(args, extra) -> int:
    from .sampling import export_weights

    if extra:
        raise SystemExit(f"vdm-lite export: unrecognized arguments {extra}")
    path = export_weights(args.run, args.out, weights=args.weights, dtype=args.dtype)
    print(f"vdm-lite export: wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_presets(args, extra) -> int:
    from .config import PRESETS
    from .nn.presets import build
    from .nn.unet import count_parameters

    print(f"{'preset':16s} {'params':>8s}  {'clip':>10s}  description")
    for name, cfg in PRESETS.items():
        n = count_parameters(build(cfg.model, device="meta"))  # counted without allocating
        clip = f"{cfg.frames}x{cfg.resolution}x{cfg.resolution}"
        print(f"{name:16s} {n / 1e6:7.1f}M  {clip:>10s}  {cfg.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vdm-lite", description="Video Diffusion Models: train and sample.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (config overrides as key=value)", description=cmd_train.__doc__ or "Train a model on a preset; any config field can be overridden as key=value.")
    t.add_argument("--preset", default="cpu-small", help="training preset (see `vdm-lite presets`); default cpu-small")
    t.add_argument("--run-dir", default=None, help="run directory (default: the preset's runs/<name>)")
    t.add_argument("--resume", action="store_true", help="continue from run-dir/checkpoint.pt exactly")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="sample videos from a trained run", description="Sample videos from a run directory, checkpoint.pt or a .safetensors file.")
    s.add_argument("run", help="run directory, checkpoint.pt or weights .safetensors")
    s.add_argument("--weights", choices=["ema", "model"], default="ema", help="EMA weights (default) or raw weights")
    s.add_argument("--sampler", choices=["ancestral", "pc", "ddim"], default="ancestral")
    s.add_argument("--steps", type=int, default=128, help="sampling steps (default 128)")
    s.add_argument("--gamma", type=float, default=None, help="ancestral variance interpolation, eq. (4) (default: the config's)")
    s.add_argument("--guidance", type=float, default=None, help="classifier-free guidance weight w, eq. (6)")
    s.add_argument("--class-label", type=int, nargs="*", default=None, help="class label(s) for a class-conditional model")
    s.add_argument("--text", nargs="*", default=None, help="caption(s) for a text-conditional model")
    s.add_argument("--num", type=int, default=4, help="number of videos")
    s.add_argument("--frames", type=int, default=None, help="frames per video (default: as trained)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fps", type=int, default=8)
    s.add_argument("--formats", default="gif,mp4,png", help="comma-separated: gif, mp4, png (frame grid)")
    s.add_argument("--out", default=None, help="output path stem (default RUN/samples/sample)")
    s.add_argument("--device", default=None, help="cpu, cuda, ... (default: best available)")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("export", help="write a run's weights as one safetensors file to share")
    e.add_argument("run", help="run directory, checkpoint.pt or .safetensors")
    e.add_argument("out", help="output .safetensors path")
    e.add_argument("--weights", choices=["ema", "model"], default="ema")
    e.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    e.set_defaults(func=cmd_export)

    pr = sub.add_parser("presets", help="list the training presets")
    pr.set_defaults(func=cmd_presets)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    return args.func(args, extra)


if __name__ == "__main__":
    sys.exit(main())
