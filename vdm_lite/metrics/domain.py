"""A small video network of the built-in world, trained in-project: the world's own FVD and IS.

FVD and IS measure samples in the features of a network trained on real data (I3D on
Kinetics-400, InceptionV3 on ImageNet). On the built-in world (:class:`~vdm_lite.datasets.
BouncingShapes`) those networks see little: a few colored shapes on black are far from their
training data. :class:`ShapesNet` is the domain analogue, trained on the world itself:

* a factorized space-time conv net (a 3x3 spatial conv, then temporal convs with dilations
  1, 2, 4, at each of three resolutions, like the paper's U-Net blocks), input
  ``(B, 3, T, H, W)`` in [-1, 1], resized to 32 x 32; any ``T >= 1``;
* pooled (mean and max over time and space) into ``D = 128`` features -- the space of the
  **domain Frechet distance** :func:`domain_fd` ("FD-domain", the world's FVD);
* four heads trained on fresh clips with exact labels: object 0's class (18 = shape x color,
  on one-object clips) -- the classifier of the **domain Inception Score** :func:`domain_is`;
  the object count (1-3); object 0's velocity after the first frame (pixels per frame at
  32 x 32); and
  **coherence**: real clip vs. the same clip with its frames shuffled or spliced with another
  clip at a random frame (a jump in position, color or shape) -- :func:`coherence`.

The shipped weights (``vdm_lite/metrics/shapes_net.safetensors``, inside the package) come
from ``vdm-lite train-domain`` (its command and held-out accuracies are in the file's metadata
and in ``data/checkpoints/README.md``). :func:`load_shapes_net` loads them; a different file
can be given. Clips at 16 x 16 are upsampled to 32 x 32 and were part of training, so the
16 x 16 models' samples are in its domain.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..utils import progress_enabled
from .features import extract_features
from .frames import ISResult, inception_score
from .frechet import FrechetResult, frechet_from_features, gaussian_stats

__all__ = [
    "ShapesNet",
    "SHIPPED_SHAPES_NET",
    "domain_batch",
    "train_shapes_net",
    "evaluate_shapes_net",
    "save_shapes_net",
    "load_shapes_net",
    "domain_features",
    "domain_fd",
    "domain_is",
    "coherence",
]

SHIPPED_SHAPES_NET = Path(__file__).with_name("shapes_net.safetensors")
INPUT_SIZE = 32
MAX_OBJECTS = 3


class _Block(nn.Module):
    """Spatial 3x3 conv (stride 2 in space), then temporal convs (kernel 3, dilations 1, 2, 4),
    each with GroupNorm and SiLU, the temporal ones residual. ``(B, C, T, H, W) -> (B, C', T, H/2, W/2)``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2):
        super().__init__()
        self.spatial = nn.Conv3d(c_in, c_out, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1))
        self.norm = nn.GroupNorm(8, c_out)
        self.temporal = nn.ModuleList(nn.Conv3d(c_out, c_out, (3, 1, 1), padding=(d, 0, 0), dilation=(d, 1, 1)) for d in (1, 2, 4))
        self.tnorms = nn.ModuleList(nn.GroupNorm(8, c_out) for _ in self.temporal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.norm(self.spatial(x)))
        for conv, norm in zip(self.temporal, self.tnorms):
            x = x + F.silu(norm(conv(x)))
        return x


class ShapesNet(nn.Module):
    """The built-in world's video network (module docstring). ``forward`` returns a dict of
    ``features (B, D)``, ``class_logits (B, num_classes)``, ``count_logits (B, 3)``,
    ``velocity (B, 2)`` and ``coherent_logit (B,)``."""

    def __init__(self, channels: tuple[int, ...] = (24, 48, 96), feature_dim: int = 128, num_classes: int = 18):
        super().__init__()
        self.config = {"channels": list(channels), "feature_dim": feature_dim, "num_classes": num_classes}
        self.stem = nn.Conv3d(3, channels[0], (1, 3, 3), padding=(0, 1, 1))
        blocks, c = [], channels[0]
        for c_out in channels:
            blocks.append(_Block(c, c_out))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.project = nn.Linear(2 * c, feature_dim)
        self.class_head = nn.Linear(feature_dim, num_classes)
        self.count_head = nn.Linear(feature_dim, MAX_OBJECTS)
        self.velocity_head = nn.Linear(feature_dim, 2)
        self.coherent_head = nn.Linear(feature_dim, 1)

    @staticmethod
    def preprocess(videos: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` in [-1, 1] -> ``(B, 3, T, 32, 32)`` (bilinear, antialiased when shrinking)."""
        if videos.ndim != 5 or videos.shape[1] != 3:
            raise ValueError(f"videos must be (B, 3, T, H, W), got shape {tuple(videos.shape)}")
        b, c, t, h, w = videos.shape
        if (h, w) == (INPUT_SIZE, INPUT_SIZE):
            return videos
        frames = videos.transpose(1, 2).reshape(b * t, c, h, w)
        frames = F.interpolate(frames, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                               antialias=h > INPUT_SIZE or w > INPUT_SIZE)  # fmt: skip
        return frames.reshape(b, t, c, INPUT_SIZE, INPUT_SIZE).transpose(1, 2)

    def features(self, videos: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` in [-1, 1] -> ``(B, D)`` features (the domain FD's space)."""
        x = F.silu(self.stem(self.preprocess(videos)))
        for block in self.blocks:
            x = block(x)
        pooled = torch.cat([x.mean(dim=(2, 3, 4)), x.amax(dim=(2, 3, 4))], dim=1)
        return self.project(pooled)

    def heads(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """The four heads on features ``(B, D)`` from :meth:`features` (so a caller that already
        has the features does not run the network again)."""
        h = F.silu(features)
        return {
            "class_logits": self.class_head(h),
            "count_logits": self.count_head(h),
            "velocity": self.velocity_head(h),
            "coherent_logit": self.coherent_head(h).squeeze(1),
        }

    def logits(self, videos: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` (the domain IS's classifier)."""
        return self.heads(self.features(videos))["class_logits"]

    def forward(self, videos: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(videos)
        return {"features": f, **self.heads(f)}


# ---------------------------------------------------------------------------------- data
def domain_batch(n: int, generator: torch.Generator, frames: int = 16, low_res_share: float = 0.3) -> dict:
    """``n`` training clips of the built-in world with exact targets, as :class:`ShapesNet`
    learns from them: half have one object (their ``label`` counts for the class head, the
    others are ``-1``), a ``low_res_share`` of them are rendered at 16 x 16 (the net upsamples
    them), and half are made incoherent (frames shuffled, or spliced at a random frame with
    another clip) with ``coherent = 0``. Keys: ``video (n, 3, T, 32 or 16, ...)`` as a list
    of two tensors (32 x 32 and 16 x 16 clips), ``label``, ``count``, ``velocity``, ``coherent``."""
    from ..datasets import BouncingShapes

    out = {"video": [], "label": [], "count": [], "velocity": [], "coherent": []}
    n_low = int(round(n * low_res_share))
    for res, m in ((INPUT_SIZE, n - n_low), (16, n_low)):
        if m == 0:
            continue
        single, multi = m // 2, m - m // 2
        for objects, k in (((1, 1), single), ((1, MAX_OBJECTS), multi)):
            if k == 0:
                continue
            world = BouncingShapes(frames=frames, resolution=res, num_objects=objects)
            b = world.generate_batch(k, generator)
            other = world.generate_batch(k, generator)["video"]
            video = b["video"].clone()
            coherent = torch.rand(k, generator=generator) < 0.5
            for i in torch.nonzero(~coherent).flatten().tolist():
                if torch.rand((), generator=generator) < 0.5:  # shuffle the frames
                    video[i] = video[i][:, torch.randperm(frames, generator=generator)]
                else:  # splice: from frame s on, another clip
                    s = int(torch.randint(2, frames - 1, (), generator=generator))
                    video[i, :, s:] = other[i, :, s:]
            out["video"].append(video)
            out["label"].append(b["label"] if objects == (1, 1) else torch.full((k,), -1))
            out["count"].append(b["num_objects"] - 1)
            out["velocity"].append(b["velocities"][:, 0, 0] * (INPUT_SIZE / res))  # px/frame at 32 x 32, after frame 0
            out["coherent"].append(coherent.float())
    return {k: (v if k == "video" else torch.cat(v)) for k, v in out.items()}


def _run(net: ShapesNet, videos: list[torch.Tensor], device) -> dict[str, torch.Tensor]:
    """Forward each resolution group and concatenate (groups are in batch order)."""
    outs = [net(v.to(device)) for v in videos]
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def _losses(out: dict, batch: dict, device) -> dict[str, torch.Tensor]:
    label, count = batch["label"].to(device), batch["count"].to(device)
    coherent, velocity = batch["coherent"].to(device), batch["velocity"].to(device)
    one = label >= 0
    keep = coherent > 0.5  # class, count and velocity are read on coherent clips only; class and
    # velocity (object 0's) on one-object clips, where object 0 is the only one
    cls = F.cross_entropy(out["class_logits"][one & keep], label[one & keep]) if (one & keep).any() else out["class_logits"].sum() * 0
    return {
        "class": cls,
        "count": F.cross_entropy(out["count_logits"][keep], count[keep]),
        "velocity": 0.5 * F.mse_loss(out["velocity"][one & keep], velocity[one & keep]) if (one & keep).any() else cls * 0,
        "coherent": F.binary_cross_entropy_with_logits(out["coherent_logit"], coherent),
    }


def train_shapes_net(
    steps: int = 2500,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    frames: int = 16,
    channels: tuple[int, ...] = (24, 48, 96),
    feature_dim: int = 128,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> tuple[ShapesNet, list[dict]]:
    """Train :class:`ShapesNet` on fresh clips from :func:`domain_batch` (AdamW, cosine decay,
    gradients clipped at norm 1, sum of the four heads' losses). Returns the net (eval mode, CPU) and a log of the losses
    every 50 steps. Deterministic given ``seed`` on a given device (the net is initialized
    from it too)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    net = ShapesNet(channels, feature_dim).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    g = torch.Generator().manual_seed(seed)
    log = []
    bar = tqdm(range(1, steps + 1), desc="train ShapesNet", disable=not progress_enabled(progress))
    for step in bar:
        batch = domain_batch(batch_size, g, frames)
        losses = _losses(_run(net, batch["video"], device), batch, device)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps:
            log.append({"step": step, "loss": float(loss.detach()), **{k: float(v.detach()) for k, v in losses.items()}})
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    return net.cpu().eval(), log


@torch.no_grad()
def evaluate_shapes_net(net: ShapesNet, n: int = 256, seed: int = 12345, device=None) -> dict[str, float]:
    """Held-out scores on ``n`` fresh clips (a seed training never used): class accuracy and velocity
    error (pixels per frame at 32 x 32) on one-object coherent clips, count accuracy on coherent
    clips, coherence accuracy on all."""
    device = torch.device(device) if device is not None else next(net.parameters()).device
    net.eval()
    batch = domain_batch(n, torch.Generator().manual_seed(seed))
    out = _run(net, batch["video"], device)
    out = {k: v.cpu() for k, v in out.items()}
    keep = batch["coherent"] > 0.5
    one = keep & (batch["label"] >= 0)
    return {
        "n": n,
        "class_accuracy": float((out["class_logits"][one].argmax(1) == batch["label"][one]).float().mean()),
        "count_accuracy": float((out["count_logits"][keep].argmax(1) == batch["count"][keep]).float().mean()),
        "velocity_error_px": float((out["velocity"][one] - batch["velocity"][one]).norm(dim=1).mean()),
        "coherence_accuracy": float(((out["coherent_logit"] > 0).float() == batch["coherent"]).float().mean()),
    }


def save_shapes_net(net: ShapesNet, path: str | Path, **meta) -> Path:
    """Float32 weights as safetensors, with the net's config and ``meta`` (e.g. the command and
    held-out scores) as JSON in the metadata. Written atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu().float().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(tmp), metadata={"config": json.dumps(net.config), "meta": json.dumps(meta)})
    tmp.replace(path)
    return path


def load_shapes_net(path: str | Path | None = None, device: str | torch.device | None = None) -> ShapesNet:
    """The shipped :class:`ShapesNet` (``path=None``) or one saved by :func:`save_shapes_net`,
    in eval mode. ``net.meta`` holds the file's metadata (command, held-out scores)."""
    from safetensors import safe_open

    from .weights import load_checked, read_state_dict

    path = Path(path) if path is not None else SHIPPED_SHAPES_NET
    if not path.is_file():
        raise FileNotFoundError(f"no ShapesNet weights at {path} (make them with `vdm-lite train-domain --out {path}`)")
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if "config" not in metadata:
        raise ValueError(f"{path} has no ShapesNet config in its metadata; was it written by save_shapes_net?")
    net = ShapesNet(**json.loads(metadata["config"]))
    load_checked(net, read_state_dict(path), source=str(path))
    net.meta = json.loads(metadata.get("meta", "{}"))
    return net.to(device or "cpu").eval()


# ---------------------------------------------------------------------------------- metrics
def _net(net: ShapesNet | None) -> ShapesNet:
    return net if net is not None else load_shapes_net()


def domain_features(videos, net: ShapesNet | None = None, *, batch_size: int = 32, device=None,
                    progress: bool | None = None) -> torch.Tensor:
    """:class:`ShapesNet` features ``(N, D)`` float64 of videos ``(N, 3, T, H, W)`` in [-1, 1]
    (or an iterable of batches); ``net`` defaults to the shipped one."""
    net = _net(net)
    return extract_features(net.features, videos, batch_size=batch_size, device=device, progress=progress,
                            desc="ShapesNet features")  # fmt: skip


def domain_fd(real, fake, net: ShapesNet | None = None, *, batch_size: int = 32, device=None,
              progress: bool | None = None) -> FrechetResult:
    """Domain Frechet distance ("FD-domain"): the Frechet distance between ``real`` and ``fake``
    videos ``(N, 3, T, H, W)`` in :class:`ShapesNet` features -- FVD with the I3D replaced by a
    network of the built-in world. Either side may be precomputed ``(mu, sigma, n)``. Both
    sets should have the same number of frames (the pooled features depend on it)."""
    net = _net(net)

    def stats(x):
        return x if isinstance(x, tuple) else gaussian_stats(domain_features(x, net, batch_size=batch_size, device=device, progress=progress))

    return frechet_from_features(stats(real), stats(fake), name="FD-domain")


def _heads(videos, net: ShapesNet, batch_size: int, device, progress) -> dict[str, torch.Tensor]:
    def run(v):
        out = net(v)
        return torch.cat([out["class_logits"], out["coherent_logit"][:, None]], dim=1)

    x = extract_features(run, videos, batch_size=batch_size, device=device or next(net.parameters()).device,
                         progress=progress, desc="ShapesNet heads")  # fmt: skip
    return {"class_logits": x[:, :-1], "coherent_logit": x[:, -1]}


@torch.no_grad()
def domain_is(videos, net: ShapesNet | None = None, *, splits: int = 1, batch_size: int = 32, device=None,
              progress: bool | None = None) -> ISResult:
    """Domain Inception Score ("IS-domain") of one-object videos ``(N, 3, T, H, W)``:
    ``exp(E KL(p(y|x) || p(y)))`` with :class:`ShapesNet`'s 18-way class head -- high when each
    video shows one clear class and the classes are used evenly (at most 18)."""
    net = _net(net)
    net.eval()
    logits = _heads(videos, net, batch_size, device, progress)["class_logits"]
    return inception_score(logits, splits, name="IS-domain")


@torch.no_grad()
def coherence(videos, net: ShapesNet | None = None, *, batch_size: int = 32, device=None,
              progress: bool | None = None) -> torch.Tensor:
    """Per video ``(N,)``: :class:`ShapesNet`'s probability that the clip is one coherent piece of
    the world (not frames shuffled, not two clips spliced). Real clips score near 1."""
    net = _net(net)
    net.eval()
    return torch.sigmoid(_heads(videos, net, batch_size, device, progress)["coherent_logit"])


def _main_train(steps: int, batch_size: int, seed: int, out: str | Path, command: str | None, progress=None) -> dict:
    """``vdm-lite train-domain``: train, score on held-out clips, save; returns the held-out scores."""
    t0 = time.perf_counter()
    net, log = train_shapes_net(steps=steps, batch_size=batch_size, seed=seed, progress=progress)
    scores = evaluate_shapes_net(net)
    import platform

    meta = {"command": command, "steps": steps, "batch_size": batch_size, "seed": seed, "held_out": scores,
            "final_loss": log[-1], "seconds": round(time.perf_counter() - t0), "torch": torch.__version__,
            "python": platform.python_version()}  # fmt: skip
    save_shapes_net(net, out, **meta)
    return meta
