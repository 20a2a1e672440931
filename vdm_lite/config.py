"""Training configuration: one dataclass (and a line on each of its fields, :func:`config_table`),
named presets, and the builders the trainer uses.

Presets (``vdm-lite presets`` lists them):

* ``cpu-smoke``  -- seconds; what CI runs end to end.
* ``cpu-small``  -- 16x32x32 clips of the built-in world on 2 CPU cores; moving objects
  appear within about an hour. ``cpu-small-class`` is its class-conditional twin
  (classifier-free guidance, eq. (6)), trained 4000 steps (about 4 hours): the 32x32 model of
  the super-resolution pair (notebook 10).
* ``cpu-lowres`` -- the same at 16x16, trained longer: the model behind notebook 09's video
  prediction, long videos and interpolation (Section 3.1), and Table 4's runs.
* ``cpu-lowres-class`` -- **the main job**: ``cpu-lowres`` told each clip's class from step 0
  (conditioning dropout 0.1) and sampled with classifier-free guidance, w = 1 (eq. (6)); in
  about 65 minutes on 2 CPU cores (4000 steps) its samples keep one object's color and shape in
  every frame, which the unconditional presets do not learn on a CPU budget.
* ``colab``      -- 16x64x64 on a T4/L4 GPU in about 30 minutes.
* ``ucf101``, ``bair``, ``kinetics600``, ``t2v-small``, ``t2v-large``, ``t2v-128`` -- the
  paper's Appendix A settings (model, optimizer, batch, EMA, joint frames, sampler). They read
  videos from ``data_root`` (a UCF101-style folder); the paper trained them on 64-256 TPU-v4
  chips.

Any field can be overridden: ``vdm-lite train --preset=cpu-small steps=2000 model.dropout=0.1``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from .nn.presets import get_preset as get_model_preset
from .nn.unet import MODEL_KEYS, UNet3D, UNetConfig
from .schedule import CosineSchedule, Schedule, get_schedule

__all__ = ["TrainConfig", "TRAIN_KEYS", "config_table", "PRESETS", "get_preset", "build_data", "build_model", "build_schedule",
           "TrainData"]  # fmt: skip

DATASETS = ("shapes", "digits", "folder", "mmnist")
CONDITIONS = ("none", "class", "text")


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved as ``config.json`` in the run directory."""

    description: str = ""
    model: UNetConfig = field(default_factory=lambda: get_model_preset("cpu-tiny"))

    # data: "shapes" (the built-in world), "digits" (moving MNIST digits), "folder" (videos
    # under data_root, UCF101 layout) or "mmnist" (the mnist_test_seq.npy file at data_root)
    dataset: str = "shapes"
    data_root: str = ""
    frames: int = 16
    resolution: int = 32
    frame_skip: int = 1
    num_objects: tuple[int, ...] = (1, 3)  # shapes: objects per clip (min, max)
    image_frames: int = 0  # K independent frames appended per clip (joint training, Section 3)
    data_seed: int = 0

    # conditioning: classifier-free guidance drops it with probability cond_drop_prob
    condition: str = "none"
    cond_drop_prob: float = 0.1

    # diffusion (Section 2)
    schedule: str = "cosine"
    logsnr_min: float = -20.0
    logsnr_max: float = 20.0
    schedule_shift: float = 0.0  # added to the cosine's log-SNR (negative: more draws at high noise)
    loss_weighting: str = ""  # "" = plain MSE of the model's parameterization
    low_discrepancy: bool = True

    # optimization (Appendix A)
    steps: int = 1000
    batch_size: int = 16  # global, across processes and accumulation
    grad_accum: int = 1
    lr: float = 3e-4
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.0
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    compile: bool = False
    num_workers: int = 0  # DataLoader workers for file datasets

    # bookkeeping
    seed: int = 0
    init_from: str = ""  # fine-tune: start from these weights (a .safetensors file or a run directory)
    run_dir: str = "runs/default"
    log_every: int = 10
    ckpt_every: int = 500
    sample_every: int = 0  # 0: only at the end of the run; -1: never
    num_samples: int = 4
    sampler: str = "ancestral"
    sample_steps: int = 128
    gamma: float = 0.0
    guidance_weight: float = 0.0
    recon_weight: float = 20.0  # w_r of eq. (7) for predict / extend / interpolate, unless told
    context_frames: int = 0  # known frames carried between blocks when extending; 0: half a block
    fps: int = 8

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {DATASETS}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"unknown condition {self.condition!r}; choose one of {CONDITIONS}")
        if not 0.0 <= self.cond_drop_prob <= 1.0:
            raise ValueError(f"cond_drop_prob must lie in [0, 1], got {self.cond_drop_prob}")
        for name in ("frames", "resolution", "frame_skip", "steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_frames < 0:
            raise ValueError("image_frames must be >= 0")
        if self.context_frames < 0:
            raise ValueError(f"context_frames must be >= 0 (0: half a block), got {self.context_frames}")

    def extension_context(self) -> int:
        """Known frames carried from block to block when a video is extended (Section 3.1):
        ``context_frames``, or half a block when it is 0. (Checked here, not at construction, so
        that ``frames=8`` can override a preset made for longer blocks.)"""
        if self.context_frames >= self.frames:
            raise ValueError(f"context_frames={self.context_frames} leaves no new frame in a block of {self.frames}: "
                             f"give fewer context frames (below {self.frames})")  # fmt: skip
        return self.context_frames or self.frames // 2

    @staticmethod
    def structural_keys() -> list[str]:
        """Fields a resumed run must share with its checkpoint (they shape the model or the data)."""
        return ["model", "dataset", "data_root", "frames", "resolution", "frame_skip", "num_objects",
                "image_frames", "data_seed", "condition", "schedule", "logsnr_min", "logsnr_max", "schedule_shift"]  # fmt: skip


# One line per config key for `vdm-lite train --help` and `vdm-lite config`; the keys themselves
# come from the dataclasses (tests/test_cli.py checks that every field has its line here).
TRAIN_KEYS = {
    "description": "what the preset is for (shown by `vdm-lite presets`)",
    "model": "the U-Net (model.* keys below)",
    "dataset": "shapes (the built-in world), digits (moving MNIST digits), folder (videos under data_root) or mmnist",
    "data_root": "folder dataset: a folder of videos (UCF101 layout); mmnist: the mnist_test_seq.npy file",
    "frames": "frames per training clip (T)",
    "resolution": "frame height and width in pixels",
    "frame_skip": "keep one frame every frame_skip",
    "num_objects": "shapes: objects per clip, (min, max)",
    "image_frames": "K independent image frames appended per clip (joint image-video training, Section 3)",
    "data_seed": "seed of the dataset's indexed items (dataset[i]) and of a file dataset's order",
    "condition": "none, class or text",
    "cond_drop_prob": "probability of dropping the condition in training (classifier-free guidance, eq. (6))",
    "schedule": "log-SNR noise schedule: cosine (the paper's), shifted_cosine or linear",
    "logsnr_min": "lowest log-SNR of the schedule (t = 1)",
    "logsnr_max": "highest log-SNR of the schedule (t = 0)",
    "schedule_shift": "added to the cosine schedule's log-SNR in training and sampling (negative: more noise)",
    "loss_weighting": "weighting of the loss: eps, v, x or elbo; empty: plain MSE of the model's parameterization",
    "low_discrepancy": "stratified diffusion times within a batch (lower-variance loss)",
    "steps": "optimizer steps in total",
    "batch_size": "clips per optimizer step, global (across processes and grad_accum)",
    "grad_accum": "micro-batches accumulated per optimizer step",
    "lr": "learning rate after warmup (AdamW)",
    "beta1": "AdamW beta1",
    "beta2": "AdamW beta2",
    "weight_decay": "AdamW weight decay",
    "warmup_steps": "linear learning-rate warmup steps (then constant)",
    "grad_clip": "gradient norm clipping (0: none)",
    "ema_decay": "decay of the EMA of the weights that sampling uses (ramped up early in training)",
    "precision": "auto (bf16/fp16 on GPUs, fp32 on the CPU), fp32, bf16 or fp16",
    "compile": "torch.compile the model",
    "num_workers": "DataLoader workers for file datasets",
    "seed": "seed of the initial weights and of every step's draws (built-in world clips, times, noise)",
    "init_from": "fine-tune: start from these weights (a .safetensors file or a run directory)",
    "run_dir": "where the run is written (--run-dir overrides it)",
    "log_every": "steps between rows of log.csv",
    "ckpt_every": "steps between checkpoints (one is always written at the end)",
    "sample_every": "steps between sample videos; 0: only at the end; -1: never",
    "num_samples": "videos per sample",
    "sampler": "sampler of the samples: ancestral, pc or ddim",
    "sample_steps": "sampling steps",
    "gamma": "ancestral variance interpolation, eq. (4)",
    "guidance_weight": "classifier-free guidance weight w of the samples, eq. (6)",
    "recon_weight": "reconstruction guidance weight w_r of eq. (7) that predict, extend and interpolate use unless told",
    "context_frames": "known frames carried between blocks when a video is extended; 0: half a block",
    "fps": "frames per second of the sample videos",
}


def _show(value) -> str:
    """A config value as it is written on the command line."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value) if value != "" else '""'


def config_table(cfg: TrainConfig) -> list[str]:
    """``  key=value   meaning``, one line per field of a TrainConfig, nested ``model.*`` ones."""
    rows = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            rows += [(f"model.{g.name}", getattr(value, g.name), MODEL_KEYS.get(g.name, "")) for g in dataclasses.fields(value)]
        else:
            rows.append((f.name, value, TRAIN_KEYS.get(f.name, "")))
    cells = [f"{k}={_show(v)}" for k, v, _ in rows]
    width = min(max(map(len, cells)), 36)
    return [f"  {c:<{width}}  {m}" for c, (_, _, m) in zip(cells, rows)]


def _paper(model: str, **kw) -> TrainConfig:
    m = get_model_preset(model)
    base = dict(sample_steps=256, ckpt_every=5000, log_every=50, sample_every=10000, warmup_steps=1000)
    return TrainConfig(model=m, dataset="folder", frames=m.num_frames, resolution=m.image_size, **{**base, **kw})


PRESETS: dict[str, TrainConfig] = {
    "cpu-smoke": TrainConfig(
        description="seconds on a CPU: 4 clips of 8x16x16 per step, 20 steps (CI)",
        model=get_model_preset("cpu-tiny"), frames=8, resolution=16, num_objects=(1, 1), steps=20, batch_size=4,
        lr=1e-3, log_every=5, ckpt_every=10, sample_steps=8, num_samples=2, run_dir="runs/cpu-smoke",
        precision="fp32", ema_decay=0.99, warmup_steps=5,
    ),
    "cpu-small": TrainConfig(
        description="the built-in world (one object), 16x32x32, unconditional; about an hour on 2 CPU cores",
        model=get_model_preset("cpu-small"), frames=16, resolution=32, num_objects=(1, 1), steps=1000, batch_size=8,
        lr=1e-3, log_every=25, ckpt_every=100, sample_every=250, sample_steps=64, run_dir="runs/cpu-small",
        precision="fp32", ema_decay=0.995, warmup_steps=100,
    ),
    "cpu-small-class": TrainConfig(
        description="cpu-small conditioned on the object's class (shape x color) from step 0, with classifier-free "
                    "guidance: the 32x32 model of notebook 10; about 4 h on 2 CPU cores",
        model=get_model_preset("cpu-small"), frames=16, resolution=32, num_objects=(1, 1), steps=4000, batch_size=8,
        lr=1e-3, condition="class", cond_drop_prob=0.1, guidance_weight=1.0, log_every=25, ckpt_every=100,
        sample_every=250, sample_steps=64, run_dir="runs/cpu-small-class", precision="fp32", ema_decay=0.995,
        warmup_steps=100,
    ),
    "cpu-lowres": TrainConfig(
        description="cpu-small at 16x16: the video-prediction / long-video / interpolation model of notebook 09",
        model=get_model_preset("cpu-small", image_size=16), frames=16, resolution=16, num_objects=(1, 1), steps=6000,
        batch_size=8, lr=1e-3, log_every=50, ckpt_every=250, sample_every=2000, sample_steps=64,
        run_dir="runs/cpu-lowres", precision="fp32", ema_decay=0.995, warmup_steps=100,
    ),
    "cpu-lowres-class": TrainConfig(
        description="the main job: cpu-lowres told the object's class (shape x color) from step 0, sampled with "
                    "classifier-free guidance w=1; about 65 min on 2 CPU cores",
        model=get_model_preset("cpu-small", image_size=16), frames=16, resolution=16, num_objects=(1, 1), steps=4000,
        batch_size=8, lr=1e-3, condition="class", cond_drop_prob=0.1, guidance_weight=1.0, recon_weight=5.0,
        context_frames=12, log_every=50, ckpt_every=250, sample_every=1000, sample_steps=64,
        run_dir="runs/cpu-lowres-class", precision="fp32",
        ema_decay=0.995, warmup_steps=100,
    ),
    "colab": TrainConfig(
        description="16x64x64 built-in world on a Colab T4/L4 (about 30 minutes), joint training with 4 images",
        model=get_model_preset("colab"), frames=16, resolution=64, num_objects=(1, 3), steps=6000, batch_size=16,
        lr=5e-4, image_frames=4, ema_decay=0.999, warmup_steps=200, log_every=50, ckpt_every=1000, sample_every=2000,
        run_dir="runs/colab",
    ),
    "ucf101": _paper("ucf101", lr=3e-4, beta2=0.99, batch_size=128, ema_decay=0.9999, image_frames=8, steps=60_000,
                     gamma=0.1, run_dir="runs/ucf101", description="Appendix A, UCF101 16x64x64 (unconditional)"),
    "bair": _paper("bair", lr=2e-4, beta2=0.999, weight_decay=0.01, batch_size=128, ema_decay=0.999, image_frames=8,
                   steps=660_000, sampler="pc", gamma=0.0, run_dir="runs/bair", description="Appendix A, BAIR robot pushing"),
    "kinetics600": _paper("kinetics600", lr=2e-4, beta2=0.99, batch_size=256, ema_decay=0.9999, image_frames=8,
                          steps=220_000, sampler="pc", gamma=0.0, run_dir="runs/kinetics600", description="Appendix A, Kinetics-600"),
    "t2v-small": _paper("t2v-small", lr=3e-4, batch_size=128, image_frames=8, steps=200_000, condition="text", gamma=0.3,
                        guidance_weight=2.0, run_dir="runs/t2v-small", description="Appendix A, text-to-video small"),
    "t2v-large": _paper("t2v-large", lr=3e-4, batch_size=128, image_frames=8, steps=700_000, condition="text", gamma=0.3,
                        guidance_weight=2.0, run_dir="runs/t2v-large", description="Appendix A, text-to-video large"),
    "t2v-128": _paper("t2v-128", lr=2e-4, batch_size=128, image_frames=7, steps=800_000, condition="text", gamma=0.3,
                      guidance_weight=2.0, run_dir="runs/t2v-128", description="Appendix A, text-to-video 9x128x128"),
}  # fmt: skip


def get_preset(name: str) -> TrainConfig:
    """A fresh copy of training preset ``name``."""
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name])


def build_schedule(cfg: TrainConfig) -> Schedule:
    """The noise schedule of a config (the paper: cosine on ``[-20, 20]``)."""
    if cfg.schedule == "shifted_cosine":
        base = CosineSchedule.shifted(cfg.resolution, logsnr_min=cfg.logsnr_min, logsnr_max=cfg.logsnr_max)
        return CosineSchedule(cfg.logsnr_min, cfg.logsnr_max, base.shift + cfg.schedule_shift)
    if cfg.schedule_shift:
        if cfg.schedule != "cosine":
            raise ValueError(f"schedule_shift applies to the cosine schedules, not {cfg.schedule!r}")
        return CosineSchedule(cfg.logsnr_min, cfg.logsnr_max, cfg.schedule_shift)
    return get_schedule(cfg.schedule, logsnr_min=cfg.logsnr_min, logsnr_max=cfg.logsnr_max)


def build_dataset(cfg: TrainConfig):
    """The dataset a config names (its items follow the conventions of docs/design.md)."""
    from . import datasets as D

    if cfg.dataset == "shapes":
        return D.BouncingShapes(cfg.frames, cfg.resolution, cfg.frame_skip, num_objects=tuple(cfg.num_objects), seed=cfg.data_seed)
    if cfg.dataset == "digits":
        return D.MovingDigits(cfg.frames, cfg.resolution, cfg.frame_skip, channels=cfg.model.in_channels, seed=cfg.data_seed)
    if not cfg.data_root:
        raise ValueError(f"dataset {cfg.dataset!r} reads files: set data_root=PATH")
    root = os.path.expanduser(cfg.data_root)  # data_root=~/videos
    if cfg.dataset == "folder":
        return D.VideoFolder(root, cfg.frames, cfg.resolution, cfg.frame_skip, split="train", on_error="skip", seed=cfg.data_seed)
    return D.MovingMNIST(root, cfg.frames, cfg.frame_skip, clip="random", resolution=cfg.resolution,
                         channels=cfg.model.in_channels, seed=cfg.data_seed)  # fmt: skip


class TrainData:
    """Training batches as a pure function of ``(step, micro-step, rank)``.

    Procedural datasets (the built-in world, moving digits) generate each batch from a
    generator seeded by the step; file datasets walk a per-epoch permutation of their items
    by global position ``((step * accum + micro) * world + rank) * local_batch + j``. Either
    way a resumed run sees exactly the batches it would have seen.
    """

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.dataset = build_dataset(cfg)
        self.procedural = hasattr(self.dataset, "generate_batch")
        self.num_classes = int(getattr(self.dataset, "num_classes", 0) or 0)
        self.label_names = tuple(getattr(self.dataset, "label_names", ()))
        self._iter, self._next = None, None

    def batch(self, step: int, micro: int, rank: int, world: int, local_batch: int, accum: int, gen: torch.Generator) -> dict:
        if self.procedural:
            out = self.dataset.generate_batch(local_batch, gen)
        else:
            out = self._loaded(step, micro, rank, world, local_batch, accum)
        out = {"video": out["video"], "label": out.get("label"), "caption": out.get("caption")}
        if self.cfg.image_frames > 0:
            from .datasets import append_image_frames

            out = append_image_frames(out, self.cfg.image_frames, gen)
        return out

    def _loaded(self, step, micro, rank, world, local_batch, accum) -> dict:
        if self._next != (step, micro):
            n = len(self.dataset)
            seed = self.cfg.data_seed

            def batches():
                s, m = step, micro
                perms: dict[int, torch.Tensor] = {}
                while True:
                    start = ((s * accum + m) * world + rank) * local_batch
                    idx = []
                    for p in range(start, start + local_batch):
                        epoch, i = divmod(p, n)
                        if epoch not in perms:
                            perms = {epoch: torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))}
                        idx.append(int(perms[epoch][i]))
                    yield idx
                    m += 1
                    if m == accum:
                        s, m = s + 1, 0

            loader = torch.utils.data.DataLoader(
                self.dataset, batch_sampler=batches(), num_workers=self.cfg.num_workers, collate_fn=_collate
            )
            self._iter = iter(loader)
        nxt = next(self._iter)
        self._next = (step, micro + 1) if micro + 1 < accum else (step + 1, 0)
        return nxt


def _collate(items: list[dict]) -> dict:
    out = {"video": torch.stack([it["video"] for it in items])}
    if all("label" in it for it in items):
        out["label"] = torch.stack([torch.as_tensor(it["label"]) for it in items])
    if all("caption" in it for it in items):
        out["caption"] = [it["caption"] for it in items]
    return out


def build_data(cfg: TrainConfig) -> TrainData:
    """The training data stream of a config."""
    return TrainData(cfg)


def resolve_model_config(cfg: TrainConfig, num_classes: int) -> UNetConfig:
    """The model config as trained: frames, resolution and classes filled in from the data."""
    m = cfg.model
    changes: dict[str, Any] = {"num_frames": cfg.frames, "image_size": cfg.resolution}
    if cfg.condition == "class":
        if num_classes < 1:
            raise ValueError(f"condition='class' but dataset {cfg.dataset!r} has no class labels")
        changes["num_classes"] = num_classes
    elif cfg.condition == "text" and not m.text_encoder:
        changes["text_encoder"] = "byte"
    if cfg.condition != "class":
        changes["num_classes"] = 0
    if cfg.condition != "text":
        changes["text_encoder"] = None
    return m.replace(**changes)


def build_model(cfg: TrainConfig, data: TrainData | None = None) -> UNet3D:
    """The U-Net of a config (Section 3), sized for its data and conditioning."""
    num_classes = data.num_classes if data is not None else cfg.model.num_classes
    return UNet3D(resolve_model_config(cfg, num_classes))
