"""Table 4 at small scale: joint image-video training, 0 / 4 / 8 image frames per clip.

    vdm-lite reproduce table4 --train-steps=1500 --num=32 --steps=32 --sample-seeds=3

:func:`reproduce_joint_training` trains the same model from the same seed with ``k``
independent image frames appended to every clip (Section 3), reusing the finished runs in its
folder, then scores each model's samples (FD-domain, coherence, the world's rules:
:func:`vdm_lite.experiments.scoring.domain_row`) and its training loss on the same held-out
clips, paired by clip (:func:`vdm_lite.evaluate.heldout_loss`). :func:`markdown` makes
``table4.md`` from ``table4.json`` and :func:`plot_table4` the plot (both from the JSON alone).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..evaluate import environment, heldout_loss, heldout_times
from .report import metric_plot, paired, paired_text, table_markdown, write_result
from .scoring import domain_row, real_domain_stats

__all__ = ["reproduce_joint_training", "plot_table4", "markdown", "TABLE4_COLUMNS"]


TABLE4_COLUMNS = (("fd_domain", "FD-domain"), ("coherence", "coherence"), ("count_stability", "count stability"),
                  ("color_consistency", "color consistency"), ("shape_consistency", "shape consistency"),
                  ("accel", "accel (px/frame^2)"))  # fmt: skip


def _final_loss(run_dir: Path, last: int = 8) -> float | None:
    import csv

    path = run_dir / "log.csv"
    if not path.exists():
        return None
    with path.open() as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f) if r.get("loss")]
    return sum(losses[-last:]) / len(losses[-last:]) if losses else None


def _check_reusable(run: Path, cfg: Any) -> None:
    """Raise :class:`~vdm_lite.checkpoint.CheckpointMismatch` if ``run`` holds a run trained with
    other settings than ``cfg`` (anything but the step count and the logging intervals): a
    reproduction reuses or resumes the runs in its folder, and must not silently score a model
    of another seed, preset or override."""
    from ..checkpoint import CheckpointMismatch, check_compatible
    from ..config import build_dataset, resolve_model_config
    from ..overrides import to_dict

    saved = run / "config.json"
    if not saved.exists():
        return
    classes = int(getattr(build_dataset(cfg), "num_classes", 0) or 0) if cfg.condition == "class" else 0
    wanted = json.loads(json.dumps(to_dict(dataclasses.replace(cfg, model=resolve_model_config(cfg, classes)))))
    have = json.loads(saved.read_text())
    free = {"steps", "run_dir", "log_every", "ckpt_every", "sample_every", "description"}
    try:
        check_compatible(have, wanted, what=f"run in {run}", keys=[k for k in wanted if k in have and k not in free])
    except CheckpointMismatch as e:
        raise CheckpointMismatch(f"{e}\n(give these settings another output folder)") from None


def reproduce_joint_training(
    preset: str = "cpu-lowres",
    *,
    image_frames: Sequence[int] = (0, 4, 8),
    steps: int = 1000,
    overrides: Sequence[str] = (),
    num: int = 32,
    num_real: int = 512,
    sample_steps: int = 64,
    seed: int = 0,
    sample_seeds: int = 1,
    train_seeds: int = 1,
    num_heldout: int = 256,
    heldout_t: int = 16,
    domain_net: str | Path | None = None,
    device: str | torch.device | None = None,
    out_dir: str | Path = "runs/reproduce/table4",
    progress: bool | None = None,
    command: str | None = None,
) -> dict:
    """Table 4 at small scale: the same model trained from the same seed for ``steps`` steps
    on the same video batches, with ``k`` extra independent image frames per clip for each
    ``k`` of ``image_frames`` (joint training, Section 3); then ``num`` samples of each scored:
    FD-domain against ``num_real`` real clips, ShapesNet coherence and the world's rules (a
    conditional preset's samples are told the labels or captions of real clips and also scored
    on class match, and its held-out loss is conditional, as in the paper's text-to-video
    Table 4). With ``sample_seeds = n > 1`` each model is sampled ``n`` times (seeds ``seed``,
    ``seed + 1``, ...) and each score is the mean over those sets, with the per-seed FD-domain
    and shape consistency shown, so that differences between models can be read against the
    spread between sample sets of one model. Each model's training loss is also measured on the
    same ``num_heldout`` held-out video clips, times and noise (:func:`heldout_loss` on a grid of
    ``heldout_t`` times): unlike the logged training loss it scores every model on video frames
    only, and paired by clip its differences between models are measured to a small standard
    error, overall and per noise level. Runs live in ``out_dir/runs/image_frames_K``: a
    finished run is reused, an interrupted one resumed, and a run made with other settings
    (another seed, preset or override) is an error rather than reused.

    With ``train_seeds = n > 1`` every setting is also trained from the preset's seed + 1, ...,
    + n - 1 (runs ``image_frames_K_seedS``): scores are means over all its models, held-out
    differences are paired within each training seed (same initial weights and video batches)
    and shown per seed, and the first setting's row shows how far another training seed of the
    same setting moves its held-out loss: the yardstick a difference between settings must beat.
    Writes ``table4.md``, ``table4.json``, ``table4.png``."""
    if sample_seeds < 1 or train_seeds < 1:
        raise ValueError(f"sample_seeds and train_seeds must be at least 1, got {sample_seeds} and {train_seeds}")
    if num_heldout < 2 or heldout_t < 1:
        raise ValueError(f"num_heldout must be at least 2 and heldout_t at least 1, got {num_heldout} and {heldout_t}")
    from ..config import build_dataset, build_schedule, get_preset
    from ..metrics.domain import load_shapes_net
    from ..overrides import apply_overrides
    from ..sampling import load_model, sample_videos
    from ..train import Trainer, batch_condition

    out = Path(out_dir)
    net = load_shapes_net(domain_net)
    rows, videos, real_stats, dataset, heldout = {}, {}, None, None, {}
    for k in image_frames:
        per_seed, losses, train_s, t_sample = [], [], [], 0.0
        for ts in range(train_seeds):
            cfg = apply_overrides(get_preset(preset), [*overrides, f"steps={steps}", f"image_frames={k}", "sample_every=-1"])
            cfg = dataclasses.replace(cfg, seed=cfg.seed + ts)
            run = out / "runs" / (f"image_frames_{k}" + (f"_seed{ts}" if ts else ""))
            _check_reusable(run, cfg)
            t0 = time.perf_counter()
            trained = not (run / "checkpoint.pt").exists() or load_model(run, device="cpu")[2] < steps
            if trained:
                trainer = Trainer(cfg, run_dir=run, resume=(run / "checkpoint.pt").exists(), device=device)
                trainer.train()
                del trainer
            train_s.append(round(time.perf_counter() - t0) if trained else "reused")
            model, cfg, step = load_model(run, device=device)
            if dataset is None:
                dataset = build_dataset(cfg)
                real_stats = real_domain_stats(dataset, num_real, seed + 1, net)
                heldout_batch = dataset.generate_batch(num_heldout, seed + 3)
            losses.append(heldout_loss(model, build_schedule(cfg), heldout_batch["video"], num_t=heldout_t,
                                       weighting=cfg.loss_weighting or None, seed=seed, per_t=True,
                                       **batch_condition(cfg, heldout_batch)))  # fmt: skip
            t0 = time.perf_counter()
            for s in range(seed, seed + sample_seeds):
                # a conditional model is told the labels (or captions) of real clips, and its samples are scored against them
                told = dataset.generate_batch(num, s) if cfg.condition != "none" else {}
                v, _ = sample_videos(model, cfg, num, steps=sample_steps, seed=s, progress=progress, **batch_condition(cfg, told))
                videos.setdefault(f"{k} image frames", v)  # the figure shows the first model's first samples
                per_seed.append(domain_row(v, told.get("label"), dataset, net, real_stats))
                per_seed[-1].pop("class_prob_per_video", None)  # the JSON keeps the means
            t_sample += time.perf_counter() - t0
        heldout[k] = torch.stack(losses)  # (train_seeds, num_heldout, heldout_t)
        rows[f"{k} image frames"] = {**_mean_rows(per_seed), "loss": _final_loss(run), "step": step,
                                     "train_seconds": " / ".join(map(str, train_s)) if train_seeds > 1 else train_s[0],
                                     "sample_seconds": round(t_sample)}  # fmt: skip
    real = dataset.generate_batch(num, seed + 2)
    rows["real"] = domain_row(real["video"], real.get("label") if cfg.condition != "none" else None, dataset, net, real_stats)
    rows["real"].pop("class_prob_per_video", None)
    logsnr = build_schedule(cfg).logsnr(heldout_times(heldout_t))
    _heldout_columns(rows, heldout, image_frames)
    result = {"preset": preset, "overrides": list(overrides), "steps": steps, "image_frames": list(image_frames),
              "condition": None if cfg.condition == "none" else cfg.condition,
              "guidance_weight": None if cfg.condition == "none" else cfg.guidance_weight,
              "num_videos": num, "num_real": num_real, "sample_steps": sample_steps, "seed": seed, "sample_seeds": sample_seeds,
              "train_seeds": train_seeds, "num_heldout": num_heldout, "heldout_logsnr": [round(v, 3) for v in logsnr.tolist()],
              "domain_net": str(domain_net or "shipped"), "rows": rows, "environment": environment(), "command": command}  # fmt: skip
    _write_table4(result, videos, out)
    return result


def _heldout_columns(rows: dict, heldout: dict, image_frames: Sequence[int]) -> None:
    """Table 4's held-out loss columns from per-model losses ``(train_seeds, N, num_t)``: each
    setting's mean (with its standard error over clips) and, paired by clip within each training
    seed, its difference from the first setting, overall, per seed and per noise level (relative,
    with standard errors: ``heldout_rel_by_t``, ``heldout_rel_se_by_t``). With several training
    seeds the first setting's row gets the difference of its other seeds from its seed 0 (and, per
    noise level, ``heldout_seed_rel_by_t``), and the other rows their relative differences per
    seed (``heldout_rel_by_seed``, ``heldout_rel_by_t_by_seed``)."""

    def rel_by_t(d: torch.Tensor, base: torch.Tensor) -> list:  # (..., N, T) -> (..., T): mean difference / mean loss
        return (d.mean(-2) / base.mean(-2)).tolist()

    first = heldout[image_frames[0]]
    for k in image_frames:
        row, loss = rows[f"{k} image frames"], heldout[k]
        row["heldout_loss"], row["heldout_se"] = paired(loss.mean((0, 2)))
        row["heldout_text"] = f"{row['heldout_loss']:.5f} ± {row['heldout_se']:.5f}"
        if k == image_frames[0]:
            if len(loss) > 1:
                row["heldout_diff_text"] = " / ".join(f"seed {s} - seed 0: {paired_text((loss[s] - loss[0]).mean(1))}"
                                                      for s in range(1, len(loss)))  # fmt: skip
                row["heldout_seed_rel_by_t"] = rel_by_t(loss[1:] - loss[0], loss[0])
            continue
        diff = loss - first  # paired within each training seed
        row["heldout_diff"], row["heldout_diff_se"] = paired(diff.mean((0, 2)))
        row["heldout_diff_text"] = paired_text(diff.mean((0, 2)))
        if len(loss) > 1:
            row["heldout_diff_text"] += " [" + " / ".join(f"seed {s}: {paired_text(d.mean(1))}" for s, d in enumerate(diff)) + "]"
            row["heldout_rel_by_seed"] = (diff.mean((1, 2)) / first.mean((1, 2))).tolist()
            row["heldout_rel_by_t_by_seed"] = rel_by_t(diff, first)
        per_clip_t = diff.mean(0)  # (N, T): each clip's difference, averaged over training seeds
        row["heldout_rel_by_t"] = rel_by_t(per_clip_t, first.mean(0))
        row["heldout_rel_se_by_t"] = (per_clip_t.std(0) / math.sqrt(per_clip_t.shape[0]) / first.mean((0, 1))).tolist()


def _mean_rows(rows: list[dict]) -> dict:
    """One row from the rows of several sample sets: numbers averaged, and with more than one
    set the FD-domain, coherence and shape consistency of each set as text (``"5034 / 5906"``)."""
    if len(rows) == 1:
        return rows[0]

    def mean(k, v):
        values = [r[k] for r in rows]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or all(x == v for x in values):
            return v
        return sum(values) / len(values)

    out = {k: mean(k, v) for k, v in rows[0].items() if k != "per_video"}
    out["fd_domain_by_seed"] = " / ".join(f"{r['fd_domain']:.0f}" for r in rows)
    out["coherence_by_seed"] = " / ".join(f"{r['coherence']:.2f}" for r in rows)
    out["shape_by_seed"] = " / ".join(f"{r['shape_consistency']:.2f}" for r in rows)
    return out


def plot_table4(result: dict, path: str | Path) -> None:
    """The Table 4 plot from a result (or its ``table4.json``): FD-domain and the world's
    consistency scores against the number of image frames, and the held-out video loss of each
    model relative to the first, per noise level, with a band of two standard errors over clips;
    with several training seeds each seed's curve is dotted and the first setting's other seeds
    against its seed 0 are dashed gray (the difference a training seed alone makes)."""
    import matplotlib.pyplot as plt

    ks = result["image_frames"]
    rows = result["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 2.8))
    metric_plot(axes[0], ks, rows, [("fd_domain", "FD-domain")], "image frames per clip", rows["real"])
    metric_plot(axes[1], ks, rows, [("coherence", "coherence"), ("color_consistency", "color consistency"),
                                     ("shape_consistency", "shape consistency")], "image frames per clip", rows["real"])  # fmt: skip
    for ax in axes[:2]:
        ax.set_xticks(ks)
    lam = result["heldout_logsnr"]
    for k in ks[1:]:
        row = rows[f"{k} image frames"]
        rel, se = torch.tensor(row["heldout_rel_by_t"]) * 100, torch.tensor(row["heldout_rel_se_by_t"]) * 100
        line, = axes[2].plot(lam, rel, "o-", ms=3, label=f"{k} image frames")
        axes[2].fill_between(lam, rel - 2 * se, rel + 2 * se, color=line.get_color(), alpha=0.2, lw=0)
        for s, by_t in enumerate(row.get("heldout_rel_by_t_by_seed", [])):
            axes[2].plot(lam, torch.tensor(by_t) * 100, ":", color=line.get_color(), lw=1,
                         label=f"{k} image frames, each training seed" if s == 0 else None)  # fmt: skip
    for s, by_t in enumerate(rows[f"{ks[0]} image frames"].get("heldout_seed_rel_by_t", []), start=1):
        axes[2].plot(lam, torch.tensor(by_t) * 100, "--", color="gray", lw=1,
                     label=f"{ks[0]} image frames: seed {s} vs seed 0" if s == 1 else None)  # fmt: skip
    axes[2].axhline(0, color="k", lw=0.8)
    axes[2].set_xlabel("log-SNR $\\lambda$ (noisier to the right)")
    axes[2].invert_xaxis()
    axes[2].set_ylabel(f"vs {ks[0]} image frames (%)")
    axes[2].set_title("held-out video loss by noise level (band: ±2 SE over clips)", fontsize=8)
    axes[2].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def markdown(result: dict) -> str:
    """``table4.md`` from a result (or ``table4.json``)."""
    n_seeds = result.get("train_seeds", 1)
    seeds = (f" (and from {n_seeds - 1} more seed{'s' if n_seeds > 2 else ''}, seed + 1, ...: scores are means over all "
             "of a setting's models)") if n_seeds > 1 else ""
    intro = [
        f"Preset `{result['preset']}`{' with ' + ' '.join(result['overrides']) if result['overrides'] else ''}, trained "
        f"{result['steps']} steps from the same seed{seeds} for each number of independent image frames appended to every clip "
        f"(the video frames of each batch are the same); {result['num_videos']} {_told(result)}, "
        f"FD-domain against {result['num_real']} real clips in ShapesNet features ({result['domain_net']}).",
        "Lower FD-domain and acceleration are better; coherence, count stability and consistency: 1 is perfect. "
        "The `real` row scores real clips (its FD-domain is the floor set by the sample count).",
    ]
    ks = result["image_frames"]
    heldout = (("heldout_text", f"held-out video loss ({result['num_heldout']} clips)"),
               ("heldout_diff_text", f"difference from {ks[0]} image frames (paired)"))
    intro.append(f"Held-out video loss: the training loss (eq. (2)) of each model on the same {result['num_heldout']} new "
                 f"clips, noise and {len(result['heldout_logsnr'])} diffusion times, video frames only, ± its "
                 f"standard error; its difference from the {ks[0]}-image-frame model is paired by clip, so it is measured "
                 "far more finely than either value (the plot shows it per noise level). These errors cover the choice of "
                 "clips and noise only, not the training run: "
                 + ("each model is trained once, and two training runs of one setting (other seeds) can differ by more. "
                    if n_seeds == 1 else
                    "differences are paired within each training seed and shown per seed (brackets), and the first row "
                    "shows how far another seed of the same setting moves its loss. ")
                 + "The logged training loss is not comparable between rows: it includes the image frames.")
    extra = (*heldout, ("train_seconds", "training seconds (this run)"))
    if result.get("sample_seeds", 1) > 1:
        intro.append(f"Each model is sampled {result['sample_seeds']} times ({result['num_videos']} videos per set, seeds "
                     f"{result['seed']}, {result['seed'] + 1}, ...): the scores are means over the sets, and the last columns "
                     "show each set's FD-domain, coherence and shape consistency (the spread a difference between models must beat)"
                     + (", training seed 0's sets first." if n_seeds > 1 else "."))
        extra = (("fd_domain_by_seed", "FD-domain per sample set"), ("coherence_by_seed", "coherence per sample set"),
                 ("shape_by_seed", "shape consistency per sample set"), *extra)  # fmt: skip
    columns = TABLE4_COLUMNS + ((("class_match", "class match"),) if result.get("condition") else ())
    if result.get("condition"):
        intro.append("Class match: the share of samples whose object has the class of the real clip whose label (or "
                     "caption) they were told, read from pixels; the `real` row is told its own.")
    return table_markdown("Table 4 at small scale: joint image-video training", intro, columns, result,
                          extra_cols=extra)  # fmt: skip


def _told(result: dict) -> str:
    """How the samples of a result were made: unconditional, or told real clips' labels or captions."""
    steps = f"({result['sample_steps']} sampler steps)"
    cond = result.get("condition")
    if not cond:
        return f"unconditional samples each {steps}"
    what = {"class": "class labels", "text": "captions"}.get(cond, cond)
    w = result.get("guidance_weight")
    guided = f" and guided with w = {w:g} (eq. (6))" if w else ""
    return f"samples each {steps}, told the {what} of {result['num_videos']} real clips{guided}"


def _write_table4(result: dict, videos: dict, out: Path) -> None:
    """``table4.json``, ``.md`` and ``.png`` from ``result``, and with ``videos`` (first two
    samples of each model shown) ``table4_samples.png``."""
    import matplotlib.pyplot as plt

    from ..viz import frame_grid

    write_result(out, "table4", result)
    plot_table4(result, out / "table4.png")
    if not videos:
        return
    grid = torch.cat([v[:2] for v in videos.values()])
    titles = [f"{name} #{i}" for name in videos for i in range(2)]
    fig = frame_grid(grid, titles=titles, max_frames=8, cell=0.5)
    fig.savefig(out / "table4_samples.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
