"""FVD: the Frechet distance between I3D features of real and generated videos (Section 4).

The paper reports FVD (Unterthiner et al. 2018) for BAIR and Kinetics-600 (Tables 2-3) and
for the text-conditioned models (Tables 4-6). FVD embeds each video with the Inflated 3D
ConvNet of Carreira & Zisserman (2017) trained on Kinetics-400 and takes the Frechet
distance (:mod:`vdm_lite.metrics.frechet`) between the two sets of embeddings.

**The network.** :class:`I3D` is InceptionI3d with the layer and state-dict names of the
widely used PyTorch port (``piergiaj/pytorch-i3d``, reused by VideoGPT's FVD code):
``Conv3d_1a_7x7.conv3d.weight``, ``Conv3d_1a_7x7.bn.running_mean``, ...,
``Mixed_5c.b3b.bn.weight``, ``logits.conv3d.weight``, ``logits.conv3d.bias``. Convolutions
and max-pools pad like TensorFlow's ``SAME``; BatchNorm has ``eps=1e-3`` as in the original
TensorFlow model (VideoGPT's copy uses ``1e-5``: pass ``bn_eps=1e-5`` to match it).

**Preprocessing** (:func:`preprocess_i3d`), as in the reference FVD code: videos
``(B, C, T, H, W)`` in [-1, 1] are resized per frame to 224 x 224 (bilinear, no crop) and kept
in [-1, 1]; one-channel videos are repeated to three.

**Features**: the 400 Kinetics logits, averaged over the remaining time steps (``layer=
"logits"``, the default), because that is what the reference TensorFlow FVD and the
StyleGAN-V/``i3d_torchscript`` code use, so numbers are comparable with published ones. The
1024-d average-pooled ``Mixed_5c`` output is available as ``layer="pool"``; the logits are an
affine map of it (a 1x1x1 convolution), i.e. a 400-d projection that FVD has always used.

**Weights come only from a local file** -- nothing is downloaded:

* :meth:`I3D.from_file` reads a state dict (``.pt``/``.pth``/``.safetensors``) in the
  layout above, e.g. ``rgb_imagenet.pt`` from ``piergiaj/pytorch-i3d/models`` (DeepMind's
  ``kinetics-i3d`` RGB checkpoint, ImageNet-inflated and trained on Kinetics-400, converted
  to PyTorch), or VideoGPT's ``i3d_pretrained_400.pt`` (with ``bn_eps=1e-5``).
* :meth:`TorchScriptI3D.from_file` wraps StyleGAN-V's ``i3d_torchscript.pt``, a TorchScript
  conversion of the TF-Hub ``i3d-kinetics-400`` module that the original FVD code uses (its
  weights differ from the ``kinetics-i3d`` release). It is the closest match to published FVDs.
* :func:`load_i3d` picks the right one for a file.

FVD depends on the weights, the resizing and the number of videos: compare only numbers
computed the same way, and read the sample counts printed with every result.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .features import extract_features
from .frechet import FrechetResult, Stats, frechet_from_features, gaussian_stats
from .weights import WeightsMismatch, is_torchscript, load_checked, read_state_dict

__all__ = [
    "I3D_SIZE",
    "I3D_LAYERS",
    "preprocess_i3d",
    "I3D",
    "TorchScriptI3D",
    "load_i3d",
    "i3d_features",
    "fvd",
]

I3D_SIZE = 224
I3D_LAYERS = ("logits", "pool")
_POOL = (2, 7, 7)  # the final average pool (time, height, width)


# -- preprocessing --------------------------------------------------------------------------


def preprocess_i3d(videos: torch.Tensor, size: int | None = I3D_SIZE) -> torch.Tensor:
    """``(B, C, T, H, W)`` in [-1, 1] -> ``(B, 3, T, size, size)`` in [-1, 1].

    Each frame is resized on its own (bilinear, ``align_corners=False``, no antialiasing,
    no crop); values are clamped to [-1, 1] first (samples may overshoot slightly). One
    channel is repeated to three. ``size=None`` keeps the resolution.
    """
    if videos.ndim != 5:
        raise ValueError(f"videos must be (B, C, T, H, W), got shape {tuple(videos.shape)}")
    b, c, t, h, w = videos.shape
    if c == 1:
        videos = videos.expand(b, 3, t, h, w)
    elif c != 3:
        raise ValueError(f"I3D takes RGB (3-channel) or grayscale videos, got {c} channels")
    x = videos.float().clamp(-1, 1)
    if size is not None and (h, w) != (size, size):
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, 3, h, w)
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
        x = frames.reshape(b, t, 3, size, size).permute(0, 2, 1, 3, 4)
    return x.contiguous()


# -- the network ----------------------------------------------------------------------------


def _same_padding(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """Zero-pad ``(B, C, T, H, W)`` like TensorFlow's ``SAME``: total ``max(k - s, 0)`` (or
    ``max(k - n % s, 0)`` when ``s`` does not divide ``n``), the extra one at the end."""
    pad: list[int] = []
    for n, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):
        total = max(k - (n % s or s), 0)
        pad += [total // 2, total - total // 2]
    return F.pad(x, pad)


class Unit3D(nn.Module):
    """Conv3d (SAME padding) -> BatchNorm -> ReLU; keys ``conv3d.*`` and ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), *, bn_eps: float = 1e-3,
                 norm_act: bool = True):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=not norm_act)
        self.bn = nn.BatchNorm3d(cout, eps=bn_eps, momentum=0.01) if norm_act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_padding(x, self.kernel, self.stride))
        return F.relu(self.bn(x)) if self.bn is not None else x


class MaxPool3dSame(nn.Module):
    """Max-pool with SAME zero padding (inputs are post-ReLU, so zeros never win wrongly)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_same_padding(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; pool -> 1x1.
    ``widths = (b0, b1a, b1b, b2a, b2b, b3b)``; output ``b0 + b1b + b2b + b3b`` channels."""

    def __init__(self, cin: int, widths: Sequence[int], bn_eps: float = 1e-3):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(cin, w0, bn_eps=bn_eps)
        self.b1a = Unit3D(cin, w1a, bn_eps=bn_eps)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3), bn_eps=bn_eps)
        self.b2a = Unit3D(cin, w2a, bn_eps=bn_eps)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3), bn_eps=bn_eps)
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, w3, bn_eps=bn_eps)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, in channels, widths) of the Inception modules; pools sit between the groups
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class I3D(nn.Module):
    """InceptionI3d (Carreira & Zisserman 2017) for FVD, in the ``pytorch-i3d`` layout.

    ``forward(videos (B, C, T, H, W) in [-1, 1], layer="logits") -> (B, num_classes)`` (or
    ``(B, 1024)`` for ``layer="pool"``). Inputs are resized to ``size`` x ``size`` (224, as
    the reference FVD; ``size=None`` skips it, and small clips such as 8 x 64 x 64 run too,
    which the tests use with random weights). 16 frames at 224 x 224 end as a 2 x 7 x 7 map that the
    final average pool (2, 7, 7) reduces to one position; longer clips give several time
    steps, averaged as the TensorFlow model does. Smaller maps are pooled whole.
    """

    def __init__(self, num_classes: int = 400, *, size: int | None = I3D_SIZE, bn_eps: float = 1e-3,
                 in_channels: int = 3):
        super().__init__()
        self.num_classes, self.size = num_classes, size
        kw = dict(bn_eps=bn_eps)
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2), **kw)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, **kw)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), **kw)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(*_MIXED["Mixed_3b"], **kw)
        self.Mixed_3c = InceptionModule(*_MIXED["Mixed_3c"], **kw)
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            setattr(self, name, InceptionModule(*_MIXED[name], **kw))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(*_MIXED["Mixed_5b"], **kw)
        self.Mixed_5c = InceptionModule(*_MIXED["Mixed_5c"], **kw)
        self.logits = Unit3D(1024, num_classes, norm_act=False)  # 1x1x1 conv with bias
        self.trunk = [n for n, _ in self.named_children() if n != "logits"]  # in forward order

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed ``(B, 3, T, H, W)`` -> ``(B, 1024, T', H', W')`` after the (2, 7, 7)
        average pool (stride 1, no padding; clamped to the map's size when smaller)."""
        for name in self.trunk:
            x = getattr(self, name)(x)
        kernel = [min(k, n) for k, n in zip(_POOL, x.shape[2:])]
        return F.avg_pool3d(x, kernel, stride=1)

    def forward(self, videos: torch.Tensor, layer: str = "logits") -> torch.Tensor:
        """``(B, C, T, H, W)`` in [-1, 1] -> ``(B, num_classes)`` logits (or ``(B, 1024)``
        for ``layer="pool"``), averaged over the remaining positions."""
        if layer not in I3D_LAYERS:
            raise ValueError(f"layer must be one of {I3D_LAYERS}, got {layer!r}")
        x = self.pooled(preprocess_i3d(videos, self.size))
        if layer == "pool":
            return x.mean(dim=(2, 3, 4))
        return self.logits(x).mean(dim=(2, 3, 4))

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, size: int | None = I3D_SIZE, bn_eps: float = 1e-3,
                  device: str | torch.device = "cpu") -> "I3D":
        """An :class:`I3D` with weights from a local state-dict file (``.pt``, ``.pth`` or
        ``.safetensors``) in the ``pytorch-i3d`` layout (see the module docstring for where
        such files come from). The number of classes is read from ``logits.conv3d.weight``.
        Raises :class:`~vdm_lite.metrics.weights.WeightsMismatch` naming missing/unexpected
        keys; a TorchScript archive is pointed to :class:`TorchScriptI3D`."""
        if is_torchscript(path):
            raise WeightsMismatch(f"{path} is a TorchScript archive (e.g. StyleGAN-V's i3d_torchscript.pt): "
                                  "load it with TorchScriptI3D.from_file or load_i3d")
        state = read_state_dict(path)
        head = state.get("logits.conv3d.weight")
        num_classes = int(head.shape[0]) if head is not None else 400
        model = cls(num_classes, size=size, bn_eps=bn_eps)
        load_checked(model, state, source=f"the I3D weights in {path}")
        return model.to(device).eval()


class TorchScriptI3D(nn.Module):
    """StyleGAN-V's TorchScript I3D detector (``i3d_torchscript.pt``) behind the same interface.

    ``forward(videos (B, C, T, H, W) in [-1, 1]) -> (B, 400)``: :func:`preprocess_i3d`, then
    ``net(x, rescale=False, resize=False, return_features=True)``, which returns the logits
    before the softmax (the features of the reference FVD).
    """

    def __init__(self, net: nn.Module, *, size: int | None = I3D_SIZE):
        super().__init__()
        self.net, self.size = net, size

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        x = preprocess_i3d(videos, self.size)
        return self.net(x, rescale=False, resize=False, return_features=True)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, size: int | None = I3D_SIZE,
                  device: str | torch.device = "cpu") -> "TorchScriptI3D":
        """Load a local TorchScript detector with ``torch.jit.load`` (runs its stored code:
        only load files from a source you trust)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no TorchScript detector at {path}")
        if not is_torchscript(path):
            raise WeightsMismatch(f"{path} is not a TorchScript archive; for a state dict use I3D.from_file")
        return cls(torch.jit.load(str(path), map_location=device).eval(), size=size).eval()


def load_i3d(path: str | os.PathLike, **kwargs) -> nn.Module:
    """:class:`TorchScriptI3D` for a TorchScript archive, :class:`I3D` for a state dict."""
    return (TorchScriptI3D if is_torchscript(path) else I3D).from_file(path, **kwargs)


# -- features and FVD -----------------------------------------------------------------------


def i3d_features(videos, detector: nn.Module, *, batch_size: int = 16, device=None, progress: bool | None = None,
                 desc: str = "I3D features") -> torch.Tensor:
    """I3D features ``(N, D)`` (float64, CPU) of videos ``(N, C, T, H, W)`` in [-1, 1], or of an
    iterable of such batches; see :func:`~vdm_lite.metrics.features.extract_features`."""
    return extract_features(detector, videos, batch_size=batch_size, device=device, progress=progress, desc=desc)


def fvd(real, fake, detector: nn.Module, *, batch_size: int = 16, device=None,
        progress: bool | None = None) -> FrechetResult:
    """Frechet Video Distance between two sets of videos ``(N, C, T, H, W)`` in [-1, 1].

    ``real``/``fake``: a tensor of videos, an iterable of video batches, or precomputed
    ``(mu, sigma, n)`` statistics (:func:`~vdm_lite.metrics.frechet.gaussian_stats` of
    :func:`i3d_features`), e.g. the real set's, computed once. ``detector``: an :class:`I3D`
    or :class:`TorchScriptI3D` (or any ``videos -> (B, D)`` module). Both sets should have
    the same number of frames, as in the reference FVD (16 frames at 224 x 224).
    """

    def stats(x, label: str) -> Stats:
        if isinstance(x, tuple):
            return x
        feats = i3d_features(x, detector, batch_size=batch_size, device=device, progress=progress,
                             desc=f"I3D features ({label})")
        return gaussian_stats(feats)

    return frechet_from_features(stats(real, "real"), stats(fake, "fake"), name="FVD")
