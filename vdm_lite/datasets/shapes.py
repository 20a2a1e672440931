"""The built-in world: colored shapes bouncing in a box, with exact ground truth.

The project's default data set (paper Section 4 trains on UCF101, BAIR and Kinetics; this
world is small enough to train on a CPU and, unlike real video, it comes with the physics
a generated video can be scored against). Nothing is downloaded: every clip is generated
from a seed, vectorized in torch. Tour: ``notebooks/05_datasets.ipynb``.

**The world.** ``N`` objects (circle, square, triangle), each of a palette color (the
colors of one clip are distinct, so every object can be found by its color), move with
constant velocity and bounce elastically off the four walls; optionally they also collide
with each other elastically (as disks of their radius, masses proportional to radius²).
The background is black.

**Units of the ground truth** (see :mod:`vdm_lite.datasets._common`): pixels, ``(x, y)``
of the object's *centroid*, origin at the top-left corner of the frame, ``y`` down; pixel
``(i, j)`` has its center at ``(j + 0.5, i + 0.5)``. ``radii`` is the radius of the circle
circumscribed to the shape (a circle's radius; a square's half-diagonal; an upward
equilateral triangle's center-to-vertex distance). ``velocities[t]`` is the velocity just
after frame ``t`` in pixels per *output* frame (``frame_skip`` base steps), so without a
bounce ``positions[t + 1] = positions[t] + velocities[t]``; at a bounce against a wall at
``w`` the position is reflected, ``positions[t + 1] = 2 w - (positions[t] + velocities[t])``,
and the velocity component flips sign. Speeds never change without collisions.

**Walls.** An object bounces when its outline reaches the frame border: its centroid stays
in ``[lo, hi]`` per axis, given by :meth:`BouncingShapes.walls` (the shape's extent from its
centroid, plus half a pixel with anti-aliasing so the soft edge is never clipped).

**Rendering** is exact at the ground-truth positions: each object's coverage is
``clamp(0.5 - d, 0, 1)`` where ``d`` is the signed distance (pixels) from the pixel center to
the outline -- a one-pixel linear ramp, symmetric about the outline, so the coverage
centroid equals the object centroid to well under a pixel. Objects are painted in order
(object 0 at the bottom).

**Label** (``label``, one of ``len(shapes) * len(colors)`` classes, 18 by default): the shape
and color of object 0, ``label = shape * num_colors + color``; ``label_names[label]`` reads
e.g. ``"red circle"``. Every clip has at least one object, so a class-conditional sample of
class ``k`` must contain that object: scorable from pixels.
"""

from __future__ import annotations

import math

import torch

from ._common import ProceduralDataset, as_hw, as_range, bounce, direction_word, join_words

__all__ = ["BouncingShapes", "render_shapes", "SHAPE_NAMES", "COLOR_NAMES", "PALETTE"]

SHAPE_NAMES = ("circle", "square", "triangle")

# Every color has a channel at 1.0, so an object's coverage is the max over channels.
PALETTE = {
    "red": (1.0, 0.2, 0.2),
    "green": (0.2, 1.0, 0.2),
    "blue": (0.25, 0.45, 1.0),
    "yellow": (1.0, 0.9, 0.1),
    "magenta": (1.0, 0.25, 0.9),
    "cyan": (0.1, 0.9, 1.0),
}
COLOR_NAMES = tuple(PALETTE)

_SQRT3_2 = math.sqrt(3.0) / 2.0
# Extent of each shape from its centroid, in units of its radius: (left, top), (right, bottom).
_EXTENT_NEG = torch.tensor([[1.0, 1.0], [0.5**0.5, 0.5**0.5], [_SQRT3_2, 1.0]], dtype=torch.float64)
_EXTENT_POS = torch.tensor([[1.0, 1.0], [0.5**0.5, 0.5**0.5], [_SQRT3_2, 0.5]], dtype=torch.float64)


def render_shapes(
    positions: torch.Tensor,
    kinds: torch.Tensor,
    radii: torch.Tensor,
    rgb: torch.Tensor,
    object_mask: torch.Tensor,
    height: int,
    width: int,
    antialias: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paint shapes at exact (sub-pixel) positions.

    Args:
        positions: ``(B, T, N, 2)`` centroids ``(x, y)`` in pixels (module docstring).
        kinds: ``(B, N)`` long, indices into :data:`SHAPE_NAMES`.
        radii: ``(B, N)`` circumscribed radii in pixels.
        rgb: ``(B, N, 3)`` colors in ``[0, 1]``.
        object_mask: ``(B, N)`` bool, False for padding objects (not drawn).
    Returns:
        ``video`` ``(B, 3, T, H, W)`` in ``[-1, 1]`` (black background) and ``masks``
        ``(B, T, N, H, W)``: each object's coverage in ``[0, 1]`` as if it were alone.
    """
    dev = positions.device
    pos = positions.to(torch.float32)
    xs = torch.arange(width, device=dev, dtype=torch.float32) + 0.5
    ys = torch.arange(height, device=dev, dtype=torch.float32) + 0.5
    qx = xs - pos[..., 0, None, None]  # (B, T, N, 1, W)
    qy = ys[:, None] - pos[..., 1, None, None]  # (B, T, N, H, 1)
    r = radii.to(dev, torch.float32)[:, None, :, None, None]  # (B, 1, N, 1, 1)
    kinds = kinds.to(dev)[:, None, :, None, None]
    d = None
    for kind in kinds.unique().tolist():
        if kind == 0:  # circle: exact signed distance
            dk = torch.sqrt(qx * qx + qy * qy) - r
        elif kind == 1:  # axis-aligned square, half side r / sqrt(2)
            dk = torch.maximum(qx.abs(), qy.abs()) - r * 0.5**0.5
        elif kind == 2:  # upward equilateral triangle, inradius r / 2: max of 3 half-planes
            dk = torch.maximum(torch.maximum(qy, _SQRT3_2 * qx - 0.5 * qy), -_SQRT3_2 * qx - 0.5 * qy) - 0.5 * r
        else:  # padding objects (kind -1) are masked out below
            continue
        d = dk if d is None else torch.where(kinds == kind, dk, d)
    if d is None:
        d = torch.full((1,), float("inf"), device=dev).expand(*pos.shape[:3], height, width)
    d = d.expand(*pos.shape[:3], height, width)
    if antialias:
        masks = (0.5 - d).clamp(0.0, 1.0)
    else:
        masks = (d <= 0).to(torch.float32)
    masks = masks * object_mask.to(dev)[:, None, :, None, None]
    b, t, n = pos.shape[:3]
    img = torch.zeros(b, 3, t, height, width, device=dev)
    colors = rgb.to(dev, torch.float32)
    for k in range(n):
        a = masks[:, :, k].unsqueeze(1)  # (B, 1, T, H, W)
        img = img * (1 - a) + colors[:, k, :, None, None, None] * a
    return img * 2 - 1, masks


class BouncingShapes(ProceduralDataset):
    """Colored shapes bouncing in a box, generated on the fly with exact ground truth.

    Args:
        frames: frames per clip ``T``.
        resolution: ``H = W`` (int) or ``(H, W)``.
        frame_skip: keep one frame every ``frame_skip`` base steps (motion looks faster).
        num_objects: an int or a ``(min, max)`` range (inclusive, ``min >= 1``); items are
            padded to ``max`` objects, ``object_mask`` tells which are real.
        size: object radius as a fraction of ``min(H, W)``: a number or a ``(min, max)``
            range, drawn uniformly.
        speed: speed as a fraction of ``min(H, W)`` per base step; number or range, drawn
            uniformly, direction uniform on the circle.
        shapes, colors: names from :data:`SHAPE_NAMES` / :data:`COLOR_NAMES`; the item's
            ``shapes`` / ``colors`` index *these* tuples.
        collisions: objects also collide elastically with each other (as disks; no overlap
            at the start). Kinetic energy ``sum radius² |v|²`` is conserved.
        antialias: soft one-pixel edges (else hard, centroid still within half a pixel).
        length: ``len(dataset)``; items are generated, so any length costs nothing.
        seed: ``dataset[i]`` is a pure function of ``(seed, i)``.

    Item (a dict; ``generate_batch`` gives the same keys with a leading batch dimension)::

        video        (3, T, H, W) float32 in [-1, 1]
        positions    (T, N, 2)    float32, centroid (x, y) in pixels, origin top-left, y down
        velocities   (T, N, 2)    float32, pixels per output frame, just after frame t
        shapes       (N,) long    index into dataset.shape_names (-1 for padding)
        colors       (N,) long    index into dataset.color_names / dataset.palette (-1 for padding)
        radii        (N,) float32 circumscribed radius in pixels (0 for padding)
        object_mask  (N,) bool    True for real objects
        num_objects  ()   long
        label        ()   long    shape * num_colors + color of object 0 (dataset.label_names)
        caption      str          "a red circle moving up and a blue square moving left"

    ``N = max(num_objects)``. Padding objects have zero positions and velocities.
    """

    def __init__(
        self,
        frames: int = 16,
        resolution=32,
        frame_skip: int = 1,
        num_objects=(1, 3),
        size=(0.12, 0.2),
        speed=(0.03, 0.08),
        shapes=SHAPE_NAMES,
        colors=COLOR_NAMES,
        collisions: bool = False,
        antialias: bool = True,
        length: int = 10_000,
        seed: int = 0,
    ):
        self.frames = int(frames)
        self.height, self.width = as_hw(resolution)
        self.frame_skip = int(frame_skip)
        self.num_objects = as_range(num_objects, "num_objects", int)
        self.size = as_range(size, "size")
        self.speed = as_range(speed, "speed")
        self.shape_names = tuple(shapes)
        self.color_names = tuple(colors)
        self.collisions = bool(collisions)
        self.antialias = bool(antialias)
        self.length = int(length)
        self.seed = int(seed)
        if self.frames < 1 or self.frame_skip < 1:
            raise ValueError("frames and frame_skip must be >= 1")
        if self.num_objects[0] < 1:
            raise ValueError("num_objects must be >= 1 (the label is object 0's class)")
        for s in self.shape_names:
            if s not in SHAPE_NAMES:
                raise ValueError(f"unknown shape {s!r}; choose from {SHAPE_NAMES}")
        for c in self.color_names:
            if c not in PALETTE:
                raise ValueError(f"unknown color {c!r}; choose from {COLOR_NAMES}")
        if not self.shape_names or not self.color_names:
            raise ValueError("shapes and colors must not be empty")
        self._kinds = torch.tensor([SHAPE_NAMES.index(s) for s in self.shape_names])
        self.palette = torch.tensor([PALETTE[c] for c in self.color_names], dtype=torch.float32)
        self.label_names = tuple(f"{c} {s}" for s in self.shape_names for c in self.color_names)
        self.num_classes = len(self.label_names)
        self.margin = 0.5 if self.antialias else 0.0
        side = min(self.height, self.width)
        big = self.size[1] * side
        lo, hi = self.walls(torch.arange(len(self.shape_names)), torch.full((len(self.shape_names),), big))
        if bool((hi <= lo).any()):
            raise ValueError(
                f"objects of radius up to {big:.1f} px do not fit in a {self.height}x{self.width} frame; lower size"
            )

    # ------------------------------------------------------------------ description
    @property
    def config(self) -> dict:
        """The constructor arguments (for logs and run directories)."""
        return dict(
            frames=self.frames, resolution=(self.height, self.width), frame_skip=self.frame_skip,
            num_objects=self.num_objects, size=self.size, speed=self.speed, shapes=self.shape_names,
            colors=self.color_names, collisions=self.collisions, antialias=self.antialias,
            length=self.length, seed=self.seed,
        )  # fmt: skip

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"BouncingShapes({args})"

    # ------------------------------------------------------------------ geometry
    def walls(self, shapes: torch.Tensor, radii: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The box ``[lo, hi]`` (pixels, shape ``(*shapes.shape, 2)``, float64) in which an
        object's centroid moves: its outline touches a wall when the centroid reaches it."""
        kinds = self._kinds[shapes.clamp_min(0)]
        r = radii.to(torch.float64)[..., None]
        lo = _EXTENT_NEG[kinds] * r + self.margin
        size = torch.tensor([self.width, self.height], dtype=torch.float64)
        hi = size - _EXTENT_POS[kinds] * r - self.margin
        return lo, hi

    # ------------------------------------------------------------------ generation
    def generate_batch(
        self,
        n: int,
        generator: torch.Generator | int | None = None,
        device: torch.device | str | None = None,
        return_masks: bool = False,
    ) -> dict:
        """``n`` fresh clips as a dict of batched tensors (keys of an item, plus
        ``masks`` ``(n, T, N, H, W)`` per-object coverage when ``return_masks``).

        Random numbers come from ``generator`` (a ``torch.Generator`` or an int seed) on
        the CPU; physics runs on the CPU in float64, rendering on ``device``. The draws do
        not depend on ``frames``, ``frame_skip`` or ``resolution``: the same generator state
        gives the same world seen longer, sparser or sharper. They do depend on ``n`` (each
        quantity is drawn for the whole batch at once); ``dataset[i]`` is ``generate_batch(1,
        item_generator(seed, i))``, independent of any batching.
        """
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        g = generator
        f64 = torch.float64
        n_min, n_max = self.num_objects
        n_colors = len(self.color_names)
        side = float(min(self.height, self.width))

        counts = torch.randint(n_min, n_max + 1, (n,), generator=g)
        object_mask = torch.arange(n_max)[None, :] < counts[:, None]
        shapes = torch.randint(0, len(self.shape_names), (n, n_max), generator=g)
        if n_max <= n_colors:  # distinct colors within a clip
            colors = torch.rand(n, n_colors, generator=g).argsort(dim=1)[:, :n_max]
        else:
            colors = torch.randint(0, n_colors, (n, n_max), generator=g)
        radii = (self.size[0] + (self.size[1] - self.size[0]) * torch.rand(n, n_max, generator=g, dtype=f64)) * side
        speed = (self.speed[0] + (self.speed[1] - self.speed[0]) * torch.rand(n, n_max, generator=g, dtype=f64)) * side
        angle = 2 * math.pi * torch.rand(n, n_max, generator=g, dtype=f64)
        v0 = torch.stack([speed * torch.cos(angle), speed * torch.sin(angle)], dim=-1)
        lo, hi = self.walls(shapes, radii)  # (n, N, 2)
        p0 = lo + (hi - lo) * torch.rand(n, n_max, 2, generator=g, dtype=f64)

        times = torch.arange(self.frames, dtype=f64) * self.frame_skip
        if self.collisions:
            p0 = _place_without_overlap(p0, radii, object_mask, lo, hi, g)
            pos, vel = _simulate_collisions(p0, v0, radii, object_mask, lo, hi, self.frames, self.frame_skip)
        else:  # closed form: every frame at once
            pos, vel = bounce(p0[:, None], v0[:, None], times[None, :, None, None], lo[:, None], hi[:, None])
        vel = vel * self.frame_skip

        keep = object_mask[:, None, :, None]
        pos = torch.where(keep, pos, 0.0).to(torch.float32)
        vel = torch.where(keep, vel, 0.0).to(torch.float32)
        shapes = torch.where(object_mask, shapes, -1)
        colors = torch.where(object_mask, colors, -1)
        radii = torch.where(object_mask, radii, 0.0).to(torch.float32)

        dev = torch.device(device) if device is not None else torch.device("cpu")
        kinds = torch.where(object_mask, self._kinds[shapes.clamp_min(0)], -1)
        rgb = self.palette[colors.clamp_min(0)]
        video, masks = render_shapes(
            pos.to(dev), kinds, radii, rgb, object_mask, self.height, self.width, antialias=self.antialias
        )
        out = {
            "video": video,
            "positions": pos.to(dev),
            "velocities": vel.to(dev),
            "shapes": shapes.to(dev),
            "colors": colors.to(dev),
            "radii": radii.to(dev),
            "object_mask": object_mask.to(dev),
            "num_objects": counts.to(dev),
            "label": (shapes[:, 0] * n_colors + colors[:, 0]).to(dev),
            "caption": self.captions(shapes, colors, vel[:, 0]),
        }
        if return_masks:
            out["masks"] = masks
        return out

    def captions(self, shapes: torch.Tensor, colors: torch.Tensor, velocities: torch.Tensor) -> list[str]:
        """Plain-word captions from ``shapes``, ``colors`` ``(B, N)`` and the first frame's
        ``velocities`` ``(B, N, 2)``: ``"a red circle moving up and a blue square moving left"``."""
        out = []
        for s_row, c_row, v_row in zip(shapes.tolist(), colors.tolist(), velocities.tolist()):
            parts = [
                f"a {self.color_names[c]} {self.shape_names[s]} moving {direction_word(*v)}"
                for s, c, v in zip(s_row, c_row, v_row)
                if s >= 0
            ]
            out.append(join_words(parts))
        return out


# ---------------------------------------------------------------------- collisions
def _pairs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    i, j = torch.triu_indices(n, n, offset=1)
    return i, j


def _place_without_overlap(p0, radii, present, lo, hi, g, tries: int = 200):
    """Redraw the positions of every clip whose disks overlap (deterministic given ``g``)."""
    pi, pj = _pairs(p0.shape[1])
    if len(pi) == 0:
        return p0
    both = present[:, pi] & present[:, pj]
    reach = radii[:, pi] + radii[:, pj]
    for _ in range(tries):
        dist = (p0[:, pi] - p0[:, pj]).norm(dim=-1)
        bad = ((dist < reach) & both).any(dim=1)
        if not bool(bad.any()):
            return p0
        fresh = lo + (hi - lo) * torch.rand(p0.shape, generator=g, dtype=p0.dtype)
        p0 = torch.where(bad[:, None, None], fresh, p0)
    raise ValueError("could not place the objects without overlap: lower num_objects or size, or turn collisions off")


def _simulate_collisions(p, v, radii, present, lo, hi, frames: int, skip: int, max_events: int = 32):
    """Event-driven: within each base step, advance everyone to the next event -- a wall
    contact (then the velocity reflects) or the earliest disk-disk contact (then the pair
    exchanges momentum along the line of centers, elastically) -- and repeat until the step
    is done. Between events motion is straight, so contact times are exact. Returns the
    positions/velocities at the output frames."""
    n, n_obj = p.shape[:2]
    pi, pj = _pairs(n_obj)
    mass = radii**2
    both = present[:, pi] & present[:, pj]
    reach = radii[:, pi] + radii[:, pj]
    rows = torch.arange(n)
    inf = torch.tensor(float("inf"), dtype=p.dtype)
    out_p, out_v = [p], [v]
    for step in range(1, (frames - 1) * skip + 1):
        remaining = torch.ones(n, dtype=p.dtype)
        for _ in range(max_events):
            if not bool((remaining > 0).any()):
                break
            # next wall contact of any real object
            to_wall = torch.where(v > 0, (hi - p) / v, torch.where(v < 0, (lo - p) / v, inf)).clamp_min(0)
            to_wall = torch.where(present[..., None], to_wall, inf).amin(dim=(1, 2))
            # earliest contact of an approaching pair
            dp = p[:, pj] - p[:, pi]
            dv = v[:, pj] - v[:, pi]
            a = (dv * dv).sum(-1)
            b = 2 * (dp * dv).sum(-1)
            c = (dp * dp).sum(-1) - reach**2
            disc = b * b - 4 * a * c
            tau = (-b - disc.clamp_min(0).sqrt()) / (2 * a).clamp_min(1e-300)
            tau = torch.where(c <= 0, torch.zeros_like(tau), tau)  # already touching
            hit = both & (b < 0) & (disc >= 0) & (tau >= 0)
            tau = torch.where(hit, tau, inf)
            if tau.shape[1]:
                t_pair, k = tau.min(dim=1)
            else:
                t_pair, k = inf.expand(n), torch.zeros(n, dtype=torch.long)
            dt = torch.minimum(torch.minimum(t_pair, to_wall), remaining)
            p, v = bounce(p, v, dt[:, None, None], lo, hi)
            remaining = remaining - dt
            collide = (t_pair <= dt) & (t_pair < inf)
            if bool(collide.any()):
                i, j = pi[k], pj[k]
                nrm = p[rows, j] - p[rows, i]
                d2 = (nrm * nrm).sum(-1).clamp_min(1e-12)
                rel = ((v[rows, i] - v[rows, j]) * nrm).sum(-1) / d2
                mi, mj = mass[rows, i], mass[rows, j]
                vi = v[rows, i] - (2 * mj / (mi + mj) * rel)[:, None] * nrm
                vj = v[rows, j] + (2 * mi / (mi + mj) * rel)[:, None] * nrm
                v = v.clone()
                v[rows, i] = torch.where(collide[:, None], vi, v[rows, i])
                v[rows, j] = torch.where(collide[:, None], vj, v[rows, j])
        if bool((remaining > 0).any()):  # event budget spent: finish the step without pair contacts
            p, v = bounce(p, v, remaining[:, None, None], lo, hi)
        if step % skip == 0:
            out_p.append(p)
            out_v.append(v)
    return torch.stack(out_p, dim=1), torch.stack(out_v, dim=1)
