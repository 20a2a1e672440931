"""Shared pieces of the datasets: exact wall bounces, per-item seeds, plain-word directions.

Coordinates (every dataset of this package): pixels, ``(x, y)``, origin at the top-left
*corner* of the frame, ``x`` to the right, ``y`` down; pixel ``(row i, column j)`` covers
``[j, j + 1) x [i, i + 1)`` so its center is ``(j + 0.5, i + 0.5)``. A frame of width ``W``
spans ``x`` in ``[0, W]``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["bounce", "item_generator", "direction_word", "join_words", "as_range", "as_hw"]


def bounce(p0: torch.Tensor, v0: torch.Tensor, t, lo: torch.Tensor, hi: torch.Tensor):
    """Exact position and velocity after time ``t`` of a point moving with velocity ``v0``
    from ``p0`` between two walls at ``lo`` and ``hi`` (each axis independently), with
    elastic reflections (any number of them).

    The unfolded coordinate ``u = p0 - lo + v0 t`` is folded into ``[0, L]``, ``L = hi - lo``
    (a triangle wave); the velocity's sign flips once per wall met. The velocity returned is
    the one *just after* ``t`` (at a wall exactly at ``t``, the reflected one).

    All arguments broadcast; returns ``(p, v)``.
    """
    length = hi - lo
    u = p0 - lo + v0 * t
    q = u / length
    k = torch.where(v0 >= 0, torch.floor(q), torch.ceil(q) - 1)  # walls met so far
    m = torch.remainder(u, 2 * length)
    p = lo + length - (m - length).abs()
    v = torch.where(torch.remainder(k, 2) == 1, -v0, v0)
    return p, v


def item_generator(seed: int, index: int, epoch: int = 0) -> torch.Generator:
    """A generator seeded from ``(seed, index, epoch)`` through NumPy's ``SeedSequence``
    (a hash, so nearby seeds and indices give unrelated streams)."""
    entropy = [int(seed) & (2**63 - 1), int(index), int(epoch)]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    g = torch.Generator()
    g.manual_seed(int(state[0]) << 31 ^ int(state[1]))
    return g


_DIRECTIONS = [
    "right",
    "to the upper right",
    "up",
    "to the upper left",
    "left",
    "to the lower left",
    "down",
    "to the lower right",
]


def direction_word(vx: float, vy: float) -> str:
    """Plain words for an image-space velocity (``y`` points down): one of 8 compass
    directions, e.g. ``"up"`` or ``"to the lower left"``; ``"nowhere"`` if it is zero."""
    if vx == 0 and vy == 0:
        return "nowhere"
    angle = math.degrees(math.atan2(-vy, vx)) % 360.0
    return _DIRECTIONS[int(((angle + 22.5) % 360.0) // 45.0)]


def join_words(parts: list[str]) -> str:
    """``["a", "b", "c"] -> "a, b and c"``."""
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def as_range(value, name: str, cast=float) -> tuple:
    """A number or a ``(low, high)`` pair -> ``(low, high)`` with ``low <= high``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
        lo, hi = cast(value[0]), cast(value[1])
    else:
        lo = hi = cast(value)
    if lo > hi:
        raise ValueError(f"{name}: low {lo} is above high {hi}")
    return lo, hi


def as_hw(resolution) -> tuple[int, int]:
    """An int (square) or an ``(H, W)`` pair -> ``(H, W)``."""
    if isinstance(resolution, (tuple, list)):
        h, w = int(resolution[0]), int(resolution[1])
    else:
        h = w = int(resolution)
    if h < 1 or w < 1:
        raise ValueError(f"resolution must be positive, got {resolution!r}")
    return h, w


class ProceduralDataset(torch.utils.data.Dataset):
    """A dataset generated on the fly: item ``i`` is ``generate_batch(1, ...)`` drawn from a
    generator seeded by ``(seed, i)``, so ``dataset[i]`` is a pure function of the two.
    Subclasses set ``length`` and ``seed`` and implement ``generate_batch(n, generator)``."""

    length: int
    seed: int

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        batch = self.generate_batch(1, item_generator(self.seed, index))
        return {k: (v[0] if isinstance(v, (torch.Tensor, list)) else v) for k, v in batch.items()}
