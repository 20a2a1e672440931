"""Graders of notebook 08, conditioning and classifier-free guidance: ``drop_condition``, the
condition dropout of training, and ``guided_eps``, eq. (6) on a class model of any
parameterization, against :meth:`vdm_lite.train.Trainer._batch` and
:class:`vdm_lite.samplers.ClassifierFreeGuidance`."""

from __future__ import annotations

import math
from typing import Callable

import torch

from ._grading import PASS, _a, _call, _dt, _fail, _gen, _matches, _mismatch, _randn
from ._models import _TinyDenoiser


def check_drop_condition(fn: Callable) -> None:
    """Grade ``drop_condition(labels, p, generator) -> labels`` by the properties of the draw in
    :meth:`vdm_lite.train.Trainer._batch` (classifier-free guidance, eq. (6)): ``(B,)`` long, each
    label kept or replaced by the null class ``-1`` (:data:`vdm_lite.conventions.NULL_CLASS`) with
    probability ``p``, independently, and a pure function of the generator."""
    from ..conventions import NULL_CLASS

    B = 20000
    labels = torch.randint(0, 18, (B,), generator=_gen(15))
    for p_drop in (0.1, 0.5, 0.0, 1.0):
        case = f"{B} labels in 0..17, p = {p_drop}"
        out = _call(fn, "drop_condition", {"labels": labels.clone(), "p": p_drop, "generator": _gen(16)})
        if not isinstance(out, torch.Tensor):
            _fail("drop_condition", case, [f"a torch.Tensor expected, got {type(out).__name__}"])
        if tuple(out.shape) != (B,) or out.dtype != torch.long:
            _fail("drop_condition", case, [f"labels of shape ({B},) and dtype int64 expected, got {tuple(out.shape)} "
                                           f"{_dt(out.dtype)}"])
        kept, dropped = out == labels, out == NULL_CLASS
        if not (kept | dropped).all():
            i = int((~(kept | dropped)).nonzero()[0])
            _fail("drop_condition", case, [f"label {int(labels[i])} (entry {i}) became {int(out[i])}: each label is either "
                                           f"kept or replaced by the null class {NULL_CLASS}"],
                  ["the null class is -1 (vdm_lite.conventions.NULL_CLASS), not 0: class 0 is the red circle"]
                  if bool((out[~kept] == 0).all()) else [])
        n = int(dropped.sum())
        sd = math.sqrt(B * p_drop * (1 - p_drop))
        if abs(n - B * p_drop) > 6 * sd + 0.5:
            hints = ["drop where torch.rand(B, generator=generator) < p: the probability of dropping is p"] \
                if abs(n - B * (1 - p_drop)) <= 6 * sd + 0.5 else []
            _fail("drop_condition", case, [f"{n} of {B} labels dropped; about {B * p_drop:.0f} expected (p = {p_drop})"], hints)
        if p_drop == 0.5:
            again = _call(fn, "drop_condition", {"labels": labels.clone(), "p": p_drop, "generator": _gen(16)})
            if not torch.equal(again, out):
                _fail("drop_condition", case, ["two calls with generators of the same seed gave different labels: pass "
                                               "generator= to torch.rand"])
            other = _call(fn, "drop_condition", {"labels": labels.clone(), "p": p_drop, "generator": _gen(17)})
            if torch.equal(other, out):
                _fail("drop_condition", case, ["generators of two different seeds gave the same drops: draw from the "
                                               "generator, once per label"])
            by_class = torch.stack([dropped[labels == c].float().mean() for c in range(18)])
            if (by_class - p_drop).abs().max() > 0.1:
                _fail("drop_condition", case, [f"the drop rate depends on the label (per class from {by_class.min():.2f} to "
                                               f"{by_class.max():.2f}): drop each label independently of its value"])
    print(f"{PASS} drop_condition replaces each label by the null class -1 with probability p (p = 0, 0.1, 0.5, 1 on "
          f"{B} labels), keeps the others, independently of the label, reproducibly from the generator")


def check_guided_eps(fn: Callable) -> None:
    """Grade ``guided_eps(model, z_t, logsnr, class_label, w) -> eps~`` ``(B, C, T, H, W)`` against
    :class:`vdm_lite.samplers.ClassifierFreeGuidance` (eq. (6)), its prediction converted to eps,
    for v-, eps- and x-predicting class models at ``w`` = 0, 1, 5."""
    from ..conventions import NULL_CLASS
    from ..diffusion import convert
    from ..samplers import ClassifierFreeGuidance

    g = _gen(18)
    cases = [("v", torch.float32), ("eps", torch.float64), ("x", torch.float32)]
    for n, (param, dtype) in enumerate(cases):
        model = _TinyDenoiser(3, param, num_classes=4, seed=40 + n, dtype=dtype)
        z = _randn((3, 3, 2, 4, 4), dtype, g)
        lam = torch.tensor([-3.0, 0.0, 4.0], dtype=dtype)
        label = torch.tensor([0, 3, 1])
        with torch.no_grad():
            pred_c = model(z, lam, class_label=label)
            pred_u = model(z, lam, class_label=torch.full_like(label, NULL_CLASS))
            pred_0 = model(z, lam, class_label=torch.zeros_like(label))
        eps = lambda pred, src=param: convert(pred, z, lam, src, "eps")  # noqa: E731
        for w in (0.0, 1.0, 5.0):
            case = f"{_a(param)}-predicting class model (model.parameterization = {param!r}), z_t {tuple(z.shape)} " \
                   f"{_dt(dtype)}, class_label {label.tolist()}, w = {w}"
            with torch.no_grad():
                ref = eps(ClassifierFreeGuidance(model, w)(z, lam, class_label=label))
                got = _call(fn, "guided_eps", {"model": model, "z_t": z, "logsnr": lam, "class_label": label, "w": w})
            p = _mismatch(got, ref, "the guided eps~")
            if p:
                alts = {
                    "the conditional and unconditional predictions are swapped: (1 + w) eps(z_t, c) - w eps(z_t)":
                        (1 + w) * eps(pred_u) - w * eps(pred_c),
                    "the unconditional prediction uses the null class -1 (vdm_lite.conventions.NULL_CLASS), not class 0":
                        (1 + w) * eps(pred_c) - w * eps(pred_0),
                    f"that is eq. (6) in the model's own space ({param}): convert the predictions to eps with "
                    "vdm_lite.diffusion.convert(pred, z_t, logsnr, model.parameterization, 'eps')":
                        (1 + w) * pred_c - w * pred_u,
                }
                if param != "v":
                    alts["the predictions were converted from 'v': read the model's parameterization, "
                         "model.parameterization"] = (1 + w) * eps(pred_c, "v") - w * eps(pred_u, "v")
                hints = [h for h, alt in alts.items() if _matches(got, alt)]
                if not w and _matches(got, eps(pred_u)):
                    hints.append("at w = 0 eq. (6) returns the conditional prediction eps(z_t, c)")
                _fail("guided_eps", case, [p], hints)
    print(f"{PASS} guided_eps matches vdm_lite.samplers.ClassifierFreeGuidance (converted to eps) for v-, eps- and "
          "x-predicting class models at w = 0, 1, 5 (float32 and float64)")
