"""C3D fine-tuned on UCF101, the network of the UCF101 IS and FID of Table 1 (tgan2's).

The paper reports UCF101 FID and IS "computed by the C3D network" of the TGAN-v2 code
(Saito et al. 2020, ``pfnet-research/tgan2``). That code's ``C3DVersion1UCF101``
(``tgan2/models/c3d/c3d_ucf101.py``) is C3D (Tran et al. 2015) fine-tuned on UCF101
(``c3d_ucf101_finetune_whole_iter_20000`` of the C3D release, converted to Chainer as
``conv3d_deepnetA_ucf.npz``). :class:`C3D` is that network, layer for layer:

==========  =================================================  ==================
layer       operation                                          output (16x112x112 in)
==========  =================================================  ==================
conv1a      Conv3d 3 -> 64, 3x3x3, pad 1, ReLU                 64 x 16 x 112 x 112
pool1       max-pool (1, 2, 2)                                 64 x 16 x 56 x 56
conv2a      Conv3d 64 -> 128, ReLU; pool2 (2, 2, 2)            128 x 8 x 28 x 28
conv3a/3b   Conv3d 128 -> 256 -> 256, ReLU; pool3              256 x 4 x 14 x 14
conv4a/4b   Conv3d 256 -> 512 -> 512, ReLU; pool4              512 x 2 x 7 x 7
conv5a/5b   Conv3d 512 -> 512 -> 512, ReLU; pool5              512 x 1 x 4 x 4
fc6         Linear 8192 -> 4096, ReLU                          4096
fc7         Linear 4096 -> 4096, ReLU                          4096   (FID features)
fc8         Linear 4096 -> 101                                 101    (IS: softmax)
==========  =================================================  ==================

Pools use Chainer's ``cover_all=True`` (PyTorch ``ceil_mode=True``): pool5 takes 7 -> 4, so
fc6 sees 512 x 1 x 4 x 4. Dropout (after pool5, fc6, fc7) is off at evaluation.

**Preprocessing** (tgan2's ``pre`` and ``mean`` layers): videos ``(B, 3, 16, H, W)`` in [-1, 1]
are resized per frame to 112 x 112 (bilinear with ``align_corners=True``, Chainer's
``F.resize_images``), turned from RGB to BGR and scaled by 128, and ``128 - mean`` is added:
``x_bgr * 128 + 128 - mean``, i.e. pixels in [0, 256] minus the C3D mean clip. ``mean`` is a
buffer of shape ``(3, 16, 112, 112)`` (BGR, 0-255) that is part of the state dict: tgan2 reads
it from ``datasets/models/mean2.npz`` (key ``mean``) and crops ``[:, :, 8:120, 8:120]``.

**Features, as tgan2 does**: FID uses ``fc7`` after its ReLU (``classifier.get_feature`` in
``tgan2/evaluations/fid.py``: 4096-d); IS uses the softmax of ``fc8`` (``F.softmax(classifier(x))``
in ``inception_score.py``). :meth:`C3D.features` and :meth:`C3D.logits` return exactly those.

**Weights come only from a local file** (nothing is downloaded). The state dict layout::

    conv1a.weight (64, 3, 3, 3, 3)  conv1a.bias (64,)  ...  conv5b.weight (512, 512, 3, 3, 3)
    fc6.weight (4096, 8192)  fc7.weight (4096, 4096)  fc8.weight (101, 4096)  (+ biases)
    mean (3, 16, 112, 112)

:meth:`C3D.from_file` checks it key by key (a clear error names missing, unexpected and
mis-shaped keys). The checksum of tgan2's ``conv3d_deepnetA_ucf.npz`` is not known to this
project (tgan2 builds the file from the caffemodel on first use; it is not a fixed release
asset), so none is checked. To convert it: Chainer's ``save_npz`` stores ``conv1a/W``,
``conv1a/b``, ..., ``fc8/b`` with the same shapes as PyTorch's (``(out, in, kt, kh, kw)`` and
``(out, in)``), and :func:`convert_tgan2_c3d` maps them and adds the mean (NumPy only, no Chainer)::

    python -m vdm_lite.metrics.c3d conv3d_deepnetA_ucf.npz mean2.npz c3d_ucf101.safetensors

(The PyTorch C3D ports of the Sports-1M model, e.g. ``c3d.pickle`` with 487 classes, are a
different network: not the UCF101 fine-tuned one of Table 1.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .weights import load_checked, read_state_dict

__all__ = ["C3D", "C3D_SIZE", "C3D_FRAMES", "C3D_LAYERS", "preprocess_c3d", "convert_tgan2_c3d", "c3d_layout"]

C3D_SIZE = 112
C3D_FRAMES = 16
C3D_LAYERS = ("fc6", "fc7", "fc8", "prob")
_CONVS = ("conv1a", "conv2a", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
_POOL_AFTER = {"conv1a": (1, 2, 2), "conv2a": (2, 2, 2), "conv3b": (2, 2, 2), "conv4b": (2, 2, 2), "conv5b": (2, 2, 2)}


def _pooled(n: int, k: int) -> int:
    return -(-(n - k) // k) + 1 if n > k else 1  # ceil mode, stride = kernel


def preprocess_c3d(videos: torch.Tensor, mean: torch.Tensor, size: int = C3D_SIZE) -> torch.Tensor:
    """``(B, 3, T, H, W)`` in [-1, 1] -> ``x_bgr * 128 + 128 - mean`` at ``size x size``
    (bilinear, ``align_corners=True``, as tgan2's ``F.resize_images``)."""
    if videos.ndim != 5 or videos.shape[1] not in (1, 3):
        raise ValueError(f"videos must be (B, 3, T, H, W) (or one channel), got shape {tuple(videos.shape)}")
    b, c, t, h, w = videos.shape
    if c == 1:
        videos = videos.expand(b, 3, t, h, w)
    if t != mean.shape[1]:
        raise ValueError(f"C3D takes clips of {mean.shape[1]} frames, got {t}")
    x = videos.float().clamp(-1, 1)
    if (h, w) != (size, size):
        frames = x.transpose(1, 2).reshape(b * t, 3, h, w)
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=True)
        x = frames.reshape(b, t, 3, size, size).transpose(1, 2)
    x = x.flip(1)  # RGB -> BGR
    return x * 128.0 + (128.0 - mean)


class C3D(nn.Module):
    """C3D fine-tuned on UCF101 in tgan2's layout (module docstring).

    ``forward(videos (B, 3, 16, H, W) in [-1, 1], layer="fc8")`` -> ``(B, 101)`` logits, or
    ``(B, 4096)`` for ``"fc6"``/``"fc7"`` (after ReLU), or the softmax for ``"prob"``.
    ``channels``, ``fc`` and ``size`` exist for small test networks; the defaults are the real one.
    """

    def __init__(self, num_classes: int = 101, *, channels: Sequence[int] = (64, 128, 256, 512, 512), fc: int = 4096,
                 frames: int = C3D_FRAMES, size: int = C3D_SIZE):
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        widths = {"conv1a": (3, c1), "conv2a": (c1, c2), "conv3a": (c2, c3), "conv3b": (c3, c3), "conv4a": (c3, c4),
                  "conv4b": (c4, c4), "conv5a": (c4, c5), "conv5b": (c5, c5)}  # fmt: skip
        for name in _CONVS:
            setattr(self, name, nn.Conv3d(*widths[name], kernel_size=3, padding=1))
        t, s = frames, size
        for k in _POOL_AFTER.values():
            t, s = _pooled(t, k[0]), _pooled(s, k[1])
        self.fc6 = nn.Linear(c5 * t * s * s, fc)
        self.fc7 = nn.Linear(fc, fc)
        self.fc8 = nn.Linear(fc, num_classes)
        self.register_buffer("mean", torch.zeros(3, frames, size, size))
        self.num_classes, self.frames, self.size = num_classes, frames, size

    def extract(self, videos: torch.Tensor, layers: Sequence[str] = ("fc7", "fc8")) -> dict[str, torch.Tensor]:
        """The outputs of ``layers`` (of :data:`C3D_LAYERS`) from one pass, as tgan2's ``extract``."""
        bad = [name for name in layers if name not in C3D_LAYERS]
        if bad:
            raise ValueError(f"layers must be among {C3D_LAYERS}, got {bad}")
        out: dict[str, torch.Tensor] = {}
        x = preprocess_c3d(videos, self.mean, self.size)
        for name in _CONVS:
            x = F.relu(getattr(self, name)(x))
            if name in _POOL_AFTER:
                k = _POOL_AFTER[name]
                x = F.max_pool3d(x, k, k, ceil_mode=True)
        out["fc6"] = x = F.relu(self.fc6(x.flatten(1)))
        if set(layers) - {"fc6"}:
            out["fc7"] = x = F.relu(self.fc7(x))
        if set(layers) - {"fc6", "fc7"}:
            out["fc8"] = x = self.fc8(x)
            out["prob"] = x.softmax(-1)
        return {name: out[name] for name in layers}

    def forward(self, videos: torch.Tensor, layer: str = "fc8") -> torch.Tensor:
        if layer not in C3D_LAYERS:
            raise ValueError(f"layer must be one of {C3D_LAYERS}, got {layer!r}")
        return self.extract(videos, (layer,))[layer]

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        """``fc7`` after ReLU, ``(B, 4096)``: the FID features of tgan2."""
        return self(videos, "fc7")

    def logits(self, videos: torch.Tensor) -> torch.Tensor:
        """``fc8``, ``(B, 101)``: softmax of these is the IS classifier of tgan2."""
        return self(videos, "fc8")

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu", **kwargs) -> "C3D":
        """A :class:`C3D` with weights (and ``mean``) from a local ``.safetensors``/``.pt`` state
        dict in the layout of the module docstring. Raises
        :class:`~vdm_lite.metrics.weights.WeightsMismatch` naming missing, unexpected and
        mis-shaped keys (e.g. a Chainer npz that was not converted, or a Sports-1M C3D)."""
        state = read_state_dict(path)
        model = cls(**kwargs)  # 101 classes unless told: a 487-class Sports-1M C3D is rejected, not loaded
        load_checked(model, state, source=f"the C3D weights in {path}")
        return model.to(device).eval()


def c3d_layout(**kwargs) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of the state dict :meth:`C3D.from_file` expects (built on the meta device)."""
    with torch.device("meta"):
        model = C3D(**kwargs)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def convert_tgan2_c3d(npz_path: str | os.PathLike, mean_path: str | os.PathLike, out_path: str | os.PathLike,
                      crop: int = 8, size: int = C3D_SIZE) -> Path:
    """Convert tgan2's Chainer weights (``conv3d_deepnetA_ucf.npz``: ``conv1a/W``, ``conv1a/b``,
    ..., ``fc8/b``) and its mean clip (``mean2.npz``, key ``mean``, cropped
    ``[:, :, crop:crop + 112, crop:crop + 112]`` as tgan2 does) into one ``.safetensors``
    state dict for :meth:`C3D.from_file`. Needs NumPy only."""
    from safetensors.torch import save_file

    weights = np.load(npz_path)
    state = {}
    for name in (*_CONVS, "fc6", "fc7", "fc8"):
        for src, dst in (("W", "weight"), ("b", "bias")):
            key = next((k for k in (f"{name}/{src}", f"predictor/{name}/{src}") if k in weights.files), None)
            if key is None:
                raise KeyError(f"{npz_path}: no {name}/{src} (keys: {', '.join(weights.files[:8])}, ...)")
            state[f"{name}.{dst}"] = torch.from_numpy(np.array(weights[key], dtype=np.float32))
    mean = np.load(mean_path)
    mean = mean["mean"] if hasattr(mean, "files") else mean
    mean = np.asarray(mean, dtype=np.float32)
    while mean.ndim > 4 and mean.shape[0] == 1:
        mean = mean[0]
    if mean.shape[-2:] != (size, size):
        mean = mean[..., crop : crop + size, crop : crop + size]
    if mean.shape[-2:] != (size, size):
        raise ValueError(f"{mean_path}: the mean clip {mean.shape} cannot be cropped to {size}x{size} at offset {crop}")
    state["mean"] = torch.from_numpy(np.ascontiguousarray(mean))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_path))
    return out_path


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m vdm_lite.metrics.c3d",
                                description="Convert tgan2's conv3d_deepnetA_ucf.npz and mean2.npz to a C3D state dict.")
    p.add_argument("npz")
    p.add_argument("mean")
    p.add_argument("out")
    a = p.parse_args(argv)
    out = convert_tgan2_c3d(a.npz, a.mean, a.out)
    C3D.from_file(out)  # checks the layout
    print(f"wrote {out}")


if __name__ == "__main__":
    _main()
