"""The ``vdm-lite`` command.

    vdm-lite train --preset=cpu-lowres-class              # the main job: train on the built-in dataset, write samples
    vdm-lite train --preset=cpu-lowres-class --resume     # continue exactly where it stopped
    vdm-lite train --resume --run-dir=runs/x              # continue a run with its own config.json (overrides kept)
    vdm-lite train --preset=cpu-small --overwrite         # start again; the old run is moved aside
    vdm-lite train --preset=cpu-smoke steps=50 lr=1e-3    # any config field as key=value (or --key=value)
    vdm-lite train --help                                 # every config key, its default and meaning
    vdm-lite config cpu-small steps=50                    # a preset's values, as training would use them
    vdm-lite sample runs/cpu-lowres-class --steps=32 --num=8   # -> runs/cpu-lowres-class/samples/sample-001/
    vdm-lite sample runs/cpu-lowres-class --mode=extend --total-frames=64   # Section 3.1: predict, extend,
    vdm-lite sample runs/cpu-small --mode=superres --input=low.mp4          #   interpolate, superres, upsample
    vdm-lite sample data/checkpoints/shapes-lowres.safetensors        # -> runs/samples/shapes-lowres-sample-001/
    vdm-lite export runs/cpu-small data/checkpoints/x.safetensors   # fp16 weights to share (--overwrite to replace)
    vdm-lite evaluate runs/cpu-lowres-class --num=16 --steps=32       # world-rule scores (+ FVD with --i3d)
    vdm-lite reproduce table6 data/checkpoints/shapes-lowres.safetensors   # replacement vs eq. (7)
    vdm-lite reproduce table5 data/checkpoints/shapes-lowres-class.safetensors    # guidance weights 0/1/2/5
    vdm-lite reproduce table4 --train-steps=1000                           # 0/4/8 image frames
    vdm-lite reproduce table2 CKPT --data=softmotion30_44k --i3d=i3d_torchscript.pt   # the paper's BAIR protocol
    vdm-lite train-domain --steps=2500                    # the world's video network (domain FD / IS)
    vdm-lite presets                                      # the training presets

Multi-GPU: ``torchrun --nproc_per_node=8 -m vdm_lite.cli train --preset=ucf101 data_root=...``.

Nothing is lost: ``train`` refuses a folder that holds a run (``checkpoint.pt`` or ``log.csv``)
unless told ``--resume`` or ``--overwrite`` (which renames the old run ``RUN.old-<time>``), and
every ``sample`` / ``evaluate`` call writes a new numbered folder (``<mode>-001``, ``-002``,
...): under ``RUN/samples/`` for a run directory, under ``runs/samples/`` for a weights file.

Errors: input the package rejects (a bad path, the wrong kind of file, a bad value, an unknown
config key) prints one line, ``vdm-lite CMD: error: ...``, and exits with code 2. By the package's
convention such errors are ``ValueError`` / ``OSError`` (and ``VideoReadError``); any other
exception is a bug and keeps its traceback, as every error does with ``vdm-lite --debug``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path

__all__ = ["main", "UsageError"]

FORMATS = ("gif", "mp4", "png")


class UsageError(Exception):
    """A mistake in the command line or in what it names: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``vdm-lite CMD: error: ...``, exit code 2), and an epilog
    that may be a function, called only when the help is shown (it imports the configs)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def format_help(self):
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


def _path(text: str) -> str:
    """argparse type of every argument naming a file or folder: ``~`` is the home folder, also in
    ``--run-dir=~/runs/x``, where the shell leaves it as typed."""
    return os.path.expanduser(text)


def _positive(text: str) -> int:
    """argparse type: a whole number >= 1 (0 videos or 0 steps is a mistake, not a request)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _formats(text: str) -> list[str]:
    """argparse type: comma-separated output formats."""
    fmts = [f.strip().lower() for f in text.split(",") if f.strip()]
    if not fmts or any(f not in FORMATS for f in fmts):
        raise argparse.ArgumentTypeError(f"expected formats from {', '.join(FORMATS)} (comma-separated), got {text!r}")
    return fmts


def _split_overrides(extra: list[str]) -> list[str]:
    out = []
    for a in extra:
        if "=" not in a:
            raise UsageError(f"unrecognized argument {a!r} (config overrides look like key=value)")
        out.append(a[2:] if a.startswith("--") else a)
    return out


def _no_extra(extra: list[str]) -> None:
    if extra:
        raise UsageError(f"unrecognized arguments: {' '.join(extra)}")


def _new_folder(parent: Path, prefix: str) -> Path:
    """A new folder ``parent/prefix-NNN``, numbered one past the highest there; created at once,
    so that no two calls write into the same one."""
    parent.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(re.escape(prefix) + r"-(\d+)")
    n = max((int(m.group(1)) for q in parent.iterdir() if (m := pattern.fullmatch(q.name))), default=0)
    while True:
        n += 1
        folder = parent / f"{prefix}-{n:03d}"
        try:
            folder.mkdir()
        except FileExistsError:  # another call took it
            continue
        return folder


def _output_folder(path: Path, kind: str, name: str) -> Path:
    """Where a command's outputs go by default: ``RUN/<kind>/<name>-NNN`` for a folder, and
    ``runs/<kind>/<stem>-<name>-NNN`` for a file (never next to it: shipped weights live in ``data/``)."""
    if path.is_dir():
        return _new_folder(path / kind, name)
    stem = path.resolve().parent.name if path.stem == "checkpoint" else path.stem  # RUN/checkpoint.pt: the run's name
    return _new_folder(Path("runs") / kind, f"{stem}-{name}")


DEFAULT_PRESET = "cpu-lowres-class"  # the main job
RUN_MARKERS = ("checkpoint.pt", "log.csv")  # what makes a folder hold a run that training would overwrite


def _prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> Path | None:
    """Check ``run_dir`` before training starts: a run already there is continued (``resume``),
    moved aside to ``RUN.old-<time>`` (``overwrite``; rank 0 moves it), or an error. Returns the
    folder the old run was moved to, if it was."""
    from .train import DistInfo

    if resume and overwrite:
        raise UsageError("--resume continues the run and --overwrite moves it aside: give one of them")
    if resume:
        if not (run_dir / "checkpoint.pt").is_file():
            raise UsageError(f"nothing to resume: no checkpoint.pt in {run_dir}; drop --resume to start a new run there")
        return None
    held = [name for name in RUN_MARKERS if (run_dir / name).exists()]
    if not held:
        return None
    if not overwrite:
        raise UsageError(f"{run_dir} already holds a run ({', '.join(held)}); continue it with --resume, "
                         "move it aside and start again with --overwrite, or give another --run-dir")  # fmt: skip
    if not DistInfo.from_env().main:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    old, n = run_dir.with_name(f"{run_dir.name}.old-{stamp}"), 1
    while old.exists():
        n += 1
        old = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
    run_dir.rename(old)
    return old


def _train_config(args, extra) -> tuple:
    """The config ``train`` runs, and where it came from: ``--preset`` (default the main job's),
    or, for ``--resume --run-dir=RUN`` without ``--preset``, the run's own ``RUN/config.json``
    (so a run started with overrides continues without retyping them); ``key=value`` overrides
    apply on top either way."""
    from .config import TrainConfig, get_preset
    from .overrides import apply_overrides, from_dict

    saved = Path(args.run_dir) / "config.json" if args.resume and args.run_dir and args.preset is None else None
    if saved is not None and saved.is_file():
        try:
            base = from_dict(TrainConfig, json.loads(saved.read_text()))
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            raise UsageError(f"{saved} is not a run's config.json ({e}); give --preset (and the run's overrides)") from None
        source = f"config of {saved}"
    else:
        name = args.preset or DEFAULT_PRESET
        base, source = get_preset(name), f"preset {name!r}"
    return apply_overrides(base, _split_overrides(extra)), source


def cmd_train(args, extra) -> int:
    from .train import Trainer, TrainingDiverged

    cfg, source = _train_config(args, extra)
    run_dir = Path(args.run_dir or cfg.run_dir)
    moved = _prepare_run_dir(run_dir, args.resume, args.overwrite)
    try:
        trainer = Trainer(cfg, run_dir=run_dir, resume=args.resume)
    except BaseException:
        if moved is not None and not (run_dir.exists() and any(run_dir.iterdir())):  # nothing new there yet:
            if run_dir.exists():
                run_dir.rmdir()
            moved.rename(run_dir)  # the old run goes back where it was
        raise
    if trainer.dist.main:
        n = sum(p.numel() for p in trainer.model.parameters())
        if moved is not None:
            print(f"vdm-lite train: moved the old run in {trainer.run_dir} to {moved}")
        print(
            f"vdm-lite train: {source}, {n / 1e6:.2f}M parameters, device {trainer.device}, "
            f"world size {trainer.dist.world}, run dir {trainer.run_dir}" + (f", resuming at step {trainer.step}" if args.resume else "")
        )
        if cfg.init_from and not args.resume:
            print(f"vdm-lite train: weights from {cfg.init_from} (trained {trainer.steps_before} steps); "
                  f"new: {', '.join(trainer.new_weights) or 'none'}")
    try:
        last = trainer.train(time_limit=None if args.time_limit is None else 60.0 * args.time_limit)
    except TrainingDiverged as e:
        print(f"vdm-lite train: {e}", file=sys.stderr)
        return 3
    if trainer.dist.main:
        if trainer.stop_reason:
            why = f"the time limit of {args.time_limit:g} min" if trainer.stop_reason == "time limit" else trainer.stop_reason
            print(f"vdm-lite train: stopped at step {trainer.step} of {cfg.steps} after {why}; checkpoint in "
                  f"{trainer.run_dir} (continue with --resume)")
            return 0
        samples = f" and samples/step_{trainer.step:07d}.*" if cfg.sample_every >= 0 else ""  # sample_every=-1: none
        loss = f"last loss {last['loss']:.5f}" if "loss" in last else "no steps left to train"  # e.g. --resume of a finished run
        print(f"vdm-lite train: done at step {trainer.step}, {loss}; "
              f"wrote checkpoint.pt, ema.safetensors, model.safetensors, log.csv{samples} in {trainer.run_dir}")
    return 0


def cmd_config(args, extra) -> int:
    from .config import build_dataset, config_table, get_preset, resolve_model_config
    from .overrides import apply_overrides

    cfg = apply_overrides(get_preset(args.preset), _split_overrides(extra))
    classes = int(getattr(build_dataset(cfg), "num_classes", 0) or 0) if cfg.condition == "class" else 0
    cfg = dataclasses.replace(cfg, model=resolve_model_config(cfg, classes))  # as the trainer fills it in
    print(f"# preset {args.preset}" + (f" with {' '.join(extra)}" if extra else "") + f": {cfg.description}")
    print("\n".join(config_table(cfg)))
    return 0


def _recon_weight(args) -> float | None:
    """w_r: the user's; for superres/upsample what notebook 10 found best on the shipped model (the
    strength of eq. (8) falls as 1/scale^2, so its weight grows as scale^2); else None: the run's
    ``recon_weight`` (eq. (7))."""
    if args.recon_weight is not None:
        return args.recon_weight
    return 10.0 * (args.scale / 2) ** 2 if args.mode in ("superres", "upsample") else None


def cmd_sample(args, extra) -> int:
    from .checkpoint import describe_kind, input_kind
    from .sampling import conditional_videos, load_model, read_input_video, sample_videos, write_outputs

    _no_extra(extra)
    if args.input and (kind := input_kind(args.input)) != "video":
        raise UsageError(f"--input={args.input} is {describe_kind(kind)}, not a video file (mp4, gif, webm, ...)")
    model, cfg, _ = load_model(args.run, weights=args.weights, device=args.device)
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
        outputs = [("", videos)]
    else:
        video = None
        if args.input:
            low = args.mode in ("superres", "upsample")  # the input is the low resolution, never resized
            res = cfg.resolution // args.scale if low else cfg.resolution
            if low and cfg.resolution % args.scale:
                raise UsageError(f"--scale={args.scale} does not divide the model's resolution {cfg.resolution}")
            try:
                video = read_input_video(args.input, res, frames=args.frames, exact=low)
            except ValueError as e:
                raise UsageError(f"{e}: --mode={args.mode} --scale={args.scale} takes {res}x{res} frames to the model's "
                                 f"{cfg.resolution}x{cfg.resolution}; resize the video to {res}x{res} or change --scale") from None  # fmt: skip
        kw = {} if args.gamma is None else {"gamma": args.gamma}
        result = conditional_videos(
            model, cfg, args.mode, args.num, video=video, context_frames=args.context_frames, total_frames=args.total_frames,
            factor=args.factor, scale=args.scale, class_label=args.class_label, seed=args.seed, device=args.device,
            method=args.method, replacement=args.replacement, recon_weight=_recon_weight(args), downsampler=args.downsampler,
            sampler=args.sampler, steps=args.steps, guidance_weight=args.guidance, **kw,
        )  # fmt: skip
        outputs = [("", result["output"]), ("-input", result["input"])]
        outputs += [("-truth", result["truth"])] if result["truth"] is not None else []
        captions = None
    out = Path(args.out) if args.out else _output_folder(Path(args.run), "samples", args.mode) / args.mode
    paths = []
    for suffix, v in outputs:
        paths += write_outputs(v, out.with_name(out.name + suffix), fps=args.fps, captions=captions if not suffix else None,
                               formats=args.formats)  # fmt: skip
    print("vdm-lite sample: wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_export(args, extra) -> int:
    from .sampling import export_weights

    _no_extra(extra)
    if Path(args.out).suffix != ".safetensors":
        raise UsageError(f"the output {args.out} must end in .safetensors (export writes safetensors weights)")
    if Path(args.out).exists() and not args.overwrite:
        raise UsageError(f"{args.out} exists; export will not overwrite it unless given --overwrite")
    path = export_weights(args.run, args.out, weights=args.weights, dtype=args.dtype)
    print(f"vdm-lite export: wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_evaluate(args, extra) -> int:
    from .evaluate import evaluate, write_report

    _no_extra(extra)
    p = Path(args.path)
    report = evaluate(p, num=args.num, mode=args.mode, steps=args.steps, sampler=args.sampler, seed=args.seed,
                      total_frames=args.total_frames, context_frames=args.context_frames, method=args.method,
                      recon_weight=args.recon_weight, guidance_weight=args.guidance,
                      resolution=args.resolution, i3d=args.i3d, device=args.device)  # fmt: skip
    out = Path(args.out) if args.out else _output_folder(p, "eval", "videos" if report["kind"] == "folder" else args.mode)
    write_report(report, out)
    keys = [k for k in ("count_stability", "color_consistency", "shape_consistency", "accel", "position_ratio", "color_ratio", "class_match") if k in report]
    print(f"vdm-lite evaluate: {report['num_videos']} videos of {report['frames']} frames")
    if report.get("num_skipped"):
        print(f"  skipped {report['num_skipped']} unreadable file(s): {', '.join(report['skipped'])} (problems in report.json)")
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
    if args.table in ("table1", "table2", "table3"):  # the paper's benchmarks: vdm_lite.experiments.tables1to3 (its own options)
        from .experiments.tables1to3 import cli_reproduce

        return cli_reproduce(args, extra)
    if args.table != "table4":
        _no_extra(extra)
        if not args.checkpoint:
            raise UsageError(f"{args.table} evaluates a model: give its run directory or .safetensors file")
    out = Path(args.out or f"runs/reproduce/{args.table}")
    command = _command_line(args)
    common = dict(sampler=args.sampler, seed=args.seed, device=args.device, out_dir=out, command=command)
    if args.table == "table6":
        from .experiments.table6 import reproduce_extension

        weights = [float(w) for w in args.recon_weights.split(",")]
        res = reproduce_extension(args.checkpoint, num=args.num or 8, total_frames=args.total_frames, recon_weights=weights,
                                  context_frames=args.context_frames,
                                  steps=args.steps, label="null" if args.null_label else "clip", guidance_weight=args.guidance,
                                  **common)  # fmt: skip
    elif args.table == "table5":
        from .experiments.table5 import reproduce_guidance

        weights = [float(w) for w in args.guidance_weights.split(",")]
        res = reproduce_guidance(args.checkpoint, weights=weights, num=args.num or 36, num_real=args.num_real,
                                 steps=args.steps, domain_net=args.domain_net, **common)  # fmt: skip
    else:
        from .experiments.table4 import reproduce_joint_training

        common.pop("sampler")
        frames = [int(k) for k in args.image_frames.split(",")]
        res = reproduce_joint_training(args.preset, image_frames=frames, steps=args.train_steps, overrides=_split_overrides(extra),
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

    _no_extra(extra)
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


def _train_epilog() -> str:
    from .config import TrainConfig, config_table

    return ("config keys, as key=value (or --key=value), shown with the defaults of TrainConfig, which every preset\n"
            "changes in part (`vdm-lite config PRESET` prints a preset's values):\n"
            + "\n".join(config_table(TrainConfig())))  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vdm-lite", description="Video Diffusion Models: train and sample.")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    common = argparse.ArgumentParser(add_help=False)  # --debug after the command works too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    t = add("train", help="train a model (config overrides as key=value)", epilog=_train_epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            description="Train a model on a preset; any config field can be overridden as key=value (listed below).")  # fmt: skip
    t.add_argument("--preset", default=None,
                   help=f"training preset (see `vdm-lite presets`); default {DEFAULT_PRESET}, the main job, "
                        "or, with --resume and --run-dir, that run's own config.json")
    t.add_argument("--run-dir", type=_path, default=None, help="run directory (default: the preset's runs/<name>)")
    t.add_argument("--resume", action="store_true", help="continue from run-dir/checkpoint.pt exactly")
    t.add_argument("--overwrite", action="store_true",
                   help="start a new run where one is (checkpoint.pt or log.csv): the old one is moved to RUN.old-<time>")
    t.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="stop cleanly (with a checkpoint) after MIN minutes of wall time; --resume continues")
    t.set_defaults(func=cmd_train)

    s = add("sample", help="sample videos from a trained run", description="Sample videos from a run directory, checkpoint.pt or a .safetensors file.")
    s.add_argument("run", type=_path, help="run directory, checkpoint.pt or weights .safetensors")
    s.add_argument("--weights", choices=["ema", "model"], default="ema", help="EMA weights (default) or raw weights")
    s.add_argument("--sampler", choices=["ancestral", "pc", "ddim"], default="ancestral")
    s.add_argument("--steps", type=_positive, default=128, help="sampling steps (default 128)")
    s.add_argument("--gamma", type=float, default=None, help="ancestral variance interpolation, eq. (4) (default: the config's)")
    s.add_argument("--guidance", type=float, default=None,
                   help="class-conditional model: classifier-free guidance weight w, eq. (6) (default: the run's for "
                        "--mode=sample, 0 for the conditional modes)")  # fmt: skip
    s.add_argument("--class-label", type=int, nargs="*", default=None, help="class label(s) for a class-conditional model")
    s.add_argument("--text", nargs="*", default=None, help="caption(s) for a text-conditional model")
    s.add_argument("--num", type=_positive, default=4, help="number of videos")
    s.add_argument("--frames", type=_positive, default=None, help="frames per video (default: as trained)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fps", type=_positive, default=8)
    s.add_argument("--formats", type=_formats, default="gif,mp4,png", help="comma-separated: gif, mp4, png (frame grid)")
    s.add_argument("--out", type=_path, default=None, help="output path stem, e.g. out/v for out/v.gif (default: a new numbered folder, "
                                               "RUN/samples/MODE-NNN/MODE.* for a run directory, runs/samples/STEM-MODE-NNN/MODE.* "
                                               "for a file)")  # fmt: skip
    s.add_argument("--device", default=None, help="cpu, cuda, ... (default: best available)")
    c = s.add_argument_group("conditional modes (Section 3.1), for an unconditionally (or class-) trained model")
    c.add_argument("--mode", choices=["sample", "predict", "extend", "interpolate", "superres", "upsample"], default="sample",
                   help="sample: unconditional; predict: the rest of a block from its first frames; extend: a long video "
                        "block by block; interpolate: raise the frame rate by --factor; superres: --scale x resolution, "
                        "eq. (8); upsample: both (Figure 2). Default sample")  # fmt: skip
    c.add_argument("--input", type=_path, default=None, help="input video file; default: --num real clips of the model's own data (the truth is written too)")
    c.add_argument("--method", choices=["reconstruction", "replacement"], default="reconstruction", help="reconstruction guidance, eq. (7) (default), or replacement only")
    c.add_argument("--replacement", choices=["forward", "posterior"], default="forward", help="replace z^a by a sample of q(z_s^a | x^a) (forward) or q(z_s^a | x^a, z_t^a)")
    c.add_argument("--recon-weight", type=float, default=None,
                   help="w_r of eq. (7)/(8); default the run's for predict/extend/interpolate (20, and 5 for the main job's model) "
                        "and 10 * (scale/2)^2 for superres/upsample, as measured best on the shipped models in notebooks 09 "
                        "and 10 (the paper used 9 and 50)")  # fmt: skip
    c.add_argument("--context-frames", type=_positive, default=None,
                   help="predict: known first frames (default half a block); extend/upsample: frames carried between blocks "
                        "(default the run's: half a block, 12 for the main job's model)")  # fmt: skip
    c.add_argument("--total-frames", type=_positive, default=None, help="length of an extended video (default 4 blocks)")
    c.add_argument("--factor", type=_positive, default=4, help="frame-rate factor of interpolate/upsample (default 4)")
    c.add_argument("--scale", type=_positive, default=2,
                   help="resolution factor of superres/upsample (default 2); an --input must be exactly resolution/scale, square")
    c.add_argument("--downsampler", choices=["bilinear", "area"], default="bilinear", help="downsampler of eq. (8)")
    s.set_defaults(func=cmd_sample)

    e = add("export", help="write a run's weights as one safetensors file to share")
    e.add_argument("run", type=_path, help="run directory, checkpoint.pt or .safetensors")
    e.add_argument("out", type=_path, help="output .safetensors path")
    e.add_argument("--weights", choices=["ema", "model"], default="ema")
    e.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    e.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    e.set_defaults(func=cmd_export)

    ev = add("evaluate", help="score a model's samples or a folder of videos (JSON report and plot)",
                        description="Score videos by the built-in world's rules (objects detected from pixels), and FVD with local I3D weights.")  # fmt: skip
    ev.add_argument("path", type=_path, help="run directory, checkpoint.pt, .safetensors, or a folder of video files (one video per file)")
    ev.add_argument("--num", type=_positive, default=16, help="videos to sample (default 16)")
    ev.add_argument("--mode", choices=["sample", "extend"], default="sample", help="unconditional samples, or real first blocks extended (scores block boundaries)")
    ev.add_argument("--steps", type=_positive, default=64)
    ev.add_argument("--sampler", choices=["ancestral", "pc", "ddim"], default="ancestral")
    ev.add_argument("--total-frames", type=_positive, default=None, help="extend mode: video length (default 4 blocks)")
    ev.add_argument("--method", choices=["reconstruction", "replacement"], default="reconstruction")
    ev.add_argument("--recon-weight", type=float, default=None, help="w_r of eq. (7) in extend mode (default the run's)")
    ev.add_argument("--context-frames", type=_positive, default=None,
                    help="extend mode: known frames carried between blocks (default the run's; half a block unless set)")
    ev.add_argument("--guidance", type=float, default=None,
                    help="class-conditional model: guidance weight w of eq. (6) (default: the run's; 0 in extend mode)")
    ev.add_argument("--resolution", type=_positive, default=None, help="folder mode: resize videos to this (default 32)")
    ev.add_argument("--i3d", type=_path, default=None, help="local I3D weights file for FVD (see vdm_lite.metrics.i3d)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--out", type=_path, default=None, help="output folder (default: a new numbered folder, PATH/eval/MODE-NNN for a "
                                                "directory, runs/eval/STEM-MODE-NNN for a file)")  # fmt: skip
    ev.add_argument("--device", default=None)
    ev.set_defaults(func=cmd_evaluate)

    rp = add("reproduce", help="reproduce a table of the paper at small scale on the built-in world",
                        description="table4: joint training with 0/4/8 image frames (trains three models; config overrides as key=value); "
                                    "table5: classifier-free guidance weights on a class-conditional model; "
                                    "table6: extension with replacement vs reconstruction guidance (and Figure 4); "
                                    "table1/table2/table3: the paper's UCF101/BAIR/Kinetics-600 protocols on real data "
                                    "(--data=PATH, --c3d/--i3d=WEIGHTS, --smoke; see vdm_lite.experiments.protocols).")  # fmt: skip
    rp.add_argument("table", choices=["table1", "table2", "table3", "table4", "table5", "table6"])
    rp.add_argument("checkpoint", type=_path, nargs="?", default=None,
                    help="table5: a class-conditional model; table6: any model of the built-in world (run dir or .safetensors)")
    rp.add_argument("--num", type=_positive, default=None, help="videos per row (default: table4 32, table5 36, table6 8)")
    rp.add_argument("--num-real", type=_positive, default=512, help="table4/5: real clips of the FD-domain reference (default 512)")
    rp.add_argument("--steps", type=_positive, default=64, help="sampler steps (default 64)")
    rp.add_argument("--sampler", choices=["ancestral", "pc"], default="ancestral")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--domain-net", type=_path, default=None, help="table4/5: ShapesNet weights (default: the shipped ones)")
    rp.add_argument("--total-frames", type=_positive, default=None, help="table6: extended length (default 4 blocks)")
    rp.add_argument("--context-frames", type=_positive, default=None,
                    help="table6: known frames carried between blocks (default the run's; half a block unless set)")
    rp.add_argument("--recon-weights", default="5,20", help="table6: comma-separated w_r values (default 5,20)")
    rp.add_argument("--guidance", type=float, default=None,
                    help="table6, class-conditional model told each clip's class: guidance weight w of eq. (6) (default 0)")
    rp.add_argument("--null-label", action="store_true",
                    help="table6, class-conditional model: give the null label (unconditional) instead of each clip's class")
    rp.add_argument("--guidance-weights", default="0,1,2,5", help="table5: comma-separated w values (default 0,1,2,5)")
    rp.add_argument("--preset", default="cpu-lowres", help="table4: the training preset (default cpu-lowres)")
    rp.add_argument("--train-steps", type=_positive, default=1000, help="table4: training steps per model (default 1000)")
    rp.add_argument("--image-frames", default="0,4,8", help="table4: comma-separated image frames per clip (default 0,4,8)")
    rp.add_argument("--sample-seeds", type=_positive, default=1,
                    help="table4: sample each model this many times (seeds seed, seed+1, ...) and report means and per-set spread")
    rp.add_argument("--train-seeds", type=_positive, default=1,
                    help="table4: train each setting from this many seeds (the preset's, +1, ...) and compare within each seed")
    rp.add_argument("--num-heldout", type=_positive, default=256,
                    help="table4: held-out real clips on which each model's training loss is compared (default 256)")
    rp.add_argument("--out", type=_path, default=None, help="output folder (default runs/reproduce/TABLE)")
    rp.add_argument("--device", default=None)
    rp.set_defaults(func=cmd_reproduce)

    td = add("train-domain", help="train ShapesNet, the built-in world's video network of the domain FD and IS",
                        description="Train vdm_lite.metrics.domain.ShapesNet on fresh clips of the built-in world and save it (default: the weights shipped in the package).")  # fmt: skip
    td.add_argument("--steps", type=_positive, default=2500)
    td.add_argument("--batch-size", type=_positive, default=32)
    td.add_argument("--seed", type=int, default=0)
    td.add_argument("--out", type=_path, default=None, help="output .safetensors (default: vdm_lite/metrics/shapes_net.safetensors)")
    td.set_defaults(func=cmd_train_domain)

    pr = add("presets", help="list the training presets")
    pr.set_defaults(func=cmd_presets)

    cf = add("config", help="print a preset's config as training would use it (overrides as key=value)",
             description="Print every config key of a preset, with overrides applied and the model fields the "
                         "trainer fills in from the data (frames, resolution, classes), and what each key means.")  # fmt: skip
    cf.add_argument("preset", nargs="?", default=DEFAULT_PRESET, help=f"training preset (default {DEFAULT_PRESET})")
    cf.set_defaults(func=cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = parser.parse_known_args(argv)
    args.argv = argv  # the command line, recorded next to results
    try:
        return args.func(args, extra)
    except Exception as e:
        from .datasets.video import VideoReadError

        if args.debug or not isinstance(e, (UsageError, ValueError, OSError, VideoReadError)):
            raise  # a bug, or --debug: the whole traceback
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        print(f"vdm-lite {args.command}: error: {lines[0]} {'; '.join(lines[1:])}".rstrip(), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
