"""Noise schedules in log signal-to-noise ratio (Section 2 of the paper).

A variance-preserving diffusion is fixed by one decreasing function, the log-SNR
``lambda_t = log(alpha_t^2 / sigma_t^2)`` for ``t`` in ``[0, 1]``, with

    alpha_t^2 = sigmoid(lambda_t),    sigma_t^2 = sigmoid(-lambda_t).

``t = 0`` is clean data (``lambda_max``), ``t = 1`` is (almost) pure noise
(``lambda_min``). The paper uses the cosine schedule clipped to ``[-20, 20]`` for every
model (Appendix A). Notebook ``01_forward_process`` plots all of this.

Every schedule maps ``t -> lambda`` (:meth:`Schedule.logsnr`), back
(:meth:`Schedule.t_of_logsnr`), and gives ``d lambda / dt`` for the ELBO weighting of
:mod:`vdm_lite.diffusion`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "alpha_sigma",
    "Schedule",
    "CosineSchedule",
    "LinearLogSNRSchedule",
    "get_schedule",
    "SCHEDULES",
]


def alpha_sigma(logsnr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alpha, sigma)`` from the log-SNR: ``alpha^2 = sigmoid(lambda)``,
    ``sigma^2 = sigmoid(-lambda)`` (Section 2). Any shape; computed stably."""
    logsnr = torch.as_tensor(logsnr)
    if not torch.is_floating_point(logsnr):
        logsnr = logsnr.float()
    return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()


def _check_t(t: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t)
    if not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    if torch.isnan(t).any():
        raise ValueError("diffusion time t contains NaN")
    if (t < 0).any() or (t > 1).any():
        raise ValueError(
            f"diffusion time t must lie in [0, 1]; got values in [{t.min().item():.4g}, {t.max().item():.4g}]"
        )
    return t


class Schedule:
    """Base class: a strictly decreasing map ``t in [0, 1] -> lambda_t``.

    Subclasses implement :meth:`_logsnr`, :meth:`_t_of_logsnr` and :meth:`_dlogsnr_dt`;
    the public methods validate their input.
    """

    logsnr_min: float
    logsnr_max: float

    def logsnr(self, t: torch.Tensor) -> torch.Tensor:
        """``lambda_t`` for ``t`` in ``[0, 1]`` (any shape). Raises ``ValueError`` outside."""
        return self._logsnr(_check_t(t))

    __call__ = logsnr

    def t_of_logsnr(self, logsnr: torch.Tensor) -> torch.Tensor:
        """The inverse map ``lambda -> t``; ``lambda`` must lie in ``[logsnr_min, logsnr_max]``."""
        logsnr = torch.as_tensor(logsnr)
        if not torch.is_floating_point(logsnr):
            logsnr = logsnr.to(torch.get_default_dtype())
        tol = 1e-4 * max(1.0, abs(self.logsnr_min), abs(self.logsnr_max))
        if (logsnr < self.logsnr_min - tol).any() or (logsnr > self.logsnr_max + tol).any():
            raise ValueError(
                f"log-SNR must lie in [{self.logsnr_min}, {self.logsnr_max}] for this schedule; "
                f"got values in [{logsnr.min().item():.4g}, {logsnr.max().item():.4g}]"
            )
        return self._t_of_logsnr(logsnr).clamp(0.0, 1.0)

    def dlogsnr_dt(self, t: torch.Tensor) -> torch.Tensor:
        """``d lambda / dt`` (negative), used by the ELBO weighting."""
        return self._dlogsnr_dt(_check_t(t))

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(alpha_t, sigma_t)`` at time ``t``."""
        return alpha_sigma(self.logsnr(t))

    # -- to implement -------------------------------------------------------------
    def _logsnr(self, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _t_of_logsnr(self, logsnr: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _dlogsnr_dt(self, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class CosineSchedule(Schedule):
    """The cosine schedule in log-SNR form, clipped to ``[logsnr_min, logsnr_max]``.

        lambda(t) = -2 log tan(a t + b) + shift
        b = arctan(exp(-(logsnr_max - shift) / 2))
        a = arctan(exp(-(logsnr_min - shift) / 2)) - b

    so that ``lambda(0) = logsnr_max`` and ``lambda(1) = logsnr_min`` exactly. With
    ``shift = 0`` and an unclipped range this is ``alpha_t = cos(pi t / 2)``. A nonzero
    ``shift`` (``2 log(base_resolution / resolution)``, see :meth:`shifted`) moves the
    middle of the schedule so that a larger image gets the same noise per pixel as a
    smaller one, while keeping the clipped endpoints.
    """

    logsnr_min: float = -20.0
    logsnr_max: float = 20.0
    shift: float = 0.0

    def __post_init__(self):
        if not self.logsnr_min < self.logsnr_max:
            raise ValueError(f"need logsnr_min < logsnr_max, got {self.logsnr_min} >= {self.logsnr_max}")

    @classmethod
    def shifted(cls, resolution: int, base_resolution: int = 64, **kw) -> "CosineSchedule":
        """The resolution-shifted cosine: ``shift = 2 log(base_resolution / resolution)``."""
        if resolution <= 0 or base_resolution <= 0:
            raise ValueError("resolutions must be positive")
        return cls(shift=2.0 * math.log(base_resolution / resolution), **kw)

    @property
    def _b(self) -> float:
        return math.atan(math.exp(-0.5 * (self.logsnr_max - self.shift)))

    @property
    def _a(self) -> float:
        return math.atan(math.exp(-0.5 * (self.logsnr_min - self.shift))) - self._b

    def _logsnr(self, t):
        return -2.0 * torch.log(torch.tan(self._a * t + self._b)) + self.shift

    def _t_of_logsnr(self, logsnr):
        return (torch.atan(torch.exp(-0.5 * (logsnr - self.shift))) - self._b) / self._a

    def _dlogsnr_dt(self, t):
        # d/dt [-2 log tan(u)] = -2 a / (sin u cos u) = -4 a / sin(2u)
        return -4.0 * self._a / torch.sin(2.0 * (self._a * t + self._b))


@dataclass(frozen=True)
class LinearLogSNRSchedule(Schedule):
    """``lambda(t) = logsnr_max + (logsnr_min - logsnr_max) t``: linear in log-SNR."""

    logsnr_min: float = -10.0
    logsnr_max: float = 10.0

    def __post_init__(self):
        if not self.logsnr_min < self.logsnr_max:
            raise ValueError(f"need logsnr_min < logsnr_max, got {self.logsnr_min} >= {self.logsnr_max}")

    def _logsnr(self, t):
        return self.logsnr_max + (self.logsnr_min - self.logsnr_max) * t

    def _t_of_logsnr(self, logsnr):
        return (logsnr - self.logsnr_max) / (self.logsnr_min - self.logsnr_max)

    def _dlogsnr_dt(self, t):
        return torch.full_like(t, self.logsnr_min - self.logsnr_max)


SCHEDULES = {
    "cosine": CosineSchedule,
    "shifted_cosine": CosineSchedule.shifted,
    "linear": LinearLogSNRSchedule,
}


def get_schedule(name: str | Schedule = "cosine", **kwargs) -> Schedule:
    """A schedule by name: ``"cosine"`` (the paper's, ``[-20, 20]``),
    ``"shifted_cosine"`` (needs ``resolution=``, optional ``base_resolution=``) or
    ``"linear"``. A :class:`Schedule` instance passes through."""
    if isinstance(name, Schedule):
        if kwargs:
            raise ValueError("keyword arguments given together with a Schedule instance")
        return name
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    return SCHEDULES[name](**kwargs)
