"""Graders of notebook 07, joint image-video training (Section 3; no numbered equation):
``frame_positions``, the relative positions that skip the image frames, and
``masked_temporal_attention``, the temporal attention where image frames attend only to
themselves, against :mod:`vdm_lite.nn`."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ._grading import PASS, _call, _dt, _fail, _gen, _matches, _mismatch, _randn, _tol


def _joint_masks() -> list[torch.Tensor]:
    g = _gen(13)
    return [torch.tensor([[False] * 5 + [True] * 2]),
            torch.tensor([[False, True, False, False, True, False, False], [True, False, False, True, False, False, False]]),
            torch.rand(3, 6, generator=g) < 0.4,
            torch.ones(2, 3, dtype=torch.bool),
            torch.zeros(1, 4, dtype=torch.bool),
            torch.zeros(1, 1, dtype=torch.bool)]


def check_frame_positions(fn: Callable) -> None:
    """Grade ``frame_positions(image_mask) -> positions`` ``(B, T)`` long against
    :func:`vdm_lite.nn.frame_positions` (joint training, Section 3): every frame's position is the
    number of video frames before it; the first wrong frame is named with its kind."""
    from ..nn import frame_positions

    masks = _joint_masks()
    for mask in masks:
        case = f"image_mask {mask.int().tolist()}"
        got = _call(fn, "frame_positions", {"image_mask": mask.clone()})
        ref = frame_positions(mask)
        p = _mismatch(got, ref, "the positions (B, T)")
        if p:
            hints = ["positions = the number of video frames (~image_mask) before each frame: a cumulative sum "
                     "(torch.cumsum) of the video frames, minus the frame's own count"]
            if (isinstance(got, torch.Tensor) and got.shape == ref.shape and not got.is_floating_point()
                    and got.dtype != torch.bool and bool((got != ref.to(got.dtype)).any())):
                b, i = (got != ref.to(got.dtype)).nonzero()[0].tolist()
                kind = "image" if mask[b, i] else "video"
                p = (f"example b={b}: frame i={i} ({kind}) should have position {int(ref[b, i])}, the number of video frames "
                     f"before it, got {int(got[b, i])}; row expected {ref[b].tolist()}, got {got[b].tolist()}")
                if got.dtype != torch.long:
                    p += f" (and the dtype should be int64, not {_dt(got.dtype)})"
                if torch.equal(got.long(), torch.arange(mask.shape[1]).expand_as(ref)):
                    hints.insert(0, "those are the frame indices: the images must not count, so the video frames after "
                                    "an image keep their distances to the video frames before it")
            _fail("frame_positions", case, [p], hints)
    print(f"{PASS} frame_positions matches vdm_lite.nn.frame_positions on {len(masks)} image masks "
          "(appended, interleaved, leading and random images; all images; all video; T = 1)")


def check_masked_temporal_attention(fn: Callable) -> None:
    """Grade ``masked_temporal_attention(q, k, v, bias, image_mask)`` ``(B, heads, T, d)`` against
    :class:`vdm_lite.nn.attention.TemporalAttention`'s attention (its ``attn_bias``, the relative
    position bias with ``-inf`` where :func:`~vdm_lite.nn.temporal_attention_mask` forbids, in
    ``scaled_dot_product_attention``; joint training, Section 3): image frames are checked first
    (their output must be their own ``v``), then video frames."""
    from ..nn import frame_positions, temporal_attention_mask
    from ..nn.attention import TemporalAttention

    g = _gen(14)
    sizes = {0: (2, 7, torch.float32), 1: (2, 3, torch.float64), 2: (1, 5, torch.float32), 3: (2, 4, torch.float64),
             4: (1, 4, torch.float32), 5: (2, 8, torch.float64)}
    masks = _joint_masks()
    for n, mask in enumerate(masks):
        heads, d, dtype = sizes[n]
        B, T = mask.shape
        q, k, v = (_randn((B, heads, T, d), dtype, g) for _ in range(3))
        attn = TemporalAttention(heads * d, head_dim=d, groups=1).to(dtype)
        with torch.no_grad():
            attn.rel_bias.table.copy_(_randn(tuple(attn.rel_bias.table.shape), dtype, g))
            bias = attn.rel_bias(frame_positions(mask))  # (B, heads, T, T)
            ref = F.scaled_dot_product_attention(q, k, v, attn_mask=attn.attn_bias(B, T, mask, q.device, dtype))
        case = f"q, k, v {(B, heads, T, d)} {_dt(dtype)}, image_mask {mask.int().tolist()}"
        got = _call(fn, "masked_temporal_attention", {"q": q, "k": k, "v": v, "bias": bias, "image_mask": mask.clone()})
        p = _mismatch(got, ref, "the output (B, heads, T, d)")
        if not p:
            continue
        hints = []
        if isinstance(got, torch.Tensor) and got.shape == ref.shape and got.dtype == ref.dtype:
            r, a = _tol(dtype)
            bad_images = [(b, i) for b, i in mask.nonzero().tolist() if not torch.allclose(got[b, :, i], v[b, :, i], rtol=r, atol=a)]
            if bad_images:
                b, i = bad_images[0]
                p = (f"image frame i={i} of example b={b}: its output should be v[b, :, i] itself (an image frame attends "
                     f"only to itself: its attention row is the identity), got something else ({len(bad_images)} image "
                     "frames wrong in all)")
            else:
                bad = [(b, i) for b, i in (~mask).nonzero().tolist() if not torch.allclose(got[b, :, i], ref[b, :, i], rtol=r, atol=a)]
                if bad:
                    b, i = bad[0]
                    p = (f"video frame i={i} of example b={b}: its output differs from attention over the video frames "
                         f"only ({len(bad)} video frames wrong in all; the image frames are right)")
            allowed = temporal_attention_mask(mask)[:, None]
            logits = q @ k.transpose(-1, -2) / math.sqrt(d)
            alternatives = {
                "no mask": (logits + bias).softmax(-1) @ v,
                "no scale": (q @ k.transpose(-1, -2) + bias).masked_fill(~allowed, float("-inf")).softmax(-1) @ v,
                "no bias": logits.masked_fill(~allowed, float("-inf")).softmax(-1) @ v,
                "after softmax": ((logits + bias).softmax(-1) * allowed) @ v,
            }
            messages = {
                "no mask": "frames attend across the video/image boundary: mask the logits with -inf where "
                           "temporal_attention_mask(image_mask) is False, before the softmax",
                "no scale": "the logits are q k^T / sqrt(d) (+ bias): the 1 / sqrt(d) is missing",
                "no bias": "add the relative position bias to the logits: q k^T / sqrt(d) + bias",
                "after softmax": "mask before the softmax (-inf logits): zeroing weights after it leaves rows that do not "
                                 "sum to 1",
            }
            hints += [messages[name] for name, alt in alternatives.items() if _matches(got, alt)]
        _fail("masked_temporal_attention", case, [p], hints or [
            "softmax over the keys of q k^T / sqrt(d) + bias, with -inf where temporal_attention_mask(image_mask) "
            "is False (broadcast (B, 1, T, T) over the heads), times v"])
    print(f"{PASS} masked_temporal_attention matches TemporalAttention's masked attention with its relative bias on "
          f"{len(masks)} image masks (float32 and float64, T = 1 included); image frames return their own v")
