"""Trained models in, videos out: load a run, sample it, write GIF / MP4 / frame grids.

    model, cfg, _ = load_model("runs/cpu-small")            # EMA weights by default
    videos, titles = sample_videos(model, cfg, 4, sampler="pc", steps=64, seed=0)
    write_outputs(videos, "out/sample", captions=titles)    # out/sample.gif, .mp4, .png
    out = conditional_videos(model, cfg, "extend", 2, total_frames=64)   # Section 3.1 modes

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

__all__ = ["MODES", "load_model", "sample_videos", "conditional_videos", "read_input_video", "write_outputs", "export_weights"]

MODES = ("sample", "predict", "extend", "interpolate", "superres", "upsample")


def _config_from(meta: dict | None, where: Path) -> TrainConfig:
    if not meta:
        raise ValueError(f"{where} carries no training config; was it written by vdm_lite?")
    meta = {k: v for k, v in meta.items() if k not in ("step", "steps_before")}
    return from_dict(TrainConfig, meta)


def load_model(path: str | Path, weights: str = "ema", device: str | torch.device | None = None) -> tuple[UNet3D, TrainConfig, int]:
    """Load a trained model for sampling.

    Args:
        path: a run directory, its ``checkpoint.pt``, or a ``.safetensors`` weights file
            (such as the checkpoints shipped in ``data/``).
        weights: ``"ema"`` (default) or ``"model"`` (the raw weights).
    Returns:
        ``(model in eval mode, its TrainConfig, training steps)``: the steps the weights have
        had in all, those of a fine-tuning source (``init_from``) included.
    """
    if weights not in ("ema", "model"):
        raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}")
    path = Path(path)
    device = torch.device(device) if device is not None else default_device()
    kind = ckpt.input_kind(path)  # checked before anything is loaded
    if kind == "run":
        path, kind = path / f"{weights}.safetensors", "safetensors"
    if kind == "safetensors":
        state, meta = ckpt.load_weights(path)
        cfg, step = _config_from(meta, path), ckpt.steps_in_all(meta)
    elif kind == "checkpoint":
        raw = ckpt.load_state(path)
        if not isinstance(raw, dict) or not {weights, "config", "step"} <= raw.keys():
            raise ValueError(f"{path} is a torch checkpoint but not a vdm_lite training state (no {weights!r} weights and config)")
        state, cfg, step = raw[weights], _config_from(raw["config"], path), ckpt.steps_in_all(raw)
    else:
        raise ValueError(f"{path} is {ckpt.describe_kind(kind)}, not a model: give a run directory, "
                         "its checkpoint.pt or a .safetensors weights file")  # fmt: skip
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


def read_input_video(
    path: str | Path, resolution: int, frames: int | None = None, frame_skip: int = 1, exact: bool = False
) -> torch.Tensor:
    """A video file (mp4, gif, webm, ...) as ``(1, 3, T, R, R)`` in ``[-1, 1]``: its first
    ``frames`` frames (all if ``None``) at ``frame_skip``, resized and center-cropped; with
    ``exact=True`` frames of any other size than ``R x R`` are a ``ValueError`` instead (the
    low-resolution input of super-resolution must not be resized)."""
    from .datasets.video import read_video, resize_center_crop

    array, _ = read_video(path, num_frames=frames, frame_skip=frame_skip)  # (T, H, W, 3)
    h, w = array.shape[1:3]
    if exact and (h, w) != (resolution, resolution):
        raise ValueError(f"{path} has {w}x{h} frames; expected exactly {resolution}x{resolution}")
    return resize_center_crop(torch.from_numpy(array), resolution)[None]


def conditional_videos(
    model: torch.nn.Module,
    cfg: TrainConfig,
    mode: str,
    n: int = 2,
    *,
    video: torch.Tensor | None = None,
    context_frames: int | None = None,
    total_frames: int | None = None,
    factor: int = 4,
    scale: int = 2,
    class_label: Sequence[int] | int | None = None,
    guidance_weight: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    **kwargs: Any,
) -> dict[str, torch.Tensor | None]:
    """The conditional sampling modes of Section 3.1 on a trained model, from an input video
    or, without one, from ``n`` real clips of the model's own data (so the truth is known).

    Modes (``kwargs`` go to the :mod:`vdm_lite.tasks` drivers: ``method``, ``recon_weight``,
    ``sampler``, ``steps``, ``replacement``, ``downsampler``, ...; ``recon_weight`` of eq. (7)
    defaults to the run's, ``cfg.recon_weight``, in the temporal modes); ``guidance_weight`` is the
    classifier-free guidance of a class-conditional model (eq. (6)), told each clip's class
    (default: 0, no guidance: the known frames and the label carry the object, and a guided
    step costs two network calls; the main job's model extended to 64 frames keeps every color
    either way, and loses slightly more objects at w = 1, ``benchmarks/results/coherence/``);
    unconditional models take none (0 or ``None``):

    * ``"predict"``: the first ``context_frames`` (default half the model's frames) given,
      the rest of one block generated;
    * ``"extend"``: a first block given, extended to ``total_frames`` (default 4 blocks),
      ``context_frames`` (default the run's, :meth:`TrainConfig.extension_context`) carried
      between blocks;
    * ``"interpolate"``: a video at frame skip ``factor`` to frame skip 1;
    * ``"superres"``: a video at ``1/scale`` of the model's resolution to full resolution, eq. (8);
    * ``"upsample"``: both at once (Figure 2): low resolution at frame skip ``factor`` to full
      resolution at frame skip 1.

    ``video`` is ``(B, C, T, H, W)`` in ``[-1, 1]``, already at the input resolution of the
    mode (the model's, or ``1/scale`` of it for ``superres``/``upsample``). Returns a dict with
    ``input``, ``output`` and ``truth`` (the real clip the input came from, or ``None``), all
    ``(B, C, T, H, W)`` on the CPU.
    """
    import dataclasses

    from .guidance import downsample_video
    from .tasks import extend_video, interpolate_video, super_resolve, upsample_video

    if mode not in MODES[1:]:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES[1:]}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    block, res = cfg.frames, cfg.resolution
    low = res // scale
    if res % scale or scale < 1:
        raise ValueError(f"scale {scale} does not divide the model's resolution {res}")
    # prediction is given half a block unless told; extension carries the run's context frames
    context = context_frames or (block // 2 if mode == "predict" else cfg.extension_context())
    if mode in ("predict", "extend", "interpolate") and kwargs.get("recon_weight") is None:
        kwargs["recon_weight"] = cfg.recon_weight  # the run's w_r of eq. (7)
    truth = None
    cond: dict[str, Any] = {}
    if video is None:  # real clips, long enough for the mode
        frames = {
            "predict": block,
            "extend": total_frames or 4 * block,
            "interpolate": (block // 2 - 1) * factor + 1,
            "superres": block,
            "upsample": (block // 2 - 1) * factor + 1,
        }[mode]
        clips = build_dataset(dataclasses.replace(cfg, frames=frames)).generate_batch(n, seed)
        truth = clips["video"]
        if cfg.condition == "class" and class_label is None:
            class_label = clips["label"]
        video = {
            "predict": truth[:, :, :context],
            "extend": truth[:, :, :block],
            "interpolate": truth[:, :, ::factor],
            "superres": downsample_video(truth, low, kwargs.get("downsampler", "bilinear")),
            "upsample": downsample_video(truth[:, :, ::factor], low, kwargs.get("downsampler", "bilinear")),
        }[mode]
    if video.ndim != 5 or video.shape[1] != cfg.model.in_channels:
        raise ValueError(f"input video must be (B, {cfg.model.in_channels}, T, H, W), got {tuple(video.shape)}")
    want = low if mode in ("superres", "upsample") else res
    if tuple(video.shape[-2:]) != (want, want):
        raise ValueError(f"mode {mode!r} needs input frames of {want}x{want}, got {video.shape[-2]}x{video.shape[-1]}")
    if cfg.condition == "class":
        labels = torch.as_tensor(0 if class_label is None else class_label).reshape(-1)
        cond["class_label"] = labels.expand(video.shape[0]).to(device) if labels.numel() == 1 else labels.to(device)
        kwargs["guidance_weight"] = guidance_weight or 0.0
    elif cfg.condition == "text":
        raise ValueError("conditional modes support unconditional and class-conditional models")
    elif guidance_weight:
        raise ValueError(f"guidance weight {guidance_weight:g} given to an unconditional model (it has no condition to guide)")
    v = video.to(device)
    kwargs.setdefault("schedule", build_schedule(cfg))  # the model's own noise schedule
    common = dict(generator=seed, **cond, **kwargs)
    if mode == "predict":
        out = extend_video(model, v, v.shape[2] + block - context, block_frames=block, context_frames=min(context, v.shape[2]), **common)
    elif mode == "extend":
        out = extend_video(model, v, total_frames or 4 * block, block_frames=block, context_frames=context, **common)
    elif mode == "interpolate":
        out = interpolate_video(model, v, factor, block_frames=block, **common)
    elif mode == "superres":
        out = super_resolve(model, v, res, **common)
    else:
        out = upsample_video(model, v, res, factor, block_frames=block, context_frames=context, **common)
    return {"input": video.cpu(), "output": out.clamp(-1, 1).cpu(), "truth": truth}


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
    """Write a run's weights as one safetensors file to share (the config and the steps the
    weights have had in all in its metadata), cast to ``dtype`` (``float16`` halves the file;
    loading casts back)."""
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
