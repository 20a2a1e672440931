"""The Frechet distance between two Gaussians fitted to features (FVD, FID; Section 4).

The paper scores samples with FVD (Unterthiner et al. 2018; Tables 2-6) and FID (Heusel
et al. 2017; Tables 1, 4-6). Both are the Frechet (2-Wasserstein) distance between Gaussians
fitted to network features of real and generated data:

    d^2 = || mu_1 - mu_2 ||^2 + tr(S_1) + tr(S_2) - 2 tr( (S_1 S_2)^{1/2} ).

``S_1 S_2`` is not symmetric, and ``scipy.linalg.sqrtm`` of it returns complex values with
spurious imaginary parts when the covariances are singular (fewer samples than feature
dimensions is the rule with 400- or 2048-d features). Here the trace is computed in float64
from two symmetric eigendecompositions, which stay real:

    tr( (S_1 S_2)^{1/2} ) = sum_i sqrt( eig_i( S_1^{1/2} S_2 S_1^{1/2} ) ),

because ``S_1 S_2 = S_1^{1/2} (S_1^{1/2} S_2 S_1^{1/2}) S_1^{-1/2}`` is similar to a symmetric
positive semi-definite matrix (by continuity this holds for singular ``S_1`` too).
``S_1^{1/2}`` comes from ``eigh`` with tiny negative eigenvalues (round-off) clamped to 0.

* :func:`gaussian_stats` -- ``features (N, D) -> (mu (D,), sigma (D, D), N)``, float64;
* :func:`frechet_distance` -- the distance between two fitted Gaussians;
* :func:`frechet_from_features` -- both steps, as a :class:`FrechetResult` that prints the
  sample counts next to the number (``FVD 123.4 (n=256 vs 256)``): an FVD on 64 videos is
  biased upward and is not comparable to one on 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch

__all__ = [
    "Stats",
    "FrechetResult",
    "gaussian_stats",
    "trace_sqrt_product",
    "frechet_distance",
    "frechet_from_features",
]

Stats = tuple[torch.Tensor, torch.Tensor, int]  # (mu (D,), sigma (D, D), n), float64
ArrayLike = Union[torch.Tensor, np.ndarray]


@dataclass(frozen=True)
class FrechetResult:
    """A Frechet distance with the sample counts it was computed from.

    ``str(result)`` reads ``"FVD 123.4 (n=256 vs 256)"``; ``float(result)`` is the value.
    """

    value: float
    n_real: int
    n_fake: int
    name: str = "FD"

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        v = self.value
        number = f"{v:.1f}" if abs(v) >= 100 else f"{v:.4g}"
        return f"{self.name} {number} (n={self.n_real} vs {self.n_fake})"


def _as_float64(x: ArrayLike | Any, what: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    return x.detach().to(device="cpu", dtype=torch.float64)


def _check_finite(x: torch.Tensor, what: str) -> None:
    bad = ~torch.isfinite(x)
    if bad.any():
        raise ValueError(f"{what} has {int(bad.sum())} non-finite entries (NaN or inf) out of {x.numel()}")


def gaussian_stats(features: ArrayLike) -> Stats:
    """Mean and unbiased covariance of ``features (N, D)``, in float64 on the CPU.

    Returns ``(mu (D,), sigma (D, D), N)``. ``sigma`` divides by ``N - 1`` (as ``np.cov``).
    Raises ``ValueError`` for fewer than 2 samples or non-finite features.
    """
    x = _as_float64(features, "features")
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {tuple(x.shape)}")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 samples to estimate a covariance, got {n}")
    _check_finite(x, "features")
    mu = x.mean(dim=0)
    xc = x - mu
    sigma = xc.T @ xc / (n - 1)
    return mu, sigma, n


def _check_gaussian(mu: torch.Tensor, sigma: torch.Tensor, which: str) -> None:
    if mu.ndim != 1:
        raise ValueError(f"mu{which} must be a vector (D,), got shape {tuple(mu.shape)}")
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
        raise ValueError(f"sigma{which} must be a square matrix (D, D), got shape {tuple(sigma.shape)}")
    if sigma.shape[0] != mu.shape[0]:
        raise ValueError(f"mu{which} has {mu.shape[0]} dimensions but sigma{which} is {tuple(sigma.shape)}")
    _check_finite(mu, f"mu{which}")
    _check_finite(sigma, f"sigma{which}")


def _sym(a: torch.Tensor) -> torch.Tensor:
    return (a + a.T) / 2


def _psd_sqrt(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by ``eigh``; eigenvalues
    below 0 (round-off on singular matrices) are clamped to 0."""
    w, v = torch.linalg.eigh(_sym(a))
    return (v * w.clamp(min=0).sqrt()) @ v.T


def trace_sqrt_product(sigma1: ArrayLike, sigma2: ArrayLike) -> float:
    """``tr( (S_1 S_2)^{1/2} ) = sum sqrt(eig(S_1^{1/2} S_2 S_1^{1/2}))`` in float64, real
    for any two symmetric positive semi-definite ``(D, D)`` matrices."""
    s1, s2 = _as_float64(sigma1, "sigma1"), _as_float64(sigma2, "sigma2")
    r = _psd_sqrt(s1)
    m = _sym(r @ _sym(s2) @ r)
    eig = torch.linalg.eigvalsh(m).clamp(min=0)
    return float(eig.sqrt().sum())


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """The Frechet distance ``||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})`` between
    ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``: ``mu (D,)``, ``sigma (D, D)``; float64, never
    complex. Round-off below 0 is returned as 0 (the exact value is >= 0).

    Raises ``ValueError`` on mismatched dimensions or non-finite inputs.
    """
    mu1, mu2 = _as_float64(mu1, "mu1"), _as_float64(mu2, "mu2")
    s1, s2 = _as_float64(sigma1, "sigma1"), _as_float64(sigma2, "sigma2")
    _check_gaussian(mu1, s1, "1")
    _check_gaussian(mu2, s2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"the two Gaussians live in different dimensions: {mu1.shape[0]} vs {mu2.shape[0]}")
    mean_term = float(((mu1 - mu2) ** 2).sum())
    trace_term = float(torch.trace(s1) + torch.trace(s2)) - 2.0 * trace_sqrt_product(s1, s2)
    return max(mean_term + trace_term, 0.0)


def _stats_of(x: ArrayLike | Stats, what: str) -> Stats:
    if isinstance(x, tuple):
        if len(x) != 3:
            raise ValueError(f"{what}: statistics must be (mu, sigma, n), got a tuple of {len(x)}")
        mu, sigma, n = x
        return _as_float64(mu, "mu"), _as_float64(sigma, "sigma"), int(n)
    return gaussian_stats(x)


def frechet_from_features(real: ArrayLike | Stats, fake: ArrayLike | Stats, name: str = "FD") -> FrechetResult:
    """Frechet distance between features ``real (N_r, D)`` and ``fake (N_f, D)``.

    Either side may instead be precomputed statistics ``(mu, sigma, n)`` from
    :func:`gaussian_stats` (e.g. the real data's, computed once). ``name`` labels the result
    (``"FVD"``, ``"FID-first"``).
    """
    mu_r, s_r, n_r = _stats_of(real, "real")
    mu_f, s_f, n_f = _stats_of(fake, "fake")
    if mu_r.shape != mu_f.shape:
        raise ValueError(f"real features have {mu_r.shape[0]} dimensions but fake ones have {mu_f.shape[0]}")
    return FrechetResult(frechet_distance(mu_r, s_r, mu_f, s_f), n_r, n_f, name)
