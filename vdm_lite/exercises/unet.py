"""Graders of notebook 04, the factorized space-time U-Net (Section 3, Figure 1; no numbered
equation): ``conv1x3x3_video``, the 1x3x3 convolution over every frame, and
``temporal_attention_mask``, which frames of a joint image-video batch may attend to which."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ._grading import PASS, _call, _fail, _gen, _matches, _mismatch, _randn


def check_temporal_attention_mask(fn: Callable) -> None:
    """Grade ``temporal_attention_mask(image_mask) -> allowed`` ``(B, T, T)`` bool against
    :func:`vdm_lite.nn.temporal_attention_mask` (joint training, Section 3); the first wrong entry
    is named with the kinds of its query and key frames."""
    from ..nn import temporal_attention_mask

    g = _gen(7)
    masks = [torch.tensor([[False] * 6 + [True] * 3]),
             torch.tensor([[False, True, False, False, True, False], [False] * 6]),
             torch.rand(4, 7, generator=g) < 0.4,
             torch.ones(2, 3, dtype=torch.bool),
             torch.zeros(1, 1, dtype=torch.bool),
             torch.ones(1, 1, dtype=torch.bool)]
    for mask in masks:
        case = f"image_mask {mask.int().tolist()}"
        got = _call(fn, "temporal_attention_mask", {"image_mask": mask.clone()})
        ref = temporal_attention_mask(mask)
        if isinstance(got, torch.Tensor) and got.shape == ref.shape and got.dtype != torch.bool:
            _fail("temporal_attention_mask", case, [f"dtype torch.bool expected, got {got.dtype}: combine boolean "
                                                     "tensors with & and | (True = may attend)"])
        p = _mismatch(got, ref, "the mask allowed[b, i, j]")
        if p:
            bad = (got != ref).nonzero()[0].tolist() if "entries differ" in p else None
            if bad:
                b, i, j = bad
                kind = lambda k: "image" if mask[b, k] else "video"  # noqa: E731
                verb = "may" if ref[b, i, j] else "may not"
                p = (f"example b={b}: query frame i={i} ({kind(i)}) {verb} attend to key frame j={j} ({kind(j)}), "
                     f"but your mask says {bool(got[b, i, j])}; row {i} expected {ref[b, i].int().tolist()}, "
                     f"got {got[b, i].int().tolist()} ({int((got != ref).sum())} wrong entries in all)")
            _fail("temporal_attention_mask", case, [p],
                  ["allowed[b, i, j] = (i == j) or (frames i and j are both video frames); (B, T, T), True = may attend"])
    print(f"{PASS} temporal_attention_mask matches vdm_lite.nn.temporal_attention_mask on {len(masks)} image masks "
          "(appended, interleaved and random images; all video; all images; T = 1)")


def check_conv1x3x3_video(fn: Callable) -> None:
    """Grade ``conv1x3x3_video(x, weight, bias)`` against a 1x3x3 ``torch.nn.functional.conv3d``
    (the U-Net's 1x3x3 convolution, Section 3): ``x`` ``(B, C_in, T, H, W)``, ``weight``
    ``(C_out, C_in, 3, 3)``, ``bias`` ``(C_out,)`` -> ``(B, C_out, T, H, W)``."""
    g = _gen(8)
    cases = [((2, 4, 5, 8, 8), 6, torch.float32), ((1, 3, 1, 6, 10), 2, torch.float32), ((3, 2, 4, 5, 7), 5, torch.float64)]
    for shape, c_out, dtype in cases:
        x = _randn(shape, dtype, g)
        weight, bias = _randn((c_out, shape[1], 3, 3), dtype, g), _randn((c_out,), dtype, g)
        case = f"x {tuple(shape)} {str(dtype).removeprefix('torch.')}, weight {tuple(weight.shape)}"
        got = _call(fn, "conv1x3x3_video", {"x": x, "weight": weight, "bias": bias})
        ref = F.conv3d(x, weight[:, :, None], bias, padding=(0, 1, 1))
        p = _mismatch(got, ref, "the output (B, C_out, T, H, W)")
        if p:
            hints = []
            b, c, t, h, w = shape
            if isinstance(got, torch.Tensor) and got.shape == (b, t, c_out, h, w):
                hints.append("unfold back to (B, C_out, T, H, W): .view(B, T, C_out, H, W).transpose(1, 2)")
            elif isinstance(got, torch.Tensor) and got.shape == ref.shape:
                wrong = ((got - ref).abs().amax(dim=(0, 1, 3, 4)) > 1e-4).nonzero().flatten().tolist()
                p += f"; output frames {wrong} of {t} are wrong"
                garbled = F.conv2d(x.reshape(b * t, c, h, w), weight, bias, padding=1).reshape(b, c_out, t, h, w)
                if _matches(got, garbled):
                    hints.append("a plain reshape of (B, C, T, H, W) to (B*T, C, H, W) mixes channels and frames: "
                                 "x.transpose(1, 2) first (and transpose back after the convolution)")
            _fail("conv1x3x3_video", case, [p], hints or ["fold the frames into the batch, (B*T, C, H, W), run "
                                                          "F.conv2d(..., padding=1), unfold to (B, C_out, T, H, W)"])
    print(f"{PASS} conv1x3x3_video matches a 1x3x3 conv3d on {len(cases)} inputs (T = 1 and non-square frames included)")
