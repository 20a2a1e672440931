"""ShapesNet, the built-in world's video network (vdm_lite.metrics.domain): layout, saving and
loading, deterministic training, and what the shipped weights can tell apart."""

from __future__ import annotations

import pytest
import torch

from vdm_lite.datasets import BouncingShapes
from vdm_lite.metrics import ShapesNet, WeightsMismatch, coherence, domain_fd, domain_features, domain_is, load_shapes_net
from vdm_lite.metrics.domain import SHIPPED_SHAPES_NET, domain_batch, evaluate_shapes_net, save_shapes_net, train_shapes_net

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shipped():
    return load_shapes_net()


def real(n, seed, resolution=32, frames=16):
    return BouncingShapes(frames, resolution, num_objects=(1, 1)).generate_batch(n, seed)


def test_shapes_net_takes_any_resolution_and_length():
    net = ShapesNet(channels=(8, 8, 8), feature_dim=16).eval()
    for shape in [(2, 3, 16, 32, 32), (2, 3, 16, 16, 16), (1, 3, 5, 64, 64), (1, 3, 1, 32, 32)]:
        out = net(torch.rand(shape) * 2 - 1)
        assert out["features"].shape == (shape[0], 16) and out["class_logits"].shape == (shape[0], 18)
        assert out["count_logits"].shape == (shape[0], 3) and out["coherent_logit"].shape == (shape[0],)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        net(torch.zeros(2, 16, 32, 32))


def test_domain_batch_targets():
    b = domain_batch(20, torch.Generator().manual_seed(0), frames=8, low_res_share=0.3)
    assert [v.shape[-1] for v in b["video"]] == [32, 32, 16, 16]  # one- and many-object groups per resolution
    assert sum(v.shape[0] for v in b["video"]) == 20 == len(b["label"]) == len(b["coherent"])
    assert b["count"].min() >= 0 and b["count"].max() <= 2 and set(b["coherent"].tolist()) <= {0.0, 1.0}
    assert (b["label"] >= -1).all() and (b["label"] < 18).all() and (b["label"] >= 0).any()


def test_training_is_deterministic_and_the_file_round_trips(tmp_path):
    a, log_a = train_shapes_net(steps=3, batch_size=4, frames=4, channels=(8, 8, 8), feature_dim=16, progress=False)
    torch.manual_seed(123)  # the global RNG state must not matter
    b, log_b = train_shapes_net(steps=3, batch_size=4, frames=4, channels=(8, 8, 8), feature_dim=16, progress=False)
    assert log_a == log_b and all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    path = save_shapes_net(a, tmp_path / "net.safetensors", command="test")
    c = load_shapes_net(path)
    assert c.meta == {"command": "test"} and c.config == a.config
    x = torch.rand(2, 3, 4, 32, 32) * 2 - 1
    assert torch.equal(c(x)["features"], a(x)["features"])
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "bare.safetensors"))
    with pytest.raises(ValueError, match="no ShapesNet config"):
        load_shapes_net(tmp_path / "bare.safetensors")
    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"config": '{"channels": [8, 8, 8], "feature_dim": 16}'})
    with pytest.raises(WeightsMismatch):
        load_shapes_net(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError, match="train-domain"):
        load_shapes_net(tmp_path / "missing.safetensors")


def test_the_shipped_net_reads_the_world(shipped):
    assert SHIPPED_SHAPES_NET.is_file() and shipped.meta["command"].startswith("vdm-lite train-domain")
    s = evaluate_shapes_net(shipped, n=96, seed=777)  # clips training never saw
    # chance: 1/18 for the class, 1/3 for the count, 1/2 for coherence
    assert s["class_accuracy"] > 0.7 and s["count_accuracy"] > 0.85 and s["coherence_accuracy"] > 0.9
    assert s["velocity_error_px"] < 1.0


def test_domain_fd_separates_real_from_broken_videos(shipped):
    a, b = real(64, 1)["video"], real(64, 2)["video"]
    g = torch.Generator().manual_seed(0)
    shuffled = b[:, :, torch.randperm(16, generator=g)]
    frozen = b[:, :, :1].expand_as(b)
    same = domain_fd(a, b, shipped, progress=False)
    assert same.n_real == 64 and same.n_fake == 64 and same.name == "FD-domain"
    assert domain_fd(a, a, shipped, progress=False).value == pytest.approx(0.0, abs=1e-6)
    assert domain_fd(a, shuffled, shipped, progress=False).value > 3 * same.value
    assert domain_fd(a, frozen, shipped, progress=False).value > 3 * same.value
    assert domain_features(a[:3], shipped, progress=False).dtype == torch.float64


def test_domain_is_and_coherence(shipped):
    # one clip of each of the 18 classes -> IS near 18; 18 clips of one class -> IS near 1
    from vdm_lite.evaluate import real_with_labels

    ds = BouncingShapes(16, 32, num_objects=(1, 1))
    every = real_with_labels(ds, torch.arange(18), seed=3)
    one = real_with_labels(ds, torch.zeros(18, dtype=torch.long), seed=3)
    assert domain_is(every, shipped, progress=False).value > 8  # at most 18
    assert domain_is(one, shipped, progress=False).value < 1.5
    spliced = torch.cat([every[:9, :, :8], every[9:, :, 8:]], dim=2)
    p_real, p_spliced = coherence(every, shipped, progress=False), coherence(spliced, shipped, progress=False)
    assert p_real.shape == (18,) and p_real.mean() > 0.8 and p_spliced.mean() < 0.3


def test_low_resolution_clips_are_in_its_domain(shipped):
    lo = real(32, 4, resolution=16)["video"]
    hi = real(32, 5, resolution=32)["video"]
    hi2 = real(32, 6, resolution=32)["video"]
    assert domain_fd(hi, lo, shipped, progress=False).value < 3 * domain_fd(hi, hi2, shipped, progress=False).value + 1
    assert coherence(lo, shipped, progress=False).mean() > 0.8
