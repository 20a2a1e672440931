"""What every grader shares: comparing a student's output with the library's, and failing helpfully.

**Graders** call the student's function at several inputs (shapes, dtypes, edge log-SNRs), compare
it with the library, and raise ``AssertionError`` saying which output, term or shape is off; on
success they print one line, starting with :data:`PASS`. A ``NotImplementedError`` (the "your
turn" blank) passes through unchanged.

* :func:`_call` calls the student's function, positionally; its errors, and changes of its inputs
  in place, become ``AssertionError`` messages that name the inputs;
* :func:`_mismatch` says what differs from the library's output (type, shape, dtype, values),
  :func:`_matches` recognizes a known wrong answer (for hints), :func:`_fail` raises the report;
* the rest build inputs (:func:`_gen`, :func:`_randn`, :func:`_per_example`, :func:`_alpha_sigma`)
  and name them in messages (:func:`_describe`, :func:`_dt`, :func:`_a`, :func:`_as_number`)."""

from __future__ import annotations

from typing import Any, Callable

import torch

PASS = "\u2713"  # the check mark that starts every pass line


# -- comparing a student's output with the library's ----------------------------------------

def _tol(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) for outputs of ``dtype``: the inputs of every case are well conditioned in it."""
    return (1e-7, 1e-9) if dtype == torch.float64 else (1e-4, 1e-5)


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() <= 8 and value.ndim <= 1:
            vals = [round(v, 4) if isinstance(v, float) else v for v in value.tolist()]
            return f"{vals} ({str(value.dtype).removeprefix('torch.')})"
        return f"{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, torch.Generator):
        return "a torch.Generator"
    if not isinstance(value, (bool, int, float, str, list, tuple, dict, type(None))):
        return f"a {type(value).__name__}"  # a model, an optimizer, a denoiser or a schedule: its name, not its repr
    return repr(value)


def _call(fn: Callable, name: str, args: dict[str, Any]) -> Any:
    """``fn(*args.values())`` (positional, so the student may name the parameters freely); any
    exception but the blank's NotImplementedError becomes an AssertionError naming the inputs, and
    so does a change of a tensor argument in place."""
    before = {k: v.clone() for k, v in args.items() if isinstance(v, torch.Tensor)}
    try:
        out = fn(*args.values())
    except NotImplementedError:
        raise
    except Exception as exc:  # the student's bug, reported with the inputs that caused it
        inputs = ", ".join(f"{k}={_describe(v)}" for k, v in args.items())
        hint = ""
        if "must match the size of tensor" in str(exc) or "broadcast" in str(exc):
            hint = ("\n  hint: a per-example value of shape (B,) must be reshaped to (B, 1, ..., 1) to broadcast "
                    "against a (B, ...) tensor, e.g. v.reshape(-1, *[1] * (x.ndim - 1))")
        raise AssertionError(f"{name}({inputs}) raised {type(exc).__name__}: {exc}{hint}") from exc
    for k, v in before.items():
        if not torch.equal(v, args[k]):
            raise AssertionError(f"{name} changed its input {k} in place: compute a new tensor instead")
    return out


def _mismatch(got: Any, expected: torch.Tensor, what: str, rtol: float | None = None,
              atol: float | None = None, broadcast: bool = False) -> str | None:
    """None if ``got`` equals ``expected`` (within the dtype's tolerance), else what is wrong."""
    if not isinstance(got, torch.Tensor):
        return f"{what}: a torch.Tensor expected, got {type(got).__name__}"
    if broadcast and got.shape != expected.shape:
        try:
            shape = torch.broadcast_shapes(got.shape, expected.shape)
        except RuntimeError:
            shape = None
        if shape != expected.shape:
            return (f"{what}: shape {tuple(got.shape)} does not broadcast to {tuple(expected.shape)}; give it shape "
                    f"{(expected.shape[0],) + (1,) * (expected.ndim - 1)} (one value per example) or "
                    f"{tuple(expected.shape)}")
        got = got.expand(expected.shape)
    if got.shape != expected.shape:
        msg = f"{what}: shape {tuple(expected.shape)} expected, got {tuple(got.shape)}"
        if sorted(got.shape) == sorted(expected.shape):
            msg += " (the same sizes in another order: a transpose or permute is missing)"
        return msg
    if got.dtype != expected.dtype:
        return (f"{what}: dtype {str(expected.dtype).removeprefix('torch.')} expected, got "
                f"{str(got.dtype).removeprefix('torch.')}" +
                (" (keep the input's dtype: create new tensors with dtype=x.dtype, or *_like(x))"
                 if expected.is_floating_point() else ""))
    if expected.dtype == torch.bool or not expected.is_floating_point():
        bad = got != expected
        if bad.any():
            idx = tuple(int(i) for i in bad.nonzero()[0])
            return f"{what}: {int(bad.sum())} of {bad.numel()} entries differ, first at index {idx}: expected " \
                   f"{expected[idx].item()}, got {got[idx].item()}"
        return None
    if not torch.isfinite(got).all() and torch.isfinite(expected).all():
        idx = tuple(int(i) for i in (~torch.isfinite(got)).nonzero()[0])
        return f"{what}: non-finite value {got[idx].item()} at index {idx} (expected {expected[idx].item():.6g})"
    r, a = _tol(expected.dtype)
    rtol, atol = rtol if rtol is not None else r, atol if atol is not None else a
    err = (got - expected).abs()
    bad = err > atol + rtol * expected.abs()
    if bad.any():
        idx = _unravel(int((err - rtol * expected.abs()).flatten().argmax()), err.shape)  # the worst entry
        return (f"{what}: values differ at {int(bad.sum())} of {bad.numel()} entries; max |error| "
                f"{err.max().item():.3g}, e.g. at index {idx}: expected {expected[idx].item():.6g}, "
                f"got {got[idx].item():.6g}")
    return None


def _unravel(flat: int, shape) -> tuple[int, ...]:
    idx = []
    for size in reversed(tuple(shape)):
        idx.append(flat % size)
        flat //= size
    return tuple(reversed(idx))


def _matches(got: Any, alternative: torch.Tensor) -> bool:
    """Whether ``got`` equals a known wrong answer (for hints)."""
    if not isinstance(got, torch.Tensor) or got.dtype != alternative.dtype:
        return False
    try:
        got = got.expand(alternative.shape)
    except RuntimeError:
        return False
    rtol, atol = _tol(alternative.dtype)
    return bool(torch.allclose(got, alternative, rtol=rtol, atol=atol))


def _fail(name: str, case: str, problems: list[str], hints: list[str] = ()) -> None:
    lines = [f"{name} is not right yet, for {case}:"] + [f"  - {p}" for p in problems]
    lines += [f"  hint: {h}" for h in dict.fromkeys(hints)]  # each hint once
    raise AssertionError("\n".join(lines))


def _per_example(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *[1] * (x.ndim - 1))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(shape, dtype, g) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=dtype)


def _alpha_sigma(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from ..schedule import alpha_sigma

    return alpha_sigma(lam)


# -- names and numbers in the messages ------------------------------------------------------

def _dt(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _a(param: str) -> str:
    """``"an eps"``, ``"a v"``, ``"an x"``: the article before a parameterization's name."""
    return f"{'an' if param in ('eps', 'x') else 'a'} {param}"


def _as_number(got: Any) -> float | None:
    """A float from a Python number or a one-element real tensor; None otherwise."""
    if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_complex():
        return float(got.detach())
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(got)
    return None
