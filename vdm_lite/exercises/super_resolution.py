"""Grader of notebook 10, spatial super-resolution (Section 3.1): ``superres_guided_x``, eq. (8),
against :func:`vdm_lite.guidance.superres_guidance`."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ._grading import (
    PASS,
    _call,
    _dt,
    _fail,
    _gen,
    _mismatch,
    _per_example,
    _randn,
    _tol,
)
from ._models import _gaussian_video, _TinyDenoiser
from .reconstruction_guidance import _guidance_hints


def check_superres_guided_x(fn: Callable) -> None:
    """Grade ``superres_guided_x(denoise_x, z_t, logsnr, x_a, w_r) -> x~`` ``(B, C, T, H, W)``
    against :func:`vdm_lite.guidance.superres_guidance` (eq. (8)) with the box-average downsampler
    (``"area"``), at downsampling factors 2 and 4; the prediction (``w_r = 0``) and the guidance term
    are checked apart."""
    from ..guidance import downsample_video, superres_guidance
    from ..schedule import alpha_sigma

    g = _gen(21)
    cases = [((1, 2, 4, 4), 2, [-4.0, 0.0, 4.0], 3.0, torch.float64, "gaussian"),
             ((3, 2, 8, 8), 4, [-2.0, 3.0], 10.0, torch.float32, "tiny"),
             ((3, 3, 8, 8), 2, [1.0, 5.0], 30.0, torch.float64, "tiny")]
    for n, (event, low, lams, w, dtype, kind) in enumerate(cases):
        den = _gaussian_video(event, 60 + n) if kind == "gaussian" else _TinyDenoiser(event[0], "x", seed=60 + n, dtype=dtype)
        name = "an exact Gaussian denoiser" if kind == "gaussian" else "a small nonlinear denoiser"
        B = len(lams)
        z = _randn((B, *event), dtype, g)
        x_a = downsample_video(_randn((B, *event), dtype, g).tanh(), low, "area")
        lam = torch.tensor(lams, dtype=dtype)
        f = event[-1] // low
        case = f"{name} (predicts x), z_t {(B, *event)} {_dt(dtype)}, x_a {tuple(x_a.shape)} (f = {f}), logsnr {lams}, w_r = {w}"
        ref = superres_guidance(den, z, lam, x_a, w, downsampler="area", parameterization="x")
        with torch.no_grad():
            x_hat = den(z, lam)
        args = {"denoise_x": den, "z_t": z, "logsnr": lam, "x_a": x_a, "w_r": w}
        got = _call(fn, "superres_guided_x", args)
        if isinstance(got, torch.Tensor) and got.requires_grad:
            _fail("superres_guided_x", case, ["the result still requires gradients: return x_hat.detach() - ... "
                                              "(the sampler uses x~ as a value, it does not differentiate it)"])
        problems, hints = {}, []
        p0 = _mismatch(_call(fn, "superres_guided_x", {**args, "w_r": 0.0}), x_hat, "x~ at w_r = 0: the prediction x_hat(z_t) itself")
        problems["x~ at w_r = 0 (the prediction x_hat)"] = p0
        p = _mismatch(got, ref, "x~")
        if p and not p0 and isinstance(got, torch.Tensor) and got.shape == ref.shape and got.dtype == ref.dtype:
            got_term, ref_term = got - x_hat, ref - x_hat
            problems["the guidance term"] = _mismatch(got_term, ref_term, "the guidance term -(w_r alpha_t / 2) grad_{z_t} "
                                                      "||x^a - d(x_hat(z_t))||^2 (every frame)", atol=10 * _tol(dtype)[1])
            alpha, sigma = (_per_example(v, z) for v in alpha_sigma(lam))

            def term(down, reduce="sum"):
                with torch.enable_grad():
                    zz = z.detach().requires_grad_(True)
                    err = (x_a - down(den(zz, lam))).square()
                    (grad,) = torch.autograd.grad(err.sum() if reduce == "sum" else err.mean(), zz)
                return -0.5 * w * alpha * grad

            alts = {"the downsampler d is the box average over f x f pixels (F.avg_pool3d(x, (1, f, f))), not every f-th pixel":
                        term(lambda v: v[..., ::f, ::f]),
                    "the downsampler d is the box average over f x f pixels (F.avg_pool3d(x, (1, f, f))), not a bilinear one":
                        term(lambda v: downsample_video(v, low, "bilinear")),
                    "that is the gradient of a mean: eq. (8)'s ||.||^2 is the sum of squares over all low-resolution pixels":
                        term(lambda v: F.avg_pool3d(v, (1, f, f)), "mean")}
            hints += _guidance_hints(got_term, ref_term, alpha, sigma, alts)
        elif p:
            problems["x~"] = p
        if any(problems.values()):
            _fail("superres_guided_x", case, [p for p in problems.values() if p] +
                  [f"{k}: correct" for k, p in problems.items() if p is None], hints)
    print(f"{PASS} superres_guided_x matches vdm_lite.guidance.superres_guidance (downsampler 'area') on {len(cases)} "
          "inputs (an exact Gaussian denoiser and a nonlinear one, f = 2 and 4, log-SNR -4 to 5); prediction and "
          "guidance term checked apart")
