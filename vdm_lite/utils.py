"""Small shared helpers: the fast switch, device and precision choice, seeding.

Every notebook and test uses the same switch: the environment variable
``VDM_LITE_FAST`` (``1``/``true``/``yes`` turns it on). In fast mode sizes, step counts
and sample counts shrink; *which* code runs never changes.
"""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path
from typing import TypeVar

import torch

__all__ = [
    "FAST_ENV",
    "fast_mode",
    "pick",
    "progress_enabled",
    "default_device",
    "autocast_dtype",
    "seed_everything",
    "make_generator",
    "randn_like",
    "cpu_name",
]

FAST_ENV = "VDM_LITE_FAST"
T = TypeVar("T")


def fast_mode() -> bool:
    """True when ``VDM_LITE_FAST`` is set to a true value (CI sets it)."""
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full: T, fast: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise (sizes, steps, counts)."""
    return fast if fast_mode() else full


def progress_enabled(progress: bool | None = None) -> bool:
    """Resolve a ``progress=None`` argument: bars are on unless fast mode or
    ``VDM_LITE_PROGRESS=0`` turns them off."""
    if progress is not None:
        return bool(progress)
    env = os.environ.get("VDM_LITE_PROGRESS", "").strip().lower()
    if env in {"0", "false", "no", "off"}:
        return False
    if env in {"1", "true", "yes", "on"}:
        return True
    return not fast_mode()


def default_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device | str) -> torch.dtype:
    """The mixed-precision dtype for a device: bf16 where the GPU supports it,
    fp16 on older GPUs (a T4), fp32 on CPU and MPS."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy (if installed) and torch; return a CPU generator with that seed."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(seed)
    return make_generator(seed)


def make_generator(seed: int | torch.Generator | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` from a seed; a generator passes through unchanged;
    ``None`` gives a generator seeded from torch's global RNG."""
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator(device=device)
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    g.manual_seed(int(seed))
    return g


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` on the generator's
    device and moved to ``x``'s, so one seed gives the same noise on every device."""
    if generator is None:
        return torch.randn_like(x)
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    return noise.to(x.device)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), recorded next to measured results."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
