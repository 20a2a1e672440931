"""Schedules in log-SNR (Section 2): endpoints, monotonicity, inverses, derivatives."""

import math

import pytest
import torch

from vdm_lite.schedule import CosineSchedule, LinearLogSNRSchedule, alpha_sigma, get_schedule

SCHEDULES = [
    CosineSchedule(),
    CosineSchedule(-15.0, 12.0),
    CosineSchedule.shifted(resolution=128, base_resolution=64),
    LinearLogSNRSchedule(),
    LinearLogSNRSchedule(-20.0, 20.0),
]
T = torch.linspace(0, 1, 1001, dtype=torch.float64)


@pytest.mark.parametrize("s", SCHEDULES, ids=repr)
def test_endpoints_and_monotone(s):
    lam = s.logsnr(T)
    torch.testing.assert_close(lam[0].item(), s.logsnr_max, rtol=0, atol=1e-9)
    torch.testing.assert_close(lam[-1].item(), s.logsnr_min, rtol=0, atol=1e-9)
    assert (lam[1:] < lam[:-1]).all(), "log-SNR must strictly decrease in t"


def test_paper_default_range():
    s = get_schedule("cosine")
    assert (s.logsnr_min, s.logsnr_max) == (-20.0, 20.0)


@pytest.mark.parametrize("s", SCHEDULES, ids=repr)
def test_inverse_round_trip(s):
    torch.testing.assert_close(s.t_of_logsnr(s.logsnr(T)), T, rtol=0, atol=1e-9)
    lam = torch.linspace(s.logsnr_min, s.logsnr_max, 101, dtype=torch.float64)
    torch.testing.assert_close(s.logsnr(s.t_of_logsnr(lam)), lam, rtol=0, atol=1e-8)


@pytest.mark.parametrize("s", SCHEDULES, ids=repr)
def test_derivative_matches_autograd(s):
    t = torch.linspace(0.01, 0.99, 41, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(s.logsnr(t).sum(), t)
    torch.testing.assert_close(s.dlogsnr_dt(t.detach()), g, rtol=1e-9, atol=1e-9)


def test_unclipped_cosine_is_cos_pi_t_over_2():
    s = CosineSchedule(-60.0, 60.0)  # the clipping is then invisible in float64
    t = torch.linspace(0.001, 0.999, 99, dtype=torch.float64)
    alpha, sigma = s.alpha_sigma(t)
    torch.testing.assert_close(alpha, torch.cos(math.pi * t / 2), rtol=0, atol=1e-10)
    torch.testing.assert_close(sigma, torch.sin(math.pi * t / 2), rtol=0, atol=1e-10)


def test_shift_moves_the_middle_by_two_log_ratio():
    base, shifted = CosineSchedule(), CosineSchedule.shifted(resolution=128, base_resolution=64)
    assert shifted.shift == pytest.approx(-2 * math.log(2))
    t = torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64)
    torch.testing.assert_close(shifted.logsnr(t) - base.logsnr(t), torch.full_like(t, shifted.shift), rtol=0, atol=1e-3)


def test_alpha_sigma_identities():
    lam = torch.linspace(-20, 20, 81, dtype=torch.float64)
    alpha, sigma = alpha_sigma(lam)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(lam), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.log(alpha**2 / sigma**2), lam, rtol=0, atol=1e-9)


def test_float32_endpoints_are_finite():
    s = CosineSchedule()
    lam = s.logsnr(torch.linspace(0, 1, 257))
    assert torch.isfinite(lam).all() and lam.dtype == torch.float32
    assert abs(lam[0] - 20) < 1e-3 and abs(lam[-1] + 20) < 0.05


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_time_outside_unit_interval_raises(bad):
    with pytest.raises(ValueError, match="t"):
        CosineSchedule().logsnr(torch.tensor([0.5, bad]))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown schedule"):
        get_schedule("quadratic")
    with pytest.raises(ValueError, match="logsnr_min < logsnr_max"):
        CosineSchedule(10.0, -10.0)
    with pytest.raises(ValueError, match="log-SNR must lie"):
        CosineSchedule().t_of_logsnr(torch.tensor([25.0]))


def test_config_schedule_shift_moves_the_cosine_and_is_structural():
    from vdm_lite.config import TrainConfig, build_schedule

    t = torch.linspace(0.05, 0.95, 19)
    plain = build_schedule(TrainConfig())
    shifted = build_schedule(TrainConfig(schedule_shift=-2 * math.log(4)))
    # the middle moves by exactly the shift (lambda(1/2) = shift), the clipped ends stay put
    assert abs(float(shifted.logsnr(torch.tensor([0.5]))) + 2 * math.log(4)) < 1e-3
    torch.testing.assert_close(shifted.logsnr(t) - plain.logsnr(t), torch.full_like(t, -2 * math.log(4)), rtol=0, atol=0.02)
    torch.testing.assert_close(shifted.logsnr(torch.tensor([0.0, 1.0])), plain.logsnr(torch.tensor([0.0, 1.0])), rtol=0, atol=0.05)
    # it adds to the resolution shift of shifted_cosine
    both = build_schedule(TrainConfig(schedule="shifted_cosine", resolution=32, schedule_shift=-1.0))
    assert both.shift == pytest.approx(2 * math.log(64 / 32) - 1.0)
    assert "schedule_shift" in TrainConfig.structural_keys()  # a resumed run must keep its schedule
    with pytest.raises(ValueError, match="schedule_shift applies to the cosine"):
        build_schedule(TrainConfig(schedule="linear", schedule_shift=-1.0))
