"""Tasks built on conditional sampling, Section 3.1: what :mod:`vdm_lite.guidance` is for.

Each task lays out the known frames ``x^a`` and/or a low-resolution video and calls
:func:`vdm_lite.guidance.conditional_sample`, block by block when the output is longer than
the ``block_frames`` the model sees at once (default: the ``num_frames`` it was trained on):

* :func:`extend_video` -- video prediction and long videos, autoregressively: the first
  ``context_frames`` of each block are the last frames generated so far (``x^a``,
  :func:`~vdm_lite.guidance.prediction_mask`), the rest are new; replacement, plus
  reconstruction guidance, eq. (7), with ``method="reconstruction"`` (the default);
* :func:`interpolate_video` -- raise the frame rate by ``factor`` (the frame-skip cascade):
  the input frames are ``x^a`` at every ``factor``-th position
  (:func:`~vdm_lite.guidance.interpolation_mask`); replacement and eq. (7), as above;
* :func:`super_resolve` -- spatial super-resolution with a high-resolution unconditional
  model: no known frames, the low-resolution video guides through a downsampler, eq. (8);
* :func:`upsample_video` -- Figure 2: low resolution at frame skip ``k`` to high resolution
  at frame skip 1, block by block: eq. (8) on the low-resolution frames that fall in a block,
  replacement and eq. (7) on the high-resolution frames carried over from the previous one.

Guidance can only carry from ``x^a`` to ``x^b`` what the prediction ``x_hat^b`` depends on.
:func:`frame_influence`, the analysis tool of long-video extension, measures that dependence
frame by frame: how far in time a change in one frame reaches the prediction of another
(:func:`recolored_clips` makes its probe on the built-in world, :func:`far_share` sums it up).

Every task takes any denoiser ``model(z_t, logsnr, **cond)`` and passes its other keyword
arguments (``recon_weight``, ``replacement``, ``sampler``, ``steps``, ``guidance_weight``,
...) to :func:`~vdm_lite.guidance.conditional_sample`. Shapes: videos ``(B, C, T, H, W)``.
Notebooks ``09_reconstruction_guidance`` and ``10_super_resolution`` show them at work.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from .conventions import check_video
from .guidance import conditional_sample, interpolation_mask, prediction_mask
from .samplers import denoise
from .schedule import alpha_sigma
from .utils import make_generator, progress_enabled, randn_like

__all__ = [
    "extend_video",
    "interpolate_video",
    "super_resolve",
    "upsample_video",
    "frame_influence",
    "far_share",
    "recolored_clips",
]


# -- long videos, interpolation, super-resolution ----------------------------------------------


def _default_block(model: Any, block_frames: int | None) -> int:
    if block_frames is not None:
        return int(block_frames)
    while model is not None:  # a UNet3D, possibly inside denoiser wrappers
        frames = getattr(getattr(model, "config", None), "num_frames", None)
        if frames:
            return int(frames)
        model = getattr(model, "model", None)
    raise ValueError("give block_frames (the number of frames the model sees at once)")


def extend_video(
    model: Callable[..., torch.Tensor],
    video: torch.Tensor,
    total_frames: int,
    *,
    block_frames: int | None = None,
    context_frames: int | None = None,
    method: str = "reconstruction",
    clip_x: bool | Sequence[float] | None = True,
    generator: torch.Generator | int | None = None,
    progress: bool | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Extend ``video`` ``(B, C, T0, H, W)`` autoregressively to ``total_frames`` frames.

    Each block has ``block_frames`` frames (default: the model's training ``num_frames``); its
    first ``context_frames`` (default half a block) are the last frames generated so far, kept
    as ``x^a``, and the rest are new. Video prediction is one block of this. ``kwargs`` go to
    :func:`conditional_sample` (``method``, ``recon_weight``, ``sampler``, ``steps``, ...).
    Returns ``(B, C, total_frames, H, W)`` whose first ``T0`` frames are ``video``.
    """
    check_video(video, "video")
    T0 = video.shape[2]
    block = _default_block(model, block_frames)
    context = min(block // 2, T0) if context_frames is None else int(context_frames)
    if not 0 < context < block:
        raise ValueError(f"need 0 < context_frames < block_frames, got {context} and {block}")
    if context > T0:
        raise ValueError(f"context_frames = {context} but the video has only {T0} frames")
    if total_frames <= T0:
        raise ValueError(f"total_frames = {total_frames} leaves nothing to generate after {T0} frames")
    g = make_generator(generator)  # a seed, or the caller's generator as it is
    frames = [video]
    have = T0
    n_blocks = math.ceil((total_frames - T0) / (block - context))
    bar = tqdm(total=n_blocks, desc="extending", disable=not progress_enabled(progress))
    ctx = video[:, :, -context:]  # the known frames x^a of the next block
    while have < total_frames:
        new = min(block - context, total_frames - have)
        x_known = torch.cat([ctx, torch.zeros_like(ctx[:, :, :1]).expand(-1, -1, new, -1, -1)], 2)
        out = conditional_sample(model, x_known, prediction_mask(context + new, context), method=method, clip_x=clip_x,
                                 generator=g, progress=progress, **kwargs)  # fmt: skip
        frames.append(out[:, :, context:])
        ctx = out[:, :, -context:]
        have += new
        bar.update(1)
    bar.close()
    return torch.cat(frames, 2)


def interpolate_video(
    model: Callable[..., torch.Tensor],
    video: torch.Tensor,
    factor: int,
    *,
    block_frames: int | None = None,
    method: str = "reconstruction",
    clip_x: bool | Sequence[float] | None = True,
    generator: torch.Generator | int | None = None,
    progress: bool | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Raise the frame rate of ``video`` ``(B, C, T, H, W)`` by ``factor``: the output
    ``(B, C, (T - 1) * factor + 1, H, W)`` has the input at every ``factor``-th frame and
    generated frames between (the frame-skip cascade of Section 3.1).

    The output is generated in windows of at most ``block_frames`` frames that begin and end on
    a known frame; neighbouring windows share that frame. ``kwargs`` go to :func:`conditional_sample`.
    """
    check_video(video, "video")
    if factor < 2:
        raise ValueError(f"factor must be >= 2, got {factor}")
    T = video.shape[2]
    if T < 2:
        raise ValueError("interpolation needs at least two frames")
    block = _default_block(model, block_frames)
    per = (block - 1) // factor  # intervals per window
    if per < 1:
        raise ValueError(f"block_frames = {block} cannot hold two known frames {factor} apart")
    g = make_generator(generator)  # a seed, or the caller's generator as it is
    B, C, _, H, W = video.shape
    pieces = []
    starts = list(range(0, T - 1, per))
    for i in tqdm(starts, desc="interpolating", disable=not progress_enabled(progress)):
        known = video[:, :, i : min(i + per, T - 1) + 1]
        n = (known.shape[2] - 1) * factor + 1
        x_known = video.new_zeros(B, C, n, H, W)
        x_known[:, :, ::factor] = known
        out = conditional_sample(model, x_known, interpolation_mask(n, factor), method=method, clip_x=clip_x,
                                 generator=g, progress=progress, **kwargs)  # fmt: skip
        pieces.append(out if not pieces else out[:, :, 1:])
    return torch.cat(pieces, 2)


def super_resolve(
    model: Callable[..., torch.Tensor],
    low_res: torch.Tensor,
    size: int | tuple[int, int],
    *,
    downsampler: str | Callable = "bilinear",
    recon_weight: float = 1.0,
    clip_x: bool | Sequence[float] | None = True,
    **kwargs: Any,
) -> torch.Tensor:
    """Spatial super-resolution with a high-resolution model trained only to generate, eq. (8):
    ``low_res`` ``(B, C, T, h, w)`` to ``(B, C, T, H, W)`` with ``H, W = size`` multiples of
    ``h, w``. ``kwargs`` go to :func:`conditional_sample` (a conditional model's
    ``class_label=``/``text=`` among them)."""
    return conditional_sample(model, low_res=low_res, size=size, downsampler=downsampler, recon_weight=recon_weight,
                              clip_x=clip_x, **kwargs)  # fmt: skip


def upsample_video(
    model: Callable[..., torch.Tensor],
    low_res: torch.Tensor,
    size: int | tuple[int, int],
    factor: int,
    *,
    block_frames: int | None = None,
    context_frames: int | None = None,
    method: str = "reconstruction",
    downsampler: str | Callable = "bilinear",
    clip_x: bool | Sequence[float] | None = True,
    generator: torch.Generator | int | None = None,
    progress: bool | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Figure 2: a low-resolution video at frame skip ``factor`` ``(B, C, T, h, w)`` turned into
    a high-resolution video at frame skip 1, ``(B, C, (T - 1) * factor + 1, H, W)``, block by
    block: each block is guided by the low-resolution frames that fall in it (eq. (8), at every
    ``factor``-th frame) and by the last ``context_frames`` high-resolution frames of the
    previous block (replacement + eq. (7)). ``kwargs`` go to :func:`conditional_sample`.
    """
    check_video(low_res, "low_res")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    B, C, T, h, w = low_res.shape
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    if H % h or W % w:
        raise ValueError(f"the low-resolution size {h}x{w} does not divide the target size {H}x{W}")
    total = (T - 1) * factor + 1
    block = _default_block(model, block_frames)
    context = block // 2 if context_frames is None else int(context_frames)
    if not 0 < context < block:
        raise ValueError(f"need 0 < context_frames < block_frames, got {context} and {block}")
    g = make_generator(generator)  # a seed, or the caller's generator as it is
    low_full = low_res.new_zeros(B, C, total, h, w)
    low_full[:, :, ::factor] = low_res
    low_mask = torch.arange(total) % factor == 0
    out = None
    n_blocks = 1 + max(0, math.ceil((total - block) / (block - context)))
    bar = tqdm(total=n_blocks, desc="upsampling", disable=not progress_enabled(progress))
    while out is None or out.shape[2] < total:
        start = 0 if out is None else out.shape[2] - context
        stop = min(start + block, total)
        n = stop - start
        common = dict(low_res=low_full[:, :, start:stop], low_res_mask=low_mask[start:stop], downsampler=downsampler,
                      clip_x=clip_x, generator=g, progress=progress)  # fmt: skip
        if out is None:
            piece = conditional_sample(model, size=(H, W), **common, **kwargs)
            out = piece
        else:
            x_known = low_res.new_zeros(B, C, n, H, W)
            x_known[:, :, :context] = out[:, :, -context:]
            piece = conditional_sample(model, x_known, prediction_mask(n, context), method=method, **common, **kwargs)
            out = torch.cat([out, piece[:, :, context:]], 2)
        bar.update(1)
    bar.close()
    return out


# -- how far the denoiser looks in time ------------------------------------------------------


@torch.no_grad()
def frame_influence(
    model: Callable[..., torch.Tensor],
    x: torch.Tensor,
    x_alt: torch.Tensor,
    logsnr: float,
    frame: int,
    *,
    parameterization: str | None = None,
    generator: torch.Generator | int | None = 0,
    **cond: Any,
) -> torch.Tensor:
    """How much the prediction ``x_hat`` of frame ``frame`` follows a change made in one other frame.

    ``x`` and ``x_alt`` ``(B, C, T, H, W)`` are clean videos that differ in what is probed (the
    same motion in another color, say). With one noise draw ``eps``, ``z = alpha x + sigma eps``
    at log-SNR ``logsnr``; ``z_j`` is ``z`` with frame ``j`` taken from ``alpha x_alt + sigma eps``.
    Entry ``j`` of the result ``(T,)`` is the least-squares coefficient of the change in frame
    ``frame`` of the prediction on the change ``D = x_alt - x`` in that frame, over the batch:

        influence[j] = < x_hat(z_j) - x_hat(z), D >_frame / < D, D >_frame

    A denoiser that averages frame ``frame`` with its ``2k`` neighbours (static video) gives
    ``1 / (2k + 1)`` for ``|j - frame| <= k`` and 0 beyond. On clips whose content is the same in
    every frame (an object's color), the Bayes denoiser pools all frames alike, so influence
    that falls to 0 a few frames away means the model has not learned that the content persists,
    and reconstruction guidance, eq. (7), cannot carry it further either.
    """
    check_video(x, "x")
    if x_alt.shape != x.shape:
        raise ValueError(f"x_alt must have the shape of x {tuple(x.shape)}, got {tuple(x_alt.shape)}")
    T = x.shape[2]
    if not 0 <= frame < T:
        raise ValueError(f"frame must lie in [0, {T}), got {frame}")
    d = (x_alt - x)[:, :, frame]
    norm = (d * d).sum()
    if norm == 0:
        raise ValueError(f"x_alt equals x in frame {frame}: nothing to measure the response against")
    lam = torch.as_tensor(float(logsnr), device=x.device, dtype=x.dtype)
    alpha, sigma = alpha_sigma(lam)
    eps = randn_like(x, make_generator(generator))
    z, z_alt = alpha * x + sigma * eps, alpha * x_alt + sigma * eps

    def x_hat(z_):
        return denoise(model, z_, lam, parameterization, **cond)[0][:, :, frame]

    base = x_hat(z)
    out = torch.empty(T, dtype=torch.float64)
    for j in range(T):
        zj = z.clone()
        zj[:, :, j] = z_alt[:, :, j]
        out[j] = ((x_hat(zj) - base) * d).sum().double() / norm.double()
    return out


def far_share(influence: torch.Tensor, frame: int, min_distance: int = 4) -> float:
    """Share of the total ``influence`` ``(T,)`` of :func:`frame_influence` on ``frame`` that
    comes from frames ``min_distance`` or more away."""
    d = (torch.arange(influence.numel()) - frame).abs()
    return float(influence[d >= min_distance].sum() / influence.sum())


def recolored_clips(world: Any, n: int, seed: int = 7) -> dict[str, torch.Tensor]:
    """The probe of :func:`frame_influence` on the built-in world (``BouncingShapes``): ``n`` of
    its clips (``generate_batch`` with masks, seeded by ``seed``) plus ``"x_alt"`` ``(B, 3, T, H, W)``,
    the same clips with object 0 painted in another palette color (same motion)."""
    probe = world.generate_batch(n, torch.Generator().manual_seed(seed), return_masks=True)
    on_object = probe["masks"][:, :, 0][:, None]  # (B, 1, T, H, W)
    other = world.palette[(probe["colors"][:, 0] + 3) % len(world.palette)]  # (B, 3)
    return {**probe, "x_alt": (on_object * other[:, :, None, None, None]) * 2 - 1}
