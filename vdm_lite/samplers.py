"""Samplers of Section 2: ancestral eq. (4), predictor-corrector eq. (5), DDIM, and
classifier-free guidance eq. (6).

Every sampler takes *any* denoiser ``model(z_t, logsnr, **cond) -> prediction`` whose
parameterization (``"eps"``, ``"v"`` or ``"x"``) is declared by a ``parameterization``
attribute or the ``parameterization=`` argument: a U-Net, or an analytic denoiser of
:mod:`vdm_lite.toy`. Predictions are converted with :func:`vdm_lite.diffusion.convert`.

Time runs on a uniform grid ``t_0 = 1 > t_1 > ... > t_N = 0``; ``z_1 ~ N(0, I)``.
Each update is a small function named after its equation, and :func:`sample` loops over them:

* :func:`ancestral_step` -- eq. (4), ``z_t -> z_s`` given ``x_hat(z_t)``;
* :func:`langevin_step` -- eq. (5), the predictor-corrector's corrector at level ``s``;
* :func:`ddim_step` -- DDIM's deterministic ``z_t -> z_s``;
* :func:`classifier_free_guidance` -- eq. (6), combining two predictions.

Notebook ``03_samplers_and_guidance`` compares the samplers against known answers.

Hooks for conditional sampling (Section 3.1): a denoiser wrapper changes
what the model predicts (reconstruction guidance, eq. (7)); ``on_step`` rewrites the
state after every update (replacement).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from .conventions import NULL_CLASS, NULL_TEXT, resolve_parameterization
from .diffusion import broadcast_to, convert, posterior
from .schedule import CosineSchedule, Schedule, alpha_sigma, get_schedule
from .utils import progress_enabled, randn_like

__all__ = [
    "SAMPLERS",
    "denoise",
    "time_grid",
    "ancestral_step",
    "langevin_step",
    "ddim_step",
    "sample",
    "ancestral_sample",
    "pc_sample",
    "ddim_sample",
    "NULL_CLASS",
    "NULL_TEXT",
    "null_condition",
    "classifier_free_guidance",
    "ClassifierFreeGuidance",
]

SAMPLERS = ("ancestral", "pc", "ddim")
OnStep = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _clip_range(clip_x: bool | Sequence[float] | None) -> tuple[float, float] | None:
    if clip_x is None or clip_x is False:
        return None
    if clip_x is True:
        return (-1.0, 1.0)
    lo, hi = clip_x
    if not lo < hi:
        raise ValueError(f"clip_x range must have lo < hi, got {clip_x}")
    return float(lo), float(hi)


def denoise(
    model: Callable[..., torch.Tensor],
    z_t: torch.Tensor,
    logsnr: torch.Tensor | float,
    parameterization: str | None = None,
    clip_x: bool | Sequence[float] | None = None,
    **cond,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Call the denoiser once and return ``(x_hat, eps_hat)``, consistent with each other.

    ``logsnr`` may be a scalar: it is expanded to ``(B,)`` for the call. With ``clip_x``
    (``True`` for ``[-1, 1]``, or a ``(lo, hi)`` pair) ``x_hat`` is clipped to the data range
    and ``eps_hat`` recomputed from the clipped ``x_hat``.
    """
    parameterization = resolve_parameterization(model, parameterization)
    lam = torch.as_tensor(logsnr, device=z_t.device, dtype=z_t.dtype)
    if lam.ndim == 0:
        lam = lam.expand(z_t.shape[0])
    pred = model(z_t, lam, **cond)
    if pred.shape != z_t.shape:
        raise ValueError(f"denoiser returned shape {tuple(pred.shape)}, expected {tuple(z_t.shape)}")
    pred = pred.to(z_t.dtype)
    x_hat = convert(pred, z_t, lam, parameterization, "x")
    rng = _clip_range(clip_x)
    if rng is not None:
        x_hat = x_hat.clamp(*rng)
        eps_hat = convert(x_hat, z_t, lam, "x", "eps")
    else:
        eps_hat = convert(pred, z_t, lam, parameterization, "eps")
    return x_hat, eps_hat


def time_grid(steps: int, schedule: Schedule, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform times ``1 = t_0 > ... > t_N = 0`` and their log-SNRs, each ``(N + 1,)``."""
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    t = torch.linspace(1.0, 0.0, int(steps) + 1, dtype=torch.float64)
    lam = schedule.logsnr(t)
    return t.to(device=device, dtype=dtype), lam.to(device=device, dtype=dtype)


# -- one update of each sampler ------------------------------------------------------------
# ``logsnr_s``, ``logsnr_t`` (s before t, so lambda_s >= lambda_t) are scalars or ``(B,)``,
# in the order of :func:`vdm_lite.diffusion.posterior`; noise is drawn by the caller.


def ancestral_step(
    z_t: torch.Tensor,
    x_hat: torch.Tensor,
    logsnr_s: torch.Tensor | float,
    logsnr_t: torch.Tensor | float,
    noise: torch.Tensor | None,
    gamma: float = 0.0,
) -> torch.Tensor:
    """One step of the ancestral sampler, eq. (4): ``z_t -> z_s`` given ``x_hat = x_hat(z_t)``,

        z_s = mu_{s|t}(z_t, x_hat) + sqrt( (sigma~_{s|t}^2)^(1 - gamma) (sigma_{t|s}^2)^gamma ) eps

    ``noise`` is ``eps ~ N(0, I)`` of ``z_t``'s shape, or ``None`` for the mean alone (the
    sampler's last step, to ``t = 0``). ``gamma = 0``: the posterior's variance, eq. (3);
    ``gamma = 1``: the forward step's, eq. (1).
    """
    # eq. (3): mu_{s|t}(z_t, x_hat) and sigma~_{s|t}^2 = (1 - r) sigma_s^2, with r = exp(lambda_t - lambda_s)
    mean, var = posterior(z_t, x_hat, logsnr_s, logsnr_t)
    if noise is None:  # the last step, to t = 0: the mean alone
        return mean
    if gamma > 0:  # sigma_{t|s}^2 = (1 - r) sigma_t^2, so the variance of eq. (4) is sigma~^2 (sigma_t^2 / sigma_s^2)^gamma
        _, sigma_s = alpha_sigma(broadcast_to(logsnr_s, z_t))  # sigma_s
        _, sigma_t = alpha_sigma(broadcast_to(logsnr_t, z_t))  # sigma_t
        var = var * (sigma_t**2 / sigma_s**2) ** gamma  # (sigma~_{s|t}^2)^(1 - gamma) (sigma_{t|s}^2)^gamma
    return mean + var.sqrt() * noise  # z_s = mu_{s|t} + sqrt(variance) eps


def langevin_step(
    z_s: torch.Tensor,
    eps_hat: torch.Tensor,
    logsnr_s: torch.Tensor | float,
    noise: torch.Tensor,
    delta: float = 0.1,
) -> torch.Tensor:
    """One Langevin corrector step at level ``s``, eq. (5) (the paper's ``delta = 0.1``):

        z_s <- z_s - (1/2) delta sigma_s eps_hat(z_s) + sqrt(delta) sigma_s eps'

    ``eps_hat = eps_theta(z_s)`` is the scaled score (``eps ~ -sigma_s grad log p(z_s)``), so
    this is ``z + (delta sigma_s^2 / 2) grad log p + sqrt(delta sigma_s^2) eps'``;
    ``noise`` is ``eps' ~ N(0, I)``, fresh for every step.
    """
    _, sigma_s = alpha_sigma(broadcast_to(logsnr_s, z_s))  # sigma_s
    # z_s - (1/2) delta sigma_s eps_hat  (a step up the score)  +  sqrt(delta) sigma_s eps'  (fresh noise)
    return z_s - 0.5 * delta * sigma_s * eps_hat + (delta**0.5) * sigma_s * noise


def ddim_step(x_hat: torch.Tensor, eps_hat: torch.Tensor, logsnr_s: torch.Tensor | float) -> torch.Tensor:
    """One deterministic DDIM step (Song et al. 2021) ``z_t -> z_s``: the clean prediction and
    the noise prediction of ``z_t`` are carried to level ``s`` unchanged,

        z_s = alpha_s x_hat(z_t) + sigma_s eps_hat(z_t)
    """
    alpha_s, sigma_s = alpha_sigma(broadcast_to(logsnr_s, x_hat))  # alpha_s, sigma_s
    return alpha_s * x_hat + sigma_s * eps_hat  # z_s, as if eps_hat were the noise of z_t


def sample(
    model: Callable[..., torch.Tensor],
    shape: Sequence[int],
    *,
    sampler: str = "ancestral",
    steps: int = 256,
    schedule: Schedule | str | None = None,
    parameterization: str | None = None,
    gamma: float = 0.0,
    corrector_steps: int = 1,
    delta: float = 0.1,
    clip_x: bool | Sequence[float] | None = None,
    generator: torch.Generator | int | None = None,
    z_init: torch.Tensor | None = None,
    on_step: OnStep | None = None,
    progress: bool | None = None,
    return_trajectory: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    **cond: Any,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Draw samples of shape ``shape`` (e.g. ``(B, C, T, H, W)``) from a denoiser.

    Args:
        model: ``model(z_t, logsnr, **cond) -> prediction``.
        sampler: ``"ancestral"`` (eq. (4)), ``"pc"`` (eq. (4) then the Langevin corrector
            of eq. (5)) or ``"ddim"`` (deterministic: ``z_s = alpha_s x_hat + sigma_s eps_hat``).
        steps: number of predictor steps ``N`` on the uniform grid.
        schedule: a :class:`~vdm_lite.schedule.Schedule` or its name; default the paper's
            cosine schedule on ``[-20, 20]``.
        gamma: ancestral variance ``(sigma~_{s|t}^2)^(1 - gamma) (sigma_{t|s}^2)^gamma``, eq. (4).
        corrector_steps, delta: Langevin corrector steps after each predictor step and its
            step size, eq. (5) (``"pc"`` only). The corrector runs at every level but ``t = 0``.
        clip_x: clip ``x_hat`` to ``[-1, 1]`` (``True``) or to ``(lo, hi)`` before each update.
        generator: a ``torch.Generator`` or a seed; the same seed gives the same samples.
            Noise is drawn on the generator's device, then moved to ``device``.
        z_init: the starting ``z_1`` instead of fresh noise.
        on_step: ``on_step(z_new, logsnr_new, z_old, logsnr_old) -> z_new``, applied after every
            predictor and corrector update (replacement-style conditioning uses it).
        progress: show a tqdm bar (default: on, except in fast mode).
        return_trajectory: also return a dict with ``t`` ``(N + 1,)``, ``z`` ``(N + 1, *shape)``
            (the states, from ``z_1`` to the sample), ``x_hat`` ``(N, *shape)`` and ``nfe``
            (denoiser calls), all on the CPU.
        **cond: passed to every denoiser call (``class_label=...``, ``image_mask=...``).

    Returns:
        The samples (``z`` at ``t = 0``), or ``(samples, trajectory)``.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    if delta <= 0:
        raise ValueError(f"delta must be positive, got {delta}")
    if corrector_steps < 0:
        raise ValueError(f"corrector_steps must be >= 0, got {corrector_steps}")
    parameterization = resolve_parameterization(model, parameterization)
    schedule = CosineSchedule() if schedule is None else get_schedule(schedule)
    if isinstance(generator, int) or generator is None:
        g = torch.Generator().manual_seed(int(generator)) if isinstance(generator, int) else None
    else:
        g = generator
    if device is None:
        device = z_init.device if z_init is not None else torch.device("cpu")
    shape = tuple(int(s) for s in shape)
    if z_init is not None:
        if tuple(z_init.shape) != shape:
            raise ValueError(f"z_init shape {tuple(z_init.shape)} does not match shape {shape}")
        z = z_init.to(device=device, dtype=dtype)
    else:
        z = randn_like(torch.empty(shape, device=device, dtype=dtype), g)
    ts, lams = time_grid(steps, schedule, device=device, dtype=dtype)

    nfe = 0

    def den(z_, lam_):
        nonlocal nfe
        nfe += 1
        return denoise(model, z_, lam_, parameterization, clip_x, **cond)

    traj_z, traj_x = ([z.detach().cpu()], []) if return_trajectory else (None, None)
    for i in tqdm(range(steps), desc=f"{sampler} sampling", disable=not progress_enabled(progress), leave=False):
        lam_t, lam_s = lams[i], lams[i + 1]
        last = i == steps - 1
        x_hat, eps_hat = den(z, lam_t)  # one denoiser call at t
        if sampler == "ddim":
            z_new = ddim_step(x_hat, eps_hat, lam_s)
        else:  # "ancestral", and the predictor of "pc"; the last step, to t = 0, takes the mean
            z_new = ancestral_step(z, x_hat, lam_s, lam_t, None if last else randn_like(z, g), gamma)
        if on_step is not None:
            z_new = on_step(z_new, lam_s, z, lam_t)
        if sampler == "pc" and not last:
            for _ in range(corrector_steps):
                _, eps_c = den(z_new, lam_s)  # one more denoiser call, at s
                z_corr = langevin_step(z_new, eps_c, lam_s, randn_like(z, g), delta)
                z_new = on_step(z_corr, lam_s, z_new, lam_s) if on_step is not None else z_corr
        z = z_new
        if return_trajectory:
            traj_z.append(z.detach().cpu())
            traj_x.append(x_hat.detach().cpu())
    if return_trajectory:
        return z, {"t": ts.cpu(), "z": torch.stack(traj_z), "x_hat": torch.stack(traj_x), "nfe": nfe}
    return z


def ancestral_sample(model, shape, *, steps: int = 256, gamma: float = 0.0, **kwargs):
    """The ancestral sampler of eq. (4); see :func:`sample` for the arguments."""
    return sample(model, shape, sampler="ancestral", steps=steps, gamma=gamma, **kwargs)


def pc_sample(model, shape, *, steps: int = 256, corrector_steps: int = 1, delta: float = 0.1, **kwargs):
    """Predictor-corrector: eq. (4) then ``corrector_steps`` Langevin steps of eq. (5)
    (``delta = 0.1`` in the paper); see :func:`sample` for the arguments."""
    return sample(model, shape, sampler="pc", steps=steps, corrector_steps=corrector_steps, delta=delta, **kwargs)


def ddim_sample(model, shape, *, steps: int = 50, **kwargs):
    """Deterministic DDIM (Song et al. 2021): ``z_s = alpha_s x_hat + sigma_s eps_hat``."""
    return sample(model, shape, sampler="ddim", steps=steps, **kwargs)


# -- classifier-free guidance, eq. (6) ---------------------------------------------------
# NULL_CLASS (-1) and NULL_TEXT ("") are defined in vdm_lite.conventions (re-exported here).


def null_condition(cond: dict[str, Any]) -> dict[str, Any]:
    """The same conditioning with every condition replaced by its null value:
    ``class_label -> -1``, ``text -> ""`` (docs/design.md, Conventions).
    Other keyword arguments (``image_mask``, ...) pass through unchanged."""
    out = dict(cond)
    if out.get("class_label") is not None:
        out["class_label"] = torch.full_like(torch.as_tensor(out["class_label"]), NULL_CLASS)
    if out.get("text") is not None:
        text = out["text"]
        if isinstance(text, str):
            out["text"] = NULL_TEXT
        elif isinstance(text, torch.Tensor):
            raise ValueError("token-id text needs an explicit null_cond for classifier-free guidance")
        else:
            out["text"] = [NULL_TEXT] * len(text)
    return out


def classifier_free_guidance(pred_cond: torch.Tensor, pred_uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Eq. (6): ``eps~(z_t, c) = (1 + w) eps(z_t, c) - w eps(z_t)``, from the conditional and the
    unconditional (null-condition) prediction. The same line combines v- or x-predictions
    (see :class:`ClassifierFreeGuidance`)."""
    return (1 + w) * pred_cond - w * pred_uncond


def _concat(a: Any, b: Any) -> Any:
    if isinstance(a, torch.Tensor) and a.ndim > 0:
        return torch.cat([a, b.to(a.device)], 0)
    if isinstance(a, (list, tuple)):
        return list(a) + list(b)
    if a is b or (not isinstance(a, torch.Tensor) and a == b):
        return a
    raise TypeError("cannot batch this condition")


class ClassifierFreeGuidance:
    """A denoiser wrapper for classifier-free guidance, eq. (6) (:func:`classifier_free_guidance`):

        eps~(z_t, c) = (1 + w) eps(z_t, c) - w eps(z_t)

    ``eps(z_t)`` is the same network with the condition replaced by its null value
    (:func:`null_condition`, or ``null_cond``: a dict of overrides or a function of the
    conditioning dict). Because :func:`~vdm_lite.diffusion.convert` is affine in the
    prediction with coefficients summing to one, combining eps, v or x predictions this way
    is the same thing; the wrapper keeps the model's own parameterization and works with
    every sampler. ``w = 0`` returns the conditional prediction itself.

    With ``batched=True`` the conditional and the unconditional call share one forward pass
    of batch ``2B`` (faster on a GPU); conditions that cannot be concatenated fall back to
    two calls.
    """

    def __init__(
        self,
        model: Callable[..., torch.Tensor],
        guidance_weight: float,
        null_cond: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        parameterization: str | None = None,
        batched: bool = True,
    ):
        self.model = model
        self.guidance_weight = float(guidance_weight)
        self.null_cond = null_cond
        self.parameterization = resolve_parameterization(model, parameterization)
        self.batched = batched

    def _null(self, cond: dict[str, Any]) -> dict[str, Any]:
        if self.null_cond is None:
            return null_condition(cond)
        if callable(self.null_cond):
            return self.null_cond(cond)
        return {**cond, **self.null_cond}

    def __call__(self, z_t: torch.Tensor, logsnr: torch.Tensor, **cond: Any) -> torch.Tensor:
        w = self.guidance_weight
        if w == 0:
            return self.model(z_t, logsnr, **cond)
        uncond = self._null(cond)
        if self.batched:
            try:
                both = {k: _concat(cond[k], uncond[k]) for k in cond}
            except (TypeError, RuntimeError):
                both = None
            if both is not None and set(uncond) == set(cond):
                lam = torch.as_tensor(logsnr, device=z_t.device)
                lam = lam.expand(z_t.shape[0]) if lam.ndim == 0 else lam
                out = self.model(torch.cat([z_t, z_t]), torch.cat([lam, lam]), **both)
                c, u = out.chunk(2)
                return classifier_free_guidance(c, u, w)
        c = self.model(z_t, logsnr, **cond)
        u = self.model(z_t, logsnr, **uncond)
        return classifier_free_guidance(c, u, w)
