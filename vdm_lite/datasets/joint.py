"""Joint image-video batches (paper Section 3 and 4.3.1, Table 4).

Joint training appends ``K`` random independent frames, taken from *other* videos, to the
end of every clip. The U-Net's temporal attention is masked so that no information mixes
between the video frames and each appended image (every image frame attends only to
itself): it reads that from ``image_mask`` ``(B, T + K)`` bool, True exactly on the
appended frames. More independent examples per batch at the same memory (the paper: 0, 4,
8 frames took FVD 202 -> 68 -> 58).

Two doors:

* :func:`append_image_frames` on a batch that is already a dict of tensors (what
  ``BouncingShapes.generate_batch`` returns, or ``default_collate`` of items).
* :class:`JointCollate`, a ``collate_fn`` for ``torch.utils.data.DataLoader``.

Where the frames come from: from the other clips of the same batch (frame ``k`` of clip
``b`` is a uniformly random frame of a uniformly random clip ``b' != b``), or, when a
``dataset`` is given, from random items of that dataset (one item per appended frame;
slower, each costs a ``dataset[i]``). With a batch of one clip and no dataset there is no
other video: the frames then come from the clip itself and a warning says so (they are
still real images, and the mask still keeps them independent in temporal attention, but
they are not independent of the clip's content) -- pass ``dataset=`` for true B=1 joint
batches.

Only ``video`` grows to ``T + K`` frames; per-frame ground truth (``positions``,
``velocities``) and per-clip fields (``label``, ``caption``) keep describing the clip's own
``T`` frames. ``image_source`` ``(B, K, 2)`` long records where each appended frame came
from: ``(clip index in the batch, frame)``, or ``(dataset index, frame)`` with ``dataset``.
"""

from __future__ import annotations

import warnings

import torch

from ._common import item_generator

__all__ = ["append_image_frames", "JointCollate"]


def append_image_frames(
    batch: dict,
    num_images: int,
    generator: torch.Generator | int | None = None,
    dataset=None,
    key: str = "video",
) -> dict:
    """Append ``num_images`` independent frames from other videos to every clip.

    Args:
        batch: a dict with ``batch[key]`` of shape ``(B, C, T, H, W)``; an existing
            ``image_mask`` ``(B, T)`` is extended, else the first ``T`` frames are video.
        num_images: ``K``, frames appended per clip (0 returns the batch with its mask).
        generator: a ``torch.Generator`` or an int seed (CPU); the result is a pure
            function of the batch and the generator state.
        dataset: optional indexable dataset whose items have ``key`` ``(C, T', H, W)``:
            take the frames from random items of it instead of the batch.
    Returns:
        A new dict: the batch's fields, ``video`` ``(B, C, T + K, H, W)``, ``image_mask``
        ``(B, T + K)`` bool (True on the appended ``K``), ``image_source`` ``(B, K, 2)`` long.
    """
    if isinstance(generator, int):
        generator = torch.Generator().manual_seed(generator)
    video = batch[key]
    if video.ndim != 5:
        raise ValueError(f"batch[{key!r}] must be (B, C, T, H, W), got shape {tuple(video.shape)}")
    b, c, t, h, w = video.shape
    k = int(num_images)
    if k < 0:
        raise ValueError("num_images must be >= 0")
    mask = batch.get("image_mask")
    if mask is None:
        mask = torch.zeros(b, t, dtype=torch.bool, device=video.device)
    elif tuple(mask.shape) != (b, t):
        raise ValueError(f"image_mask must be (B, T) = {(b, t)}, got {tuple(mask.shape)}")

    if dataset is None:
        if b >= 2:
            offset = torch.randint(1, b, (b, k), generator=generator)  # any clip but b itself
            src_b = (torch.arange(b)[:, None] + offset) % b
        else:
            if k > 0:
                warnings.warn(
                    "append_image_frames: a batch of one clip has no other video; the image frames come from "
                    "the clip itself (pass dataset= to draw them from other videos)",
                    stacklevel=2,
                )
            src_b = torch.zeros(b, k, dtype=torch.long)
        src_t = torch.randint(0, t, (b, k), generator=generator)
        frames = video[src_b.to(video.device), :, src_t.to(video.device)]  # (B, K, C, H, W)
        source = torch.stack([src_b, src_t], dim=-1)
    else:
        idx = torch.randint(0, len(dataset), (b, k), generator=generator)
        u = torch.rand(b, k, generator=generator, dtype=torch.float64)
        frames = torch.empty(b, k, c, h, w, dtype=video.dtype, device=video.device)
        src_t = torch.empty(b, k, dtype=torch.long)
        for i in range(b):
            for j in range(k):
                other = dataset[int(idx[i, j])][key]
                if other.shape[0] != c or tuple(other.shape[-2:]) != (h, w):
                    raise ValueError(
                        f"dataset items have {key} of shape {tuple(other.shape)}, the batch's clips {(c, t, h, w)}: "
                        "channels and resolution must match"
                    )
                src_t[i, j] = int(u[i, j] * other.shape[1])
                frames[i, j] = other[:, src_t[i, j]].to(video)
        source = torch.stack([idx, src_t], dim=-1)

    out = dict(batch)
    out[key] = torch.cat([video, frames.permute(0, 2, 1, 3, 4)], dim=2)
    out["image_mask"] = torch.cat([mask, torch.ones(b, k, dtype=torch.bool, device=mask.device)], dim=1)
    out["image_source"] = source
    return out


class JointCollate:
    """``collate_fn`` for a ``DataLoader``: ``default_collate`` the items, then
    :func:`append_image_frames` with ``num_images`` frames per clip.

    Deterministic: the ``n``-th batch collated by a process uses a generator seeded from
    ``(seed, worker id, n)``, so every DataLoader worker draws its own stream and a run
    repeats exactly (given the same batches). ``dataset``: as in :func:`append_image_frames`.

    >>> loader = DataLoader(BouncingShapes(), batch_size=16, collate_fn=JointCollate(8, seed=0))
    """

    def __init__(self, num_images: int = 8, seed: int = 0, dataset=None, key: str = "video"):
        self.num_images, self.seed, self.dataset, self.key = int(num_images), int(seed), dataset, key
        self.calls = 0

    def __call__(self, items: list[dict]) -> dict:
        batch = torch.utils.data.default_collate(items)
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id + 1
        g = item_generator(self.seed, self.calls, worker)
        self.calls += 1
        return append_image_frames(batch, self.num_images, g, dataset=self.dataset, key=self.key)

    def __repr__(self) -> str:
        return f"JointCollate(num_images={self.num_images}, seed={self.seed}, dataset={self.dataset!r})"
