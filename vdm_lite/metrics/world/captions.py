"""Captions of the built-in world: read them, and check a text-conditional sample against its own.

:func:`parse_caption` turns a BouncingShapes caption into its objects (shape, color, direction
word); :func:`caption_match` checks which of them a video shows, and whether they move the way
the caption says just after frame 0 (:func:`_first_velocity`).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch

from ...datasets._common import direction_word
from ...datasets.shapes import COLOR_NAMES, SHAPE_NAMES
from .detect import detect_objects
from .scores import _aggregate
from .track import _track_classes, track_objects

__all__ = ["parse_caption", "caption_match"]


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
