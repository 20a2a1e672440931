"""The paper's metrics (Section 4): FVD, per-frame FID and Inception Score; and exact
metrics of the built-in world, read from pixels.

* :mod:`~vdm_lite.metrics.frechet`   -- the Frechet distance, stable in float64, with sample counts
* :mod:`~vdm_lite.metrics.features`  -- batched feature extraction (device, no grad, progress bar)
* :mod:`~vdm_lite.metrics.i3d`       -- the Kinetics-400 I3D and FVD (Tables 2-6)
* :mod:`~vdm_lite.metrics.inception` -- the FID InceptionV3 (features and logits)
* :mod:`~vdm_lite.metrics.frames`    -- FID / IS of frames, ``"avg"`` (pooled or ``"avg_per_frame"``) or ``"first"`` (Tables 4-6)
* :mod:`~vdm_lite.metrics.weights`   -- local weights files, checked key by key
* :mod:`~vdm_lite.metrics.domain`    -- ShapesNet, the built-in world's own video network
  (trained in-project, shipped): domain FD (the world's FVD), domain IS, coherence
* :mod:`~vdm_lite.metrics.world`     -- objects of the built-in world detected (``world/detect.py``)
  and tracked (``world/track.py``) from pixels; scores (``world/scores.py``): count stability,
  color/shape consistency, constant-velocity motion with bounces, continuity across block
  boundaries, class match; caption match (``world/captions.py``)

The networks' weights are never downloaded: load them from files you have
(``I3D.from_file``, ``TorchScriptI3D.from_file``, ``InceptionV3.from_file``), or plug any
feature network of your own into :func:`fvd`, :func:`frame_fid` and
:func:`frame_inception_score`.
"""

from .domain import ShapesNet, coherence, domain_fd, domain_features, domain_is, load_shapes_net
from .features import extract_features
from .frames import ISResult, frame_features, frame_fid, frame_inception_score, inception_score, select_frames
from .frechet import FrechetResult, frechet_distance, frechet_from_features, gaussian_stats, trace_sqrt_product
from .i3d import I3D, TorchScriptI3D, fvd, i3d_features, load_i3d, preprocess_i3d
from .inception import InceptionV3, preprocess_inception
from .weights import WeightsMismatch, read_state_dict
from .world import (
    boundary_continuity,
    caption_match,
    class_match,
    detect_objects,
    extension_boundaries,
    track_objects,
    world_scores,
)

__all__ = [
    "FrechetResult",
    "gaussian_stats",
    "trace_sqrt_product",
    "frechet_distance",
    "frechet_from_features",
    "extract_features",
    "I3D",
    "TorchScriptI3D",
    "load_i3d",
    "preprocess_i3d",
    "i3d_features",
    "fvd",
    "InceptionV3",
    "preprocess_inception",
    "select_frames",
    "frame_features",
    "frame_fid",
    "ISResult",
    "inception_score",
    "frame_inception_score",
    "WeightsMismatch",
    "read_state_dict",
    "ShapesNet",
    "load_shapes_net",
    "domain_features",
    "domain_fd",
    "domain_is",
    "coherence",
    "detect_objects",
    "track_objects",
    "world_scores",
    "boundary_continuity",
    "extension_boundaries",
    "class_match",
    "caption_match",
]
