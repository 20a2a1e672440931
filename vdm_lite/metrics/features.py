"""Batched feature extraction: any network, any device, no gradients, one progress bar.

Every metric of :mod:`vdm_lite.metrics` reduces a set of videos or frames to features
``(N, D)`` with a callable ``fn(batch) -> (b, D)``: the I3D of :mod:`vdm_lite.metrics.i3d`,
the InceptionV3 of :mod:`vdm_lite.metrics.inception`, or any network of your own.
:func:`extract_features` runs it over a tensor in batches (or over an iterable of batches,
e.g. videos sampled on the fly) and returns float64 features on the CPU.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..utils import progress_enabled

__all__ = ["extract_features", "module_device"]

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def _owner(fn: Callable) -> nn.Module | None:
    """The module behind ``fn``: the module itself or the owner of a bound method."""
    if isinstance(fn, nn.Module):
        return fn
    owner = getattr(fn, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


def module_device(fn: Callable) -> torch.device | None:
    """The device of the parameters (or buffers) of ``fn``'s module; None for plain functions
    or parameterless modules."""
    module = _owner(fn)
    if module is None:
        return None
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return None


def _batches(data: torch.Tensor | np.ndarray | Iterable[torch.Tensor], batch_size: int):
    """``(iterator over batches, number of batches or None)``."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        if data.ndim == 0 or data.shape[0] == 0:
            raise ValueError(f"no samples to extract features from (shape {tuple(data.shape)})")
        return iter(data.split(batch_size)), math.ceil(data.shape[0] / batch_size)
    total = len(data) if hasattr(data, "__len__") else None
    return iter(data), total


@torch.no_grad()
def extract_features(
    fn: FeatureFn,
    data: torch.Tensor | np.ndarray | Iterable[torch.Tensor],
    *,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    desc: str = "features",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run ``fn`` over ``data`` in batches, without gradients; return ``(N, D)`` float64 (CPU).

    Args:
        fn: ``fn(batch) -> (b, D)`` (trailing dimensions are flattened; a list or tuple of one
            tensor, as pytorch-fid's ``InceptionV3`` returns, is unwrapped). A module (or a
            bound method of one) is put in eval mode for the run and restored afterwards.
        data: a tensor ``(N, ...)`` split into batches of ``batch_size``, or an iterable of
            batches (then ``batch_size`` is ignored). Videos are ``(B, C, T, H, W)``.
            Floating-point batches are cast to float32; others are passed as they are.
        device: where the batches go; default: the device of ``fn``'s parameters, else left
            where they are.
        progress: a tqdm bar (``None``: on unless fast mode or ``VDM_LITE_PROGRESS=0``).
        desc: the bar's label.
        transform: applied to each batch on the device before ``fn`` (e.g. picking frames).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else module_device(fn)
    module = _owner(fn)
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    batches, total = _batches(data, batch_size)
    out: list[torch.Tensor] = []
    try:
        for batch in tqdm(batches, total=total, desc=desc, disable=not progress_enabled(progress), leave=False):
            batch = torch.as_tensor(batch)
            if device is not None:
                batch = batch.to(device)
            if batch.is_floating_point():
                batch = batch.float()
            if transform is not None:
                batch = transform(batch)
            feats = fn(batch)
            if isinstance(feats, (list, tuple)):
                if len(feats) != 1:
                    raise ValueError(f"fn returned {len(feats)} outputs; expected one tensor (b, D)")
                feats = feats[0]
            if feats.ndim < 2:
                raise ValueError(f"fn must return (b, D) features, got shape {tuple(feats.shape)}")
            out.append(feats.reshape(feats.shape[0], -1).to(device="cpu", dtype=torch.float64))
    finally:
        if module is not None:
            module.train(was_training)
    if not out:
        raise ValueError("no batches to extract features from")
    return torch.cat(out)
