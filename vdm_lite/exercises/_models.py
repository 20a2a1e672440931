"""Small models the graders of notebooks 06-10 train, condition and guide (never a shipped
checkpoint, so each grader runs in seconds): a tiny differentiable video denoiser, and the exact
denoiser of a Gaussian "video"."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._grading import _gen, _randn


class _TinyDenoiser(torch.nn.Module):
    """A small differentiable video denoiser for the graders (milliseconds per call): a 1x3x3
    convolution and a tanh, scaled by the log-SNR, plus a class embedding whose row 0 is the null
    class ``-1``. ``parameterization`` says what it predicts, as for a U-Net."""

    def __init__(self, channels: int = 3, parameterization: str = "eps", num_classes: int = 0, seed: int = 0,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        g = _gen(seed)
        self.parameterization = parameterization
        self.weight = torch.nn.Parameter(_randn((channels, channels, 1, 3, 3), dtype, g) * 0.3)
        self.bias = torch.nn.Parameter(_randn((channels,), dtype, g) * 0.1)
        self.gain = torch.nn.Parameter(torch.tensor(0.5, dtype=dtype))
        self.classes = torch.nn.Parameter(_randn((num_classes + 1, channels), dtype, g) * 0.5) if num_classes else None

    def forward(self, z_t: torch.Tensor, logsnr: torch.Tensor, class_label: torch.Tensor | None = None, **cond) -> torch.Tensor:
        h = torch.tanh(F.conv3d(z_t, self.weight, self.bias, padding=(0, 1, 1)))
        lam = torch.as_tensor(logsnr, dtype=z_t.dtype, device=z_t.device).expand(z_t.shape[0])
        h = h * (1 + self.gain * torch.tanh(lam / 8)).reshape(-1, 1, 1, 1, 1)
        if self.classes is not None and class_label is not None:
            h = h + self.classes[class_label + 1].reshape(z_t.shape[0], -1, 1, 1, 1)
        return h

    def extra_repr(self) -> str:
        return f"parameterization={self.parameterization!r}"


def _gaussian_video(event_shape: tuple[int, ...], seed: int):
    """The exact denoiser (:class:`vdm_lite.toy.GaussianDenoiser`) of a Gaussian "video" of
    ``event_shape`` ``(C, T, H, W)`` with a random, well-conditioned covariance."""
    from ..toy import GaussianDenoiser

    g = _gen(seed)
    d = math.prod(event_shape)
    a = _randn((d, d), torch.float64, g)
    cov = a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
    return GaussianDenoiser(0.3 * _randn(event_shape, torch.float64, g), cov)
