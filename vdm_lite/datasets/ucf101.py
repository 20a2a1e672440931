"""UCF101 (Soomro et al. 2012) with its official split lists: the data of Table 1.

The release is ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` (101 classes, 13,320 videos) plus
``UCF101TrainTestSplits-RecognitionTask.zip``, which unpacks to ``ucfTrainTestlist/``::

    classInd.txt      "1 ApplyEyeMakeup"   (1-based index, class name; 101 lines)
    trainlist01.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"   (path, 1-based label)
    testlist01.txt    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"     (path only)
    ... folds 02 and 03

:class:`UCF101` reads one list in its order (``split="train"``/``"test"``, ``fold=1..3``) into
a :class:`~vdm_lite.datasets.VideoFolder` (decoding, clips, resizing and error handling are
VideoFolder's). The labels are 0-based indices into ``classInd.txt``: the class folder of each
path, checked against the label a train list gives (a disagreement is an error naming the
list file and the line). ``splits_dir`` defaults to ``root``, then ``root/ucfTrainTestlist``,
then the folder next to ``root``. Table 1 is unconditional: the protocol of
:mod:`vdm_lite.experiments.protocols` uses the train split for the real statistics of FID (as
tgan2's ``compute_fid.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .video import VIDEO_EXTENSIONS, VideoFolder

__all__ = ["UCF101", "read_class_index", "read_split_list", "find_ucf_splits"]


def read_class_index(path: str | os.PathLike) -> list[str]:
    """``classInd.txt`` -> class names in index order (its 1-based indices must run 1, 2, ...)."""
    path = Path(path)
    names = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}, line {n}: expected '<index> <ClassName>', got {line.strip()!r}")
        if int(parts[0]) != len(names) + 1:
            raise ValueError(f"{path}, line {n}: index {parts[0]} out of order (expected {len(names) + 1})")
        names.append(parts[1])
    if not names:
        raise ValueError(f"{path}: no classes")
    return names


def read_split_list(path: str | os.PathLike) -> list[tuple[str, int | None, int]]:
    """A ``trainlist0X.txt``/``testlist0X.txt`` -> ``[(relative path, 1-based label or None,
    line number), ...]`` in file order (backslashes read as ``/``)."""
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
            raise ValueError(f"{path}, line {n}: expected '<Class>/<file>.avi [label]', got {line.strip()!r}")
        out.append((parts[0].replace("\\", "/"), int(parts[1]) if len(parts) == 2 else None, n))
    return out


def find_ucf_splits(root: str | os.PathLike, splits_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds ``classInd.txt`` and the split lists."""
    root = Path(root)
    dirs = [Path(splits_dir)] if splits_dir is not None else [root, root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"]
    for d in dirs:
        if (d / "classInd.txt").is_file():
            return d
    raise FileNotFoundError(f"no classInd.txt (UCF101's ucfTrainTestlist) in {', '.join(str(d) for d in dirs)}")


class UCF101(VideoFolder):
    """One UCF101 split list as clips (see the module docstring).

    Args:
        root: the ``UCF-101`` folder (class folders inside).
        split: ``"train"`` or ``"test"``; ``fold``: 1, 2 or 3.
        splits_dir: where ``classInd.txt`` and the lists are.
        frames, resolution, frame_skip, clip, on_error, scan, seed: as :class:`VideoFolder`
            (16 x 64 x 64 clips at frame skip 1 for Table 1).

    Items are VideoFolder's (``video``, ``label``, ``caption``, ``path``, ``start``, ``fps``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        fold: int = 1,
        splits_dir: str | os.PathLike | None = None,
        frames: int = 16,
        resolution: int = 64,
        frame_skip: int = 1,
        clip: str = "random",
        on_error: str = "raise",
        scan: bool = False,
        seed: int = 0,
        extensions=VIDEO_EXTENSIONS,
    ):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if int(fold) not in (1, 2, 3):
            raise ValueError(f"fold must be 1, 2 or 3, got {fold}")
        sdir = find_ucf_splits(root, splits_dir)
        classes = read_class_index(sdir / "classInd.txt")
        list_file = sdir / f"{split}list{int(fold):02d}.txt"
        if not list_file.is_file():
            raise FileNotFoundError(f"split list {list_file.name} not found in {sdir}")
        lookup = {c.lower(): k for k, c in enumerate(classes)}
        files = []
        for rel, given, n in read_split_list(list_file):
            parts = Path(rel).parts
            label = lookup.get(parts[0].lower()) if len(parts) > 1 else None
            if label is None:
                raise ValueError(f"{list_file}, line {n}: {rel!r} is not in a class folder of {sdir / 'classInd.txt'}")
            if given is not None and given - 1 != label:
                raise ValueError(f"{list_file}, line {n}: {rel!r} is labelled {given} but its folder {parts[0]!r} is "
                                 f"class {label + 1} in classInd.txt")  # fmt: skip
            files.append((rel, label))
        super().__init__(root, frames, resolution, frame_skip, split=None, fold=fold, splits_dir=sdir, clip=clip,
                         on_error=on_error, scan=scan, extensions=extensions, seed=seed, files=files, classes=classes)  # fmt: skip
        self.split, self.list_file = split, list_file
