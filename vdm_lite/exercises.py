"""Graded exercises of the notebooks: the graders, and the student version of the notebooks.

**One source of truth.** The committed notebook holds each exercise *with* its solution, between
two marker lines, and runs it (so its outputs, and the tests, exercise the graders)::

    def q_sample(x, logsnr, noise):
        \"\"\"... shapes, and the equation it implements ...\"\"\"
        # --- solution (your turn: write eq. (1), z_t = alpha_t x + sigma_t eps) ---
        lam = logsnr.reshape(-1, *[1] * (x.ndim - 1))
        return torch.sigmoid(lam).sqrt() * x + torch.sigmoid(-lam).sqrt() * noise
        # --- end solution ---

The next cell grades it: ``exercises.check_q_sample(q_sample)``. The **student version** is
generated from the committed notebooks::

    python -m vdm_lite.exercises --student notebooks/ student/

Each solution block (markers included) becomes one line at the same indentation,
``raise NotImplementedError("your turn: write eq. (1), z_t = alpha_t x + sigma_t eps")``, and the
outputs of the exercise and grader cells are cleared; every other cell keeps its code and its
outputs. ``python -m vdm_lite.exercises --list notebooks/`` lists the exercises.

Rules that keep exercises testable (``tests/test_exercises.py`` checks them):

* an exercise cell defines one or more functions and imports what it uses, so it runs on its own;
* every function that holds a solution block has a grader ``check_<name>`` in :data:`GRADERS`,
  called as ``exercises.check_<name>(<name>)`` by the next code cell;
* later cells use the library, never the student's function, so a student notebook with an
  unsolved exercise still runs to the end (only its grader cell fails).

**Graders** call the student's function at several inputs (shapes, dtypes, edge log-SNRs), compare
it with the library, and raise ``AssertionError`` saying which output, term or shape is off; on
success they print one line. A ``NotImplementedError`` (the "your turn" blank) passes through
unchanged.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

__all__ = [
    "GRADERS",
    "check_q_sample",
    "check_posterior",
    "check_convert",
    "check_x_weight",
    "check_ancestral_step",
    "check_langevin_step",
    "check_classifier_free_guidance",
    "check_temporal_attention_mask",
    "check_conv1x3x3_video",
    "check_draw_image_sources",
    "check_append_images",
    "student_source",
    "student_notebook",
    "find_exercises",
    "write_student_version",
]

PASS = "\u2713"  # the check mark that starts every pass line


# -- comparing a student's output with the library's ----------------------------------------

def _tol(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for outputs of ``dtype``: the inputs of every case are well conditioned in it."""
    return (1e-7, 1e-9) if dtype == torch.float64 else (1e-4, 1e-5)


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() <= 8 and value.ndim <= 1:
            vals = [round(v, 4) if isinstance(v, float) else v for v in value.tolist()]
            return f"{vals} ({str(value.dtype).removeprefix('torch.')})"
        return f"{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, torch.Generator):
        return "a torch.Generator"
    return repr(value)


def _call(fn: Callable, name: str, args: dict[str, Any]) -> Any:
    """``fn(*args.values())`` (positional, so the student may name the parameters freely); any
    exception but the blank's NotImplementedError becomes an AssertionError naming the inputs, and
    so does a change of a tensor argument in place."""
    before = {k: v.clone() for k, v in args.items() if isinstance(v, torch.Tensor)}
    try:
        out = fn(*args.values())
    except NotImplementedError:
        raise
    except Exception as exc:  # the student's bug, reported with the inputs that caused it
        inputs = ", ".join(f"{k}={_describe(v)}" for k, v in args.items())
        hint = ""
        if "must match the size of tensor" in str(exc) or "broadcast" in str(exc):
            hint = ("\n  hint: a per-example value of shape (B,) must be reshaped to (B, 1, ..., 1) to broadcast "
                    "against a (B, ...) tensor, e.g. v.reshape(-1, *[1] * (x.ndim - 1))")
        raise AssertionError(f"{name}({inputs}) raised {type(exc).__name__}: {exc}{hint}") from exc
    for k, v in before.items():
        if not torch.equal(v, args[k]):
            raise AssertionError(f"{name} changed its input {k} in place: compute a new tensor instead")
    return out


def _mismatch(got: Any, expected: torch.Tensor, what: str, rtol: float | None = None,
              atol: float | None = None, broadcast: bool = False) -> str | None:
    """None if ``got`` equals ``expected`` (within the dtype's tolerance), else what is wrong."""
    if not isinstance(got, torch.Tensor):
        return f"{what}: a torch.Tensor expected, got {type(got).__name__}"
    if broadcast and got.shape != expected.shape:
        try:
            shape = torch.broadcast_shapes(got.shape, expected.shape)
        except RuntimeError:
            shape = None
        if shape != expected.shape:
            return (f"{what}: shape {tuple(got.shape)} does not broadcast to {tuple(expected.shape)}; give it shape "
                    f"{(expected.shape[0],) + (1,) * (expected.ndim - 1)} (one value per example) or "
                    f"{tuple(expected.shape)}")
        got = got.expand(expected.shape)
    if got.shape != expected.shape:
        msg = f"{what}: shape {tuple(expected.shape)} expected, got {tuple(got.shape)}"
        if sorted(got.shape) == sorted(expected.shape):
            msg += " (the same sizes in another order: a transpose or permute is missing)"
        return msg
    if got.dtype != expected.dtype:
        return (f"{what}: dtype {str(expected.dtype).removeprefix('torch.')} expected, got "
                f"{str(got.dtype).removeprefix('torch.')}" +
                (" (keep the input's dtype: create new tensors with dtype=x.dtype, or *_like(x))"
                 if expected.is_floating_point() else ""))
    if expected.dtype == torch.bool or not expected.is_floating_point():
        bad = got != expected
        if bad.any():
            idx = tuple(int(i) for i in bad.nonzero()[0])
            return f"{what}: {int(bad.sum())} of {bad.numel()} entries differ, first at index {idx}: expected " \
                   f"{expected[idx].item()}, got {got[idx].item()}"
        return None
    if not torch.isfinite(got).all() and torch.isfinite(expected).all():
        idx = tuple(int(i) for i in (~torch.isfinite(got)).nonzero()[0])
        return f"{what}: non-finite value {got[idx].item()} at index {idx} (expected {expected[idx].item():.6g})"
    r, a = _tol(expected.dtype)
    rtol, atol = rtol if rtol is not None else r, atol if atol is not None else a
    err = (got - expected).abs()
    bad = err > atol + rtol * expected.abs()
    if bad.any():
        idx = _unravel(int((err - rtol * expected.abs()).flatten().argmax()), err.shape)  # the worst entry
        return (f"{what}: values differ at {int(bad.sum())} of {bad.numel()} entries; max |error| "
                f"{err.max().item():.3g}, e.g. at index {idx}: expected {expected[idx].item():.6g}, "
                f"got {got[idx].item():.6g}")
    return None


def _unravel(flat: int, shape) -> tuple[int, ...]:
    idx = []
    for size in reversed(tuple(shape)):
        idx.append(flat % size)
        flat //= size
    return tuple(reversed(idx))


def _matches(got: Any, alternative: torch.Tensor) -> bool:
    """Whether ``got`` equals a known wrong answer (for hints)."""
    if not isinstance(got, torch.Tensor) or got.dtype != alternative.dtype:
        return False
    try:
        got = got.expand(alternative.shape)
    except RuntimeError:
        return False
    rtol, atol = _tol(alternative.dtype)
    return bool(torch.allclose(got, alternative, rtol=rtol, atol=atol))


def _fail(name: str, case: str, problems: list[str], hints: list[str] = ()) -> None:
    lines = [f"{name} is not right yet, for {case}:"] + [f"  - {p}" for p in problems]
    lines += [f"  hint: {h}" for h in dict.fromkeys(hints)]  # each hint once
    raise AssertionError("\n".join(lines))


def _per_example(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *[1] * (x.ndim - 1))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(shape, dtype, g) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=dtype)


def _alpha_sigma(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from .schedule import alpha_sigma

    return alpha_sigma(lam)


# -- notebook 01: eq. (1) and eq. (3) ------------------------------------------------------------

def check_q_sample(fn: Callable) -> None:
    """Grade ``q_sample(x, logsnr, noise) -> z_t`` against :func:`vdm_lite.diffusion.q_sample`
    (eq. (1)); the signal term (``noise = 0``) and the noise term (``x = 0``) are checked apart."""
    from .diffusion import q_sample

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
    from .diffusion import posterior

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


# -- notebook 02: eq. (2), conversions and weightings ---------------------------------------------

def check_convert(fn: Callable) -> None:
    """Grade ``convert(pred, z_t, logsnr, src, dst)`` against :func:`vdm_lite.diffusion.convert`
    for all 9 ``(src, dst)`` pairs of ``"eps"``, ``"v"``, ``"x"``; every wrong pair is named."""
    from .diffusion import PARAMETERIZATIONS, convert

    g = _gen(3)
    cases = [((5, 3, 2, 4, 4), torch.float64, [-20.0, -2.0, 0.0, 3.0, 20.0]),
             ((3, 2), torch.float32, [-4.0, 0.0, 4.0])]
    for shape, dtype, lams in cases:
        pred, z_t = _randn(shape, dtype, g), _randn(shape, dtype, g)
        lam = torch.tensor(lams, dtype=dtype)
        case = f"pred and z_t {tuple(shape)} {str(dtype).removeprefix('torch.')}, logsnr {lams}"
        problems = {}
        for src in PARAMETERIZATIONS:
            for dst in PARAMETERIZATIONS:
                got = _call(fn, "convert", {"pred": pred, "z_t": z_t, "logsnr": lam, "src": src, "dst": dst})
                problems[f"{src} -> {dst}"] = _mismatch(got, convert(pred, z_t, lam, src, dst), f"{src} -> {dst}")
        if any(problems.values()):
            good = [k for k, p in problems.items() if p is None]
            _fail("convert", case, [p for p in problems.values() if p] + ([f"correct: {', '.join(good)}"] if good else []),
                  ["write every pair through x: first x_hat from (src, pred), then dst from x_hat"]
                  if len(good) < 9 else [])
    print(f"{PASS} convert matches vdm_lite.diffusion.convert for all 9 (src, dst) pairs on {len(cases)} inputs "
          "(float64 with log-SNR -20 to 20, float32 with -4 to 4)")


def check_x_weight(fn: Callable) -> None:
    """Grade ``x_weight(logsnr, weighting, dlogsnr_dt)`` against :func:`vdm_lite.diffusion.x_weight`
    for the weightings ``"eps"``, ``"v"``, ``"x"`` and ``"elbo"`` (eq. (2))."""
    from .diffusion import x_weight
    from .schedule import CosineSchedule

    cosine = CosineSchedule()
    cases = [torch.float64, torch.float32]
    for dtype in cases:
        lam = torch.linspace(-20, 20, 9, dtype=dtype)
        dl = cosine.dlogsnr_dt(cosine.t_of_logsnr(lam))
        case = f"logsnr = linspace(-20, 20, 9) {str(dtype).removeprefix('torch.')} (dlogsnr_dt of the cosine schedule)"
        problems = {}
        for weighting in ("eps", "v", "x", "elbo"):
            got = _call(fn, "x_weight", {"logsnr": lam, "weighting": weighting, "dlogsnr_dt": dl})
            p = _mismatch(got, x_weight(lam, weighting, dl), f"weighting {weighting!r}")
            if p and weighting == "x" and not isinstance(got, torch.Tensor):
                p += " (one weight per log-SNR: torch.ones_like(logsnr))"
            problems[weighting] = p
        if any(problems.values()):
            _fail("x_weight", case, [p for p in problems.values() if p] +
                  [f"weighting {k!r}: correct" for k, p in problems.items() if p is None])
    print(f"{PASS} x_weight matches vdm_lite.diffusion.x_weight for 'eps', 'v', 'x' and 'elbo' "
          "(log-SNR -20 to 20, float64 and float32)")


# -- notebook 03: eq. (4)-(6) ---------------------------------------------------------------------

def check_ancestral_step(fn: Callable) -> None:
    """Grade ``ancestral_step(z_t, x_hat, logsnr_s, logsnr_t, noise, gamma)`` against
    :func:`vdm_lite.samplers.ancestral_step` (eq. (4)): the mean (``noise=None``) and the noise
    term are checked apart, at ``gamma`` = 0, 0.3 and 1."""
    from .samplers import ancestral_step

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
    from .samplers import langevin_step

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
    from .samplers import classifier_free_guidance

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


# -- notebook 04: the U-Net's pieces -----------------------------------------------------------------

def check_temporal_attention_mask(fn: Callable) -> None:
    """Grade ``temporal_attention_mask(image_mask) -> allowed`` ``(B, T, T)`` bool against
    :func:`vdm_lite.nn.temporal_attention_mask` (joint training, Section 3); the first wrong entry
    is named with the kinds of its query and key frames."""
    from .nn import temporal_attention_mask

    g = _gen(7)
    masks = [torch.tensor([[False] * 6 + [True] * 3]),
             torch.tensor([[False, True, False, False, True, False], [False] * 6]),
             torch.rand(4, 7, generator=g) < 0.4,
             torch.ones(2, 3, dtype=torch.bool),
             torch.zeros(1, 1, dtype=torch.bool),
             torch.ones(1, 1, dtype=torch.bool)]
    for mask in masks:
        case = f"image_mask {mask.int().tolist()}"
        got = _call(fn, "temporal_attention_mask", {"image_mask": mask.clone()})
        ref = temporal_attention_mask(mask)
        if isinstance(got, torch.Tensor) and got.shape == ref.shape and got.dtype != torch.bool:
            _fail("temporal_attention_mask", case, [f"dtype torch.bool expected, got {got.dtype}: combine boolean "
                                                     "tensors with & and | (True = may attend)"])
        p = _mismatch(got, ref, "the mask allowed[b, i, j]")
        if p:
            bad = (got != ref).nonzero()[0].tolist() if "entries differ" in p else None
            if bad:
                b, i, j = bad
                kind = lambda k: "image" if mask[b, k] else "video"  # noqa: E731
                verb = "may" if ref[b, i, j] else "may not"
                p = (f"example b={b}: query frame i={i} ({kind(i)}) {verb} attend to key frame j={j} ({kind(j)}), "
                     f"but your mask says {bool(got[b, i, j])}; row {i} expected {ref[b, i].int().tolist()}, "
                     f"got {got[b, i].int().tolist()} ({int((got != ref).sum())} wrong entries in all)")
            _fail("temporal_attention_mask", case, [p],
                  ["allowed[b, i, j] = (i == j) or (frames i and j are both video frames); (B, T, T), True = may attend"])
    print(f"{PASS} temporal_attention_mask matches vdm_lite.nn.temporal_attention_mask on {len(masks)} image masks "
          "(appended, interleaved and random images; all video; all images; T = 1)")


def check_conv1x3x3_video(fn: Callable) -> None:
    """Grade ``conv1x3x3_video(x, weight, bias)`` against a 1x3x3 ``torch.nn.functional.conv3d``
    (the U-Net's 1x3x3 convolution, Section 3): ``x`` ``(B, C_in, T, H, W)``, ``weight``
    ``(C_out, C_in, 3, 3)``, ``bias`` ``(C_out,)`` -> ``(B, C_out, T, H, W)``."""
    g = _gen(8)
    cases = [((2, 4, 5, 8, 8), 6, torch.float32), ((1, 3, 1, 6, 10), 2, torch.float32), ((3, 2, 4, 5, 7), 5, torch.float64)]
    for shape, c_out, dtype in cases:
        x = _randn(shape, dtype, g)
        weight, bias = _randn((c_out, shape[1], 3, 3), dtype, g), _randn((c_out,), dtype, g)
        case = f"x {tuple(shape)} {str(dtype).removeprefix('torch.')}, weight {tuple(weight.shape)}"
        got = _call(fn, "conv1x3x3_video", {"x": x, "weight": weight, "bias": bias})
        ref = F.conv3d(x, weight[:, :, None], bias, padding=(0, 1, 1))
        p = _mismatch(got, ref, "the output (B, C_out, T, H, W)")
        if p:
            hints = []
            b, c, t, h, w = shape
            if isinstance(got, torch.Tensor) and got.shape == (b, t, c_out, h, w):
                hints.append("unfold back to (B, C_out, T, H, W): .view(B, T, C_out, H, W).transpose(1, 2)")
            elif isinstance(got, torch.Tensor) and got.shape == ref.shape:
                wrong = ((got - ref).abs().amax(dim=(0, 1, 3, 4)) > 1e-4).nonzero().flatten().tolist()
                p += f"; output frames {wrong} of {t} are wrong"
                garbled = F.conv2d(x.reshape(b * t, c, h, w), weight, bias, padding=1).reshape(b, c_out, t, h, w)
                if _matches(got, garbled):
                    hints.append("a plain reshape of (B, C, T, H, W) to (B*T, C, H, W) mixes channels and frames: "
                                 "x.transpose(1, 2) first (and transpose back after the convolution)")
            _fail("conv1x3x3_video", case, [p], hints or ["fold the frames into the batch, (B*T, C, H, W), run "
                                                          "F.conv2d(..., padding=1), unfold to (B, C_out, T, H, W)"])
    print(f"{PASS} conv1x3x3_video matches a 1x3x3 conv3d on {len(cases)} inputs (T = 1 and non-square frames included)")


# -- notebook 05: joint image-video batches ------------------------------------------------------------

def check_draw_image_sources(fn: Callable) -> None:
    """Grade ``draw_image_sources(B, T, K, generator) -> (src_clip, src_frame)`` by the properties of
    :func:`vdm_lite.datasets.append_image_frames`'s draw: ``(B, K)`` long, in range, never the clip
    itself, every other clip and every frame equally likely, and a pure function of the generator."""
    B, T, K = 4, 5, 3000
    case = f"B={B}, T={T}, K={K}"
    out = _call(fn, "draw_image_sources", {"B": B, "T": T, "K": K, "generator": _gen(9)})
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        _fail("draw_image_sources", case, [f"return (src_clip, src_frame), two tensors; got {type(out).__name__}"])
    for name, v in zip(("src_clip", "src_frame"), out):
        if not isinstance(v, torch.Tensor):
            _fail("draw_image_sources", case, [f"{name}: a torch.Tensor expected, got {type(v).__name__}"])
        if tuple(v.shape) != (B, K):
            _fail("draw_image_sources", case, [f"{name}: shape {(B, K)} expected, got {tuple(v.shape)}"])
        if v.dtype != torch.long:
            _fail("draw_image_sources", case, [f"{name}: dtype int64 (long) expected, got {v.dtype}: it indexes the batch"])
    src_clip, src_frame = out
    if src_clip.min() < 0 or src_clip.max() >= B or src_frame.min() < 0 or src_frame.max() >= T:
        _fail("draw_image_sources", case, [f"indices out of range: src_clip in [{int(src_clip.min())}, {int(src_clip.max())}] "
                                           f"(0..{B - 1} allowed), src_frame in [{int(src_frame.min())}, "
                                           f"{int(src_frame.max())}] (0..{T - 1} allowed)"])
    own = src_clip == torch.arange(B)[:, None]
    if own.any():
        b = int(own.nonzero()[0, 0])
        _fail("draw_image_sources", case, [f"clip {b} got an image frame from itself ({int(own.sum())} times in all): "
                                           "images must come from other videos"],
              ["draw an offset in 1..B-1 and take (b + offset) % B"])
    # equally likely: each other clip 1 / (B - 1), each frame 1 / T; 6 standard deviations of a binomial count
    for b in range(B):
        counts = torch.bincount(src_clip[b], minlength=B).double()[torch.arange(B) != b]
        p, n = 1 / (B - 1), K
        if ((counts - n * p).abs() > 6 * math.sqrt(n * p * (1 - p))).any():
            _fail("draw_image_sources", case, [f"clip {b}: the other clips are not equally likely; counts over {K} draws: "
                                               f"{counts.long().tolist()} (about {n * p:.0f} each expected)"])
    counts = torch.bincount(src_frame.flatten(), minlength=T).double()
    n, p = B * K, 1 / T
    if ((counts - n * p).abs() > 6 * math.sqrt(n * p * (1 - p))).any():
        _fail("draw_image_sources", case, [f"the frames are not equally likely: counts {counts.long().tolist()} over "
                                           f"{B * K} draws (about {n * p:.0f} each expected)"])
    again = _call(fn, "draw_image_sources", {"B": B, "T": T, "K": K, "generator": _gen(9)})
    if not (torch.equal(again[0], src_clip) and torch.equal(again[1], src_frame)):
        _fail("draw_image_sources", case, ["two calls with generators of the same seed gave different draws: "
                                           "pass generator= to every torch.randint / torch.rand"])
    small = _call(fn, "draw_image_sources", {"B": 2, "T": 1, "K": 0, "generator": _gen(9)})
    if tuple(small[0].shape) != (2, 0) or tuple(small[1].shape) != (2, 0):
        _fail("draw_image_sources", "B=2, T=1, K=0", [f"shapes (2, 0) expected for K = 0, got {tuple(small[0].shape)} "
                                                      f"and {tuple(small[1].shape)}"])
    print(f"{PASS} draw_image_sources draws like vdm_lite.datasets.append_image_frames: (B, K) long, never the clip "
          f"itself, other clips and frames equally likely ({B * K} draws), reproducible from the generator")


def check_append_images(fn: Callable) -> None:
    """Grade ``append_images(video, src_clip, src_frame) -> (video, image_mask)`` against
    :func:`vdm_lite.datasets.append_image_frames` (joint training, Section 3): the sources are the
    library's own draw (its ``image_source``); the clip part, the appended frames and the mask are
    checked apart."""
    from .datasets import append_image_frames

    g = _gen(10)
    cases = [(4, 6, 3, torch.float32), (2, 5, 1, torch.float64), (3, 4, 0, torch.float32), (5, 1, 4, torch.float32)]
    for B, T, K, dtype in cases:
        video = _randn((B, 3, T, 4, 6), dtype, g)
        ref = append_image_frames({"video": video}, K, generator=g)
        src_clip, src_frame = ref["image_source"][..., 0], ref["image_source"][..., 1]
        case = f"video {(B, 3, T, 4, 6)} {str(dtype).removeprefix('torch.')}, K = {K}, src_clip {src_clip.tolist()}, " \
               f"src_frame {src_frame.tolist()}"
        out = _call(fn, "append_images", {"video": video, "src_clip": src_clip, "src_frame": src_frame})
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            _fail("append_images", case, [f"return (video, image_mask), two tensors; got {type(out).__name__}"])
        got, mask = out
        problems = {}
        p = _mismatch(got, ref["video"], "video (B, C, T + K, H, W)")
        if p and isinstance(got, torch.Tensor) and got.shape == ref["video"].shape and got.dtype == video.dtype:
            p = None
            if not torch.equal(got[:, :, :T], video):
                p = "video: the first T frames must be the clips themselves, unchanged"
            else:
                wrong = [(b, k) for b in range(B) for k in range(K) if not torch.equal(got[b, :, T + k], ref["video"][b, :, T + k])]
                if wrong:
                    b, k = wrong[0]
                    p = (f"video: appended frame k={k} of clip b={b} (frame {T + k}) should be frame "
                         f"src_frame[b, k]={int(src_frame[b, k])} of clip src_clip[b, k]={int(src_clip[b, k])} "
                         f"({len(wrong)} of {B * K} appended frames wrong)")
        problems["video"] = p
        problems["image_mask"] = _mismatch(mask, ref["image_mask"], "image_mask (B, T + K) bool, True on the K appended frames")
        if any(problems.values()):
            _fail("append_images", case, [p for p in problems.values() if p] +
                  [f"{k}: correct" for k, p in problems.items() if p is None])
    print(f"{PASS} append_images matches vdm_lite.datasets.append_image_frames on {len(cases)} batches "
          "(K = 0 and T = 1 included, float32 and float64); clips, appended frames and image_mask checked apart")


GRADERS: dict[str, Callable[[Callable], None]] = {
    "q_sample": check_q_sample,
    "posterior": check_posterior,
    "convert": check_convert,
    "x_weight": check_x_weight,
    "ancestral_step": check_ancestral_step,
    "langevin_step": check_langevin_step,
    "classifier_free_guidance": check_classifier_free_guidance,
    "temporal_attention_mask": check_temporal_attention_mask,
    "conv1x3x3_video": check_conv1x3x3_video,
    "draw_image_sources": check_draw_image_sources,
    "append_images": check_append_images,
}


# -- the student version -------------------------------------------------------------------------------

SOLUTION_START = re.compile(r"^(?P<indent>[ \t]*)# --- solution \(your turn: (?P<hint>.+)\) ---[ \t]*$")
SOLUTION_END = re.compile(r"^[ \t]*# --- end solution ---[ \t]*$")
MARKER = re.compile(r"^[ \t]*# --- (solution|end solution)\b")
STUDENT_NOTE = ("\n\n> **Student version.** Each exercise cell raises *\"your turn\"* until you write its body; the cell "
                "after it grades your function against the library and says what is off.")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def student_source(source: str) -> str:
    """``source`` with every solution block (markers included) replaced by
    ``raise NotImplementedError("your turn: HINT")`` at the marker's indentation."""
    out, hint, start = [], None, 0
    lines = source.split("\n")
    for n, line in enumerate(lines, 1):
        m = SOLUTION_START.match(line)
        if hint is None:
            if m:
                hint, start = m, n
                out.append(f'{m["indent"]}raise NotImplementedError({json.dumps("your turn: " + m["hint"])})')
            elif MARKER.match(line):
                raise ValueError(f"line {n}: {line.strip()!r} outside a solution block (or a start marker without "
                                 "'(your turn: ...)')")
            else:
                out.append(line)
        elif SOLUTION_END.match(line):
            hint = None
        elif MARKER.match(line):
            raise ValueError(f"line {n}: {line.strip()!r} inside the solution block opened on line {start}")
    if hint is not None:
        raise ValueError(f"the solution block opened on line {start} has no '# --- end solution ---'")
    return "\n".join(out)


def _solved_functions(source: str) -> list[str]:
    """Names of the functions whose body holds a solution block."""
    starts = [n for n, line in enumerate(source.split("\n"), 1) if SOLUTION_START.match(line)]
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and any(node.lineno < n <= node.end_lineno for n in starts):
            names.append(node.name)
    return names


def is_exercise_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and any(SOLUTION_START.match(l) for l in _source(cell).split("\n"))


def is_grader_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and re.search(r"\bexercises\.check_\w+\(", _source(cell)) is not None


def find_exercises(nb: dict) -> list[dict]:
    """The exercises of a notebook (a dict from its JSON): one dict per function with a solution
    block, ``{"name", "cell" (index), "source", "grader_cell" (index of the next code cell)}``."""
    found = []
    cells = nb["cells"]
    for i, cell in enumerate(cells):
        if is_exercise_cell(cell):
            nxt = next((j for j in range(i + 1, len(cells)) if cells[j].get("cell_type") == "code"), None)
            for name in _solved_functions(_source(cell)):
                found.append({"name": name, "cell": i, "source": _source(cell), "grader_cell": nxt})
    return found


def _as_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def student_notebook(nb: dict) -> dict:
    """A copy of the notebook ``nb`` (its JSON as a dict): solution blocks replaced by the "your
    turn" error, outputs of exercise and grader cells cleared, a note in the first cell."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        exercise, grader = is_exercise_cell(cell), is_grader_cell(cell)
        if exercise:
            cell["source"] = _as_lines(student_source(_source(cell)))
        if exercise or grader:
            cell["outputs"], cell["execution_count"] = [], None
    if nb["cells"] and nb["cells"][0].get("cell_type") == "markdown":
        first = nb["cells"][0]
        text = _source(first)
        head, sep, rest = text.partition("\n\n")  # after the title block
        first["source"] = _as_lines(head + STUDENT_NOTE + (sep + rest if sep else ""))
    return nb


def write_student_version(sources: list[Path], out_dir: Path) -> list[tuple[str, int]]:
    """Write the student version of the notebooks ``sources`` (files, or folders whose
    ``NN_*.ipynb`` are taken) into ``out_dir``; returns ``(file name, number of exercises)``."""
    files: list[Path] = []
    for src in sources:
        src = Path(src)
        files += sorted(src.glob("[0-9][0-9]_*.ipynb")) if src.is_dir() else [src]
    if not files:
        raise ValueError(f"no notebooks found in {', '.join(map(str, sources))}")
    out_dir = Path(out_dir)
    if any(f.resolve().parent == out_dir.resolve() for f in files):
        raise ValueError(f"{out_dir} holds the source notebooks: write the student version to another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        nb = json.loads(f.read_text(encoding="utf-8"))
        n = len(find_exercises(nb))
        (out_dir / f.name).write_text(json.dumps(student_notebook(nb), indent=1, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
        written.append((f.name, n))
    return written


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m vdm_lite.exercises",
                                     description="The notebooks' graded exercises: list them, or write the student version.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--student", action="store_true",
                      help="write the student version: SRC... (notebook files or folders) OUT_DIR")
    mode.add_argument("--list", action="store_true", help="list the exercises of SRC... (notebook files or folders)")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.student:
        if len(args.paths) < 2:
            parser.error("--student needs SRC... OUT_DIR")
        try:
            written = write_student_version(args.paths[:-1], args.paths[-1])
        except ValueError as exc:
            parser.error(str(exc))
        for name, n in written:
            print(f"{args.paths[-1] / name}: {n} exercise(s)")
        return 0
    for src in args.paths:
        for f in sorted(src.glob("[0-9][0-9]_*.ipynb")) if src.is_dir() else [src]:
            names = [e["name"] for e in find_exercises(json.loads(f.read_text(encoding="utf-8")))]
            print(f"{f.name}: {', '.join(names) if names else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
