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

import dataclasses
import json
import math
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from .utils import cpu_name

__all__ = ["VIDEO_SUFFIXES", "load_videos", "score_videos", "evaluate", "reproduce_extension", "reproduce_guidance",
           "reproduce_joint_training", "heldout_loss", "heldout_times", "real_with_labels", "within_class_spread", "plot_table4",
           "plot_table5", "write_report"]

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
            if cfg.condition == "class":  # conditioned on each real clip's class, at the run's weight
                settings["guidance_weight"] = cfg.guidance_weight
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
              "guidance_weight": cfg.guidance_weight if cfg.condition == "class" else None,
              "rows": rows, "environment": _environment(), "command": command}  # fmt: skip
    if out_dir is not None:
        _write_table6(result, videos, truth, Path(out_dir))
    return result


TABLE6_COLUMNS = (("position_ratio", "position jump ratio"), ("color_ratio", "color jump ratio"),
                  ("shape_ratio", "shape jump ratio"), ("count_stability", "count stability"),
                  ("color_consistency", "color consistency"), ("shape_consistency", "shape consistency"),
                  ("accel", "accel (px/frame^2)"))  # fmt: skip


def _check_reusable(run: Path, cfg: Any) -> None:
    """Raise :class:`~vdm_lite.checkpoint.CheckpointMismatch` if ``run`` holds a run trained with
    other settings than ``cfg`` (anything but the step count and the logging intervals): a
    reproduction reuses or resumes the runs in its folder, and must not silently score a model
    of another seed, preset or override."""
    from .checkpoint import CheckpointMismatch, check_compatible
    from .config import build_dataset, resolve_model_config
    from .overrides import to_dict

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


def _paired(d: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of per-item values ``(N,)``: one score per clip or sample, or the
    differences between two models' scores on the same items."""
    return d.mean().item(), (d.std() / math.sqrt(d.shape[0])).item()


def _paired_text(d: torch.Tensor, digits: int = 5, in_se: bool = True) -> str:
    """``"+0.00049 ± 0.00004 (+12.1 SE)"`` for per-item differences ``d`` ``(N,)`` (without the
    part in brackets when ``in_se`` is false)."""
    m, se = _paired(d)
    return f"{m:+.{digits}f} ± {se:.{digits}f}" + (f" ({m / se:+.1f} SE)" if in_se and se > 0 else "")


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _table_lines(title: str, intro: list[str], columns, rows: dict, result: dict, extra_cols=(("seconds", "seconds"),)) -> list[str]:
    """A markdown table (one row per entry of ``rows``; ``columns`` formatted as numbers,
    ``extra_cols`` written as they are, both ``(key, label)`` pairs), the device line and the command."""
    env = result["environment"]
    lines = [f"# {title}", "", *intro, "",
             "| | " + " | ".join(label for _, label in columns) + "".join(f" | {label}" for _, label in extra_cols) + " |",
             "|---|" + "---|" * (len(columns) + len(extra_cols))]  # fmt: skip
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k, _ in columns)
                     + "".join(f" | {row.get(c, '')}" for c, _ in extra_cols) + " |")  # fmt: skip
    lines += ["", f"Device: {env['device']}; torch {env['torch']}, python {env['python']}, vdm_lite {env['vdm_lite']}."]
    if result.get("command"):
        lines += ["", f"Command: `{result['command']}`"]
    return lines + [""]


def _write_table(out: Path, name: str, title: str, intro: list[str], columns, result: dict, extra_cols=(("seconds", "seconds"),)) -> None:
    """``out/name.json`` (the result without per-video lists) and ``out/name.md`` (the table)."""
    out.mkdir(parents=True, exist_ok=True)
    slim = {**result, "rows": {k: {kk: vv for kk, vv in v.items() if kk != "per_video"} for k, v in result["rows"].items()}}
    (out / f"{name}.json").write_text(json.dumps(slim, indent=2) + "\n")
    (out / f"{name}.md").write_text("\n".join(_table_lines(title, intro, columns, result["rows"], result, extra_cols)))


def _write_table6(result: dict, videos: dict, truth: torch.Tensor, out: Path) -> None:
    import matplotlib.pyplot as plt

    from .viz import frame_grid

    intro = [
        f"{result['num_videos']} real first blocks of {result['block_frames']} frames extended to {result['total_frames']} frames "
        f"({result['context_frames']} frames carried between blocks; block boundaries at {result['boundaries']}); "
        f"model `{result['source']}` (step {result['step']}); {result['sampler']} sampler, {result['steps']} steps, seed {result['seed']}"
        + (f"; conditioned on each clip's class, guidance weight {result['guidance_weight']:g}." if result.get("guidance_weight") is not None else "."),
        "Jump ratios compare the change across a block boundary with the typical change between consecutive frames "
        "(~1: seamless, >> 1: the video jumps). Consistency and count stability: 1 is perfect.",
    ]
    _write_table(out, "table6", "Table 6 / Figure 4 at small scale: replacement vs reconstruction guidance", intro,
                 TABLE6_COLUMNS, result)  # fmt: skip
    names = list(videos)
    show = list(range(0, result["total_frames"], max(1, result["total_frames"] // 16)))
    rows = torch.cat([truth[:1]] + [videos[n][:1] for n in names])
    fig = frame_grid(rows, frames=show, titles=["real"] + names, cell=0.45)
    fig.savefig(out / "table6.png", dpi=90, bbox_inches="tight")
    plt.close(fig)


# ------------------------------------------------------------------ Table 5: guidance weights
TABLE5_COLUMNS = (("class_match", "class match"), ("shape_match", "shape match"), ("color_match", "color match"),
                  ("is_domain", "IS-domain"), ("coherence", "coherence"), ("fd_domain", "FD-domain"),
                  ("spread", "within-class spread"), ("class_prob", "p(label)"))  # fmt: skip


def real_with_labels(dataset: Any, labels: torch.Tensor, seed: int = 0, batch: int = 256) -> torch.Tensor:
    """Real clips ``(len(labels), 3, T, H, W)`` of the built-in world whose class is ``labels[i]``
    (drawn from fresh batches of ``dataset`` until every label is covered)."""
    labels = torch.as_tensor(labels).long().view(-1)
    pools: dict[int, list[torch.Tensor]] = {}
    need = {int(k): int((labels == k).sum()) for k in labels.unique()}
    g = torch.Generator().manual_seed(seed)
    for _ in range(200):
        b = dataset.generate_batch(batch, g)
        for v, y in zip(b["video"], b["label"].tolist()):
            if y in need and len(pools.setdefault(y, [])) < need[y]:
                pools[y].append(v)
        if all(len(pools.get(k, [])) >= n for k, n in need.items()):
            break
    else:
        raise RuntimeError("could not draw real clips for every label")
    taken = {k: iter(v) for k, v in pools.items()}
    return torch.stack([next(taken[int(y)]) for y in labels])


def within_class_spread(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the mean pairwise distance between the ``features (N, D)`` of the
    samples of one class (classes with one sample are skipped): a diversity score, 0 when
    every sample of a class is the same video."""
    labels = torch.as_tensor(labels).view(-1)
    vals = []
    for k in labels.unique():
        f = features[labels == k]
        if len(f) > 1:
            d = torch.cdist(f, f)
            vals.append(d.sum() / (len(f) * (len(f) - 1)))
    if not vals:
        raise ValueError("within-class spread needs at least two samples of some class")
    return float(torch.stack(vals).mean())


def _domain_row(videos: torch.Tensor, labels: torch.Tensor | None, dataset: Any, net: Any, real_stats: tuple,
                boundaries: Sequence[int] | None = None) -> dict:
    """World-rule scores plus the ShapesNet scores of ``videos``: FD-domain against
    ``real_stats``, IS-domain, coherence and, with labels, within-class spread and ShapesNet's
    probability of each video's label (``class_prob_per_video`` ``(B,)`` and its mean ``class_prob``)."""
    from .metrics import domain_features, frechet_from_features, gaussian_stats, inception_score

    row = score_videos(videos, dataset=dataset, labels=labels, boundaries=boundaries)
    feats = domain_features(videos, net, progress=False)  # the network runs once; its heads read these features
    with torch.no_grad():
        heads = net.heads(feats.to(next(net.parameters())))
    fd = frechet_from_features(real_stats, gaussian_stats(feats), name="FD-domain")
    row.update(fd_domain=fd.value, fd_n_real=fd.n_real, fd_n_fake=fd.n_fake,
               is_domain=inception_score(heads["class_logits"]).value,
               coherence=float(torch.sigmoid(heads["coherent_logit"]).mean()))  # fmt: skip
    if labels is not None:
        labels = torch.as_tensor(labels).view(-1)
        several = labels.unique(return_counts=True)[1].max() > 1
        row["spread"] = within_class_spread(feats, labels) if several else None
        probs = heads["class_logits"].float().softmax(-1).cpu()
        row["class_prob_per_video"] = probs[torch.arange(len(labels)), labels.long()]
        row["class_prob"] = float(row["class_prob_per_video"].mean())
    return row


def _real_stats(dataset: Any, n: int, seed: int, net: Any, frames: int | None = None) -> tuple:
    from .metrics import domain_features, gaussian_stats

    real = dataset.generate_batch(n, seed)["video"]
    if frames is not None:
        real = real[:, :, :frames]
    return gaussian_stats(domain_features(real, net, progress=False))


def reproduce_guidance(
    path: str | Path,
    *,
    weights: Sequence[float] = (0.0, 1.0, 2.0, 5.0),
    num: int = 36,
    num_real: int = 512,
    sampler: str = "ancestral",
    steps: int = 64,
    seed: int = 0,
    domain_net: str | Path | None = None,
    device: str | torch.device | None = None,
    out_dir: str | Path | None = None,
    progress: bool | None = None,
    command: str | None = None,
) -> dict:
    """Table 5 at small scale: a class-conditional model of the built-in world sampled with
    classifier-free guidance, eq. (6), at each of ``weights`` (``num`` videos, labels ``0, 1,
    ..., K-1`` repeated; same seed for every weight). Fidelity-like scores: class/shape/color
    match (read from pixels), IS-domain, coherence and the probability of the sample's label
    (:class:`~vdm_lite.metrics.domain.ShapesNet`), the last also as a difference from the first
    weight paired by sample (same label and noise), with its standard error; diversity-like:
    within-class spread of ShapesNet features; and FD-domain against ``num_real`` real clips.
    Real clips with the same labels are scored as a reference.
    Writes ``table5.md``, ``table5.json``, ``table5.png`` to ``out_dir`` when given."""
    from .config import build_dataset
    from .metrics.domain import load_shapes_net
    from .sampling import load_model, sample_videos

    model, cfg, step = load_model(path, device=device)
    if cfg.condition != "class":
        raise ValueError(f"Table 5 needs a class-conditional model; {path} is conditioned on {cfg.condition!r}")
    dataset = build_dataset(cfg)
    net = load_shapes_net(domain_net)
    labels = torch.arange(num) % cfg.model.num_classes
    real_stats = _real_stats(dataset, num_real, seed + 1, net)
    rows, videos = {}, {}
    for w in weights:
        t0 = time.perf_counter()
        v, _ = sample_videos(model, cfg, num, sampler=sampler, steps=steps, seed=seed, class_label=labels,
                             guidance_weight=float(w), progress=progress)  # fmt: skip
        videos[f"w={w:g}"] = v
        rows[f"w={w:g}"] = {**_domain_row(v, labels, dataset, net, real_stats), "seconds": round(time.perf_counter() - t0, 1)}
    real = real_with_labels(dataset, labels, seed + 2)
    rows["real"] = _domain_row(real, labels, dataset, net, real_stats)
    first = rows[f"w={weights[0]:g}"]["class_prob_per_video"]
    for name, row in rows.items():  # the same labels and noise at every weight: samples pair up
        p = row.pop("class_prob_per_video")
        if name != "real" and name != f"w={weights[0]:g}":
            row["class_prob_diff"], row["class_prob_diff_se"] = _paired(p - first)
            row["class_prob_diff_text"] = _paired_text(p - first, digits=3, in_se=False)
    result = {"source": str(path), "step": step, "num_videos": num, "num_real": num_real, "weights": list(weights),
              "sampler": sampler, "steps": steps, "seed": seed, "domain_net": str(domain_net or "shipped"),
              "rows": rows, "environment": _environment(), "command": command}  # fmt: skip
    if out_dir is not None:
        _write_table5(result, videos, real, Path(out_dir))
    return result


def _metric_plot(ax, xs, rows: dict, keys, xlabel: str, ref: dict | None = None) -> None:
    for k, label in keys:
        ys = [rows[x].get(k) for x in rows if x != "real"]
        line, = ax.plot(xs, [float("nan") if y is None else y for y in ys], "o-", label=label)
        if ref is not None and ref.get(k) is not None:
            ax.axhline(ref[k], color=line.get_color(), ls=":", lw=1)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7)


def plot_table5(result: dict, path: str | Path) -> None:
    """The Table 5 plot from a result (or its ``table5.json``): fidelity-like scores, IS-domain,
    FD-domain and within-class spread against the guidance weight; the real clips dotted."""
    import matplotlib.pyplot as plt

    rows, ws = result["rows"], result["weights"]
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.8))
    panels = [([("class_match", "class match"), ("shape_match", "shape match"), ("class_prob", "p(label)"),
               ("coherence", "coherence")], "fidelity"),
              ([("is_domain", "IS-domain")], "IS-domain (higher: surer, more varied classes)"),
              ([("fd_domain", "FD-domain")], "FD-domain to real clips"),
              ([("spread", "within-class spread")], "diversity")]  # fmt: skip
    for ax, (keys, title) in zip(axes, panels):
        _metric_plot(ax, ws, rows, keys, "guidance weight w", rows.get("real"))
        ax.set_title(title + " (real: dotted)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _write_table5(result: dict, videos: dict, real: torch.Tensor, out: Path) -> None:
    import matplotlib.pyplot as plt

    from .viz import sample_rows

    intro = [
        f"{result['num_videos']} videos per guidance weight (classes 0, 1, ... repeated), model `{result['source']}` "
        f"(step {result['step']}); {result['sampler']} sampler, {result['steps']} steps, seed {result['seed']}. "
        f"FD-domain against {result['num_real']} real clips, in the features of ShapesNet ({result['domain_net']}).",
        "Fidelity-like (higher is better): class/shape/color match, IS-domain (at most 18), coherence, p(label). Diversity-like: "
        "within-class spread (distance between samples of one class in ShapesNet features). The `real` row scores real "
        "clips with the same labels (its FD-domain is the floor set by the sample count).",
    ]
    w0 = f"w={result['weights'][0]:g}"
    intro.append(f"p(label): ShapesNet's probability of the label the sample was drawn for; its difference from {w0}'s is "
                 f"paired by sample (same label and noise), mean ± standard error.")
    _write_table(out, "table5", "Table 5 at small scale: classifier-free guidance weight", intro, TABLE5_COLUMNS, result,
                 extra_cols=(("class_prob_diff_text", f"p(label) minus {w0}'s (paired)"), ("seconds", "seconds")))
    plot_table5(result, out / "table5.png")
    fig = sample_rows({"real": real, **videos}, k=6)  # first, middle and last frame of 6 samples per row
    fig.savefig(out / "table5_samples.png", dpi=90, bbox_inches="tight")
    plt.close(fig)


# ------------------------------------------------------------------ Table 4: joint training
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
    """
    from .diffusion import diffusion_loss

    if clips.ndim != 5:
        raise ValueError(f"clips must be (N, C, T, H, W), got shape {tuple(clips.shape)}")
    if num_t < 1 or batch_size < 1:
        raise ValueError(f"num_t and batch_size must be positive, got {num_t} and {batch_size}")
    device = next(model.parameters()).device if hasattr(model, "parameters") else clips.device
    gen = torch.Generator().manual_seed(seed)
    x_all = clips.to(device, torch.float32)
    out = torch.zeros(clips.shape[0], num_t, dtype=torch.float64)
    for j, t in enumerate(heldout_times(num_t)):
        noise = torch.randn(clips.shape, generator=gen)
        for i in range(0, clips.shape[0], batch_size):
            loss = diffusion_loss(model, x_all[i : i + batch_size], schedule, weighting=weighting, t=t,
                                  noise=noise[i : i + batch_size].to(device), **cond)  # fmt: skip
            out[i : i + batch_size, j] = loss.double().cpu()
    return out if per_t else out.mean(1)


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
    ``k`` of ``image_frames`` (joint training, Section 3); then ``num`` unconditional samples of
    each scored: FD-domain against ``num_real`` real clips, ShapesNet coherence and the world's
    rules. With ``sample_seeds = n > 1`` each model is sampled ``n`` times (seeds ``seed``,
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
    from .config import build_dataset, build_schedule, get_preset
    from .metrics.domain import load_shapes_net
    from .overrides import apply_overrides
    from .sampling import load_model, sample_videos
    from .train import Trainer

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
                real_stats = _real_stats(dataset, num_real, seed + 1, net)
                clips = dataset.generate_batch(num_heldout, seed + 3)["video"]
            losses.append(heldout_loss(model, build_schedule(cfg), clips, num_t=heldout_t,
                                       weighting=cfg.loss_weighting or None, seed=seed, per_t=True))  # fmt: skip
            t0 = time.perf_counter()
            for s in range(seed, seed + sample_seeds):
                v, _ = sample_videos(model, cfg, num, steps=sample_steps, seed=s, progress=progress)
                videos.setdefault(f"{k} image frames", v)  # the figure shows the first model's first samples
                per_seed.append(_domain_row(v, None, dataset, net, real_stats))
            t_sample += time.perf_counter() - t0
        heldout[k] = torch.stack(losses)  # (train_seeds, num_heldout, heldout_t)
        rows[f"{k} image frames"] = {**_mean_rows(per_seed), "loss": _final_loss(run), "step": step,
                                     "train_seconds": " / ".join(map(str, train_s)) if train_seeds > 1 else train_s[0],
                                     "sample_seconds": round(t_sample)}  # fmt: skip
    rows["real"] = _domain_row(dataset.generate_batch(num, seed + 2)["video"], None, dataset, net, real_stats)
    logsnr = build_schedule(cfg).logsnr(heldout_times(heldout_t))
    _heldout_columns(rows, heldout, image_frames)
    result = {"preset": preset, "overrides": list(overrides), "steps": steps, "image_frames": list(image_frames),
              "num_videos": num, "num_real": num_real, "sample_steps": sample_steps, "seed": seed, "sample_seeds": sample_seeds,
              "train_seeds": train_seeds, "num_heldout": num_heldout, "heldout_logsnr": [round(v, 3) for v in logsnr.tolist()],
              "domain_net": str(domain_net or "shipped"), "rows": rows, "environment": _environment(), "command": command}  # fmt: skip
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
        row["heldout_loss"], row["heldout_se"] = _paired(loss.mean((0, 2)))
        row["heldout_text"] = f"{row['heldout_loss']:.5f} ± {row['heldout_se']:.5f}"
        if k == image_frames[0]:
            if len(loss) > 1:
                row["heldout_diff_text"] = " / ".join(f"seed {s} - seed 0: {_paired_text((loss[s] - loss[0]).mean(1))}"
                                                      for s in range(1, len(loss)))  # fmt: skip
                row["heldout_seed_rel_by_t"] = rel_by_t(loss[1:] - loss[0], loss[0])
            continue
        diff = loss - first  # paired within each training seed
        row["heldout_diff"], row["heldout_diff_se"] = _paired(diff.mean((0, 2)))
        row["heldout_diff_text"] = _paired_text(diff.mean((0, 2)))
        if len(loss) > 1:
            row["heldout_diff_text"] += " [" + " / ".join(f"seed {s}: {_paired_text(d.mean(1))}" for s, d in enumerate(diff)) + "]"
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
    _metric_plot(axes[0], ks, rows, [("fd_domain", "FD-domain")], "image frames per clip", rows["real"])
    _metric_plot(axes[1], ks, rows, [("coherence", "coherence"), ("color_consistency", "color consistency"),
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


def _write_table4(result: dict, videos: dict, out: Path) -> None:
    """``table4.md``, ``.json`` and ``.png`` from ``result``, and with ``videos`` (first two
    samples of each model shown) ``table4_samples.png``."""
    import matplotlib.pyplot as plt

    from .viz import frame_grid

    n_seeds = result.get("train_seeds", 1)
    seeds = (f" (and from {n_seeds - 1} more seed{'s' if n_seeds > 2 else ''}, seed + 1, ...: scores are means over all "
             "of a setting's models)") if n_seeds > 1 else ""
    intro = [
        f"Preset `{result['preset']}`{' with ' + ' '.join(result['overrides']) if result['overrides'] else ''}, trained "
        f"{result['steps']} steps from the same seed{seeds} for each number of independent image frames appended to every clip "
        f"(the video frames of each batch are the same); {result['num_videos']} unconditional samples each "
        f"({result['sample_steps']} sampler steps), FD-domain against {result['num_real']} real clips in ShapesNet "
        f"features ({result['domain_net']}).",
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
    _write_table(out, "table4", "Table 4 at small scale: joint image-video training", intro, TABLE4_COLUMNS, result,
                 extra_cols=extra)  # fmt: skip
    plot_table4(result, out / "table4.png")
    if not videos:
        return
    grid = torch.cat([v[:2] for v in videos.values()])
    titles = [f"{name} #{i}" for name in videos for i in range(2)]
    fig = frame_grid(grid, titles=titles, max_frames=8, cell=0.5)
    fig.savefig(out / "table4_samples.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
