"""Trained models in, videos out: load a run, sample it, write GIF / MP4 / frame grids.

    model, cfg, _ = load_model("runs/cpu-small")            # EMA weights by default
    videos, titles = sample_videos(model, cfg, 4, sampler="pc", steps=64, seed=0)
    write_outputs(videos, "out/sample", captions=titles)    # out/sample.gif, .mp4, .png

Used by ``vdm-lite sample``, by the trainer's periodic samples and by the notebooks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from . import checkpoint as ckpt
from .config import TrainConfig, build_dataset, build_schedule
from .nn.unet import UNet3D
from .overrides import from_dict
from .samplers import ClassifierFreeGuidance, sample
from .utils import default_device

__all__ = ["load_model", "sample_videos", "write_outputs", "export_weights"]


def _config_from(meta: dict | None, where: Path) -> TrainConfig:
    if not meta:
        raise ValueError(f"{where} carries no training config; was it written by vdm_lite?")
    meta = {k: v for k, v in meta.items() if k != "step"}
    return from_dict(TrainConfig, meta)


def load_model(path: str | Path, weights: str = "ema", device: str | torch.device | None = None) -> tuple[UNet3D, TrainConfig, int]:
    """Load a trained model for sampling.

    Args:
        path: a run directory, its ``checkpoint.pt``, or a ``.safetensors`` weights file
            (such as the checkpoints shipped in ``data/``).
        weights: ``"ema"`` (default) or ``"model"`` (the raw weights).
    Returns:
        ``(model in eval mode, its TrainConfig, training step)``.
    """
    if weights not in ("ema", "model"):
        raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}")
    path = Path(path)
    device = torch.device(device) if device is not None else default_device()
    if path.is_dir():
        path = path / f"{weights}.safetensors"
    if path.suffix == ".safetensors":
        state, meta = ckpt.load_weights(path)
        cfg, step = _config_from(meta, path), int((meta or {}).get("step", 0))
    else:
        raw = ckpt.load_state(path)
        state, cfg, step = raw[weights], _config_from(raw["config"], path), int(raw["step"])
    model = UNet3D(cfg.model)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ckpt.CheckpointMismatch(f"the weights in {path} do not fit the model its config describes: {e}") from None
    return model.eval().requires_grad_(False).to(device), cfg, step


@torch.no_grad()
def sample_videos(
    model: torch.nn.Module,
    cfg: TrainConfig,
    n: int,
    *,
    data: Any = None,
    sampler: str | None = None,
    steps: int | None = None,
    gamma: float | None = None,
    guidance_weight: float | None = None,
    class_label: Sequence[int] | int | None = None,
    text: Sequence[str] | str | None = None,
    seed: int = 0,
    frames: int | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> tuple[torch.Tensor, list[str] | None]:
    """Sample ``n`` videos ``(n, C, T, H, W)`` in ``[-1, 1]`` with the config's sampler
    settings (each overridable), and a title per video (class name or caption) for
    conditional models.

    Conditional models get classes ``0, 1, 2, ...`` (or ``class_label``) or the captions of
    the data's first clips (or ``text``); ``guidance_weight`` applies classifier-free
    guidance, eq. (6).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    frames = frames or cfg.frames
    shape = (n, cfg.model.in_channels, frames, cfg.resolution, cfg.resolution)
    cond: dict[str, Any] = {}
    titles = None
    if cfg.condition == "class":
        labels = torch.arange(n) % cfg.model.num_classes if class_label is None else torch.as_tensor(class_label).reshape(-1)
        if labels.numel() == 1:
            labels = labels.expand(n)
        if labels.numel() != n:
            raise ValueError(f"got {labels.numel()} class labels for {n} videos")
        if ((labels < -1) | (labels >= cfg.model.num_classes)).any():
            raise ValueError(f"class labels must lie in [0, {cfg.model.num_classes}) (or -1 for none)")
        cond["class_label"] = labels.to(device)
        names = _label_names(cfg, data)
        titles = [names[int(y)] if names and y >= 0 else str(int(y)) for y in labels]
    elif cfg.condition == "text":
        if text is None:
            ds = data.dataset if data is not None else build_dataset(cfg)
            text = ds.generate_batch(n, seed)["caption"] if hasattr(ds, "generate_batch") else [ds[i]["caption"] for i in range(n)]
        text = [text] * n if isinstance(text, str) else list(text)
        if len(text) != n:
            raise ValueError(f"got {len(text)} captions for {n} videos")
        cond["text"], titles = text, text
    w = cfg.guidance_weight if guidance_weight is None else guidance_weight
    den = ClassifierFreeGuidance(model, w) if (w and cond) else model
    videos = sample(
        den,
        shape,
        sampler=sampler or cfg.sampler,
        steps=steps or cfg.sample_steps,
        schedule=build_schedule(cfg),
        parameterization=cfg.model.parameterization,
        gamma=cfg.gamma if gamma is None else gamma,
        clip_x=True,
        generator=seed,
        device=device,
        progress=progress,
        **cond,
    )
    return videos.clamp(-1, 1).cpu(), titles


def _label_names(cfg: TrainConfig, data: Any) -> tuple[str, ...]:
    if data is not None:
        return tuple(data.label_names)
    try:
        return tuple(getattr(build_dataset(cfg), "label_names", ()))
    except Exception:  # file datasets that are not on this machine
        return ()


def write_outputs(
    videos: torch.Tensor,
    stem: str | Path,
    fps: int = 8,
    captions: Sequence[str] | None = None,
    formats: Sequence[str] = ("gif", "mp4", "png"),
    scale: int = 2,
) -> list[Path]:
    """Write ``videos`` ``(B, C, T, H, W)`` as ``stem.gif`` / ``stem.mp4`` (tiled in a row)
    and ``stem.png`` (a frame grid, one row per video); returns the paths written."""
    from .viz import frame_grid, save_video

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        fmt = fmt.strip().lower()
        if fmt in ("gif", "mp4"):
            paths.append(save_video(stem.with_suffix(f".{fmt}"), videos, fps=fps, scale=scale))
        elif fmt == "png":
            import matplotlib.pyplot as plt

            fig = frame_grid(videos, titles=list(captions) if captions else None)
            fig.savefig(stem.with_suffix(".png"), bbox_inches="tight")
            plt.close(fig)
            paths.append(stem.with_suffix(".png"))
        else:
            raise ValueError(f"unknown output format {fmt!r}; choose gif, mp4 or png")
    if captions:
        stem.with_suffix(".json").write_text(json.dumps({"captions": list(captions)}, indent=2) + "\n")
    return paths


def export_weights(run: str | Path, out: str | Path, weights: str = "ema", dtype: str = "float16") -> Path:
    """Write a run's weights as one safetensors file to share (config and step in its
    metadata), cast to ``dtype`` (``float16`` halves the file; loading casts back)."""
    dt = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}.get(dtype)
    if dt is None:
        raise ValueError(f"dtype must be float16, bfloat16 or float32, got {dtype!r}")
    model, cfg, step = load_model(run, weights=weights, device="cpu")
    from .overrides import to_dict

    meta = to_dict(cfg)
    meta["step"] = step
    state = {k: (v.to(dt) if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    ckpt.save_weights(state, out, meta)
    return Path(out)
