"""Graders of notebook 11, evaluation (Section 4; the paper numbers no equation for it): the Frechet
distance of FVD and FID, ``fit_gaussian``, the Gaussian of a set of features, and ``frechet``, the
distance of two Gaussians, against :mod:`vdm_lite.metrics`."""

from __future__ import annotations

import math
from typing import Callable

import torch

from ._grading import (
    PASS,
    _as_number,
    _call,
    _describe,
    _dt,
    _fail,
    _gen,
    _matches,
    _mismatch,
    _randn,
)


def check_fit_gaussian(fn: Callable) -> None:
    """Grade ``fit_gaussian(features) -> (mu, sigma)``, ``(N, D) -> (D,), (D, D)`` float64, against
    :func:`vdm_lite.metrics.gaussian_stats` (the Gaussians of FVD and FID, Section 4): the mean and
    the unbiased covariance are checked apart."""
    from ..metrics import gaussian_stats

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
    from ..metrics import frechet_distance, gaussian_stats

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
