"""Evaluate a model or a folder of videos, and the Table 6 / Figure 4 reproduction.

    report = evaluate("data/checkpoints/shapes-lowres.safetensors", num=16)      # sample, then score
    report = evaluate("runs/cpu-small/samples")                                  # score video files
    table = reproduce_extension("data/checkpoints/shapes-lowres.safetensors")    # Table 6 at small scale

Scores come from :mod:`vdm_lite.metrics.world` (exact rules of the built-in world, read from
pixels) and, given local I3D weights and real videos, FVD (:mod:`vdm_lite.metrics.i3d`).
Every report records the sample count and the settings that made it. Used by
``vdm-lite evaluate`` and ``vdm-lite reproduce``.
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from .utils import cpu_name

__all__ = ["VIDEO_SUFFIXES", "load_videos", "score_videos", "evaluate", "reproduce_extension", "write_report"]

VIDEO_SUFFIXES = (".gif", ".mp4", ".webm", ".avi", ".mov", ".mkv")
SUMMARY_KEYS = ("count_stability", "color_consistency", "shape_consistency", "accel", "position_ratio",
                "color_ratio", "shape_ratio", "class_match")  # fmt: skip


def load_videos(folder: str | Path, resolution: int, frames: int | None = None) -> tuple[torch.Tensor, list[str]]:
    """Every video file of ``folder`` (sorted by name) as ``(B, 3, T, R, R)`` in ``[-1, 1]``,
    cut to the shortest one's length (or to ``frames``). A file of several videos tiled in a row
    (as ``vdm-lite sample`` writes them) counts as one video: write one file per video to
    score them separately."""
    from .sampling import read_input_video

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    videos = [read_input_video(p, resolution, frames=frames)[0] for p in paths]
    t = min(v.shape[1] for v in videos)
    return torch.stack([v[:, :t] for v in videos]), [p.name for p in paths]


def _floats(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out


def score_videos(
    videos: torch.Tensor,
    *,
    dataset: Any = None,
    boundaries: Sequence[int] | None = None,
    labels: torch.Tensor | None = None,
    real: torch.Tensor | None = None,
    i3d: str | Path | None = None,
) -> dict:
    """Scores of ``videos`` ``(B, 3, T, H, W)``: the built-in world's rules
    (:func:`vdm_lite.metrics.world_scores`, with block ``boundaries`` and class ``labels`` when
    given), and FVD against ``real`` videos when ``i3d`` names a local weights file. JSON-ready:
    floats (``None`` for NaN) and a ``per_video`` dict of lists; ``num_videos`` is the count."""
    from .metrics import world_scores

    s = world_scores(videos, dataset=dataset, boundaries=boundaries, labels=labels)
    per = s.pop("per_video")
    report = {"num_videos": int(videos.shape[0]), "frames": int(videos.shape[2]), **_floats(s), "per_video": _floats(per)}
    if i3d is not None:
        if real is None:
            raise ValueError("FVD needs real videos to compare with")
        from .metrics import fvd, load_i3d

        res = fvd(real, videos, load_i3d(i3d))
        report["fvd"] = {"value": res.value, "n_real": res.n_real, "n_fake": res.n_fake}
    return report


def _environment() -> dict:
    import vdm_lite

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{cpu_name()}, {torch.get_num_threads()} thread(s)"
    return {"vdm_lite": vdm_lite.__version__, "torch": torch.__version__, "python": platform.python_version(), "device": device}


def write_report(report: dict, out_dir: str | Path, name: str = "report") -> Path:
    """``out_dir/name.json``, and ``out_dir/name.png``: the main scores per video as a strip plot."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    per = report.get("per_video", {})
    keys = [k for k in SUMMARY_KEYS if k in per]
    if keys:
        fig, axes = plt.subplots(1, len(keys), figsize=(1.7 * len(keys), 2.4), squeeze=False)
        for ax, k in zip(axes[0], keys):
            vals = [v for v in per[k] if v is not None]
            ax.plot([0] * len(vals), vals, "o", alpha=0.5, ms=4)
            if vals:
                ax.axhline(sum(vals) / len(vals), color="k", lw=1)
            ax.set_title(k.replace("_", "\n"), fontsize=8)
            ax.set_xticks([])
        fig.suptitle(f"{report.get('source', '')} (n = {report['num_videos']})", fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / f"{name}.png", dpi=90)
        plt.close(fig)
    return path


def evaluate(
    path: str | Path,
    *,
    num: int = 16,
    mode: str = "sample",
    steps: int = 64,
    sampler: str = "ancestral",
    seed: int = 0,
    total_frames: int | None = None,
    context_frames: int | None = None,
    method: str = "reconstruction",
    recon_weight: float = 20.0,
    resolution: int | None = None,
    i3d: str | Path | None = None,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
) -> dict:
    """Score a trained model (run directory, ``checkpoint.pt`` or ``.safetensors``: ``num``
    videos are sampled, or with ``mode="extend"`` real first blocks of its data are extended
    to ``total_frames``) or a folder of video files (``resolution`` defaults to 32). Writes
    ``report.json`` and ``report.png`` to ``out_dir`` when given; returns the report."""
    from .config import build_dataset
    from .metrics import extension_boundaries
    from .sampling import conditional_videos, load_model, sample_videos

    path = Path(path)
    settings: dict[str, Any] = {"source": str(path), "seed": seed}
    real = labels = boundaries = dataset = None
    is_folder = path.is_dir() and not (path / "checkpoint.pt").exists() and not (path / "ema.safetensors").exists()
    if is_folder:
        videos, names = load_videos(path, resolution or 32)
        settings.update(kind="folder", files=names)
    else:
        model, cfg, step = load_model(path, device=device)
        dataset = build_dataset(cfg)
        settings.update(kind="model", step=step, mode=mode, sampler=sampler, steps=steps, preset=cfg.description)
        t0 = time.perf_counter()
        if mode == "sample":
            label = torch.arange(num) % cfg.model.num_classes if cfg.condition == "class" else None
            videos, _ = sample_videos(model, cfg, num, sampler=sampler, steps=steps, seed=seed, class_label=label)
            labels = label
        elif mode == "extend":
            total = total_frames or 4 * cfg.frames
            context = context_frames or cfg.frames // 2
            res = conditional_videos(model, cfg, "extend", num, total_frames=total, context_frames=context, seed=seed,
                                     method=method, recon_weight=recon_weight, sampler=sampler, steps=steps)  # fmt: skip
            videos, real = res["output"], res["truth"]
            boundaries = extension_boundaries(cfg.frames, total, cfg.frames, context)
            settings.update(total_frames=total, context_frames=context, method=method, recon_weight=recon_weight)
        else:
            raise ValueError(f"mode must be 'sample' or 'extend', got {mode!r}")
        settings["seconds"] = round(time.perf_counter() - t0, 1)
        if real is None and i3d is not None:
            real = dataset.generate_batch(num, seed + 1)["video"]
    report = {**settings, **score_videos(videos, dataset=dataset, boundaries=boundaries, labels=labels, real=real, i3d=i3d),
              "environment": _environment()}  # fmt: skip
    if out_dir is not None:
        write_report(report, out_dir)
    return report


def reproduce_extension(
    path: str | Path,
    *,
    num: int = 8,
    total_frames: int | None = None,
    context_frames: int | None = None,
    recon_weights: Sequence[float] = (5.0, 20.0),
    sampler: str = "ancestral",
    steps: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    progress: bool | None = None,
    command: str | None = None,
) -> dict:
    """Table 6 / Figure 4 at small scale: the same ``num`` real first blocks extended to
    ``total_frames`` (default 4 blocks) with replacement and with reconstruction guidance at
    each of ``recon_weights`` (same seed, same sampler), scored by the built-in world's rules:
    continuity at the block boundaries (position/color/shape jump ratios, ~1 = seamless) and
    over the whole video (count stability, color/shape consistency, acceleration). The real
    continuation is scored the same way as a reference. Writes ``table6.md``, ``table6.json``
    and ``table6.png`` to ``out_dir`` when given (with ``command``, the command line that made them)."""
    from .config import build_dataset
    from .metrics import extension_boundaries
    from .sampling import conditional_videos, load_model

    model, cfg, step = load_model(path, device=device)
    dataset = build_dataset(cfg)
    total = total_frames or 4 * cfg.frames
    context = context_frames or cfg.frames // 2
    bounds = extension_boundaries(cfg.frames, total, cfg.frames, context)
    runs = [("replacement", "replacement", 0.0)] + [(f"reconstruction w_r={w:g}", "reconstruction", float(w)) for w in recon_weights]
    rows, videos = {}, {}
    truth = None
    for name, method, w in runs:
        t0 = time.perf_counter()
        res = conditional_videos(model, cfg, "extend", num, total_frames=total, context_frames=context, seed=seed,
                                 method=method, recon_weight=w, sampler=sampler, steps=steps, progress=progress)  # fmt: skip
        truth, videos[name] = res["truth"], res["output"]
        rows[name] = {**score_videos(res["output"], dataset=dataset, boundaries=bounds), "seconds": round(time.perf_counter() - t0, 1)}
    rows["real continuation"] = score_videos(truth, dataset=dataset, boundaries=bounds)
    result = {"source": str(path), "step": step, "num_videos": num, "total_frames": total, "block_frames": cfg.frames,
              "context_frames": context, "sampler": sampler, "steps": steps, "seed": seed, "boundaries": bounds,
              "rows": rows, "environment": _environment(), "command": command}  # fmt: skip
    if out_dir is not None:
        _write_table6(result, videos, truth, Path(out_dir))
    return result


TABLE6_COLUMNS = (("position_ratio", "position jump ratio"), ("color_ratio", "color jump ratio"),
                  ("shape_ratio", "shape jump ratio"), ("count_stability", "count stability"),
                  ("color_consistency", "color consistency"), ("shape_consistency", "shape consistency"),
                  ("accel", "accel (px/frame^2)"))  # fmt: skip


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _write_table6(result: dict, videos: dict, truth: torch.Tensor, out: Path) -> None:
    import matplotlib.pyplot as plt

    from .viz import frame_grid

    out.mkdir(parents=True, exist_ok=True)
    slim = {**result, "rows": {k: {kk: vv for kk, vv in v.items() if kk != "per_video"} for k, v in result["rows"].items()}}
    (out / "table6.json").write_text(json.dumps(slim, indent=2) + "\n")
    env = result["environment"]
    lines = [
        "# Table 6 / Figure 4 at small scale: replacement vs reconstruction guidance",
        "",
        f"{result['num_videos']} real first blocks of {result['block_frames']} frames extended to {result['total_frames']} frames "
        f"({result['context_frames']} frames carried between blocks; block boundaries at {result['boundaries']}); "
        f"model `{result['source']}` (step {result['step']}); {result['sampler']} sampler, {result['steps']} steps, seed {result['seed']}.",
        "Jump ratios compare the change across a block boundary with the typical change between consecutive frames "
        "(~1: seamless, >> 1: the video jumps). Consistency and count stability: 1 is perfect.",
        "",
        "| method | " + " | ".join(label for _, label in TABLE6_COLUMNS) + " | seconds |",
        "|---|" + "---|" * (len(TABLE6_COLUMNS) + 1),
    ]
    for name, row in result["rows"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k, _ in TABLE6_COLUMNS) + f" | {row.get('seconds', '')} |")
    lines += ["", f"Device: {env['device']}; torch {env['torch']}, python {env['python']}, vdm_lite {env['vdm_lite']}."]
    if result.get("command"):
        lines += ["", f"Command: `{result['command']}`"]
    lines.append("")
    (out / "table6.md").write_text("\n".join(lines))
    names = list(videos)
    show = list(range(0, result["total_frames"], max(1, result["total_frames"] // 16)))
    rows = torch.cat([truth[:1]] + [videos[n][:1] for n in names])
    fig = frame_grid(rows, frames=show, titles=["real"] + names, cell=0.45)
    fig.savefig(out / "table6.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
