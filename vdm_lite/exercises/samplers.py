"""Graders of notebook 03, samplers and classifier-free guidance (Section 2): ``ancestral_step``,
eq. (4), ``langevin_step``, eq. (5), and ``classifier_free_guidance``, eq. (6), each against
:mod:`vdm_lite.samplers`."""

from __future__ import annotations

from typing import Callable

import torch

from ._grading import (
    PASS,
    _alpha_sigma,
    _call,
    _fail,
    _gen,
    _matches,
    _mismatch,
    _per_example,
    _randn,
    _tol,
)


def check_ancestral_step(fn: Callable) -> None:
    """Grade ``ancestral_step(z_t, x_hat, logsnr_s, logsnr_t, noise, gamma)`` against
    :func:`vdm_lite.samplers.ancestral_step` (eq. (4)): the mean (``noise=None``) and the noise
    term are checked apart, at ``gamma`` = 0, 0.3 and 1."""
    from ..samplers import ancestral_step

    g = _gen(4)
    cases = [((3, 3, 4, 8, 8), torch.float32, [-19.0, 1.0, 20.0], [-20.0, 0.5, 18.0]),
             ((4, 2), torch.float64, [-1.0, 2.0, 5.0, 0.0], [-3.0, 1.99, 4.0, 0.0])]
    for shape, dtype, lam_s, lam_t in cases:
        z_t, x_hat, noise = _randn(shape, dtype, g), _randn(shape, dtype, g), _randn(shape, dtype, g)
        ls, lt = torch.tensor(lam_s, dtype=dtype), torch.tensor(lam_t, dtype=dtype)
        base = f"z_t {tuple(shape)} {str(dtype).removeprefix('torch.')}, logsnr_s {lam_s}, logsnr_t {lam_t}"
        problems = {}
        for gamma in (0.0, 0.3, 1.0):
            args = {"z_t": z_t, "x_hat": x_hat, "logsnr_s": ls, "logsnr_t": lt, "noise": None, "gamma": gamma}
            mean = _call(fn, "ancestral_step", args)
            mean_ref = ancestral_step(z_t, x_hat, ls, lt, None, gamma)
            problems[f"the mean mu_{{s|t}}(z_t, x_hat) (noise=None), gamma={gamma}"] = _mismatch(
                mean, mean_ref, f"the mean (noise=None, the last step), gamma={gamma}")
            full = _call(fn, "ancestral_step", {**args, "noise": noise})
            ref = ancestral_step(z_t, x_hat, ls, lt, noise, gamma)
            p = None
            if isinstance(full, torch.Tensor) and isinstance(mean, torch.Tensor) and full.shape == ref.shape:
                p = _mismatch(full - mean, ref - mean_ref, f"the noise term sqrt(variance) eps, gamma={gamma}",
                              atol=10 * _tol(dtype)[1])
            else:
                p = _mismatch(full, ref, f"z_s with noise, gamma={gamma}")
            problems[f"the noise term, gamma={gamma}"] = p
        if any(problems.values()):
            hints = []
            noise_bad = [k for k, p in problems.items() if p and "noise term" in k]
            if noise_bad and not problems["the noise term, gamma=0.0"]:
                hints.append("correct at gamma = 0 only: the variance is (sigma~^2_{s|t})^(1 - gamma) (sigma^2_{t|s})^gamma "
                             "with sigma^2_{t|s} = (1 - exp(lambda_t - lambda_s)) sigma_t^2")
            if noise_bad and problems["the noise term, gamma=0.0"]:
                hints.append("the noise term is sqrt(variance) * noise: a standard deviation, not the variance")
            _fail("ancestral_step", base, [p for p in problems.values() if p] +
                  [f"{k}: correct" for k, p in problems.items() if p is None], hints)
    print(f"{PASS} ancestral_step matches vdm_lite.samplers.ancestral_step on {len(cases)} inputs x gamma = 0, 0.3, 1 "
          "(float32 and float64, log-SNR -20 to 20); mean and noise term checked apart")


def check_langevin_step(fn: Callable) -> None:
    """Grade ``langevin_step(z_s, eps_hat, logsnr_s, noise, delta)`` against
    :func:`vdm_lite.samplers.langevin_step` (eq. (5)): the drift (``noise = 0``) and the noise
    term (``z_s = eps_hat = 0``) are checked apart, at ``delta`` = 0.1 and 1."""
    from ..samplers import langevin_step

    g = _gen(5)
    cases = [((3, 3, 4, 8, 8), torch.float32, [-20.0, 0.0, 20.0]),
             ((4, 2), torch.float64, [-3.0, -1.0, 2.0, 6.0])]
    for shape, dtype, lams in cases:
        z, eps_hat, noise = _randn(shape, dtype, g), _randn(shape, dtype, g), _randn(shape, dtype, g)
        lam = torch.tensor(lams, dtype=dtype)
        case = f"z_s {tuple(shape)} {str(dtype).removeprefix('torch.')}, logsnr_s {lams}"
        zero = torch.zeros_like(z)
        _, sigma = _alpha_sigma(_per_example(lam, z))
        problems, hints = {}, []
        for delta in (0.1, 1.0):
            drift = _call(fn, "langevin_step", {"z_s": z, "eps_hat": eps_hat, "logsnr_s": lam, "noise": zero, "delta": delta})
            p = _mismatch(drift, langevin_step(z, eps_hat, lam, zero, delta),
                          f"the drift z_s - (1/2) delta sigma_s eps_hat (noise = 0), delta={delta}")
            if p and _matches(drift, z + 0.5 * delta * sigma * eps_hat):
                hints.append("the drift has the wrong sign: eps_hat ~ -sigma_s grad log p, so the step is - (1/2) delta sigma_s eps_hat")
            if p and _matches(drift, z - 0.5 * delta * sigma**2 * eps_hat):
                hints.append("the drift uses sigma_s^2; eq. (5) has sigma_s (eps_hat already carries one sigma_s of the score)")
            problems[f"the drift, delta={delta}"] = p
            kick = _call(fn, "langevin_step", {"z_s": zero, "eps_hat": zero, "logsnr_s": lam, "noise": noise, "delta": delta})
            p = _mismatch(kick, langevin_step(zero, zero, lam, noise, delta),
                          f"the noise term sqrt(delta) sigma_s eps' (z_s = eps_hat = 0), delta={delta}")
            if p and _matches(kick, delta * sigma * noise):
                hints.append("the noise term uses delta; eq. (5) has sqrt(delta)")
            problems[f"the noise term, delta={delta}"] = p
        if any(problems.values()):
            _fail("langevin_step", case, [p for p in problems.values() if p] +
                  [f"{k}: correct" for k, p in problems.items() if p is None], hints)
    print(f"{PASS} langevin_step matches vdm_lite.samplers.langevin_step on {len(cases)} inputs x delta = 0.1, 1 "
          "(float32 and float64); drift and noise term checked apart")


def check_classifier_free_guidance(fn: Callable) -> None:
    """Grade ``classifier_free_guidance(pred_cond, pred_uncond, w)`` against
    :func:`vdm_lite.samplers.classifier_free_guidance` (eq. (6)) at ``w`` = 0, 0.5, 1, 2, 5."""
    from ..samplers import classifier_free_guidance

    g = _gen(6)
    cases = [((3, 3, 4, 8, 8), torch.float32), ((5, 2), torch.float64)]
    for shape, dtype in cases:
        c, u = _randn(shape, dtype, g), _randn(shape, dtype, g)
        for w in (0.0, 0.5, 1.0, 2.0, 5.0):
            case = f"pred_cond and pred_uncond {tuple(shape)} {str(dtype).removeprefix('torch.')}, w = {w}"
            got = _call(fn, "classifier_free_guidance", {"pred_cond": c, "pred_uncond": u, "w": w})
            p = _mismatch(got, classifier_free_guidance(c, u, w), "the guided prediction")
            if p:
                hints = []
                if not w and _matches(got, u):
                    hints.append("at w = 0 eq. (6) returns pred_cond itself: are pred_cond and pred_uncond swapped?")
                if w and _matches(got, (1 + w) * u - w * c):
                    hints.append("the conditional and unconditional predictions are swapped: (1 + w) eps(z_t, c) - w eps(z_t)")
                if w and _matches(got, w * c - (w - 1) * u) or w and _matches(got, (1 - w) * c + w * u):
                    hints.append("eq. (6) uses 1 + w for the conditional prediction: w = 0 must return pred_cond itself")
                _fail("classifier_free_guidance", case, [p], hints)
    print(f"{PASS} classifier_free_guidance matches vdm_lite.samplers.classifier_free_guidance at w = 0, 0.5, 1, 2, 5 "
          "(float32 and float64)")
