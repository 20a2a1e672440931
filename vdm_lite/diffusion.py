"""The continuous-time Gaussian diffusion of Section 2: eq. (1)-(3).

Everything here is written in terms of the log-SNR ``lambda`` (see
:mod:`vdm_lite.schedule`), with ``alpha^2 = sigmoid(lambda)`` and
``sigma^2 = sigmoid(-lambda)``. ``logsnr`` arguments are a float, a 0-d tensor, or a
``(B,)`` tensor that is broadcast over the other dimensions of ``x`` (videos are
``(B, C, T, H, W)``, but any ``(B, ...)`` works).

* eq. (1): :func:`q_sample` draws ``z_t ~ q(z_t | x)``, :func:`q_step` draws
  ``z_t ~ q(z_t | z_s)``;
* eq. (3): :func:`posterior` gives mean and variance of ``q(z_s | z_t, x)``;
* eq. (2): :func:`convert` turns an eps-, v- or x-prediction into the others, and
  :func:`diffusion_loss` is the training loss with a documented weighting.

Notebooks ``01_forward_process`` and ``02_losses_and_parameterizations`` derive these.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch

from .conventions import PARAMETERIZATIONS, check_parameterization, resolve_parameterization
from .schedule import Schedule, alpha_sigma
from .utils import randn_like

__all__ = [
    "PARAMETERIZATIONS",
    "WEIGHTINGS",
    "check_parameterization",
    "broadcast_to",
    "q_sample",
    "q_step",
    "posterior",
    "convert",
    "x_weight",
    "sample_t",
    "diffusion_loss",
]

# PARAMETERIZATIONS and check_parameterization live in vdm_lite.conventions (re-exported here)
WEIGHTINGS = ("eps", "v", "x", "elbo")
Parameterization = Literal["eps", "v", "x"]


def broadcast_to(v: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """Reshape a scalar or per-example ``(B,)`` value to broadcast against ``x`` ``(B, ...)``."""
    if not isinstance(v, torch.Tensor):
        v = torch.tensor(v, dtype=x.dtype, device=x.device)
    v = v.to(x.device)
    if not torch.is_floating_point(v):
        v = v.to(x.dtype)
    if v.ndim == 0:
        return v.to(x.dtype)
    if v.ndim != 1 or v.shape[0] != x.shape[0]:
        raise ValueError(
            f"logsnr/t must be a scalar or have shape (B,) = ({x.shape[0]},) to match x of shape "
            f"{tuple(x.shape)}; got shape {tuple(v.shape)}"
        )
    return v.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


def q_sample(
    x: torch.Tensor,
    logsnr: torch.Tensor | float,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``z_t ~ q(z_t | x) = N(alpha_t x, sigma_t^2 I)``, eq. (1).

    Args:
        x: clean data ``(B, ...)``.
        logsnr: ``lambda_t``, scalar or ``(B,)``.
        noise: optional ``eps`` of ``x``'s shape; drawn from ``generator`` if not given.

    Returns:
        ``(z_t, eps)`` with ``z_t = alpha_t x + sigma_t eps``.
    """
    if noise is None:
        noise = randn_like(x, generator)
    elif noise.shape != x.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} does not match x shape {tuple(x.shape)}")
    alpha, sigma = alpha_sigma(broadcast_to(logsnr, x))
    return alpha * x + sigma * noise, noise


def q_step(
    z_s: torch.Tensor,
    logsnr_s: torch.Tensor | float,
    logsnr_t: torch.Tensor | float,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample ``z_t ~ q(z_t | z_s) = N((alpha_t / alpha_s) z_s, sigma_{t|s}^2 I)`` for
    ``s < t`` (so ``logsnr_t <= logsnr_s``), eq. (1), with

        sigma_{t|s}^2 = (1 - exp(lambda_t - lambda_s)) sigma_t^2.
    """
    lam_s, lam_t = broadcast_to(logsnr_s, z_s), broadcast_to(logsnr_t, z_s)
    if (lam_t > lam_s + 1e-6).any():
        raise ValueError("q_step goes forward in time: need logsnr_t <= logsnr_s (t later than s)")
    if noise is None:
        noise = randn_like(z_s, generator)
    elif noise.shape != z_s.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} does not match z_s shape {tuple(z_s.shape)}")
    alpha_s, _ = alpha_sigma(lam_s)
    alpha_t, sigma_t = alpha_sigma(lam_t)
    var = -torch.expm1(lam_t - lam_s) * sigma_t**2
    return (alpha_t / alpha_s) * z_s + var.clamp_min(0).sqrt() * noise


def posterior(
    z_t: torch.Tensor,
    x: torch.Tensor,
    logsnr_s: torch.Tensor | float,
    logsnr_t: torch.Tensor | float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of ``q(z_s | z_t, x)`` for ``s < t``, eq. (3):

        mu_{s|t}      = exp(lambda_t - lambda_s) (alpha_s / alpha_t) z_t
                        + (1 - exp(lambda_t - lambda_s)) alpha_s x
        sigma~_{s|t}^2 = (1 - exp(lambda_t - lambda_s)) sigma_s^2

    Returns ``(mean, variance)``; the variance broadcasts against ``z_t``.
    """
    lam_s, lam_t = broadcast_to(logsnr_s, z_t), broadcast_to(logsnr_t, z_t)
    if (lam_t > lam_s + 1e-6).any():
        raise ValueError("posterior q(z_s | z_t, x) needs s before t: logsnr_s >= logsnr_t")
    r = torch.exp(lam_t - lam_s)
    one_minus_r = -torch.expm1(lam_t - lam_s)
    alpha_s, sigma_s = alpha_sigma(lam_s)
    alpha_t, _ = alpha_sigma(lam_t)
    mean = r * (alpha_s / alpha_t) * z_t + one_minus_r * alpha_s * x
    return mean, one_minus_r * sigma_s**2


def convert(
    pred: torch.Tensor,
    z_t: torch.Tensor,
    logsnr: torch.Tensor | float,
    src: str,
    dst: str,
) -> torch.Tensor:
    """Turn a prediction of one parameterization into another, given ``z_t`` and
    ``lambda_t`` (eq. (2) and the notes that follow it):

        eps -> x:  x = (z - sigma eps) / alpha        x -> eps:  eps = (z - alpha x) / sigma
        v   -> x:  x = alpha z - sigma v              v -> eps:  eps = sigma z + alpha v
        v = alpha eps - sigma x

    All maps are affine in the prediction, so a linear combination of predictions (as in
    classifier-free guidance) commutes with them.
    """
    check_parameterization(src)
    check_parameterization(dst)
    if pred.shape != z_t.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} does not match z_t shape {tuple(z_t.shape)}")
    if src == dst:
        return pred
    alpha, sigma = alpha_sigma(broadcast_to(logsnr, z_t))
    if src == "v":
        if dst == "x":
            return alpha * z_t - sigma * pred
        return sigma * z_t + alpha * pred  # eps
    if src == "eps":
        if dst == "x":
            return (z_t - sigma * pred) / alpha
        x = (z_t - sigma * pred) / alpha
        return alpha * pred - sigma * x  # v; uses alpha^2 + sigma^2 = 1 nowhere, exact form
    # src == "x"
    if dst == "eps":
        return (z_t - alpha * pred) / sigma
    eps = (z_t - alpha * pred) / sigma
    return alpha * eps - sigma * pred  # v


def x_weight(logsnr: torch.Tensor, weighting: str, dlogsnr_dt: torch.Tensor | None = None) -> torch.Tensor:
    """The weight ``w(lambda)`` in eq. (2), ``w(lambda) ||x_hat - x||^2``, that each loss implies.

    * ``"x"``:    ``w = 1`` (plain MSE on x);
    * ``"eps"``:  ``w = exp(lambda)`` -- eps-MSE, because ``eps - eps_hat = (alpha/sigma)(x_hat - x)``;
    * ``"v"``:    ``w = 1 + exp(lambda)`` -- v-MSE, because ``v - v_hat = (x_hat - x) / sigma``;
    * ``"elbo"``: ``w = -1/2 (d lambda / dt) exp(lambda)`` -- the continuous-time variational
      bound (Kingma et al. 2021), which needs the schedule's ``dlogsnr_dt``.
    """
    if weighting == "x":
        return torch.ones_like(logsnr)
    if weighting == "eps":
        return torch.exp(logsnr)
    if weighting == "v":
        return 1.0 + torch.exp(logsnr)
    if weighting == "elbo":
        if dlogsnr_dt is None:
            raise ValueError("the 'elbo' weighting needs dlogsnr_dt (the schedule's derivative)")
        return -0.5 * dlogsnr_dt * torch.exp(logsnr)
    raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")


def sample_t(
    batch: int,
    generator: torch.Generator | None = None,
    low_discrepancy: bool = False,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Diffusion times ``t ~ U[0, 1]`` of shape ``(batch,)``.

    With ``low_discrepancy=True`` the batch is stratified: ``t_i = (u + i / B) mod 1`` for one
    ``u ~ U[0, 1]`` (Kingma et al. 2021), which lowers the variance of the loss estimate.
    """
    gdev = generator.device if generator is not None else device
    if low_discrepancy:
        u = torch.rand((), generator=generator, device=gdev, dtype=dtype)
        t = torch.remainder(u + torch.arange(batch, device=gdev, dtype=dtype) / batch, 1.0)
    else:
        t = torch.rand((batch,), generator=generator, device=gdev, dtype=dtype)
    return t.to(device)


def diffusion_loss(
    model: Callable[..., torch.Tensor],
    x: torch.Tensor,
    schedule: Schedule,
    parameterization: str | None = None,
    weighting: str | None = None,
    t: torch.Tensor | None = None,
    low_discrepancy: bool = False,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    **cond,
) -> torch.Tensor:
    """The training loss of eq. (2), one value per example, shape ``(B,)``.

    Draws ``t ~ U[0, 1]`` (or uses the given ``t``), ``z_t = alpha_t x + sigma_t eps``, calls
    ``model(z_t, lambda_t, **cond)`` and compares its prediction with the target of its
    parameterization (eps, v or x), as a mean over all non-batch elements.

    ``weighting=None`` keeps the plain MSE in the parameterization's own space, whose implied
    x-space weight is given by :func:`x_weight` (eps-MSE = ``exp(lambda)``, v-MSE =
    ``1 + exp(lambda)``, x-MSE = ``1``). Naming a weighting (``"eps"``, ``"v"``, ``"x"``,
    ``"elbo"``) rescales per example so that the loss equals
    ``w(lambda) ||x_hat - x||^2`` for that ``w`` instead, whatever the network predicts.
    """
    parameterization = resolve_parameterization(model, parameterization)
    if weighting is not None and weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {WEIGHTINGS}")
    b = x.shape[0]
    if t is None:
        t = sample_t(b, generator, low_discrepancy, device=x.device, dtype=x.dtype)
    t = torch.as_tensor(t, device=x.device, dtype=x.dtype)
    if t.ndim == 0:
        t = t.expand(b)
    logsnr = schedule.logsnr(t)
    z_t, eps = q_sample(x, logsnr, noise=noise, generator=generator)
    pred = model(z_t, logsnr, **cond)
    if pred.shape != x.shape:
        raise ValueError(f"model output shape {tuple(pred.shape)} does not match data shape {tuple(x.shape)}")
    if parameterization == "eps":
        target = eps
    elif parameterization == "x":
        target = x
    else:
        alpha, sigma = alpha_sigma(broadcast_to(logsnr, x))
        target = alpha * eps - sigma * x
    dtype = torch.promote_types(x.dtype, torch.float32)  # bf16/fp16 outputs: reduce in fp32
    mse = (pred.to(dtype) - target.to(dtype)).pow(2).flatten(1).mean(1)
    if weighting is None or weighting == parameterization:
        return mse
    dl = schedule.dlogsnr_dt(t) if weighting == "elbo" else None
    lam = logsnr.to(dtype)
    ratio = x_weight(lam, weighting, dl) / x_weight(lam, parameterization)
    return ratio * mse
