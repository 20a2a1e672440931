"""Analytic denoisers: exact ``E[x | z_t]`` for toy data whose answer is known.

They use the same door as a network -- ``denoiser(z_t, logsnr, **cond) -> x_hat`` with
``parameterization = "x"`` -- so samplers and guidance can be checked against the truth
(tests, and notebooks ``03_samplers_and_guidance`` and ``09_reconstruction_guidance``).

With ``z_t = alpha x + sigma eps`` (eq. (1)):

* Gaussian data ``x ~ N(mu, S)``:
  ``E[x | z] = mu + alpha S (alpha^2 S + sigma^2 I)^{-1} (z - alpha mu)``.
* A mixture of isotropic Gaussians ``sum_k w_k N(mu_k, s_k^2 I)``: the same per component,
  weighted by the responsibilities ``p(k | z) ∝ w_k N(z; alpha mu_k, (alpha^2 s_k^2 + sigma^2) I)``.
"""

from __future__ import annotations

import math

import torch

from .diffusion import broadcast_to
from .schedule import alpha_sigma

__all__ = ["GaussianDenoiser", "GaussianMixtureDenoiser"]


class GaussianDenoiser:
    """The exact denoiser of Gaussian data ``x ~ N(mean, cov)``.

    Args:
        mean: ``event_shape`` tensor (e.g. ``(C, T, H, W)`` for a Gaussian "video", or ``(D,)``).
        cov: ``(D, D)`` symmetric positive semi-definite, ``D = mean.numel()``; or a ``(D,)``
            vector of variances for a diagonal covariance.

    Calls take ``z_t`` of shape ``(B, *event_shape)`` and return ``x_hat`` of the same shape.
    Computations run in float64 and are cast back.
    """

    parameterization = "x"

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor):
        mean = torch.as_tensor(mean, dtype=torch.float64)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        d = mean.numel()
        if cov.ndim == 1:
            cov = torch.diag(cov)
        if cov.shape != (d, d):
            raise ValueError(f"cov must be ({d}, {d}) or ({d},) for a mean with {d} elements, got {tuple(cov.shape)}")
        if not torch.allclose(cov, cov.T, atol=1e-10):
            raise ValueError("cov must be symmetric")
        evals, evecs = torch.linalg.eigh(cov)
        if evals.min() < -1e-9 * max(1.0, evals.max().item()):
            raise ValueError("cov must be positive semi-definite")
        self.event_shape = tuple(mean.shape)
        self.mean, self.cov = mean.reshape(-1), cov
        self.evals, self.evecs = evals.clamp_min(0), evecs
        # the symmetric square root of cov is unique, so samples do not depend on the eigenbasis
        # eigh returns (a repeated eigenvalue leaves it free, and LAPACK builds choose differently)
        self.root = (evecs * self.evals.sqrt()) @ evecs.T

    def _flat(self, z: torch.Tensor) -> torch.Tensor:
        if tuple(z.shape[1:]) != self.event_shape:
            raise ValueError(f"expected z of shape (B, *{self.event_shape}), got {tuple(z.shape)}")
        return z.reshape(z.shape[0], -1).to(torch.float64)

    def __call__(self, z_t: torch.Tensor, logsnr: torch.Tensor, **cond) -> torch.Tensor:
        z = self._flat(z_t)
        mean, evals, evecs = (a.to(z.device) for a in (self.mean, self.evals, self.evecs))
        alpha, sigma = alpha_sigma(broadcast_to(torch.as_tensor(logsnr, dtype=torch.float64, device=z.device), z))
        r = z - alpha * mean  # (B, D)
        gain = alpha * evals / (alpha**2 * evals + sigma**2)  # (B, D) in the eigenbasis
        x = mean + ((r @ evecs) * gain) @ evecs.T
        return x.to(z_t.dtype).reshape(z_t.shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` exact samples of the data, shape ``(n, *event_shape)``, float64."""
        eps = torch.randn(n, self.mean.numel(), generator=generator, dtype=torch.float64)
        x = self.mean + eps @ self.root  # root @ root = cov, root symmetric
        return x.reshape(n, *self.event_shape)

    def conditional(self, known: torch.Tensor, x_known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact conditional ``p(x^b | x^a)``: mean ``(D_b,)`` and covariance ``(D_b, D_b)``.

        ``known`` is a boolean mask of ``event_shape`` (True on ``x^a``); ``x_known`` holds the
        known values, either ``(D_a,)`` or a full ``event_shape`` tensor from which they are read.
        """
        known = torch.as_tensor(known, dtype=torch.bool).reshape(-1)
        if known.numel() != self.mean.numel():
            raise ValueError(f"known mask has {known.numel()} elements, the data has {self.mean.numel()}")
        x_known = torch.as_tensor(x_known, dtype=torch.float64).reshape(-1)
        if x_known.numel() == known.numel():
            x_known = x_known[known]
        a, b = known, ~known
        s_aa, s_ba, s_bb = self.cov[a][:, a], self.cov[b][:, a], self.cov[b][:, b]
        k = torch.linalg.solve(s_aa, s_ba.T).T  # S_ba S_aa^-1
        return self.mean[b] + k @ (x_known - self.mean[a]), s_bb - k @ s_ba.T


class GaussianMixtureDenoiser:
    """The exact denoiser of a mixture of isotropic Gaussians in ``D`` dimensions.

    Args:
        means: ``(K, D)`` component means.
        stds: ``(K,)`` component standard deviations (or a float for all).
        weights: ``(K,)`` mixture weights (default uniform); normalized.
        labels: ``(K,)`` class of each component, for a class-conditional toy: called with
            ``class_label`` ``(B,)``, the mixture is restricted to that class's components;
            the null label ``-1`` (or no label) keeps the whole mixture.

    Calls take ``z_t`` ``(B, D)`` and return ``x_hat`` ``(B, D)``.
    """

    parameterization = "x"

    def __init__(self, means, stds=0.1, weights=None, labels=None):
        self.means = torch.as_tensor(means, dtype=torch.float64)
        if self.means.ndim != 2:
            raise ValueError(f"means must be (K, D), got {tuple(self.means.shape)}")
        k = self.means.shape[0]
        self.stds = torch.as_tensor(stds, dtype=torch.float64).expand(k).clone()
        w = torch.ones(k, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (k,) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be (K,) non-negative with a positive sum")
        self.weights = w / w.sum()
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
        if self.labels is not None and self.labels.shape != (k,):
            raise ValueError(f"labels must be (K,) = ({k},)")

    def _log_weights(self, class_label, batch: int) -> torch.Tensor:
        logw = self.weights.log().expand(batch, -1)
        if class_label is None:
            return logw
        if self.labels is None:
            raise ValueError("this mixture has no component labels; it is unconditional")
        y = torch.as_tensor(class_label, dtype=torch.long).reshape(-1, 1).cpu()
        keep = (self.labels[None, :] == y) | (y < 0)
        if not keep.any(1).all():
            raise ValueError("a class_label has no component in this mixture")
        return logw.masked_fill(~keep, -math.inf)

    def __call__(self, z_t: torch.Tensor, logsnr: torch.Tensor, class_label=None, **cond) -> torch.Tensor:
        if z_t.ndim != 2 or z_t.shape[1] != self.means.shape[1]:
            raise ValueError(f"expected z of shape (B, {self.means.shape[1]}), got {tuple(z_t.shape)}")
        z = z_t.to(torch.float64)
        means, stds = self.means.to(z.device), self.stds.to(z.device)
        alpha, sigma = alpha_sigma(broadcast_to(torch.as_tensor(logsnr, dtype=torch.float64, device=z.device), z))  # (B, 1)
        var = alpha**2 * stds**2 + sigma**2  # (B, K)
        d = z.shape[1]
        sq = ((z[:, None, :] - alpha[:, :, None] * means[None]) ** 2).sum(-1)  # (B, K)
        logp = self._log_weights(class_label, z.shape[0]).to(z.device) - 0.5 * sq / var - 0.5 * d * var.log()
        resp = torch.softmax(logp, dim=1)  # (B, K)
        gain = (alpha * stds**2 / var)[:, :, None]  # (B, K, 1)
        x_k = means[None] + gain * (z[:, None, :] - alpha[:, :, None] * means[None])
        return (resp[:, :, None] * x_k).sum(1).to(z_t.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None, class_label: int | None = None):
        """``n`` exact samples ``(n, D)`` (float64) and their component indices ``(n,)``."""
        logw = self._log_weights(None if class_label is None else torch.tensor([class_label]), 1)[0]
        k = torch.multinomial(torch.softmax(logw, 0), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        return self.means[k] + self.stds[k, None] * eps, k

    def log_prob(self, x: torch.Tensor, class_label: int | None = None) -> torch.Tensor:
        """The data log-density at ``x`` ``(N, D)`` (for contour plots)."""
        x = torch.as_tensor(x, dtype=torch.float64)
        d = x.shape[1]
        logw = self._log_weights(None if class_label is None else torch.tensor([class_label]), 1)[0]
        sq = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        var = self.stds**2
        return torch.logsumexp(logw - 0.5 * sq / var - 0.5 * d * torch.log(2 * math.pi * var), dim=1)
