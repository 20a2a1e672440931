"""Local weights for the metric networks: read a state dict from a file, check it by name.

Nothing here downloads anything: the I3D and InceptionV3 weights are files the user obtained
once and points to (see :mod:`vdm_lite.metrics.i3d` and :mod:`vdm_lite.metrics.inception`
for where they come from). A state dict that does not fit the network fails with an error
naming the missing, unexpected and mis-shaped keys, instead of a silently half-loaded net.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch
from torch import nn

__all__ = ["WeightsMismatch", "is_torchscript", "read_state_dict", "load_checked"]

_WRAPPERS = ("state_dict", "model_state_dict", "model", "net")
_IGNORED_SUFFIXES = ("num_batches_tracked",)  # BatchNorm counters: absent from older files
_SHOW = 8


class WeightsMismatch(ValueError):
    """A weights file does not match the network's layout."""


def is_torchscript(path: str | os.PathLike) -> bool:
    """True for a TorchScript archive (``torch.jit.save``), which holds code as well as weights."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(name.endswith("constants.pkl") or "/code/" in name for name in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a ``torch.save`` file (``.pt``/``.pth``),
    loaded on the CPU with ``weights_only=True``. A checkpoint dict wrapping the weights under
    ``"state_dict"``/``"model"`` is unwrapped and a DataParallel ``"module."`` prefix dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        if is_torchscript(path):
            raise WeightsMismatch(f"{path} is a TorchScript archive, not a state dict")
        state = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(state, dict):
        inner = [k for k in _WRAPPERS if isinstance(state.get(k), dict)]
        if not inner or all(isinstance(v, torch.Tensor) for v in state.values()):
            break
        state = state[inner[0]]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsMismatch(f"{path} does not hold a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return shown + (f", ... ({len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")


def load_checked(module: nn.Module, state: dict[str, torch.Tensor], source: str = "the weights") -> nn.Module:
    """Load ``state`` into ``module`` after checking every key and shape; raise
    :class:`WeightsMismatch` naming the missing, unexpected and mis-shaped keys otherwise."""

    def keep(k: str) -> bool:
        return not k.endswith(_IGNORED_SUFFIXES)

    expected = {k: v.shape for k, v in module.state_dict().items() if keep(k)}
    given = {k: v for k, v in state.items() if keep(k)}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(
        f"{k} {tuple(given[k].shape)} != {tuple(expected[k])}"
        for k in set(expected) & set(given)
        if tuple(given[k].shape) != tuple(expected[k])
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_listing(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} keys of the wrong shape: {_listing(shapes)}")
    if problems:
        raise WeightsMismatch(f"{source} do not match {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state, strict=False)  # strict on everything but BatchNorm counters
    return module
