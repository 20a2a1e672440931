"""Graders of notebook 06, training a video diffusion model: ``training_loss``, the loss of eq. (2)
in the model's own parameterization, and ``train_step``, one optimizer step with its EMA update,
against :func:`vdm_lite.diffusion.diffusion_loss` and :meth:`vdm_lite.train.Trainer.train_step`."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch

from ._grading import (
    PASS,
    _a,
    _as_number,
    _call,
    _describe,
    _dt,
    _fail,
    _gen,
    _matches,
    _mismatch,
    _per_example,
    _randn,
)
from ._models import _TinyDenoiser


def check_training_loss(fn: Callable) -> None:
    """Grade ``training_loss(model, x, logsnr, noise) -> (B,)`` against
    :func:`vdm_lite.diffusion.diffusion_loss` (eq. (2), the MSE in the model's own parameterization)
    for an eps-, a v- and an x-predicting model, at t from 0 (log-SNR 20) to 1 (log-SNR -20)."""
    from ..diffusion import diffusion_loss, q_sample
    from ..schedule import CosineSchedule, alpha_sigma

    schedule = CosineSchedule()
    g = _gen(11)
    cases = [("eps", (3, 3, 4, 8, 8), torch.float32, [0.0, 0.5, 1.0]),
             ("v", (4, 3, 2, 6, 6), torch.float64, [0.05, 0.3, 0.7, 0.95]),
             ("x", (2, 3, 3, 4, 4), torch.float32, [0.2, 0.9])]
    for n, (param, shape, dtype, ts) in enumerate(cases):
        model = _TinyDenoiser(shape[1], param, seed=20 + n, dtype=dtype)
        x, noise = _randn(shape, dtype, g), _randn(shape, dtype, g)
        t = torch.tensor(ts, dtype=dtype)
        logsnr = schedule.logsnr(t)
        case = f"{_a(param)}-predicting model (model.parameterization = {param!r}), x {tuple(shape)} {_dt(dtype)}, " \
               f"logsnr {[round(v, 2) for v in logsnr.tolist()]}"
        with torch.no_grad():
            ref = diffusion_loss(model, x, schedule, t=t, noise=noise)
        got = _call(fn, "training_loss", {"model": model, "x": x, "logsnr": logsnr, "noise": noise})
        if isinstance(got, torch.Tensor) and not got.requires_grad:
            _fail("training_loss", case, ["the loss does not depend on the model's weights (requires_grad is False): "
                                          "compute it from model(z_t, logsnr) without torch.no_grad() or .item(), so "
                                          "loss.backward() can train the model"])
        got_d = got.detach() if isinstance(got, torch.Tensor) else got
        p = _mismatch(got_d, ref, "the per-example loss (B,)")
        if p:
            hints = []
            if isinstance(got_d, torch.Tensor) and got_d.numel() == 1:
                hints.append("return one loss per example, shape (B,): average over every dimension but the batch, "
                             "e.g. .flatten(1).mean(1)")
            alpha, sigma = (_per_example(v, x) for v in alpha_sigma(logsnr))
            z_t, _ = q_sample(x, logsnr, noise=noise)
            with torch.no_grad():
                pred = model(z_t, logsnr)
            targets = {"eps": noise, "v": alpha * noise - sigma * x, "x": x, "-v": sigma * x - alpha * noise}
            for name, target in targets.items():
                mse = (pred - target).square().flatten(1).mean(1)
                if name != param and _matches(got_d, mse):
                    hints.append(f"that is the MSE to the target of {'v with the wrong sign' if name == '-v' else name + '-prediction'}; "
                                 f"this model predicts {param} (read model.parameterization): the targets are eps, "
                                 "v = alpha_t eps - sigma_t x, and x")
                if name == param and _matches(got_d, mse * x[0].numel()):
                    hints.append("that is a sum over the elements of each example; eq. (2)'s loss here is their mean")
            _fail("training_loss", case, [p], hints)
    print(f"{PASS} training_loss matches vdm_lite.diffusion.diffusion_loss for eps-, v- and x-predicting models "
          "(float32 and float64, t from 0 to 1: log-SNR 20 to -20), one loss per example")


def check_train_step(fn: Callable) -> None:
    """Grade ``train_step(model, ema, opt, x, t, noise, schedule, decay) -> loss`` against the update
    of :meth:`vdm_lite.train.Trainer.train_step` (without its gradient clipping and learning-rate
    warmup): the loss of eq. (2) (:func:`vdm_lite.diffusion.diffusion_loss`), a backward pass, an
    optimizer step, then the EMA update ``ema = decay ema + (1 - decay) p``. Three steps in a row on
    a small model and AdamW; the loss, the weights and the EMA are checked apart after each."""
    from ..diffusion import diffusion_loss
    from ..schedule import CosineSchedule

    schedule = CosineSchedule()
    g = _gen(12)
    cases = [("eps", 0.9, torch.float32), ("v", 0.5, torch.float64)]
    n_steps = 3
    for param, decay, dtype in cases:
        mine = _TinyDenoiser(3, param, seed=30, dtype=dtype)
        ref = copy.deepcopy(mine)
        mine_ema = copy.deepcopy(mine).requires_grad_(False)
        with torch.no_grad():  # the EMA starts away from the weights, so every part of its update shows
            for p in mine_ema.parameters():
                p.add_(0.1 * _randn(tuple(p.shape), dtype, g))
        ref_ema = copy.deepcopy(mine_ema)
        mine_opt = torch.optim.AdamW(mine.parameters(), lr=0.05, betas=(0.9, 0.99))
        ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.05, betas=(0.9, 0.99))
        names = [name for name, _ in ref.named_parameters()]
        for step in range(n_steps):
            x, noise = _randn((2, 3, 3, 6, 6), dtype, g), _randn((2, 3, 3, 6, 6), dtype, g)
            t = torch.rand(2, generator=g, dtype=dtype)
            case = f"step {step + 1} of {n_steps} in a row, {_a(param)}-predicting model, AdamW(lr=0.05), decay = {decay}"
            before = [p.detach().clone() for p in ref.parameters()]
            ema_before = [p.detach().clone() for p in ref_ema.parameters()]
            # the reference: the same lines as Trainer.train_step
            ref_opt.zero_grad(set_to_none=True)
            loss = diffusion_loss(ref, x, schedule, t=t, noise=noise).mean()
            loss.backward()
            ref_opt.step()
            with torch.no_grad():
                torch._foreach_lerp_(list(ref_ema.parameters()), [p.detach() for p in ref.parameters()], 1.0 - decay)
            got = _call(fn, "train_step", {"model": mine, "ema": mine_ema, "opt": mine_opt, "x": x, "t": t,
                                           "noise": noise, "schedule": schedule, "decay": decay})
            problems, hints = {}, []
            value = _as_number(got)
            if value is None:
                problems["the returned loss"] = (f"the returned loss: a number expected (loss.item()), got "
                                                 f"{_describe(got) if got is not None else 'None'}")
            elif not math.isclose(value, loss.item(), rel_tol=1e-5, abs_tol=1e-7):
                problems["the returned loss"] = (f"the returned loss: expected {loss.item():.6g} (the batch mean of eq. (2), "
                                                 f"computed before the step), got {value:.6g}")
            else:
                problems["the returned loss"] = None
            wrong = [n for n, a, b in zip(names, mine.parameters(), ref.parameters())
                     if not torch.allclose(a.detach(), b.detach(), rtol=1e-4, atol=1e-6)]
            problems["the weights after opt.step()"] = (f"the weights after opt.step(): {', '.join(wrong)} differ from "
                                                        "the reference's" if wrong else None)
            if wrong:
                if all(torch.equal(a.detach(), b) for a, b in zip(mine.parameters(), before)):
                    hints.append("the model's weights did not change: call loss.backward() and then opt.step()")
                elif step > 0:
                    hints.append("the earlier steps were right: the gradients add up across steps unless you call "
                                 "opt.zero_grad() before loss.backward()")
            ema_got = [p.detach() for p in mine_ema.parameters()]
            ema_wrong = [n for n, a, b in zip(names, ema_got, ref_ema.parameters()) if not torch.allclose(a, b, rtol=1e-4, atol=1e-6)]
            problems["the EMA"] = (f"the EMA: {', '.join(ema_wrong)} differ from decay * ema + (1 - decay) * p"
                                   if ema_wrong else None)
            if ema_wrong and not wrong:
                new = [p.detach() for p in ref.parameters()]
                close = lambda alt: all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(ema_got, alt))  # noqa: E731
                if close(ema_before):
                    hints.append("the EMA did not change: update its parameters in place (under torch.no_grad())")
                elif close(new):
                    hints.append("the EMA is a copy of the new weights: ema = decay * ema + (1 - decay) * p")
                elif close([decay * p + (1 - decay) * e for p, e in zip(new, ema_before)]):
                    hints.append("decay and 1 - decay are swapped: the EMA keeps the fraction decay of itself")
                elif close([decay * e + (1 - decay) * p for p, e in zip(before, ema_before)]):
                    hints.append("that EMA uses the weights from before opt.step(): update it after the step")
            if any(p.requires_grad for p in mine_ema.parameters()):
                problems["the EMA"] = "the EMA: its parameters require gradients now; update them under torch.no_grad()"
            if any(problems.values()):
                _fail("train_step", case, [p for p in problems.values() if p] +
                      [f"{k}: correct" for k, p in problems.items() if p is None], hints)
    print(f"{PASS} train_step matches Trainer.train_step's update (eq. (2) loss, backward, AdamW step, EMA) on "
          f"{n_steps} steps in a row of an eps- and a v-predicting model, EMA decay 0.9 and 0.5")
