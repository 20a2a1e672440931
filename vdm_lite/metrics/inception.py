"""InceptionV3 of the reference FID/IS code, for per-frame FID and IS (Section 4, Tables 4-6).

FID (Heusel et al. 2017) and the Inception Score (Salimans et al. 2016) use the 2015
TensorFlow Inception graph (``inception-2015-12-05``), which differs from torchvision's
InceptionV3 in small ways that change the numbers. :class:`InceptionV3` follows the layout
of pytorch-fid's ``fid_inception_v3`` (torchvision's ``Inception3`` names, ``num_classes=1008``,
no auxiliary head) with its three patches: the average pools inside the A, C and first E
blocks exclude padding (``count_include_pad=False``) and the last E block max-pools.

* ``features(images (N, C, H, W) in [-1, 1]) -> (N, 2048)``: the final average pool (FID);
* ``logits(images) -> (N, 1008)``: the classifier (Inception Score).

Images are resized to 299 x 299 (bilinear) and kept in [-1, 1], the range the TensorFlow
graph takes (pytorch-fid maps its [0, 1] inputs there); one channel is repeated to three.

**Weights come only from a local file** -- :meth:`InceptionV3.from_file` reads the state dict
that pytorch-fid uses, ``pt_inception-2015-12-05-6726825d.pth`` (a release asset of the
``mseitzer/pytorch-fid`` GitHub repository, converted from the TensorFlow graph), or the same
weights as ``.safetensors``. Nothing is downloaded.

Any other network plugs into :mod:`vdm_lite.metrics.frames` the same way: a callable
``images -> (N, D)``. pytorch-fid itself (``pip install pytorch-fid``, an optional extra of
this package's user, not a dependency) works as ``InceptionV3([3], normalize_input=False)``
(its list output is unwrapped by :func:`~vdm_lite.metrics.features.extract_features`); note
that it downloads its weights on first use.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .weights import load_checked, read_state_dict

__all__ = ["INCEPTION_SIZE", "INCEPTION_LAYERS", "preprocess_inception", "InceptionV3"]

INCEPTION_SIZE = 299
INCEPTION_LAYERS = ("pool", "logits")


def preprocess_inception(images: torch.Tensor, size: int | None = INCEPTION_SIZE) -> torch.Tensor:
    """``(N, C, H, W)`` in [-1, 1] -> ``(N, 3, size, size)`` in [-1, 1] (bilinear resize,
    ``align_corners=False``, as pytorch-fid; values clamped to [-1, 1] first)."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    if c == 1:
        images = images.expand(n, 3, h, w)
    elif c != 3:
        raise ValueError(f"InceptionV3 takes RGB (3-channel) or grayscale images, got {c} channels")
    x = images.float().clamp(-1, 1)
    if size is not None and (h, w) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; keys ``conv.*`` and ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel=1, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # TF: padding not counted


def _chain(x: torch.Tensor, *layers: nn.Module) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


class InceptionA(nn.Module):
    """35 x 35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 -> 224 + ``pool_features``."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64)
        self.branch5x5_1 = BasicConv2d(cin, 48)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            _chain(x, self.branch5x5_1, self.branch5x5_2),
            _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            self.branch_pool(_avg_pool(x)),
        ], 1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2 -> 480 + ``cin``."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    """17 x 17 block with factorized 7x7 convolutions -> 768 channels."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        self.branch1x1 = BasicConv2d(cin, 192)
        self.branch7x7_1 = BasicConv2d(cin, c7)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(cin, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            _chain(x, self.branch7x7_1, self.branch7x7_2, self.branch7x7_3),
            _chain(x, self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                   self.branch7x7dbl_5),
            self.branch_pool(_avg_pool(x)),
        ], 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2 -> 512 + ``cin``."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            _chain(x, self.branch3x3_1, self.branch3x3_2),
            _chain(x, self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class InceptionE(nn.Module):
    """8 x 8 block with split 1x3 / 3x1 outputs -> 2048 channels. ``max_pool=True`` is the
    FID graph's quirk in its last block (``Mixed_7c``); the others average-pool."""

    def __init__(self, cin: int, max_pool: bool = False):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320)
        self.branch3x3_1 = BasicConv2d(cin, 384)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b = _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(a), self.branch3x3_2b(a),
            self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
            self.branch_pool(pooled),
        ], 1)


class InceptionV3(nn.Module):
    """The FID Inception network. ``forward(images (N, C, H, W) in [-1, 1], layer="pool")``
    -> ``(N, 2048)`` pool features, or ``(N, 1008)`` logits for ``layer="logits"``.
    ``size=None`` skips the resize to 299 (inputs must then be at least 75 x 75)."""

    def __init__(self, num_classes: int = 1008, *, size: int | None = INCEPTION_SIZE):
        super().__init__()
        self.num_classes, self.size = num_classes, size
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, num_classes)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed ``(N, 3, H, W)`` -> ``(N, 2048)`` (global average pool)."""
        x = _chain(x, self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3)
        x = _chain(F.max_pool2d(x, 3, stride=2), self.Conv2d_3b_1x1, self.Conv2d_4a_3x3)
        x = F.max_pool2d(x, 3, stride=2)
        blocks: Sequence[nn.Module] = (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                                       self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                                       self.Mixed_7c)
        return _chain(x, *blocks).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor, layer: str = "pool") -> torch.Tensor:
        if layer not in INCEPTION_LAYERS:
            raise ValueError(f"layer must be one of {INCEPTION_LAYERS}, got {layer!r}")
        x = self.pool(preprocess_inception(images, self.size))
        return x if layer == "pool" else self.fc(x)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` in [-1, 1] -> ``(N, 2048)``: the features of FID."""
        return self(images, "pool")

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` in [-1, 1] -> ``(N, 1008)``: the class logits of the Inception Score."""
        return self(images, "logits")

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, size: int | None = INCEPTION_SIZE,
                  device: str | torch.device = "cpu") -> "InceptionV3":
        """An :class:`InceptionV3` with weights from a local file: pytorch-fid's
        ``pt_inception-2015-12-05-6726825d.pth`` or a ``.safetensors`` copy. Raises
        :class:`~vdm_lite.metrics.weights.WeightsMismatch` naming missing/unexpected keys."""
        state = read_state_dict(path)
        head = state.get("fc.weight")
        model = cls(int(head.shape[0]) if head is not None else 1008, size=size)
        load_checked(model, state, source=f"the InceptionV3 weights in {path}")
        return model.to(device).eval()
