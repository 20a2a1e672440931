"""Per-frame FID and Inception Score of videos, with any image network (Section 4).

For the text-conditioned models the paper reports, next to FVD, FID and IS of single frames
(Tables 4-6): ``"avg"`` over all frames of the videos and ``"first"`` on the first frame only.
Here ``"avg"`` pools every frame of every video into one set of images (``B * T`` of them)
before fitting the Gaussian or the class marginal; ``"first"`` keeps ``B`` images, and an
integer ``k`` picks frame ``k``.

The paper does not say which of two readings of "averaged over all frames" it used, so both
are here: ``"avg"`` (pooled, above) and ``"avg_per_frame"``, the mean over frame positions
``k`` of the score of frame ``k`` alone (``T`` Gaussians of ``B`` images each). They differ
when frame statistics depend on the position: frames shuffled in time leave the pooled score
unchanged but move the per-frame one; with few videos the per-frame one also carries a larger
small-sample bias (each Gaussian sees ``B`` images, not ``B * T``).

The network is pluggable: FID takes any ``features(images (N, 3, H, W) in [-1, 1]) -> (N, D)``
and IS any ``classifier(images) -> (N, K)`` class logits. The reference choice is the
InceptionV3 of :mod:`vdm_lite.metrics.inception` (``net.features`` / ``net.logits``), with
weights from a local file; numbers from other networks are only comparable among themselves.

* :func:`frame_features` -- videos ``(B, C, T, H, W)`` -> per-frame features;
* :func:`frame_fid` -- FID-avg / FID-avg_per_frame / FID-first as a :class:`~vdm_lite.metrics.frechet.FrechetResult`;
* :func:`inception_score` -- ``exp E_x KL(p(y|x) || p(y))`` of logits ``(N, K)``;
* :func:`frame_inception_score` -- IS-avg / IS-first of videos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Union

import torch

from .features import extract_features
from .frechet import FrechetResult, Stats, frechet_from_features, gaussian_stats

__all__ = ["FRAMES", "select_frames", "frame_features", "frame_fid", "ISResult", "inception_score",
           "frame_inception_score"]

FRAMES = ("avg", "avg_per_frame", "first")
Frames = Union[str, int]
ImageFn = Callable[[torch.Tensor], torch.Tensor]


def _label(frames: Frames) -> str:
    return frames if isinstance(frames, str) else f"frame{frames}"


def _check_frames(frames: Frames) -> None:
    if frames in FRAMES or (isinstance(frames, int) and not isinstance(frames, bool)):
        return
    raise ValueError(f"frames must be one of {FRAMES} or a frame index, got {frames!r}")


def select_frames(videos: torch.Tensor, frames: Frames = "avg") -> torch.Tensor:
    """Videos ``(B, C, T, H, W)`` -> images: ``(B * T, C, H, W)`` for ``"avg"`` and
    ``"avg_per_frame"`` (video-major order), ``(B, C, H, W)`` for ``"first"`` or an integer
    frame index."""
    _check_frames(frames)
    if videos.ndim != 5:
        raise ValueError(f"videos must be (B, C, T, H, W), got shape {tuple(videos.shape)}")
    b, c, t, h, w = videos.shape
    if frames in ("avg", "avg_per_frame"):
        return videos.transpose(1, 2).reshape(b * t, c, h, w)
    k = 0 if frames == "first" else frames
    if not -t <= k < t:
        raise ValueError(f"frame index {k} out of range for {t} frames")
    return videos[:, :, k]


def frame_features(videos, net: ImageFn, frames: Frames = "avg", *, batch_size: int = 8, device=None,
                   progress: bool | None = None, desc: str | None = None) -> torch.Tensor:
    """Per-frame outputs of ``net`` for videos ``(B, C, T, H, W)`` in [-1, 1] (a tensor or an
    iterable of batches): ``(B * T, D)`` for ``"avg"``, ``(B, D)`` for ``"first"``, and
    ``(B, T, D)`` for ``"avg_per_frame"``; float64, CPU. ``batch_size`` counts videos (each
    yields ``T`` images for ``"avg"``)."""
    _check_frames(frames)
    lengths = set()

    def transform(v: torch.Tensor) -> torch.Tensor:
        images = select_frames(v, frames)  # checks the shape
        lengths.add(v.shape[2])
        return images

    feats = extract_features(net, videos, batch_size=batch_size, device=device, progress=progress,
                             desc=desc or f"frame features ({_label(frames)})", transform=transform)
    if frames != "avg_per_frame":
        return feats
    if len(lengths) != 1:
        raise ValueError(f"frames='avg_per_frame' needs videos of one length, got lengths {sorted(lengths)}")
    return feats.view(-1, lengths.pop(), feats.shape[-1])


def _per_frame_features(x, net: ImageFn, what: str, **kw) -> torch.Tensor:
    if isinstance(x, tuple):
        raise ValueError(f"{what}: frames='avg_per_frame' needs the videos (one Gaussian per frame position), "
                         "not precomputed statistics")
    return frame_features(x, net, "avg_per_frame", **kw)


def frame_fid(real, fake, features: ImageFn, frames: Frames = "avg", *, batch_size: int = 8, device=None,
              progress: bool | None = None) -> FrechetResult:
    """FID between the frames of two sets of videos ``(B, C, T, H, W)`` in [-1, 1].

    ``frames="avg"``: all frames pooled (``FID-avg``); ``"avg_per_frame"``: the mean over
    frame positions of the FID of frame ``k`` (its ``n_real``/``n_fake`` count videos, the
    images behind each position's Gaussian); ``"first"``: the first frames (``FID-first``).
    ``features``: images ``(N, 3, H, W)`` in [-1, 1] -> ``(N, D)``, e.g.
    ``InceptionV3.from_file(path).features``. Except for ``"avg_per_frame"``, ``real``/``fake``
    may also be precomputed ``(mu, sigma, n)`` statistics of :func:`frame_features`, with ``n``
    counting images.
    """
    _check_frames(frames)
    if frames == "avg_per_frame":
        kw = dict(batch_size=batch_size, device=device, progress=progress)
        r = _per_frame_features(real, features, "real", desc="FID features (real, per frame)", **kw)
        f = _per_frame_features(fake, features, "fake", desc="FID features (fake, per frame)", **kw)
        if r.shape[1] != f.shape[1]:
            raise ValueError(f"real videos have {r.shape[1]} frames but fake ones have {f.shape[1]}")
        values = [frechet_from_features(r[:, k], f[:, k]).value for k in range(r.shape[1])]
        return FrechetResult(sum(values) / len(values), r.shape[0], f.shape[0], name="FID-avg_per_frame")

    def stats(x, label: str) -> Stats:
        if isinstance(x, tuple):
            return x
        feats = frame_features(x, features, frames, batch_size=batch_size, device=device, progress=progress,
                               desc=f"FID features ({label}, {_label(frames)})")
        return gaussian_stats(feats)

    return frechet_from_features(stats(real, "real"), stats(fake, "fake"), name=f"FID-{_label(frames)}")


@dataclass(frozen=True)
class ISResult:
    """An Inception Score: mean (and standard deviation) over ``splits`` of ``n`` samples.

    ``str(result)`` reads ``"IS-avg 12.34 +/- 0.56 (n=2048, 10 splits)"``."""

    value: float
    std: float
    n: int
    splits: int = 1
    name: str = "IS"

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        if self.splits == 1:
            return f"{self.name} {self.value:.4g} (n={self.n})"
        return f"{self.name} {self.value:.4g} +/- {self.std:.2g} (n={self.n}, {self.splits} splits)"


def inception_score(logits: torch.Tensor, splits: int = 1, name: str = "IS") -> ISResult:
    """``IS = exp( E_x KL( p(y|x) || p(y) ) )`` from class logits ``(N, K)``, in float64.

    ``p(y|x) = softmax(logits)``; ``p(y)`` is its mean over the samples of a split. The
    samples are cut in ``splits`` consecutive parts (Salimans et al. use 10) and the result
    is the mean and the (population) standard deviation of the per-split scores. IS lies in
    ``[1, K]``: 1 when every sample gives the same distribution, ``K`` when each sample is
    sure of one class and the classes are used equally.
    """
    logits = torch.as_tensor(logits).detach().to(device="cpu", dtype=torch.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {tuple(logits.shape)}")
    n = logits.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"need 1 <= splits <= N, got splits={splits} for N={n}")
    if not torch.isfinite(logits).all():
        raise ValueError("logits contain non-finite values")
    scores = []
    for part in torch.tensor_split(logits, splits):
        logp = torch.log_softmax(part, dim=1)  # log p(y|x)
        log_marginal = torch.logsumexp(logp, dim=0) - math.log(part.shape[0])  # log p(y)
        kl = (logp.exp() * (logp - log_marginal)).sum(dim=1).mean()
        scores.append(kl.exp())
    s = torch.stack(scores)
    return ISResult(float(s.mean()), float(s.std(unbiased=False)), n, splits, name)


def frame_inception_score(videos, classifier: ImageFn, frames: Frames = "avg", *, splits: int = 1,
                          batch_size: int = 8, device=None, progress: bool | None = None) -> ISResult:
    """IS of the frames of videos ``(B, C, T, H, W)`` in [-1, 1]: ``"avg"`` pools all frames
    (``IS-avg``), ``"avg_per_frame"`` averages the IS of each frame position over positions
    (its ``std`` is the mean of the positions' split deviations, ``n`` counts videos),
    ``"first"`` uses the first ones (``IS-first``). ``classifier``: images -> ``(N, K)``
    logits, e.g. ``InceptionV3.from_file(path).logits``."""
    if frames == "avg_per_frame":
        logits = _per_frame_features(videos, classifier, "videos", batch_size=batch_size, device=device,
                                     progress=progress, desc="IS logits (per frame)")
        per = [inception_score(logits[:, k], splits) for k in range(logits.shape[1])]
        return ISResult(sum(r.value for r in per) / len(per), sum(r.std for r in per) / len(per), logits.shape[0],
                        splits, name="IS-avg_per_frame")
    logits = frame_features(videos, classifier, frames, batch_size=batch_size, device=device, progress=progress,
                            desc=f"IS logits ({_label(frames)})")
    return inception_score(logits, splits, name=f"IS-{_label(frames)}")
