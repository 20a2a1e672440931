"""Checkpoints that lose nothing: atomic writes, safe loads, shareable weights.

* :func:`atomic_save` writes ``torch.save`` output to a temporary file in the same folder,
  flushes it to disk, then renames it over the target: a crash mid-write leaves the last
  good checkpoint untouched.
* :func:`load_state` reads it back with ``weights_only=True`` (no arbitrary code runs).
* :func:`save_weights` / :func:`load_weights` export and import plain weights as
  safetensors, with the model config stored in the file's metadata.
* :func:`input_kind` tells from a path's suffix and first bytes what it holds (a run
  directory, a checkpoint, safetensors weights, a video), so that a command can refuse the
  wrong kind of file before it tries to load it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_save", "load_state", "save_weights", "load_weights", "CheckpointMismatch", "check_compatible",
           "input_kind", "describe_kind", "RUN_FILES"]

RUN_FILES = ("checkpoint.pt", "ema.safetensors", "model.safetensors")  # any one makes a folder a run directory


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


def input_kind(path: str | os.PathLike) -> str:
    """What ``path`` holds, judged by its suffix and first bytes without loading it:
    ``"run"`` (a folder with one of :data:`RUN_FILES`), ``"folder"`` (any other folder),
    ``"checkpoint"`` (a ``torch.save`` file: zip, or pickle protocol 2), ``"safetensors"``, ``"video"``
    (a video suffix or signature) or ``"other"``. Raises ``FileNotFoundError`` if nothing is there."""
    path = Path(path)
    if path.is_dir():
        return "run" if any((path / name).is_file() for name in RUN_FILES) else "folder"
    if not path.is_file():
        raise FileNotFoundError(f"no such file or folder: {path}")
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith((b"PK\x03\x04", b"\x80\x02")):  # torch.save's zip, or its legacy pickle (protocol 2)
        return "checkpoint"
    if len(head) > 8 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 100_000_000:
        return "safetensors"  # an 8-byte little-endian header length (at most 100 MB), then the JSON header
    from .datasets.video import VIDEO_EXTENSIONS

    if path.suffix.lower() in VIDEO_EXTENSIONS or head[4:8] == b"ftyp" or head.startswith((b"GIF8", b"\x1a\x45\xdf\xa3", b"RIFF")):
        return "video"
    return "other"


def describe_kind(kind: str) -> str:
    """A phrase for an :func:`input_kind`, for error messages."""
    return {"run": "a run directory", "folder": "a folder without a run (no checkpoint.pt or *.safetensors)",
            "checkpoint": "a torch checkpoint", "safetensors": "a safetensors weights file", "video": "a video file",
            "other": "an unknown kind of file (no checkpoint, safetensors or video signature)"}[kind]  # fmt: skip


def load_state(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a training state written by :func:`atomic_save` with ``weights_only=True``
    (a ``ValueError`` names any other kind of file, without trying to unpickle it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    kind = input_kind(path)
    if kind != "checkpoint":
        raise ValueError(f"{path} is {describe_kind(kind)}, not a checkpoint.pt (a zip or pickle file written by torch.save)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated or foreign files
        if "weights only" in str(e).lower():  # torch's advice to unpickle it unsafely does not apply
            raise ValueError(f"{path} holds Python objects besides tensors, so vdm_lite did not write it; "
                             "give a checkpoint.pt of a vdm_lite run") from e  # fmt: skip
        raise ValueError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); is the file complete?") from e


def steps_in_all(meta: dict | None) -> int:
    """The training steps weights have had in all, from their config metadata (a safetensors
    file's, or a training state's): the run's own ``step`` plus the ``steps_before`` of the weights
    it was fine-tuned from (``init_from``)."""
    meta = meta or {}
    return int(meta.get("step", 0)) + int(meta.get("steps_before", 0))


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
    kind = input_kind(path)
    if kind != "safetensors":
        raise ValueError(f"{path} is {describe_kind(kind)}, not a .safetensors weights file")
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
