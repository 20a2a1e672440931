"""The conventions of docs/design.md that more than one module needs, defined once.

* **The null condition** of classifier-free guidance, eq. (6): class label :data:`NULL_CLASS`
  (``-1``) and caption :data:`NULL_TEXT` (``""``), values of the same fields as real
  conditions, so a batch can drop its condition per example
  (:func:`vdm_lite.samplers.null_condition` writes them, :mod:`vdm_lite.nn.conditioning`
  reads them).
* **Parameterizations** of a denoiser's output, eq. (2): :data:`PARAMETERIZATIONS`; a
  denoiser ``model(z_t, logsnr, **cond)`` declares its own once, as a ``parameterization``
  attribute or a sampler's ``parameterization=`` argument (:func:`resolve_parameterization`).
* **Videos** are ``(B, C, T, H, W)`` tensors (:func:`check_video`).

It imports nothing else of the package, so every module can import it.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "NULL_CLASS",
    "NULL_TEXT",
    "PARAMETERIZATIONS",
    "check_parameterization",
    "resolve_parameterization",
    "check_video",
]

NULL_CLASS = -1  # the null class label: ``class_label = -1`` means "no class"
NULL_TEXT = ""  # the null caption: ``text = ""`` means "no caption"

PARAMETERIZATIONS = ("eps", "v", "x")  # what a denoiser predicts: the noise, v = alpha eps - sigma x, or x


def check_parameterization(name: str) -> str:
    """Return ``name`` if it is one of ``"eps"``, ``"v"``, ``"x"``; else raise ``ValueError``."""
    if name not in PARAMETERIZATIONS:
        raise ValueError(f"unknown parameterization {name!r}; choose one of {PARAMETERIZATIONS}")
    return name


def resolve_parameterization(model: Any, parameterization: str | None = None) -> str:
    """The parameterization of the denoiser ``model``: ``parameterization`` if given, else
    ``model.parameterization``; ``ValueError`` if neither says, or if it is not one of
    :data:`PARAMETERIZATIONS`."""
    if parameterization is None:
        parameterization = getattr(model, "parameterization", None)
    if parameterization is None:
        raise ValueError(
            "the denoiser's parameterization is unknown: declare the model's parameterization as a "
            "`parameterization` attribute or pass parameterization='eps' | 'v' | 'x'"
        )
    return check_parameterization(parameterization)


def check_video(video: Any, what: str = "video", channels: int | None = None) -> None:
    """Raise ``ValueError`` unless ``video`` is a 5-D tensor ``(B, C, T, H, W)`` (with
    ``C == channels`` when given); ``what`` names the argument in the message."""
    ok = isinstance(video, torch.Tensor) and video.ndim == 5 and (channels is None or video.shape[1] == channels)
    if not ok:
        c = "C" if channels is None else channels
        got = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise ValueError(f"{what} must be a video tensor (B, {c}, T, H, W), got {got}")
