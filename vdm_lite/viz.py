"""Showing videos: notebook players, GIF/MP4 files and static frame grids.

Every function takes videos in the package's layout -- ``(C, T, H, W)`` or
``(B, C, T, H, W)`` floats in ``[-1, 1]``, ``C`` = 1 (gray) or 3 (RGB), torch or NumPy, or
a list of those -- and raises a ``ValueError`` saying what is wrong otherwise (a ``[0, 1]``
or ``[0, 255]`` range, a channels-last layout, ...). ``clip=True`` clamps values outside
``[-1, 1]`` instead (samples of a model may overshoot a little).

* :func:`to_uint8` -- ``(B, T, H, W, C)`` uint8 NumPy frames.
* :func:`save_video` -- ``.gif`` with Pillow; ``.mp4`` / ``.mkv`` / ``.mov`` (H.264),
  ``.avi`` (MPEG-4 part 2) and ``.webm`` (VP9) with PyAV, whose wheel carries FFmpeg's
  encoders (no ffmpeg program needed). A batch is tiled into one video.
* :func:`show_videos` -- inline players in a notebook. mediapy draws the HTML; the bytes come
  from our own encoders, because mediapy's encoder runs an ``ffmpeg`` executable that pip
  does not install (PyAV ships FFmpeg's libraries, not the program). GIF by default: small,
  and it plays on GitHub too.
* :func:`frame_grid` -- a matplotlib figure, rows = videos, columns = frames, optionally
  with ground-truth positions/trajectories and the joint-training ``image_mask``: the
  static picture notebooks commit and CI compares.
* :func:`sample_rows` -- a compact matplotlib figure for comparing models or settings: one
  row per model, its first ``k`` samples side by side, each as a few frames.

Used throughout the notebooks, first in ``notebooks/05_datasets.ipynb``.
"""

from __future__ import annotations

import base64
import html as _html
import io
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

__all__ = ["to_uint8", "save_video", "encode_video", "show_videos", "frame_grid", "sample_rows", "check_video"]

_ATOL = 1e-3  # numerical slack on the [-1, 1] range before it counts as an error


def check_video(video, clip: bool = False, name: str = "video") -> torch.Tensor:
    """Validate one video or a batch and return it as ``(B, C, T, H, W)`` float32 on the CPU,
    clamped to ``[-1, 1]``. Raises ``ValueError`` with a precise message otherwise."""
    if isinstance(video, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(video))
    elif isinstance(video, torch.Tensor):
        x = video.detach()
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(video).__name__}")
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5:
        raise ValueError(
            f"{name} must be (C, T, H, W) or (B, C, T, H, W) with C = 1 or 3, got shape {tuple(x.shape)}"
        )
    if x.shape[1] not in (1, 3):
        hint = ""
        if x.shape[-1] in (1, 3):
            hint = " (it looks channels-last: permute to (B, C, T, H, W))"
        elif x.shape[2] in (1, 3):
            hint = " (it looks like (B, T, C, H, W): use video.transpose(1, 2))"
        raise ValueError(f"{name} must have C = 1 or 3 channels in dim 1, got shape {tuple(x.shape)}{hint}")
    if x.dtype == torch.uint8 or not torch.is_floating_point(x):
        raise ValueError(
            f"{name} must be floating point in [-1, 1], got {x.dtype}; for uint8 frames use x / 127.5 - 1"
        )
    x = x.to(torch.float32).cpu()
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError(f"{name} contains NaN")
    lo, hi = float(x.min()), float(x.max())
    if not clip and (lo < -1 - _ATOL or hi > 1 + _ATOL):
        hint = ""
        if lo >= 0 and hi > 1.5:
            hint = " It looks like [0, 255]: use x / 127.5 - 1."
        raise ValueError(
            f"{name} values must lie in [-1, 1], got min {lo:.4g} and max {hi:.4g}.{hint} "
            "Pass clip=True to clamp (e.g. model samples that overshoot)."
        )
    return x.clamp(-1.0, 1.0)


def _as_list(videos, clip: bool) -> list[np.ndarray]:
    """Videos (a batch, one video, or a list of either) -> list of (T, H, W, C) uint8."""
    items = videos if isinstance(videos, (list, tuple)) else [videos]
    out: list[np.ndarray] = []
    for k, v in enumerate(items):
        out.extend(list(to_uint8(v, clip=clip, name=f"videos[{k}]" if len(items) > 1 else "video")))
    return out


def to_uint8(video, clip: bool = False, name: str = "video") -> np.ndarray:
    """``(C, T, H, W)`` or ``(B, C, T, H, W)`` in ``[-1, 1]`` -> ``(B, T, H, W, C)`` uint8,
    ``round((x + 1) * 127.5)``."""
    x = check_video(video, clip=clip, name=name)
    x = torch.round((x + 1.0) * 127.5).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).contiguous().numpy()


def _tile(frames: list[np.ndarray], ncols: int | None, pad: int = 0) -> np.ndarray:
    """List of (T, H, W, C) uint8 (same T, H, W, C) -> one (T, H', W', C) grid."""
    if len(frames) == 1:
        return frames[0]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"videos tiled into one file need the same shape, got {sorted(shapes)}")
    t, h, w, c = frames[0].shape
    ncols = min(len(frames), ncols or len(frames))
    nrows = -(-len(frames) // ncols)
    grid = np.zeros((t, nrows * (h + pad) - pad, ncols * (w + pad) - pad, c), np.uint8)
    for k, f in enumerate(frames):
        r, q = divmod(k, ncols)
        grid[:, r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = f
    return grid


def _upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return frames
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


_CODECS = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".m4v": "libx264", ".avi": "mpeg4", ".webm": "libvpx-vp9"}


def _write_gif(target, frames: np.ndarray, fps: float) -> None:
    from PIL import Image

    rgb = frames if frames.shape[-1] == 3 else frames.repeat(3, axis=-1)
    images = [Image.fromarray(f) for f in rgb]
    duration = max(10, int(round(1000.0 / fps / 10.0)) * 10)  # GIF delays are in 10 ms units
    images[0].save(target, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)


def _write_av(path: str, frames: np.ndarray, fps: float, suffix: str, crf: int) -> None:
    import av

    codec = _CODECS[suffix]
    if codec not in av.codecs_available:
        codec = "mpeg4"
    rgb = frames if frames.shape[-1] == 3 else frames.repeat(3, axis=-1)
    t, h, w, _ = rgb.shape
    # 4:2:0 chroma needs even sides: repeat the last row/column
    eh, ew = h + h % 2, w + w % 2
    if (eh, ew) != (h, w):
        rgb = np.pad(rgb, ((0, 0), (0, eh - h), (0, ew - w), (0, 0)), mode="edge")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(path, mode="w") as container:
        if codec == "libx264":
            stream = container.add_stream(codec, rate=rate, options={"crf": str(crf), "preset": "medium"})
        elif codec == "libvpx-vp9":
            stream = container.add_stream(codec, rate=rate, options={"crf": str(crf + 12), "b": "0"})
        else:
            stream = container.add_stream(codec, rate=rate)
            stream.bit_rate = 8_000_000
        stream.width, stream.height, stream.pix_fmt = ew, eh, "yuv420p"
        for f in rgb:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def save_video(
    path,
    video,
    fps: float = 8.0,
    scale: int = 1,
    ncols: int | None = None,
    clip: bool = False,
    crf: int = 18,
) -> Path:
    """Write a video file; the format follows the suffix.

    Args:
        path: ``.gif`` (Pillow) or ``.mp4`` / ``.mkv`` / ``.mov`` / ``.avi`` / ``.webm`` (PyAV).
        video: ``(C, T, H, W)`` or ``(B, C, T, H, W)`` in ``[-1, 1]``; a batch (or a list)
            is tiled into a grid of ``ncols`` columns (default: one row).
        fps: frames per second (GIF stores delays in 10 ms units: 8 fps plays at 1/0.12 s).
        scale: integer nearest-neighbour upscaling (tiny videos are hard to see).
        clip: clamp values outside ``[-1, 1]`` instead of raising.
        crf: H.264 quality (lower is better; 18 is visually lossless).

    Every frame is stored, except that a GIF merges *identical consecutive* frames into one
    longer frame (Pillow does this; the timing is unchanged). H.264/VP9/MPEG-4 use 4:2:0
    chroma, so odd sides are padded by one repeated row/column. Returns the path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != ".gif" and suffix not in _CODECS:
        raise ValueError(f"unsupported video suffix {suffix!r} of {path}; use .gif, " + ", ".join(_CODECS))
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames = _upscale(_tile(_as_list(video, clip), ncols), scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        _write_gif(path, frames, fps)
    else:
        _write_av(str(path), frames, fps, suffix, crf)
    return path


def encode_video(video, fps: float = 8.0, fmt: str = "gif", scale: int = 1, clip: bool = False) -> bytes:
    """The bytes of ``save_video`` for one video (or a tiled batch): ``fmt`` = ``"gif"`` or ``"mp4"``."""
    if fmt == "gif":
        frames = _upscale(_tile(_as_list(video, clip), None), scale)
        buf = io.BytesIO()
        _write_gif(buf, frames, fps)
        return buf.getvalue()
    with tempfile.TemporaryDirectory() as d:
        p = save_video(os.path.join(d, f"video.{fmt}"), video, fps=fps, scale=scale, clip=clip)
        return p.read_bytes()


def _html_one(data: bytes, fmt: str, w: int, h: int, title: str | None) -> str:
    try:
        import mediapy
    except ImportError:
        mediapy = None
    if mediapy is not None:
        if fmt == "gif":
            return mediapy.html_from_compressed_image(data, w, h, title=title, fmt="gif", pixelated=True)
        return mediapy.html_from_compressed_video(data, w, h, title=title)
    b64 = base64.b64encode(data).decode()  # pragma: no cover - mediapy is in the notebooks extra
    if fmt == "gif":
        tag = f'<img width="{w}" height="{h}" style="image-rendering:pixelated" src="data:image/gif;base64,{b64}"/>'
    else:
        tag = (
            f'<video controls loop autoplay muted width="{w}" height="{h}">'
            f'<source src="data:video/mp4;base64,{b64}" type="video/mp4"/></video>'
        )
    head = f"<div>{_html.escape(title)}</div>" if title else ""
    return f'<div style="display:flex;flex-direction:column;align-items:center">{head}{tag}</div>'


def show_videos(
    videos,
    titles=None,
    fps: float = 8.0,
    width: int | None = None,
    columns: int | None = None,
    codec: str = "gif",
    clip: bool = False,
    return_html: bool = False,
):
    """Show videos side by side in a notebook (one player per video of the batch/list).

    Args:
        videos: ``(C, T, H, W)``, ``(B, C, T, H, W)`` or a list of those, in ``[-1, 1]``.
        titles: one string per video, shown above it.
        width: displayed width in pixels (default: at least 96, by integer zoom, pixelated).
        columns: videos per row (default: all in one row).
        codec: ``"gif"`` (default; plays everywhere, also on GitHub) or ``"mp4"`` (H.264).
        return_html: return the HTML string instead of displaying it.
    """
    if codec not in ("gif", "mp4"):
        raise ValueError(f"codec must be 'gif' or 'mp4', got {codec!r}")
    clips = _as_list(videos, clip)
    titles = [None] * len(clips) if titles is None else [str(t) for t in titles]
    if len(titles) != len(clips):
        raise ValueError(f"{len(titles)} titles for {len(clips)} videos")
    cells = []
    for frames, title in zip(clips, titles):
        t, h, w, _ = frames.shape
        zoom = max(1, -(-96 // w)) if width is None else width / w
        dw, dh = int(round(w * zoom)), int(round(h * zoom))
        vid = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1
        data = encode_video(vid, fps=fps, fmt=codec, scale=1 if codec == "gif" else max(1, int(zoom)))
        cells.append(_html_one(data, codec, dw, dh, title))
    columns = columns or len(cells)
    rows = []
    for r in range(0, len(cells), columns):
        tds = "".join(f'<td style="padding:1px;">{c}</td>' for c in cells[r : r + columns])
        rows.append(f'<table class="show_videos" style="border-spacing:0px;"><tr>{tds}</tr></table>')
    markup = "".join(rows)
    if return_html:
        return markup
    from IPython.display import HTML, display

    display(HTML(markup))
    return None


def frame_grid(
    videos,
    frames=None,
    titles=None,
    positions=None,
    object_mask=None,
    image_mask=None,
    max_frames: int = 16,
    cell: float = 0.8,
    dpi: int = 80,
    clip: bool = False,
    trail: bool = True,
):
    """A grid of frames: one row per video, one column per frame. Returns the Figure.

    Args:
        videos: ``(C, T, H, W)``, ``(B, C, T, H, W)`` or a list of those, in ``[-1, 1]``.
        frames: frame indices to show (default: all, or ``max_frames`` evenly spaced).
        titles: one label per row.
        positions: optional ground truth ``(B, T, N, 2)`` (or ``(T, N, 2)``), pixels,
            origin top-left (the datasets' convention): a ``+`` at each object's position
            and, with ``trail``, its path so far. Axes use pixel coordinates
            (``extent = (0, W, H, 0)``), so anything in those units can be drawn on
            ``fig.axes`` too.
        object_mask: ``(B, N)`` bool, objects to draw (default all).
        image_mask: ``(B, T)`` bool, the joint-training mask: image frames get a red frame
            and the column title ``"image"``.
        cell: inches per frame; ``dpi`` of the figure (small, for committed notebooks).
    """
    import matplotlib.pyplot as plt

    clips = _as_list(videos, clip)
    n_rows = len(clips)
    t_max = max(c.shape[0] for c in clips)
    if frames is None:
        if t_max <= max_frames:
            frames = list(range(t_max))
        else:
            frames = np.linspace(0, t_max - 1, max_frames).round().astype(int).tolist()
    frames = [int(f) for f in frames]
    pos = None
    if positions is not None:
        pos = torch.as_tensor(positions).detach().cpu().float()
        pos = pos[None] if pos.ndim == 3 else pos
        if pos.ndim != 4 or pos.shape[0] != n_rows or pos.shape[-1] != 2:
            raise ValueError(f"positions must be (B, T, N, 2) with B = {n_rows}, got {tuple(pos.shape)}")
        if object_mask is None:
            om = torch.ones(pos.shape[0], pos.shape[2], dtype=torch.bool)
        else:
            om = torch.as_tensor(object_mask).cpu()
        om = om[None] if om.ndim == 1 else om
    im = None
    if image_mask is not None:
        im = torch.as_tensor(image_mask).detach().cpu().bool()
        im = im[None] if im.ndim == 1 else im
    n_cols = len(frames)
    h0, w0 = clips[0].shape[1:3]
    aspect = h0 / w0
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(cell * n_cols + (0.4 if titles else 0), cell * aspect * n_rows + 0.25),
        dpi=dpi, squeeze=False,
    )  # fmt: skip
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r, clip_frames in enumerate(clips):
        t_len, h, w, c = clip_frames.shape
        for q, f in enumerate(frames):
            ax = axes[r, q]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if f >= t_len:
                continue
            img = clip_frames[f]
            if c == 1:
                ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=255, extent=(0, w, h, 0), interpolation="nearest")
            else:
                ax.imshow(img, extent=(0, w, h, 0), interpolation="nearest")
            is_image = im is not None and r < im.shape[0] and f < im.shape[1] and bool(im[r, f])
            if is_image:
                for s in ax.spines.values():
                    s.set_visible(True)
                    s.set_color("red")
                    s.set_linewidth(2)
            if r == 0:
                ax.set_title("image" if is_image else f"t={f}", fontsize=7, pad=2)
            if q == 0 and titles is not None:
                ax.set_ylabel(str(titles[r]), fontsize=7, rotation=0, ha="right", va="center")
            if pos is not None and f < pos.shape[1] and not is_image:
                for k in range(pos.shape[2]):
                    if not bool(om[r, k]):
                        continue
                    col = colors[k % len(colors)]
                    if trail and f > 0:
                        ax.plot(pos[r, : f + 1, k, 0], pos[r, : f + 1, k, 1], "-", color=col, lw=0.8, alpha=0.9)
                    ax.plot(pos[r, f, k, 0], pos[r, f, k, 1], "+", color="white", ms=5, mew=1.2)
                ax.set_xlim(0, w)
                ax.set_ylim(h, 0)
    top = 1 - 0.25 / fig.get_figheight()
    fig.subplots_adjust(left=0.08 if titles else 0.01, right=0.99, top=top, bottom=0.01, wspace=0.05, hspace=0.05)
    return fig


def sample_rows(videos: dict, k: int = 6, frames=None, cell: float = 0.45, dpi: int = 90, gap: int | None = None, clip: bool = False):
    """One row per entry of ``videos`` (``name -> (B, C, T, H, W)`` in ``[-1, 1]``): its first
    ``k`` videos side by side, each shown as the frames ``frames`` (default first, middle and
    last) with a 1-pixel gray line between frames, and white gaps of ``gap`` pixels (default
    ``W // 3``) between videos. Returns the Figure; row ``r``'s strip is
    ``fig.axes[r].images[0]`` (``(H, width, C)`` uint8, rows of fewer videos padded with white
    on the right).
    """
    import matplotlib.pyplot as plt

    if not videos:
        raise ValueError("sample_rows needs at least one named batch of videos")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    batches = {name: to_uint8(v, clip=clip, name=f"videos[{name!r}]")[:k] for name, v in videos.items()}
    shapes = {b.shape[2:] for b in batches.values()}
    if len(shapes) != 1:
        raise ValueError(f"all videos need the same (H, W, C), got {sorted(shapes)}")
    T = min(b.shape[1] for b in batches.values())
    frames = [0, T // 2, T - 1] if frames is None else [int(f) for f in frames]
    if not frames or min(frames) < 0 or max(frames) >= T:
        raise ValueError(f"frames must lie in [0, {T}), got {frames}")
    H, W, C = next(iter(shapes))
    gap = max(1, W // 3) if gap is None else int(gap)
    block = len(frames) * (W + 1) - 1  # the frames of one video, 1-pixel gray lines between them
    width = max(b.shape[0] for b in batches.values()) * (block + gap) - gap
    strips = []
    for b in batches.values():
        strip = np.full((H, width, C), 255, np.uint8)
        for i, clip_frames in enumerate(b):
            x0 = i * (block + gap)
            strip[:, x0 : x0 + block] = 128
            for j, f in enumerate(frames):
                strip[:, x0 + j * (W + 1) : x0 + j * (W + 1) + W] = clip_frames[f]
        strips.append(strip)
    fig, axes = plt.subplots(len(strips), 1, figsize=(cell * width / W + 0.6, cell * H / W * len(strips) * 1.1 + 0.3),
                             dpi=dpi, squeeze=False)  # fmt: skip
    for ax, name, strip in zip(axes[:, 0], batches, strips):
        ax.imshow(strip[..., 0] if C == 1 else strip, cmap="gray" if C == 1 else None, vmin=0, vmax=255,
                  interpolation="nearest")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
        ax.set_ylabel(str(name), fontsize=7, rotation=0, ha="right", va="center")
    axes[0, 0].set_title(f"each sample: frames {', '.join(map(str, frames))}", fontsize=7, pad=2)
    fig.tight_layout(pad=0.2)
    return fig
