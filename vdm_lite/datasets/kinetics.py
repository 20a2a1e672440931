"""Kinetics-600 (Carreira et al. 2018) from video files and the official CSV split files: the
data of Table 3.

The annotations are ``train.csv``, ``validate.csv`` (or ``val.csv``) and ``test.csv`` with the
header ``label,youtube_id,time_start,time_end,split`` (some releases add ``is_cc``; a test CSV
without labels is read too, every label then being -1). Each row is a 10-second clip that the
usual downloaders save as ``{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`` (any of
:data:`~vdm_lite.datasets.VIDEO_EXTENSIONS`), either in per-label folders
(``root/<label>/...``, spaces kept or turned into underscores) or flat (``root/...``), or under
``root/<split>/``. The files are found by name anywhere below ``root``.

:class:`Kinetics600` yields the rows of one CSV in its order, as a
:class:`~vdm_lite.datasets.VideoFolder` of those files (clip selection, resizing to a center
crop, errors). Labels are 0-based indices into ``classes`` (default: the sorted label names of
the CSV). A row whose file is missing is skipped and counted (``dataset.missing``, a warning),
as every copy of Kinetics lacks some videos; ``on_missing="raise"`` makes it an error naming
the file. An unreadable file raises :class:`~vdm_lite.datasets.VideoReadError` naming it
(``on_error="skip"``: skipped and counted, as VideoFolder).
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Sequence

from .video import VIDEO_EXTENSIONS, VideoFolder

__all__ = ["Kinetics600", "read_kinetics_csv", "kinetics_filename", "find_kinetics_csv"]

_REQUIRED = ("youtube_id", "time_start", "time_end")


def kinetics_filename(youtube_id: str, time_start, time_end) -> str:
    """``"{youtube_id}_{time_start:06d}_{time_end:06d}"`` (without an extension)."""
    return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}"


def read_kinetics_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a Kinetics CSV as dicts with ``label`` (``""`` when absent), ``youtube_id``,
    ``time_start``, ``time_end`` (ints), ``split`` and ``name`` (the file name stem)."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in _REQUIRED if c not in header]
        if missing:
            raise ValueError(f"{path}: not a Kinetics CSV: no column {', '.join(missing)} (header: {','.join(header)}; "
                             "expected label,youtube_id,time_start,time_end,split)")  # fmt: skip
        rows = []
        for n, raw in enumerate(reader, start=2):
            r = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            try:
                start, end = int(float(r["time_start"])), int(float(r["time_end"]))
            except ValueError:
                raise ValueError(f"{path}, line {n}: time_start/time_end must be numbers, got {r['time_start']!r}, "
                                 f"{r['time_end']!r}") from None  # fmt: skip
            rows.append({"label": r.get("label", ""), "youtube_id": r["youtube_id"], "time_start": start,
                         "time_end": end, "split": r.get("split", ""),
                         "name": kinetics_filename(r["youtube_id"], start, end)})  # fmt: skip
    return rows


def find_kinetics_csv(root: str | os.PathLike, split: str) -> Path:
    """``{split}.csv`` in ``root``, ``root/annotations``, ``root/kinetics600`` or ``root/kinetics-600``
    (``validate`` and ``val`` stand for each other)."""
    root = Path(root)
    names = [split] + {"val": ["validate"], "validate": ["val"]}.get(split, [])
    dirs = [root, root / "annotations", root / "kinetics600", root / "kinetics-600", root.parent]
    for d in dirs:
        for name in names:
            if (d / f"{name}.csv").is_file():
                return d / f"{name}.csv"
    raise FileNotFoundError(f"no {split}.csv in {', '.join(str(d) for d in dirs)}: give the split file (csv=)")


class Kinetics600(VideoFolder):
    """Clips of one Kinetics split CSV (see the module docstring).

    Args:
        root: the folder of the video files.
        split: ``"test"`` (Table 3), ``"train"`` or ``"val"``; picks ``{split}.csv`` unless ``csv``.
        csv: the CSV file.
        classes: label names in index order (default: sorted labels of the CSV).
        frames, resolution, frame_skip, clip, on_error, seed: as :class:`VideoFolder`.
        on_missing: ``"skip"`` (default) or ``"raise"`` for rows without a file.

    Items are VideoFolder's plus ``youtube_id``, ``time_start``, ``time_end``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "test",
        csv: str | os.PathLike | None = None,
        frames: int = 16,
        resolution: int = 64,
        frame_skip: int = 1,
        clip: str = "random",
        on_error: str = "raise",
        on_missing: str = "skip",
        classes: Sequence[str] | None = None,
        seed: int = 0,
        extensions=VIDEO_EXTENSIONS,
    ):
        if on_missing not in ("skip", "raise"):
            raise ValueError(f"on_missing must be 'skip' or 'raise', got {on_missing!r}")
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"video folder {root} does not exist")
        self.csv = Path(csv) if csv is not None else find_kinetics_csv(root, split)
        rows = read_kinetics_csv(self.csv)
        labelled = any(r["label"] for r in rows)
        names = list(classes) if classes is not None else sorted({r["label"] for r in rows if r["label"]})
        lookup = {c: k for k, c in enumerate(names)}
        exts = tuple(e.lower() for e in extensions)
        found: dict[str, list[str]] = {}
        for p in root.rglob("*"):
            if p.suffix.lower() in exts and p.is_file():
                found.setdefault(p.stem, []).append(p.relative_to(root).as_posix())
        files, self.rows, self.missing = [], [], []
        for r in rows:
            paths = found.get(r["name"])
            if not paths:
                if on_missing == "raise":
                    raise FileNotFoundError(f"{self.csv}: no video file {r['name']}.* under {root} "
                                            f"({r['label'] or 'unlabelled'}, {r['youtube_id']})")  # fmt: skip
                self.missing.append(r["name"])
                continue
            folder = {r["label"], r["label"].replace(" ", "_")}
            path = next((p for p in paths if len(Path(p).parts) > 1 and Path(p).parts[-2] in folder), paths[0])
            if r["label"] and r["label"] not in lookup:
                raise ValueError(f"{self.csv}: label {r['label']!r} is not among the {len(names)} classes given")
            files.append((path, lookup[r["label"]] if r["label"] else -1))
            self.rows.append(r)
        if self.missing:
            warnings.warn(f"Kinetics600: {len(self.missing)} of the {len(rows)} rows of {self.csv} have no video file "
                          f"under {root} (skipped), e.g. {self.missing[0]}", stacklevel=2)  # fmt: skip
        if not files:
            raise FileNotFoundError(f"none of the {len(rows)} videos of {self.csv} is under {root}")
        super().__init__(root, frames, resolution, frame_skip, split=None, clip=clip, on_error=on_error,
                         extensions=extensions, seed=seed, files=files, classes=names if labelled else [])  # fmt: skip
        self.split, self._meta = split, {p: r for (p, _), r in zip(files, self.rows)}

    @property
    def num_missing(self) -> int:
        """Rows of the CSV without a video file (skipped)."""
        return len(self.missing)

    def load(self, index: int) -> dict:
        item = super().load(index)
        r = self._meta[item["path"]]
        item.update(youtube_id=r["youtube_id"], time_start=r["time_start"], time_end=r["time_end"])
        return item
