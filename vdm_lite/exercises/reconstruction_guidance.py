"""Grader of notebook 09, reconstruction guidance (Section 3.1): ``reconstruction_guided_x``, eq. (7),
against :func:`vdm_lite.guidance.reconstruction_guidance`; its hints on a wrong guidance term
(:func:`_guidance_hints`) serve eq. (8) of notebook 10 too."""

from __future__ import annotations

from typing import Callable

import torch

from ._grading import (
    PASS,
    _call,
    _dt,
    _fail,
    _gen,
    _matches,
    _mismatch,
    _per_example,
    _randn,
    _tol,
)
from ._models import _gaussian_video, _TinyDenoiser


def _guidance_hints(got_term: torch.Tensor, ref_term: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor,
                    alternatives: dict[str, torch.Tensor]) -> list[str]:
    """Hints for a wrong guidance term -(w_r alpha_t / 2) grad: which factor is off."""
    hints = []
    for factor, hint in ((-1.0, "the sign is wrong: x~ = x_hat - (w_r alpha_t / 2) grad (a step down the reconstruction error)"),
                         (2.0, "the term is twice too large: the factor is w_r alpha_t / 2"),
                         (0.5, "the term is half as large as it should be: the factor is w_r alpha_t / 2")):
        if _matches(got_term, factor * ref_term):
            hints.append(hint)
    if _matches(got_term, ref_term / alpha):
        hints.append("alpha_t is missing: the factor is w_r alpha_t / 2")
    if _matches(got_term, ref_term / alpha * sigma):
        hints.append("that uses sigma_t; eq. (7) and (8) have alpha_t (alpha_t^2 = sigmoid(lambda_t))")
    if _matches(got_term, ref_term * alpha):
        hints.append("that uses alpha_t^2 = sigmoid(lambda_t); alpha_t is its square root")
    hints += [h for h, alt in alternatives.items() if _matches(got_term, alt)]
    return hints


def check_reconstruction_guided_x(fn: Callable) -> None:
    """Grade ``reconstruction_guided_x(denoise_x, z_t, logsnr, x_a, known, w_r) -> x~``
    ``(B, C, T, H, W)`` against :func:`vdm_lite.guidance.reconstruction_guidance` (eq. (7)) with
    exact Gaussian denoisers (:class:`vdm_lite.toy.GaussianDenoiser`) and a small nonlinear one:
    the prediction (``w_r = 0``), the known frames and the guidance term on the unknown frames are
    checked apart."""
    from ..guidance import reconstruction_guidance
    from ..schedule import alpha_sigma

    g = _gen(19)
    cases = [((1, 6, 2, 2), [-4.0, 0.0, 4.0], [True, True, False, False, False, False], 2.0, torch.float64, "gaussian"),
             ((2, 5, 1, 3), [-1.0, 6.0], [True, False, False, True, False], 5.0, torch.float64, "gaussian"),
             ((3, 4, 4, 4), [-2.0, 2.0], [False, True, False, True], 1.0, torch.float32, "tiny")]
    for n, (event, lams, known_list, w, dtype, kind) in enumerate(cases):
        den = _gaussian_video(event, 50 + n) if kind == "gaussian" else _TinyDenoiser(event[0], "x", seed=50 + n, dtype=dtype)
        name = "an exact Gaussian denoiser" if kind == "gaussian" else "a small nonlinear denoiser"
        B = len(lams)
        z = _randn((B, *event), dtype, g)
        x_a = _randn((B, *event), dtype, g)  # values on the unknown frames are ignored by eq. (7)
        lam = torch.tensor(lams, dtype=dtype)
        known = torch.tensor(known_list)
        mask = known[None, None, :, None, None].to(dtype)
        case = f"{name} (predicts x), z_t {(B, *event)} {_dt(dtype)}, logsnr {lams}, known {known.int().tolist()}, w_r = {w}"
        ref = reconstruction_guidance(den, z, lam, x_a, mask, w, parameterization="x")
        with torch.no_grad():
            x_hat = den(z, lam)
        args = {"denoise_x": den, "z_t": z, "logsnr": lam, "x_a": x_a, "known": known.clone(), "w_r": w}
        got = _call(fn, "reconstruction_guided_x", args)
        if isinstance(got, torch.Tensor) and got.requires_grad:
            _fail("reconstruction_guided_x", case, ["the result still requires gradients: return x_hat.detach() - ... "
                                                    "(the sampler uses x~ as a value, it does not differentiate it)"])
        problems, hints = {}, []
        p0 = _mismatch(_call(fn, "reconstruction_guided_x", {**args, "w_r": 0.0}), x_hat,
                       "x~ at w_r = 0: the prediction x_hat(z_t) itself")
        problems["x~ at w_r = 0 (the prediction x_hat)"] = p0
        p = _mismatch(got, ref, "x~")
        if p and not p0 and isinstance(got, torch.Tensor) and got.shape == ref.shape and got.dtype == ref.dtype:
            p = None
            problems["x~ on the known frames"] = _mismatch(
                got[:, :, known], x_hat[:, :, known],
                "x~ on the known frames: x_hat^a(z_t) unchanged (eq. (7) moves z_t^b only; z_t^a is replaced)")
            if problems["x~ on the known frames"]:
                hints.append("keep only the z_t^b part of the gradient: multiply it by ~known (as (T,) -> (1, 1, T, 1, 1))")
            got_term, ref_term = (got - x_hat)[:, :, ~known], (ref - x_hat)[:, :, ~known]
            problems["the guidance term on the unknown frames"] = _mismatch(
                got_term, ref_term, "the guidance term -(w_r alpha_t / 2) grad_{z_t^b} ||x^a - x_hat^a||^2 on the unknown "
                "frames", atol=10 * _tol(dtype)[1])
            if problems["the guidance term on the unknown frames"]:
                alpha, sigma = (_per_example(v, z) for v in alpha_sigma(lam))
                with torch.enable_grad():
                    zz = z.detach().requires_grad_(True)
                    (grad_all,) = torch.autograd.grad((x_a - den(zz, lam)).square().sum(), zz)
                alts = {"the reconstruction error must cover the known frames only: ||x^a - x_hat^a||^2 sums over the "
                        "frames where known is True (x_a holds no data elsewhere)": (-0.5 * w * alpha * grad_all)[:, :, ~known]}
                hints += _guidance_hints(got_term, ref_term, alpha, sigma, alts)
        elif p:
            problems["x~"] = p
        if any(problems.values()):
            _fail("reconstruction_guided_x", case, [p for p in problems.values() if p] +
                  [f"{k}: correct" for k, p in problems.items() if p is None], hints)
    print(f"{PASS} reconstruction_guided_x matches vdm_lite.guidance.reconstruction_guidance on {len(cases)} inputs "
          "(exact Gaussian denoisers and a nonlinear one; the first frames, every third and every other frame known; "
          "log-SNR -4 to 6); prediction, known frames and guidance term checked apart")
