"""Real videos: a folder of video files (UCF101 layout) and the Moving MNIST ``.npy`` file.

The paper's data (Section 4: UCF101, BAIR, Kinetics-600) are folders of video files.
:class:`VideoFolder` reads any folder of ``mp4 / avi / webm / gif / mkv / mov`` files with
PyAV (FFmpeg inside the wheel; ``pip install av`` or the ``vdm_lite[video]`` extra) and
returns clips of ``T`` frames, one frame every ``frame_skip``, resized (shorter side) and
center-cropped to a square resolution:

* **Classes**: the first folder below ``root`` is the class (``root/Biking/v_x.avi``);
  ``classInd.txt`` (``"1 ApplyEyeMakeup"`` per line, 1-based as in UCF101) fixes the order
  when present, else classes are the sorted folder names. ``label`` is 0-based.
* **Splits** (UCF101): ``split="train"`` / ``"test"`` reads ``trainlist0{fold}.txt`` /
  ``testlist0{fold}.txt`` (paths relative to ``root``, an optional label after them) from
  ``splits_dir``, ``root`` or ``root/ucfTrainTestlist``; ``split=None`` takes every file.
* **Errors**: an unreadable file (not a video, no video stream, decoding fails) or one with
  too few frames for a clip raises :class:`VideoReadError` naming the file and the problem
  (``on_error="raise"``, the default), or is skipped with a warning that counts the skipped
  files (``on_error="skip"``: the next file is returned instead; ``dataset.skipped`` maps
  each skipped file to its problem, ``dataset.num_skipped`` counts them).
  ``scan()`` (or ``scan=True``) checks every file up front.

:class:`MovingMNIST` reads the standard test file ``mnist_test_seq.npy``: ``uint8``
of shape ``(20, 10000, 64, 64)``, frames first.

Tour: ``notebooks/05_datasets.ipynb``.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ._common import item_generator

__all__ = [
    "VideoFolder",
    "MovingMNIST",
    "VideoReadError",
    "read_video",
    "resize_center_crop",
    "VIDEO_EXTENSIONS",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".gif", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")


class VideoReadError(RuntimeError):
    """A video file could not be used; the message names the file and the problem."""


def _import_av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is installed in dev
        raise ImportError("reading video files needs PyAV: pip install av (or 'vdm_lite[video]')") from exc
    return av


def read_video(
    path,
    num_frames: int | None = None,
    frame_skip: int = 1,
    start: int | float | None = 0,
) -> tuple[np.ndarray, dict]:
    """Decode frames of a video file with PyAV.

    Args:
        path: the file.
        num_frames: frames to return; ``None`` = all (from ``start``, every ``frame_skip``).
        frame_skip: keep one frame every ``frame_skip``.
        start: first frame (int), or a float ``u`` in ``[0, 1)``: the clip starts at
            ``floor(u * (n - span + 1))`` for a file of ``n`` frames, ``span = (num_frames -
            1) * frame_skip + 1`` (a uniformly random clip for a uniform ``u``).
    Returns:
        ``frames`` ``(T, H, W, 3)`` uint8 RGB, and ``info`` (``frames`` = frame count of
        the file as far as decoded, ``start``, ``fps``).
    Raises:
        VideoReadError: naming the file: not a video, no video stream, a decoding error,
        or too few frames for the clip.
    """
    av = _import_av()
    path = str(path)
    if frame_skip < 1:
        raise ValueError("frame_skip must be >= 1")
    try:
        container = av.open(path)
    except Exception as exc:  # av.error.FFmpegError, OSError, ...
        raise VideoReadError(f"{path}: cannot open as a video ({type(exc).__name__}: {exc})") from exc
    try:
        if not container.streams.video:
            raise VideoReadError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else float("nan")
        known = int(stream.frames or 0)  # container metadata; 0 when unknown (gif, webm)
        span = None if num_frames is None else (num_frames - 1) * frame_skip + 1

        def first_frame(total: int) -> int:
            if span is None:
                return int(start or 0)
            if isinstance(start, float):
                return int(np.floor(start * (total - span + 1)))
            return int(start or 0)

        stop = None
        if span is not None and known >= span:
            stop = first_frame(known) + span  # decode no further than needed
        decoded = []
        try:
            for i, frame in enumerate(container.decode(stream)):
                decoded.append(frame)
                if stop is not None and i + 1 >= stop:
                    break
        except VideoReadError:
            raise
        except Exception as exc:
            if not decoded:
                raise VideoReadError(f"{path}: cannot decode ({type(exc).__name__}: {exc})") from exc
            # a broken tail: keep what decoded, like most players do
        n = len(decoded)
        total = n if stop is None or n < stop else known
        if n == 0:
            raise VideoReadError(f"{path}: no frame could be decoded")
        if span is not None and total < span:
            raise VideoReadError(
                f"{path}: too short: {total} frames, a clip of {num_frames} frames with "
                f"frame_skip={frame_skip} needs {span}"
            )
        s = first_frame(total)
        if span is None:
            idx = list(range(s, n, frame_skip))
        else:
            if s + span > n:  # container metadata was wrong: pick the start again
                s = first_frame(n)
            if s < 0 or s + span > n:
                raise VideoReadError(f"{path}: too short: {n} frames, a clip of {span} frames cannot start at frame {s}")
            idx = list(range(s, s + span, frame_skip))
        frames = np.stack([decoded[i].to_ndarray(format="rgb24") for i in idx])
    finally:
        container.close()
    return frames, {"frames": total, "start": s, "fps": fps}


def resize_center_crop(frames: torch.Tensor, resolution: int) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(3, T, R, R)`` float in ``[-1, 1]``: resize the shorter
    side to ``R`` (bilinear, antialiased) and crop the center square."""
    x = frames.permute(0, 3, 1, 2).to(torch.float32)  # (T, 3, H, W)
    h, w = x.shape[-2:]
    scale = resolution / min(h, w)
    nh, nw = max(resolution, round(h * scale)), max(resolution, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (nh - resolution) // 2, (nw - resolution) // 2
    x = x[:, :, top : top + resolution, left : left + resolution]
    return (x / 127.5 - 1.0).clamp(-1, 1).permute(1, 0, 2, 3).contiguous()


def _humanize(name: str) -> str:
    """``"ApplyEyeMakeup" -> "apply eye makeup"``, ``"jumping_jack" -> "jumping jack"``."""
    name = name.replace("_", " ").replace("-", " ")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return " ".join(name.lower().split())


class VideoFolder(torch.utils.data.Dataset):
    """Clips from a folder of video files (module docstring: layout, splits, errors).

    Args:
        root: the folder.
        frames, frame_skip: clip length ``T`` and stride (in frames of the file).
        resolution: output side ``R``; frames are resized and center-cropped to ``R x R``.
        split: ``None`` (every file under ``root``), ``"train"`` or ``"test"`` (UCF101 lists).
        fold: which UCF101 split list (1, 2 or 3).
        splits_dir: where the lists and ``classInd.txt`` are (default: ``root``, then
            ``root/ucfTrainTestlist``).
        clip: ``"random"`` (start uniform over the file, a pure function of ``(seed, epoch,
            index)``; call :meth:`set_epoch` for new clips), ``"first"`` or ``"center"``.
        on_error: ``"raise"`` or ``"skip"`` (module docstring).
        scan: check every file at construction (decodes each one).
        extensions: file endings taken when listing the folder.
        files: instead of listing the folder or reading a split list, exactly these files
            (paths relative to ``root``), in this order; each may be a ``(path, label)`` pair
            (a 0-based class index), else the label comes from the first folder as usual.
            Missing files raise ``FileNotFoundError`` (``on_error="skip"``: skipped, counted).
            Used by :class:`~vdm_lite.datasets.UCF101` and :class:`~vdm_lite.datasets.Kinetics600`.
        classes: the class names in label order (default: ``classInd.txt`` or the folders).

    Item::

        video    (3, T, R, R) float32 in [-1, 1]
        label    () long, 0-based class index (-1 for files directly in root)
        caption  str, the class name in words ("apply eye makeup")
        path     str, relative to root
        start    int, first frame of the clip in the file
        fps      float, frame rate of the file

    Skipping with ``num_workers > 0``: each worker process keeps its own ``skipped``; call
    :meth:`scan` once in the main process for one global count.
    """

    def __init__(
        self,
        root,
        frames: int = 16,
        resolution: int = 64,
        frame_skip: int = 1,
        split: str | None = None,
        fold: int = 1,
        splits_dir=None,
        clip: str = "random",
        on_error: str = "raise",
        scan: bool = False,
        extensions=VIDEO_EXTENSIONS,
        seed: int = 0,
        files=None,
        classes=None,
    ):
        self.root = Path(root)
        self.frames, self.resolution, self.frame_skip = int(frames), int(resolution), int(frame_skip)
        self.split, self.fold, self.clip, self.on_error = split, int(fold), clip, on_error
        self.extensions = tuple(e.lower() for e in extensions)
        self.seed, self.epoch = int(seed), 0
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if clip not in ("random", "first", "center"):
            raise ValueError(f"clip must be 'random', 'first' or 'center', got {clip!r}")
        if split not in (None, "train", "test"):
            raise ValueError(f"split must be None, 'train' or 'test', got {split!r}")
        if files is not None and split is not None:
            raise ValueError("give split (the UCF101 lists) or files, not both")
        if not self.root.is_dir():
            raise FileNotFoundError(f"video folder {self.root} does not exist")
        dirs = [Path(splits_dir)] if splits_dir is not None else [self.root, self.root / "ucfTrainTestlist"]
        self._dirs = dirs
        self.skipped: dict[str, str] = {}

        class_file = self._find("classInd.txt") if classes is None else None
        if classes is not None:
            self.classes = [str(c) for c in classes]
        elif class_file is not None:
            self.classes = [line.split()[1] for line in class_file.read_text().splitlines() if line.strip()]
        else:
            self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name != "ucfTrainTestlist")
        lookup = {c.lower(): k for k, c in enumerate(self.classes)}

        given: dict[str, int] = {}  # labels given with files=
        if files is not None:
            rel, list_file = [], "the file list"
            for f in files:
                path, label = (f, None) if isinstance(f, (str, os.PathLike)) else (f[0], f[1])
                r = Path(path).as_posix()
                rel.append(r)
                if label is not None:
                    given[r] = int(label)
        elif split is None:
            rel = sorted(
                p.relative_to(self.root).as_posix()
                for p in self.root.rglob("*")
                if p.is_file() and p.suffix.lower() in self.extensions
            )
        else:
            name = f"{split}list{self.fold:02d}.txt"
            list_file = self._find(name)
            if list_file is None:
                raise FileNotFoundError(f"split list {name} not found in {', '.join(str(d) for d in dirs)}")
            rel = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
        if files is not None or split is not None:
            missing = [r for r in rel if not (self.root / r).is_file()]
            if missing:
                msg = f"{len(missing)} file(s) of {list_file} are missing under {self.root}, e.g. {missing[0]}"
                if on_error == "raise":
                    raise FileNotFoundError(msg)
                for r in missing:
                    self.skipped[r] = "missing"
                warnings.warn(f"VideoFolder: skipped {msg}", stacklevel=2)
                rel = [r for r in rel if r not in self.skipped]
        self.samples: list[tuple[str, int]] = []
        for r in rel:
            parts = Path(r).parts
            label = lookup.get(parts[0].lower(), -1) if len(parts) > 1 else -1
            self.samples.append((r, given.get(r, label)))
        if scan:
            self.scan()

    def _find(self, name: str) -> Path | None:
        for d in self._dirs:
            if (d / name).is_file():
                return d / name
        return None

    @property
    def num_skipped(self) -> int:
        """How many files were skipped so far (missing, unreadable or too short)."""
        return len(self.skipped)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Random clips are a pure function of ``(seed, epoch, index)``: a new epoch, new clips."""
        self.epoch = int(epoch)

    def _start(self, index: int):
        if self.clip == "first":
            return 0
        if self.clip == "center":
            return 0.5
        g = item_generator(self.seed, index, self.epoch)
        return float(torch.rand((), generator=g, dtype=torch.float64))

    def load(self, index: int) -> dict:
        """The item of ``index`` or :class:`VideoReadError` (no skipping)."""
        rel, label = self.samples[index]
        frames, info = read_video(self.root / rel, self.frames, self.frame_skip, start=self._start(index))
        video = resize_center_crop(torch.from_numpy(frames), self.resolution)
        name = self.classes[label] if label >= 0 else ""
        return {
            "video": video,
            "label": torch.tensor(label, dtype=torch.long),
            "caption": _humanize(name),
            "path": rel,
            "start": info["start"],
            "fps": info["fps"],
        }

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        for k in range(len(self)):
            i = (index + k) % len(self)
            rel = self.samples[i][0]
            if rel in self.skipped:
                continue
            try:
                return self.load(i)
            except VideoReadError as exc:
                if self.on_error == "raise":
                    raise
                self.skipped[rel] = str(exc)
                warnings.warn(f"VideoFolder: skipped {exc} ({self.num_skipped} file(s) skipped so far)", stacklevel=2)
        raise VideoReadError(f"every file of {self.root} was skipped ({self.num_skipped}): {self.skipped}")

    def scan(self) -> dict[str, str]:
        """Read every file once; bad ones raise (``on_error="raise"``) or are dropped from
        the dataset and counted (``"skip"``). Returns ``{path: problem}`` of this scan."""
        bad = {}
        for i, (rel, _) in enumerate(self.samples):
            try:
                self.load(i)
            except VideoReadError as exc:
                if self.on_error == "raise":
                    raise
                bad[rel] = str(exc)
        if bad:
            self.skipped.update(bad)
            self.samples = [s for s in self.samples if s[0] not in bad]
            warnings.warn(f"VideoFolder: skipped {len(bad)} file(s) of {self.root}: {', '.join(bad)}", stacklevel=2)
        return bad

    def __repr__(self) -> str:
        return (
            f"VideoFolder(root={str(self.root)!r}, files={len(self)}, classes={self.num_classes}, frames={self.frames}, "
            f"resolution={self.resolution}, frame_skip={self.frame_skip}, split={self.split!r}, skipped={self.num_skipped})"
        )


class MovingMNIST(torch.utils.data.Dataset):
    """The Moving MNIST file ``mnist_test_seq.npy`` (or any array of the same layout).

    Args:
        path: a ``.npy`` file holding ``uint8`` of shape ``(T, N, H, W)`` (frames first, the
            official layout: ``(20, 10000, 64, 64)``) or ``(N, T, H, W)`` with ``layout="NTHW"``.
        frames: clip length (``None`` = every frame of a sequence, 20).
        frame_skip: stride within a sequence.
        clip: ``"first"`` (frames from the start) or ``"random"`` (pure function of
            ``(seed, index)``).
        resolution: resize to ``R x R`` (``None`` keeps 64).
        channels: 1 (as stored) or 3 (gray repeated).

    Item: ``video`` ``(C, T, H, W)`` float32 in ``[-1, 1]``, ``index`` (the sequence),
    ``start`` (first frame). The file is memory-mapped, not loaded.
    """

    def __init__(
        self,
        path,
        frames: int | None = None,
        frame_skip: int = 1,
        clip: str = "first",
        resolution: int | None = None,
        channels: int = 1,
        layout: str = "TNHW",
        seed: int = 0,
    ):
        self.path = Path(path)
        if layout not in ("TNHW", "NTHW"):
            raise ValueError(f"layout must be 'TNHW' or 'NTHW', got {layout!r}")
        if clip not in ("first", "random"):
            raise ValueError(f"clip must be 'first' or 'random', got {clip!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        try:
            data = np.load(self.path, mmap_mode="r")
        except Exception as exc:
            raise VideoReadError(f"{self.path}: cannot read as a .npy array ({type(exc).__name__}: {exc})") from exc
        if data.ndim != 4 or data.dtype != np.uint8:
            raise VideoReadError(
                f"{self.path}: expected uint8 of shape (T, N, H, W) like mnist_test_seq.npy (20, 10000, 64, 64), "
                f"got {data.dtype} of shape {data.shape}"
            )
        self.data = data if layout == "TNHW" else data.transpose(1, 0, 2, 3)
        self.sequence_length = self.data.shape[0]
        self.frames = self.sequence_length if frames is None else int(frames)
        self.frame_skip, self.clip, self.seed = int(frame_skip), clip, int(seed)
        self.resolution, self.channels, self.layout = resolution, channels, layout
        span = (self.frames - 1) * self.frame_skip + 1
        if span > self.sequence_length:
            raise VideoReadError(
                f"{self.path}: sequences have {self.sequence_length} frames, a clip of {self.frames} frames "
                f"with frame_skip={self.frame_skip} needs {span}"
            )
        self.span = span

    def __len__(self) -> int:
        return self.data.shape[1]

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        start = 0
        if self.clip == "random":
            g = item_generator(self.seed, index)
            start = int(torch.randint(0, self.sequence_length - self.span + 1, (), generator=g))
        seq = np.asarray(self.data[start : start + self.span : self.frame_skip, index])  # (T, H, W)
        x = torch.from_numpy(seq.astype(np.float32))[:, None]  # (T, 1, H, W)
        if self.resolution is not None and x.shape[-1] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", antialias=True)
        video = (x / 127.5 - 1).clamp(-1, 1).permute(1, 0, 2, 3)
        if self.channels == 3:
            video = video.expand(3, -1, -1, -1)
        return {"video": video.contiguous(), "index": index, "start": start}
