"""Table 6 / Figure 4 at small scale: long videos by replacement vs reconstruction guidance.

    vdm-lite reproduce table6 data/checkpoints/shapes-lowres.safetensors --num=6 --steps=32

:func:`reproduce_extension` extends the same real first blocks with replacement and with
reconstruction guidance, eq. (7) (:func:`vdm_lite.tasks.extend_video`), and scores the
seams at the block boundaries by the world's rules
(:func:`vdm_lite.metrics.world.boundary_continuity`); :func:`markdown` makes ``table6.md``
from ``table6.json`` (:mod:`vdm_lite.experiments.report`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import torch

from ..evaluate import environment, score_videos
from .report import table_markdown, write_result

__all__ = ["reproduce_extension", "markdown", "TABLE6_COLUMNS"]


TABLE6_COLUMNS = (("position_ratio", "position jump ratio"), ("color_ratio", "color jump ratio"),
                  ("shape_ratio", "shape jump ratio"), ("count_stability", "count stability"),
                  ("color_consistency", "color consistency"), ("shape_consistency", "shape consistency"),
                  ("accel", "accel (px/frame^2)"))  # fmt: skip


def reproduce_extension(
    path: str | Path,
    *,
    num: int = 8,
    total_frames: int | None = None,
    context_frames: int | None = None,
    recon_weights: Sequence[float] = (5.0, 20.0),
    sampler: str = "ancestral",
    steps: int = 64,
    label: str = "clip",
    guidance_weight: float | None = None,
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
    continuation is scored the same way as a reference. A class-conditional model is told each
    clip's class in every block (``label="clip"``, as the paper's text-conditioned model of Table 6
    is told its caption), or the null label (``label="null"``: the same network as an
    unconditional model, the one classifier-free guidance's dropout trained); an unconditional
    model has no label to give. Told its label, it is guided with ``guidance_weight`` (eq. (6);
    default 0, as :func:`vdm_lite.sampling.conditional_videos`). ``context_frames`` defaults to
    the run's (:meth:`vdm_lite.config.TrainConfig.extension_context`). Writes ``table6.md``, ``table6.json``
    and ``table6.png`` to ``out_dir`` when given (with ``command``, the command line that made them)."""
    from ..config import build_dataset
    from ..metrics import extension_boundaries
    from ..sampling import conditional_videos, load_model

    if label not in ("clip", "null"):
        raise ValueError(f"label must be 'clip' or 'null', got {label!r}")
    model, cfg, step = load_model(path, device=device)
    conditional = cfg.condition == "class"
    gw = (guidance_weight or 0.0) if conditional and label == "clip" else 0.0
    dataset = build_dataset(cfg)
    total = total_frames or 4 * cfg.frames
    context = context_frames or cfg.extension_context()
    bounds = extension_boundaries(cfg.frames, total, cfg.frames, context)
    runs = [("replacement", "replacement", 0.0)] + [(f"reconstruction w_r={w:g}", "reconstruction", float(w)) for w in recon_weights]
    rows, videos = {}, {}
    truth = None
    for name, method, w in runs:
        t0 = time.perf_counter()
        res = conditional_videos(model, cfg, "extend", num, total_frames=total, context_frames=context, seed=seed,
                                 method=method, recon_weight=w, sampler=sampler, steps=steps, progress=progress,
                                 class_label=-1 if conditional and label == "null" else None, guidance_weight=gw)  # fmt: skip
        truth, videos[name] = res["truth"], res["output"]
        rows[name] = {**score_videos(res["output"], dataset=dataset, boundaries=bounds), "seconds": round(time.perf_counter() - t0, 1)}
    rows["real continuation"] = score_videos(truth, dataset=dataset, boundaries=bounds)
    result = {"source": str(path), "step": step, "num_videos": num, "total_frames": total, "block_frames": cfg.frames,
              "context_frames": context, "sampler": sampler, "steps": steps, "seed": seed, "boundaries": bounds,
              "label": label if conditional else None,
              "guidance_weight": gw if conditional and label == "clip" else None,
              "rows": rows, "environment": environment(), "command": command}  # fmt: skip
    if out_dir is not None:
        _write_table6(result, videos, truth, Path(out_dir))
    return result


def markdown(result: dict) -> str:
    """``table6.md`` from a result (or ``table6.json``)."""
    intro = [
        f"{result['num_videos']} real first blocks of {result['block_frames']} frames extended to {result['total_frames']} frames "
        f"({result['context_frames']} frames carried between blocks; block boundaries at {result['boundaries']}); "
        f"model `{result['source']}` (step {result['step']}); {result['sampler']} sampler, {result['steps']} steps, seed {result['seed']}"
        + _condition_words(result),
        "Jump ratios compare the change across a block boundary with the typical change between consecutive frames "
        "(~1: seamless, >> 1: the video jumps). Consistency and count stability: 1 is perfect.",
    ]
    return table_markdown("Table 6 / Figure 4 at small scale: replacement vs reconstruction guidance", intro, TABLE6_COLUMNS,
                          result)


def _condition_words(result: dict) -> str:
    if result.get("label") == "null":
        return "; a class-conditional model given the null label (unconditional)."
    if result.get("guidance_weight") is not None:
        return f"; every block conditioned on the clip's class, guidance weight {result['guidance_weight']:g}."
    return "."


def _write_table6(result: dict, videos: dict, truth: torch.Tensor, out: Path) -> None:
    """``table6.json``, ``.md`` and ``.png`` (the first video of each row, every few frames)."""
    import matplotlib.pyplot as plt

    from ..viz import frame_grid

    write_result(out, "table6", result)
    names = list(videos)
    show = list(range(0, result["total_frames"], max(1, result["total_frames"] // 16)))
    rows = torch.cat([truth[:1]] + [videos[n][:1] for n in names])
    fig = frame_grid(rows, frames=show, titles=["real"] + names, cell=0.45)
    fig.savefig(out / "table6.png", dpi=90, bbox_inches="tight")
    plt.close(fig)

