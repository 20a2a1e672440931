"""Objects of the built-in world read from the pixels of one frame at a time.

:func:`detect_objects` finds every object of every frame of a video: an 8-connected component
of bright pixels (:func:`_components`, union-find on the foreground) with its soft rim, and
per object its centroid, area, bounding box, mean chroma (-> nearest palette color), fill
ratio and vertical asymmetry (-> shape: :func:`_classify_shape`, thresholds
:data:`TRIANGLE_ASYM`, :data:`SQUARE_FILL`). The units and the validation are in
:mod:`vdm_lite.metrics.world`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from ...conventions import check_video
from ...datasets.shapes import COLOR_NAMES, PALETTE, SHAPE_NAMES

__all__ = ["detect_objects", "SHAPE_FILL", "TRIANGLE_ASYM", "SQUARE_FILL"]


# Fill ratio (area / bounding-box area) of each shape of the world, axis-aligned, as drawn
# by :func:`vdm_lite.datasets.shapes.render_shapes`: square 1, circle pi/4, upward triangle 1/2.
SHAPE_FILL = {"circle": math.pi / 4, "square": 1.0, "triangle": 0.5}

_RING_FLOOR = 0.05  # rim pixels (below threshold, next to an object) brighter than this count


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

