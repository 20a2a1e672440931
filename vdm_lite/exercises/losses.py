"""Graders of notebook 02, losses and parameterizations (Section 2, eq. (2)): ``convert`` between the
eps, v and x predictions, and ``x_weight``, the weightings of eq. (2)'s loss, each against
:mod:`vdm_lite.diffusion`."""

from __future__ import annotations

from typing import Callable

import torch

from ._grading import PASS, _call, _fail, _gen, _mismatch, _randn


def check_convert(fn: Callable) -> None:
    """Grade ``convert(pred, z_t, logsnr, src, dst)`` against :func:`vdm_lite.diffusion.convert`
    for all 9 ``(src, dst)`` pairs of ``"eps"``, ``"v"``, ``"x"``; every wrong pair is named."""
    from ..diffusion import PARAMETERIZATIONS, convert

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
    from ..diffusion import x_weight
    from ..schedule import CosineSchedule

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
