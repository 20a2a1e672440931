"""Section 3.1: replacement, reconstruction guidance eq. (7), super-resolution guidance eq. (8),
(vdm_lite.guidance), and the long-video / interpolation / cascade tasks built on them (vdm_lite.tasks)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vdm_lite.diffusion import convert, posterior
from vdm_lite.guidance import (
    ReconstructionGuidance,
    Replacement,
    cascade_guidance,
    conditional_sample,
    downsample_video,
    interpolation_mask,
    prediction_mask,
    reconstruction_guidance,
    superres_guidance,
)
from vdm_lite.nn import UNet3D, get_preset
from vdm_lite.schedule import alpha_sigma
from vdm_lite.tasks import (
    extend_video,
    interpolate_video,
    super_resolve,
    upsample_video,
)
from vdm_lite.toy import GaussianDenoiser

T, H, W = 8, 2, 2


pytestmark = pytest.mark.usefixtures("one_thread")


def gaussian_video(rho: float = 0.9, frames: int = T, h: int = H, w: int = W) -> GaussianDenoiser:
    """A Gaussian "video" (1, frames, h, w): frames correlated as rho^|i - j|, pixels of a
    frame correlated 0.2."""
    t = torch.arange(frames, dtype=torch.float64)
    c_t = rho ** (t[:, None] - t[None]).abs()
    c_s = 0.8 * torch.eye(h * w, dtype=torch.float64) + 0.2
    return GaussianDenoiser(torch.zeros(1, frames, h, w), torch.kron(c_t, c_s))


class IsoGaussian:
    """The exact denoiser of i.i.d. N(0, s^2) pixels; works for any shape (any number of frames)."""

    parameterization = "x"

    def __init__(self, s: float = 0.5):
        self.s2 = s * s

    def __call__(self, z, logsnr, **cond):
        alpha, sigma = alpha_sigma(logsnr.reshape(-1, *[1] * (z.ndim - 1)))
        return alpha * self.s2 * z / (alpha**2 * self.s2 + sigma**2)


def gain_matrix(den: GaussianDenoiser, lam: float) -> tuple[torch.Tensor, float]:
    """x_hat = mean + A (z - alpha mean) for Gaussian data: A = alpha S (alpha^2 S + sigma^2 I)^-1."""
    alpha, sigma = alpha_sigma(torch.tensor(lam, dtype=torch.float64))
    S = den.cov
    A = alpha * S @ torch.linalg.inv(alpha**2 * S + sigma**2 * torch.eye(S.shape[0], dtype=torch.float64))
    return A, float(alpha)


# -- eq. (7) and (8) against closed forms -----------------------------------------------------


@pytest.mark.parametrize("lam", [-2.0, 1.5])
def test_reconstruction_guidance_is_eq7_in_closed_form(lam):
    """For Gaussian data x_hat(z) = A z is linear, so eq. (7) is
    x~^b = x_hat^b + w alpha [A^T (x^a - x_hat^a)]^b  (the gradient of ||x^a - A_a z||^2 is
    -2 A_a^T (x^a - A_a z)); x~^a = x_hat^a."""
    den = gaussian_video()
    gen = torch.Generator().manual_seed(0)
    x = den.sample(2, gen)
    z = torch.randn(2, 1, T, H, W, generator=gen, dtype=torch.float64)
    known = prediction_mask(T, 3)
    w = 2.5
    x_known = x.reshape(2, 1, T, H, W)
    guided = ReconstructionGuidance(den, w, x_known=x_known, known_mask=known)
    out = guided(z, torch.full((2,), lam, dtype=torch.float64)).reshape(2, -1)

    A, alpha = gain_matrix(den, lam)
    a = known[None, :, None, None].expand(1, T, H, W).reshape(-1)
    zf, xf = z.reshape(2, -1), x_known.reshape(2, -1)
    x_hat = zf @ A.T
    resid = (xf - x_hat) * a  # only the known frames count
    expected = x_hat + w * alpha * (resid @ A) * (~a)  # A^T r, restricted to z^b
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9)
    assert not out.requires_grad


def test_super_resolution_guidance_is_eq8_in_closed_form():
    """Eq. (8) with the area downsampler D (a linear map): x~ = x_hat + w alpha A^T D^T (y - D x_hat),
    on every pixel of z."""
    den = gaussian_video(frames=2, h=4, w=4)
    gen = torch.Generator().manual_seed(1)
    x = den.sample(1, gen).reshape(1, 1, 2, 4, 4)
    y = downsample_video(x, 2, "area")
    z = torch.randn(1, 1, 2, 4, 4, generator=gen, dtype=torch.float64)
    lam, w = 0.5, 3.0
    out = ReconstructionGuidance(den, w, low_res=y, downsampler="area")(z, torch.tensor([lam], dtype=torch.float64))

    D = torch.stack([downsample_video(e.reshape(1, 1, 2, 4, 4), 2, "area").reshape(-1) for e in torch.eye(32, dtype=torch.float64)], 1)
    A, alpha = gain_matrix(den, lam)
    x_hat = A @ z.reshape(-1)
    expected = x_hat + w * alpha * A.T @ D.T @ (y.reshape(-1) - D @ x_hat)
    torch.testing.assert_close(out.reshape(-1), expected, rtol=1e-9, atol=1e-9)


class EpsOf:
    """An x-predicting denoiser turned into an eps-predicting one (exercises the conversion)."""

    parameterization = "eps"

    def __init__(self, den):
        self.den = den

    def __call__(self, z, logsnr, **cond):
        return convert(self.den(z, logsnr, **cond), z, logsnr, "x", "eps")


def guidance_inputs(seed: int, frames: int = T, h: int = H, w: int = W):
    den = gaussian_video(frames=frames, h=h, w=w)
    gen = torch.Generator().manual_seed(seed)
    x = den.sample(3, gen).reshape(3, 1, frames, h, w)
    z = torch.randn(3, 1, frames, h, w, generator=gen, dtype=torch.float64)
    return den, x, z, torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64)


def frames_of(mask: torch.Tensor) -> torch.Tensor:
    """A (B, T) bool mask as the (B, 1, T, 1, 1) 0/1 tensor the plain functions take."""
    return mask[:, None, :, None, None].double()


@pytest.mark.parametrize("wrap", [False, True], ids=["x-model", "eps-model"])
def test_reconstruction_guidance_function_is_what_the_wrapper_computes(wrap):
    den, x, z, lam = guidance_inputs(10)
    model = EpsOf(den) if wrap else den
    known = torch.tensor([[True, True, False, False, False, False, False, False],
                          [True, False, False, True, False, False, False, True],
                          [False, False, False, False, False, True, True, True]])  # fmt: skip
    guided = ReconstructionGuidance(model, 2.5, x_known=x, known_mask=known)(z, lam)
    plain = reconstruction_guidance(model, z, lam, x, frames_of(known), 2.5, parameterization=model.parameterization)
    assert torch.equal(guided, plain)
    x_hat = convert(model(z, lam), z, lam, model.parameterization, "x")
    assert torch.equal(plain * frames_of(known), x_hat * frames_of(known))  # x~^a = x_hat^a
    assert not torch.equal(plain, x_hat)  # x~^b moved


@pytest.mark.parametrize("downsampler", ["area", "bilinear"])
def test_superres_guidance_function_is_what_the_wrapper_computes(downsampler):
    den, x, z, lam = guidance_inputs(11, frames=3, h=4, w=4)
    y = downsample_video(x, 2, "area")
    low_mask = torch.tensor([True, False, True])
    guided = ReconstructionGuidance(den, 3.0, low_res=y, low_res_mask=low_mask, downsampler=downsampler)(z, lam)
    plain = superres_guidance(den, z, lam, y, 3.0, low_res_mask=frames_of(low_mask.expand(3, 3)), downsampler=downsampler)
    assert torch.equal(guided, plain)
    every = ReconstructionGuidance(den, 3.0, low_res=y, downsampler=downsampler)(z, lam)  # default: every frame
    assert torch.equal(every, superres_guidance(den, z, lam, y, 3.0, downsampler=downsampler))


def test_cascade_guidance_function_is_what_the_wrapper_computes():
    """Figure 2: high-resolution known frames and low-resolution frames at once, one gradient."""
    den, x, z, lam = guidance_inputs(12, frames=4, h=4, w=4)
    y = downsample_video(x, 2, "area")
    known, low_mask = prediction_mask(4, 1), torch.tensor([True, False, True, False])
    guided = ReconstructionGuidance(den, 2.0, x_known=x, known_mask=known, low_res=y, low_res_mask=low_mask, downsampler="area")(z, lam)
    plain = cascade_guidance(den, z, lam, x, frames_of(known.expand(3, 4)), y, 2.0, low_res_mask=frames_of(low_mask.expand(3, 4)), downsampler="area")
    assert torch.equal(guided, plain)
    chunked = ReconstructionGuidance(den, 2.0, x_known=x, known_mask=known, low_res=y, low_res_mask=low_mask, downsampler="area", chunk_size=2)(z, lam)
    torch.testing.assert_close(chunked, plain, rtol=1e-12, atol=1e-12)


def test_downsamplers_are_differentiable_and_average():
    v = torch.rand(2, 3, 4, 8, 8, requires_grad=True)
    for mode in ("area", "bilinear"):
        d = downsample_video(v, 2, mode)
        assert d.shape == (2, 3, 4, 2, 2)
        (g,) = torch.autograd.grad(d.sum(), v)
        assert g.abs().sum() > 0
    const = torch.full((1, 1, 2, 8, 8), 0.3)
    for mode in ("area", "bilinear"):
        torch.testing.assert_close(downsample_video(const, 4, mode), torch.full((1, 1, 2, 4, 4), 0.3))
    with pytest.raises(ValueError, match="unknown downsampler"):
        downsample_video(v, 2, "nearest")


# -- replacement ---------------------------------------------------------------------------------


def test_replacement_variants():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 1, 4, 1, 1, generator=gen)
    known = torch.tensor([True, False, True, False])
    z_old, z_new = torch.randn(2, 4000, 1, 4, 1, 1, generator=gen)
    lam_t, lam_s = torch.tensor(-1.0), torch.tensor(1.0)

    fwd = Replacement(x, known, "forward", generator=gen)(z_new, lam_s, z_old, lam_t)
    torch.testing.assert_close(fwd[:, :, ~known], z_new[:, :, ~known])  # x^b untouched
    alpha, sigma = alpha_sigma(lam_s)
    resid = (fwd[:, :, known] - alpha * x[:, :, known]) / sigma  # should be N(0, 1)
    assert abs(resid.mean()) < 0.05 and abs(resid.std() - 1) < 0.05

    post = Replacement(x, known, "posterior", generator=gen)(z_new, lam_s, z_old, lam_t)
    mean, var = posterior(z_old, x, lam_s, lam_t)
    resid = (post - mean)[:, :, known] / var.sqrt()
    assert abs(resid.mean()) < 0.05 and abs(resid.std() - 1) < 0.05
    # a corrector step (s = t): the posterior is a point mass at z_t^a
    same = Replacement(x, known, "posterior", generator=gen)(z_new, lam_t, z_old, lam_t)
    torch.testing.assert_close(same[:, :, known], z_old[:, :, known])
    with pytest.raises(ValueError, match="unknown replacement"):
        Replacement(x, known, "overwrite")


# -- the paper's claim on a Gaussian video whose conditional is known -----------------------------


def conditional_errors(den, out, x_known, mask):
    """Distance of the samples' x^b to the exact p(x^b | x^a): mean error (L2) and the
    relative Frobenius error of the covariance."""
    known = mask[None, :, None, None].expand(1, T, H, W)
    m, S = den.conditional(known, x_known[0, 0])
    b = out[:, :, ~mask].reshape(out.shape[0], -1).double()
    return (b.mean(0) - m).norm().item(), ((torch.cov(b.T) - S).norm() / S.norm()).item()


@pytest.mark.parametrize("sampler", ["ancestral", "pc"])
def test_reconstruction_guidance_beats_replacement_on_a_gaussian_video(sampler):
    den = gaussian_video(rho=0.9)
    x = den.sample(1, torch.Generator().manual_seed(1)).float().reshape(1, 1, T, H, W)
    n = 1500
    x_known = x.expand(n, -1, -1, -1, -1).contiguous()
    mask = prediction_mask(T, 4)
    errs = {}
    for name, kw in {
        "replacement": dict(method="replacement"),
        "replacement-posterior": dict(method="replacement", replacement="posterior"),
        "reconstruction": dict(method="reconstruction", recon_weight=2.0),
    }.items():
        out = conditional_sample(den, x_known, mask, sampler=sampler, steps=60, generator=0, progress=False, **kw)
        assert torch.equal(out[:, :, mask], x_known[:, :, mask]), "known frames must come back exactly"
        errs[name] = conditional_errors(den, out, x_known, mask)
    scale = den.conditional(mask[None, :, None, None].expand(1, T, H, W), x[0, 0])[0].norm().item()
    rec_mean, rec_cov = errs["reconstruction"]
    for name in ("replacement", "replacement-posterior"):
        rep_mean, rep_cov = errs[name]
        assert rep_mean > 0.2 * scale, f"replacement should miss the conditional mean: {errs}"
        assert rec_mean < 0.7 * rep_mean and rec_cov < 0.6 * rep_cov, errs


def test_guidance_weight_zero_is_replacement():
    den = gaussian_video()
    x = den.sample(3, torch.Generator().manual_seed(2)).float().reshape(3, 1, T, H, W)
    mask = prediction_mask(T, 2)
    a = conditional_sample(den, x, mask, method="replacement", steps=10, generator=5, progress=False)
    b = conditional_sample(den, x, mask, method="reconstruction", recon_weight=0.0, steps=10, generator=5, progress=False)
    torch.testing.assert_close(a, b)


def test_chunking_gives_the_same_guided_prediction():
    den = gaussian_video()
    gen = torch.Generator().manual_seed(3)
    x = den.sample(5, gen).float().reshape(5, 1, T, H, W)
    z = torch.randn(5, 1, T, H, W, generator=gen)
    lam = torch.linspace(-3, 3, 5)
    full = ReconstructionGuidance(den, 2.0, x_known=x, known_mask=prediction_mask(T, 3))(z, lam)
    chunked = ReconstructionGuidance(den, 2.0, x_known=x, known_mask=prediction_mask(T, 3), chunk_size=2)(z, lam)
    torch.testing.assert_close(full, chunked)


# -- the drivers: shapes, known frames, errors --------------------------------------------------


def test_extend_video_shapes_and_known_frames():
    den = IsoGaussian()
    video = torch.rand(2, 3, 5, 4, 4) * 2 - 1
    out = extend_video(den, video, 23, block_frames=8, context_frames=3, steps=4, generator=0, progress=False)
    assert out.shape == (2, 3, 23, 4, 4)
    assert torch.equal(out[:, :, :5], video)
    again = extend_video(den, video, 23, block_frames=8, context_frames=3, steps=4, generator=0, progress=False)
    assert torch.equal(out, again), "a seed fixes the whole long video"


def test_interpolate_video_shapes_and_known_frames():
    den = IsoGaussian()
    video = torch.rand(1, 3, 7, 4, 4) * 2 - 1
    out = interpolate_video(den, video, 4, block_frames=9, steps=4, generator=0, progress=False)
    assert out.shape == (1, 3, 25, 4, 4)
    assert torch.equal(out[:, :, ::4], video), "every 4th frame is an input frame"
    assert interpolation_mask(9, 4).tolist() == [True, False, False, False, True, False, False, False, True]


def test_super_resolution_and_cascade_shapes():
    den = IsoGaussian()
    low = torch.rand(2, 3, 4, 2, 2) * 2 - 1
    out = super_resolve(den, low, 8, steps=4, generator=0, progress=False)
    assert out.shape == (2, 3, 4, 8, 8)
    cascade = upsample_video(den, low, 8, factor=3, block_frames=6, context_frames=2, steps=3, generator=0, progress=False)
    assert cascade.shape == (2, 3, 10, 8, 8)


def test_super_resolution_reproduces_the_low_resolution_video():
    """With strong guidance on the exact Gaussian denoiser, downsampling the super-resolved
    video gives back the low-resolution input (much closer than an unguided sample)."""
    den = gaussian_video(frames=2, h=4, w=4)
    x = den.sample(64, torch.Generator().manual_seed(4)).float().reshape(64, 1, 2, 4, 4)
    low = downsample_video(x, 2, "area")
    guided = super_resolve(den, low, 4, downsampler="area", recon_weight=4.0, steps=50, generator=0, clip_x=None, progress=False)
    free = conditional_sample(den, low_res=low, size=4, downsampler="area", recon_weight=0.0, steps=50, generator=0, progress=False)
    err = (downsample_video(guided, 2, "area") - low).square().mean()
    err_free = (downsample_video(free, 2, "area") - low).square().mean()
    assert err < 0.1 * err_free, (err, err_free)


def test_clear_errors():
    den = IsoGaussian()
    v = torch.zeros(1, 3, 6, 4, 4)
    with pytest.raises(ValueError, match="nothing to generate"):
        conditional_sample(den, v, torch.ones(6, dtype=torch.bool), steps=2)
    with pytest.raises(ValueError, match="has 5 frames, the video has T = 6"):
        conditional_sample(den, v, torch.ones(5, dtype=torch.bool), steps=2)
    with pytest.raises(ValueError, match="marks no frame as known"):
        conditional_sample(den, v, torch.zeros(6, dtype=torch.bool), steps=2)
    with pytest.raises(ValueError, match="does not divide the target size 8x8"):
        super_resolve(den, torch.zeros(1, 3, 4, 3, 3), 8, steps=2)
    with pytest.raises(ValueError, match="unknown method"):
        conditional_sample(den, v, prediction_mask(6, 2), method="inpaint", steps=2)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        conditional_sample(den, torch.zeros(3, 6, 4, 4), prediction_mask(6, 2), steps=2)
    with pytest.raises(ValueError, match="leaves nothing to generate"):
        extend_video(den, v, 6, block_frames=4)
    with pytest.raises(ValueError, match="context_frames"):
        extend_video(den, v, 10, block_frames=4, context_frames=4)


def test_on_a_network_with_classifier_free_guidance():
    """The U-Net path: extension with reconstruction guidance, the PC sampler and
    classifier-free guidance of a class-conditional model together; gradient checkpointing
    gives the same guided prediction."""
    torch.manual_seed(0)
    model = UNet3D(get_preset("cpu-tiny", image_size=16, num_frames=6, num_classes=3)).eval().requires_grad_(False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    video = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    label = torch.tensor([0, 2])
    out = extend_video(model, video, 10, context_frames=2, sampler="pc", steps=2, guidance_weight=1.5,
                       recon_weight=3.0, class_label=label, generator=0, progress=False)  # fmt: skip
    assert out.shape == (2, 3, 10, 16, 16) and torch.equal(out[:, :, :4], video) and out.abs().max() <= 1

    x_known = torch.cat([video, torch.zeros_like(video[:, :, :2])], 2)
    z, lam = torch.randn(2, 3, 6, 16, 16), torch.tensor([0.0, 3.0])
    guided = ReconstructionGuidance(model, 3.0, x_known=x_known, known_mask=prediction_mask(6, 4))
    plain = guided(z, lam, class_label=label)
    model.gradient_checkpointing = True
    torch.testing.assert_close(guided(z, lam, class_label=label), plain, rtol=1e-4, atol=1e-5)
    assert not any(p.grad is not None for p in model.parameters())


# -- the trained-model modes and `vdm-lite sample --mode` -----------------------------------------


@pytest.mark.parametrize(
    "mode,shape",
    [("predict", (2, 3, 8, 16, 16)), ("extend", (2, 3, 20, 16, 16)), ("interpolate", (2, 3, 13, 16, 16)),
     ("superres", (2, 3, 8, 16, 16)), ("upsample", (2, 3, 13, 16, 16))],
)  # fmt: skip
def test_conditional_modes_on_real_clips(mode, shape):
    from vdm_lite.config import get_preset as train_preset
    from vdm_lite.config import resolve_model_config
    from vdm_lite.sampling import conditional_videos

    cfg = train_preset("cpu-smoke")  # 8 frames of 16x16
    torch.manual_seed(0)
    model = UNet3D(resolve_model_config(cfg, 0)).eval().requires_grad_(False)
    res = conditional_videos(model, cfg, mode, 2, total_frames=20, context_frames=4, steps=2, progress=False)
    out, inp, truth = res["output"], res["input"], res["truth"]
    assert out.shape == shape and truth.shape == shape
    if mode == "predict":
        assert torch.equal(out[:, :, :4], truth[:, :, :4])
    if mode == "extend":
        assert torch.equal(out[:, :, :8], truth[:, :, :8])
    if mode == "interpolate":
        assert torch.equal(out[:, :, ::4], truth[:, :, ::4]) and inp.shape[2] == 4
    if mode in ("superres", "upsample"):
        assert inp.shape[-2:] == (8, 8)
    with pytest.raises(ValueError, match="needs input frames of 16x16"):
        conditional_videos(model, cfg, "extend", video=torch.zeros(1, 3, 8, 8, 8), steps=1)


def test_conditional_modes_of_a_class_model_use_its_labels_and_no_guidance_unless_told():
    import dataclasses

    from vdm_lite.config import get_preset as train_preset
    from vdm_lite.config import resolve_model_config
    from vdm_lite.sampling import conditional_videos

    cfg = dataclasses.replace(train_preset("cpu-smoke"), condition="class", guidance_weight=3.0)
    torch.manual_seed(0)
    model = UNet3D(resolve_model_config(cfg, 18)).eval().requires_grad_(False)
    for p in model.parameters():  # zero-initialized output layers would hide the condition
        if not p.any():
            p.normal_(0.0, 0.1)
    run = lambda **kw: conditional_videos(model, cfg, "extend", 2, total_frames=12, context_frames=4, steps=2, progress=False, **kw)["output"]
    default, at_run_weight, unguided = run(), run(guidance_weight=3.0), run(guidance_weight=0.0)
    assert torch.equal(default, unguided)  # the conditional modes are unguided unless told (not the run's w = 3)
    assert not torch.allclose(at_run_weight[:, :, 8:], unguided[:, :, 8:])  # a given weight is used
    assert not torch.allclose(run(class_label=[5, 9])[:, :, 8:], default[:, :, 8:])  # default: the clips' own labels


def test_cli_conditional_modes(tmp_path, capsys):
    from vdm_lite.cli import main
    from vdm_lite.viz import save_video

    weights = Path(__file__).resolve().parents[1] / "data" / "checkpoints" / "shapes-uncond.safetensors"
    out = tmp_path / "ext"
    assert main(["sample", str(weights), "--mode=extend", "--total-frames=20", "--context-frames=12", "--steps=1",
                 "--num=1", "--formats=png,gif", f"--out={out}", "--device=cpu"]) == 0  # fmt: skip
    for name in ("ext", "ext-input", "ext-truth"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0 and (tmp_path / f"{name}.gif").stat().st_size > 0
    low = torch.rand(1, 3, 4, 16, 16) * 2 - 1
    save_video(tmp_path / "low.gif", low, fps=8)
    out = tmp_path / "sr"
    assert main(["sample", str(weights), "--mode=superres", f"--input={tmp_path / 'low.gif'}", "--scale=2", "--steps=1",
                 "--formats=png", f"--out={out}", "--device=cpu"]) == 0  # fmt: skip
    assert (tmp_path / "sr.png").exists() and not (tmp_path / "sr-truth.png").exists()
    assert "wrote" in capsys.readouterr().out


class _WindowAverage:
    """x_hat of frame t = the mean of z / alpha over frames t-k..t+k (clipped at the ends)."""

    parameterization = "x"

    def __init__(self, k):
        self.k = k

    def __call__(self, z, logsnr):
        alpha, _ = alpha_sigma(logsnr[0])
        T = z.shape[2]
        out = torch.stack([z[:, :, max(0, t - self.k) : t + self.k + 1].mean(2) for t in range(T)], 2)
        return out / alpha


def test_frame_influence_of_a_window_average_is_its_window():
    from vdm_lite.tasks import frame_influence

    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 3, 1, 5, 5, generator=g).expand(-1, -1, 12, -1, -1) * 2 - 1  # static videos
    x_alt = -x
    for k, frame in ((2, 6), (1, 0)):
        inf = frame_influence(_WindowAverage(k), x, x_alt, logsnr=-2.0, frame=frame)
        lo, hi = max(0, frame - k), frame + k + 1
        want = torch.zeros(12, dtype=torch.float64)
        want[lo:hi] = 1.0 / (hi - lo)
        torch.testing.assert_close(inf, want, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="frame must lie in"):
        frame_influence(_WindowAverage(1), x, x_alt, logsnr=0.0, frame=12)
    with pytest.raises(ValueError, match="shape of x"):
        frame_influence(_WindowAverage(1), x, x_alt[:, :, :6], logsnr=0.0, frame=0)
    with pytest.raises(ValueError, match="nothing to measure"):
        frame_influence(_WindowAverage(1), x, x.clone(), logsnr=0.0, frame=0)


def test_far_share_of_window_averages_and_the_recolored_probe():
    from vdm_lite.datasets import BouncingShapes
    from vdm_lite.tasks import far_share, frame_influence, recolored_clips

    flat = torch.full((16,), 1 / 16)
    assert far_share(flat, 7) == pytest.approx(9 / 16)  # frames 0-3 and 11-15
    probe = recolored_clips(BouncingShapes(frames=12, resolution=16, num_objects=(1, 1)), 4)
    x, x_alt = probe["video"], probe["x_alt"]
    changed = (x_alt != x).any(1)  # (B, T, H, W): where the object is repainted
    assert changed.any() and not changed[probe["masks"][:, :, 0] == 0].any()  # only on the object
    static = x[:, :, :1].expand_as(x).contiguous()  # on a static video a window average's influence is its window
    for k, want in ((2, 0.0), (5, 4 / 11)):  # frames 1-11 around frame 6; 4 of them 4+ away
        inf = frame_influence(_WindowAverage(k), static, -static, logsnr=-2.0, frame=6)
        assert far_share(inf, 6) == pytest.approx(want, abs=1e-4)
