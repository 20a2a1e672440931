"""Detections linked into tracks across frames, and each track's majority color and shape.

:func:`track_objects` links the output of :func:`~vdm_lite.metrics.world.detect.detect_objects`
video by video (nearest predicted centroid, with a gate; a track survives a few missing
frames); :func:`_majority` and :func:`_track_classes` summarize a track's color and shape for
the scores and the condition checks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["track_objects"]


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

