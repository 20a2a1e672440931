"""Conditional sampling from an *unconditionally* trained model, Section 3.1.

Split a video into known frames ``x^a`` and frames to generate ``x^b``. Two ways to sample
``x^b ~ p(x^b | x^a)`` with a model of ``p(x)``:

* **Replacement** (Song et al. 2021): run the sampler on the whole clip and, after every
  update, overwrite ``z_s^a`` with a sample of ``q(z_s^a | x^a)`` (``replacement="forward"``)
  or of ``q(z_s^a | x^a, z_t^a)`` (``replacement="posterior"``, eq. (3) with ``x = x^a``).
  ``z^b`` then follows ``E[x^b | z_t]``, which only sees ``x^a`` through its noisy copy, so
  the generated frames are often incoherent with the known ones.
* **Reconstruction guidance**, eq. (7): replacement plus a corrected prediction of ``x^b``

      x~^b(z_t) = x_hat^b(z_t) - (w_r alpha_t / 2) grad_{z_t^b} || x^a - x_hat^a(z_t) ||^2,

  a step toward ``E[x^b | z_t, x^a]`` under ``q(x^a | z_t) ~ N(x_hat^a, sigma_t^2/alpha_t^2 I)``
  (``w_r = 1`` is that approximation taken literally; the paper uses ``w_r > 1``).
* **Spatial super-resolution**, eq. (8): the same gradient, through a differentiable
  downsampler ``d``, of ``|| x^a - d(x_hat(z_t)) ||^2`` where ``x^a`` is a low-resolution
  video; the gradient is taken with respect to all of ``z_t``.

Both terms can act at once (Figure 2): high-resolution frames carried over from the previous
block (replaced and guided) and low-resolution frames at a larger frame skip (guided).

The driver, :func:`conditional_sample`, takes any ``known_mask`` and any low-resolution
frames, and uses any denoiser ``model(z_t, logsnr, **cond)`` (a U-Net, or an analytic one
from :mod:`vdm_lite.toy`), every sampler of :mod:`vdm_lite.samplers` and classifier-free
guidance (``guidance_weight`` with a conditional model). The tasks built on it -- video
prediction and long videos, frame interpolation, spatial super-resolution, Figure 2's
cascade -- are in :mod:`vdm_lite.tasks`.

Guidance can only carry from ``x^a`` to ``x^b`` what ``x_hat^b`` depends on: eq. (7)'s
gradient flows through the denoiser (:func:`vdm_lite.tasks.frame_influence` measures that
dependence frame by frame).

Shapes: videos ``(B, C, T, H, W)``; ``known_mask`` ``(T,)`` or ``(B, T)`` bool, True on ``x^a``.
Notebooks ``09_reconstruction_guidance`` and ``10_super_resolution`` show them at work.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from .conventions import check_video, resolve_parameterization
from .diffusion import broadcast_to, convert, posterior
from .samplers import ClassifierFreeGuidance, sample
from .schedule import alpha_sigma
from .utils import make_generator, randn_like

__all__ = [
    "METHODS",
    "REPLACEMENTS",
    "DOWNSAMPLERS",
    "prediction_mask",
    "interpolation_mask",
    "downsample_video",
    "reconstruction_guidance",
    "superres_guidance",
    "cascade_guidance",
    "ReconstructionGuidance",
    "Replacement",
    "conditional_sample",
]

METHODS = ("replacement", "reconstruction")
REPLACEMENTS = ("forward", "posterior")
DOWNSAMPLERS = ("bilinear", "area")


# -- masks and the downsampler ---------------------------------------------------------------


def prediction_mask(frames: int, context: int) -> torch.Tensor:
    """``(frames,)`` bool: the first ``context`` frames are known (video prediction)."""
    if not 0 < context < frames:
        raise ValueError(f"need 0 < context < frames for prediction, got context={context}, frames={frames}")
    return torch.arange(frames) < context


def interpolation_mask(frames: int, every: int) -> torch.Tensor:
    """``(frames,)`` bool: every ``every``-th frame is known, starting with the first."""
    if every < 2 or frames < 2:
        raise ValueError(f"interpolation needs every >= 2 and frames >= 2, got every={every}, frames={frames}")
    return torch.arange(frames) % every == 0


def downsample_video(video: torch.Tensor, size: int | tuple[int, int], mode: str | Callable = "bilinear") -> torch.Tensor:
    """Differentiable spatial downsampling of ``(B, C, T, H, W)`` to ``(B, C, T, h, w)``, frame
    by frame: ``"area"`` (box average) or ``"bilinear"`` (anti-aliased, so a 4x reduction does
    not just pick pixels). ``mode`` may also be a callable ``(B, C, T, H, W) -> (B, C, T, h, w)``.
    """
    if callable(mode):
        return mode(video)
    if mode not in DOWNSAMPLERS:
        raise ValueError(f"unknown downsampler {mode!r}; choose one of {DOWNSAMPLERS} or pass a callable")
    check_video(video)
    B, C, T, H, W = video.shape
    size = (size, size) if isinstance(size, int) else tuple(size)
    frames = video.transpose(1, 2).reshape(B * T, C, H, W)
    if mode == "area":
        out = F.interpolate(frames, size=size, mode="area")
    else:
        out = F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out.reshape(B, T, C, *size).transpose(1, 2)


def _frame_mask(mask: torch.Tensor | Sequence[bool] | None, B: int, T: int, what: str) -> torch.Tensor | None:
    """Validate a ``(T,)`` or ``(B, T)`` frame mask and return it as ``(B, T)`` bool."""
    if mask is None:
        return None
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError(f"{what} must be boolean (True where a frame is given)")
        mask = mask.bool()
    if mask.ndim == 1:
        if mask.shape[0] != T:
            raise ValueError(f"{what} has {mask.shape[0]} frames, the video has T = {T}")
        mask = mask.expand(B, T)
    elif mask.ndim == 2:
        if tuple(mask.shape) != (B, T):
            raise ValueError(f"{what} must be (T,) = ({T},) or (B, T) = ({B}, {T}), got {tuple(mask.shape)}")
    else:
        raise ValueError(f"{what} must be (T,) or (B, T), got shape {tuple(mask.shape)}")
    return mask


def _frames(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A ``(B, T)`` frame mask as ``(B, 1, T, 1, 1)`` in ``like``'s dtype and device."""
    return mask[:, None, :, None, None].to(device=like.device, dtype=like.dtype)


def _split_cond(cond: dict[str, Any], B: int, start: int, stop: int) -> dict[str, Any]:
    out = {}
    for k, v in cond.items():
        if isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape[0] == B:
            out[k] = v[start:stop]
        elif isinstance(v, (list, tuple)) and len(v) == B:
            out[k] = v[start:stop]
        else:
            out[k] = v
    return out


# -- eq. (7) and (8): the guided prediction ---------------------------------------------------
# ``model(z_t, logsnr, **cond)`` is any denoiser (its ``parameterization`` attribute, or the
# argument); ``logsnr`` is ``(B,)``; masks are 0/1 tensors that broadcast against the video,
# e.g. ``(B, 1, T, 1, 1)`` (1 on the frames x^a). The result is detached and in ``x`` space.


def reconstruction_guidance(
    model: Callable[..., torch.Tensor],
    z_t: torch.Tensor,
    logsnr: torch.Tensor,
    x_a: torch.Tensor,
    known_mask: torch.Tensor,
    weight: float = 1.0,
    *,
    parameterization: str | None = None,
    **cond: Any,
) -> torch.Tensor:
    """Reconstruction guidance, eq. (7): the prediction of the unknown frames ``x^b`` corrected
    toward the known frames ``x^a`` (``x_a`` where ``known_mask`` is 1; elsewhere ignored),

        x~^b(z_t) = x_hat^b(z_t) - (w_r alpha_t / 2) grad_{z_t^b} || x^a - x_hat^a(z_t) ||^2

    Returns ``x~``, detached: ``x~^b`` on the unknown frames and ``x_hat^a`` on the known ones.
    """
    parameterization = resolve_parameterization(model, parameterization)  # the model's own, or the argument
    with torch.enable_grad():
        z = z_t.detach().requires_grad_(True)  # z_t, as a leaf to differentiate at
        x_hat = convert(model(z, logsnr, **cond), z, logsnr, parameterization, "x")  # x_hat(z_t)
        loss = ((x_a - x_hat) * known_mask).square().sum()  # || x^a - x_hat^a(z_t) ||^2
        (grad,) = torch.autograd.grad(loss, z)  # grad_{z_t} ...
    grad = grad * (1 - known_mask)  # ... with respect to z_t^b only
    alpha, _ = alpha_sigma(broadcast_to(logsnr, z_t))  # alpha_t
    return x_hat.detach() - 0.5 * weight * alpha * grad  # x_hat - (w_r alpha_t / 2) grad


def superres_guidance(
    model: Callable[..., torch.Tensor],
    z_t: torch.Tensor,
    logsnr: torch.Tensor,
    x_a: torch.Tensor,
    weight: float = 1.0,
    *,
    low_res_mask: torch.Tensor | float = 1.0,
    downsampler: str | Callable = "bilinear",
    parameterization: str | None = None,
    **cond: Any,
) -> torch.Tensor:
    """Spatial super-resolution guidance, eq. (8): the high-resolution prediction corrected
    toward the low-resolution video ``x_a`` ``(B, C, T, h, w)`` (on the frames where
    ``low_res_mask`` is 1), through a differentiable downsampler ``d`` (:func:`downsample_video`),

        x~(z_t) = x_hat(z_t) - (w_r alpha_t / 2) grad_{z_t} || x^a - d(x_hat(z_t)) ||^2

    The gradient acts on all of ``z_t``. Returns ``x~``, detached.
    """
    parameterization = resolve_parameterization(model, parameterization)  # the model's own, or the argument
    with torch.enable_grad():
        z = z_t.detach().requires_grad_(True)  # z_t, as a leaf to differentiate at
        x_hat = convert(model(z, logsnr, **cond), z, logsnr, parameterization, "x")  # x_hat(z_t)
        x_hat_a = downsample_video(x_hat, x_a.shape[-2:], downsampler)  # x_hat^a = d(x_hat(z_t)), low resolution
        loss = ((x_a - x_hat_a) * low_res_mask).square().sum()  # || x^a - d(x_hat(z_t)) ||^2
        (grad,) = torch.autograd.grad(loss, z)  # grad_{z_t}
    alpha, _ = alpha_sigma(broadcast_to(logsnr, z_t))  # alpha_t
    return x_hat.detach() - 0.5 * weight * alpha * grad  # x_hat - (w_r alpha_t / 2) grad


def cascade_guidance(
    model: Callable[..., torch.Tensor],
    z_t: torch.Tensor,
    logsnr: torch.Tensor,
    x_a: torch.Tensor,
    known_mask: torch.Tensor,
    low_res: torch.Tensor,
    weight: float = 1.0,
    *,
    low_res_mask: torch.Tensor | float = 1.0,
    downsampler: str | Callable = "bilinear",
    parameterization: str | None = None,
    **cond: Any,
) -> torch.Tensor:
    """Eq. (7) and eq. (8) at once (Figure 2: extend and super-resolve together): one gradient of
    the sum of both reconstruction errors, taken with respect to ``z_t^b``,

        x~(z_t) = x_hat - (w_r alpha_t / 2) grad_{z_t^b} ( || x^a - x_hat^a ||^2 + || y - d(x_hat) ||^2 )

    with ``x_a`` high-resolution frames where ``known_mask`` is 1 and ``y = low_res`` where
    ``low_res_mask`` is 1. Returns ``x~``, detached.
    """
    parameterization = resolve_parameterization(model, parameterization)  # the model's own, or the argument
    with torch.enable_grad():
        z = z_t.detach().requires_grad_(True)
        x_hat = convert(model(z, logsnr, **cond), z, logsnr, parameterization, "x")
        low_hat = downsample_video(x_hat, low_res.shape[-2:], downsampler)  # d(x_hat(z_t))
        loss = ((x_a - x_hat) * known_mask).square().sum()  # eq. (7)'s error ...
        loss = loss + ((low_res - low_hat) * low_res_mask).square().sum()  # ... + eq. (8)'s
        (grad,) = torch.autograd.grad(loss, z)
    grad = grad * (1 - known_mask)  # z_t^b only: the known frames are replaced
    alpha, _ = alpha_sigma(broadcast_to(logsnr, z_t))
    return x_hat.detach() - 0.5 * weight * alpha * grad


class ReconstructionGuidance:
    """A denoiser wrapper for reconstruction guidance, eq. (7), and its spatial form, eq. (8).

    Called as ``guided(z_t, logsnr, **cond)`` it returns the guided ``x~(z_t)``
    (``parameterization = "x"``), usable by every sampler:

        x~(z_t) = x_hat(z_t) - (w_r alpha_t / 2) grad_z L,    L = sum_a || x^a - d(x_hat^a(z_t)) ||^2

    over the observed frames ``a``: high-resolution known frames (``x_known`` where
    ``known_mask``; ``d`` the identity) and low-resolution frames (``low_res`` where
    ``low_res_mask``; ``d`` the downsampler). The gradient is zeroed on the high-resolution
    known frames (they are replaced, so only ``z_t^b`` is guided, as in eq. (7)); with only
    low-resolution frames it acts on all of ``z_t``, as in eq. (8). The returned ``x~`` equals
    ``x_hat`` on the known frames.

    The maths is in :func:`reconstruction_guidance` (known frames only),
    :func:`superres_guidance` (low-resolution frames only) and :func:`cascade_guidance` (both);
    this wrapper validates and broadcasts the masks, processes the batch in chunks, casts the
    model's output and the result to ``z_t``'s dtype, and is a denoiser itself.

    Memory: one forward and one backward pass through the model per call, under
    ``torch.enable_grad`` with the input detached, so no graph outlives the call; with
    ``chunk_size`` the batch is processed ``chunk_size`` examples at a time (peak memory of one
    chunk). Model weights need no gradient (``model.requires_grad_(False)``; they are not
    accumulated either way). A U-Net with ``gradient_checkpointing = True`` recomputes its
    blocks in the backward pass instead of storing them (less memory, about one more forward).

    Args:
        model: the denoiser (or a :class:`~vdm_lite.samplers.ClassifierFreeGuidance` wrapper).
        weight: ``w_r`` (``1`` = the Gaussian approximation; the paper used 9 and 50).
        x_known: ``(B, C, T, H, W)``, read where ``known_mask`` is True.
        known_mask: ``(T,)`` or ``(B, T)`` bool.
        low_res: ``(B, C, T, h, w)`` low-resolution frames, read where ``low_res_mask``.
        low_res_mask: ``(T,)`` or ``(B, T)`` bool (default: every frame).
        downsampler: ``"bilinear"``, ``"area"`` or a callable, see :func:`downsample_video`.
    """

    parameterization = "x"

    def __init__(
        self,
        model: Callable[..., torch.Tensor],
        weight: float = 1.0,
        *,
        x_known: torch.Tensor | None = None,
        known_mask: torch.Tensor | None = None,
        low_res: torch.Tensor | None = None,
        low_res_mask: torch.Tensor | None = None,
        downsampler: str | Callable = "bilinear",
        parameterization: str | None = None,
        chunk_size: int | None = None,
    ):
        self.model = model
        self.weight = float(weight)
        self.model_parameterization = resolve_parameterization(model, parameterization)
        if (x_known is None) != (known_mask is None):
            raise ValueError("give x_known and known_mask together")
        if x_known is None and low_res is None:
            raise ValueError("reconstruction guidance needs known frames (x_known) or a low-resolution video (low_res)")
        self.x_known, self.low_res, self.downsampler = x_known, low_res, downsampler
        ref = x_known if x_known is not None else low_res
        B, T = ref.shape[0], ref.shape[2]
        self.known_mask = _frame_mask(known_mask, B, T, "known_mask")
        if low_res is not None:
            self.low_res_mask = _frame_mask(torch.ones(T, dtype=torch.bool) if low_res_mask is None else low_res_mask, B, T, "low_res_mask")
        else:
            self.low_res_mask = None
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.chunk_size = chunk_size

    def _model_in_dtype(self, z: torch.Tensor, lam: torch.Tensor, **cond: Any) -> torch.Tensor:
        return self.model(z, lam, **cond).to(z.dtype)  # a bf16 / fp16 network output, in z_t's dtype

    def _guided(self, z_t, lam, sl: slice, cond) -> torch.Tensor:
        """One chunk ``sl`` of the batch: the masks as ``(b, 1, T, 1, 1)`` in ``z_t``'s dtype, then
        eq. (7), eq. (8) or both."""
        model, w, p = self._model_in_dtype, self.weight, self.model_parameterization
        if self.x_known is not None:
            x_a, known = self.x_known[sl].to(z_t), _frames(self.known_mask[sl], z_t)
        if self.low_res is not None:
            low = self.low_res[sl].to(z_t)
            lr = dict(low_res_mask=_frames(self.low_res_mask[sl], low), downsampler=self.downsampler)
        if self.low_res is None:  # eq. (7)
            out = reconstruction_guidance(model, z_t, lam, x_a, known, w, parameterization=p, **cond)
        elif self.x_known is None:  # eq. (8)
            out = superres_guidance(model, z_t, lam, low, w, parameterization=p, **lr, **cond)
        else:  # both at once (Figure 2)
            out = cascade_guidance(model, z_t, lam, x_a, known, low, w, parameterization=p, **lr, **cond)
        return out.to(z_t.dtype)

    def __call__(self, z_t: torch.Tensor, logsnr: torch.Tensor, **cond: Any) -> torch.Tensor:
        B = z_t.shape[0]
        ref = self.x_known if self.x_known is not None else self.low_res
        if ref.shape[0] != B or ref.shape[2] != z_t.shape[2]:
            raise ValueError(f"z_t {tuple(z_t.shape)} does not match the conditioning video {tuple(ref.shape)} in batch or frames")
        lam = torch.as_tensor(logsnr, device=z_t.device, dtype=z_t.dtype)
        lam = lam.expand(B) if lam.ndim == 0 else lam
        step = self.chunk_size or B
        outs = [
            self._guided(z_t[i : i + step], lam[i : i + step], slice(i, i + step), _split_cond(cond, B, i, i + step))
            for i in range(0, B, step)
        ]
        return torch.cat(outs) if len(outs) > 1 else outs[0]


class Replacement:
    """The ``on_step`` hook of replacement (Section 3.1): after every sampler update, overwrite
    the known frames' latents ``z_s^a`` with

    * ``"forward"``: a fresh sample of ``q(z_s^a | x^a) = N(alpha_s x^a, sigma_s^2 I)``, eq. (1);
    * ``"posterior"``: a sample of ``q(z_s^a | z_t^a, x^a)``, eq. (3) (at a corrector step,
      where ``s = t``, this keeps ``z^a`` as it is).
    """

    def __init__(self, x_known: torch.Tensor, known_mask: torch.Tensor, variant: str = "forward", generator: torch.Generator | None = None):
        if variant not in REPLACEMENTS:
            raise ValueError(f"unknown replacement {variant!r}; choose one of {REPLACEMENTS}")
        self.x_known, self.variant, self.generator = x_known, variant, generator
        self.known_mask = _frame_mask(known_mask, x_known.shape[0], x_known.shape[2], "known_mask")

    def __call__(self, z_new: torch.Tensor, lam_new: torch.Tensor, z_old: torch.Tensor, lam_old: torch.Tensor) -> torch.Tensor:
        x = self.x_known.to(z_new)
        if self.variant == "forward":
            alpha, sigma = alpha_sigma(lam_new)
            z_a = alpha * x + sigma * randn_like(z_new, self.generator)
        else:
            mean, var = posterior(z_old, x, lam_new, lam_old)
            z_a = mean + var.sqrt() * randn_like(z_new, self.generator)
        m = _frames(self.known_mask, z_new)
        return z_new * (1 - m) + z_a * m


# -- the general driver ----------------------------------------------------------------------


def conditional_sample(
    model: Callable[..., torch.Tensor],
    x_known: torch.Tensor | None = None,
    known_mask: torch.Tensor | Sequence[bool] | None = None,
    *,
    method: str = "reconstruction",
    replacement: str = "forward",
    recon_weight: float = 1.0,
    low_res: torch.Tensor | None = None,
    low_res_mask: torch.Tensor | Sequence[bool] | None = None,
    size: int | tuple[int, int] | None = None,
    downsampler: str | Callable = "bilinear",
    guidance_weight: float = 0.0,
    sampler: str = "ancestral",
    steps: int = 128,
    parameterization: str | None = None,
    generator: torch.Generator | int | None = None,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    **kwargs: Any,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Sample a video given some of its frames (``x_known`` where ``known_mask``) and/or a
    low-resolution version of it (``low_res`` where ``low_res_mask``), Section 3.1.

    Args:
        model: an unconditionally (or class/text-) trained denoiser.
        x_known: ``(B, C, T, H, W)``; values outside ``known_mask`` are ignored.
        known_mask: ``(T,)`` or ``(B, T)`` bool, True on the known frames ``x^a``.
        method: ``"replacement"`` (replacement only) or ``"reconstruction"`` (replacement plus
            eq. (7)); low-resolution frames are always used through eq. (8).
        replacement: ``"forward"`` (``q(z_s^a | x^a)``) or ``"posterior"`` (``q(z_s^a | x^a, z_t^a)``).
        recon_weight: ``w_r`` of eq. (7)/(8).
        low_res: ``(B, C, T, h, w)`` low-resolution frames (spatial guidance, eq. (8)), used
            where ``low_res_mask`` ``(T,)`` or ``(B, T)`` is True (default: every frame).
        size: the output's ``(H, W)`` (or one int) when there is no ``x_known`` to take it from.
        downsampler: ``"bilinear"`` or ``"area"`` (or a callable), eq. (8).
        guidance_weight: classifier-free guidance ``w`` of eq. (6) for a conditional model
            (``class_label=``/``text=`` in ``kwargs``); applied inside reconstruction guidance.
        sampler, steps, gamma, corrector_steps, delta, clip_x, schedule, progress,
        return_trajectory: as in :func:`vdm_lite.samplers.sample` (the paper found
            reconstruction guidance works best with ``sampler="pc"``).
        generator: a seed or ``torch.Generator`` for the sampler and the replacement noise.
        chunk_size: examples per guidance forward/backward pass (bounds peak memory).

    Returns:
        The video ``(B, C, T, H, W)`` with the known frames exactly ``x_known``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if x_known is None and low_res is None:
        raise ValueError("nothing to condition on: give known frames (x_known, known_mask) and/or low_res; use sample() for unconditional videos")
    if x_known is not None:
        check_video(x_known, "x_known")
        if known_mask is None:
            raise ValueError("x_known needs a known_mask saying which frames are given")
        B, C, T, H, W = x_known.shape
        known = _frame_mask(known_mask, B, T, "known_mask")
        if known.all(1).any():
            raise ValueError("known_mask marks every frame as known: there is nothing to generate")
        if not known.any(1).all() and low_res is None:
            raise ValueError("known_mask marks no frame as known for some video: nothing to condition on")
    else:
        known = None
    if low_res is not None:
        check_video(low_res, "low_res")
        if x_known is None:
            if size is None:
                raise ValueError("give size=(H, W) (or an int) of the high-resolution output")
            H, W = (size, size) if isinstance(size, int) else tuple(size)
            B, C, T = low_res.shape[:3]
        if low_res.shape[:3] != (B, C, T):
            raise ValueError(f"low_res {tuple(low_res.shape)} and the output (B, C, T) = {(B, C, T)} differ in batch, channels or frames")
        h, w = low_res.shape[-2:]
        if H % h or W % w or h > H or w > W:
            raise ValueError(f"the low-resolution size {h}x{w} does not divide the target size {H}x{W}")
        low_mask = _frame_mask(torch.ones(T, dtype=torch.bool) if low_res_mask is None else low_res_mask, B, T, "low_res_mask")
        if not low_mask.any():
            raise ValueError("low_res_mask marks no frame")
    else:
        low_mask = None

    parameterization = resolve_parameterization(model, parameterization)
    den: Callable = model
    if guidance_weight:
        den = ClassifierFreeGuidance(model, guidance_weight, parameterization=parameterization)
    guided = recon_weight != 0 and (method == "reconstruction" or low_res is not None)  # w_r = 0: skip the backward pass
    if guided:
        den = ReconstructionGuidance(
            den,
            recon_weight,
            x_known=x_known if method == "reconstruction" else None,
            known_mask=known if method == "reconstruction" else None,
            low_res=low_res,
            low_res_mask=low_mask,
            downsampler=downsampler,
            parameterization=parameterization,
            chunk_size=chunk_size,
        )
    if device is None:
        device = (x_known if x_known is not None else low_res).device
    g = make_generator(generator)  # a seed, or the caller's generator as it is
    on_step = None
    if known is not None:
        on_step = Replacement(x_known.to(device), known, replacement, generator=g)
    with torch.no_grad():
        out = sample(
            den,
            (B, C, T, H, W),
            generator=g,
            on_step=on_step,
            device=device,
            sampler=sampler,
            steps=steps,
            parameterization=den.parameterization if guided else parameterization,
            **kwargs,
        )
    z, traj = out if isinstance(out, tuple) else (out, None)
    if known is not None:
        m = _frames(known, z)
        z = z * (1 - m) + x_known.to(z) * m  # the known frames come back exactly
    return (z, traj) if traj is not None else z
