"""Score a model or a folder of videos: what a user of ``vdm-lite evaluate`` runs.

    report = evaluate("data/checkpoints/shapes-lowres.safetensors", num=16)      # sample, then score
    report = evaluate("runs/cpu-small/samples")                                  # score video files
    loss = heldout_loss(model, schedule, clips)                                  # eq. (2) on new clips, per clip

Scores come from :mod:`vdm_lite.metrics.world` (exact rules of the built-in world, read from
pixels) and, given local I3D weights and real videos, FVD (:mod:`vdm_lite.metrics.i3d`).
Every report records the sample count and the settings that made it (:func:`environment`);
:func:`write_report` writes it as JSON with a plot of the main scores (``SUMMARY_KEYS``).

The small-scale reproductions of Tables 4-6 and the paper's protocols of Tables 1-3 are
experiments built on these, in :mod:`vdm_lite.experiments` (``vdm-lite reproduce``).
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

__all__ = ["VIDEO_SUFFIXES", "SUMMARY_KEYS", "load_videos", "score_videos", "evaluate", "write_report", "environment",
           "heldout_loss", "heldout_times"]

VIDEO_SUFFIXES = (".gif", ".mp4", ".webm", ".avi", ".mov", ".mkv")
SUMMARY_KEYS = ("count_stability", "color_consistency", "shape_consistency", "accel", "position_ratio",
                "color_ratio", "shape_ratio", "class_match")  # fmt: skip


def load_videos(
    folder: str | Path, resolution: int, frames: int | None = None, skipped: dict[str, str] | None = None
) -> tuple[torch.Tensor, list[str]]:
    """Every video file of ``folder`` (sorted by name) as ``(B, 3, T, R, R)`` in ``[-1, 1]``,
    cut to the shortest one's length (or to ``frames``), and the file names. A file of several
    videos tiled in a row (as ``vdm-lite sample`` writes them) counts as one video: write one
    file per video to score them separately.

    An unreadable file raises :class:`~vdm_lite.datasets.VideoReadError`; given a ``skipped``
    dict, it is left out instead and recorded there (file name -> problem)."""
    from .datasets.video import VideoReadError
    from .sampling import read_input_video

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    videos, names = [], []
    for p in paths:
        try:
            videos.append(read_input_video(p, resolution, frames=frames)[0])
            names.append(p.name)
        except VideoReadError as e:
            if skipped is None:
                raise
            skipped[p.name] = str(e).removeprefix(f"{p}: ")
    if not videos:
        raise FileNotFoundError(f"none of the {len(paths)} video files in {folder} could be read")
    t = min(v.shape[1] for v in videos)
    return torch.stack([v[:, :t] for v in videos]), names


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


def environment() -> dict:
    """The versions and the device a result was made with (recorded in every report and table)."""
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
    recon_weight: float | None = None,
    guidance_weight: float | None = None,
    resolution: int | None = None,
    i3d: str | Path | None = None,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
) -> dict:
    """Score a trained model (run directory, ``checkpoint.pt`` or ``.safetensors``: ``num``
    videos are sampled, or with ``mode="extend"`` real first blocks of its data are extended
    to ``total_frames``) or a folder of video files (``resolution`` defaults to 32). A
    class-conditional model is told classes 0, 1, 2, ... (or each real clip's class when it
    extends) and guided with ``guidance_weight`` (eq. (6); default: the run's for samples, 0 when
    it extends, as :func:`vdm_lite.sampling.conditional_videos`). Writes
    ``report.json`` and ``report.png`` to ``out_dir`` when given; returns the report.

    Unreadable files of a folder are skipped, and named in the report (``skipped``: file name
    -> problem, ``num_skipped``)."""
    from .checkpoint import input_kind
    from .config import build_dataset
    from .metrics import extension_boundaries
    from .sampling import conditional_videos, load_model, sample_videos

    path = Path(path)
    settings: dict[str, Any] = {"source": str(path), "seed": seed}
    real = labels = boundaries = dataset = None
    kind = input_kind(path)
    if kind == "video":
        raise ValueError(f"{path} is a video file; evaluate scores a model or a folder of videos: "
                         f"give the folder that holds it ({path.parent})")  # fmt: skip
    if kind == "folder":
        skipped: dict[str, str] = {}
        videos, names = load_videos(path, resolution or 32, skipped=skipped)
        settings.update(kind="folder", files=names, num_skipped=len(skipped), skipped=skipped)
    else:
        model, cfg, step = load_model(path, device=device)
        dataset = build_dataset(cfg)
        settings.update(kind="model", step=step, mode=mode, sampler=sampler, steps=steps, preset=cfg.description)
        w = guidance_weight if guidance_weight is not None else cfg.guidance_weight if mode == "sample" else 0.0
        if cfg.condition == "class":
            settings["guidance_weight"] = w
        t0 = time.perf_counter()
        if mode == "sample":
            label = torch.arange(num) % cfg.model.num_classes if cfg.condition == "class" else None
            videos, _ = sample_videos(model, cfg, num, sampler=sampler, steps=steps, seed=seed, class_label=label,
                                      guidance_weight=w)  # fmt: skip
            labels = label
        elif mode == "extend":
            total = total_frames or 4 * cfg.frames
            context = context_frames or cfg.extension_context()
            recon_weight = cfg.recon_weight if recon_weight is None else recon_weight
            res = conditional_videos(model, cfg, "extend", num, total_frames=total, context_frames=context, seed=seed,
                                     method=method, recon_weight=recon_weight, sampler=sampler, steps=steps,
                                     guidance_weight=w)  # fmt: skip
            videos, real = res["output"], res["truth"]
            boundaries = extension_boundaries(cfg.frames, total, cfg.frames, context)
            settings.update(total_frames=total, context_frames=context, method=method, recon_weight=recon_weight)
        else:
            raise ValueError(f"mode must be 'sample' or 'extend', got {mode!r}")
        settings["seconds"] = round(time.perf_counter() - t0, 1)
        if real is None and i3d is not None:
            real = dataset.generate_batch(num, seed + 1)["video"]
    report = {**settings, **score_videos(videos, dataset=dataset, boundaries=boundaries, labels=labels, real=real, i3d=i3d),
              "environment": environment()}  # fmt: skip
    if out_dir is not None:
        write_report(report, out_dir)
    return report


def heldout_times(num_t: int) -> torch.Tensor:
    """The midpoint grid ``t_j = (j + 1/2) / num_t``, ``(num_t,)``, on which :func:`heldout_loss`
    scores every clip."""
    return (torch.arange(num_t, dtype=torch.float32) + 0.5) / num_t


@torch.no_grad()
def heldout_loss(
    model: Any,
    schedule: Any,
    clips: torch.Tensor,
    *,
    num_t: int = 16,
    weighting: str | None = None,
    seed: int = 0,
    batch_size: int = 32,
    per_t: bool = False,
    **cond,
) -> torch.Tensor:
    """The training loss of eq. (2) on held-out clips, one value per clip, shape ``(N,)``
    (``(N, num_t)``, one per clip and time, with ``per_t=True``).

    ``clips`` ``(N, C, T, H, W)``: for each of ``num_t`` diffusion times on a midpoint grid,
    ``t_j = (j + 1/2) / num_t``, one noise tensor for all clips is drawn from ``seed``; each
    clip's value is its loss (:func:`~vdm_lite.diffusion.diffusion_loss`, in the model's
    parameterization and the given ``weighting``) averaged over the grid. The grid replaces the
    uniform ``t`` of training by its quadrature, so the mean over clips estimates the expected
    training loss on new data. Clips, times and noise depend only on ``seed`` and ``num_t``
    (not on ``batch_size`` or the model), so two models scored on the same clips form pairs:
    the mean of their per-clip differences has a far smaller error than either value alone.
    ``cond`` is the model's conditioning (``class_label=`` ``(N,)``, ``text=`` N captions):
    whatever has one entry per clip is split into the batches with the clips.
    """
    from .diffusion import diffusion_loss

    if clips.ndim != 5:
        raise ValueError(f"clips must be (N, C, T, H, W), got shape {tuple(clips.shape)}")
    if num_t < 1 or batch_size < 1:
        raise ValueError(f"num_t and batch_size must be positive, got {num_t} and {batch_size}")
    device = next(model.parameters()).device if hasattr(model, "parameters") else clips.device
    gen = torch.Generator().manual_seed(seed)
    x_all = clips.to(device, torch.float32)
    n = clips.shape[0]
    out = torch.zeros(n, num_t, dtype=torch.float64)

    def part(v: Any, i: int) -> Any:  # a per-clip condition's entries for the batch at i; anything else whole
        if isinstance(v, (torch.Tensor, list, tuple)) and len(v) == n:
            return v[i : i + batch_size].to(device) if isinstance(v, torch.Tensor) else v[i : i + batch_size]
        return v

    for j, t in enumerate(heldout_times(num_t)):
        noise = torch.randn(clips.shape, generator=gen)
        for i in range(0, n, batch_size):
            loss = diffusion_loss(model, x_all[i : i + batch_size], schedule, weighting=weighting, t=t,
                                  noise=noise[i : i + batch_size].to(device), **{k: part(v, i) for k, v in cond.items()})  # fmt: skip
            out[i : i + batch_size, j] = loss.double().cpu()
    return out if per_t else out.mean(1)


# ---------------------------------------------------------------- re-exports, kept for old imports
# The reproductions of Tables 4-6 and their helpers moved to vdm_lite.experiments; these names
# still import from here (``from vdm_lite.evaluate import real_with_labels``). Loaded on first
# use, so that scoring videos does not import the experiments.
_MOVED = {
    "reproduce_extension": "table6", "reproduce_guidance": "table5", "plot_table5": "table5",
    "reproduce_joint_training": "table4", "plot_table4": "table4",
    "real_with_labels": "scoring", "within_class_spread": "scoring",
}  # fmt: skip


def __getattr__(name: str) -> Any:  # re-export: the moved names above, from vdm_lite.experiments
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"vdm_lite.experiments.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
