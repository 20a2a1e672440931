"""BAIR robot pushing (Ebert et al. 2017), the video-prediction data of Table 2, read offline.

The standard release, ``bair_robot_pushing_dataset_v0.tar``, unpacks to
``softmotion30_44k/{train,test}/traj_<a>_to_<b>.tfrecords``: 43,264 training and 256 test
trajectories of 30 frames at 64 x 64. Each record is one ``tf.train.Example`` (read here by
the TensorFlow-free reader of :mod:`vdm_lite.datasets.tfrecord`) whose features, for each
frame ``i`` in ``0 .. 29``, are::

    "{i}/image_aux1/encoded"   bytes: raw uint8 pixels, 64 x 64 x 3 (RGB, row-major), NOT PNG/JPEG
    "{i}/image_main/encoded"   bytes: the same for the second camera
    "{i}/action"               4 floats
    "{i}/endeffector_pos"      3 floats

**Which loaders this follows** (checked against their source): ``tensorflow_datasets``
(``tensorflow_datasets/video/bair_robot_pushing.py``: the four keys above, images decoded
with ``np.frombuffer(...).reshape(64, 64, 3)``, ``action`` of 4 and ``endeffector_pos`` of 3
floats, read as a ``SequenceExample``'s context, i.e. the same field 1 as an ``Example``'s
features); SVG's ``data/convert_bair.py`` (Denton & Fergus 2018: ``"{i}/image_aux1/encoded"``
decoded with ``Image.frombytes('RGB', (64, 64), ...)``), which the video-prediction papers
after it use; and SAVP's ``video_prediction/datasets/softmotion_dataset.py`` (Lee et al.
2018: raw images, ``jpeg_encoding = False``; of the two versions of that file seen, one reads
``image_main`` and the other ``image_aux1`` for ``softmotion30_44k``). The default camera here
is ``aux1``, the one SVG's converter reads; ``camera="main"`` reads the other one. PNG- or JPEG-encoded image bytes,
which some re-exports use, are decoded too (with Pillow).

**Order**: files sorted by the trajectory number in their name (``traj_256_to_511`` after
``traj_0_to_255``; other names alphabetically), records in file order. The 256 test videos
are ``softmotion30_44k/test`` in that order.

**Other forms** people keep BAIR in, read by the same class:

* a ``.npy`` file of ``uint8`` ``(N, T, 64, 64, 3)`` (memory-mapped);
* an HDF5 file (needs ``h5py``): a dataset of ``uint8`` ``(N, T, 64, 64, 3)`` named ``key`` (default:
  the first of ``videos``, ``video``, ``frames``, ``images``, ``data``, or the only dataset), or
  VideoGPT's ``bair.hdf5`` layout: ``{split}_data`` ``(total frames, 64, 64, 3)`` with the
  first frame of each video in ``{split}_idx``.

Errors name the file and, for TFRecords, the record index: a bad CRC, a truncated file, a
missing feature key, an image of the wrong size (:class:`~vdm_lite.datasets.tfrecord.TFRecordError`,
a :class:`~vdm_lite.datasets.VideoReadError`).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F

from .tfrecord import TFRecordError, encode_example, index_tfrecord, parse_example, read_record, write_tfrecord
from .video import VideoReadError

__all__ = ["BAIR_FRAMES", "BAIR_SIZE", "BAIR_CAMERAS", "BAIRPushing", "bair_example", "write_bair_tfrecord", "bair_key"]

BAIR_FRAMES = 30
BAIR_SIZE = 64
BAIR_CAMERAS = ("aux1", "main")
_HDF5_KEYS = ("videos", "video", "frames", "images", "data")
_TFRECORD_SUFFIXES = (".tfrecords", ".tfrecord")


def bair_key(frame: int, what: str = "aux1") -> str:
    """The feature key of frame ``frame``: ``what`` = ``"aux1"`` / ``"main"`` (the image of
    that camera), ``"action"`` or ``"endeffector_pos"``."""
    if what in BAIR_CAMERAS:
        return f"{frame}/image_{what}/encoded"
    if what in ("action", "endeffector_pos"):
        return f"{frame}/{what}"
    raise ValueError(f"unknown BAIR feature {what!r}")


def bair_example(aux1: np.ndarray, main: np.ndarray | None = None, action: np.ndarray | None = None,
                 endeffector_pos: np.ndarray | None = None) -> bytes:
    """One serialized record in the ``softmotion30_44k`` layout: ``aux1`` (and ``main``)
    ``uint8 (T, 64, 64, 3)`` stored as raw bytes, ``action`` ``(T, 4)`` and
    ``endeffector_pos`` ``(T, 3)`` floats (zeros when not given). For tests and for writing
    your own data in the standard layout."""
    aux1 = np.asarray(aux1)
    if aux1.dtype != np.uint8 or aux1.ndim != 4 or aux1.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {aux1.dtype} {aux1.shape}")
    t = aux1.shape[0]
    main = aux1 if main is None else np.asarray(main, dtype=np.uint8)
    action = np.zeros((t, 4), np.float32) if action is None else np.asarray(action, np.float32)
    endeffector_pos = np.zeros((t, 3), np.float32) if endeffector_pos is None else np.asarray(endeffector_pos, np.float32)
    feats: dict[str, object] = {}
    for i in range(t):
        feats[bair_key(i, "action")] = action[i]
        feats[bair_key(i, "endeffector_pos")] = endeffector_pos[i]
        feats[bair_key(i, "aux1")] = np.ascontiguousarray(aux1[i]).tobytes()
        feats[bair_key(i, "main")] = np.ascontiguousarray(main[i]).tobytes()
    return encode_example(feats)


def write_bair_tfrecord(path: str | os.PathLike, videos: np.ndarray, **kwargs) -> Path:
    """Write ``videos`` ``uint8 (N, T, 64, 64, 3)`` as one TFRecord file of the BAIR layout
    (one record per video, the same frames for both cameras unless ``main=`` is given as
    ``(N, T, 64, 64, 3)``; ``action=``/``endeffector_pos=`` as ``(N, T, 4)`` / ``(N, T, 3)``)."""
    videos = np.asarray(videos)
    per = {k: np.asarray(v) for k, v in kwargs.items()}
    return write_tfrecord(path, (bair_example(v, **{k: a[n] for k, a in per.items()}) for n, v in enumerate(videos)))


def _traj_order(p: Path):
    m = re.search(r"traj_(\d+)_to_(\d+)", p.name)
    return (0, int(m.group(1)), p.name) if m else (1, 0, p.name)


def _decode_image(data: bytes, size: int, where: str) -> np.ndarray:
    if len(data) == size * size * 3:
        return np.frombuffer(data, dtype=np.uint8).reshape(size, size, 3)
    if data[:8] == b"\x89PNG\r\n\x1a\n" or data[:2] == b"\xff\xd8":
        from PIL import Image

        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        if img.shape != (size, size, 3):
            raise TFRecordError(f"{where}: an encoded image of {img.shape[1]}x{img.shape[0]}, expected {size}x{size}")
        return img
    raise TFRecordError(f"{where}: {len(data)} bytes are neither raw {size}x{size}x3 uint8 ({size * size * 3} bytes) "
                        "nor a PNG/JPEG image")  # fmt: skip


def _check_array(arr, path, what: str) -> None:
    if arr.ndim != 5 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise VideoReadError(f"{path}: {what} must be uint8 of shape (N, T, H, W, 3) such as BAIR's (N, 30, 64, 64, 3), "
                             f"got {arr.dtype} of shape {tuple(arr.shape)}")  # fmt: skip


class BAIRPushing(torch.utils.data.Dataset):
    """BAIR robot pushing clips from the TFRecords (or a ``.npy``/``.hdf5`` copy).

    Args:
        path: ``softmotion30_44k`` (or the folder holding it, or its ``train``/``test``
            folder), one ``.tfrecords`` file, a ``.npy`` file or an ``.hdf5``/``.h5`` file.
        split: ``"test"`` (the 256 test videos) or ``"train"``: the subfolder of a folder, or
            the ``{split}_data`` datasets of a VideoGPT-style HDF5 file.
        frames, start: frames ``start .. start + frames - 1`` of each 30-frame video (Table 2
            takes the first 16: one given, 15 predicted).
        camera: ``"aux1"`` (default, see the module docstring) or ``"main"`` (TFRecords only).
        resolution: resize to ``R x R`` (bilinear, antialiased); ``None`` keeps 64.
        with_state: also return ``action`` ``(T, 4)`` and ``endeffector_pos`` ``(T, 3)``
            (TFRecords only).
        verify: check each record's data CRC (the header CRCs are always checked). The pure-
            Python CRC costs about 0.1 s per record; ``pip install crc32c`` makes it free.
        key: the HDF5 dataset name.
        image_size: the side of the stored images (64).

    Item: ``video`` ``(3, T, R, R)`` float32 in ``[-1, 1]``, ``index``, ``path`` (the file) and
    for TFRecords ``record`` (its index in the file).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        split: str = "test",
        frames: int = BAIR_FRAMES,
        start: int = 0,
        camera: str = "aux1",
        resolution: int | None = None,
        with_state: bool = False,
        verify: bool = True,
        key: str | None = None,
        image_size: int = BAIR_SIZE,
    ):
        if camera not in BAIR_CAMERAS:
            raise ValueError(f"camera must be one of {BAIR_CAMERAS}, got {camera!r}")
        if frames < 1 or start < 0:
            raise ValueError(f"need frames >= 1 and start >= 0, got {frames} and {start}")
        self.path, self.split, self.frames, self.start = Path(path), split, int(frames), int(start)
        self.camera, self.resolution, self.with_state, self.verify = camera, resolution, with_state, verify
        self.image_size = int(image_size)
        self.kind, self.files = self._find(self.path, split)
        self.records: list[tuple[int, int, int, int]] = []  # (file, record, offset, length)
        self._array = None
        self._ranges: list[tuple[int, int]] | None = None
        if self.kind == "tfrecord":
            for fi, f in enumerate(self.files):
                self.records += [(fi, ri, off, n) for ri, (off, n) in enumerate(index_tfrecord(f))]
            self._length = len(self.records)
        elif self.kind == "npy":
            try:
                self._array = np.load(self.files[0], mmap_mode="r")
            except Exception as exc:
                raise VideoReadError(f"{self.files[0]}: cannot read as a .npy array ({type(exc).__name__}: {exc})") from exc
            _check_array(self._array, self.files[0], "the array")
            self._length = self._array.shape[0]
            self._seq_len = self._array.shape[1]
        else:
            self._open_hdf5(key)
        if self.kind != "tfrecord" and self.start + self.frames > self._seq_len:
            raise VideoReadError(f"{self.files[0]}: videos have {self._seq_len} frames; frames {self.start}.."
                                 f"{self.start + self.frames - 1} were asked for")  # fmt: skip
        if self.kind != "tfrecord" and with_state:
            raise ValueError(f"{self.files[0]}: with_state needs the TFRecords (a {self.kind} file holds frames only)")

    # -- finding and opening ------------------------------------------------------------
    @staticmethod
    def _find(path: Path, split: str) -> tuple[str, list[Path]]:
        if path.is_file():
            suffix = path.suffix.lower()
            if suffix in _TFRECORD_SUFFIXES:
                return "tfrecord", [path]
            if suffix == ".npy":
                return "npy", [path]
            if suffix in (".h5", ".hdf5"):
                return "hdf5", [path]
            raise VideoReadError(f"{path}: not a BAIR file (.tfrecords, .npy, .hdf5 or .h5)")
        if not path.is_dir():
            raise FileNotFoundError(f"no BAIR data at {path}")
        tried = []
        for d in (path / "softmotion30_44k" / split, path / split, path):
            tried.append(str(d))
            if d.is_dir():
                files = sorted((p for p in d.iterdir() if p.suffix.lower() in _TFRECORD_SUFFIXES), key=_traj_order)
                if files:
                    return "tfrecord", files
        for name in (f"{split}.npy", f"{split}.hdf5", f"{split}.h5", "bair.hdf5"):
            if (path / name).is_file():
                return BAIRPushing._find(path / name, split)
        raise FileNotFoundError(f"no .tfrecords files in {', '.join(tried)}, nor {split}.npy / {split}.hdf5 in {path}")

    def _open_hdf5(self, key: str | None) -> None:
        try:
            import h5py
        except ImportError as exc:
            raise ImportError("reading BAIR from HDF5 needs h5py: pip install h5py") from exc
        path = self.files[0]
        try:
            f = h5py.File(path, "r")
        except Exception as exc:
            raise VideoReadError(f"{path}: cannot open as HDF5 ({type(exc).__name__}: {exc})") from exc
        self._h5 = f
        if key is None and f"{self.split}_data" in f and f"{self.split}_idx" in f:  # VideoGPT's bair.hdf5
            data, starts = f[f"{self.split}_data"], np.asarray(f[f"{self.split}_idx"], dtype=np.int64)
            if data.ndim != 4 or data.shape[-1] != 3 or data.dtype != np.uint8:
                raise VideoReadError(f"{path}: {self.split}_data must be uint8 (frames, H, W, 3), got {data.dtype} {data.shape}")
            ends = np.append(starts[1:], data.shape[0])
            self._array, self._ranges = data, list(zip(starts.tolist(), ends.tolist()))
            self._length = len(starts)
            self._seq_len = int((ends - starts).min()) if len(starts) else 0
            return
        names = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
        if key is None:
            key = next((k for k in _HDF5_KEYS if k in names), names[0] if len(names) == 1 else None)
            if key is None:
                raise VideoReadError(f"{path}: which dataset holds the videos? give key= (datasets: {', '.join(names) or 'none'})")
        if key not in f:
            raise VideoReadError(f"{path}: no dataset {key!r} (datasets: {', '.join(names) or 'none'})")
        self._array = f[key]
        _check_array(self._array, path, f"dataset {key!r}")
        self._length, self._seq_len = self._array.shape[0], self._array.shape[1]

    def __getstate__(self):  # DataLoader workers reopen the HDF5 file
        state = dict(self.__dict__)
        if "_h5" in state:
            state.pop("_h5")
            state["_array"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.kind == "hdf5" and self._array is None:
            self._open_hdf5(None)

    # -- items ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._length

    def frames_of(self, index: int) -> tuple[np.ndarray, dict]:
        """``uint8 (T, 64, 64, 3)`` frames of video ``index`` and its extra fields."""
        extra: dict = {}
        if self.kind == "tfrecord":
            fi, ri, off, n = self.records[index]
            path = self.files[fi]
            where = f"{path}: record {ri}"
            with open(path, "rb") as f:
                data = read_record(f, off, n, verify=self.verify, path=path, index=ri)
            try:
                feats = parse_example(data)
            except ValueError as exc:
                raise TFRecordError(f"{where}: {exc}") from None
            stop = self.start + self.frames
            frames = []
            for i in range(self.start, stop):
                k = bair_key(i, self.camera)
                value = feats.get(k)
                if not isinstance(value, list) or not value:
                    shown = ", ".join(sorted(feats)[:6])
                    raise TFRecordError(f"{where}: no image feature {k!r} (a {len(feats)}-key record: {shown}, ...); "
                                        f"frames {self.start}..{stop - 1} of camera {self.camera!r} were asked for")  # fmt: skip
                frames.append(_decode_image(value[0], self.image_size, f"{where}, {k}"))
            if self.with_state:
                for what, dim in (("action", 4), ("endeffector_pos", 3)):
                    rows = [feats.get(bair_key(i, what)) for i in range(self.start, stop)]
                    if any(not isinstance(r, np.ndarray) or r.shape != (dim,) for r in rows):
                        raise TFRecordError(f"{where}: '{{i}}/{what}' must hold {dim} floats per frame")
                    extra[what] = torch.from_numpy(np.stack(rows).astype(np.float32))
            extra.update(path=str(path), record=ri)
            return np.stack(frames), extra
        if self._ranges is not None:
            s, _ = self._ranges[index]
            arr = np.array(self._array[s + self.start : s + self.start + self.frames])
        else:
            arr = np.array(self._array[index, self.start : self.start + self.frames])  # a copy of the memory map
        return arr, {"path": str(self.files[0])}

    def __getitem__(self, index: int) -> dict:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        frames, extra = self.frames_of(index)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(torch.float32)  # (T, 3, H, W)
        if self.resolution is not None and x.shape[-1] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False, antialias=True)
        video = (x / 127.5 - 1.0).clamp(-1, 1).permute(1, 0, 2, 3).contiguous()
        return {"video": video, "index": index, **extra}

    def __repr__(self) -> str:
        return (f"BAIRPushing(path={str(self.path)!r}, kind={self.kind}, videos={len(self)}, frames={self.frames}, "
                f"start={self.start}, camera={self.camera!r})")  # fmt: skip

