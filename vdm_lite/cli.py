"""The ``vdm-lite`` command.

    vdm-lite train --preset=cpu-small                     # train on the built-in dataset, write samples
    vdm-lite train --preset=cpu-small --resume            # continue exactly where it stopped
    vdm-lite train --preset=cpu-smoke steps=50 lr=1e-3    # any config field as key=value (or --key=value)
    vdm-lite sample runs/cpu-small --sampler=pc --steps=128 --num=8
    vdm-lite sample runs/cpu-small --mode=extend --total-frames=64       # Section 3.1: predict, extend,
    vdm-lite sample runs/cpu-small --mode=superres --input=low.mp4       #   interpolate, superres, upsample
    vdm-lite export runs/cpu-small data/checkpoints/x.safetensors   # fp16 weights to share
    vdm-lite evaluate runs/cpu-small --num=16                         # world-rule scores (+ FVD with --i3d)
    vdm-lite reproduce table6 data/checkpoints/shapes-lowres.safetensors   # replacement vs eq. (7)
    vdm-lite reproduce table5 data/checkpoints/shapes-class.safetensors    # guidance weights 0/1/2/5
    vdm-lite reproduce table4 --train-steps=1000                           # 0/4/8 image frames
    vdm-lite train-domain --steps=2500                    # the world's video network (domain FD / IS)
    vdm-lite presets                                      # the training presets

Multi-GPU: ``torchrun --nproc_per_node=8 -m vdm_lite.cli train --preset=ucf101 data_root=...``.
"""

from __future__ import annotations

import argparse
import os
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
        if cfg.init_from and not args.resume:
            print(f"vdm-lite train: weights from {cfg.init_from}; new: {', '.join(trainer.new_weights) or 'none'}")
    try:
        last = trainer.train()
    except TrainingDiverged as e:
        print(f"vdm-lite train: {e}", file=sys.stderr)
        return 3
    if trainer.dist.main:
        print(f"vdm-lite train: done at step {trainer.step}, last loss {last.get('loss', float('nan')):.5f}; "
              f"checkpoint and samples in {trainer.run_dir}")
    return 0


def _recon_weight(args) -> float:
    """w_r: the user's, or what notebooks 09/10 found best on the shipped models (the strength of
    eq. (8) falls as 1/scale^2, so its weight grows as scale^2)."""
    if args.recon_weight is not None:
        return args.recon_weight
    return 10.0 * (args.scale / 2) ** 2 if args.mode in ("superres", "upsample") else 20.0


def cmd_sample(args, extra) -> int:
    from .sampling import conditional_videos, load_model, read_input_video, sample_videos, write_outputs

    if extra:
        raise SystemExit(f"vdm-lite sample: unrecognized arguments {extra}")
    model, cfg, _ = load_model(args.run, weights=args.weights, device=args.device)
    out = Path(args.out) if args.out else Path(args.run if Path(args.run).is_dir() else Path(args.run).parent) / "samples" / args.mode
    formats = args.formats.split(",")
    if args.mode == "sample":
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
        paths = write_outputs(videos, out, fps=args.fps, captions=captions, formats=formats)
    else:
        video = None
        if args.input:
            res = cfg.resolution // args.scale if args.mode in ("superres", "upsample") else cfg.resolution
            video = read_input_video(args.input, res, frames=args.frames)
        kw = {} if args.gamma is None else {"gamma": args.gamma}
        result = conditional_videos(
            model, cfg, args.mode, args.num, video=video, context_frames=args.context_frames, total_frames=args.total_frames,
            factor=args.factor, scale=args.scale, class_label=args.class_label, seed=args.seed, device=args.device,
            method=args.method, replacement=args.replacement, recon_weight=_recon_weight(args), downsampler=args.downsampler,
            sampler=args.sampler, steps=args.steps, guidance_weight=args.guidance or 0.0, **kw,
        )  # fmt: skip
        paths = write_outputs(result["output"], out, fps=args.fps, formats=formats)
        extra_outputs = [("input", result["input"])] + ([("truth", result["truth"])] if result["truth"] is not None else [])
        for name, v in extra_outputs:
            paths += write_outputs(v, out.with_name(f"{out.name}-{name}"), fps=args.fps, formats=formats)
    print("vdm-lite sample: wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_export(args, extra) -> int:
    from .sampling import export_weights

    if extra:
        raise SystemExit(f"vdm-lite export: unrecognized arguments {extra}")
    path = export_weights(args.run, args.out, weights=args.weights, dtype=args.dtype)
    print(f"vdm-lite export: wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_evaluate(args, extra) -> int:
    from .evaluate import evaluate

    if extra:
        raise SystemExit(f"vdm-lite evaluate: unrecognized arguments {extra}")
    p = Path(args.path)
    out = Path(args.out) if args.out else (p if p.is_dir() else p.parent) / "eval"
    report = evaluate(p, num=args.num, mode=args.mode, steps=args.steps, sampler=args.sampler, seed=args.seed,
                      total_frames=args.total_frames, method=args.method, recon_weight=args.recon_weight,
                      resolution=args.resolution, i3d=args.i3d, device=args.device, out_dir=out)  # fmt: skip
    keys = [k for k in ("count_stability", "color_consistency", "shape_consistency", "accel", "position_ratio", "color_ratio", "class_match") if k in report]
    print(f"vdm-lite evaluate: {report['num_videos']} videos of {report['frames']} frames")
    for k in keys:
        v = report[k]
        print(f"  {k:<18} {'n/a' if v is None else f'{v:.3f}'}")
    if "fvd" in report:
        f = report["fvd"]
        print(f"  FVD                {f['value']:.1f} (n = {f['n_real']} real vs {f['n_fake']} generated)")
    print(f"vdm-lite evaluate: wrote {out / 'report.json'} and {out / 'report.png'}")
    return 0


def _command_line(args) -> str:
    """The command as typed, for the results it writes, with the thread settings that shaped
    its timings (``OMP_NUM_THREADS=1 vdm-lite ...``) when they are set."""
    env = [f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if os.environ.get(k)]
    return " ".join([*env, "vdm-lite", *args.argv])


def cmd_reproduce(args, extra) -> int:
    from . import evaluate as ev

    if extra and args.table != "table4":
        raise SystemExit(f"vdm-lite reproduce: unrecognized arguments {extra}")
    if args.table != "table4" and not args.checkpoint:
        raise SystemExit(f"vdm-lite reproduce {args.table}: give the checkpoint to evaluate")
    out = Path(args.out or f"runs/reproduce/{args.table}")
    command = _command_line(args)
    common = dict(sampler=args.sampler, seed=args.seed, device=args.device, out_dir=out, command=command)
    if args.table == "table6":
        weights = [float(w) for w in args.recon_weights.split(",")]
        res = ev.reproduce_extension(args.checkpoint, num=args.num or 8, total_frames=args.total_frames, recon_weights=weights,
                                     steps=args.steps, **common)  # fmt: skip
    elif args.table == "table5":
        weights = [float(w) for w in args.guidance_weights.split(",")]
        res = ev.reproduce_guidance(args.checkpoint, weights=weights, num=args.num or 36, num_real=args.num_real,
                                    steps=args.steps, domain_net=args.domain_net, **common)  # fmt: skip
    else:
        common.pop("sampler")
        frames = [int(k) for k in args.image_frames.split(",")]
        res = ev.reproduce_joint_training(args.preset, image_frames=frames, steps=args.train_steps, overrides=_split_overrides(extra),
                                          num=args.num or 32, num_real=args.num_real, sample_steps=args.steps,
                                          sample_seeds=args.sample_seeds, train_seeds=args.train_seeds,
                                          num_heldout=args.num_heldout,
                                          domain_net=args.domain_net, **common)  # fmt: skip
    name = args.table
    print((out / f"{name}.md").read_text())
    print(f"vdm-lite reproduce: wrote {out / (name + '.md')}, {name}.json and {name}.png ({res['num_videos']} videos per row)")
    return 0


def cmd_train_domain(args, extra) -> int:
    from .metrics.domain import SHIPPED_SHAPES_NET, _main_train

    if extra:
        raise SystemExit(f"vdm-lite train-domain: unrecognized arguments {extra}")
    out = Path(args.out or SHIPPED_SHAPES_NET)
    meta = _main_train(args.steps, args.batch_size, args.seed, out, command=_command_line(args))
    print(f"vdm-lite train-domain: wrote {out}; held-out scores {meta['held_out']}")
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
    c = s.add_argument_group("conditional modes (Section 3.1), for an unconditionally (or class-) trained model")
    c.add_argument("--mode", choices=["sample", "predict", "extend", "interpolate", "superres", "upsample"], default="sample",
                   help="sample: unconditional; predict: the rest of a block from its first frames; extend: a long video "
                        "block by block; interpolate: raise the frame rate by --factor; superres: --scale x resolution, "
                        "eq. (8); upsample: both (Figure 2). Default sample")  # fmt: skip
    c.add_argument("--input", default=None, help="input video file; default: --num real clips of the model's own data (the truth is written too)")
    c.add_argument("--method", choices=["reconstruction", "replacement"], default="reconstruction", help="reconstruction guidance, eq. (7) (default), or replacement only")
    c.add_argument("--replacement", choices=["forward", "posterior"], default="forward", help="replace z^a by a sample of q(z_s^a | x^a) (forward) or q(z_s^a | x^a, z_t^a)")
    c.add_argument("--recon-weight", type=float, default=None,
                   help="w_r of eq. (7)/(8); default 20 for predict/extend/interpolate and 10 * (scale/2)^2 for superres/upsample, "
                        "as measured best on the shipped models in notebooks 09 and 10 (the paper used 9 and 50)")  # fmt: skip
    c.add_argument("--context-frames", type=int, default=None, help="known frames carried between blocks (default half a block)")
    c.add_argument("--total-frames", type=int, default=None, help="length of an extended video (default 4 blocks)")
    c.add_argument("--factor", type=int, default=4, help="frame-rate factor of interpolate/upsample (default 4)")
    c.add_argument("--scale", type=int, default=2, help="resolution factor of superres/upsample (default 2)")
    c.add_argument("--downsampler", choices=["bilinear", "area"], default="bilinear", help="downsampler of eq. (8)")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("export", help="write a run's weights as one safetensors file to share")
    e.add_argument("run", help="run directory, checkpoint.pt or .safetensors")
    e.add_argument("out", help="output .safetensors path")
    e.add_argument("--weights", choices=["ema", "model"], default="ema")
    e.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    e.set_defaults(func=cmd_export)

    ev = sub.add_parser("evaluate", help="score a model's samples or a folder of videos (JSON report and plot)",
                        description="Score videos by the built-in world's rules (objects detected from pixels), and FVD with local I3D weights.")  # fmt: skip
    ev.add_argument("path", help="run directory, checkpoint.pt, .safetensors, or a folder of video files (one video per file)")
    ev.add_argument("--num", type=int, default=16, help="videos to sample (default 16)")
    ev.add_argument("--mode", choices=["sample", "extend"], default="sample", help="unconditional samples, or real first blocks extended (scores block boundaries)")
    ev.add_argument("--steps", type=int, default=64)
    ev.add_argument("--sampler", choices=["ancestral", "pc", "ddim"], default="ancestral")
    ev.add_argument("--total-frames", type=int, default=None, help="extend mode: video length (default 4 blocks)")
    ev.add_argument("--method", choices=["reconstruction", "replacement"], default="reconstruction")
    ev.add_argument("--recon-weight", type=float, default=20.0, help="w_r of eq. (7) in extend mode (default 20)")
    ev.add_argument("--resolution", type=int, default=None, help="folder mode: resize videos to this (default 32)")
    ev.add_argument("--i3d", default=None, help="local I3D weights file for FVD (see vdm_lite.metrics.i3d)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--out", default=None, help="output folder (default PATH/eval or next to the file)")
    ev.add_argument("--device", default=None)
    ev.set_defaults(func=cmd_evaluate)

    rp = sub.add_parser("reproduce", help="reproduce a table of the paper at small scale on the built-in world",
                        description="table4: joint training with 0/4/8 image frames (trains three models; config overrides as key=value); "
                                    "table5: classifier-free guidance weights on a class-conditional model; "
                                    "table6: extension with replacement vs reconstruction guidance (and Figure 4).")  # fmt: skip
    rp.add_argument("table", choices=["table4", "table5", "table6"])
    rp.add_argument("checkpoint", nargs="?", default=None,
                    help="table5: a class-conditional model; table6: an unconditional one (run dir or .safetensors)")
    rp.add_argument("--num", type=int, default=None, help="videos per row (default: table4 32, table5 36, table6 8)")
    rp.add_argument("--num-real", type=int, default=512, help="table4/5: real clips of the FD-domain reference (default 512)")
    rp.add_argument("--steps", type=int, default=64, help="sampler steps (default 64)")
    rp.add_argument("--sampler", choices=["ancestral", "pc"], default="ancestral")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--domain-net", default=None, help="table4/5: ShapesNet weights (default: the shipped ones)")
    rp.add_argument("--total-frames", type=int, default=None, help="table6: extended length (default 4 blocks)")
    rp.add_argument("--recon-weights", default="5,20", help="table6: comma-separated w_r values (default 5,20)")
    rp.add_argument("--guidance-weights", default="0,1,2,5", help="table5: comma-separated w values (default 0,1,2,5)")
    rp.add_argument("--preset", default="cpu-lowres", help="table4: the training preset (default cpu-lowres)")
    rp.add_argument("--train-steps", type=int, default=1000, help="table4: training steps per model (default 1000)")
    rp.add_argument("--image-frames", default="0,4,8", help="table4: comma-separated image frames per clip (default 0,4,8)")
    rp.add_argument("--sample-seeds", type=int, default=1,
                    help="table4: sample each model this many times (seeds seed, seed+1, ...) and report means and per-set spread")
    rp.add_argument("--train-seeds", type=int, default=1,
                    help="table4: train each setting from this many seeds (the preset's, +1, ...) and compare within each seed")
    rp.add_argument("--num-heldout", type=int, default=256,
                    help="table4: held-out real clips on which each model's training loss is compared (default 256)")
    rp.add_argument("--out", default=None, help="output folder (default runs/reproduce/TABLE)")
    rp.add_argument("--device", default=None)
    rp.set_defaults(func=cmd_reproduce)

    td = sub.add_parser("train-domain", help="train ShapesNet, the built-in world's video network of the domain FD and IS",
                        description="Train vdm_lite.metrics.domain.ShapesNet on fresh clips of the built-in world and save it (default: the weights shipped in the package).")  # fmt: skip
    td.add_argument("--steps", type=int, default=2500)
    td.add_argument("--batch-size", type=int, default=32)
    td.add_argument("--seed", type=int, default=0)
    td.add_argument("--out", default=None, help="output .safetensors (default: vdm_lite/metrics/shapes_net.safetensors)")
    td.set_defaults(func=cmd_train_domain)

    pr = sub.add_parser("presets", help="list the training presets")
    pr.set_defaults(func=cmd_presets)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = parser.parse_known_args(argv)
    args.argv = argv  # the command line, recorded next to results
    return args.func(args, extra)


if __name__ == "__main__":
    sys.exit(main())
