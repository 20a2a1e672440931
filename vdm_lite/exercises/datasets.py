"""Graders of notebook 05, joint image-video batches (joint training, Section 3; no numbered
equation): ``draw_image_sources``, the draw of the appended images' clips and frames (graded by its
properties), and ``append_images``, the batch and its image mask, both as
:func:`vdm_lite.datasets.append_image_frames` makes them."""

from __future__ import annotations

import math
from typing import Callable

import torch

from ._grading import PASS, _call, _fail, _gen, _mismatch, _randn


def check_draw_image_sources(fn: Callable) -> None:
    """Grade ``draw_image_sources(B, T, K, generator) -> (src_clip, src_frame)`` by the properties of
    :func:`vdm_lite.datasets.append_image_frames`'s draw: ``(B, K)`` long, in range, never the clip
    itself, every other clip and every frame equally likely, and a pure function of the generator."""
    B, T, K = 4, 5, 3000
    case = f"B={B}, T={T}, K={K}"
    out = _call(fn, "draw_image_sources", {"B": B, "T": T, "K": K, "generator": _gen(9)})
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        _fail("draw_image_sources", case, [f"return (src_clip, src_frame), two tensors; got {type(out).__name__}"])
    for name, v in zip(("src_clip", "src_frame"), out):
        if not isinstance(v, torch.Tensor):
            _fail("draw_image_sources", case, [f"{name}: a torch.Tensor expected, got {type(v).__name__}"])
        if tuple(v.shape) != (B, K):
            _fail("draw_image_sources", case, [f"{name}: shape {(B, K)} expected, got {tuple(v.shape)}"])
        if v.dtype != torch.long:
            _fail("draw_image_sources", case, [f"{name}: dtype int64 (long) expected, got {v.dtype}: it indexes the batch"])
    src_clip, src_frame = out
    if src_clip.min() < 0 or src_clip.max() >= B or src_frame.min() < 0 or src_frame.max() >= T:
        _fail("draw_image_sources", case, [f"indices out of range: src_clip in [{int(src_clip.min())}, {int(src_clip.max())}] "
                                           f"(0..{B - 1} allowed), src_frame in [{int(src_frame.min())}, "
                                           f"{int(src_frame.max())}] (0..{T - 1} allowed)"])
    own = src_clip == torch.arange(B)[:, None]
    if own.any():
        b = int(own.nonzero()[0, 0])
        _fail("draw_image_sources", case, [f"clip {b} got an image frame from itself ({int(own.sum())} times in all): "
                                           "images must come from other videos"],
              ["draw an offset in 1..B-1 and take (b + offset) % B"])
    # equally likely: each other clip 1 / (B - 1), each frame 1 / T; 6 standard deviations of a binomial count
    for b in range(B):
        counts = torch.bincount(src_clip[b], minlength=B).double()[torch.arange(B) != b]
        p, n = 1 / (B - 1), K
        if ((counts - n * p).abs() > 6 * math.sqrt(n * p * (1 - p))).any():
            _fail("draw_image_sources", case, [f"clip {b}: the other clips are not equally likely; counts over {K} draws: "
                                               f"{counts.long().tolist()} (about {n * p:.0f} each expected)"])
    counts = torch.bincount(src_frame.flatten(), minlength=T).double()
    n, p = B * K, 1 / T
    if ((counts - n * p).abs() > 6 * math.sqrt(n * p * (1 - p))).any():
        _fail("draw_image_sources", case, [f"the frames are not equally likely: counts {counts.long().tolist()} over "
                                           f"{B * K} draws (about {n * p:.0f} each expected)"])
    again = _call(fn, "draw_image_sources", {"B": B, "T": T, "K": K, "generator": _gen(9)})
    if not (torch.equal(again[0], src_clip) and torch.equal(again[1], src_frame)):
        _fail("draw_image_sources", case, ["two calls with generators of the same seed gave different draws: "
                                           "pass generator= to every torch.randint / torch.rand"])
    small = _call(fn, "draw_image_sources", {"B": 2, "T": 1, "K": 0, "generator": _gen(9)})
    if tuple(small[0].shape) != (2, 0) or tuple(small[1].shape) != (2, 0):
        _fail("draw_image_sources", "B=2, T=1, K=0", [f"shapes (2, 0) expected for K = 0, got {tuple(small[0].shape)} "
                                                      f"and {tuple(small[1].shape)}"])
    print(f"{PASS} draw_image_sources draws like vdm_lite.datasets.append_image_frames: (B, K) long, never the clip "
          f"itself, other clips and frames equally likely ({B * K} draws), reproducible from the generator")


def check_append_images(fn: Callable) -> None:
    """Grade ``append_images(video, src_clip, src_frame) -> (video, image_mask)`` against
    :func:`vdm_lite.datasets.append_image_frames` (joint training, Section 3): the sources are the
    library's own draw (its ``image_source``); the clip part, the appended frames and the mask are
    checked apart."""
    from ..datasets import append_image_frames

    g = _gen(10)
    cases = [(4, 6, 3, torch.float32), (2, 5, 1, torch.float64), (3, 4, 0, torch.float32), (5, 1, 4, torch.float32)]
    for B, T, K, dtype in cases:
        video = _randn((B, 3, T, 4, 6), dtype, g)
        ref = append_image_frames({"video": video}, K, generator=g)
        src_clip, src_frame = ref["image_source"][..., 0], ref["image_source"][..., 1]
        case = f"video {(B, 3, T, 4, 6)} {str(dtype).removeprefix('torch.')}, K = {K}, src_clip {src_clip.tolist()}, " \
               f"src_frame {src_frame.tolist()}"
        out = _call(fn, "append_images", {"video": video, "src_clip": src_clip, "src_frame": src_frame})
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            _fail("append_images", case, [f"return (video, image_mask), two tensors; got {type(out).__name__}"])
        got, mask = out
        problems = {}
        p = _mismatch(got, ref["video"], "video (B, C, T + K, H, W)")
        if p and isinstance(got, torch.Tensor) and got.shape == ref["video"].shape and got.dtype == video.dtype:
            p = None
            if not torch.equal(got[:, :, :T], video):
                p = "video: the first T frames must be the clips themselves, unchanged"
            else:
                wrong = [(b, k) for b in range(B) for k in range(K) if not torch.equal(got[b, :, T + k], ref["video"][b, :, T + k])]
                if wrong:
                    b, k = wrong[0]
                    p = (f"video: appended frame k={k} of clip b={b} (frame {T + k}) should be frame "
                         f"src_frame[b, k]={int(src_frame[b, k])} of clip src_clip[b, k]={int(src_clip[b, k])} "
                         f"({len(wrong)} of {B * K} appended frames wrong)")
        problems["video"] = p
        problems["image_mask"] = _mismatch(mask, ref["image_mask"], "image_mask (B, T + K) bool, True on the K appended frames")
        if any(problems.values()):
            _fail("append_images", case, [p for p in problems.values() if p] +
                  [f"{k}: correct" for k, p in problems.items() if p is None])
    print(f"{PASS} append_images matches vdm_lite.datasets.append_image_frames on {len(cases)} batches "
          "(K = 0 and T = 1 included, float32 and float64); clips, appended frames and image_mask checked apart")
