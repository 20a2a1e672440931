"""The paper's benchmark protocols, Tables 1-3: what is generated, from which data, scored how.

    vdm-lite reproduce table1 CKPT --data=UCF-101 --c3d=c3d_ucf101.safetensors        # UCF101 IS / FID
    vdm-lite reproduce table2 CKPT --data=softmotion30_44k --i3d=i3d_torchscript.pt   # BAIR FVD
    vdm-lite reproduce table3 CKPT --data=kinetics600/videos --split-file=test.csv --i3d=...   # Kinetics-600
    vdm-lite reproduce table2 CKPT --data=... --smoke     # the same code at tiny counts, seconds on a CPU

The protocols (Section 4 of the paper, ``shared/paper-notes.md``; :data:`PROTOCOLS`):

* **Table 1, UCF101**: 10,000 unconditional samples of 16 x 64 x 64; Inception Score and FID
  computed by the C3D network of tgan2 (:mod:`vdm_lite.metrics.c3d`): IS from the softmax of
  ``fc8``, FID from ``fc7`` features, against real UCF101 clips (16 x 64 x 64, the train split
  of fold 1, as tgan2's statistics; ``num_real`` of them, default as many as samples). The IS
  is reported over all samples (one split, as tgan2's ``compute_inception_score.py`` per
  run) and as mean ± std over 10 splits.
* **Table 2, BAIR robot pushing**: condition on 1 frame, generate 15 (16 frames at 64 x 64);
  the 256 test videos, 100 samples each; FVD over the 16 frames (the given one included)
  against the 256 real test clips. The protocol (FitVid's: 100 samples for each of the 256
  test videos) does not fix how FVD is taken over those 100 x 256 samples (nor does
  ``shared/paper-notes.md``), so both readings are reported: ``fvd`` = the mean (± std) over
  the 100 sample rounds of the FVD between the 256 real videos and one sample of each (256 vs
  256), and ``fvd_pooled`` = one FVD of all 25,600 samples against the 256 videos.
* **Table 3, Kinetics-600**: condition on 5 frames, generate 11; 50,000 test clips of 16 x 64
  x 64 (one per test video at a seeded random start, cycling through the videos with new
  starts if there are fewer); FVD against the same real clips, and IS of the samples from
  the same I3D's logits (mean ± std over 10 splits as well).

Prediction uses reconstruction guidance, eq. (7), with the paper's ``w_r`` (BAIR 50,
Kinetics 9) and sampler (Appendix A: BAIR 256 + 256 Langevin steps, Kinetics 128 + 128; UCF101
256 ancestral steps), all overridable. FVD uses the I3D of :mod:`vdm_lite.metrics.i3d` with the
resize of ``resize`` (``"torch"``, or ``"tf1"``: the original TF code's, :mod:`vdm_lite.metrics.resize`).

This module holds the protocols (:class:`Protocol`, :data:`PROTOCOLS`, :data:`SMOKE`), the
feature networks that score them (:class:`StandInNet` for smoke runs) and their data; the
driver that samples, scores and writes the tables is :mod:`vdm_lite.experiments.tables1to3`
(:func:`~vdm_lite.experiments.tables1to3.reproduce_benchmark`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Protocol", "PROTOCOLS", "SMOKE", "TABLES", "StandInNet"]

TABLES = ("table1", "table2", "table3")


@dataclass(frozen=True)
class Protocol:
    """One benchmark of the paper: what is generated, how many, and how it is scored."""

    table: str
    title: str
    dataset: str
    metric: str  # "c3d" (IS/FID) or "i3d" (FVD, and IS for Kinetics)
    num_videos: int = 0  # generated videos (table2: test videos x samples per video)
    test_videos: int = 0  # table2: real test videos conditioned on
    samples_per_video: int = 1
    frames: int = 16
    resolution: int = 64
    context: int = 0  # given frames; frames - context are generated
    sampler: str = "ancestral"
    steps: int = 256
    recon_weight: float | None = None
    shard_size: int = 256
    paper: dict = field(default_factory=dict)  # row name -> {column: value}
    notes: tuple[str, ...] = ()


PROTOCOLS: dict[str, Protocol] = {
    "table1": Protocol(
        "table1", "Table 1: UCF101, unconditional 16x64x64 (IS and FID by tgan2's C3D)", "ucf101", "c3d",
        num_videos=10_000, sampler="ancestral", steps=256,
        paper={"paper: VDM": {"fid": 295.0, "fid_pm": "± 3", "is": 57.0, "is_pm": "± 0.62", "n": "10k samples"},
               "paper: real data": {"is": 60.2, "n": ""},
               "paper: best prior (TGAN-v2)": {"fid": 3431.0, "is": 26.60, "n": ""}},
        notes=("C3D of tgan2: IS = softmax of fc8, FID = fc7 features (after ReLU). tgan2's own runs used 2,048 samples per "
               "score (10 runs); the paper's Table 1 uses 10,000.",),
    ),
    "table2": Protocol(
        "table2", "Table 2: BAIR robot pushing, video prediction (1 frame given, 15 generated)", "bair", "i3d",
        num_videos=256 * 100, test_videos=256, samples_per_video=100, context=1, sampler="pc", steps=256,
        recon_weight=50.0,
        paper={"paper: VDM, Langevin 256 steps": {"fvd": 66.92}, "paper: VDM, ancestral 512 steps": {"fvd": 68.19},
               "paper: best prior (NUWA)": {"fvd": 86.9}},
        notes=("FVD over the 16 frames (given frame included) against the 256 real test clips (frames 0-15 of each). "
               "100 samples per test video (FitVid's protocol), which does not say how FVD is taken over them: `FVD` is "
               "the mean over the 100 sample rounds of 256-vs-256 FVDs, `FVD pooled` one FVD of all samples against the "
               "256 real clips; papers that draw 1 sample per test video report one 256-vs-256 FVD, which is noisier.",),
    ),
    "table3": Protocol(
        "table3", "Table 3: Kinetics-600, video prediction (5 frames given, 11 generated)", "kinetics600", "i3d",
        num_videos=50_000, context=5, sampler="pc", steps=128, recon_weight=9.0,
        paper={"paper: VDM, Langevin 128 steps": {"fvd": 16.2, "fvd_pm": "± 0.34", "is": 15.64},
               "paper: VDM, ancestral 256 steps": {"fvd": 18.6, "is": 15.39},
               "paper: best prior (Transframer)": {"fvd": 25.4}},
        notes=("FVD over the 16 frames (given frames included) against the same 50,000 real test clips; IS from the "
               "same I3D's 400 logits (softmax).",),
    ),
}

SMOKE = {  # tiny counts: the whole pipeline on a CPU in seconds
    "table1": dict(num_videos=4, num_real=4),
    "table2": dict(test_videos=2, samples_per_video=2),
    "table3": dict(num_videos=3),
    "steps": 2,
    "shard_size": 2,
}


# -- the stand-in feature network ---------------------------------------------------------


class StandInNet(nn.Module):
    """A fixed random network in place of I3D/C3D (smoke runs and tests): the video average-
    pooled to 2 x 4 x 4 per channel, then fixed random linear maps to ``dim`` features and
    ``classes`` logits. It makes the pipeline run end to end; its scores mean nothing."""

    def __init__(self, dim: int = 16, classes: int = 8, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.randn(3 * 2 * 4 * 4, dim, generator=g) / math.sqrt(96))
        self.register_buffer("v", torch.randn(dim, classes, generator=g))

    def extract(self, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.adaptive_avg_pool3d(videos.float().expand(-1, 3, -1, -1, -1), (2, 4, 4)).flatten(1)
        f = x @ self.w
        return f, f @ self.v

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.extract(videos)[0]


class _Scorer:
    """``extract(videos) -> (features (B, D), logits (B, K) or None)`` of a feature network."""

    def __init__(self, net: Any, name: str):
        self.net, self.name = net, name

    def device(self) -> torch.device | None:
        from ..metrics.features import module_device

        for fn in (self.net, getattr(self.net, "extract", None), getattr(self.net, "features", None)):
            d = module_device(fn) if fn is not None else None
            if d is not None:
                return d
        return None

    @torch.no_grad()
    def extract(self, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        net = self.net
        if hasattr(net, "extract") and callable(net.extract):
            out = net.extract(videos)
            if isinstance(out, dict):  # C3D: fc7 features, fc8 logits
                return out["fc7"], out["fc8"]
            return out
        if hasattr(net, "features") and hasattr(net, "logits"):
            return net.features(videos), net.logits(videos)
        y = net(videos)
        return y, y  # an I3D: its logits are the FVD features and the IS classifier


def _scorer(table: str, proto: Protocol, *, feature_net, c3d, i3d, resize: str, smoke: bool, device) -> _Scorer | None:
    if feature_net is not None:
        return _Scorer(feature_net, getattr(feature_net, "name", type(feature_net).__name__))
    if proto.metric == "c3d" and c3d is not None:
        from ..metrics.c3d import C3D

        return _Scorer(C3D.from_file(c3d, device=device or "cpu"), f"C3D ({c3d})")
    if proto.metric == "i3d" and i3d is not None:
        from ..metrics.i3d import load_i3d
        from ..metrics.resize import ResizedDetector

        return _Scorer(ResizedDetector(load_i3d(i3d, device=device or "cpu"), resize).eval(), f"I3D ({i3d}), resize {resize}")
    if smoke:
        return _Scorer(StandInNet().to(device or "cpu"), "stand-in (a fixed random network: smoke run)")
    return None


# -- data --------------------------------------------------------------------------------


def _dataset(table: str, data, resolution: int, *, split_file=None, clip: str | None = None, real_split: str = "train",
             seed: int = 0):
    from ..datasets import BAIRPushing, Kinetics600, UCF101

    if data is None:
        raise ValueError(f"{table} needs its data: give data= (--data=PATH)")
    if table == "table1":
        return UCF101(data, split=real_split, fold=1, frames=16, resolution=resolution, clip=clip or "random",
                      on_error="skip", seed=seed)  # fmt: skip
    if table == "table2":
        return BAIRPushing(data, split="test", frames=16, resolution=None if resolution == 64 else resolution)
    return Kinetics600(data, split="test", csv=split_file, frames=16, resolution=resolution, clip=clip or "random",
                       on_error="skip", seed=seed)  # fmt: skip


class _Cycled(torch.utils.data.Dataset):
    """``n`` items of a clip dataset: item ``i`` is clip ``i % len`` with the clip start of
    epoch ``i // len`` (new random starts on each pass)."""

    def __init__(self, dataset, n: int):
        self.dataset, self.n = dataset, int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        k, j = divmod(int(i), len(self.dataset))
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(k)
        return self.dataset[j]["video"]


def _loader(dataset, indices: Sequence[int], batch_size: int, workers: int):
    sub = torch.utils.data.Subset(dataset, list(indices))
    return torch.utils.data.DataLoader(sub, batch_size=batch_size, shuffle=False, num_workers=workers)
