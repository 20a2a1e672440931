"""Table 5 at small scale: classifier-free guidance weights, fidelity against diversity.

    vdm-lite reproduce table5 data/checkpoints/shapes-lowres-class.safetensors --num=36 --steps=32

:func:`reproduce_guidance` samples a class-conditional model of the built-in world with
classifier-free guidance, eq. (6), at several weights and scores each set by the world's rules
and ShapesNet (:func:`vdm_lite.experiments.scoring.domain_row`); :func:`markdown` makes
``table5.md`` from ``table5.json`` and :func:`plot_table5` the plot (both from the JSON alone).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import torch

from ..evaluate import environment
from .report import metric_plot, paired, paired_text, table_markdown, write_result
from .scoring import domain_row, real_domain_stats, real_with_labels

__all__ = ["reproduce_guidance", "plot_table5", "markdown", "TABLE5_COLUMNS"]


TABLE5_COLUMNS = (("class_match", "class match"), ("shape_match", "shape match"), ("color_match", "color match"),
                  ("is_domain", "IS-domain"), ("coherence", "coherence"), ("fd_domain", "FD-domain"),
                  ("spread", "within-class spread"), ("class_prob", "p(label)"))  # fmt: skip


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
    from ..config import build_dataset
    from ..metrics.domain import load_shapes_net
    from ..sampling import load_model, sample_videos

    model, cfg, step = load_model(path, device=device)
    if cfg.condition != "class":
        raise ValueError(f"Table 5 needs a class-conditional model; {path} is conditioned on {cfg.condition!r}")
    dataset = build_dataset(cfg)
    net = load_shapes_net(domain_net)
    labels = torch.arange(num) % cfg.model.num_classes
    real_stats = real_domain_stats(dataset, num_real, seed + 1, net)
    rows, videos = {}, {}
    for w in weights:
        t0 = time.perf_counter()
        v, _ = sample_videos(model, cfg, num, sampler=sampler, steps=steps, seed=seed, class_label=labels,
                             guidance_weight=float(w), progress=progress)  # fmt: skip
        videos[f"w={w:g}"] = v
        rows[f"w={w:g}"] = {**domain_row(v, labels, dataset, net, real_stats), "seconds": round(time.perf_counter() - t0, 1)}
    real = real_with_labels(dataset, labels, seed + 2)
    rows["real"] = domain_row(real, labels, dataset, net, real_stats)
    first = rows[f"w={weights[0]:g}"]["class_prob_per_video"]
    for name, row in rows.items():  # the same labels and noise at every weight: samples pair up
        p = row.pop("class_prob_per_video")
        if name != "real" and name != f"w={weights[0]:g}":
            row["class_prob_diff"], row["class_prob_diff_se"] = paired(p - first)
            row["class_prob_diff_text"] = paired_text(p - first, digits=3, in_se=False)
    result = {"source": str(path), "step": step, "num_videos": num, "num_real": num_real, "weights": list(weights),
              "sampler": sampler, "steps": steps, "seed": seed, "domain_net": str(domain_net or "shipped"),
              "rows": rows, "environment": environment(), "command": command}  # fmt: skip
    if out_dir is not None:
        _write_table5(result, videos, real, Path(out_dir))
    return result


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
        metric_plot(ax, ws, rows, keys, "guidance weight w", rows.get("real"))
        ax.set_title(title + " (real: dotted)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(result: dict) -> str:
    """``table5.md`` from a result (or ``table5.json``)."""
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
    return table_markdown("Table 5 at small scale: classifier-free guidance weight", intro, TABLE5_COLUMNS, result,
                          extra_cols=(("class_prob_diff_text", f"p(label) minus {w0}'s (paired)"), ("seconds", "seconds")))


def _write_table5(result: dict, videos: dict, real: torch.Tensor, out: Path) -> None:
    """``table5.json``, ``.md``, ``.png`` and ``table5_samples.png`` (6 samples per weight and of real clips)."""
    import matplotlib.pyplot as plt

    from ..viz import sample_rows

    write_result(out, "table5", result)
    plot_table5(result, out / "table5.png")
    fig = sample_rows({"real": real, **videos}, k=6)  # first, middle and last frame of 6 samples per row
    fig.savefig(out / "table5_samples.png", dpi=90, bbox_inches="tight")
    plt.close(fig)

