"""Metrics grounded in the built-in world: read objects from pixels and score the physics.

A sample of a model trained on :class:`~vdm_lite.datasets.BouncingShapes` can be checked
against the rules of the world it imitates, with no learned network: every object is a
solid circle, square or triangle of one palette color on a black background, moving at
constant velocity and reflecting elastically off the walls. This module reads the objects
back from the pixels and scores how well a video keeps those rules.

Pipeline (each step can be called alone; the later ones accept the earlier ones' output):

* :func:`detect_objects` -- per frame, connected components of bright pixels, each with
  centroid, area, bounding box, mean color (-> nearest palette color), fill ratio of its
  bounding box (square ~1, circle ~pi/4, triangle ~1/2) and vertical asymmetry (0 for circles
  and squares, 1/6 for the upward triangle) -> shape.
* :func:`track_objects` -- link the detections across frames (nearest predicted centroid,
  with a gating distance; a track survives a few missing frames).
* :func:`world_scores` -- per video and averaged: object-count stability, color and shape
  consistency of each track, acceleration away from walls (the constant-velocity-with-bounces
  test), and optionally :func:`boundary_continuity`, :func:`class_match`, :func:`caption_match`.
* :func:`boundary_continuity` -- for videos built block by block
  (:func:`vdm_lite.guidance.extend_video`; :func:`extension_boundaries` gives the block
  starts): the jump of position, color and shape across each block boundary against the
  typical frame-to-frame change inside blocks (ratio ~1: seamless).
* :func:`class_match` / :func:`caption_match` -- does a class- or text-conditional sample
  contain the object(s) its condition asks for?

**Units** (those of the ground truth, :mod:`vdm_lite.datasets._common`): positions are
pixels ``(x, y)``, origin at the top-left *corner* of the frame, ``y`` down, pixel ``(i, j)``
centered at ``(j + 0.5, i + 0.5)``; time is in frames; velocities in pixels/frame,
accelerations in pixels/frame². Colors are RGB in ``[0, 1]`` normalized by their brightest
channel ("chroma": every palette color has a channel at 1, so this undoes both the
anti-aliased edges and a global brightness error).

**Validated** on rendered clips (``tests/test_world_metrics.py`` at 32 and 64 pixels; by hand
also at 16 and 24, 64-400 clips of 16 frames each): the centroid is within 0.02-0.04 px of the
ground truth on average and 0.2 px at worst (coverage-weighted, including the one-pixel
anti-aliased rim); color and shape are read correctly on every non-overlapping object
(16 px included: radius ~2-3 px); the acceleration residual of real clips is ~0.02-0.03
px/frame² (against ~3-8 for the same clips shuffled in time). Gaussian pixel noise of std 0.1
(in ``[-1, 1]`` units) leaves all of that within ~1 %; at std 0.2 squares start to read as
circles (the soft extents grow with the noise).

**What these metrics miss.** Overlapping or touching objects merge into one component
(one detection, a mixed color, a wrong shape), so worlds with collisions or crowded frames
score lower without being wrong; collisions between objects are accelerations away from the
walls. Objects smaller than ``min_area`` or dimmer than ``threshold`` are invisible. Shapes are
told apart only by two numbers, fill ratio and vertical asymmetry (no outline check: a blob of
the right fill passes, an upside-down triangle counts as a triangle), colors only by the
nearest palette entry (any hue is forced onto the palette: see the ``color_error`` of a
detection for how far it was). Texture, noise in the background and the sharpness of the
edges are not scored; use FVD-like metrics for those.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..conventions import check_video
from ..datasets._common import direction_word
from ..datasets.shapes import COLOR_NAMES, PALETTE, SHAPE_NAMES

__all__ = [
    "detect_objects",
    "track_objects",
    "world_scores",
    "boundary_continuity",
    "extension_boundaries",
    "class_match",
    "caption_match",
    "parse_caption",
    "SHAPE_FILL",
]

# Fill ratio (area / bounding-box area) of each shape of the world, axis-aligned, as drawn
# by :func:`vdm_lite.datasets.shapes.render_shapes`: square 1, circle pi/4, upward triangle 1/2.
SHAPE_FILL = {"circle": math.pi / 4, "square": 1.0, "triangle": 0.5}

_RING_FLOOR = 0.05  # rim pixels (below threshold, next to an object) brighter than this count


# ---------------------------------------------------------------------------- helpers
def _world(dataset=None, palette=None, shape_names=None, color_names=None):
    """(palette (P, 3) float32 in [0, 1], shape_names, color_names) from a dataset or the defaults."""
    if dataset is not None:
        palette = dataset.palette if palette is None else palette
        shape_names = dataset.shape_names if shape_names is None else shape_names
        color_names = dataset.color_names if color_names is None else color_names
    if palette is None:
        names = COLOR_NAMES if color_names is None else tuple(color_names)
        palette = torch.tensor([PALETTE[c] for c in names], dtype=torch.float32)
        color_names = names
    palette = torch.as_tensor(palette, dtype=torch.float32)
    if color_names is None:
        color_names = tuple(f"color{i}" for i in range(len(palette)))
    shape_names = SHAPE_NAMES if shape_names is None else tuple(shape_names)
    for s in shape_names:
        if s not in SHAPE_FILL:
            raise ValueError(f"unknown shape {s!r}; choose from {tuple(SHAPE_FILL)}")
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) != len(color_names):
        raise ValueError("palette must be (P, 3) with one name per color")
    return palette, tuple(shape_names), tuple(color_names)


def _max3x3(x: torch.Tensor) -> torch.Tensor:
    """Maximum over each pixel's 3x3 neighborhood of ``x`` ``(N, H, W)`` (separable; edges
    replicate nothing: out-of-frame neighbors are ignored)."""
    y = x.clone()
    y[:, 1:] = torch.maximum(y[:, 1:], x[:, :-1])
    y[:, :-1] = torch.maximum(y[:, :-1], x[:, 1:])
    z = y.clone()
    z[:, :, 1:] = torch.maximum(z[:, :, 1:], y[:, :, :-1])
    z[:, :, :-1] = torch.maximum(z[:, :, :-1], y[:, :, 1:])
    return z


def _components(fg: torch.Tensor) -> torch.Tensor:
    """8-connected components of a batch of masks ``fg`` ``(N, H, W)`` bool.

    Returns ``(N, H, W)`` long labels: 0 on the background, else ``1 +`` an id unique over
    the whole batch (never shared between frames). Union-find on the foreground pixels,
    vectorized (the hooking and shortcutting of Shiloach-Vishkin / FastSV): every edge between
    neighbors hooks the larger of the two parents' trees under the smaller, then every pixel
    jumps to its grandparent; ``O(log(diameter))`` rounds of a few ops over the object pixels.
    """
    n, h, w = fg.shape
    P = int(fg.sum())
    index = torch.full((n, h, w), -1, dtype=torch.long, device=fg.device)
    index[fg] = torch.arange(P, device=fg.device)
    src, dst = [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):  # right, down and both down diagonals
        a = index[:, : h - dy, max(0, -dx) : w - max(0, dx)]
        b = index[:, dy:, max(0, dx) : w - max(0, -dx) if dx < 0 else w]
        ok = (a >= 0) & (b >= 0)
        src.append(a[ok])
        dst.append(b[ok])
    src, dst = torch.cat(src), torch.cat(dst)
    parent = torch.arange(P, device=fg.device)
    for _ in range(P + 1):  # never reached: O(log) rounds suffice
        pu, pv = parent[src], parent[dst]
        m = torch.minimum(pu, pv)
        new = parent.clone()
        new.scatter_reduce_(0, pu, m, "amin")  # hook the trees' parents
        new.scatter_reduce_(0, pv, m, "amin")
        new.scatter_reduce_(0, src, pv, "amin")  # and the pixels themselves
        new.scatter_reduce_(0, dst, pu, "amin")
        new = new[new]  # shortcut
        if torch.equal(new, parent):
            break
        parent = new
    out = torch.zeros((n, h, w), dtype=torch.long, device=fg.device)
    out[fg] = parent + 1
    return out


# Shape thresholds, validated on rendered clips at 16, 24, 32 and 64 pixels (radius 0.12-0.2
# of the side, 400 clips x 16 frames each, every sub-pixel position): |asym| is <= 0.013 for
# circles and squares (<= 0.03 with Gaussian pixel noise of std 0.2 in [-1, 1] units) and
# >= 0.06 for triangles (>= 0.12 from 32 px up); the soft fill ratio is 0.78-0.87 for circles
# (the high end at 16 px) and >= 1.00 for squares (>= 0.91 with noise of std 0.1).
TRIANGLE_ASYM = 1 / 24  # a quarter of the ideal triangle's 1/6
SQUARE_FILL = 0.9


def _classify_shape(fill: torch.Tensor, asym: torch.Tensor, shape_names: Sequence[str]) -> torch.Tensor:
    """Shape index (into ``shape_names``) from the fill ratio and the vertical asymmetry:
    triangle if ``|asym| > TRIANGLE_ASYM``, else square if ``fill > SQUARE_FILL``, else
    circle. A kind absent from ``shape_names`` falls back to the allowed kind of nearest
    ``SHAPE_FILL``."""
    kind = torch.where(asym.abs() > TRIANGLE_ASYM, 2, torch.where(fill > SQUARE_FILL, 1, 0))  # SHAPE_NAMES order
    protos = torch.tensor([SHAPE_FILL[s] for s in shape_names], device=fill.device)
    nearest = (fill[:, None] - protos).abs().argmin(1)
    lut = torch.tensor([shape_names.index(k) if k in shape_names else -1 for k in SHAPE_NAMES], device=fill.device)
    mapped = lut[kind]
    return torch.where(mapped >= 0, mapped, nearest)


# ---------------------------------------------------------------------------- detection
@torch.no_grad()
def detect_objects(
    video: torch.Tensor,
    *,
    dataset: Any = None,
    palette: torch.Tensor | None = None,
    shape_names: Sequence[str] | None = None,
    threshold: float = 0.5,
    min_area: float = 2.0,
    max_objects: int | None = None,
) -> dict:
    """The objects of every frame of ``video`` ``(B, 3, T, H, W)`` in ``[-1, 1]``, from pixels.

    An object is an 8-connected component of pixels whose brightest channel (in ``[0, 1]``)
    is above ``threshold`` (0.5: the anti-aliased outline of a palette color), grown by its
    one-pixel rim of dimmer pixels (brightest channel above 0.05, or above the frame's
    background level + 3 robust standard deviations if that is higher) so that the soft edge
    counts. Per component, with weights ``w`` = brightest channel less the frame's background
    level (its median, at most ``threshold / 2``), rescaled to ``[0, 1]`` (the coverage, for
    palette colors on black):

    * ``centroid``: ``sum w (x, y) / sum w`` (pixels; the renderer's coverage centroid is the
      true centroid to well under a pixel);
    * ``area``: ``sum w`` (pixels²); components below ``min_area`` are dropped as noise;
    * ``fill``: ``area / (width * height)`` with the *soft* extents ``width = sum over columns of
      max w`` (and rows alike), so the fractional edge pixels count: square ~1, circle ~0.785,
      triangle ~0.5 (up to ~0.9 for tiny triangles, whose corners the anti-aliasing rounds);
    * ``asym``: ``(centroid y - middle of the soft vertical extent) / height``: ~0 for circles
      and squares, ~1/6 for the upward triangle (>= 0.06 even at radius 2 px);
    * ``shape``: triangle if ``|asym| > TRIANGLE_ASYM`` (1/24), else square if ``fill >
      SQUARE_FILL`` (0.9), else circle (thresholds and their validation: at their definition);
    * ``rgb``: mean chroma ``rgb / max(rgb)`` over the core pixels (weights ``w``); ``color`` is
      the nearest ``palette`` row (Euclidean), ``color_error`` that distance.

    Objects are sorted by decreasing area within a frame and padded to ``K = max_objects``
    (default: the most found in any frame, at least 1); ``count`` counts every component,
    including any beyond ``K``.

    Args:
        dataset: a :class:`~vdm_lite.datasets.BouncingShapes` to take ``palette`` and
            ``shape_names`` from (so indices match its ``colors``/``shapes``/``label``);
            default: the full world (:data:`~vdm_lite.datasets.shapes.PALETTE`, ``SHAPE_NAMES``).
    Returns:
        a dict of tensors on ``video``'s device (invalid slots: NaN or -1)::

            centroid    (B, T, K, 2) float32  (x, y) in pixels
            area        (B, T, K)    float32  pixels² (0 when invalid)
            bbox        (B, T, K, 4) float32  x0, y0, x1, y1: pixel edges of core + rim, pixels
            fill        (B, T, K)    float32
            asym        (B, T, K)    float32
            shape       (B, T, K)    long     index into shape_names
            rgb         (B, T, K, 3) float32  mean chroma in [0, 1]
            color       (B, T, K)    long     index into the palette
            color_error (B, T, K)    float32  distance of rgb to that palette color
            valid       (B, T, K)    bool
            count       (B, T)       long

        plus ``frame_size`` ``(H, W)``, ``palette``, ``shape_names`` and ``color_names``.
    """
    check_video(video, "video", channels=3)  # RGB in [-1, 1]
    pal, names, color_names = _world(dataset, palette, shape_names)
    dev = video.device
    B, _, T, H, W = video.shape
    N = B * T
    img = ((video.detach().float() + 1) / 2).clamp(0, 1).permute(0, 2, 1, 3, 4).reshape(N, 3, H, W)
    bright = img.amax(1)  # (N, H, W)
    core = bright > threshold
    lab = _components(core)
    # background level of each frame (median; objects cover well under half of a frame) and
    # its noise (MAD): the rim floor rises above the noise and the weights discount the level
    flat = bright.flatten(1)
    bg = flat.median(1).values.clamp(max=0.5 * threshold)
    spread = 1.4826 * (flat - bg[:, None]).abs().median(1).values
    floor = torch.clamp(bg + 3 * spread, min=_RING_FLOOR)[:, None, None]
    rim = ~core & (bright > floor)
    weight = ((bright - bg[:, None, None]) / (1 - bg[:, None, None])).clamp(0, 1)
    lab_all = torch.where(core, lab, torch.where(rim, _max3x3(lab), 0))

    sel = lab_all > 0
    fi, yi, xi = sel.nonzero(as_tuple=True)  # frame, row, column of every object pixel
    uniq, comp = torch.unique(lab_all[sel], return_inverse=True)
    n = len(uniq)
    frame_of = torch.zeros(n, dtype=torch.long, device=dev).scatter_(0, comp, fi)
    w = weight[sel].double()
    is_core = core[sel].double()
    xs, ys = xi.double() + 0.5, yi.double() + 0.5
    area = torch.zeros(n, dtype=torch.float64, device=dev).index_add_(0, comp, w)
    cx = torch.zeros_like(area).index_add_(0, comp, w * xs) / area.clamp_min(1e-12)
    cy = torch.zeros_like(area).index_add_(0, comp, w * ys) / area.clamp_min(1e-12)
    wc = w * is_core
    chroma = img.permute(0, 2, 3, 1)[sel].double() / bright[sel].double().clamp_min(1e-6)[:, None]
    csum = torch.zeros(n, 3, dtype=torch.float64, device=dev).index_add_(0, comp, wc[:, None] * chroma)
    rgb = (csum / torch.zeros_like(area).index_add_(0, comp, wc).clamp_min(1e-12)[:, None]).float()
    colmax = torch.zeros(n * W, dtype=torch.float64, device=dev).scatter_reduce_(0, comp * W + xi, w, "amax")
    rowmax = torch.zeros(n * H, dtype=torch.float64, device=dev).scatter_reduce_(0, comp * H + yi, w, "amax")
    colmax, rowmax = colmax.view(n, W), rowmax.view(n, H)
    width, height = colmax.sum(1), rowmax.sum(1)
    # where the mass sits inside the extent: 0 for circles and squares, +1/6 for the upward
    # triangle (centroid 2/3 of the way down; the extent's middle is at 1/2)
    mid_y = (rowmax * (torch.arange(H, device=dev, dtype=torch.float64) + 0.5)).sum(1) / height.clamp_min(1e-12)
    asym = ((cy - mid_y) / height.clamp_min(1e-12)).float()
    fill = (area / (width * height).clamp_min(1e-12)).float()
    big = torch.full((n,), 1 << 30, dtype=torch.long, device=dev)
    x0 = big.clone().scatter_reduce_(0, comp, xi, "amin")
    y0 = big.clone().scatter_reduce_(0, comp, yi, "amin")
    x1 = (-big).scatter_reduce_(0, comp, xi, "amax") + 1
    y1 = (-big).scatter_reduce_(0, comp, yi, "amax") + 1
    bbox = torch.stack([x0, y0, x1, y1], 1).float()

    # classify
    pal_d = pal.to(dev)
    dist = torch.cdist(rgb, pal_d) if n else torch.zeros(0, len(pal_d), device=dev)
    color_error, color = dist.min(1) if n else (torch.zeros(0, device=dev), torch.zeros(0, dtype=torch.long, device=dev))
    shape = _classify_shape(fill, asym, names)

    # drop noise, sort by frame then decreasing area, pack into (N, K)
    keep = area >= min_area
    ids = keep.nonzero(as_tuple=True)[0]
    ids = ids[torch.argsort(area[ids], descending=True, stable=True)]
    ids = ids[torch.argsort(frame_of[ids], stable=True)]
    fr = frame_of[ids]
    count = torch.bincount(fr, minlength=N)
    starts = torch.cumsum(count, 0) - count
    rank = torch.arange(len(ids), device=dev) - starts[fr]
    K = int(max_objects) if max_objects is not None else max(1, int(count.max()) if N else 1)
    fit = rank < K
    ids, fr, rank = ids[fit], fr[fit], rank[fit]

    def pack(values, fillv, dtype, tail=()):
        out = torch.full((N, K, *tail), fillv, dtype=dtype, device=dev)
        out[fr, rank] = values[ids].to(dtype)
        return out.view(B, T, K, *tail)

    nan = float("nan")
    return {
        "centroid": pack(torch.stack([cx, cy], 1), nan, torch.float32, (2,)),
        "area": pack(area, 0.0, torch.float32),
        "bbox": pack(bbox, nan, torch.float32, (4,)),
        "fill": pack(fill, nan, torch.float32),
        "asym": pack(asym, nan, torch.float32),
        "shape": pack(shape, -1, torch.long),
        "rgb": pack(rgb, nan, torch.float32, (3,)),
        "color": pack(color, -1, torch.long),
        "color_error": pack(color_error, nan, torch.float32),
        "valid": pack(torch.ones(n, dtype=torch.bool, device=dev), False, torch.bool),
        "count": count.view(B, T),
        "frame_size": (H, W),
        "palette": pal,
        "shape_names": names,
        "color_names": color_names,
    }


# ---------------------------------------------------------------------------- tracking
def track_objects(detections: dict, *, max_dist: float | None = None, max_gap: int = 2) -> dict:
    """Link the detections of :func:`detect_objects` into tracks, video by video.

    Frame by frame, every live track predicts its centroid at constant velocity (its last two
    observations; no velocity after one) and detections are assigned greedily by increasing
    distance to the predictions, only below ``max_dist`` pixels (default: half the frame's
    smaller side, generous because a bounce makes the prediction off by up to twice the
    step). A track missing for more than ``max_gap`` frames ends; an unassigned detection
    starts a new track. Identity comes from position only (not color or shape), so a track
    that changes color is kept and shows up in the consistency scores.

    Returns a dict (``M`` = most tracks in a video; absent entries NaN / -1 / False)::

        track     (B, T, K)    long     track index of each detection (-1 when invalid)
        present   (B, M, T)    bool
        centroid  (B, M, T, 2) float32  pixels
        bbox      (B, M, T, 4) float32  pixels
        rgb       (B, M, T, 3) float32
        fill, area (B, M, T)   float32
        color, shape (B, M, T) long
        length    (B, M)       long     frames present
        num_tracks (B,)        long

    plus ``frame_size``, ``palette``, ``shape_names``, ``color_names`` (from ``detections``).
    """
    H, W = detections["frame_size"]
    gate = 0.5 * min(H, W) if max_dist is None else float(max_dist)
    valid = detections["valid"].cpu().numpy()
    cent = detections["centroid"].detach().cpu().double().numpy()
    B, T, K = valid.shape
    track = np.full((B, T, K), -1, dtype=np.int64)
    n_tracks = np.zeros(B, dtype=np.int64)
    for b in range(B):
        last_t: list[int] = []
        last_p: list[np.ndarray] = []
        vel: list[np.ndarray] = []
        for t in range(T):
            dets = np.flatnonzero(valid[b, t])
            live = [i for i in range(len(last_t)) if t - last_t[i] <= max_gap + 1]
            pairs = []
            if live and len(dets):
                pred = np.stack([last_p[i] + vel[i] * (t - last_t[i]) for i in live])
                cost = np.linalg.norm(pred[:, None] - cent[b, t, dets][None], axis=-1)
                cost[cost > gate] = np.inf
                for _ in range(min(len(live), len(dets))):
                    i, j = np.unravel_index(np.argmin(cost), cost.shape)
                    if not np.isfinite(cost[i, j]):
                        break
                    pairs.append((live[i], dets[j]))
                    cost[i, :] = np.inf
                    cost[:, j] = np.inf
            used = {d for _, d in pairs}
            for tr, d in pairs:
                p = cent[b, t, d]
                vel[tr] = (p - last_p[tr]) / (t - last_t[tr])
                last_p[tr], last_t[tr] = p, t
                track[b, t, d] = tr
            for d in dets:
                if d not in used:
                    track[b, t, d] = len(last_t)
                    last_t.append(t)
                    last_p.append(cent[b, t, d])
                    vel.append(np.zeros(2))
        n_tracks[b] = len(last_t)

    dev = detections["valid"].device
    M = max(1, int(n_tracks.max()) if B else 1)
    track_t = torch.from_numpy(track).to(dev)
    bi, ti, ki = (track_t >= 0).nonzero(as_tuple=True)
    mi = track_t[bi, ti, ki]

    def gather(name, fillv, dtype):
        x = detections[name]
        out = torch.full((B, M, T, *x.shape[3:]), fillv, dtype=dtype, device=dev)
        out[bi, mi, ti] = x[bi, ti, ki].to(dtype)
        return out

    present = torch.zeros(B, M, T, dtype=torch.bool, device=dev)
    present[bi, mi, ti] = True
    nan = float("nan")
    out = {
        "track": track_t,
        "present": present,
        "centroid": gather("centroid", nan, torch.float32),
        "bbox": gather("bbox", nan, torch.float32),
        "rgb": gather("rgb", nan, torch.float32),
        "fill": gather("fill", nan, torch.float32),
        "area": gather("area", 0.0, torch.float32),
        "color": gather("color", -1, torch.long),
        "shape": gather("shape", -1, torch.long),
        "length": present.sum(2),
        "num_tracks": torch.from_numpy(n_tracks).to(dev),
    }
    for k in ("frame_size", "palette", "shape_names", "color_names"):
        out[k] = detections[k]
    return out


def _majority(values: torch.Tensor, present: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per track (values ``(B, M, T)`` long): the majority class ``(B, M)`` (-1 if never
    present) and how many present frames agree with it ``(B, M)``."""
    onehot = F.one_hot(values.clamp(0, n_classes - 1), n_classes) * present[..., None]
    votes = onehot.sum(2)  # (B, M, C)
    agree, cls = votes.max(-1)
    return torch.where(present.any(2), cls, -1), agree


def _track_classes(tracks: dict, min_frac: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Majority shape and color ``(B, M)`` of each track, and which tracks count as objects of
    the video (present in at least ``min_frac`` of the frames)."""
    present = tracks["present"]
    shape, _ = _majority(tracks["shape"], present, len(tracks["shape_names"]))
    color, _ = _majority(tracks["color"], present, len(tracks["palette"]))
    T = present.shape[2]
    real = tracks["length"] >= max(1.0, min_frac * T)
    return shape, color, real


# ---------------------------------------------------------------------------- scores
def _aggregate(per_video: dict) -> dict:
    out = {}
    for k, v in per_video.items():
        v = v.float()
        out[k] = float(v.nanmean()) if bool((~v.isnan()).any()) else float("nan")
    out["per_video"] = per_video
    return out


def _acceleration(tracks: dict, wall_tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per video: mean |second difference| of the track centroids (pixels/frame²) over
    (track, frame, axis) entries that no wall can explain, and how many entries that is.

    An elastic bounce on axis ``a`` inside the triple of frames ``(t-1, t, t+1)`` leaves the
    middle frame within one step of the wall (``|p_t - wall| <= max(|d1|, |d2|)``, ``d`` the
    two steps) and turns the acceleration away from that wall; such entries are left out
    (``wall_tol`` pixels of slack for the edge estimate). Everything else should be ~0.
    """
    H, W = tracks["frame_size"]
    p = tracks["centroid"].double()  # (B, M, T, 2)
    box = tracks["bbox"].double()  # (B, M, T, 4)
    B = p.shape[0]
    if p.shape[2] < 3:
        nan = torch.full((B,), float("nan"), device=p.device)
        return nan, torch.zeros(B, device=p.device)
    d1 = p[:, :, 1:-1] - p[:, :, :-2]
    d2 = p[:, :, 2:] - p[:, :, 1:-1]
    acc = d2 - d1  # (B, M, T-2, 2), NaN unless three consecutive frames are present
    step = torch.maximum(d1.abs(), d2.abs()) + wall_tol
    mid = box[:, :, 1:-1]
    size = torch.tensor([W, H], dtype=p.dtype, device=p.device)
    gap_lo = mid[..., 0:2]  # distance of the left/top edge to the wall at 0
    gap_hi = size - mid[..., 2:4]  # of the right/bottom edge to the far wall
    noise = 0.5 * wall_tol
    bounce_lo = (gap_lo <= step) & (acc >= -noise)  # pushed away from the low wall
    bounce_hi = (gap_hi <= step) & (acc <= noise)
    use = ~acc.isnan() & ~(bounce_lo | bounce_hi)
    a = torch.where(use, acc.abs(), 0.0)
    n = use.flatten(1).sum(1).double()
    mean = torch.where(n > 0, a.flatten(1).sum(1) / n.clamp_min(1), float("nan"))
    return mean.float(), n.float()


def world_scores(
    video: torch.Tensor,
    *,
    dataset: Any = None,
    detections: dict | None = None,
    tracks: dict | None = None,
    boundaries: Sequence[int] | None = None,
    labels: torch.Tensor | None = None,
    captions: Sequence[str] | None = None,
    wall_tol: float = 1.5,
    max_dist: float | None = None,
    max_gap: int = 2,
    **detect_kwargs: Any,
) -> dict:
    """How well each video of ``video`` ``(B, 3, T, H, W)`` in ``[-1, 1]`` keeps the world's rules.

    Scores per video (``per_video``: ``(B,)`` float tensors) and their mean over the videos
    (floats; NaN-ignoring):

    * ``count_stability``: share of frames whose object count is the video's most common count
      (1 = the number of objects never changes); ``count_mode``; ``count_std`` (objects).
    * ``color_consistency`` / ``shape_consistency``: over tracks of at least 2 frames, the
      share of track frames whose color / shape is the track's majority (1 = no object ever
      changes color / shape).
    * ``accel``: mean ``|p[t+1] - 2 p[t] + p[t-1]|`` per axis, pixels/frame², over the track
      frames no wall bounce can explain (``_acceleration``); ~0 for constant velocity. Half of
      it is the distance (pixels) of the middle frame from the line through its neighbours.
      ``accel_samples`` is how many entries it averages (NaN accel: too few).
    * ``num_tracks``.
    * with ``boundaries``: :func:`boundary_continuity`'s scores; with ``labels``:
      :func:`class_match`'s (``class_match``, ``color_match``, ``shape_match``); with
      ``captions``: :func:`caption_match`'s (``caption_recall``, ...).

    ``detections`` / ``tracks`` skip the corresponding step when already computed;
    ``detect_kwargs`` go to :func:`detect_objects` (``threshold``, ``min_area``, ``palette``...).
    """
    det = detect_objects(video, dataset=dataset, **detect_kwargs) if detections is None else detections
    trk = track_objects(det, max_dist=max_dist, max_gap=max_gap) if tracks is None else tracks
    count = det["count"]  # (B, T)
    B, T = count.shape
    hist = F.one_hot(count, int(count.max()) + 1).sum(1)  # (B, C+1)
    mode = hist.argmax(1)
    per = {
        "count_stability": (count == mode[:, None]).float().mean(1),
        "count_mode": mode.float(),
        "count_std": count.float().std(1, unbiased=False),
    }
    present = trk["present"]
    long_enough = (trk["length"] >= 2)[..., None] & present
    for name, n_cls in (("color", len(det["palette"])), ("shape", len(det["shape_names"]))):
        _, agree = _majority(trk[name], long_enough, n_cls)
        total = long_enough.sum((1, 2)).float()
        per[f"{name}_consistency"] = torch.where(total > 0, agree.sum(1).float() / total.clamp_min(1), float("nan"))
    per["accel"], per["accel_samples"] = _acceleration(trk, wall_tol)
    per["num_tracks"] = trk["num_tracks"].float()
    out_per = dict(per)
    extra = {}
    if boundaries is not None:
        bc = boundary_continuity(video, boundaries, detections=det)
        extra.update({k: v for k, v in bc.items() if k != "per_video"})
        out_per.update(bc["per_video"])
    if labels is not None:
        cm = class_match(video, labels, tracks=trk)
        extra.update({("class_match" if k == "match" else f"{k}_match"): v for k, v in cm.items() if k != "per_video"})
        out_per.update({("class_match" if k == "match" else f"{k}_match"): v for k, v in cm["per_video"].items()})
    if captions is not None:
        cp = caption_match(video, captions, tracks=trk)
        extra.update({f"caption_{k}": v for k, v in cp.items() if k != "per_video"})
        out_per.update({f"caption_{k}": v for k, v in cp["per_video"].items()})
    out = _aggregate(per)
    out.update(extra)
    out["per_video"] = out_per
    return out


# ---------------------------------------------------------------------------- block boundaries
def extension_boundaries(first_frames: int, total_frames: int, block_frames: int, context_frames: int) -> list[int]:
    """The first frame of every generated block of :func:`vdm_lite.guidance.extend_video`
    (called with a video of ``first_frames`` frames): ``[T0, T0 + new, T0 + 2 new, ...]`` below
    ``total_frames``, ``new = block_frames - context_frames``."""
    new = int(block_frames) - int(context_frames)
    if new <= 0:
        raise ValueError("need context_frames < block_frames")
    return list(range(int(first_frames), int(total_frames), new))


def _pair_changes(det: dict) -> dict:
    """Frame-to-frame change between frames ``t-1`` and ``t`` (``t = 1..T-1``) of each video,
    matching every object to the nearest one (centroid) of the other frame, both ways:
    mean step (pixels), mean chroma change, mean fill change, |count change|. ``(B, T-1)``,
    NaN where a frame has no object."""
    c, v = det["centroid"].double(), det["valid"]
    a, b = c[:, :-1], c[:, 1:]  # (B, T-1, K, 2)
    va, vb = v[:, :-1], v[:, 1:]
    d = torch.cdist(torch.nan_to_num(b, 0.0), torch.nan_to_num(a, 0.0))  # (B, T-1, K_b, K_a)
    d = d.masked_fill(~(vb[..., :, None] & va[..., None, :]), float("inf"))
    nb_a = d.argmin(-1)  # nearest in t-1 of every object of t
    nb_b = d.argmin(-2)  # nearest in t of every object of t-1
    rgb, fill = det["rgb"].double(), det["fill"].double()

    def both_ways(fb, fa, dist_fn):
        """Mean over both directions of dist_fn(feature of an object, feature of its nearest)."""
        ga = torch.gather(fa, 2, nb_a.view(*nb_a.shape, *([1] * (fa.ndim - 3))).expand(*nb_a.shape, *fa.shape[3:]))
        gb = torch.gather(fb, 2, nb_b.view(*nb_b.shape, *([1] * (fb.ndim - 3))).expand(*nb_b.shape, *fb.shape[3:]))
        x = torch.where(vb, dist_fn(fb, ga), 0.0).sum(-1) + torch.where(va, dist_fn(fa, gb), 0.0).sum(-1)
        n = (vb.sum(-1) + va.sum(-1)).double()
        ok = vb.any(-1) & va.any(-1)
        return torch.where(ok, x / n.clamp_min(1), float("nan"))

    norm = lambda x, y: torch.nan_to_num((x - y).norm(dim=-1), 0.0)  # noqa: E731
    absd = lambda x, y: torch.nan_to_num((x - y).abs(), 0.0)  # noqa: E731
    cnt = det["count"].double()
    return {
        "position": both_ways(b, a, norm),
        "color": both_ways(rgb[:, 1:], rgb[:, :-1], norm),
        "shape": both_ways(fill[:, 1:], fill[:, :-1], absd),
        "count": (cnt[:, 1:] - cnt[:, :-1]).abs(),
    }


def boundary_continuity(
    video: torch.Tensor,
    boundaries: Sequence[int],
    *,
    detections: dict | None = None,
    floors: dict | None = None,
    **detect_kwargs: Any,
) -> dict:
    """Seams of a video built block by block: the change across each block boundary against
    the typical change between consecutive frames inside the blocks.

    ``boundaries`` are frame indices ``t`` (``0 < t < T``) where a new block starts (e.g.
    :func:`extension_boundaries`); the change across it is between frames ``t - 1`` and ``t``.
    Each object of one frame is matched to the nearest object (centroid) of the other frame,
    both ways, and the change is averaged over objects (:func:`_pair_changes`):

    * ``position``: the centroid step, pixels (inside a block: the speed, ~1-3 px/frame);
    * ``color``: the chroma change (RGB distance in [0, 1] units; palette colors are >= ~0.5
      apart);
    * ``shape``: the change of fill ratio (square/circle/triangle differ by >= ~0.2);
    * ``count``: the change of the number of objects.

    Per video (``per_video``) and on average: ``{x}_jump`` (mean over the boundaries),
    ``{x}_typical`` (median over the other frame pairs) and ``{x}_ratio = jump / max(typical,
    floor)`` for ``x`` in position, color, shape -- ~1 (or below) when the seams are invisible,
    >> 1 when the video jumps there. ``floors`` (default ``{"position": 0.5, "color": 0.05,
    "shape": 0.05}``) keep the ratio meaningful when nothing moves or the measurement noise is
    all there is. ``count_jump`` / ``count_typical``: mean |count change| at the boundaries /
    elsewhere. The averaged ratio is
    ``mean jump / max(mean typical, floor)`` (a ratio of means, robust to one odd video).
    """
    det = detect_objects(video, **detect_kwargs) if detections is None else detections
    B, T = det["count"].shape
    bd = sorted({int(t) for t in boundaries})
    if not bd:
        raise ValueError("boundaries is empty")
    if any(t <= 0 or t >= T for t in bd):
        raise ValueError(f"boundaries must be frame indices in 1..{T - 1}, got {bd}")
    floor = {"position": 0.5, "color": 0.05, "shape": 0.05}
    floor.update(floors or {})
    ch = _pair_changes(det)
    at = torch.zeros(T - 1, dtype=torch.bool, device=det["count"].device)
    at[torch.tensor(bd, device=at.device) - 1] = True
    per, agg = {}, {}
    for x in ("position", "color", "shape"):
        v = ch[x]
        jump = v[:, at].nanmean(1)
        typical = v[:, ~at].nanmedian(1).values if bool((~at).any()) else torch.full_like(jump, float("nan"))
        per[f"{x}_jump"] = jump.float()
        per[f"{x}_typical"] = typical.float()
        per[f"{x}_ratio"] = (jump / typical.clamp_min(floor[x])).float()
        mj, mt = jump.nanmean(), typical.nanmean()
        agg[f"{x}_ratio"] = float(mj / mt.clamp_min(floor[x]))
    per["count_jump"] = ch["count"][:, at].mean(1).float()
    per["count_typical"] = ch["count"][:, ~at].mean(1).float()
    out = _aggregate(per)
    out.update(agg)
    return out


# ---------------------------------------------------------------------------- conditions
def class_match(
    video: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    *,
    dataset: Any = None,
    tracks: dict | None = None,
    min_frac: float = 0.25,
    **detect_kwargs: Any,
) -> dict:
    """Share of the videos that contain an object of their class.

    ``labels`` ``(B,)``: ``shape * num_colors + color`` as :class:`~vdm_lite.datasets.
    BouncingShapes` defines it (indices into the dataset's ``shape_names`` / ``color_names``:
    pass ``dataset`` if it uses a subset). A video matches when one of its objects (a track
    present in at least ``min_frac`` of the frames; its majority shape and color) has both the
    label's shape and color (the labeled object is object 0; other objects are allowed).

    Returns ``match``, ``color`` (an object of the label's color), ``shape`` (of its shape):
    shares of the videos, floats, and ``per_video`` ``(B,)`` bool tensors.
    """
    trk = track_objects(detect_objects(video, dataset=dataset, **detect_kwargs)) if tracks is None else tracks
    n_colors = len(trk["palette"])
    labels = torch.as_tensor(labels, device=trk["present"].device).long().view(-1)
    if len(labels) != trk["present"].shape[0]:
        raise ValueError(f"{len(labels)} labels for {trk['present'].shape[0]} videos")
    shape, color, real = _track_classes(trk, min_frac)
    want_s, want_c = (labels // n_colors)[:, None], (labels % n_colors)[:, None]
    ok_s, ok_c = (shape == want_s) & real, (color == want_c) & real
    per = {"match": (ok_s & ok_c).any(1), "color": ok_c.any(1), "shape": ok_s.any(1)}
    out = {k: float(v.float().mean()) for k, v in per.items()}
    out["per_video"] = per
    return out


def parse_caption(caption: str, shape_names: Sequence[str] = SHAPE_NAMES, color_names: Sequence[str] = COLOR_NAMES):
    """The objects of a BouncingShapes caption: ``[(shape index, color index, direction words
    or None), ...]``, e.g. ``"a red circle moving up and a blue square moving left"`` ->
    ``[(0, 0, "up"), (1, 2, "left")]`` (indices into ``shape_names`` / ``color_names``)."""
    cols = "|".join(re.escape(c) for c in sorted(color_names, key=len, reverse=True))
    shps = "|".join(re.escape(s) for s in sorted(shape_names, key=len, reverse=True))
    pat = re.compile(rf"\b({cols})\s+({shps})\b(?:\s+moving\s+(.+?))?(?=,|\s+and\s+|$)")
    return [
        (list(shape_names).index(m[2]), list(color_names).index(m[1]), m[3].strip() if m[3] else None)
        for m in pat.finditer(caption.strip())
    ]


def _first_velocity(p: torch.Tensor, tol: float = 0.2) -> torch.Tensor | None:
    """Velocity just after frame 0 (pixels/frame) of a track ``p`` ``(T, 2)`` (NaN: absent),
    ``None`` without frames 0 and 1.

    Per axis, from the steps ``d1 = p1 - p0``, ``d2``, ``d3``: a bounce in the first step
    shortens it (``|d1| < |d2| - tol``; the unfolded velocity is then ``-d2``); otherwise the
    velocity is ``d1``, or the mean of the three steps when they agree (same sign, same size
    within ``tol`` pixels: no bounce), which averages out the centroid noise.
    """
    if p.shape[0] < 2 or bool(p[:2].isnan().any()):
        return None
    d1 = p[1] - p[0]
    if p.shape[0] < 3 or bool(p[2].isnan().any()):
        return d1
    d2 = p[2] - p[1]
    v = torch.where(d1.abs() < d2.abs() - tol, -d2, d1)
    if p.shape[0] >= 4 and not bool(p[3].isnan().any()):
        d3 = p[3] - p[2]
        agree = (torch.sign(d1) == torch.sign(d2)) & (torch.sign(d2) == torch.sign(d3))
        agree &= ((d1.abs() - d2.abs()).abs() <= tol) & ((d1.abs() - d3.abs()).abs() <= tol)
        v = torch.where(agree, (p[3] - p[0]) / 3, v)
    return v


def caption_match(
    video: torch.Tensor,
    captions: Sequence[str],
    *,
    dataset: Any = None,
    tracks: dict | None = None,
    min_frac: float = 0.25,
    **detect_kwargs: Any,
) -> dict:
    """Does each video show what its BouncingShapes caption says?

    Per caption object ``(color, shape, direction)`` (:func:`parse_caption`), it is *found*
    when an unused object of the video (track present in at least ``min_frac`` of the frames)
    has its color and shape. Scores per video and on average:

    * ``recall``: share of the caption's objects found;
    * ``exact``: 1 if the video's objects are exactly the caption's (as a multiset), else 0;
    * ``direction``: among found objects present in frames 0 and 1, share whose velocity just
      after frame 0 (the caption's; estimated from the first steps, a bounce unfolded:
      :func:`_first_velocity`) reads as the caption's direction word (8 compass sectors of
      45°, so a velocity within a few degrees of a sector edge can read either way: real clips
      score ~0.95-1). NaN when there is nothing to check.
    """
    trk = track_objects(detect_objects(video, dataset=dataset, **detect_kwargs)) if tracks is None else tracks
    B = trk["present"].shape[0]
    if len(captions) != B:
        raise ValueError(f"{len(captions)} captions for {B} videos")
    shape, color, real = _track_classes(trk, min_frac)
    shape, color, real = shape.cpu().tolist(), color.cpu().tolist(), real.cpu().tolist()
    cent = trk["centroid"].detach().cpu().double()
    recall, exact, direction = [], [], []
    for b, cap in enumerate(captions):
        want = parse_caption(cap, trk["shape_names"], trk["color_names"])
        have = [m for m in range(len(real[b])) if real[b][m]]
        free = list(have)
        found, dirs_ok = 0, []
        for s, c, word in want:
            m = next((m for m in free if shape[b][m] == s and color[b][m] == c), None)
            if m is None:
                continue
            free.remove(m)
            found += 1
            v0 = _first_velocity(cent[b, m])
            if word is not None and v0 is not None:
                dirs_ok.append(direction_word(float(v0[0]), float(v0[1])) == word)
        recall.append(found / len(want) if want else float("nan"))
        exact.append(float(sorted((shape[b][m], color[b][m]) for m in have) == sorted((s, c) for s, c, _ in want)))
        direction.append(sum(dirs_ok) / len(dirs_ok) if dirs_ok else float("nan"))
    per = {
        "recall": torch.tensor(recall),
        "exact": torch.tensor(exact),
        "direction": torch.tensor(direction),
    }
    return _aggregate(per)
