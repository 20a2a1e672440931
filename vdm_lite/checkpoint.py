"""Checkpoints that lose nothing: atomic writes, safe loads, shareable weights.

* :func:`atomic_save` writes ``torch.save`` output to a temporary file in the same folder,
  flushes it to disk, then renames it over the target: a crash mid-write leaves the last
  good checkpoint untouched.
* :func:`load_state` reads it back with ``weights_only=True`` (no arbitrary code runs).
* :func:`save_weights` / :func:`load_weights` export and import plain weights as
  safetensors, with the model config stored in the file's metadata.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_save", "load_state", "save_weights", "load_weights", "CheckpointMismatch", "check_compatible"]


class CheckpointMismatch(ValueError):
    """A checkpoint was made for another configuration than the one asked for."""


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, atomically: the file at ``path`` is either the old one or the
    complete new one, never a partial write."""
    _atomic_write(Path(path), lambda f: torch.save(obj, f))


def load_state(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a training state written by :func:`atomic_save` with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated or foreign files
        raise ValueError(f"cannot read checkpoint {path}: {e}") from e


def save_weights(state_dict: dict[str, torch.Tensor], path: str | os.PathLike, config: dict | None = None) -> None:
    """Write weights as safetensors (atomically), the config as JSON metadata."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    meta = {"format": "pt"}
    if config is not None:
        meta["config"] = json.dumps(config, sort_keys=True)
    data = save(tensors, metadata=meta)
    _atomic_write(Path(path), lambda f: f.write(data))


def load_weights(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict | None]:
    """Read a safetensors file written by :func:`save_weights`: ``(state_dict, config or None)``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise ValueError(f"cannot read weights file {path}: {e}") from e
    cfg = json.loads(meta["config"]) if "config" in meta else None
    return tensors, cfg


def check_compatible(saved: dict, wanted: dict, what: str = "checkpoint", keys: list[str] | None = None) -> None:
    """Raise :class:`CheckpointMismatch` naming every field where two config dicts differ
    (restricted to ``keys`` if given; nested dicts compare as ``a.b``)."""

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
        return out

    fs, fw = flat(saved), flat(wanted)
    names = sorted(set(fs) | set(fw)) if keys is None else [k for k in sorted(set(fs) | set(fw)) if k.split(".")[0] in keys]
    diffs = [f"{k}: {what} has {fs.get(k, '<missing>')!r}, config asks for {fw.get(k, '<missing>')!r}" for k in names if fs.get(k) != fw.get(k)]
    if diffs:
        raise CheckpointMismatch(f"the {what} does not match the configuration:\n  " + "\n  ".join(diffs))
