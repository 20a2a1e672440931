"""How well videos keep the world's rules, from their detections and tracks.

* :func:`world_scores` -- per video and averaged: object-count stability, color and shape
  consistency of each track, acceleration away from walls (:func:`_acceleration`), and on
  request the scores below and :func:`~vdm_lite.metrics.world.captions.caption_match`;
* :func:`boundary_continuity` -- the seams of a video built block by block (block starts:
  :func:`extension_boundaries`), jumps across them against the typical frame-to-frame change;
* :func:`class_match` -- does a class-conditional sample contain an object of its class?
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F

from .detect import detect_objects
from .track import _majority, _track_classes, track_objects

__all__ = ["world_scores", "boundary_continuity", "extension_boundaries", "class_match"]


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
        from .captions import caption_match  # here, not on top: captions.py uses this module's _aggregate

        cp = caption_match(video, captions, tracks=trk)
        extra.update({f"caption_{k}": v for k, v in cp.items() if k != "per_video"})
        out_per.update({f"caption_{k}": v for k, v in cp["per_video"].items()})
    out = _aggregate(per)
    out.update(extra)
    out["per_video"] = out_per
    return out


def extension_boundaries(first_frames: int, total_frames: int, block_frames: int, context_frames: int) -> list[int]:
    """The first frame of every generated block of :func:`vdm_lite.tasks.extend_video`
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

