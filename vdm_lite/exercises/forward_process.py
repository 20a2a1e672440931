"""Graders of notebook 01, the continuous-time forward process (Section 2): ``q_sample``, eq. (1),
``z_t = alpha_t x + sigma_t eps``, and ``posterior``, eq. (3), the mean and variance of
``q(z_s | z_t, x)``, each against :mod:`vdm_lite.diffusion`."""

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
)


def check_q_sample(fn: Callable) -> None:
    """Grade ``q_sample(x, logsnr, noise) -> z_t`` against :func:`vdm_lite.diffusion.q_sample`
    (eq. (1)); the signal term (``noise = 0``) and the noise term (``x = 0``) are checked apart."""
    from ..diffusion import q_sample

    g = _gen(1)
    cases = [((3, 3, 4, 8, 8), torch.float32, [-20.0, 0.0, 20.0]),
             ((4, 2), torch.float64, [-5.0, -1.0, 1.0, 5.0]),
             ((2, 1, 1, 4, 4), torch.float32, [3.0, 3.0]),
             ((1, 3, 2, 4, 4), torch.float64, [-20.0])]
    for shape, dtype, lams in cases:
        x, noise = _randn(shape, dtype, g), _randn(shape, dtype, g)
        lam = torch.tensor(lams, dtype=dtype)
        case = f"x {tuple(shape)} {str(dtype).removeprefix('torch.')}, logsnr {lams}"
        alpha, sigma = (_per_example(v, x) for v in _alpha_sigma(lam))
        zero = torch.zeros_like(x)
        problems, hints = {}, []
        signal = _call(fn, "q_sample", {"x": x, "logsnr": lam, "noise": zero})
        p = problems["the signal term alpha_t x"] = _mismatch(signal, q_sample(x, lam, noise=zero)[0],
                                                              "the signal term alpha_t x (called with noise = 0)")
        if p and _matches(signal, _per_example(torch.sigmoid(lam), x) * x):
            hints.append("that is sigmoid(lambda_t) x = alpha_t^2 x: alpha_t is the square root, sqrt(sigmoid(lambda_t))")
        if p and _matches(signal, sigma * x):
            hints.append("alpha_t and sigma_t are swapped: alpha_t^2 = sigmoid(+lambda_t), sigma_t^2 = sigmoid(-lambda_t)")
        noisy = _call(fn, "q_sample", {"x": zero, "logsnr": lam, "noise": noise})
        p = problems["the noise term sigma_t eps"] = _mismatch(noisy, q_sample(zero, lam, noise=noise)[0],
                                                               "the noise term sigma_t eps (called with x = 0)")
        if p and _matches(noisy, _per_example(torch.sigmoid(-lam), x) * noise):
            hints.append("that is sigma_t^2 eps: sigma_t is sqrt(sigmoid(-lambda_t))")
        if any(problems.values()):
            _fail("q_sample", case, [p for p in problems.values() if p] +
                  [f"{k}: correct" for k, p in problems.items() if p is None], hints)
        p = _mismatch(_call(fn, "q_sample", {"x": x, "logsnr": lam, "noise": noise}), q_sample(x, lam, noise=noise)[0],
                      "z_t = alpha_t x + sigma_t eps")
        if p:
            _fail("q_sample", case, [p, "each term alone is correct: is the sum alpha_t x + sigma_t eps?"])
    print(f"{PASS} q_sample matches vdm_lite.diffusion.q_sample on {len(cases)} inputs (float32 and float64, "
          "log-SNR -20 to 20, one per example); signal and noise terms checked apart")


def check_posterior(fn: Callable) -> None:
    """Grade ``posterior(z_t, x, logsnr_s, logsnr_t) -> (mean, variance)`` against
    :func:`vdm_lite.diffusion.posterior` (eq. (3)): the mean (its ``z_t`` and ``x`` terms apart)
    and the variance are compared separately."""
    from ..diffusion import posterior

    g = _gen(2)
    cases = [((3, 3, 4, 8, 8), torch.float32, [20.0, 2.0, 0.0], [-20.0, 1.999, -3.0]),
             ((4, 2), torch.float64, [-5.0, 1.0, 10.0, 5.0], [-6.0, -1.0, 9.5, 5.0]),
             ((2, 1, 2, 4, 4), torch.float64, [20.0, -19.0], [19.0, -20.0])]
    for shape, dtype, lam_s, lam_t in cases:
        z_t, x = _randn(shape, dtype, g), _randn(shape, dtype, g)
        ls, lt = torch.tensor(lam_s, dtype=dtype), torch.tensor(lam_t, dtype=dtype)
        case = (f"z_t and x {tuple(shape)} {str(dtype).removeprefix('torch.')}, logsnr_s {lam_s}, logsnr_t {lam_t}")
        mean_ref, var_ref = posterior(z_t, x, ls, lt)
        var_ref = var_ref.expand(shape)
        args = {"z_t": z_t, "x": x, "logsnr_s": ls, "logsnr_t": lt}
        out = _call(fn, "posterior", args)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            _fail("posterior", case, [f"return (mean, variance), a tuple of two tensors; got {type(out).__name__}"
                                      + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")])
        mean, var = out
        problems, hints = {}, []
        problems["the mean mu_{s|t}"] = _mismatch(mean, mean_ref, "the mean mu_{s|t}")
        problems["the variance sigma~^2_{s|t}"] = _mismatch(var, var_ref, "the variance sigma~^2_{s|t}", broadcast=True)
        if problems["the mean mu_{s|t}"]:  # which of its two terms?
            zero = torch.zeros_like(x)
            for term, a in [("its z_t term exp(lambda_t - lambda_s) (alpha_s / alpha_t) z_t (called with x = 0)",
                             {**args, "x": zero}),
                            ("its x term (1 - exp(lambda_t - lambda_s)) alpha_s x (called with z_t = 0)",
                             {**args, "z_t": zero})]:
                got = _call(fn, "posterior", a)[0]
                p = _mismatch(got, posterior(a["z_t"], a["x"], ls, lt)[0], "the mean: " + term)
                problems["the mean: " + term.split(" (")[0]] = p
        (alpha_s, sigma_s), (_, sigma_t) = _alpha_sigma(_per_example(ls, x)), _alpha_sigma(_per_example(lt, x))
        one_minus_r = -torch.expm1(_per_example(lt - ls, x))
        if problems["the variance sigma~^2_{s|t}"] and _matches(var, (one_minus_r * sigma_t**2).expand(shape)):
            hints.append("that variance uses sigma_t^2; eq. (3) has sigma_s^2: (1 - exp(lambda_t - lambda_s)) sigma_s^2")
        if problems["the variance sigma~^2_{s|t}"] and _matches(var, (one_minus_r * sigma_s).expand(shape)):
            hints.append("that variance uses sigma_s; eq. (3) has sigma_s^2 (alpha^2 = sigmoid(lambda))")
        if any(problems.values()):
            _fail("posterior", case, [p for p in problems.values() if p] +
                  [f"{k}: correct" for k, p in problems.items() if p is None], hints)
    print(f"{PASS} posterior matches vdm_lite.diffusion.posterior on {len(cases)} inputs (float32 and float64, "
          "steps from lambda 20 -> -20 to 0.001; s = t); mean and variance checked apart")
