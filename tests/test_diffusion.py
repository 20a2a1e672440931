"""Forward process eq. (1), posterior eq. (3), parameterizations and losses eq. (2)."""

import itertools

import pytest
import torch

from vdm_lite import diffusion as D
from vdm_lite.schedule import CosineSchedule, LinearLogSNRSchedule, alpha_sigma

f64 = torch.float64


def test_q_sample_moments():
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([0.7, -0.4], dtype=f64).repeat(200_000, 1)
    lam = torch.tensor(0.8, dtype=f64)
    z, eps = D.q_sample(x, lam, generator=g)
    alpha, sigma = alpha_sigma(lam)
    torch.testing.assert_close(z.mean(0), alpha * x[0], rtol=0, atol=5e-3)
    torch.testing.assert_close(z.var(0), (sigma**2).expand(2), rtol=0.01, atol=0)
    torch.testing.assert_close(z, alpha * x + sigma * eps)


@pytest.mark.parametrize("lam_s,lam_t", [(5.0, 1.0), (1.0, -3.0), (18.0, -18.0), (0.3, 0.29)])
def test_forward_process_composes(lam_s, lam_t):
    """q(z_t | z_s) applied to q(z_s | x) has exactly the moments of q(z_t | x)."""
    x = torch.tensor([[0.5, -1.0, 0.25]], dtype=f64)
    a_s, s_s = alpha_sigma(torch.tensor(lam_s, dtype=f64))
    a_t, s_t = alpha_sigma(torch.tensor(lam_t, dtype=f64))
    # q_step is affine in (z_s, noise): read off its coefficient and noise scale exactly
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    shift = D.q_step(zero, lam_s, lam_t, noise=zero)
    coef = D.q_step(one, lam_s, lam_t, noise=zero) - shift
    noise_std = D.q_step(zero, lam_s, lam_t, noise=one) - shift
    mean = coef * (a_s * x) + shift
    var = coef**2 * s_s**2 + noise_std**2
    torch.testing.assert_close(mean, a_t * x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var, (s_t**2).expand_as(x), rtol=1e-10, atol=1e-15)


def test_forward_process_composes_monte_carlo():
    g = torch.Generator().manual_seed(1)
    x = torch.full((400_000, 1), 0.6, dtype=f64)
    z_s, _ = D.q_sample(x, 2.0, generator=g)
    z_t = D.q_step(z_s, 2.0, -1.0, generator=g)
    a_t, s_t = alpha_sigma(torch.tensor(-1.0, dtype=f64))
    assert abs(z_t.mean() - a_t * 0.6) < 3e-3
    assert abs(z_t.var() / s_t**2 - 1) < 0.01


def test_q_step_refuses_to_go_backwards():
    with pytest.raises(ValueError, match="forward in time"):
        D.q_step(torch.zeros(2, 3), -1.0, 2.0)


@pytest.mark.parametrize("lam_s,lam_t", [(4.0, 0.0), (0.5, -6.0), (15.0, 14.0)])
def test_posterior_is_gaussian_conditional(lam_s, lam_t):
    """eq. (3) equals the conditional of the joint Gaussian of (z_s, z_t) given x."""
    a_s, s_s = alpha_sigma(torch.tensor(lam_s, dtype=f64))
    a_t, s_t = alpha_sigma(torch.tensor(lam_t, dtype=f64))
    x = torch.tensor([[0.3], [-0.8]], dtype=f64)
    z_t = torch.tensor([[1.1], [-0.2]], dtype=f64)
    # joint covariance of (z_s, z_t) given x, from z_t = (a_t/a_s) z_s + sigma_{t|s} e
    c_ss = s_s**2
    c_st = (a_t / a_s) * s_s**2
    c_tt = s_t**2
    cov = torch.stack([torch.stack([c_ss, c_st]), torch.stack([c_st, c_tt])])
    mu = torch.stack([a_s * x, a_t * x], -1)  # (B, 1, 2)
    # Gaussian conditioning by linear algebra: mean_s + C_st C_tt^-1 (z_t - mean_t)
    gain = torch.linalg.solve(cov[1:, 1:], cov[1:, :1]).T
    mean_ref = mu[..., 0] + (gain @ (z_t - mu[..., 1]).unsqueeze(-1)).squeeze(-1)
    var_ref = cov[0, 0] - (gain @ cov[1:, :1]).squeeze()
    mean, var = D.posterior(z_t, x, lam_s, lam_t)
    torch.testing.assert_close(mean, mean_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(var.squeeze(), var_ref, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("src,dst", list(itertools.product(D.PARAMETERIZATIONS, repeat=2)))
def test_conversions_round_trip(src, dst):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 2, 3, 4, 4, generator=g, dtype=f64)
    lam = torch.linspace(-10, 10, 6, dtype=f64)
    z, eps = D.q_sample(x, lam, generator=g)
    alpha, sigma = alpha_sigma(D.broadcast_to(lam, x))
    truth = {"x": x, "eps": eps, "v": alpha * eps - sigma * x}
    out = D.convert(truth[src], z, lam, src, dst)
    torch.testing.assert_close(out, truth[dst], rtol=1e-9, atol=1e-9)
    back = D.convert(out, z, lam, dst, src)
    torch.testing.assert_close(back, truth[src], rtol=1e-9, atol=1e-9)


def test_conversions_float32_precision():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(8, 3, 2, 8, 8, generator=g) * 2 - 1
    lam = torch.linspace(-5, 5, 8)
    z, eps = D.q_sample(x, lam, generator=g)
    for p in D.PARAMETERIZATIONS:
        pred = D.convert(eps, z, lam, "eps", p)
        torch.testing.assert_close(D.convert(pred, z, lam, p, "eps"), eps, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("param", D.PARAMETERIZATIONS)
def test_implied_x_weights(param):
    """An error d in x-space is an error sqrt(w) |d| in the parameterization's space."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 7, generator=g, dtype=f64)
    x_hat = x + 0.1 * torch.randn(5, 7, generator=g, dtype=f64)
    lam = torch.tensor([-8.0, -2.0, 0.0, 3.0, 9.0], dtype=f64)
    z, _ = D.q_sample(x, lam, generator=g)
    err_param = (D.convert(x_hat, z, lam, "x", param) - D.convert(x, z, lam, "x", param)).pow(2).sum(1)
    err_x = (x_hat - x).pow(2).sum(1)
    torch.testing.assert_close(err_param, D.x_weight(lam, param) * err_x, rtol=1e-8, atol=0)


def test_elbo_weight():
    s = CosineSchedule()
    t = torch.tensor([0.2, 0.5, 0.8], dtype=f64)
    lam = s.logsnr(t)
    torch.testing.assert_close(D.x_weight(lam, "elbo", s.dlogsnr_dt(t)), -0.5 * s.dlogsnr_dt(t) * lam.exp())
    with pytest.raises(ValueError, match="dlogsnr_dt"):
        D.x_weight(lam, "elbo")


class Oracle:
    """Knows x and the noise: predicts the exact target, plus an offset in x-space."""

    def __init__(self, x, param, offset=0.0):
        self.x, self.parameterization, self.offset = x, param, offset

    def __call__(self, z, logsnr):
        return D.convert(self.x + self.offset, z, logsnr, "x", self.parameterization)


@pytest.mark.parametrize("param", D.PARAMETERIZATIONS)
def test_loss_zero_for_exact_model_and_weighting_is_x_space(param):
    g = torch.Generator().manual_seed(5)
    x = torch.rand(4, 3, 2, 4, 4, generator=g, dtype=f64) * 2 - 1
    s = LinearLogSNRSchedule(-6, 6)
    t = torch.tensor([0.1, 0.4, 0.6, 0.9], dtype=f64)
    assert D.diffusion_loss(Oracle(x, param), x, s, t=t, generator=g).abs().max() < 1e-10
    # an x-space error of 0.1 everywhere costs w(lambda) * 0.01 under every weighting
    for weighting in D.WEIGHTINGS:
        loss = D.diffusion_loss(Oracle(x, param, 0.1), x, s, t=t, weighting=weighting, generator=g)
        dl = s.dlogsnr_dt(t) if weighting == "elbo" else None
        torch.testing.assert_close(loss, 0.01 * D.x_weight(s.logsnr(t), weighting, dl), rtol=1e-6, atol=1e-12)


def test_loss_defaults_to_parameterization_space():
    x = torch.zeros(3, 4, dtype=f64)
    s = CosineSchedule()
    t = torch.tensor([0.3, 0.5, 0.7], dtype=f64)
    loss = D.diffusion_loss(Oracle(x, "v", 0.1), x, s, t=t)
    torch.testing.assert_close(loss, 0.01 * D.x_weight(s.logsnr(t), "v"))


def test_low_discrepancy_times_are_stratified():
    t = D.sample_t(8, torch.Generator().manual_seed(0), low_discrepancy=True, dtype=f64)
    gaps = torch.diff(torch.sort(t).values)
    torch.testing.assert_close(gaps, torch.full((7,), 1 / 8, dtype=f64))
    assert ((t >= 0) & (t < 1)).all()


def test_bad_inputs_raise_clear_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="unknown parameterization"):
        D.convert(x, x, 0.0, "score", "x")
    with pytest.raises(ValueError, match="does not match"):
        D.convert(torch.zeros(2, 4), x, 0.0, "eps", "x")
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        D.q_sample(x, torch.zeros(3))
    with pytest.raises(ValueError, match="t must lie in"):
        D.diffusion_loss(Oracle(x, "eps"), x, CosineSchedule(), t=torch.tensor([0.5, 1.2]))
    with pytest.raises(ValueError, match="declare the model's parameterization"):
        D.diffusion_loss(lambda z, l: z, x, CosineSchedule())
    with pytest.raises(ValueError, match="unknown weighting"):
        D.diffusion_loss(Oracle(x, "eps"), x, CosineSchedule(), weighting="snr")
    with pytest.raises(ValueError, match="s before t"):
        D.posterior(x, x, -5.0, 5.0)
    with pytest.raises(ValueError, match="noise shape"):
        D.q_step(torch.zeros(4, 3), 1.0, 0.0, noise=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="model output shape"):
        D.diffusion_loss(lambda z, l: z[:, :2], x, CosineSchedule(), parameterization="eps")
