"""Tables 1-3 protocols (vdm_lite.protocols) end to end at smoke size, the C3D of tgan2
(vdm_lite.metrics.c3d) and the original FVD code's resize (vdm_lite.metrics.resize)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_benchmark_data import bair_tree, kinetics_tree, ucf_tree, uint8
from vdm_lite.metrics.c3d import C3D, c3d_layout, convert_tgan2_c3d, preprocess_c3d
from vdm_lite.metrics.resize import ResizedDetector, resize_bilinear_tf1, resize_frames
from vdm_lite.metrics.weights import WeightsMismatch
from vdm_lite.protocols import PROTOCOLS, load_shard, reproduce_benchmark

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:.*samples 16x16; the protocol.*:UserWarning"),
              pytest.mark.filterwarnings("ignore:Kinetics600.*:UserWarning")]  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An untrained U-Net of the cpu-tiny preset at 16 frames of 16x16, exported as a weights file."""
    from vdm_lite.checkpoint import save_weights
    from vdm_lite.config import TrainConfig
    from vdm_lite.nn.presets import get_preset
    from vdm_lite.nn.unet import UNet3D
    from vdm_lite.overrides import to_dict

    cfg = TrainConfig(model=get_preset("cpu-tiny", num_frames=16, image_size=16), frames=16, resolution=16)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_weights(UNet3D(cfg.model).state_dict(), path, {**to_dict(cfg), "step": 1})
    return path


def q(video):  # (3, T, H, W) or (B, 3, T, H, W) in [-1, 1] -> uint8 channels-last, as the shards store it
    return uint8(video) if video.ndim == 4 else np.stack([uint8(v) for v in video])


# -- Table 2: BAIR, the protocol's counts, resuming ------------------------------------------------------


def test_table2_smoke_conditions_on_one_frame_and_resumes(tiny, tmp_path, capsys):
    from vdm_lite.cli import main
    from vdm_lite.datasets import BAIRPushing

    bair_tree(tmp_path / "bair", n_first=2, n_second=0)
    out = tmp_path / "out"
    kw = dict(smoke=True, out_dir=out, device="cpu", progress=False)
    first = reproduce_benchmark("table2", tiny, tmp_path / "bair", max_shards=1, **kw)
    assert (first["context_frames"], first["generated_frames"], first["frames"]) == (1, 15, 16)
    assert (first["test_videos"], first["samples_per_video"], first["num_videos"]) == (2, 2, 4)
    assert first["shards"] == {"total": 2, "reused": [], "generated": [0]} and not first["complete"]
    assert not (out / "table2.md").exists()
    shard0 = out / "samples" / "samples_000.npz"
    stamp = shard0.stat().st_mtime_ns
    z = load_shard(shard0)
    assert z["videos"].shape == (2, 16, 16, 16, 3) and z["videos"].dtype == np.uint8
    assert z["video_index"].tolist() == [0, 1] and z["sample_index"].tolist() == [0, 0]  # round 0: one sample per test video
    real = torch.stack([it["video"] for it in BAIRPushing(tmp_path / "bair", frames=16, resolution=16)])
    np.testing.assert_array_equal(z["videos"][:, :1], q(real)[:, :1])  # the given frame is the real first frame, exactly
    assert (z["videos"][:, 1:] != q(real)[:, 1:]).any()  # the other 15 are generated

    second = reproduce_benchmark("table2", tiny, tmp_path / "bair", **kw)
    assert second["shards"] == {"total": 2, "reused": [0], "generated": [1]} and second["complete"]
    assert shard0.stat().st_mtime_ns == stamp  # the existing shard was skipped, not redone
    assert load_shard(out / "samples" / "samples_001.npz")["sample_index"].tolist() == [1, 1]
    m = second["metrics"]
    assert len(m["fvd_rounds"]) == 2 and np.isfinite(m["fvd"]) and np.isfinite(m["fvd_pooled"]) and m["n_real"] == 2
    saved = json.loads((out / "table2.json").read_text())
    assert saved["rows"]["paper: VDM, Langevin 256 steps"]["fvd"] == 66.92 and saved["context_frames"] == 1
    table = (out / "table2.md").read_text()
    assert "SMOKE RUN" in table and "| paper: VDM, ancestral 512 steps | 68.19 |" in table

    assert main(["reproduce", "table2", str(tiny), f"--data={tmp_path / 'bair'}", "--smoke", "--out", str(out),
                 "--device", "cpu"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "2 shard(s) already there, 0 made" in printed and "# Table 2" in printed
    assert shard0.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="other settings .*steps: 2 there, 3 now"):
        reproduce_benchmark("table2", tiny, tmp_path / "bair", steps=3, **kw)


def test_protocol_constants_are_the_papers():
    t1, t2, t3 = PROTOCOLS["table1"], PROTOCOLS["table2"], PROTOCOLS["table3"]
    assert (t1.num_videos, t1.context, t1.frames, t1.resolution, t1.metric) == (10_000, 0, 16, 64, "c3d")
    assert (t2.test_videos, t2.samples_per_video, t2.context, t2.frames, t2.recon_weight, t2.sampler) == (256, 100, 1, 16, 50.0, "pc")
    assert (t3.num_videos, t3.context, t3.frames, t3.recon_weight, t3.steps) == (50_000, 5, 16, 9.0, 128)
    assert t1.paper["paper: VDM"]["fid"] == 295 and t3.paper["paper: VDM, Langevin 128 steps"]["fvd"] == 16.2


# -- Tables 3 and 1 ------------------------------------------------------------------------------------


def test_table3_smoke_conditions_on_five_frames(tiny, tmp_path):
    from vdm_lite.datasets import Kinetics600

    kinetics_tree(tmp_path / "k600", with_missing=True)
    res = reproduce_benchmark("table3", tiny, tmp_path / "k600", smoke=True, out_dir=tmp_path / "out", device="cpu",
                              progress=False, clip="first")  # fmt: skip
    assert (res["context_frames"], res["generated_frames"], res["num_videos"]) == (5, 11, 3) and res["complete"]
    videos = np.concatenate([load_shard(tmp_path / "out" / "samples" / f"samples_{k:03d}.npz")["videos"] for k in range(2)])
    assert videos.shape == (3, 16, 16, 16, 3)
    ds = Kinetics600(tmp_path / "k600", frames=16, resolution=16, clip="first")
    real = np.stack([q(ds[i % 2]["video"]) for i in range(3)])  # 3 clips from the 2 videos there: the first comes back
    np.testing.assert_array_equal(videos[:, :5], real[:, :5])
    m = res["metrics"]
    assert m["n_fake"] == m["n_real"] == 3 and m["missing_videos"] == 1 and np.isfinite(m["fvd"]) and m["is_all"]["value"] >= 1
    assert "| paper: VDM, Langevin 128 steps | 16.20 |" in (tmp_path / "out" / "table3.md").read_text()


def test_table1_smoke_unconditional_with_a_given_feature_net(tiny, tmp_path):
    ucf, _ = ucf_tree(tmp_path)
    calls = []

    class Net(torch.nn.Module):  # any network: extract(videos) -> (features, logits)
        name = "test net"

        def extract(self, v):
            calls.append(tuple(v.shape))
            f = F.adaptive_avg_pool3d(v, (1, 2, 2)).flatten(1)
            return f, f[:, :5]

    res = reproduce_benchmark("table1", tiny, ucf, smoke=True, out_dir=tmp_path / "out", device="cpu", progress=False,
                              feature_net=Net())  # fmt: skip
    assert (res["context_frames"], res["frames"], res["num_videos"]) == (0, 16, 4) and res["feature_net"] == "test net"
    assert all(s[1:] == (3, 16, 16, 16) for s in calls)
    m = res["metrics"]
    assert m["n_fake"] == 4 and m["n_real"] == 4 and np.isfinite(m["fid"]) and 1 <= m["is_all"]["value"] <= 5
    table = (tmp_path / "out" / "table1.md").read_text()
    assert "| paper: VDM | 295.00 | 57.00 | ± 3 | ± 0.62 | 10k samples |" in table and "test net" in table


def test_without_weights_samples_are_made_but_not_scored(tiny, tmp_path):
    ucf, _ = ucf_tree(tmp_path)
    res = reproduce_benchmark("table1", tiny, ucf, num=2, steps=1, out_dir=tmp_path / "out", device="cpu", progress=False)
    assert res["complete"] and res["metrics"] is None and res["feature_net"] is None
    assert "not scored" in (tmp_path / "out" / "table1.md").read_text()
    with pytest.raises(ValueError, match="needs its data"):
        reproduce_benchmark("table2", tiny, None, smoke=True, out_dir=tmp_path / "o2")


# -- C3D -----------------------------------------------------------------------------------------------


def test_c3d_layout_is_tgan2s():
    layout = c3d_layout()
    assert len(layout) == 23  # 8 convolutions and 3 linear layers (weight, bias), and the mean clip
    assert layout["conv1a.weight"] == (64, 3, 3, 3, 3) and layout["conv3b.weight"] == (256, 256, 3, 3, 3)
    assert layout["conv5b.weight"] == (512, 512, 3, 3, 3) and layout["fc6.weight"] == (4096, 8192)
    assert layout["fc7.weight"] == (4096, 4096) and layout["fc8.weight"] == (101, 4096) and layout["fc8.bias"] == (101,)
    assert layout["mean"] == (3, 16, 112, 112)
    from vdm_lite.metrics.c3d import _POOL_AFTER

    x = torch.zeros(1, 1, 16, 112, 112)  # the network's five pools (ceil mode, as Chainer's cover_all): 7 -> 4 at pool5
    for k in _POOL_AFTER.values():
        x = F.max_pool3d(x, k, k, ceil_mode=True)
    assert x.shape[2:] == (1, 4, 4)  # so fc6 sees 512 x 1 x 4 x 4 = 8192


SMALL = dict(channels=(4, 4, 8, 8, 8), fc=16, size=32)


def test_c3d_loads_its_layout_and_rejects_others(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    net = C3D(**SMALL).eval()
    with torch.no_grad():
        net.mean.uniform_(80, 120)
    save_file(net.state_dict(), str(tmp_path / "c3d.safetensors"))
    loaded = C3D.from_file(tmp_path / "c3d.safetensors", **SMALL)
    v = torch.rand(2, 3, 16, 20, 24) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.logits(v), net.logits(v))
        assert loaded.features(v).shape == (2, 16) and (loaded.features(v) >= 0).all()  # fc7 after its ReLU
        torch.testing.assert_close(loaded(v, "prob").sum(-1), torch.ones(2))
    bad = dict(net.state_dict())
    bad.pop("fc8.bias")
    bad["conv1a.weight"] = torch.zeros(4, 3, 1, 3, 3)
    bad["classifier.weight"] = torch.zeros(3)
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsMismatch, match=r"C3D.*1 missing keys: fc8\.bias.*1 unexpected keys: classifier\.weight.*"
                                              r"conv1a\.weight \(4, 3, 1, 3, 3\) != \(4, 3, 3, 3, 3\)"):  # fmt: skip
        C3D.from_file(tmp_path / "bad.safetensors", **SMALL)
    sports = dict(net.state_dict())
    sports["fc8.weight"], sports["fc8.bias"] = torch.zeros(487, 16), torch.zeros(487)  # a Sports-1M head
    save_file(sports, str(tmp_path / "sports.safetensors"))
    with pytest.raises(WeightsMismatch, match=r"fc8\.weight \(487, 16\) != \(101, 16\)"):
        C3D.from_file(tmp_path / "sports.safetensors", **SMALL)


def test_c3d_preprocessing_and_the_chainer_conversion(tmp_path):
    mean = torch.zeros(3, 16, 4, 4)
    v = torch.stack([torch.full((16, 4, 4), 1.0), torch.zeros(16, 4, 4), torch.full((16, 4, 4), -1.0)])[None]  # R=1, G=0, B=-1
    x = preprocess_c3d(v, mean, size=4)
    assert x[0, 0].unique().tolist() == [0.0] and x[0, 1].unique().tolist() == [128.0] and x[0, 2].unique().tolist() == [256.0]
    ramp = torch.linspace(-1, 1, 3).view(1, 1, 1, 1, 3).expand(1, 3, 16, 3, 3)
    up = preprocess_c3d(ramp, torch.zeros(3, 16, 5, 5), size=5)  # align_corners=True: the corners stay the corners
    assert up[0, 0, 0, 0].tolist() == [0.0, 64.0, 128.0, 192.0, 256.0]
    torch.manual_seed(1)
    net = C3D(**SMALL)
    chainer = {f"{k.split('.')[0]}/{'W' if k.endswith('weight') else 'b'}": v.numpy() for k, v in net.state_dict().items()
               if k != "mean"}  # what chainer's save_npz writes
    np.savez(tmp_path / "conv3d_deepnetA_ucf.npz", **chainer)
    full_mean = np.random.default_rng(0).uniform(0, 255, (3, 16, 48, 52)).astype(np.float32)
    np.savez(tmp_path / "mean2.npz", mean=full_mean)
    out = convert_tgan2_c3d(tmp_path / "conv3d_deepnetA_ucf.npz", tmp_path / "mean2.npz", tmp_path / "c3d.safetensors", size=32)
    loaded = C3D.from_file(out, **SMALL)
    np.testing.assert_array_equal(loaded.mean.numpy(), full_mean[:, :, 8:40, 8:40])  # tgan2's crop
    torch.testing.assert_close(loaded.conv4b.weight, net.conv4b.weight)
    np.savez(tmp_path / "partial.npz", **{k: v for k, v in chainer.items() if k != "fc7/W"})
    with pytest.raises(KeyError, match="no fc7/W"):
        convert_tgan2_c3d(tmp_path / "partial.npz", tmp_path / "mean2.npz", tmp_path / "x.safetensors", size=32)


# -- the original FVD code's resize ---------------------------------------------------------------------


def test_tf1_resize_against_hand_computed_values():
    row = torch.tensor([[[[0.0, 10.0]]]])  # (1, 1, 1, 2) -> width 4: source x = j * 2/4 = 0, 0.5, 1, 1.5
    assert resize_bilinear_tf1(row, (1, 4)).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    torch_way = F.interpolate(row, size=(1, 4), mode="bilinear", align_corners=False)  # half-pixel: x = (j + .5) / 2 - .5
    assert torch_way.flatten().tolist() == [0.0, 2.5, 7.5, 10.0]
    img = torch.tensor([[0.0, 1.0], [2.0, 3.0]])  # f(y, x) = 2y + x; 2 -> 3: source 0, 2/3, 4/3 (clamped to 1)
    expected = torch.tensor([[0, 2 / 3, 1], [4 / 3, 2, 7 / 3], [2, 8 / 3, 3]])
    torch.testing.assert_close(resize_bilinear_tf1(img, 3), expected)
    assert resize_bilinear_tf1(torch.arange(4.0).view(1, 4), (1, 2)).tolist() == [[0.0, 2.0]]  # down: picks, no averaging
    v = torch.rand(1, 3, 2, 4, 4) * 2 - 1
    torch.testing.assert_close(resize_frames(v, 8, "tf1"), resize_bilinear_tf1(v, 8))
    torch.testing.assert_close(resize_frames(v, 8, "torch")[:, :, 1],
                               F.interpolate(v[:, :, 1], size=(8, 8), mode="bilinear", align_corners=False))  # fmt: skip
    seen = []
    det = ResizedDetector(lambda x: seen.append(x) or x.mean((2, 3, 4)), mode="tf1", size=8)
    det(v * 3)  # clamped to [-1, 1] first
    torch.testing.assert_close(seen[0], resize_bilinear_tf1((v * 3).clamp(-1, 1), 8))
