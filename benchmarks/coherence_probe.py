"""How coherent in time is a trained model of the built-in world? Fast proxies for the
coherent-videos search (benchmarks/results/coherence/).

    OMP_NUM_THREADS=1 python benchmarks/coherence_probe.py RUN_DIR_OR_WEIGHTS [...] --out probe.json
    OMP_NUM_THREADS=1 python benchmarks/coherence_probe.py RUN_DIR_OR_WEIGHTS --grid samples.png

For each model it reports:

* **samples**: ``world_scores`` of unconditional samples (``--num`` videos, ``--steps``
  ancestral steps, seed 0): color, shape and count consistency read from pixels
  (:mod:`vdm_lite.metrics.world`). The issue's bar is color >= 0.95 and shape >= 0.90.
* **far share** of :func:`vdm_lite.tasks.frame_influence`: on ``--probe`` real clips whose
  object is recolored, the share of frame 7's response that comes from frames 4 or more
  away, at log-SNR -4, -2 and 0, averaged over two noise draws. A denoiser that pools all 16
  frames alike gives 9/16 = 0.56; one that looks only at its neighbours gives 0.
* **swap test**: the coarsest level's output (the middle blocks, ``model.mid``) is swapped
  between clips of a batch; the held-out x-MSE with the swap over the MSE without it, at the
  same log-SNRs. About 1 means the coarse stream is bypassed: the output does not depend on it.
* **held-out loss**: :func:`vdm_lite.evaluate.heldout_loss` on 64 fresh clips (seed 3), on the
  plain cosine schedule whatever the model was trained with (so that arms compare).

``--position`` measures instead how far in time a model ties an object's *place*
(:func:`position_coupling`): the same :func:`vdm_lite.tasks.frame_influence`, with the object moved
instead of recolored. Objects that jump to another place for a few frames are frames whose place
was decided apart from the others'.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vdm_lite.config import build_dataset
from vdm_lite.evaluate import heldout_loss
from vdm_lite.metrics.world import world_scores
from vdm_lite.sampling import load_model, sample_videos
from vdm_lite.schedule import CosineSchedule, alpha_sigma
from vdm_lite.tasks import far_share, frame_influence, recolored_clips

LOGSNRS = (-4.0, -2.0, 0.0)


@torch.no_grad()
def swap_ratio(model, clips: torch.Tensor, logsnr: float, seed: int = 0) -> float:
    """x-MSE with ``model.mid``'s output rolled by one clip over the x-MSE without the swap."""
    from vdm_lite.diffusion import convert

    B, T = clips.shape[0], clips.shape[2]
    lam = torch.full((B,), logsnr)
    alpha, sigma = alpha_sigma(lam[0])
    z = alpha * clips + sigma * torch.randn(clips.shape, generator=torch.Generator().manual_seed(seed))

    def mse():
        pred = model(z, lam)
        x_hat = convert(pred, z, lam, model.parameterization, "x")
        return float(((x_hat - clips) ** 2).mean())

    plain = mse()
    hook = model.mid[-1].register_forward_hook(
        lambda mod, inp, out: out.view(B, T, *out.shape[1:]).roll(1, dims=0).reshape(out.shape)
    )
    try:
        swapped = mse()
    finally:
        hook.remove()
    return swapped / plain


def moved_clips(world, n: int, seed: int = 7) -> dict[str, torch.Tensor]:
    """The position probe: ``n`` clips of the world (``generate_batch`` seeded by ``seed``) plus
    ``"x_alt"`` ``(B, 3, T, H, W)``, the same clips rolled by a quarter of the frame along both
    axes: the object elsewhere, with its color, shape and motion."""
    probe = world.generate_batch(n, torch.Generator().manual_seed(seed))
    s = probe["video"].shape[-1] // 4
    return {**probe, "x_alt": probe["video"].roll((s, s), dims=(-2, -1))}


@torch.no_grad()
def position_coupling(model, cfg, world, n_probe: int, logsnrs=(-6.0, -4.0, -2.0, 0.0, 2.0), frame: int = 7) -> dict:
    """How frame ``frame``'s prediction follows the object moved in one other frame, at each log-SNR:
    :func:`vdm_lite.tasks.frame_influence` on :func:`moved_clips`, averaged over two noise draws (a
    class model is told each clip's class). Per log-SNR: ``profile`` (mean influence at distance
    0, 1, ..., 8), ``total``, and the shares of the total from the frame itself (``self``), from
    frames 1-3 away (``near``) and from 4 or more away (``far``). The world's objects move at
    constant velocity, so every frame tells where the object is in frame ``frame``: a denoiser
    that decides an object's place from its neighbours alone has ``far`` near 0."""
    probe = moved_clips(world, n_probe)
    x, x_alt = probe["video"], probe["x_alt"]
    cond = {"class_label": probe["label"]} if cfg.condition == "class" else {}
    d = (torch.arange(x.shape[2]) - frame).abs()
    out = {}
    for lam in logsnrs:
        infl = sum(frame_influence(model, x, x_alt, lam, frame=frame, generator=g, **cond) for g in (0, 1)) / 2
        total = infl.sum()
        out[f"{lam:g}"] = {"profile": [float(infl[d == k].mean()) for k in range(int(d.max()) + 1)], "total": float(total),
                           "self": float(infl[frame] / total), "near": float(infl[(d >= 1) & (d <= 3)].sum() / total),
                           "far": far_share(infl, frame)}  # fmt: skip
    return out


def sample_scores(model, cfg, world, num: int, steps: int, guidance_weight: float = 0.0) -> dict:
    """World scores of ``num`` samples (seed 0, ``steps`` ancestral steps); a class model is told
    classes 0, 1, 2, ... and guided with ``guidance_weight`` (eq. (6); 0: no guidance)."""
    videos, _ = sample_videos(model, cfg, num, sampler="ancestral", steps=steps, guidance_weight=guidance_weight, seed=0,
                              device="cpu", progress=False)  # fmt: skip
    ws = world_scores(videos, dataset=world)
    return {k: ws[k] for k in ("color_consistency", "shape_consistency", "count_stability", "accel")}


def probe(path: str, num: int, steps: int, n_probe: int, guidance: tuple[float, ...] = ()) -> dict:
    model, cfg, step = load_model(path, device="cpu")
    world = build_dataset(cfg)
    out: dict = {"path": str(path), "step": step, "model": {"attention_resolutions": list(cfg.model.attention_resolutions),
                                                          "channel_mults": list(cfg.model.channel_mults),
                                                          "head_dim": cfg.model.head_dim}}
    t0 = time.perf_counter()
    out["samples"] = sample_scores(model, cfg, world, num, steps)  # no guidance, whatever the run samples with
    out["sample_seconds"] = time.perf_counter() - t0
    if guidance and cfg.condition == "class":
        out["guided"] = {f"{w:g}": {**sample_scores(model, cfg, world, num, steps, w), "num": num} for w in guidance}
    probe = recolored_clips(world, n_probe)
    x, x_alt = probe["video"], probe["x_alt"]
    shares = {}
    for lam in LOGSNRS:
        vals = [far_share(frame_influence(model, x, x_alt, lam, frame=7, generator=g), 7) for g in (0, 1)]
        shares[f"{lam:g}"] = sum(vals) / len(vals)
    out["far_share"] = shares
    out["far_share_mean"] = sum(shares.values()) / len(shares)
    clips = world.generate_batch(64, torch.Generator().manual_seed(3))["video"]
    out["swap_ratio"] = {f"{lam:g}": swap_ratio(model, clips, lam) for lam in LOGSNRS}
    # on the plain cosine of every arm, so that arms with another schedule stay comparable
    out["heldout_loss"] = float(heldout_loss(model, CosineSchedule(cfg.logsnr_min, cfg.logsnr_max), clips, num_t=8).mean())
    out["probe_seconds"] = time.perf_counter() - t0
    return out


def milestone_table(results: list[dict]) -> str:
    """A markdown table of one run probed at several steps: one row per step, the samples' scores
    without guidance and at each guidance weight of ``guided``, the far share and the held-out loss."""
    weights = sorted({w for r in results for w in r.get("guided", {})}, key=float)
    head = ["step", "color / shape / count, w = 0"] + [f"color / shape / count, w = {w}" for w in weights]
    head += ["far share at -4 / -2 / 0", "held-out loss"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]

    def triple(s):
        return f"{s['color_consistency']:.3f} / {s['shape_consistency']:.3f} / {s['count_stability']:.3f}"

    for r in sorted(results, key=lambda r: r["step"]):
        g = r.get("guided", {})
        cells = [str(r["step"]), triple(r["samples"])]
        cells += [triple(g[w]) + (f" ({g[w]['num']} samples)" if g[w].get("num") not in (None, 32) else "") if w in g else "--"
                  for w in weights]  # fmt: skip
        cells += [" / ".join(f"{r['far_share'][k]:.3f}" for k in ("-4", "-2", "0")), f"{r['heldout_loss']:.5f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sample_grid(path: str, out: str, steps: int = 32, num: int = 8) -> None:
    """Draw ``num`` unconditional samples (seed 0, ``steps`` ancestral steps) of one model, one row
    each, with the palette color read per frame in the row's title."""
    from vdm_lite.metrics.world import detect_objects
    from vdm_lite.viz import frame_grid

    model, cfg, step = load_model(path, device="cpu")
    world = build_dataset(cfg)
    videos, _ = sample_videos(model, cfg, num, sampler="ancestral", steps=steps, seed=0, device="cpu", progress=False)
    colors = detect_objects(videos.float(), dataset=world, max_objects=1)["color"][..., 0]  # (B, T), -1: none
    names = [" ".join(world.color_names[c][0] if c >= 0 else "-" for c in row) for row in colors.tolist()]
    fig = frame_grid(videos, titles=names, cell=0.5)
    fig.suptitle(f"{Path(path).name} (step {step}): {num} samples, {steps} ancestral steps; left: the color read per frame", y=1.03)
    fig.savefig(out, bbox_inches="tight")


def table(results: list[dict], arms: dict[str, str]) -> str:
    """A markdown table of probe results, one row per arm (the mean over its seeds, each seed's
    value in brackets); ``arms`` maps an arm's name to its description, and a result belongs to
    the arm whose name its path's folder starts with (``base-s0`` -> ``base``)."""
    cols = [("color", lambda r: r["samples"]["color_consistency"]), ("shape", lambda r: r["samples"]["shape_consistency"]),
            ("count", lambda r: r["samples"]["count_stability"]),
            *[(f"far share at {k}", (lambda k: lambda r: r["far_share"][k])(k)) for k in ("-4", "-2", "0")],
            *[(f"swap ratio at {k}", (lambda k: lambda r: r["swap_ratio"][k])(k)) for k in ("-4", "-2", "0")],
            ("held-out loss", lambda r: r["heldout_loss"])]  # fmt: skip
    lines = ["| arm | steps | " + " | ".join(c for c, _ in cols) + " |", "|---|---|" + "---:|" * len(cols)]
    for arm, desc in arms.items():
        rs = [r for r in results if Path(r["path"]).name.split("-s")[0] == arm]
        if not rs:
            continue
        cells = []
        for _, get in cols:
            vals = [get(r) for r in rs]
            fmt = "{:.5f}" if get is cols[-1][1] else "{:.3f}"
            cells.append(fmt.format(sum(vals) / len(vals)) + " (" + " / ".join(fmt.format(v) for v in vals) + ")")
        steps = "/".join(str(r["step"]) for r in rs)
        lines.append(f"| {arm}: {desc} | {steps} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="run directories or .safetensors files")
    ap.add_argument("--num", type=int, default=32, help="unconditional samples (default 32)")
    ap.add_argument("--steps", type=int, default=32, help="ancestral steps (default 32)")
    ap.add_argument("--probe", type=int, default=48, help="clips of the frame-influence probe (default 48)")
    ap.add_argument("--out", default=None, help="JSON file to write (one entry per path)")
    ap.add_argument("--grid", default=None, help="only draw the first 8 samples of one model to this PNG")
    ap.add_argument("--guidance", default="", help="class models: also sample at these guidance weights (e.g. 1,3)")
    ap.add_argument("--table", action="store_true", help="print the milestone table of the JSON files given as paths")
    ap.add_argument("--position", action="store_true", help="only the position probe (position_coupling) of each model")
    args = ap.parse_args()
    if args.position:
        results = []
        for p in args.paths:
            model, cfg, step = load_model(p, device="cpu")
            r = {"path": str(p), "step": step, "probe": args.probe,
                 "position": position_coupling(model, cfg, build_dataset(cfg), args.probe)}
            for lam, v in r["position"].items():
                print(f"{p} (step {step}) log-SNR {lam}: self {v['self']:.3f} near {v['near']:.3f} far {v['far']:.3f} | "
                      "profile " + " ".join(f"{x:.4f}" for x in v["profile"]), flush=True)
            results.append(r)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
        return
    if args.table:
        print(milestone_table([r for p in args.paths for r in json.loads(Path(p).read_text())]))
        return
    if args.grid:
        sample_grid(args.paths[0], args.grid, args.steps)
        return
    results = []
    for p in args.paths:
        r = probe(p, args.num, args.steps, args.probe, tuple(float(w) for w in args.guidance.split(",") if w))
        s = r["samples"]
        print(f"{p}: step {r['step']} | color {s['color_consistency']:.3f} shape {s['shape_consistency']:.3f} "
              f"count {s['count_stability']:.3f} | far share " + " ".join(f"{v:.3f}" for v in r["far_share"].values())
              + " | swap " + " ".join(f"{v:.3f}" for v in r["swap_ratio"].values())
              + f" | held-out {r['heldout_loss']:.5f} | {r['probe_seconds']:.0f} s", flush=True)
        results.append(r)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
