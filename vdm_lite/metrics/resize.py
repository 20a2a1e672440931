"""The resize in front of I3D for FVD: today's PyTorch one, or the original TensorFlow one.

FVD resizes every frame to 224 x 224 before I3D. :func:`vdm_lite.metrics.i3d.preprocess_i3d`
uses ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``: half-pixel
centers, source coordinate ``(i + 0.5) * in / out - 0.5``. The original FVD code
(``google-research/frechet_video_distance``, ``preprocess``) calls TF1's
``tf.image.resize_bilinear(frames, (224, 224))`` with its defaults ``align_corners=False`` and
``half_pixel_centers=False``: source coordinate ``i * in / out``, no half-pixel shift, the
last pixel repeated past the edge. FVDs computed with the TF code used that one; from 64 x 64 to 224 x 224 the two
sample the input at points ``0.5 - 0.5 * 64 / 224 = 0.36`` input pixels apart (how much that
moves FVD has not been measured here). :func:`resize_bilinear_tf1` is the TF1 kernel
(exact: the same interpolation weights), and :class:`ResizedDetector` puts either resize in
front of an I3D (or any detector that resizes only when its input is not already 224 x 224).

Both take values in [-1, 1]; the TF code resizes in [0, 255] and scales afterwards, which is
the same (the resize is linear with weights that sum to one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RESIZES", "resize_bilinear_tf1", "resize_frames", "ResizedDetector"]

RESIZES = ("torch", "tf1")


def _tf1_axis(n_in: int, n_out: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices ``lo``, ``hi`` and weight of ``hi`` along one axis: source ``i * n_in / n_out``."""
    scale = n_in / n_out
    src = torch.arange(n_out, dtype=torch.float64, device=device) * scale
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    return lo, hi, (src - lo.double()).float()


def resize_bilinear_tf1(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """TF1's ``tf.image.resize_bilinear(images, size)`` (``align_corners=False``,
    ``half_pixel_centers=False``) on ``(..., H, W)`` tensors: output pixel ``(i, j)`` reads
    the input at ``(i * H / h_out, j * W / w_out)``, interpolating between the two neighbors
    along each axis (the upper one clamped at the last row/column)."""
    h_out, w_out = (size, size) if isinstance(size, int) else size
    h, w = images.shape[-2:]
    x = images if images.is_floating_point() else images.float()
    lo, hi, wy = _tf1_axis(h, h_out, x.device)
    rows = x.index_select(-2, lo) * (1 - wy)[:, None] + x.index_select(-2, hi) * wy[:, None]
    lo, hi, wx = _tf1_axis(w, w_out, x.device)
    return rows.index_select(-1, lo) * (1 - wx) + rows.index_select(-1, hi) * wx


def resize_frames(videos: torch.Tensor, size: int, mode: str = "torch") -> torch.Tensor:
    """Resize every frame of ``(B, C, T, H, W)`` to ``size x size``: ``"torch"``
    (``interpolate``, bilinear, ``align_corners=False``, as :func:`~vdm_lite.metrics.i3d.preprocess_i3d`)
    or ``"tf1"`` (:func:`resize_bilinear_tf1`, as the original FVD code)."""
    if mode not in RESIZES:
        raise ValueError(f"resize must be one of {RESIZES}, got {mode!r}")
    if videos.ndim != 5:
        raise ValueError(f"videos must be (B, C, T, H, W), got shape {tuple(videos.shape)}")
    b, c, t, h, w = videos.shape
    if (h, w) == (size, size):
        return videos
    if mode == "tf1":
        return resize_bilinear_tf1(videos.float(), size)
    frames = videos.float().transpose(1, 2).reshape(b * t, c, h, w)
    frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    return frames.reshape(b, t, c, size, size).transpose(1, 2)


class ResizedDetector(nn.Module):
    """``detector(resize_frames(videos.clamp(-1, 1), size, mode))``: an I3D (or TorchScript
    I3D) fed frames already at ``size``, so its own resize does nothing."""

    def __init__(self, detector: nn.Module, mode: str = "tf1", size: int = 224):
        super().__init__()
        if mode not in RESIZES:
            raise ValueError(f"resize must be one of {RESIZES}, got {mode!r}")
        self.detector, self.mode, self.size = detector, mode, size

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.detector(resize_frames(videos.float().clamp(-1, 1), self.size, self.mode))
