"""Samplers eq. (4)-(6) driven by exact denoisers of Gaussian data."""

import pytest
import torch

from vdm_lite import diffusion as D
from vdm_lite.samplers import ClassifierFreeGuidance, null_condition, sample
from vdm_lite.toy import GaussianDenoiser, GaussianMixtureDenoiser

f64 = torch.float64


def correlated_gaussian(d=3, seed=0):
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=f64)
    cov = 0.1 * a @ a.T + 0.05 * torch.eye(d, dtype=f64)
    mean = torch.linspace(-0.3, 0.5, d, dtype=f64)
    return GaussianDenoiser(mean, cov)


CASES = [
    ("ancestral", dict(steps=256, gamma=0.0)),
    ("ancestral", dict(steps=256, gamma=0.3)),
    ("ancestral", dict(steps=256, gamma=1.0)),
    ("pc", dict(steps=256, corrector_steps=1)),
    ("pc", dict(steps=128, corrector_steps=2, delta=0.05)),
    ("ddim", dict(steps=100)),
]


@pytest.mark.parametrize("sampler,kw", CASES, ids=[f"{s}-{k}" for s, k in CASES])
@pytest.mark.parametrize("param", D.PARAMETERIZATIONS)
def test_samplers_match_gaussian_data(sampler, kw, param):
    """Mean and covariance of the samples match the data's. A wrong sign or a missing
    factor anywhere in eq. (3)-(5) moves them far outside these tolerances."""
    den = correlated_gaussian()

    def model(z, lam):  # the exact denoiser, seen through another parameterization
        return D.convert(den(z, lam), z, lam, "x", param)

    x = sample(model, (8000, 3), sampler=sampler, parameterization=param, generator=0, dtype=f64, progress=False, **kw)
    std = den.cov.diag().sqrt()
    assert ((x.mean(0) - den.mean).abs() / std).max() < 0.05
    rel_cov = (torch.cov(x.T) - den.cov) / std.outer(std)
    assert rel_cov.abs().max() < 0.08, rel_cov


def test_video_shaped_gaussian():
    """The samplers work on (B, C, T, H, W) and get each pixel's variance right."""
    mean = torch.zeros(1, 4, 2, 2, dtype=f64)
    var = torch.linspace(0.05, 0.5, 16, dtype=f64)
    den = GaussianDenoiser(mean, var)
    x = sample(den, (3000, 1, 4, 2, 2), steps=200, generator=1, dtype=f64, progress=False)
    assert x.shape == (3000, 1, 4, 2, 2)
    torch.testing.assert_close(x.reshape(3000, -1).var(0) / var, torch.ones(16, dtype=f64), atol=0.1, rtol=0)


def test_exact_samples_do_not_depend_on_the_eigenbasis():
    """GaussianDenoiser.sample maps the same normal draw through the covariance's unique
    symmetric square root, so a repeated eigenvalue (whose eigenvectors eigh may return in any
    rotation, and LAPACK builds differ in it) cannot change a seeded sample. The reference root
    comes from the eigendecomposition of a permuted covariance, whose eigenbasis differs."""
    rho = 0.9 ** (torch.arange(6, dtype=f64)[:, None] - torch.arange(6, dtype=f64)).abs()
    cov = torch.kron(rho, 0.8 * torch.eye(4, dtype=f64) + 0.2)  # eigenvalues repeated 3 times
    den = GaussianDenoiser(torch.zeros(1, 6, 2, 2, dtype=f64), cov)
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    evals, evecs = torch.linalg.eigh(cov[perm][:, perm])
    root = torch.empty_like(cov)
    root[perm[:, None], perm] = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
    eps = torch.randn(5, 24, generator=torch.Generator().manual_seed(1), dtype=f64)
    x = den.sample(5, torch.Generator().manual_seed(1))
    assert x.shape == (5, 1, 6, 2, 2)
    torch.testing.assert_close(x.reshape(5, 24), eps @ root, rtol=0, atol=1e-12)
    torch.testing.assert_close(root @ root, cov, rtol=0, atol=1e-12)


def test_gamma_raises_variance():
    """gamma interpolates from the posterior variance (smaller) to the forward one."""
    den = GaussianDenoiser(torch.zeros(1, dtype=f64), torch.ones(1, dtype=f64) * 0.5)
    v = [sample(den, (20000, 1), steps=16, gamma=g, generator=2, dtype=f64, progress=False).var() for g in (0.0, 1.0)]
    assert v[0] < v[1]


def test_seeded_and_deterministic():
    den = correlated_gaussian()
    a = sample(den, (5, 3), steps=20, generator=7, progress=False)
    b = sample(den, (5, 3), steps=20, generator=torch.Generator().manual_seed(7), progress=False)
    c = sample(den, (5, 3), steps=20, generator=8, progress=False)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    z = torch.randn(5, 3)
    d1 = sample(den, (5, 3), sampler="ddim", steps=20, z_init=z, progress=False)
    d2 = sample(den, (5, 3), sampler="ddim", steps=20, z_init=z, generator=99, progress=False)
    torch.testing.assert_close(d1, d2, rtol=0, atol=0)


def test_trajectory_and_model_calls():
    den = correlated_gaussian()
    x, traj = sample(den, (4, 3), sampler="pc", steps=10, corrector_steps=2, generator=0, return_trajectory=True, progress=False)
    assert traj["z"].shape == (11, 4, 3) and traj["x_hat"].shape == (10, 4, 3) and traj["t"].shape == (11,)
    assert traj["t"][0] == 1 and traj["t"][-1] == 0
    torch.testing.assert_close(traj["z"][-1], x)
    assert traj["nfe"] == 10 + 9 * 2  # no corrector at t = 0


def test_clip_x_keeps_predictions_in_range():
    den = GaussianDenoiser(torch.zeros(2, dtype=f64), torch.ones(2, dtype=f64) * 4.0)  # mostly outside [-1, 1]
    _, traj = sample(den, (500, 2), steps=30, clip_x=True, generator=0, return_trajectory=True, progress=False)
    assert traj["x_hat"].abs().max() <= 1.0
    assert traj["z"][-1].abs().max() <= 1.0 + 1e-3


def test_on_step_hook_is_applied():
    den = correlated_gaussian()
    calls = []

    def clamp_first(z_new, lam_new, z_old, lam_old):
        calls.append(float(lam_new))
        z_new = z_new.clone()
        z_new[:, 0] = 0.25
        return z_new

    x = sample(den, (6, 3), sampler="pc", steps=8, on_step=clamp_first, generator=0, progress=False)
    assert torch.all(x[:, 0] == 0.25)
    assert len(calls) == 8 + 7


def gmm():
    means = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=f64)
    return GaussianMixtureDenoiser(means, stds=0.15, labels=[0, 1, 1])


def test_guidance_weight_zero_is_the_conditional_model():
    den = gmm()
    y = torch.tensor([0, 1, 1, 0])
    cfg = ClassifierFreeGuidance(den, 0.0)
    z, lam = torch.randn(4, 2, dtype=f64), torch.full((4,), 0.5, dtype=f64)
    torch.testing.assert_close(cfg(z, lam, class_label=y), den(z, lam, class_label=y), rtol=0, atol=0)
    a = sample(cfg, (4, 2), steps=10, generator=3, class_label=y, progress=False)
    b = sample(den, (4, 2), steps=10, generator=3, class_label=y, progress=False)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("batched", [True, False])
def test_guidance_is_eq6_in_eps_space(batched):
    den = gmm()
    w = 2.0
    y = torch.tensor([0, 1, 1])
    z, lam = torch.randn(3, 2, dtype=f64), torch.tensor([-2.0, 0.0, 3.0], dtype=f64)
    eps_c = D.convert(den(z, lam, class_label=y), z, lam, "x", "eps")
    eps_u = D.convert(den(z, lam, class_label=torch.full_like(y, -1)), z, lam, "x", "eps")
    guided_x = ClassifierFreeGuidance(den, w, batched=batched)(z, lam, class_label=y)
    torch.testing.assert_close(D.convert(guided_x, z, lam, "x", "eps"), (1 + w) * eps_c - w * eps_u)


def test_guidance_sharpens_classes():
    """Larger w puts more samples where p(c | x) is high (Section 4, Table 5's trade-off)."""
    den = gmm()
    y = torch.ones(2000, dtype=torch.long)
    share = []
    for w in (0.0, 4.0):
        x = sample(ClassifierFreeGuidance(den, w), (2000, 2), steps=64, generator=4, class_label=y, progress=False)
        share.append((x[:, 0] > 0.3).double().mean().item())  # far from the class-0 component at (-1, 0)
    assert share[1] > share[0]


def test_null_condition_convention():
    cond = {"class_label": torch.tensor([3, 4]), "text": ["a red ball", "two squares"], "image_mask": torch.ones(2, 3)}
    null = null_condition(cond)
    assert null["class_label"].tolist() == [-1, -1] and null["text"] == ["", ""]
    assert null["image_mask"] is cond["image_mask"]


def test_bad_inputs_raise_clear_errors():
    den = correlated_gaussian()
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(den, (2, 3), sampler="heun", steps=2)
    with pytest.raises(ValueError, match="parameterization is unknown"):
        sample(lambda z, l: z, (2, 3), steps=2)
    with pytest.raises(ValueError, match="unknown parameterization"):
        sample(lambda z, l: z, (2, 3), steps=2, parameterization="score")
    with pytest.raises(ValueError, match="gamma"):
        sample(den, (2, 3), steps=2, gamma=1.5)
    with pytest.raises(ValueError, match="steps"):
        sample(den, (2, 3), steps=0)
    with pytest.raises(ValueError, match="returned shape"):
        sample(lambda z, l: z[:, :2], (2, 3), steps=2, parameterization="x")
    with pytest.raises(ValueError, match="z_init shape"):
        sample(den, (2, 3), steps=2, z_init=torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"expected z of shape"):
        sample(den, (2, 4), steps=2)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
def test_one_ancestral_step_is_eq4(gamma):
    """z_s = mu_{s|t}(z_t, x_hat) + sqrt((sigma~^2)^(1-gamma) (sigma_{t|s}^2)^gamma) eps, by hand."""
    from vdm_lite.schedule import CosineSchedule, alpha_sigma
    from vdm_lite.samplers import time_grid

    den = correlated_gaussian()
    z1 = torch.randn(5, 3, generator=torch.Generator().manual_seed(10), dtype=f64)
    _, traj = sample(den, (5, 3), steps=4, gamma=gamma, z_init=z1, generator=11, dtype=f64, return_trajectory=True, progress=False)
    noise = torch.randn(5, 3, generator=torch.Generator().manual_seed(11), dtype=f64)  # the first draw
    _, lams = time_grid(4, CosineSchedule(), dtype=f64)
    lt, ls = lams[0], lams[1]
    (at, st), (as_, ss) = alpha_sigma(lt), alpha_sigma(ls)
    x_hat = den(z1, lt.expand(5))
    r = torch.exp(lt - ls)
    mean = r * as_ / at * z1 + (1 - r) * as_ * x_hat
    var = ((1 - r) * ss**2) ** (1 - gamma) * ((1 - r) * st**2) ** gamma
    torch.testing.assert_close(traj["z"][1], mean + var.sqrt() * noise, rtol=1e-12, atol=1e-12)


def test_one_corrector_step_is_eq5():
    from vdm_lite.schedule import CosineSchedule, alpha_sigma
    from vdm_lite.samplers import time_grid

    den = correlated_gaussian()
    z1 = torch.randn(5, 3, generator=torch.Generator().manual_seed(12), dtype=f64)
    kw = dict(steps=4, z_init=z1, generator=13, dtype=f64, return_trajectory=True, progress=False)
    _, pred = sample(den, (5, 3), sampler="ancestral", **kw)  # same predictor step, same first draw
    _, pc = sample(den, (5, 3), sampler="pc", delta=0.1, **kw)
    g = torch.Generator().manual_seed(13)
    torch.randn(5, 3, generator=g, dtype=f64)
    noise = torch.randn(5, 3, generator=g, dtype=f64)  # the second draw is the corrector's
    _, lams = time_grid(4, CosineSchedule(), dtype=f64)
    _, ss = alpha_sigma(lams[1])
    zs = pred["z"][1]
    eps = D.convert(den(zs, lams[1].expand(5)), zs, lams[1].expand(5), "x", "eps")
    expected = zs - 0.5 * 0.1 * ss * eps + 0.1**0.5 * ss * noise
    torch.testing.assert_close(pc["z"][1], expected, rtol=1e-12, atol=1e-12)


def test_one_ddim_step():
    from vdm_lite.schedule import CosineSchedule, alpha_sigma
    from vdm_lite.samplers import time_grid

    den = correlated_gaussian()
    z1 = torch.randn(5, 3, generator=torch.Generator().manual_seed(14), dtype=f64)
    _, traj = sample(den, (5, 3), sampler="ddim", steps=4, z_init=z1, dtype=f64, return_trajectory=True, progress=False)
    _, lams = time_grid(4, CosineSchedule(), dtype=f64)
    x_hat = den(z1, lams[0].expand(5))
    eps = D.convert(x_hat, z1, lams[0].expand(5), "x", "eps")
    a_s, s_s = alpha_sigma(lams[1])
    torch.testing.assert_close(traj["z"][1], a_s * x_hat + s_s * eps, rtol=1e-12, atol=1e-12)


def test_toy_denoisers_follow_the_input_device():
    """The analytic denoisers run wherever z lives (the meta device stands in for a GPU)."""
    z, lam = torch.zeros(4, 2, device="meta"), torch.zeros(4, device="meta")
    assert gmm()(z, lam, class_label=torch.tensor([0, 1, -1, 1])).device.type == "meta"
    den = GaussianDenoiser(torch.zeros(2, dtype=f64), torch.ones(2, dtype=f64))
    assert den(z, lam).device.type == "meta"


# -- the step functions are what sample() runs ----------------------------------------------


@pytest.mark.parametrize("sampler,kw", [("ancestral", dict(gamma=0.3)), ("pc", dict(gamma=0.1, corrector_steps=2, delta=0.2)), ("ddim", {})])
def test_sample_is_a_loop_over_the_step_functions(sampler, kw):
    """Rebuild sample()'s trajectory from ancestral_step / langevin_step / ddim_step, drawing the
    noise in the same order from the same seed: bit for bit the same states."""
    from vdm_lite.samplers import ancestral_step, ddim_step, denoise, langevin_step, time_grid
    from vdm_lite.schedule import CosineSchedule
    from vdm_lite.utils import randn_like

    den, steps = correlated_gaussian(), 5
    z1 = torch.randn(4, 3, generator=torch.Generator().manual_seed(20), dtype=f64)
    _, traj = sample(den, (4, 3), sampler=sampler, steps=steps, z_init=z1, generator=21, dtype=f64, return_trajectory=True, progress=False, **kw)
    g = torch.Generator().manual_seed(21)
    _, lams = time_grid(steps, CosineSchedule(), dtype=f64)
    z = z1
    for i in range(steps):
        last = i == steps - 1
        x_hat, eps_hat = denoise(den, z, lams[i])
        if sampler == "ddim":
            z_new = ddim_step(x_hat, eps_hat, lams[i + 1])
        else:
            z_new = ancestral_step(z, x_hat, lams[i + 1], lams[i], None if last else randn_like(z, g), kw.get("gamma", 0.0))
        if sampler == "pc" and not last:
            for _ in range(kw["corrector_steps"]):
                z_new = langevin_step(z_new, denoise(den, z_new, lams[i + 1])[1], lams[i + 1], randn_like(z, g), kw["delta"])
        z = z_new
        assert torch.equal(z, traj["z"][i + 1]), f"step {i}"


def test_step_functions_take_per_example_logsnr():
    """(B,) log-SNRs broadcast over the other dimensions: each example gets its own step."""
    from vdm_lite.samplers import ancestral_step, ddim_step, langevin_step

    gen = torch.Generator().manual_seed(22)
    z, x, eps, noise = (torch.randn(3, 2, 4, generator=gen, dtype=f64) for _ in range(4))
    lam_t, lam_s = torch.tensor([-3.0, 0.0, 2.0], dtype=f64), torch.tensor([-1.0, 1.0, 5.0], dtype=f64)
    per = [ancestral_step(z, x, lam_s, lam_t, noise, 0.3), langevin_step(z, eps, lam_s, noise, 0.1), ddim_step(x, eps, lam_s)]
    for b in range(3):
        one = [ancestral_step(z[b : b + 1], x[b : b + 1], lam_s[b], lam_t[b], noise[b : b + 1], 0.3),
               langevin_step(z[b : b + 1], eps[b : b + 1], lam_s[b], noise[b : b + 1], 0.1),
               ddim_step(x[b : b + 1], eps[b : b + 1], lam_s[b])]  # fmt: skip
        for a, c in zip(per, one):
            torch.testing.assert_close(a[b : b + 1], c, rtol=1e-14, atol=1e-14)
    assert torch.equal(ancestral_step(z, x, lam_s, lam_t, None, 0.3), D.posterior(z, x, lam_s, lam_t)[0])  # no noise: the mean


@pytest.mark.parametrize("batched", [True, False])
def test_classifier_free_guidance_function_is_what_the_wrapper_computes(batched):
    from vdm_lite.samplers import classifier_free_guidance

    den, w = gmm(), 1.5
    y = torch.tensor([0, 1, 1])
    z, lam = torch.randn(3, 2, dtype=f64, generator=torch.Generator().manual_seed(23)), torch.tensor([-2.0, 0.0, 3.0], dtype=f64)
    expected = classifier_free_guidance(den(z, lam, class_label=y), den(z, lam, class_label=torch.full_like(y, -1)), w)
    assert torch.equal(ClassifierFreeGuidance(den, w, batched=batched)(z, lam, class_label=y), expected)


def test_conventions_are_defined_once():
    """The null condition and the parameterizations come from vdm_lite.conventions; the old
    import paths still work and give the same objects."""
    from vdm_lite import conventions as C
    from vdm_lite import samplers
    from vdm_lite.nn import conditioning, unet

    assert samplers.NULL_CLASS == conditioning.NULL_CLASS == C.NULL_CLASS == -1
    assert samplers.NULL_TEXT == conditioning.NULL_TEXT == C.NULL_TEXT == ""
    assert D.PARAMETERIZATIONS is unet.PARAMETERIZATIONS is C.PARAMETERIZATIONS
    assert C.resolve_parameterization(correlated_gaussian()) == "x"
    assert C.resolve_parameterization(lambda z, l: z, "v") == "v"
    with pytest.raises(ValueError, match="parameterization is unknown"):
        C.resolve_parameterization(lambda z, l: z)
    C.check_video(torch.zeros(1, 3, 2, 4, 4), channels=3)
    for bad in (torch.zeros(3, 2, 4, 4), torch.zeros(1, 1, 2, 4, 4), "a video"):
        with pytest.raises(ValueError, match=r"x_known must be a video tensor \(B, 3, T, H, W\)"):
            C.check_video(bad, "x_known", channels=3)
