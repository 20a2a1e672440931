"""The scores Tables 4 and 5 add to the world's rules: ShapesNet's view of a set of videos.

* :func:`domain_row` -- :func:`vdm_lite.evaluate.score_videos` plus, from ShapesNet
  (:mod:`vdm_lite.metrics.domain`), FD-domain against real clips' statistics
  (:func:`real_domain_stats`), IS-domain, coherence and, given labels, the within-class spread and
  the probability of each video's label;
* :func:`within_class_spread` -- the diversity score of Table 5;
* :func:`real_with_labels` -- real clips of the built-in world with given classes (the
  reference row of Table 5).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..evaluate import score_videos

__all__ = ["real_with_labels", "within_class_spread", "domain_row", "real_domain_stats"]


def real_with_labels(dataset: Any, labels: torch.Tensor, seed: int = 0, batch: int = 256) -> torch.Tensor:
    """Real clips ``(len(labels), 3, T, H, W)`` of the built-in world whose class is ``labels[i]``
    (drawn from fresh batches of ``dataset`` until every label is covered)."""
    labels = torch.as_tensor(labels).long().view(-1)
    pools: dict[int, list[torch.Tensor]] = {}
    need = {int(k): int((labels == k).sum()) for k in labels.unique()}
    g = torch.Generator().manual_seed(seed)
    for _ in range(200):
        b = dataset.generate_batch(batch, g)
        for v, y in zip(b["video"], b["label"].tolist()):
            if y in need and len(pools.setdefault(y, [])) < need[y]:
                pools[y].append(v)
        if all(len(pools.get(k, [])) >= n for k, n in need.items()):
            break
    else:
        raise RuntimeError("could not draw real clips for every label")
    taken = {k: iter(v) for k, v in pools.items()}
    return torch.stack([next(taken[int(y)]) for y in labels])


def within_class_spread(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the mean pairwise distance between the ``features (N, D)`` of the
    samples of one class (classes with one sample are skipped): a diversity score, 0 when
    every sample of a class is the same video."""
    labels = torch.as_tensor(labels).view(-1)
    vals = []
    for k in labels.unique():
        f = features[labels == k]
        if len(f) > 1:
            d = torch.cdist(f, f)
            vals.append(d.sum() / (len(f) * (len(f) - 1)))
    if not vals:
        raise ValueError("within-class spread needs at least two samples of some class")
    return float(torch.stack(vals).mean())


def domain_row(videos: torch.Tensor, labels: torch.Tensor | None, dataset: Any, net: Any, real_stats: tuple,
               boundaries: Sequence[int] | None = None) -> dict:
    """World-rule scores plus the ShapesNet scores of ``videos``: FD-domain against
    ``real_stats``, IS-domain, coherence and, with labels, within-class spread and ShapesNet's
    probability of each video's label (``class_prob_per_video`` ``(B,)`` and its mean ``class_prob``)."""
    from ..metrics import domain_features, frechet_from_features, gaussian_stats, inception_score

    row = score_videos(videos, dataset=dataset, labels=labels, boundaries=boundaries)
    feats = domain_features(videos, net, progress=False)  # the network runs once; its heads read these features
    with torch.no_grad():
        heads = net.heads(feats.to(next(net.parameters())))
    fd = frechet_from_features(real_stats, gaussian_stats(feats), name="FD-domain")
    row.update(fd_domain=fd.value, fd_n_real=fd.n_real, fd_n_fake=fd.n_fake,
               is_domain=inception_score(heads["class_logits"]).value,
               coherence=float(torch.sigmoid(heads["coherent_logit"]).mean()))  # fmt: skip
    if labels is not None:
        labels = torch.as_tensor(labels).view(-1)
        several = labels.unique(return_counts=True)[1].max() > 1
        row["spread"] = within_class_spread(feats, labels) if several else None
        probs = heads["class_logits"].float().softmax(-1).cpu()
        row["class_prob_per_video"] = probs[torch.arange(len(labels)), labels.long()]
        row["class_prob"] = float(row["class_prob_per_video"].mean())
    return row


def real_domain_stats(dataset: Any, n: int, seed: int, net: Any, frames: int | None = None) -> tuple:
    """Gaussian statistics of ShapesNet features of ``n`` real clips (drawn from ``seed``; their
    first ``frames`` frames when given): what FD-domain compares samples with."""
    from ..metrics import domain_features, gaussian_stats

    real = dataset.generate_batch(n, seed)["video"]
    if frames is not None:
        real = real[:, :, :frames]
    return gaussian_stats(domain_features(real, net, progress=False))
