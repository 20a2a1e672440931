"""Factorized space-time attention of Section 3 (Figure 1).

Inside the U-Net, activations keep the frames folded into the batch: ``(B*T, C, H, W)``
(see :mod:`vdm_lite.nn.unet`). Two attention blocks act on them:

* :class:`SpatialAttention` attends over the ``H*W`` positions of each frame; frames act as
  batch.
* :class:`TemporalAttention` attends over the ``T`` frames at each position; spatial
  positions act as batch. It adds a learned **relative position bias** (Shaw et al. 2018):
  one scalar per head and per clipped frame distance ``j - i`` in ``[-K, K]``, so the
  network knows frame order but not absolute time and runs on any ``T`` (``T = 1``
  included).

Image frames of a joint image-video batch (Section 3, "joint training") are marked by
``image_mask`` ``(B, T)``: in temporal attention such a frame attends only to itself and no
video frame attends to it (:func:`temporal_attention_mask`). Frame positions count video
frames only (:func:`frame_positions`), so appended images do not shift the relative
positions of the video frames.

All attention goes through :func:`torch.nn.functional.scaled_dot_product_attention`. The
axis folds are plain ``view``/``permute``/``reshape``; the comment beside each gives it in
einops notation (``"(b t) c h w -> b (h w) t c"``: frames out of the batch, positions into it).
Notebook ``04_unet3d`` plots the mask and the bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GroupNormPerFrame",
    "frame_positions",
    "temporal_attention_mask",
    "RelativePositionBias",
    "SpatialAttention",
    "TemporalAttention",
    "SpaceTimeAttention",
]


class GroupNormPerFrame(nn.GroupNorm):
    """GroupNorm on frames folded into the batch, ``(B*T, C, H, W)``: statistics are taken per
    frame, never across frames, so an image frame of a joint batch stays independent of the
    others. A 5-D video is refused (``nn.GroupNorm`` would pool over ``T``).

    ``GroupNormPerFrame(channels, groups)`` (note the order: channels first) is
    ``nn.GroupNorm(groups, channels, eps=1e-6)``, with the same parameters and state-dict keys."""

    def __init__(self, channels: int, groups: int, eps: float = 1e-6):
        super().__init__(groups, channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"GroupNormPerFrame takes frames (B*T, C, H, W), got shape {tuple(x.shape)}")
        return super().forward(x)


def frame_positions(image_mask: torch.Tensor) -> torch.Tensor:
    """Positions ``(B, T)`` long of the frames for the relative bias: video frames are
    numbered ``0, 1, 2, ...`` in order, skipping image frames (``image_mask`` True), so
    appended images do not disturb the distances among video frames. An image frame gets
    the number of video frames before it (``[0, 1, 2, 3, 4, 5, 5]`` for 5 video frames and 2
    images); it only ever sees itself (distance 0), so its position never matters."""
    return torch.cumsum((~image_mask).long(), dim=1) - (~image_mask).long()


def temporal_attention_mask(image_mask: torch.Tensor) -> torch.Tensor:
    """Boolean mask ``(B, T, T)``, True where query frame ``i`` may attend to key frame ``j``.

    ``allowed[b, i, j] = (i == j) or (frame i and frame j are both video frames)``: an image
    frame attends only to itself (its row and column are those of the identity), video frames
    attend to all video frames. Every row has at least its diagonal, so no row is empty.
    """
    T = image_mask.shape[1]
    video = ~image_mask
    eye = torch.eye(T, dtype=torch.bool, device=image_mask.device)
    return eye | (video[:, :, None] & video[:, None, :])


class RelativePositionBias(nn.Module):
    """Learned relative position bias for temporal attention (Shaw et al. 2018, clipped).

    ``bias[h, i, j] = table[h, clip(pos_j - pos_i, -K, K) + K]`` with ``K = max_distance``:
    ``2K + 1`` scalars per head. Distances beyond ``K`` share the edge entry (Shaw et al.'s
    clipping), so any number of frames works. Zero-initialised: at the start every distance
    is treated alike.
    """

    def __init__(self, num_heads: int, max_distance: int = 32):
        super().__init__()
        if max_distance < 0:
            raise ValueError(f"max_distance must be >= 0, got {max_distance}")
        self.num_heads = num_heads
        self.max_distance = max_distance
        self.table = nn.Parameter(torch.zeros(num_heads, 2 * max_distance + 1))

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """``positions`` ``(B, T)`` or ``(T,)`` long -> bias ``(B, heads, T, T)`` (or ``(heads, T, T)``)."""
        rel = positions[..., None, :] - positions[..., :, None]  # (..., T_query, T_key): j - i
        idx = rel.clamp(-self.max_distance, self.max_distance) + self.max_distance
        bias = self.table[:, idx]  # (heads, ..., T, T)
        return bias.movedim(0, -3)


class _FrameAttention(nn.Module):
    """What spatial and temporal attention share: per-frame GroupNorm, a fused q/k/v
    projection and a zero-initialised output projection (a fresh block is the identity)."""

    def __init__(self, channels: int, head_dim: int = 64, groups: int = 32):
        super().__init__()
        if channels % head_dim:
            raise ValueError(f"attention channels {channels} not divisible by head_dim {head_dim}")
        self.heads = channels // head_dim
        self.norm = GroupNormPerFrame(channels, groups)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)


class SpatialAttention(_FrameAttention):
    """Self-attention over the ``H*W`` positions of each frame (frames act as batch).

    ``(B*T, C, H, W) -> (B*T, C, H, W)``, residual: ``x + proj(attn(norm(x)))``; the output
    projection is zero-initialised so a fresh block is the identity.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # "n c h w -> n (h w) c", n = b t frames
        q, k, v = self.qkv(tokens).view(N, H * W, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # "n p (3 heads d) -> 3 n heads p d"
        out = F.scaled_dot_product_attention(q, k, v)  # (B*T, heads, H*W, d)
        out = self.proj(out.transpose(1, 2).reshape(N, H * W, C))  # "n heads p d -> n p (heads d)"
        return x + out.transpose(1, 2).reshape(N, C, H, W)  # "n (h w) c -> n c h w"


class TemporalAttention(_FrameAttention):
    """Self-attention over the ``T`` frames at each spatial position (positions act as batch),
    with a :class:`RelativePositionBias` and the joint-training image mask.

    ``(B*T, C, H, W) -> (B*T, C, H, W)``, residual, zero-initialised output projection.
    ``image_mask`` ``(B, T)`` bool or None; with a mask the attention matrix is the identity
    for image frames. A ``(1, T)`` mask applies to every clip and is broadcast (no per-position
    copy of the ``(heads, T, T)`` mask); ``UNet3D`` passes one when all clips share it.
    """

    def __init__(self, channels: int, head_dim: int = 64, groups: int = 32, max_distance: int = 32):
        super().__init__(channels, head_dim, groups)
        self.rel_bias = RelativePositionBias(self.heads, max_distance)

    def attn_bias(self, B: int, T: int, image_mask: torch.Tensor | None, device, dtype) -> torch.Tensor:
        """The float mask added to the attention logits: ``(1, heads, T, T)`` without an image
        mask, ``(B, heads, T, T)`` with one (``-inf`` where :func:`temporal_attention_mask`
        forbids)."""
        if image_mask is None:
            return self.rel_bias(torch.arange(T, device=device)).to(dtype)[None]
        bias = self.rel_bias(frame_positions(image_mask)).to(dtype)  # (B, heads, T, T)
        allowed = temporal_attention_mask(image_mask)[:, None]  # (B, 1, T, T)
        return bias.masked_fill(~allowed, float("-inf"))

    def forward(self, x: torch.Tensor, T: int, image_mask: torch.Tensor | None = None) -> torch.Tensor:
        N, C, H, W = x.shape
        B, P, h, d = N // T, H * W, self.heads, C // self.heads
        tokens = self.norm(x).view(B, T, C, P).permute(0, 3, 1, 2)  # "(b t) c h w -> b (h w) t c"
        qkv = self.qkv(tokens).view(B * P, T, 3, h, d).permute(2, 0, 3, 1, 4)  # "b p t (3 heads d) -> 3 (b p) heads t d"
        q, k, v = qkv.unbind(0)  # each (B*H*W, heads, T, d)
        mask = self.attn_bias(B, T, image_mask, x.device, q.dtype)
        if image_mask is not None and image_mask.shape[0] > 1:  # one mask per example, for each of its H*W positions
            mask = mask[:, None].expand(B, P, h, T, T).reshape(B * P, h, T, T)
        # else (1, heads, T, T): broadcast over all B*H*W rows, never copied
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B*H*W, heads, T, d)
        out = self.proj(out.transpose(1, 2).reshape(B, P, T, C))  # "(b p) heads t d -> b p t (heads d)"
        return x + out.permute(0, 2, 3, 1).reshape(N, C, H, W)  # "b (h w) t c -> (b t) c h w"


class SpaceTimeAttention(nn.Module):
    """Spatial attention followed by temporal attention: one attention stage of Figure 1.
    ``(B*T, C, H, W) -> (B*T, C, H, W)``."""

    def __init__(self, channels: int, head_dim: int = 64, groups: int = 32, max_distance: int = 32):
        super().__init__()
        self.spatial = SpatialAttention(channels, head_dim, groups)
        self.temporal = TemporalAttention(channels, head_dim, groups, max_distance)

    def forward(self, x: torch.Tensor, T: int, image_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.temporal(self.spatial(x), T, image_mask)
