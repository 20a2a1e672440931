"""World-grounded metrics (vdm_lite.metrics.world): objects read from the pixels of real
BouncingShapes clips match their ground truth, real clips score perfectly, and each kind of
corruption lowers the metric meant to catch it."""

from __future__ import annotations

import functools
import time
from collections import deque

import pytest
import torch

from vdm_lite.datasets import BouncingShapes
from vdm_lite.metrics.world import (
    _components,
    boundary_continuity,
    caption_match,
    class_match,
    detect_objects,
    extension_boundaries,
    parse_caption,
    track_objects,
    world_scores,
)


pytestmark = pytest.mark.usefixtures("one_thread")


@functools.lru_cache(maxsize=None)
def clean_clips(res: int, seed: int, n: int = 48, num_objects=(1, 3), frames: int = 16, size=(0.08, 0.15)) -> dict:
    """Real clips whose objects never touch (every pair of centroids farther apart than the sum of
    their circumscribed radii plus 2 px in every frame), so every object is its own component."""
    ds = BouncingShapes(frames=frames, resolution=res, num_objects=num_objects, size=size)
    b = ds.generate_batch(n, seed)
    pos, r, m = b["positions"], b["radii"], b["object_mask"]
    i, j = torch.triu_indices(pos.shape[2], pos.shape[2], offset=1)
    dist = (pos[:, :, i] - pos[:, :, j]).norm(dim=-1)  # (n, T, pairs)
    apart = (dist > (r[:, i] + r[:, j] + 2)[:, None]) | ~(m[:, i] & m[:, j])[:, None]
    keep = apart.flatten(1).all(1)
    out = {k: (v[keep] if isinstance(v, torch.Tensor) else [c for c, k2 in zip(v, keep.tolist()) if k2]) for k, v in b.items()}
    out["dataset"] = ds
    assert keep.sum() >= 10, "too few clean clips: change the seed"
    return out


def recolor(video: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """Repaint every object of ``video`` (B, 3, T', H, W) with the color ``rgb`` (B, 3)
    (coverage = brightest channel; exact for palette colors on black)."""
    bright = ((video + 1) / 2).amax(1, keepdim=True)
    return bright * rgb[:, :, None, None, None] * 2 - 1


# ----------------------------------------------------------------------------- components
def _flood_fill_reference(mask: torch.Tensor) -> list[set]:
    h, w = mask.shape
    seen, comps = set(), []
    for y in range(h):
        for x in range(w):
            if not mask[y, x] or (y, x) in seen:
                continue
            comp, todo = set(), deque([(y, x)])
            seen.add((y, x))
            while todo:
                cy, cx = todo.popleft()
                comp.add((cy, cx))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = cy + dy, cx + dx
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and (ny, nx) not in seen:
                            seen.add((ny, nx))
                            todo.append((ny, nx))
            comps.append(frozenset(comp))
    return comps


def test_connected_components_match_a_flood_fill():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(6, 11, 13, generator=g) > torch.tensor([0.3, 0.45, 0.55, 0.6, 0.7, 0.9])[:, None, None]
    lab = _components(masks)
    assert ((lab > 0) == masks).all()
    ids_per_frame = []
    for f in range(len(masks)):
        ours = {}
        for y, x in masks[f].nonzero().tolist():
            ours.setdefault(int(lab[f, y, x]), set()).add((y, x))
        assert {frozenset(c) for c in ours.values()} == set(_flood_fill_reference(masks[f]))
        ids_per_frame.append(set(ours))
    for a in range(len(masks)):  # labels are never shared between frames
        for b in range(a + 1, len(masks)):
            assert not ids_per_frame[a] & ids_per_frame[b]


# ----------------------------------------------------------------------------- detection
@pytest.mark.parametrize("res, seed, num_objects", [(32, 0, (1, 3)), (32, 1, (1, 3)), (64, 2, (1, 3)), (16, 3, 1)])
def test_detections_match_the_ground_truth(res, seed, num_objects):
    b = clean_clips(res, seed, num_objects=num_objects)
    det = detect_objects(b["video"])
    assert (det["count"] == b["num_objects"][:, None]).all()
    pos = b["positions"].double()  # (B, T, N, 2) pixels
    d = torch.cdist(pos, torch.nan_to_num(det["centroid"].double(), 1e6))  # (B, T, N, K)
    err, k = d.min(-1)
    real = b["object_mask"][:, None].expand_as(err)
    assert err[real].max() < 0.5 and err[real].mean() < 0.1, (err[real].max(), err[real].mean())
    color = det["color"].gather(2, k)[real]
    shape = det["shape"].gather(2, k)[real]
    assert (color == b["colors"][:, None].expand_as(err)[real]).float().mean() >= 0.98
    assert (shape == b["shapes"][:, None].expand_as(err)[real]).float().mean() >= 0.98
    # the area is the object's (coverage sum), the bounding box contains the centroid
    assert (det["area"][det["valid"]] > 2).all()
    c, box = det["centroid"][det["valid"]], det["bbox"][det["valid"]]
    assert ((box[:, :2] < c) & (c < box[:, 2:])).all()


def test_shapes_and_colors_on_single_objects_of_every_class():
    ds = BouncingShapes(frames=4, resolution=32, num_objects=1)
    b = ds.generate_batch(90, 7)
    det = detect_objects(b["video"])
    assert set(b["label"].tolist()) == set(range(18))  # every class appears
    assert (det["color"][..., 0] == b["colors"][:, :1]).all()
    assert (det["shape"][..., 0] == b["shapes"][:, :1]).all()
    assert det["color_error"][..., 0].max() < 0.05


def test_tracking_bridges_a_short_gap():
    b = clean_clips(32, 4, num_objects=2)
    v = b["video"].clone()
    v[:, :, 5:7] = -1  # every object gone in frames 5 and 6 (max_gap = 2 bridges it)
    trk = track_objects(detect_objects(v))
    assert (trk["num_tracks"] == b["num_objects"]).all()
    present = trk["present"][:, : int(b["num_objects"].min())]
    assert not present[:, :, 5:7].any() and present[:, :, :5].all() and present[:, :, 7:].all()
    # identity is kept: each track's color is constant, and a gap longer than max_gap splits it
    cols = torch.where(trk["present"], trk["color"], -1)
    assert all(len(set(row[row >= 0].tolist())) <= 1 for row in cols.flatten(0, 1))
    assert (track_objects(detect_objects(v), max_gap=1)["num_tracks"] == 2 * b["num_objects"]).all()


# ----------------------------------------------------------------------------- world scores
@pytest.mark.parametrize("res, seed", [(32, 0), (32, 1), (64, 2)])
def test_real_clips_keep_every_rule(res, seed):
    b = clean_clips(res, seed)
    sc = world_scores(b["video"], labels=b["label"], captions=b["caption"])
    pv = sc["per_video"]
    assert sc["count_stability"] == 1 and (pv["count_mode"] == b["num_objects"]).all()
    assert sc["count_std"] == 0
    assert sc["color_consistency"] == 1 and sc["shape_consistency"] >= 0.99
    assert (pv["num_tracks"] == b["num_objects"]).all()
    assert sc["accel"] < 0.1 and pv["accel"].max() < 0.2, (sc["accel"], pv["accel"].max())
    assert sc["accel_samples"] > 5  # most of the track is away from the walls
    assert sc["class_match"] == 1 and sc["caption_recall"] == 1 and sc["caption_exact"] == 1
    assert sc["caption_direction"] >= 0.9


def test_acceleration_is_zero_off_the_walls_and_bounces_are_excused():
    # one object, exact closed-form physics: the second difference is 0 except at bounces
    ds = BouncingShapes(frames=24, resolution=32, num_objects=1, speed=0.08)
    b = ds.generate_batch(32, 5)
    trk = track_objects(detect_objects(b["video"]))
    p = trk["centroid"][:, 0].double()
    acc = (p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]).abs()
    assert acc.max() > 1  # there are bounces in these clips ...
    sc = world_scores(b["video"], tracks=trk, detections=detect_objects(b["video"]))
    assert sc["accel"] < 0.1  # ... and they are not counted
    # the same clips with frames shuffled in time: large residual in every video
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    shuffled = world_scores(b["video"][:, :, perm])
    assert shuffled["accel"] > 1.0 and shuffled["accel"] > 20 * sc["accel"], (shuffled["accel"], sc["accel"])
    assert shuffled["count_stability"] == 1 and shuffled["color_consistency"] == 1  # not what they catch


@pytest.mark.parametrize("res, seed", [(32, 0), (64, 2)])
def test_shuffled_frames_give_a_large_acceleration(res, seed):
    b = clean_clips(res, seed)
    real = world_scores(b["video"])
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(seed))
    shuffled = world_scores(b["video"][:, :, perm])
    assert shuffled["accel"] > 1.0 and shuffled["accel"] > 20 * real["accel"], (shuffled["accel"], real["accel"])


def test_a_color_swapped_mid_video_lowers_color_consistency():
    b = clean_clips(32, 1, num_objects=1)
    ds = b["dataset"]
    v = b["video"].clone()
    other = ds.palette[(b["colors"][:, 0] + 1) % len(ds.palette)]
    v[:, :, 10:] = recolor(v[:, :, 10:], other)
    sc = world_scores(v)
    assert sc["color_consistency"] == pytest.approx(10 / 16)  # 6 of 16 frames off the majority
    assert sc["shape_consistency"] == 1 and sc["count_stability"] == 1 and sc["accel"] < 0.1
    assert world_scores(b["video"])["color_consistency"] == 1


def test_an_object_removed_in_some_frames_lowers_count_stability():
    b = clean_clips(32, 4, num_objects=2)
    ds, v = b["dataset"], b["video"].clone()
    # erase object 1 in frames 4..7: repaint the frames with object 0 only
    solo = {k: b[k][:, :1] for k in ("shapes", "colors", "radii", "object_mask")}
    from vdm_lite.datasets.shapes import render_shapes

    kinds = ds._kinds[solo["shapes"]]
    frame, _ = render_shapes(b["positions"][:, 4:8, :1], kinds, solo["radii"], ds.palette[solo["colors"]], solo["object_mask"], 32, 32)
    v[:, :, 4:8] = frame
    sc = world_scores(v)
    assert sc["count_stability"] == pytest.approx(12 / 16) and sc["count_std"] > 0.4
    assert world_scores(b["video"])["count_stability"] == 1
    assert sc["color_consistency"] == 1 and sc["accel"] < 0.1  # what remains is still consistent


# ----------------------------------------------------------------------------- block boundaries
def test_extension_boundaries_follow_extend_video():
    # extend_video(video of 8 frames, total 32, block 16, context 8): new blocks start at 8, 16, 24
    assert extension_boundaries(8, 32, 16, 8) == [8, 16, 24]
    assert extension_boundaries(4, 20, 8, 2) == [4, 10, 16]
    with pytest.raises(ValueError):
        extension_boundaries(4, 20, 8, 8)


def test_boundary_continuity_flags_a_joint_and_not_a_continuous_clip():
    long = clean_clips(32, 6, frames=32)
    seamless = boundary_continuity(long["video"], [8, 16, 24])
    assert seamless["position_ratio"] < 1.5 and seamless["color_ratio"] < 2 and seamless["shape_ratio"] < 2, seamless
    assert seamless["per_video"]["position_ratio"].max() < 2.0
    assert seamless["count_jump"] == 0

    a, b = clean_clips(32, 0), clean_clips(32, 1)
    n = min(len(a["video"]), len(b["video"]))
    joined = torch.cat([a["video"][:n], b["video"][:n]], 2)
    bc = boundary_continuity(joined, [16])
    assert bc["position_ratio"] > 3 and bc["color_ratio"] > 5, bc
    assert (bc["per_video"]["position_ratio"] > 2).float().mean() > 0.6
    # the joint stands out against the other frame pairs of the same videos
    others = boundary_continuity(joined, [8])
    assert others["position_ratio"] < 1.5 and bc["position_ratio"] > 2 * others["position_ratio"]
    with pytest.raises(ValueError):
        boundary_continuity(joined, [0])
    # through world_scores
    sc = world_scores(joined, boundaries=[16])
    assert sc["position_ratio"] == pytest.approx(bc["position_ratio"])


# ----------------------------------------------------------------------------- conditions
def test_class_match_reads_the_label():
    b = clean_clips(32, 0)
    assert class_match(b["video"], b["label"])["match"] == 1
    # another shape of the same color: colors are distinct within a clip, so never present
    wrong_shape = (b["label"] + 6) % 18
    cm = class_match(b["video"], wrong_shape)
    assert cm["match"] == 0 and cm["color"] == 1 and cm["shape"] < 1
    one = clean_clips(32, 1, num_objects=1)
    assert class_match(one["video"], (one["label"] + 1) % 18)["match"] == 0


def test_class_match_with_a_dataset_using_a_subset():
    ds = BouncingShapes(frames=4, resolution=32, num_objects=1, shapes=("triangle", "square"), colors=("cyan", "red"))
    b = ds.generate_batch(24, 3)
    assert class_match(b["video"], b["label"], dataset=ds)["match"] == 1
    det = detect_objects(b["video"], dataset=ds)
    assert (det["shape"][..., 0] == b["shapes"][:, :1]).all() and (det["color"][..., 0] == b["colors"][:, :1]).all()


def test_parse_caption():
    got = parse_caption("a red circle moving up, a blue square moving to the lower left and a cyan triangle moving right")
    assert got == [(0, 0, "up"), (1, 2, "to the lower left"), (2, 5, "right")]
    assert parse_caption("a green triangle") == [(2, 1, None)]


def test_caption_match():
    b = clean_clips(32, 1)
    assert caption_match(b["video"], b["caption"])["recall"] == 1
    rolled = b["caption"][1:] + b["caption"][:1]  # another clip's caption
    assert caption_match(b["video"], rolled)["recall"] < 0.5


# ----------------------------------------------------------------------------- edge cases, speed
def test_empty_and_short_videos():
    sc = world_scores(-torch.ones(2, 3, 6, 16, 16), boundaries=[3], labels=[0, 1])
    assert sc["count_mode"] == 0 and sc["num_tracks"] == 0 and sc["class_match"] == 0
    assert sc["color_consistency"] != sc["color_consistency"]  # NaN: nothing to score
    one = clean_clips(32, 0)["video"][:4, :, :1]
    assert world_scores(one)["accel"] != world_scores(one)["accel"]  # NaN: one frame has no acceleration
    with pytest.raises(ValueError):
        detect_objects(torch.zeros(2, 1, 4, 8, 8))


def test_fast_enough():
    ds = BouncingShapes(frames=16, resolution=32, num_objects=(1, 3))
    v = ds.generate_batch(64, 0)["video"]
    t = time.perf_counter()
    world_scores(v, boundaries=[8])
    assert time.perf_counter() - t < 8.0  # ~0.4 s on one core; generous for a shared machine
