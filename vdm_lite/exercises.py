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
    "check_training_loss",
    "check_train_step",
    "check_frame_positions",
    "check_masked_temporal_attention",
    "check_drop_condition",
    "check_guided_eps",
    "check_reconstruction_guided_x",
    "check_superres_guided_x",
    "check_fit_gaussian",
    "check_frechet",
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
    if not isinstance(value, (bool, int, float, str, list, tuple, dict, type(None))):
        return f"a {type(value).__name__}"  # a model, an optimizer, a denoiser or a schedule: its name, not its repr
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


# -- small models the graders of notebooks 06-10 train, condition and guide ---------------------------

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
    from .toy import GaussianDenoiser

    g = _gen(seed)
    d = math.prod(event_shape)
    a = _randn((d, d), torch.float64, g)
    cov = a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
    return GaussianDenoiser(0.3 * _randn(event_shape, torch.float64, g), cov)


def _dt(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _a(param: str) -> str:
    """``"an eps"``, ``"a v"``, ``"an x"``: the article before a parameterization's name."""
    return f"{'an' if param in ('eps', 'x') else 'a'} {param}"


def _as_number(got: Any) -> float | None:
    """A float from a Python number or a one-element real tensor; None otherwise."""
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_complex():
        return float(got.detach())
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(got)
    return None


# -- notebook 06: eq. (2) and one training step ---------------------------------------------------------

def check_training_loss(fn: Callable) -> None:
    """Grade ``training_loss(model, x, logsnr, noise) -> (B,)`` against
    :func:`vdm_lite.diffusion.diffusion_loss` (eq. (2), the MSE in the model's own parameterization)
    for an eps-, a v- and an x-predicting model, at t from 0 (log-SNR 20) to 1 (log-SNR -20)."""
    from .diffusion import diffusion_loss, q_sample
    from .schedule import CosineSchedule, alpha_sigma

    schedule = CosineSchedule()
    g = _gen(11)
    cases = [("eps", (3, 3, 4, 8, 8), torch.float32, [0.0, 0.5, 1.0]),
             ("v", (4, 3, 2, 6, 6), torch.float64, [0.05, 0.3, 0.7, 0.95]),
             ("x", (2, 3, 3, 4, 4), torch.float32, [0.2, 0.9])]
    for n, (param, shape, dtype, ts) in enumerate(cases):
        model = _TinyDenoiser(shape[1], param, seed=20 + n, dtype=dtype)
        x, noise = _randn(shape, dtype, g), _randn(shape, dtype, g)
        t = torch.tensor(ts, dtype=dtype)
        logsnr = schedule.logsnr(t)
        case = f"{_a(param)}-predicting model (model.parameterization = {param!r}), x {tuple(shape)} {_dt(dtype)}, " \
               f"logsnr {[round(v, 2) for v in logsnr.tolist()]}"
        with torch.no_grad():
            ref = diffusion_loss(model, x, schedule, t=t, noise=noise)
        got = _call(fn, "training_loss", {"model": model, "x": x, "logsnr": logsnr, "noise": noise})
        if isinstance(got, torch.Tensor) and not got.requires_grad:
            _fail("training_loss", case, ["the loss does not depend on the model's weights (requires_grad is False): "
                                          "compute it from model(z_t, logsnr) without torch.no_grad() or .item(), so "
                                          "loss.backward() can train the model"])
        got_d = got.detach() if isinstance(got, torch.Tensor) else got
        p = _mismatch(got_d, ref, "the per-example loss (B,)")
        if p:
            hints = []
            if isinstance(got_d, torch.Tensor) and got_d.numel() == 1:
                hints.append("return one loss per example, shape (B,): average over every dimension but the batch, "
                             "e.g. .flatten(1).mean(1)")
            alpha, sigma = (_per_example(v, x) for v in alpha_sigma(logsnr))
            z_t, _ = q_sample(x, logsnr, noise=noise)
            with torch.no_grad():
                pred = model(z_t, logsnr)
            targets = {"eps": noise, "v": alpha * noise - sigma * x, "x": x, "-v": sigma * x - alpha * noise}
            for name, target in targets.items():
                mse = (pred - target).square().flatten(1).mean(1)
                if name != param and _matches(got_d, mse):
                    hints.append(f"that is the MSE to the target of {'v with the wrong sign' if name == '-v' else name + '-prediction'}; "
                                 f"this model predicts {param} (read model.parameterization): the targets are eps, "
                                 "v = alpha_t eps - sigma_t x, and x")
                if name == param and _matches(got_d, mse * x[0].numel()):
                    hints.append("that is a sum over the elements of each example; eq. (2)'s loss here is their mean")
            _fail("training_loss", case, [p], hints)
    print(f"{PASS} training_loss matches vdm_lite.diffusion.diffusion_loss for eps-, v- and x-predicting models "
          "(float32 and float64, t from 0 to 1: log-SNR 20 to -20), one loss per example")


def check_train_step(fn: Callable) -> None:
    """Grade ``train_step(model, ema, opt, x, t, noise, schedule, decay) -> loss`` against the update
    of :meth:`vdm_lite.train.Trainer.train_step` (without its gradient clipping and learning-rate
    warmup): the loss of eq. (2) (:func:`vdm_lite.diffusion.diffusion_loss`), a backward pass, an
    optimizer step, then the EMA update ``ema = decay ema + (1 - decay) p``. Three steps in a row on
    a small model and AdamW; the loss, the weights and the EMA are checked apart after each."""
    from .diffusion import diffusion_loss
    from .schedule import CosineSchedule

    schedule = CosineSchedule()
    g = _gen(12)
    cases = [("eps", 0.9, torch.float32), ("v", 0.5, torch.float64)]
    n_steps = 3
    for param, decay, dtype in cases:
        mine = _TinyDenoiser(3, param, seed=30, dtype=dtype)
        ref = copy.deepcopy(mine)
        mine_ema = copy.deepcopy(mine).requires_grad_(False)
        with torch.no_grad():  # the EMA starts away from the weights, so every part of its update shows
            for p in mine_ema.parameters():
                p.add_(0.1 * _randn(tuple(p.shape), dtype, g))
        ref_ema = copy.deepcopy(mine_ema)
        mine_opt = torch.optim.AdamW(mine.parameters(), lr=0.05, betas=(0.9, 0.99))
        ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.05, betas=(0.9, 0.99))
        names = [name for name, _ in ref.named_parameters()]
        for step in range(n_steps):
            x, noise = _randn((2, 3, 3, 6, 6), dtype, g), _randn((2, 3, 3, 6, 6), dtype, g)
            t = torch.rand(2, generator=g, dtype=dtype)
            case = f"step {step + 1} of {n_steps} in a row, {_a(param)}-predicting model, AdamW(lr=0.05), decay = {decay}"
            before = [p.detach().clone() for p in ref.parameters()]
            ema_before = [p.detach().clone() for p in ref_ema.parameters()]
            # the reference: the same lines as Trainer.train_step
            ref_opt.zero_grad(set_to_none=True)
            loss = diffusion_loss(ref, x, schedule, t=t, noise=noise).mean()
            loss.backward()
            ref_opt.step()
            with torch.no_grad():
                torch._foreach_lerp_(list(ref_ema.parameters()), [p.detach() for p in ref.parameters()], 1.0 - decay)
            got = _call(fn, "train_step", {"model": mine, "ema": mine_ema, "opt": mine_opt, "x": x, "t": t,
                                           "noise": noise, "schedule": schedule, "decay": decay})
            problems, hints = {}, []
            value = _as_number(got)
            if value is None:
                problems["the returned loss"] = (f"the returned loss: a number expected (loss.item()), got "
                                                 f"{_describe(got) if got is not None else 'None'}")
            elif not math.isclose(value, loss.item(), rel_tol=1e-5, abs_tol=1e-7):
                problems["the returned loss"] = (f"the returned loss: expected {loss.item():.6g} (the batch mean of eq. (2), "
                                                 f"computed before the step), got {value:.6g}")
            else:
                problems["the returned loss"] = None
            wrong = [n for n, a, b in zip(names, mine.parameters(), ref.parameters())
                     if not torch.allclose(a.detach(), b.detach(), rtol=1e-4, atol=1e-6)]
            problems["the weights after opt.step()"] = (f"the weights after opt.step(): {', '.join(wrong)} differ from "
                                                        "the reference's" if wrong else None)
            if wrong:
                if all(torch.equal(a.detach(), b) for a, b in zip(mine.parameters(), before)):
                    hints.append("the model's weights did not change: call loss.backward() and then opt.step()")
                elif step > 0:
                    hints.append("the earlier steps were right: the gradients add up across steps unless you call "
                                 "opt.zero_grad() before loss.backward()")
            ema_got = [p.detach() for p in mine_ema.parameters()]
            ema_wrong = [n for n, a, b in zip(names, ema_got, ref_ema.parameters()) if not torch.allclose(a, b, rtol=1e-4, atol=1e-6)]
            problems["the EMA"] = (f"the EMA: {', '.join(ema_wrong)} differ from decay * ema + (1 - decay) * p"
                                   if ema_wrong else None)
            if ema_wrong and not wrong:
                new = [p.detach() for p in ref.parameters()]
                close = lambda alt: all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(ema_got, alt))  # noqa: E731
                if close(ema_before):
                    hints.append("the EMA did not change: update its parameters in place (under torch.no_grad())")
                elif close(new):
                    hints.append("the EMA is a copy of the new weights: ema = decay * ema + (1 - decay) * p")
                elif close([decay * p + (1 - decay) * e for p, e in zip(new, ema_before)]):
                    hints.append("decay and 1 - decay are swapped: the EMA keeps the fraction decay of itself")
                elif close([decay * e + (1 - decay) * p for p, e in zip(before, ema_before)]):
                    hints.append("that EMA uses the weights from before opt.step(): update it after the step")
            if any(p.requires_grad for p in mine_ema.parameters()):
                problems["the EMA"] = "the EMA: its parameters require gradients now; update them under torch.no_grad()"
            if any(problems.values()):
                _fail("train_step", case, [p for p in problems.values() if p] +
                      [f"{k}: correct" for k, p in problems.items() if p is None], hints)
    print(f"{PASS} train_step matches Trainer.train_step's update (eq. (2) loss, backward, AdamW step, EMA) on "
          f"{n_steps} steps in a row of an eps- and a v-predicting model, EMA decay 0.9 and 0.5")


# -- notebook 07: the relative positions and the masked temporal attention of joint training ------------

def _joint_masks() -> list[torch.Tensor]:
    g = _gen(13)
    return [torch.tensor([[False] * 5 + [True] * 2]),
            torch.tensor([[False, True, False, False, True, False, False], [True, False, False, True, False, False, False]]),
            torch.rand(3, 6, generator=g) < 0.4,
            torch.ones(2, 3, dtype=torch.bool),
            torch.zeros(1, 4, dtype=torch.bool),
            torch.zeros(1, 1, dtype=torch.bool)]


def check_frame_positions(fn: Callable) -> None:
    """Grade ``frame_positions(image_mask) -> positions`` ``(B, T)`` long against
    :func:`vdm_lite.nn.frame_positions` (joint training, Section 3): every frame's position is the
    number of video frames before it; the first wrong frame is named with its kind."""
    from .nn import frame_positions

    masks = _joint_masks()
    for mask in masks:
        case = f"image_mask {mask.int().tolist()}"
        got = _call(fn, "frame_positions", {"image_mask": mask.clone()})
        ref = frame_positions(mask)
        p = _mismatch(got, ref, "the positions (B, T)")
        if p:
            hints = ["positions = the number of video frames (~image_mask) before each frame: a cumulative sum "
                     "(torch.cumsum) of the video frames, minus the frame's own count"]
            if (isinstance(got, torch.Tensor) and got.shape == ref.shape and not got.is_floating_point()
                    and got.dtype != torch.bool and bool((got != ref.to(got.dtype)).any())):
                b, i = (got != ref.to(got.dtype)).nonzero()[0].tolist()
                kind = "image" if mask[b, i] else "video"
                p = (f"example b={b}: frame i={i} ({kind}) should have position {int(ref[b, i])}, the number of video frames "
                     f"before it, got {int(got[b, i])}; row expected {ref[b].tolist()}, got {got[b].tolist()}")
                if got.dtype != torch.long:
                    p += f" (and the dtype should be int64, not {_dt(got.dtype)})"
                if torch.equal(got.long(), torch.arange(mask.shape[1]).expand_as(ref)):
                    hints.insert(0, "those are the frame indices: the images must not count, so the video frames after "
                                    "an image keep their distances to the video frames before it")
            _fail("frame_positions", case, [p], hints)
    print(f"{PASS} frame_positions matches vdm_lite.nn.frame_positions on {len(masks)} image masks "
          "(appended, interleaved, leading and random images; all images; all video; T = 1)")


def check_masked_temporal_attention(fn: Callable) -> None:
    """Grade ``masked_temporal_attention(q, k, v, bias, image_mask)`` ``(B, heads, T, d)`` against
    :class:`vdm_lite.nn.attention.TemporalAttention`'s attention (its ``attn_bias``, the relative
    position bias with ``-inf`` where :func:`~vdm_lite.nn.temporal_attention_mask` forbids, in
    ``scaled_dot_product_attention``; joint training, Section 3): image frames are checked first
    (their output must be their own ``v``), then video frames."""
    from .nn import frame_positions, temporal_attention_mask
    from .nn.attention import TemporalAttention

    g = _gen(14)
    sizes = {0: (2, 7, torch.float32), 1: (2, 3, torch.float64), 2: (1, 5, torch.float32), 3: (2, 4, torch.float64),
             4: (1, 4, torch.float32), 5: (2, 8, torch.float64)}
    masks = _joint_masks()
    for n, mask in enumerate(masks):
        heads, d, dtype = sizes[n]
        B, T = mask.shape
        q, k, v = (_randn((B, heads, T, d), dtype, g) for _ in range(3))
        attn = TemporalAttention(heads * d, head_dim=d, groups=1).to(dtype)
        with torch.no_grad():
            attn.rel_bias.table.copy_(_randn(tuple(attn.rel_bias.table.shape), dtype, g))
            bias = attn.rel_bias(frame_positions(mask))  # (B, heads, T, T)
            ref = F.scaled_dot_product_attention(q, k, v, attn_mask=attn.attn_bias(B, T, mask, q.device, dtype))
        case = f"q, k, v {(B, heads, T, d)} {_dt(dtype)}, image_mask {mask.int().tolist()}"
        got = _call(fn, "masked_temporal_attention", {"q": q, "k": k, "v": v, "bias": bias, "image_mask": mask.clone()})
        p = _mismatch(got, ref, "the output (B, heads, T, d)")
        if not p:
            continue
        hints = []
        if isinstance(got, torch.Tensor) and got.shape == ref.shape and got.dtype == ref.dtype:
            r, a = _tol(dtype)
            bad_images = [(b, i) for b, i in mask.nonzero().tolist() if not torch.allclose(got[b, :, i], v[b, :, i], rtol=r, atol=a)]
            if bad_images:
                b, i = bad_images[0]
                p = (f"image frame i={i} of example b={b}: its output should be v[b, :, i] itself (an image frame attends "
                     f"only to itself: its attention row is the identity), got something else ({len(bad_images)} image "
                     "frames wrong in all)")
            else:
                bad = [(b, i) for b, i in (~mask).nonzero().tolist() if not torch.allclose(got[b, :, i], ref[b, :, i], rtol=r, atol=a)]
                if bad:
                    b, i = bad[0]
                    p = (f"video frame i={i} of example b={b}: its output differs from attention over the video frames "
                         f"only ({len(bad)} video frames wrong in all; the image frames are right)")
            allowed = temporal_attention_mask(mask)[:, None]
            logits = q @ k.transpose(-1, -2) / math.sqrt(d)
            alternatives = {
                "no mask": (logits + bias).softmax(-1) @ v,
                "no scale": (q @ k.transpose(-1, -2) + bias).masked_fill(~allowed, float("-inf")).softmax(-1) @ v,
                "no bias": logits.masked_fill(~allowed, float("-inf")).softmax(-1) @ v,
                "after softmax": ((logits + bias).softmax(-1) * allowed) @ v,
            }
            messages = {
                "no mask": "frames attend across the video/image boundary: mask the logits with -inf where "
                           "temporal_attention_mask(image_mask) is False, before the softmax",
                "no scale": "the logits are q k^T / sqrt(d) (+ bias): the 1 / sqrt(d) is missing",
                "no bias": "add the relative position bias to the logits: q k^T / sqrt(d) + bias",
                "after softmax": "mask before the softmax (-inf logits): zeroing weights after it leaves rows that do not "
                                 "sum to 1",
            }
            hints += [messages[name] for name, alt in alternatives.items() if _matches(got, alt)]
        _fail("masked_temporal_attention", case, [p], hints or [
            "softmax over the keys of q k^T / sqrt(d) + bias, with -inf where temporal_attention_mask(image_mask) "
            "is False (broadcast (B, 1, T, T) over the heads), times v"])
    print(f"{PASS} masked_temporal_attention matches TemporalAttention's masked attention with its relative bias on "
          f"{len(masks)} image masks (float32 and float64, T = 1 included); image frames return their own v")


# -- notebook 08: condition dropout and eq. (6) on a class model ---------------------------------------

def check_drop_condition(fn: Callable) -> None:
    """Grade ``drop_condition(labels, p, generator) -> labels`` by the properties of the draw in
    :meth:`vdm_lite.train.Trainer._batch` (classifier-free guidance, eq. (6)): ``(B,)`` long, each
    label kept or replaced by the null class ``-1`` (:data:`vdm_lite.conventions.NULL_CLASS`) with
    probability ``p``, independently, and a pure function of the generator."""
    from .conventions import NULL_CLASS

    B = 20000
    labels = torch.randint(0, 18, (B,), generator=_gen(15))
    for p_drop in (0.1, 0.5, 0.0, 1.0):
        case = f"{B} labels in 0..17, p = {p_drop}"
        out = _call(fn, "drop_condition", {"labels": labels.clone(), "p": p_drop, "generator": _gen(16)})
        if not isinstance(out, torch.Tensor):
            _fail("drop_condition", case, [f"a torch.Tensor expected, got {type(out).__name__}"])
        if tuple(out.shape) != (B,) or out.dtype != torch.long:
            _fail("drop_condition", case, [f"labels of shape ({B},) and dtype int64 expected, got {tuple(out.shape)} "
                                           f"{_dt(out.dtype)}"])
        kept, dropped = out == labels, out == NULL_CLASS
        if not (kept | dropped).all():
            i = int((~(kept | dropped)).nonzero()[0])
            _fail("drop_condition", case, [f"label {int(labels[i])} (entry {i}) became {int(out[i])}: each label is either "
                                           f"kept or replaced by the null class {NULL_CLASS}"],
                  ["the null class is -1 (vdm_lite.conventions.NULL_CLASS), not 0: class 0 is the red circle"]
                  if bool((out[~kept] == 0).all()) else [])
        n = int(dropped.sum())
        sd = math.sqrt(B * p_drop * (1 - p_drop))
        if abs(n - B * p_drop) > 6 * sd + 0.5:
            hints = ["drop where torch.rand(B, generator=generator) < p: the probability of dropping is p"] \
                if abs(n - B * (1 - p_drop)) <= 6 * sd + 0.5 else []
            _fail("drop_condition", case, [f"{n} of {B} labels dropped; about {B * p_drop:.0f} expected (p = {p_drop})"], hints)
        if p_drop == 0.5:
            again = _call(fn, "drop_condition", {"labels": labels.clone(), "p": p_drop, "generator": _gen(16)})
            if not torch.equal(again, out):
                _fail("drop_condition", case, ["two calls with generators of the same seed gave different labels: pass "
                                               "generator= to torch.rand"])
            other = _call(fn, "drop_condition", {"labels": labels.clone(), "p": p_drop, "generator": _gen(17)})
            if torch.equal(other, out):
                _fail("drop_condition", case, ["generators of two different seeds gave the same drops: draw from the "
                                               "generator, once per label"])
            by_class = torch.stack([dropped[labels == c].float().mean() for c in range(18)])
            if (by_class - p_drop).abs().max() > 0.1:
                _fail("drop_condition", case, [f"the drop rate depends on the label (per class from {by_class.min():.2f} to "
                                               f"{by_class.max():.2f}): drop each label independently of its value"])
    print(f"{PASS} drop_condition replaces each label by the null class -1 with probability p (p = 0, 0.1, 0.5, 1 on "
          f"{B} labels), keeps the others, independently of the label, reproducibly from the generator")


def check_guided_eps(fn: Callable) -> None:
    """Grade ``guided_eps(model, z_t, logsnr, class_label, w) -> eps~`` ``(B, C, T, H, W)`` against
    :class:`vdm_lite.samplers.ClassifierFreeGuidance` (eq. (6)), its prediction converted to eps,
    for v-, eps- and x-predicting class models at ``w`` = 0, 1, 5."""
    from .conventions import NULL_CLASS
    from .diffusion import convert
    from .samplers import ClassifierFreeGuidance

    g = _gen(18)
    cases = [("v", torch.float32), ("eps", torch.float64), ("x", torch.float32)]
    for n, (param, dtype) in enumerate(cases):
        model = _TinyDenoiser(3, param, num_classes=4, seed=40 + n, dtype=dtype)
        z = _randn((3, 3, 2, 4, 4), dtype, g)
        lam = torch.tensor([-3.0, 0.0, 4.0], dtype=dtype)
        label = torch.tensor([0, 3, 1])
        with torch.no_grad():
            pred_c = model(z, lam, class_label=label)
            pred_u = model(z, lam, class_label=torch.full_like(label, NULL_CLASS))
            pred_0 = model(z, lam, class_label=torch.zeros_like(label))
        eps = lambda pred, src=param: convert(pred, z, lam, src, "eps")  # noqa: E731
        for w in (0.0, 1.0, 5.0):
            case = f"{_a(param)}-predicting class model (model.parameterization = {param!r}), z_t {tuple(z.shape)} " \
                   f"{_dt(dtype)}, class_label {label.tolist()}, w = {w}"
            with torch.no_grad():
                ref = eps(ClassifierFreeGuidance(model, w)(z, lam, class_label=label))
                got = _call(fn, "guided_eps", {"model": model, "z_t": z, "logsnr": lam, "class_label": label, "w": w})
            p = _mismatch(got, ref, "the guided eps~")
            if p:
                alts = {
                    "the conditional and unconditional predictions are swapped: (1 + w) eps(z_t, c) - w eps(z_t)":
                        (1 + w) * eps(pred_u) - w * eps(pred_c),
                    "the unconditional prediction uses the null class -1 (vdm_lite.conventions.NULL_CLASS), not class 0":
                        (1 + w) * eps(pred_c) - w * eps(pred_0),
                    f"that is eq. (6) in the model's own space ({param}): convert the predictions to eps with "
                    "vdm_lite.diffusion.convert(pred, z_t, logsnr, model.parameterization, 'eps')":
                        (1 + w) * pred_c - w * pred_u,
                }
                if param != "v":
                    alts["the predictions were converted from 'v': read the model's parameterization, "
                         "model.parameterization"] = (1 + w) * eps(pred_c, "v") - w * eps(pred_u, "v")
                hints = [h for h, alt in alts.items() if _matches(got, alt)]
                if not w and _matches(got, eps(pred_u)):
                    hints.append("at w = 0 eq. (6) returns the conditional prediction eps(z_t, c)")
                _fail("guided_eps", case, [p], hints)
    print(f"{PASS} guided_eps matches vdm_lite.samplers.ClassifierFreeGuidance (converted to eps) for v-, eps- and "
          "x-predicting class models at w = 0, 1, 5 (float32 and float64)")


# -- notebooks 09 and 10: eq. (7) and eq. (8) ------------------------------------------------------------

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
    from .guidance import reconstruction_guidance
    from .schedule import alpha_sigma

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


def check_superres_guided_x(fn: Callable) -> None:
    """Grade ``superres_guided_x(denoise_x, z_t, logsnr, x_a, w_r) -> x~`` ``(B, C, T, H, W)``
    against :func:`vdm_lite.guidance.superres_guidance` (eq. (8)) with the box-average downsampler
    (``"area"``), at downsampling factors 2 and 4; the prediction (``w_r = 0``) and the guidance term
    are checked apart."""
    from .guidance import downsample_video, superres_guidance
    from .schedule import alpha_sigma

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


# -- notebook 11: the Frechet distance --------------------------------------------------------------------

def check_fit_gaussian(fn: Callable) -> None:
    """Grade ``fit_gaussian(features) -> (mu, sigma)``, ``(N, D) -> (D,), (D, D)`` float64, against
    :func:`vdm_lite.metrics.gaussian_stats` (the Gaussians of FVD and FID, Section 4): the mean and
    the unbiased covariance are checked apart."""
    from .metrics import gaussian_stats

    g = _gen(22)
    cases = [(50, 4, torch.float32), (7, 10, torch.float64), (200, 1, torch.float64), (3, 2, torch.float32)]
    for N, D, dtype in cases:
        feats = _randn((N, D), dtype, g) * torch.linspace(0.5, 2.0, D, dtype=dtype) + 1.0
        mu_ref, sigma_ref, _ = gaussian_stats(feats)
        case = f"features ({N}, {D}) {_dt(dtype)}"
        out = _call(fn, "fit_gaussian", {"features": feats})
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            _fail("fit_gaussian", case, [f"return (mu, sigma), two tensors; got {type(out).__name__}"])
        mu, sigma = out
        problems, hints = {}, []
        problems["the mean mu (D,)"] = _mismatch(mu, mu_ref, "the mean mu (D,), float64")
        problems["the covariance sigma (D, D)"] = _mismatch(sigma, sigma_ref, "the covariance sigma (D, D), float64")
        if problems["the covariance sigma (D, D)"] and isinstance(sigma, torch.Tensor):
            if tuple(sigma.shape) == (N, N) and N != D:
                hints.append("that is an (N, N) matrix: the covariance is over the D features, e.g. torch.cov(features.T) "
                             "(torch.cov takes variables in rows)")
            if sigma.dtype == torch.float64 and _matches(sigma, sigma_ref * (N - 1) / N):
                hints.append("that divides by N; the unbiased covariance divides by N - 1 (as np.cov and torch.cov)")
        if any(p and "dtype" in p for p in problems.values()):
            hints.append("compute in float64 (features.double()): FVD's 400-d and FID's 2048-d covariances lose digits "
                         "in float32")
        if any(problems.values()):
            _fail("fit_gaussian", case, [p for p in problems.values() if p] +
                  [f"{k}: correct" for k, p in problems.items() if p is None], hints)
    print(f"{PASS} fit_gaussian matches vdm_lite.metrics.gaussian_stats on {len(cases)} feature sets (N < D and D = 1 "
          "included, float32 and float64 input); mean and unbiased covariance checked apart")


def check_frechet(fn: Callable) -> None:
    """Grade ``frechet(mu1, sigma1, mu2, sigma2) -> float`` against
    :func:`vdm_lite.metrics.frechet_distance` (FVD and FID, Section 4): the mean term (equal
    covariances), the trace term (equal means), covariances that do not commute, singular ones
    (fewer samples than dimensions) and identical Gaussians."""
    from .metrics import frechet_distance, gaussian_stats

    g = _gen(23)

    def psd(d, rank=None):
        a = _randn((d, rank or d), torch.float64, g)
        return a @ a.T / (rank or d)

    d5 = psd(5)
    mu_a, mu_b = _randn((5,), torch.float64, g), _randn((5,), torch.float64, g)
    s_few = gaussian_stats(_randn((3, 6), torch.float64, g))[1]  # rank 2 of 6
    s_few2 = gaussian_stats(_randn((4, 6), torch.float64, g))[1]  # rank 3 of 6
    cases = [
        ("the mean term ||mu1 - mu2||^2 (equal covariances)", (mu_a, d5, mu_b, d5)),
        ("the trace term tr(S1 + S2 - 2 (S1 S2)^(1/2)) (equal means, diagonal covariances)",
         (mu_a, torch.diag(torch.tensor([1.0, 4.0, 9.0, 0.25, 2.0], dtype=torch.float64)), mu_a,
          torch.diag(torch.tensor([4.0, 4.0, 1.0, 1.0, 0.5], dtype=torch.float64)))),
        ("covariances that do not commute (equal means)", (mu_a, psd(5), mu_a, psd(5))),
        ("covariances that do not commute, different means", (mu_a, psd(5), mu_b, psd(5))),
        ("singular covariances of 3 and 4 samples in 6 dimensions", (torch.zeros(6, dtype=torch.float64), s_few,
                                                                     torch.ones(6, dtype=torch.float64), s_few2)),
        ("identical Gaussians (the answer is 0)", (mu_b, d5, mu_b.clone(), d5.clone())),
        ("one dimension", (torch.tensor([0.5], dtype=torch.float64), torch.tensor([[2.0]], dtype=torch.float64),
                           torch.tensor([-1.0], dtype=torch.float64), torch.tensor([[0.5]], dtype=torch.float64))),
    ]
    problems, hints = {}, []
    for case, (m1, s1, m2, s2) in cases:
        ref = frechet_distance(m1, s1, m2, s2)
        try:
            got = _call(fn, "frechet", {"mu1": m1, "sigma1": s1, "mu2": m2, "sigma2": s2})
        except AssertionError as exc:
            if "singular" not in case:
                raise
            raise AssertionError(f"{exc}\n  hint: for {case}: clamp the eigenvalues at 0 before each square root "
                                 "(round-off makes the tiny ones of a singular covariance negative, and their sqrt "
                                 "is NaN)") from exc
        if isinstance(got, complex) or (isinstance(got, torch.Tensor) and got.is_complex()):
            problems[case] = (f"{case}: got the complex number {got}; the distance is real: use "
                              "tr((S1 S2)^(1/2)) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2))), symmetric matrices and eigh")
            continue
        value = _as_number(got)
        if value is None:
            problems[case] = f"{case}: a number expected (a float, or a one-element tensor), got {_describe(got)}"
        elif not math.isfinite(value):
            problems[case] = (f"{case}: got {value}, expected {ref:.6g}" +
                              ("; clamp the eigenvalues at 0 before the square root (round-off makes tiny ones negative)"
                               if "singular" in case else ""))
        elif not math.isclose(value, ref, rel_tol=1e-6, abs_tol=1e-8):
            problems[case] = f"{case}: expected {ref:.6g}, got {value:.6g}"
            mean_term = float((m1 - m2).square().sum())
            if case.startswith("the mean term") and math.isclose(value, math.sqrt(mean_term), rel_tol=1e-6):
                hints.append("the mean term is the squared distance ||mu1 - mu2||^2, no square root")
            if "commute" in case:
                e1, e2 = torch.linalg.eigvalsh(s1).clamp_min(0), torch.linalg.eigvalsh(s2).clamp_min(0)
                naive = mean_term + float(s1.trace() + s2.trace() - 2 * (e1 * e2).sqrt().sum())
                if math.isclose(value, naive, rel_tol=1e-6):
                    hints.append("tr((S1 S2)^(1/2)) is not sum sqrt(eig(S1) eig(S2)) unless S1 and S2 commute: take the "
                                 "eigenvalues of S1^(1/2) S2 S1^(1/2)")
        else:
            problems[case] = None
    if any(problems.values()):
        _fail("frechet", "these Gaussians", [p for p in problems.values() if p] +
              [f"{k}: correct" for k, p in problems.items() if p is None], hints)
    print(f"{PASS} frechet matches vdm_lite.metrics.frechet_distance on {len(cases)} pairs of Gaussians (mean and trace "
          "terms apart, non-commuting and singular covariances, identical Gaussians, D = 1)")


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
    "training_loss": check_training_loss,
    "train_step": check_train_step,
    "frame_positions": check_frame_positions,
    "masked_temporal_attention": check_masked_temporal_attention,
    "drop_condition": check_drop_condition,
    "guided_eps": check_guided_eps,
    "reconstruction_guided_x": check_reconstruction_guided_x,
    "superres_guided_x": check_superres_guided_x,
    "fit_gaussian": check_fit_gaussian,
    "frechet": check_frechet,
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
