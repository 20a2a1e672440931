"""Section 4 metrics (vdm_lite.metrics): the Frechet distance against closed forms, the I3D and
InceptionV3 layouts and loaders on random weights, per-frame FID and the Inception Score."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vdm_lite.metrics import (
    I3D,
    FrechetResult,
    InceptionV3,
    TorchScriptI3D,
    WeightsMismatch,
    extract_features,
    frame_features,
    frame_fid,
    frame_inception_score,
    frechet_distance,
    frechet_from_features,
    fvd,
    gaussian_stats,
    inception_score,
    load_i3d,
    preprocess_i3d,
    read_state_dict,
    select_frames,
    trace_sqrt_product,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def rand_spd(d: int, seed: int, cond: float = 10.0) -> torch.Tensor:
    """A random non-diagonal symmetric positive-definite (d, d) matrix, float64."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    w = torch.logspace(0, math.log10(cond), d, dtype=torch.float64)
    return (q * w) @ q.T


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# -- the Frechet distance -------------------------------------------------------------------


def test_distance_of_a_set_to_itself_is_zero():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 24, generator=g, dtype=torch.float64) @ torch.randn(24, 24, generator=g, dtype=torch.float64)
    mu, s, n = gaussian_stats(x)
    assert n == 300 and mu.dtype == torch.float64 and s.shape == (24, 24)
    assert torch.allclose(mu, x.mean(0)) and torch.allclose(s, torch.cov(x.T))  # unbiased, as np.cov
    d = frechet_distance(mu, s, mu, s)
    assert 0 <= d <= 1e-6 * float(torch.trace(s))
    assert frechet_from_features(x, x).value <= 1e-6 * float(torch.trace(s))


def test_diagonal_gaussians_match_the_closed_form():
    g = torch.Generator().manual_seed(1)
    d = 16
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    a, b = torch.rand(d, generator=g, dtype=torch.float64) * 3, torch.rand(d, generator=g, dtype=torch.float64) * 3
    expected = float(((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    assert rel(frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)), expected) < 1e-9


def test_commuting_covariances_match_the_closed_form():
    d = 12
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    a, b = torch.linspace(0.1, 4.0, d, dtype=torch.float64), torch.linspace(3.0, 0.2, d, dtype=torch.float64)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T  # same eigenvectors, non-diagonal
    mu = torch.zeros(d, dtype=torch.float64)
    expected = float(((a.sqrt() - b.sqrt()) ** 2).sum())
    assert rel(frechet_distance(mu, s1, mu, s2), expected) < 1e-9
    assert rel(trace_sqrt_product(s1, s2), float((a * b).sqrt().sum())) < 1e-9


@pytest.mark.parametrize("c", [0.5, 2.0, 3.0])
def test_scaled_covariance_matches_the_closed_form(c):
    d = 20
    s1 = rand_spd(d, seed=3, cond=1e3)
    g = torch.Generator().manual_seed(4)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    expected = float(torch.trace(s1)) * (1 - c) ** 2 + float(((mu1 - mu2) ** 2).sum())
    assert rel(frechet_distance(mu1, s1, mu2, c**2 * s1), expected) < 1e-8


def test_distance_is_symmetric():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(100, 10, generator=g, dtype=torch.float64)
    y = torch.randn(80, 10, generator=g, dtype=torch.float64) * torch.linspace(0.2, 3, 10, dtype=torch.float64) + 0.3
    d12, d21 = frechet_from_features(x, y).value, frechet_from_features(y, x).value
    assert d12 > 0.5 and rel(d12, d21) < 1e-9


def test_singular_covariances_stay_real_and_exact():
    """Fewer samples than dimensions and duplicated feature columns: both covariances have
    rank <= 4 of 32; y = 2 x + shift gives S_2 = 4 S_1 and mu_2 = 2 mu_1 + shift, so
    d = tr(S_1) (1 - 2)^2 + ||mu_1 + shift||^2."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(5, 16, generator=g, dtype=torch.float64)
    x = torch.cat([x, x[:, :8] * 1e3, torch.zeros(5, 8, dtype=torch.float64)], dim=1)  # (5, 32), badly scaled
    shift = torch.randn(32, generator=g, dtype=torch.float64)
    y = 2 * x + shift
    mu, s, _ = gaussian_stats(x)
    assert torch.linalg.matrix_rank(s) <= 4
    d = frechet_from_features(x, y).value
    expected = float(torch.trace(s)) + float(((mu + shift) ** 2).sum())
    assert math.isfinite(d) and isinstance(d, float)
    assert rel(d, expected) < 1e-7
    # a singular set against a full-rank one: finite, non-negative, symmetric
    z = torch.randn(64, 32, generator=g, dtype=torch.float64)
    a, b = frechet_from_features(x, z).value, frechet_from_features(z, x).value
    assert math.isfinite(a) and a >= 0 and rel(a, b) < 1e-6


def test_agrees_with_scipy_sqrtm_when_well_conditioned():
    linalg = pytest.importorskip("scipy.linalg")
    s1, s2 = rand_spd(8, seed=7), rand_spd(8, seed=8)
    ref = float(linalg.sqrtm((s1 @ s2).numpy()).real.trace())
    assert rel(trace_sqrt_product(s1, s2), ref) < 1e-8


def test_clear_errors():
    x = torch.randn(10, 4)
    with pytest.raises(ValueError, match="at least 2 samples"):
        gaussian_stats(x[:1])
    with pytest.raises(ValueError, match="non-finite"):
        gaussian_stats(torch.cat([x, torch.full((1, 4), float("nan"))]))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        gaussian_stats(torch.randn(10))
    with pytest.raises(ValueError, match="dimensions"):
        frechet_from_features(x, torch.randn(10, 5))
    with pytest.raises(ValueError, match="dimensions"):
        frechet_distance(torch.zeros(4), torch.eye(4), torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(torch.zeros(4), torch.eye(3), torch.zeros(4), torch.eye(4))
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance(torch.zeros(2), torch.tensor([[1.0, 0], [0, float("inf")]]), torch.zeros(2), torch.eye(2))


def test_result_reports_the_sample_counts():
    r = FrechetResult(123.4, 256, 256, "FVD")
    assert str(r) == "FVD 123.4 (n=256 vs 256)" and float(r) == 123.4
    assert str(FrechetResult(0.012345, 64, 32, "FID-first")) == "FID-first 0.01235 (n=64 vs 32)"
    x, y = torch.randn(30, 3), torch.randn(20, 3)
    r = frechet_from_features(gaussian_stats(x), y, name="FD")  # precomputed real statistics
    assert (r.n_real, r.n_fake) == (30, 20) and rel(r.value, frechet_from_features(x, y).value) < 1e-12


# -- batched extraction ---------------------------------------------------------------------


class Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 3)
        self.sizes: list[int] = []

    def forward(self, x):
        self.sizes.append(x.shape[0])
        assert not torch.is_grad_enabled() and not self.training
        return self.lin(x.flatten(1))


def test_extract_features_batches_without_grad_and_restores_mode():
    net = Recorder().train()
    x = torch.randn(10, 2, 3)
    out = extract_features(net, x, batch_size=4, progress=False)
    assert net.sizes == [4, 4, 2] and net.training
    assert out.shape == (10, 3) and out.dtype == torch.float64
    with torch.no_grad():
        assert torch.allclose(out, net.lin(x.flatten(1)).double())
    batches = [x[:3], x[3:]]  # an iterable of batches, a list-returning network
    out2 = extract_features(lambda b: [net.lin(b.flatten(1))], batches, progress=False)
    assert torch.allclose(out2, out)


# -- I3D and FVD ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def i3d():
    torch.manual_seed(0)
    return I3D(size=None).eval()


@pytest.fixture(scope="module")
def i3d_file(i3d, tmp_path_factory):
    path = tmp_path_factory.mktemp("i3d") / "i3d.pt"
    torch.save(i3d.state_dict(), path)
    return path


def test_preprocess_resizes_each_frame_and_keeps_the_range():
    v = torch.tensor([-1.0, 0.25, 1.0]).view(1, 1, 3, 1, 1).expand(2, 3, 3, 4, 4).clone()  # constant frames
    v[0, :, :, 0, 0] = 3.0  # overshoot, clamped
    out = preprocess_i3d(v, size=8)
    assert out.shape == (2, 3, 3, 8, 8) and out.min() >= -1 and out.max() <= 1
    assert torch.allclose(out[1, :, 1], torch.full((3, 8, 8), 0.25))  # frames are not mixed in time
    frame = v[0, :, 2].clamp(-1, 1).unsqueeze(0)
    assert torch.allclose(out[0, :, 2], F.interpolate(frame, size=(8, 8), mode="bilinear", align_corners=False)[0])
    assert preprocess_i3d(torch.zeros(1, 1, 2, 4, 4), size=4).shape == (1, 3, 2, 4, 4)  # gray -> RGB
    with pytest.raises(ValueError, match="channels"):
        preprocess_i3d(torch.zeros(1, 2, 2, 4, 4))


def test_i3d_layout_and_shapes(i3d):
    sd = i3d.state_dict()
    assert len(sd) == 344  # as piergiaj/pytorch-i3d's InceptionI3d(400)
    assert sd["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert sd["Mixed_5c.b1b.conv3d.weight"].shape == (384, 192, 3, 3, 3)
    assert sd["Mixed_4f.b3b.bn.running_var"].shape == (128,)
    assert sd["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1) and sd["logits.conv3d.bias"].shape == (400,)
    x = torch.rand(2, 3, 8, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        logits, pool = i3d(x), i3d(x, layer="pool")
    assert logits.shape == (2, 400) and pool.shape == (2, 1024) and torch.isfinite(logits).all()
    head = sd["logits.conv3d.weight"].flatten(1)
    assert torch.allclose(logits, pool @ head.T + sd["logits.conv3d.bias"], atol=1e-5)  # logits: affine in pool


def test_i3d_loader_round_trips(i3d, i3d_file, tmp_path):
    x = torch.rand(1, 3, 8, 64, 64) * 2 - 1
    with torch.no_grad():
        ref = i3d(x)
        assert torch.equal(I3D.from_file(i3d_file, size=None)(x), ref)
        from safetensors.torch import save_file

        st = tmp_path / "i3d.safetensors"
        save_file({k: v.contiguous() for k, v in i3d.state_dict().items()}, str(st))
        assert torch.equal(load_i3d(st, size=None)(x), ref)
    wrapped = tmp_path / "wrapped.pt"  # a training checkpoint of a DataParallel model
    torch.save({"state_dict": {"module.a.weight": torch.ones(2)}, "epoch": 3}, wrapped)
    assert list(read_state_dict(wrapped)) == ["a.weight"]


def test_i3d_loader_names_missing_and_unexpected_keys(i3d, tmp_path):
    sd = dict(i3d.state_dict())
    del sd["Mixed_4c.b1b.conv3d.weight"]
    sd["extra.weight"] = torch.zeros(1)
    sd["Mixed_3b.b0.bn.bias"] = torch.zeros(7)
    path = tmp_path / "broken.pt"
    torch.save(sd, path)
    with pytest.raises(WeightsMismatch) as e:
        I3D.from_file(path)
    msg = str(e.value)
    assert "missing" in msg and "Mixed_4c.b1b.conv3d.weight" in msg
    assert "unexpected" in msg and "extra.weight" in msg
    assert "Mixed_3b.b0.bn.bias" in msg and "shape" in msg
    with pytest.raises(FileNotFoundError):
        I3D.from_file(tmp_path / "nowhere.pt")


class FakeDetector(nn.Module):
    """Signature of StyleGAN-V's i3d_torchscript.pt: (x, rescale, resize, return_features)."""

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = False) -> torch.Tensor:
        assert not rescale and not resize and return_features
        return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], dim=1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated, the FVD detector is not
def test_torchscript_detector_and_fvd(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(FakeDetector()), str(path))
    det = load_i3d(path, size=8)
    assert isinstance(det, TorchScriptI3D)
    with pytest.raises(WeightsMismatch, match="TorchScript"):
        I3D.from_file(path)
    g = torch.Generator().manual_seed(0)
    real = torch.rand(12, 3, 4, 4, 4, generator=g) * 2 - 1
    fake = (real * 0.5).clamp(-1, 1)
    assert det(real).shape == (12, 6)
    r = fvd(real, real, det, batch_size=5, progress=False)
    assert r.value < 1e-9 and (r.n_real, r.n_fake) == (12, 12) and str(r).startswith("FVD ")
    far = fvd(real, fake, det, progress=False)
    assert far.value > 0.01
    cached = gaussian_stats(extract_features(det, real, progress=False))
    assert rel(fvd(cached, fake, det, progress=False).value, far.value) < 1e-12


# -- per-frame FID and the Inception Score --------------------------------------------------


def flat(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(1)


def test_select_frames():
    v = torch.arange(2 * 2 * 3).float().view(2, 2, 3, 1, 1)  # value = 6 b + 3 c + t
    assert select_frames(v, "avg")[:, :, 0, 0].tolist() == [[0, 3], [1, 4], [2, 5], [6, 9], [7, 10], [8, 11]]
    assert select_frames(v, "first")[:, :, 0, 0].tolist() == [[0, 3], [6, 9]]
    assert select_frames(v, -1)[:, :, 0, 0].tolist() == [[2, 5], [8, 11]]
    with pytest.raises(ValueError):
        select_frames(v, "last")
    with pytest.raises(ValueError):
        select_frames(v, 3)


def test_fid_avg_and_first_order_as_expected():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(64, 3, 4, 2, 2, generator=g) * 0.3
    later_differ = real.clone()
    later_differ[:, :, 1:] += 0.5  # same first frames, shifted later frames
    first_differs = real.clone()
    first_differs[:, :, 0] += 0.5
    kw = dict(batch_size=16, progress=False)
    a_first, a_avg = frame_fid(real, later_differ, flat, "first", **kw), frame_fid(real, later_differ, flat, **kw)
    assert a_first.value < 1e-9 < 0.5 < a_avg.value
    assert (a_avg.n_real, a_first.n_real) == (64 * 4, 64) and a_avg.name == "FID-avg"
    b_first, b_avg = frame_fid(real, first_differs, flat, "first", **kw), frame_fid(real, first_differs, flat, **kw)
    assert b_first.value > b_avg.value > 0.1
    assert frame_features(real, flat, "avg", progress=False).shape == (256, 12)


def test_fid_avg_per_frame_against_pooled():
    """Frames shuffled in time within each video: the pooled set of frames is the same, so
    FID-avg is 0, while every frame position now holds other frames, so the per-frame reading
    is not. The per-frame reading is the mean of the single-position FIDs."""
    g = torch.Generator().manual_seed(0)
    t = 4
    real = torch.randn(64, 3, t, 2, 2, generator=g) * 0.3 + torch.arange(t).float().view(1, 1, t, 1, 1)
    shuffled = real[:, :, torch.tensor([2, 0, 3, 1])]
    kw = dict(batch_size=16, progress=False)
    assert frame_fid(real, shuffled, flat, **kw).value < 1e-6
    per = frame_fid(real, shuffled, flat, "avg_per_frame", **kw)
    assert per.value > 1.0 and (per.n_real, per.n_fake, per.name) == (64, 64, "FID-avg_per_frame")
    by_position = [frame_fid(real, shuffled, flat, k, **kw).value for k in range(t)]
    assert abs(per.value - sum(by_position) / t) < 1e-9
    assert frame_fid(real, real.clone(), flat, "avg_per_frame", **kw).value < 1e-9
    assert frame_features(real, flat, "avg_per_frame", progress=False).shape == (64, t, 12)
    with pytest.raises(ValueError, match="fake ones have 3"):
        frame_fid(real, shuffled[:, :, :3], flat, "avg_per_frame", **kw)
    with pytest.raises(ValueError, match="precomputed statistics"):
        frame_fid(gaussian_stats(frame_features(real, flat, progress=False)), shuffled, flat, "avg_per_frame", **kw)


def test_inception_score_limits():
    k = 5
    assert abs(inception_score(torch.zeros(40, k)).value - 1) < 1e-12  # uniform: no information
    assert abs(inception_score(torch.randn(1, k).repeat(30, 1)).value - 1) < 1e-9  # all alike
    onehot = 50.0 * F.one_hot(torch.arange(40) % k, k).double()  # confident, classes even
    r = inception_score(onehot, splits=4)
    assert abs(r.value - k) < 1e-9 and r.std < 1e-9 and (r.n, r.splits) == (40, 4)
    rand = inception_score(torch.randn(200, k, generator=torch.Generator().manual_seed(0)) * 2)
    assert 1 < rand.value < k
    with pytest.raises(ValueError):
        inception_score(torch.zeros(3, k), splits=4)


def test_frame_inception_score_avg_and_first():
    """Frame t of every video is classified as class t: pooled over T frames the classes are
    even and confident (IS = T); the first frames are all class 0 (IS = 1)."""
    b, t, k = 6, 4, 4
    videos = torch.arange(t).float().view(1, 1, t, 1, 1).expand(b, 3, t, 2, 2) / 10

    def classifier(images):
        return 50.0 * F.one_hot((images[:, 0, 0, 0] * 10).round().long(), k).float()

    assert abs(frame_inception_score(videos, classifier, "avg", progress=False).value - t) < 1e-6
    first = frame_inception_score(videos, classifier, "first", progress=False)
    assert abs(first.value - 1) < 1e-6 and first.name == "IS-first" and first.n == b
    per = frame_inception_score(videos, classifier, "avg_per_frame", progress=False)  # one class per position
    assert abs(per.value - 1) < 1e-6 and per.name == "IS-avg_per_frame" and per.n == b


def test_inception_v3_layout_and_loader(tmp_path):
    torch.manual_seed(0)
    net = InceptionV3(size=None).eval()
    sd = net.state_dict()
    assert len(sd) == 566  # torchvision Inception3 names without AuxLogits, as pytorch-fid's file
    assert sd["fc.weight"].shape == (1008, 2048)
    assert sd["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    x = torch.rand(2, 3, 75, 75) * 2 - 1
    with torch.no_grad():
        feats, logits = net.features(x), net.logits(x)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008) and torch.isfinite(logits).all()
    from safetensors.torch import save_file

    path = tmp_path / "inception.safetensors"
    save_file({k: v.half() if v.is_floating_point() else v for k, v in sd.items()
               if k != "Mixed_6a.branch3x3.conv.weight"}, str(path))
    with pytest.raises(WeightsMismatch, match="Mixed_6a.branch3x3.conv.weight"):
        InceptionV3.from_file(path)
