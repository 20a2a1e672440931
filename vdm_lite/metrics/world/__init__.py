"""Metrics grounded in the built-in world: read objects from pixels and score the physics.

A sample of a model trained on :class:`~vdm_lite.datasets.BouncingShapes` can be checked
against the rules of the world it imitates, with no learned network: every object is a
solid circle, square or triangle of one palette color on a black background, moving at
constant velocity and reflecting elastically off the walls. This package reads the objects
back from the pixels and scores how well a video keeps those rules, one job per module:

* ``detect.py``   -- :func:`detect_objects`: per frame, connected components of bright pixels,
  each with centroid, area, bounding box, mean color (-> nearest palette color), fill ratio of
  its bounding box (square ~1, circle ~pi/4, triangle ~1/2) and vertical asymmetry (0 for
  circles and squares, 1/6 for the upward triangle) -> shape.
* ``track.py``    -- :func:`track_objects`: link the detections across frames (nearest
  predicted centroid, with a gating distance; a track survives a few missing frames).
* ``scores.py``   -- :func:`world_scores`: per video and averaged, object-count stability, color
  and shape consistency of each track, acceleration away from walls (the
  constant-velocity-with-bounces test), and optionally :func:`boundary_continuity`,
  :func:`class_match`, :func:`caption_match`; :func:`boundary_continuity`: for videos built
  block by block (:func:`vdm_lite.tasks.extend_video`; :func:`extension_boundaries` gives
  the block starts), the jump of position, color and shape across each block boundary against
  the typical frame-to-frame change inside blocks (ratio ~1: seamless); :func:`class_match`:
  does a class-conditional sample contain the object its class asks for?
* ``captions.py`` -- :func:`parse_caption` and :func:`caption_match`: does a text-conditional
  sample show the objects (and directions) of its caption?

Each step can be called alone; the later ones accept the earlier ones' output. Every name is
importable from ``vdm_lite.metrics.world`` itself, as when this was one module.

**Units** (those of the ground truth, :mod:`vdm_lite.datasets._common`): positions are
pixels ``(x, y)``, origin at the top-left *corner* of the frame, ``y`` down, pixel ``(i, j)``
centered at ``(j + 0.5, i + 0.5)``; time is in frames; velocities in pixels/frame,
accelerations in pixels/frame². Colors are RGB in ``[0, 1]`` normalized by their brightest
channel ("chroma": every palette color has a channel at 1, so this undoes both the
anti-aliased edges and a global brightness error).

**Validated** on rendered clips (``tests/test_world_metrics.py`` at 32 and 64 pixels; by hand
also at 16 and 24, 64-400 clips of 16 frames each): the centroid is within 0.02-0.04 px of the
ground truth on average and 0.2 px at worst (coverage-weighted, including the one-pixel
anti-aliased rim); color and shape are read correctly on every non-overlapping object
(16 px included: radius ~2-3 px); the acceleration residual of real clips is ~0.02-0.03
px/frame² (against ~3-8 for the same clips shuffled in time). Gaussian pixel noise of std 0.1
(in ``[-1, 1]`` units) leaves all of that within ~1 %; at std 0.2 squares start to read as
circles (the soft extents grow with the noise).

**What these metrics miss.** Overlapping or touching objects merge into one component
(one detection, a mixed color, a wrong shape), so worlds with collisions or crowded frames
score lower without being wrong; collisions between objects are accelerations away from the
walls. Objects smaller than ``min_area`` or dimmer than ``threshold`` are invisible. Shapes are
told apart only by two numbers, fill ratio and vertical asymmetry (no outline check: a blob of
the right fill passes, an upside-down triangle counts as a triangle), colors only by the
nearest palette entry (any hue is forced onto the palette: see the ``color_error`` of a
detection for how far it was). Texture, noise in the background and the sharpness of the
edges are not scored; use FVD-like metrics for those.
"""

from .captions import caption_match, parse_caption
from .detect import SHAPE_FILL, detect_objects
from .scores import boundary_continuity, class_match, extension_boundaries, world_scores
from .track import track_objects

# Re-exports, kept for old imports: every name the one module ``world.py`` had, helpers included
# (``tests/test_world_metrics.py`` imports ``_components``).
from ...conventions import check_video  # noqa: E402, F401
from ...datasets._common import direction_word  # noqa: E402, F401
from ...datasets.shapes import COLOR_NAMES, PALETTE, SHAPE_NAMES  # noqa: E402, F401
from .captions import _first_velocity  # noqa: E402, F401
from .detect import _RING_FLOOR, SQUARE_FILL, TRIANGLE_ASYM, _classify_shape, _components, _max3x3, _world  # noqa: E402, F401
from .scores import _acceleration, _aggregate, _pair_changes  # noqa: E402, F401
from .track import _majority, _track_classes  # noqa: E402, F401

__all__ = [
    "detect_objects",
    "track_objects",
    "world_scores",
    "boundary_continuity",
    "extension_boundaries",
    "class_match",
    "caption_match",
    "parse_caption",
    "SHAPE_FILL",
]
