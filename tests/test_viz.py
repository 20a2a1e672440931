"""viz: conversion, GIF/MP4 writers read back, clear errors, frame grids, notebook HTML."""

import matplotlib
import numpy as np
import pytest
import torch

from vdm_lite import viz
from vdm_lite.datasets import BouncingShapes, read_video

matplotlib.use("Agg")


def _moving(t=6, h=16, w=24, b=None):
    x = -torch.ones(3, t, h, w)
    for i in range(t):
        x[0, i, 2:8, 2 * i : 2 * i + 6] = 1.0
        x[2, i] = -1 + 2 * i / t
    return x if b is None else x[None].repeat(b, 1, 1, 1, 1)


def test_to_uint8_layout_and_values():
    x = _moving()
    u = viz.to_uint8(x)
    assert u.shape == (1, 6, 16, 24, 3) and u.dtype == np.uint8
    assert u[0, 0, 0, 0, 0] == 0 and u[0, 0, 3, 3, 0] == 255
    assert viz.to_uint8(_moving(b=2)).shape == (2, 6, 16, 24, 3)
    assert viz.to_uint8(torch.zeros(1, 2, 4, 4)).shape == (1, 2, 4, 4, 1)
    assert viz.to_uint8(np.zeros((2, 1, 2, 4, 4), np.float32))[0, 0, 0, 0, 0] == 128


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.rand(3, 4, 8, 8) * 255, r"\[-1, 1\].*\[0, 255\]"),
        (torch.full((3, 4, 8, 8), -1.5), r"\[-1, 1\].*clip=True"),
        (torch.zeros(4, 8, 8), r"\(C, T, H, W\) or \(B, C, T, H, W\)"),
        (torch.zeros(2, 4, 8, 8, 3), "channels-last"),
        (torch.zeros(2, 4, 3, 8, 8), r"\(B, T, C, H, W\)"),
        (torch.zeros(3, 4, 8, 8, dtype=torch.uint8), "floating point"),
        (torch.full((3, 2, 4, 4), float("nan")), "NaN"),
    ],
    ids=["0-255", "below-1", "3d", "channels-last", "BTCHW", "uint8", "nan"],
)
def test_wrong_range_or_shape_raises_clearly(bad, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        viz.to_uint8(bad)
    with pytest.raises(ValueError, match=match):
        viz.save_video(tmp_path / "x.gif", bad)


def test_clip_true_clamps():
    u = viz.to_uint8(torch.full((3, 2, 4, 4), 1.2), clip=True)
    assert (u == 255).all()


@pytest.mark.parametrize("suffix", [".gif", ".mp4", ".avi", ".webm"])
def test_save_video_reads_back_with_frame_count_and_size(tmp_path, suffix):
    path = viz.save_video(tmp_path / f"clip{suffix}", _moving(t=7, h=16, w=24), fps=10)
    frames, info = read_video(path)
    assert frames.shape == (7, 16, 24, 3)
    # content survives: the red square moved two pixels per frame
    red = frames[..., 0].astype(float)
    cols = (red[:, 2:8] > 128).mean(axis=1)  # (T, W)
    first = [int(np.argmax(c)) for c in cols]
    assert first == [2 * i for i in range(7)], first


def test_save_video_batch_tiles_scale_and_odd_sizes(tmp_path):
    path = viz.save_video(tmp_path / "grid.mp4", _moving(t=4, h=9, w=11, b=3), scale=2, fps=5)
    frames, info = read_video(path)
    assert frames.shape == (4, 18, 66, 3)  # 2 x (9, 33): already even
    path = viz.save_video(tmp_path / "odd.mp4", _moving(t=3, h=9, w=11))
    assert read_video(path)[0].shape == (3, 10, 12, 3)  # padded to even sides for 4:2:0
    gif = viz.save_video(tmp_path / "grid.gif", _moving(t=4, h=9, w=11, b=4), ncols=2)
    assert read_video(gif)[0].shape == (4, 18, 22, 3)
    with pytest.raises(ValueError, match="unsupported video suffix"):
        viz.save_video(tmp_path / "x.png", _moving())


def test_frame_grid_figure():
    ds = BouncingShapes(frames=5, resolution=16)
    batch = ds.generate_batch(2, 0)
    fig = viz.frame_grid(batch["video"], positions=batch["positions"], object_mask=batch["object_mask"], titles=["a", "b"])
    assert len(fig.axes) == 2 * 5
    assert fig.axes[0].get_title() == "t=0"
    mask = torch.tensor([[False] * 4 + [True]] * 2)
    fig2 = viz.frame_grid(batch["video"], image_mask=mask, frames=[0, 4])
    assert len(fig2.axes) == 4 and fig2.axes[1].get_title() == "image"
    fig3 = viz.frame_grid(torch.zeros(1, 40, 8, 8), max_frames=8)  # one gray video, 8 of 40 frames
    assert len(fig3.axes) == 8
    import matplotlib.pyplot as plt

    plt.close("all")


def test_show_videos_html():
    html = viz.show_videos(_moving(b=2), titles=["one", "two"], return_html=True)
    assert html.count("data:image/gif;base64") == 2 and "one" in html
    html = viz.show_videos([_moving()], codec="mp4", return_html=True)
    assert "video/mp4" in html
    with pytest.raises(ValueError, match="titles"):
        viz.show_videos(_moving(b=2), titles=["one"], return_html=True)


def test_sample_rows_strips_hold_the_chosen_frames():
    import matplotlib.pyplot as plt

    # video b of row r has value (r, b, t) coded into its pixels, so every strip pixel says where it came from
    T, H, W = 5, 4, 6
    code = lambda r, b, t: -1 + 2 * (r * 100 + b * 10 + t) / 255.0  # noqa: E731
    rows = {f"row{r}": torch.stack([torch.stack([torch.full((3, H, W), code(r, b, t)) for t in range(T)], 1)
                                    for b in range(n)]) for r, n in ((0, 3), (1, 2))}  # fmt: skip
    fig = viz.sample_rows(rows, k=2, frames=[4, 0], gap=1)
    strips = [ax.images[0].get_array() for ax in fig.axes]
    block = 2 * W + 1  # two frames and the gray line between them
    assert len(strips) == 2 and all(s.shape == (H, 2 * (block + 1) - 1, 3) for s in strips)
    for r, s in enumerate(strips):
        for b in range(2):  # k=2: row0's third video is left out
            x0 = b * (block + 1)
            assert (s[:, x0 : x0 + W] == r * 100 + b * 10 + 4).all() and (s[:, x0 + W + 1 : x0 + block] == r * 100 + b * 10).all()
            assert (s[:, x0 + W] == 128).all()  # the line between frames
        assert (s[:, block] == 255).all()  # the white gap between videos
    assert [ax.get_ylabel() for ax in fig.axes] == ["row0", "row1"]
    plt.close(fig)
    fig = viz.sample_rows({"one": rows["row0"], "short": rows["row1"]}, k=3)  # default frames 0, 2, 4; gap W // 3
    a, b = (ax.images[0].get_array() for ax in fig.axes)
    block = 3 * W + 2
    assert a.shape == b.shape == (H, 3 * (block + 2) - 2, 3) and (b[:, 2 * (block + 2) :] == 255).all()  # padded
    assert (a[:, 2 * (block + 2) + 2 * (W + 1)] == 0 * 100 + 2 * 10 + 4).all()  # third video's last frame
    plt.close(fig)
    with pytest.raises(ValueError, match="frames must lie in"):
        viz.sample_rows(rows, frames=[5])
    with pytest.raises(ValueError, match="same \\(H, W, C\\)"):
        viz.sample_rows({"a": torch.zeros(1, 3, 2, 4, 4), "b": torch.zeros(1, 3, 2, 8, 8)})
    with pytest.raises(ValueError, match="must lie in \\[-1, 1\\].*looks like \\[0, 255\\]"):
        viz.sample_rows({"a": torch.full((1, 3, 2, 4, 4), 200.0)})
