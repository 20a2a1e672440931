"""The 3D U-Net of Section 3 (Figure 1): a 2-D image U-Net factorized over space and time.

Input and output are videos ``(B, C, T, H, W)``. Inside, the frames are folded into the
batch, ``(B*T, C, H, W)``, so that every spatial operation acts on each frame alone:

* every 3x3 convolution is a **1x3x3** convolution (a 2-D conv applied per frame: it has
  the weights of ``nn.Conv3d(kernel_size=(1, 3, 3))`` without the unit axis);
* down/up-sampling by 2 happens in space only; frames are never merged;
* GroupNorm takes its statistics **per frame**. The paper's image mode needs frames to be
  independent; statistics pooled over ``T`` would leak information between the images of a
  joint image-video batch. With per-frame statistics, a frame marked as an image gives
  exactly the output it would give alone (tested);
* temporal attention (:mod:`vdm_lite.nn.attention`) is the only place frames interact.

Layout (ADM-style Wide-ResNet U-Net): ``conv_in``; for each of the ``K`` resolutions
``num_res_blocks`` residual blocks (each followed by spatial + temporal attention at the
``attention_resolutions``) and a 2x spatial downsampling; a middle block (res, attention,
res); the mirrored up path whose blocks take the down path's activations **concatenated**
to their input, then 2x spatial upsampling; ``GroupNorm -> SiLU -> conv_out``.

The conditioning vector ``(B, emb_dim)`` (:class:`~vdm_lite.nn.conditioning.Conditioning`:
log-SNR, class, text) enters **every residual block** as a per-channel scale and shift
after its second GroupNorm, ``h = norm(h) * (1 + scale) + shift`` (FiLM / "scale-shift
norm" of improved DDPM); ``scale_shift=False`` adds it instead, ``h = norm(h + e)``, which
is the plainer reading of the paper's "added to every residual block".

The last convolution of every residual block, every attention output projection and
``conv_out`` are zero-initialised (each block starts as the identity), so a freshly built
model outputs zeros. Notebook ``04_unet3d`` builds the network block by block.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..conventions import PARAMETERIZATIONS
from .attention import GroupNormPerFrame, SpaceTimeAttention
from .conditioning import Conditioning
from .text import TEXT_ENCODERS

__all__ = ["UNetConfig", "MODEL_KEYS", "ResBlock", "Downsample", "Upsample", "UNetBlock", "UNet3D", "count_parameters"]


@dataclass
class UNetConfig:
    """Hyperparameters of :class:`UNet3D` (names follow Appendix A's table).

    ``attention_resolutions`` are spatial sizes measured at the nominal ``image_size``:
    level ``i`` has resolution ``image_size / 2^i`` and gets spatial + temporal attention when
    that size is listed. The network itself runs on any ``T`` and any ``H, W`` divisible by
    ``2^(K-1)``; ``num_frames`` and ``image_size`` are the training shape of the preset.
    ``num_classes = 0`` and ``text_encoder = None`` give an unconditional model.
    """

    in_channels: int = 3
    out_channels: int | None = None  # None: same as in_channels
    base_channels: int = 128
    channel_mults: tuple[int, ...] = (1, 2, 4, 8)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (8, 16, 32)
    head_dim: int = 64
    emb_dim: int = 1024
    mlp_layers: int = 2
    dropout: float = 0.0
    norm_groups: int = 32
    num_frames: int = 16
    image_size: int = 64
    parameterization: str = "eps"
    num_classes: int = 0
    text_encoder: str | None = None  # None, "byte" (trainable) or "minilm" (frozen, pretrained)
    text_width: int = 128  # "byte" encoder only
    text_layers: int = 2
    text_heads: int = 4
    text_max_len: int = 64
    max_rel_distance: int = 32  # temporal relative bias: distances clipped to [-K, K]
    mid_attention: bool = True
    scale_shift: bool = True  # conditioning as scale/shift (True) or added (False)
    gradient_checkpointing: bool = False

    def __post_init__(self):
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        self.attention_resolutions = tuple(int(r) for r in self.attention_resolutions)
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise ValueError(f"channel_mults must be positive integers, got {self.channel_mults}")
        K = len(self.channel_mults)
        if self.image_size < 1 or self.image_size % 2 ** (K - 1):
            raise ValueError(
                f"image_size {self.image_size} cannot be halved K - 1 = {K - 1} times "
                f"(K = {K} resolutions); use a multiple of {2 ** (K - 1)}"
            )
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {self.parameterization!r}")
        if self.text_encoder not in (None, *TEXT_ENCODERS):
            raise ValueError(f"text_encoder must be None or one of {TEXT_ENCODERS}, got {self.text_encoder!r}")
        if self.num_res_blocks < 1 or self.num_classes < 0 or self.in_channels < 1:
            raise ValueError("num_res_blocks and in_channels must be >= 1, num_classes >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.base_channels % 2:
            raise ValueError(f"base_channels must be even (it is the log-SNR Fourier dim), got {self.base_channels}")
        for r in self.attention_resolutions:
            if r not in self.resolutions:
                raise ValueError(f"attention resolution {r} is not one of the U-Net's resolutions {self.resolutions}")
        for i, ch in enumerate(self.channels):
            if ch % self.norm_groups:
                raise ValueError(f"channels {ch} at level {i} not divisible by norm_groups {self.norm_groups}")
            if (self.resolutions[i] in self.attention_resolutions or (self.mid_attention and i == K - 1)) and ch % self.head_dim:
                raise ValueError(f"attention channels {ch} at level {i} not divisible by head_dim {self.head_dim}")

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Spatial size of each level at the nominal ``image_size``."""
        return tuple(self.image_size // 2**i for i in range(len(self.channel_mults)))

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of each level, ``base_channels * M_k``."""
        return tuple(self.base_channels * m for m in self.channel_mults)

    def layout(self) -> list[dict]:
        """One entry per level (and a last one for the middle block): ``level`` (index, or
        ``"mid"``), ``resolution`` (at ``image_size``), ``channels`` and ``heads`` of its
        spatial + temporal attention (0: none). The same ``attention_resolutions`` put attention
        on different levels at another ``image_size``: this says where it is."""
        heads = [c // self.head_dim if r in self.attention_resolutions else 0 for r, c in zip(self.resolutions, self.channels)]
        rows = [dict(level=i, resolution=r, channels=c, heads=h) for i, (r, c, h) in enumerate(zip(self.resolutions, self.channels, heads))]
        mid_heads = self.channels[-1] // self.head_dim if self.mid_attention else 0
        return rows + [dict(level="mid", resolution=self.resolutions[-1], channels=self.channels[-1], heads=mid_heads)]

    @property
    def output_channels(self) -> int:
        return self.in_channels if self.out_channels is None else self.out_channels

    def replace(self, **changes) -> "UNetConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


# One line per UNetConfig field: the model.* rows of `vdm-lite train --help` and `vdm-lite config`
# (tests/test_cli.py checks that every field has its line here).
MODEL_KEYS = {
    "in_channels": "video channels (3: RGB)",
    "out_channels": "output channels (none: as in_channels)",
    "base_channels": "channels of the first level",
    "channel_mults": "channel multiplier of each level (one level per entry)",
    "num_res_blocks": "residual blocks per level",
    "attention_resolutions": "spatial sizes (at image_size) whose levels get spatial + temporal attention",
    "head_dim": "channels per attention head",
    "emb_dim": "width of the conditioning vector (log-SNR, class, text)",
    "mlp_layers": "linear layers of the conditioning MLP",
    "dropout": "dropout in the residual blocks",
    "norm_groups": "GroupNorm groups (statistics per frame)",
    "num_frames": "training frames (filled in from frames)",
    "image_size": "training resolution (filled in from resolution)",
    "parameterization": "what the network predicts: eps, v or x",
    "num_classes": "classes of a class condition (filled in from the data; 0: none)",
    "text_encoder": "none, byte (trained with the U-Net) or minilm (frozen, pretrained); condition=text sets byte if none",
    "text_width": "byte text encoder: width",
    "text_layers": "byte text encoder: transformer layers",
    "text_heads": "byte text encoder: attention heads",
    "text_max_len": "byte text encoder: tokens per caption",
    "max_rel_distance": "temporal attention: relative distances clipped to [-K, K]",
    "mid_attention": "spatial + temporal attention in the middle block",
    "scale_shift": "conditioning as a scale and shift of each residual block (false: added)",
    "gradient_checkpointing": "recompute activations in the backward pass (less memory, slower)",
}


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; works on models built on the ``meta`` device."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def conv1x3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """A 1x3x3 convolution on frames folded into the batch (``(B*T, C, H, W)``)."""
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """Wide-ResNet residual block with the conditioning embedding (Figure 1).

    ``x`` ``(B*T, C_in, H, W)``, ``emb`` ``(B, E)`` -> ``(B*T, C_out, H, W)``::

        h = conv1x3x3(SiLU(GN(x)))
        h = GN(h) * (1 + scale) + shift      # (scale, shift) = Linear(SiLU(emb)), per frame
        h = conv1x3x3(Dropout(SiLU(h)))       # zero-initialised
        out = skip(x) + h                     # skip: 1x1 conv when C_in != C_out
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float = 0.0, groups: int = 32, scale_shift: bool = True):
        super().__init__()
        self.scale_shift = scale_shift
        self.norm1 = GroupNormPerFrame(c_in, groups)
        self.conv1 = conv1x3x3(c_in, c_out)
        self.emb = nn.Linear(emb_dim, 2 * c_out if scale_shift else c_out)
        self.norm2 = GroupNormPerFrame(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv1x3x3(c_out, c_out)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor, T: int, image_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.emb(F.silu(emb)).repeat_interleave(T, dim=0)[:, :, None, None]  # (B*T, ., 1, 1)
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve H and W (never T): a stride-2 1x3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv1x3x3(channels, channels, stride=2)

    def forward(self, x, emb=None, T=None, image_mask=None):
        return self.conv(x)


class Upsample(nn.Module):
    """Double H and W (never T): nearest-neighbour upsampling then a 1x3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv1x3x3(channels, channels)

    def forward(self, x, emb=None, T=None, image_mask=None):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNetBlock(nn.Module):
    """A residual block, followed at attention resolutions by spatial then temporal attention."""

    def __init__(self, c_in: int, c_out: int, cfg: UNetConfig, attention: bool):
        super().__init__()
        self.res = ResBlock(c_in, c_out, cfg.emb_dim, cfg.dropout, cfg.norm_groups, cfg.scale_shift)
        self.attn = SpaceTimeAttention(c_out, cfg.head_dim, cfg.norm_groups, cfg.max_rel_distance) if attention else None

    def forward(self, x, emb, T, image_mask=None):
        x = self.res(x, emb, T)
        return x if self.attn is None else self.attn(x, T, image_mask)


class UNet3D(nn.Module):
    """The video U-Net of Section 3, Figure 1.

    ``model(z, logsnr, class_label=None, text=None, image_mask=None) -> (B, C_out, T, H, W)``

    Args:
        z: noisy video ``(B, C, T, H, W)``; any ``T >= 1``, ``H`` and ``W`` divisible by
            ``2^(K-1)``.
        logsnr: ``(B,)`` float, the log signal-to-noise ratio of ``z`` (never a step index).
        class_label: ``(B,)`` long, ``-1`` = null (class-conditional models only; ``None``
            means null for the whole batch).
        text: list of ``B`` captions, ``""`` = null (text models only; ``None`` = all null).
        image_mask: ``(B, T)`` bool, True where a frame is an independent image (joint
            image-video training): it attends only to itself in temporal attention. ``(1, T)``
            applies one mask to every clip, broadcast instead of copied per position (the
            trainer passes one when the clips share it, as :func:`~vdm_lite.datasets.
            append_image_frames` makes them).

    ``parameterization`` (``"eps"``, ``"v"`` or ``"x"``) tells samplers what it predicts.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        cfg = self.config = config
        self.parameterization = cfg.parameterization
        self.gradient_checkpointing = cfg.gradient_checkpointing
        text_kwargs = dict(width=cfg.text_width, layers=cfg.text_layers, heads=cfg.text_heads, max_len=cfg.text_max_len)
        self.cond = Conditioning(cfg.emb_dim, cfg.base_channels, cfg.mlp_layers, cfg.num_classes, cfg.text_encoder, text_kwargs)

        K, chans, attn = len(cfg.channel_mults), cfg.channels, cfg.attention_resolutions
        self.conv_in = conv1x3x3(cfg.in_channels, chans[0])
        self.down = nn.ModuleList()
        skip_ch, ch = [chans[0]], chans[0]
        for level in range(K):
            for _ in range(cfg.num_res_blocks):
                self.down.append(UNetBlock(ch, chans[level], cfg, cfg.resolutions[level] in attn))
                ch = chans[level]
                skip_ch.append(ch)
            if level < K - 1:
                self.down.append(Downsample(ch))
                skip_ch.append(ch)
        self.mid = nn.ModuleList([UNetBlock(ch, ch, cfg, cfg.mid_attention), UNetBlock(ch, ch, cfg, False)])
        self.up = nn.ModuleList()
        for level in reversed(range(K)):
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(UNetBlock(ch + skip_ch.pop(), chans[level], cfg, cfg.resolutions[level] in attn))
                ch = chans[level]
            if level > 0:
                self.up.append(Upsample(ch))
        self.norm_out = GroupNormPerFrame(ch, cfg.norm_groups)
        self.conv_out = conv1x3x3(ch, cfg.output_channels)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _run(self, block: nn.Module, h, emb, T, image_mask):
        # training, or the guidance gradients of Section 3.1 at sampling time (eval mode)
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, h, emb, T, image_mask, use_reentrant=False)
        return block(h, emb, T, image_mask)

    def _check_inputs(self, z, logsnr, class_label, text, image_mask):
        cfg = self.config
        if not isinstance(z, torch.Tensor) or z.ndim != 5:
            raise ValueError(f"z must be a video tensor (B, C, T, H, W), got shape {tuple(getattr(z, 'shape', ()))}")
        B, C, T, H, W = z.shape
        if C != cfg.in_channels:
            raise ValueError(f"z has {C} channels but the model expects in_channels = {cfg.in_channels}")
        f = 2 ** (len(cfg.channel_mults) - 1)
        if H % f or W % f or H == 0 or W == 0:
            raise ValueError(
                f"spatial size {H}x{W} cannot be halved K - 1 = {len(cfg.channel_mults) - 1} times: "
                f"H and W must be multiples of {f}"
            )
        if not isinstance(logsnr, torch.Tensor) or logsnr.shape != (B,):
            raise ValueError(f"logsnr must be a tensor of shape (B,) = ({B},), got {tuple(getattr(logsnr, 'shape', ()))}")
        if image_mask is not None:
            if not isinstance(image_mask, torch.Tensor) or image_mask.shape not in ((B, T), (1, T)) or image_mask.dtype != torch.bool:
                raise ValueError(
                    f"image_mask must be a bool tensor of shape (B, T) = ({B}, {T}) (or (1, {T}) for all clips), got "
                    f"{tuple(getattr(image_mask, 'shape', ()))} {getattr(image_mask, 'dtype', type(image_mask).__name__)}"
                )
        if class_label is not None:
            if cfg.num_classes == 0:
                raise ValueError("class_label given to a model without classes (config.num_classes = 0)")
            if not isinstance(class_label, torch.Tensor) or class_label.shape != (B,) or class_label.is_floating_point():
                raise ValueError(f"class_label must be an integer tensor of shape (B,) = ({B},)")
            if not torch.compiler.is_compiling():
                if bool(((class_label < -1) | (class_label >= cfg.num_classes)).any()):
                    raise ValueError(f"class_label values must lie in [-1, {cfg.num_classes - 1}] (-1 = null)")
        if text is not None:
            if cfg.text_encoder is None:
                raise ValueError("text given to a model without a text encoder (config.text_encoder = None)")
            if isinstance(text, str):
                text = [text] * B
            if isinstance(text, torch.Tensor) or len(text) != B or not all(isinstance(t, str) for t in text):
                raise ValueError(f"text must be a list of B = {B} strings ('' = null caption)")
        return B, C, T, H, W, text

    def forward(
        self,
        z: torch.Tensor,
        logsnr: torch.Tensor,
        *,
        class_label: torch.Tensor | None = None,
        text: Sequence[str] | str | None = None,
        image_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, C, T, H, W, text = self._check_inputs(z, logsnr, class_label, text, image_mask)
        emb = self.cond(logsnr, class_label, text)  # (B, E)
        h = self.conv_in(z.transpose(1, 2).reshape(B * T, C, H, W))  # frames folded into the batch
        skips = [h]
        for block in self.down:
            h = self._run(block, h, emb, T, image_mask)
            skips.append(h)
        for block in self.mid:
            h = self._run(block, h, emb, T, image_mask)
        for block in self.up:
            if isinstance(block, UNetBlock):
                h = torch.cat([h, skips.pop()], dim=1)  # concatenated skip connection
            h = self._run(block, h, emb, T, image_mask)
        out = self.conv_out(F.silu(self.norm_out(h)))  # (B*T, C_out, H, W)
        return out.view(B, T, -1, H, W).transpose(1, 2)

    def num_parameters(self, trainable_only: bool = True) -> int:
        return count_parameters(self, trainable_only)
