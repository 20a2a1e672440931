"""One trainer from a 2-core laptop to many GPUs (Appendix A of the paper).

    trainer = Trainer(get_preset("cpu-smoke"), run_dir="runs/smoke")
    trainer.train()

or from the shell, ``vdm-lite train --preset=cpu-lowres-class`` (the main job) and, on N GPUs,
``torchrun --nproc_per_node=N -m vdm_lite.cli train --preset=ucf101``.

What it does, per optimizer step: draws the step's clips (a pure function of the step, so
resuming is exact), appends ``image_frames`` independent frames per clip for joint
image-video training (Section 3), drops the class/text condition with probability
``cond_drop_prob`` for classifier-free guidance (eq. (6)), and minimises the loss of
eq. (2) with AdamW, warmup, gradient clipping and an EMA of the weights. ``init_from=``
starts from trained weights instead of random ones (fine-tuning, e.g. adding a class
condition to an unconditional model: :meth:`Trainer.init_weights`).

Randomness: every random draw of a step (diffusion times, noise, dropped conditions,
joint-frame picks) comes from a generator seeded by ``(seed, step, micro-step, rank)``;
the model's dropout uses torch's global RNG, whose state is checkpointed. So 10 steps,
a resume and 10 more steps equal 20 uninterrupted steps bit for bit.

A run directory holds ``config.json``, ``checkpoint.pt`` (the full training state,
written atomically, read with ``weights_only=True``), ``ema.safetensors`` and
``model.safetensors`` (weights to share), ``log.csv`` and ``samples/``.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import io
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .config import TrainConfig, build_data, build_model, build_schedule, resolve_model_config
from .diffusion import diffusion_loss
from .nn.conditioning import ClassEmbedding
from .overrides import to_dict
from .utils import progress_enabled

__all__ = ["Trainer", "TrainingDiverged", "DistInfo", "autocast_settings", "batch_condition", "seed_for"]

CHECKPOINT = "checkpoint.pt"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class DistInfo:
    """Where this process stands in a ``torchrun`` job (``world == 1`` without one)."""

    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> "DistInfo":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))

    @property
    def main(self) -> bool:
        return self.rank == 0


def seed_for(*parts: int) -> int:
    """A 63-bit seed mixed from integers (splitmix64), so nearby steps/ranks get unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


def autocast_settings(precision: str, device: torch.device) -> tuple[bool, torch.dtype, bool]:
    """``(enabled, dtype, needs_grad_scaler)`` for a precision name: ``"auto"`` is bf16 on
    GPUs that support it, fp16 (with a gradient scaler) on older ones such as the T4, and
    fp32 on the CPU."""
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    if precision == "fp32":
        return False, torch.float32, False
    if precision == "bf16":
        return True, torch.bfloat16, False
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("fp16 training needs a CUDA device; use bf16 or fp32 on the CPU")
        return True, torch.float16, True
    raise ValueError(f"unknown precision {precision!r}; choose auto, fp32, bf16 or fp16")


def batch_condition(cfg: TrainConfig, batch: dict, drop: torch.Tensor | None = None) -> dict[str, Any]:
    """What a model of ``cfg`` is told for a data ``batch``: its class labels ``(N,)``
    (``condition="class"``), its N captions (``"text"``) or nothing; where the bool ``drop`` ``(N,)``
    is True the condition is dropped (label -1, caption ""), as classifier-free guidance trains."""
    if cfg.condition == "class":
        return {"class_label": batch["label"] if drop is None else batch["label"].masked_fill(drop, -1)}
    if cfg.condition == "text":
        captions = list(batch["caption"])
        return {"text": captions if drop is None else ["" if d else c for c, d in zip(captions, drop.tolist())]}
    return {}


class Trainer:
    """Trains a video diffusion model as configured by a :class:`~vdm_lite.config.TrainConfig`.

    Args:
        cfg: the configuration (a preset with overrides).
        run_dir: where the run lives (default ``cfg.run_dir``).
        resume: continue from ``run_dir/checkpoint.pt`` (an error if the checkpoint's config
            differs in anything that shapes the model or the data).
        device: default ``cuda:LOCAL_RANK`` if CUDA is available, else the CPU.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | os.PathLike | None = None, resume: bool = False, device=None):
        self.cfg = cfg
        self.dist = DistInfo.from_env()
        if self.dist.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        if device is None:
            device = torch.device(f"cuda:{self.dist.local_rank}") if torch.cuda.is_available() else torch.device("cpu")
        self.device = torch.device(device)
        if self.device.type == "cuda":
            if self.device.index is None:  # "cuda" alone: the current device, named by its index
                self.device = torch.device("cuda", torch.cuda.current_device())
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.run_dir = Path(run_dir or cfg.run_dir)
        per = self.dist.world * cfg.grad_accum
        if cfg.batch_size % per:
            raise ValueError(
                f"batch_size={cfg.batch_size} (global) must be divisible by world size x grad_accum = "
                f"{self.dist.world} x {cfg.grad_accum}"
            )
        self.local_batch = cfg.batch_size // per

        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        self.data = build_data(cfg)
        # record the model as trained (frames, resolution, classes filled in from the data)
        self.cfg = cfg = dataclasses.replace(cfg, model=resolve_model_config(cfg, self.data.num_classes))
        self.model = build_model(cfg).to(self.device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.schedule = build_schedule(cfg)
        self.autocast, self.amp_dtype, scaler = autocast_settings(cfg.precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=scaler)
        self.opt = torch.optim.AdamW(
            self.model.parameters(),
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            weight_decay=cfg.weight_decay,
            fused=self.device.type == "cuda",
        )
        self.ddp = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None) if self.dist.world > 1 else None
        net = self.ddp if self.ddp is not None else self.model
        self.forward = torch.compile(net) if cfg.compile else net
        self.step = 0
        self.steps_before = 0  # with init_from: the training steps the source weights had had
        self.new_weights: list[str] = []  # with init_from: weights the source did not have
        if resume:
            self.load(self.run_dir / CHECKPOINT)
        elif cfg.init_from:
            self.new_weights = self.init_weights(cfg.init_from)
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "step": self.step,
            "steps_before": self.steps_before,
            "data_position": self.step * self.cfg.batch_size,
            "config": to_dict(self.cfg),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
        }

    def load(self, path: str | os.PathLike) -> None:
        """Restore the full training state written by :meth:`save`."""
        state = ckpt.load_state(path, map_location=self.device)
        ckpt.check_compatible(state["config"], to_dict(self.cfg), keys=self.cfg.structural_keys())
        try:
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
        except RuntimeError as e:
            raise ckpt.CheckpointMismatch(f"the weights in {path} do not fit this model: {e}") from None
        self.opt.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        self.step = int(state["step"])
        self.steps_before = int(state.get("steps_before", 0))

    def init_weights(self, source: str | os.PathLike) -> list[str]:
        """Start training from the weights in ``source`` (a ``.safetensors`` file such as the
        shipped checkpoints, or a run directory's ``ema.safetensors``): fine-tuning.

        Every weight of ``source`` must fit this model by name and shape. Weights this model has
        and ``source`` lacks keep their fresh initialization, except class-embedding tables,
        which start at zero so that the model's output is unchanged until they learn something
        (this is how a class condition is added to an unconditional model). Both the raw and
        the EMA weights are set; the optimizer starts fresh. The source's own training steps
        (its ``step`` plus its ``steps_before``) become :attr:`steps_before`, which the exported
        weights carry, so that :func:`vdm_lite.sampling.load_model` reports the steps the weights
        have had in all. Returns the names of the new weights.
        """
        path = Path(source)
        if path.is_dir():
            path = path / "ema.safetensors"
        state, meta = ckpt.load_weights(path, device=self.device)
        own = self.model.state_dict()
        unknown = sorted(k for k in state if k not in own)
        wrong = [f"{k}: {tuple(state[k].shape)} in {path}, {tuple(own[k].shape)} here"
                 for k in sorted(state) if k in own and state[k].shape != own[k].shape]  # fmt: skip
        if unknown or wrong:
            raise ckpt.CheckpointMismatch(
                f"the weights in {path} do not fit this model (init_from):\n  "
                + "\n  ".join([*(f"{k}: not in this model" for k in unknown), *wrong])
            )
        new = sorted(k for k in own if k not in state)
        with torch.no_grad():
            for name, module in self.model.named_modules():
                if isinstance(module, ClassEmbedding) and f"{name}.table.weight" in new:
                    module.table.weight.zero_()
        self.model.load_state_dict(state, strict=False)
        self.ema.load_state_dict(self.model.state_dict())
        self.steps_before = ckpt.steps_in_all(meta)
        return new

    def save(self) -> None:
        """Write the training state (atomically) and the shareable weights; rank 0 only."""
        if not self.dist.main:
            return
        ckpt.atomic_save(self.state_dict(), self.run_dir / CHECKPOINT)
        self.export()

    def export(self) -> None:
        """Write ``ema.safetensors`` and ``model.safetensors`` with the config as metadata."""
        meta = to_dict(self.cfg)
        meta["step"] = self.step
        meta["steps_before"] = self.steps_before
        ckpt.save_weights(self.ema.state_dict(), self.run_dir / "ema.safetensors", meta)
        ckpt.save_weights(self.model.state_dict(), self.run_dir / "model.safetensors", meta)

    # -- one step ---------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Linear warmup to ``lr`` over ``warmup_steps``, then constant (as in the paper)."""
        w = self.cfg.warmup_steps
        return self.cfg.lr * min(1.0, (step + 1) / w) if w > 0 else self.cfg.lr

    def ema_decay_at(self, step: int) -> float:
        """``min(ema_decay, (1 + step) / (10 + step))``: a short run's EMA is not stuck at init."""
        return min(self.cfg.ema_decay, (1 + step) / (10 + step))

    def _batch(self, step: int, micro: int, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        batch = self.data.batch(step, micro, self.dist.rank, self.dist.world, self.local_batch, self.cfg.grad_accum, gen)
        x = batch["video"].to(self.device, non_blocking=True)
        cond: dict[str, Any] = {}
        if batch.get("image_mask") is not None:
            mask = batch["image_mask"]
            if bool((mask == mask[:1]).all()):  # (checked on the CPU) every clip has its images at the same frames:
                mask = mask[:1]  # one (1, T) mask, broadcast by temporal attention instead of copied per position
            cond["image_mask"] = mask.to(self.device)
        drop = torch.rand(x.shape[0], generator=gen) < self.cfg.cond_drop_prob
        for k, v in batch_condition(self.cfg, batch, drop).items():
            cond[k] = v.to(self.device) if isinstance(v, torch.Tensor) else v
        return x, cond

    def train_step(self) -> dict[str, float]:
        """One optimizer step (``grad_accum`` micro-steps); returns logged values."""
        cfg = self.cfg
        lr = self.lr_at(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        self.model.train()
        total = torch.zeros((), device=self.device)
        clips = 0
        for micro in range(cfg.grad_accum):
            gen = torch.Generator().manual_seed(seed_for(cfg.seed, self.step, micro, self.dist.rank))
            x, cond = self._batch(self.step, micro, gen)
            clips += x.shape[0]
            noise_gen = torch.Generator(device=self.device).manual_seed(seed_for(cfg.seed, self.step, micro, self.dist.rank, 1))
            sync = self.ddp.no_sync() if (self.ddp is not None and micro < cfg.grad_accum - 1) else contextlib.nullcontext()
            with sync, torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.autocast):
                loss = diffusion_loss(
                    self.forward,
                    x,
                    self.schedule,
                    parameterization=self.model.parameterization,
                    weighting=cfg.loss_weighting or None,
                    low_discrepancy=cfg.low_discrepancy,
                    generator=noise_gen,
                    **cond,
                ).mean()
                self.scaler.scale(loss / cfg.grad_accum).backward()
            total += loss.detach() / cfg.grad_accum
        if self.dist.world > 1:
            dist.all_reduce(total)
            total /= self.dist.world
        loss_value = float(total)
        if not math.isfinite(loss_value):
            raise TrainingDiverged(
                f"the loss became {loss_value} at step {self.step + 1}; stopping. The last good checkpoint "
                f"is kept at {self.run_dir / CHECKPOINT} (lower lr, raise warmup_steps, or use fp32)."
            )
        self.scaler.unscale_(self.opt)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        self.scaler.step(self.opt)
        self.scaler.update()
        with torch.no_grad():
            d = self.ema_decay_at(self.step)
            ema_p = list(self.ema.parameters())
            torch._foreach_lerp_(ema_p, [p.detach() for p in self.model.parameters()], 1.0 - d)
            for b_ema, b in zip(self.ema.buffers(), self.model.buffers()):
                b_ema.copy_(b)
        self.step += 1
        return {"loss": loss_value, "lr": lr, "grad_norm": float(grad_norm), "clips": clips * self.dist.world}

    # -- the loop ------------------------------------------------------------------------------
    def train(self, steps: int | None = None, progress: bool | None = None, time_limit: float | None = None) -> dict[str, float]:
        """Train until ``steps`` (default ``cfg.steps``) optimizer steps in total; checkpoint
        every ``ckpt_every`` steps and at exit, write samples every ``sample_every`` steps.

        ``time_limit`` (seconds of wall time) stops earlier, after the step that reaches it,
        with a checkpoint: a time slice of a longer run (``--resume`` continues exactly), or
        arms of a comparison trained for equal wall time. A ``SIGTERM`` (what a batch system
        or a closing session sends) stops the same way after the current step, so no work is
        lost. ``self.stop_reason`` says why the loop ended early (``""``: it reached
        ``steps``). Returns the last logged values."""
        cfg = self.cfg
        end = cfg.steps if steps is None else steps
        if time_limit is not None and not time_limit > 0:
            raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit}")
        deadline = None if time_limit is None else time.monotonic() + time_limit
        self.stop_reason = ""
        terminated = []
        prev_handler = None
        if threading.current_thread() is threading.main_thread():
            prev_handler = signal.signal(signal.SIGTERM, lambda *_: terminated.append(True))
        log = self._open_log() if self.dist.main else None
        bar = tqdm(total=end, initial=self.step, desc="train", disable=not (self.dist.main and progress_enabled(progress)))
        last: dict[str, float] = {}
        t0, clips = time.perf_counter(), 0
        in_step = False
        try:
            while self.step < end:
                in_step = True
                out = self.train_step()
                in_step = False
                clips += out["clips"]
                last = out
                if self.step % cfg.log_every == 0 or self.step == end:
                    rate = clips / max(time.perf_counter() - t0, 1e-9)
                    t0, clips = time.perf_counter(), 0
                    last["clips_per_s"] = rate
                    if log is not None:
                        log.writerow({"step": self.step, **{k: f"{last[k]:.6g}" for k in ("loss", "lr", "grad_norm", "clips_per_s")}})
                        self._log_file.flush()
                    bar.set_postfix(loss=f"{out['loss']:.4f}", clips_s=f"{rate:.1f}")
                bar.update(1)
                if cfg.ckpt_every > 0 and self.step % cfg.ckpt_every == 0:
                    self.save()
                if self.dist.main and cfg.sample_every > 0 and self.step % cfg.sample_every == 0:
                    self.write_samples()
                # under DDP every rank asks every step (one scalar all-reduce), so no rank waits alone
                if self.step < end and (self.dist.world > 1 or deadline is not None or terminated):
                    reason = self._stop_check(deadline, bool(terminated))
                    if reason:
                        self.stop_reason = reason
                        break
        except KeyboardInterrupt:
            if not in_step:
                self.save()
            raise
        finally:
            if prev_handler is not None:
                signal.signal(signal.SIGTERM, prev_handler)
            bar.close()
            if log is not None:
                self._log_file.close()
        self.save()
        if self.stop_reason:
            return last
        if self.dist.main and cfg.sample_every >= 0 and not (cfg.sample_every > 0 and self.step % cfg.sample_every == 0):
            self.write_samples(progress=progress)  # the run always ends with samples (sample_every=-1 turns them off)
        return last

    def _stop_check(self, deadline: float | None, terminated: bool) -> str:
        """Why to stop now (``"time limit"``, ``"SIGTERM"``) or ``""``: the most urgent reason of
        any rank, so that every rank stops at the same step."""
        code = 2.0 if terminated else float(deadline is not None and time.monotonic() >= deadline)
        flag = torch.tensor([code], device=self.device)
        if self.dist.world > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return {0: "", 1: "time limit", 2: "SIGTERM"}[int(flag.item())]

    def _open_log(self):
        path = self.run_dir / "log.csv"
        fields = ["step", "loss", "lr", "grad_norm", "clips_per_s"]
        rows = []
        if path.exists():  # keep what the resumed state has seen, drop rows past it
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= self.step]

        def write_kept(f):  # f: the temporary file, binary
            text = io.TextIOWrapper(f, encoding="utf-8", newline="")
            kept = csv.DictWriter(text, fieldnames=fields)
            kept.writeheader()
            kept.writerows(rows)
            text.flush()
            text.detach()

        # rewritten atomically, so that a run killed at any moment keeps its history; then appended to
        ckpt._atomic_write(path, write_kept)
        self._log_file = open(path, "a", newline="")
        return csv.DictWriter(self._log_file, fieldnames=fields)

    @torch.no_grad()
    def write_samples(self, n: int | None = None, progress: bool | None = False) -> Path:
        """Sample from the EMA weights with a fixed seed; write a GIF, an MP4 and a frame-grid
        PNG as ``samples/step_NNNNNNN.*``. ``progress``: a sampling bar (off by default, as
        between training steps; the end of :meth:`train` shows one)."""
        from .sampling import sample_videos, write_outputs

        videos, titles = sample_videos(self.ema, self.cfg, n or self.cfg.num_samples, data=self.data, device=self.device, progress=progress)
        return write_outputs(videos, self.run_dir / "samples" / f"step_{self.step:07d}", fps=self.cfg.fps, captions=titles)[0]
