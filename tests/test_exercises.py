"""The notebooks' graded exercises (vdm_lite.exercises): every solution passes its grader, every
blank of the student version fails with the "your turn" message, the graders say what is off,
and the student version is written from the committed notebooks."""

import json
import re
from pathlib import Path

import pytest
import torch

from vdm_lite import exercises
from vdm_lite.exercises import GRADERS, find_exercises, student_notebook, student_source

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# The notebooks that must hold at least one graded exercise: the one place to extend.
REQUIRED = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11")


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


EXERCISES = [(path.name[:2], ex) for path in NOTEBOOKS for ex in find_exercises(_nb(path))]


def _define(source: str, name: str):
    """Run an exercise cell on its own (it imports what it uses) and return the function `name`."""
    namespace: dict = {}
    exec(compile(source, f"<exercise {name}>", "exec"), namespace)
    return namespace[name]


def test_every_notebook_is_scanned_and_the_required_ones_have_exercises():
    assert len(NOTEBOOKS) == 11, [p.name for p in NOTEBOOKS]
    prefixes = [p.name[:2] for p in NOTEBOOKS]
    assert set(REQUIRED) <= set(prefixes), REQUIRED
    per_notebook = {prefix: [ex["name"] for nb, ex in EXERCISES if nb == prefix] for prefix in prefixes}
    missing = [prefix for prefix in REQUIRED if not per_notebook[prefix]]
    assert not missing, f"notebooks without a graded exercise: {missing}"


@pytest.mark.parametrize("nb, ex", EXERCISES, ids=[f"{nb}-{ex['name']}" for nb, ex in EXERCISES])
def test_the_solution_passes_its_grader(nb, ex, capsys):
    assert ex["name"] in GRADERS, f"notebook {nb}: no grader exercises.check_{ex['name']} for {ex['name']}"
    GRADERS[ex["name"]](_define(ex["source"], ex["name"]))
    assert capsys.readouterr().out.startswith(exercises.PASS + f" {ex['name']} ")


@pytest.mark.parametrize("nb, ex", EXERCISES, ids=[f"{nb}-{ex['name']}" for nb, ex in EXERCISES])
def test_the_blank_fails_with_your_turn(nb, ex):
    blank = _define(student_source(ex["source"]), ex["name"])
    with pytest.raises(NotImplementedError, match=r"^your turn: "):
        GRADERS[ex["name"]](blank)


@pytest.mark.parametrize("nb, ex", EXERCISES, ids=[f"{nb}-{ex['name']}" for nb, ex in EXERCISES])
def test_the_next_code_cell_grades_the_exercise(nb, ex):
    path = next(p for p in NOTEBOOKS if p.name.startswith(nb))
    cells = _nb(path)["cells"]
    assert ex["grader_cell"] is not None, f"{path.name}: no code cell after the exercise {ex['name']}"
    grader = "".join(cells[ex["grader_cell"]]["source"])
    assert re.search(rf"\bexercises\.check_{ex['name']}\({ex['name']}\)", grader), (path.name, grader)
    # the docstring gives the shapes, the equation or section, and the library function it is graded against
    doc = _define(ex["source"], ex["name"]).__doc__ or ""
    assert re.search(r"\([A-Z]\w*(,|\))", doc), (ex["name"], "no shape like (B, ...) in the docstring")
    assert re.search(r"eq\. \(\d\)|Section \d", doc) and "vdm_lite." in doc, (ex["name"], doc)


def test_every_grader_is_used_by_a_notebook():
    assert sorted(GRADERS) == sorted({ex["name"] for _, ex in EXERCISES})


def test_the_graders_say_what_is_off():
    def q_no_reshape(x, logsnr, noise):
        return torch.sigmoid(logsnr).sqrt() * x + torch.sigmoid(-logsnr).sqrt() * noise

    with pytest.raises(AssertionError, match=r"raised RuntimeError.*\n  hint: a per-example value of shape \(B,\)"):
        exercises.check_q_sample(q_no_reshape)

    def q_alpha_squared(x, logsnr, noise):
        lam = logsnr.reshape(-1, *[1] * (x.ndim - 1))
        return torch.sigmoid(lam) * x + torch.sigmoid(-lam).sqrt() * noise

    with pytest.raises(AssertionError) as err:
        exercises.check_q_sample(q_alpha_squared)
    assert "the signal term alpha_t x (called with noise = 0): values differ" in str(err.value)
    assert "the noise term sigma_t eps: correct" in str(err.value) and "alpha_t^2 x" in str(err.value)

    def posterior_sigma_t(z_t, x, logsnr_s, logsnr_t):
        from vdm_lite.diffusion import posterior

        mean, _ = posterior(z_t, x, logsnr_s, logsnr_t)
        lam_s, lam_t = (v.reshape(-1, *[1] * (z_t.ndim - 1)) for v in (logsnr_s, logsnr_t))
        return mean, (1 - torch.exp(lam_t - lam_s)) * torch.sigmoid(-lam_t)

    with pytest.raises(AssertionError) as err:
        exercises.check_posterior(posterior_sigma_t)
    assert "the variance sigma~^2_{s|t}: values differ" in str(err.value)
    assert "the mean mu_{s|t}: correct" in str(err.value) and "uses sigma_t^2" in str(err.value)

    def conv_not_unfolded(x, weight, bias):
        B, C, T, H, W = x.shape
        return torch.nn.functional.conv2d(x.transpose(1, 2).reshape(B * T, C, H, W), weight, bias, padding=1).view(B, T, -1, H, W)

    with pytest.raises(AssertionError, match=re.escape("shape (2, 6, 5, 8, 8) expected, got (2, 5, 6, 8, 8)")):
        exercises.check_conv1x3x3_video(conv_not_unfolded)

    def mask_without_diagonal(image_mask):
        video = ~image_mask
        return video[:, :, None] & video[:, None, :]

    with pytest.raises(AssertionError, match=r"query frame i=6 \(image\) may attend to key frame j=6 \(image\)"):
        exercises.check_temporal_attention_mask(mask_without_diagonal)

    def ancestral_without_gamma(z_t, x_hat, logsnr_s, logsnr_t, noise, gamma=0.0):
        from vdm_lite.diffusion import posterior

        mean, var = posterior(z_t, x_hat, logsnr_s, logsnr_t)
        return mean if noise is None else mean + var.sqrt() * noise

    with pytest.raises(AssertionError, match="correct at gamma = 0 only"):
        exercises.check_ancestral_step(ancestral_without_gamma)

    with pytest.raises(AssertionError, match="got an image frame from itself"):
        exercises.check_draw_image_sources(
            lambda B, T, K, g: (torch.randint(0, B, (B, K), generator=g), torch.randint(0, T, (B, K), generator=g)))

    with pytest.raises(AssertionError, match="swapped"):
        exercises.check_classifier_free_guidance(lambda c, u, w: (1 + w) * u - w * c)


def test_the_graders_of_notebooks_06_to_11_say_what_is_off():
    import math

    from vdm_lite.diffusion import diffusion_loss

    def loss_eps_target_always(model, x, logsnr, noise):
        lam = logsnr.reshape(-1, *[1] * (x.ndim - 1))
        z_t = torch.sigmoid(lam).sqrt() * x + torch.sigmoid(-lam).sqrt() * noise
        return (model(z_t, logsnr) - noise).square().flatten(1).mean(1)

    with pytest.raises(AssertionError, match=r"MSE to the target of eps-prediction; this model predicts v"):
        exercises.check_training_loss(loss_eps_target_always)

    def step_without_zero_grad(model, ema, opt, x, t, noise, schedule, decay):
        loss = diffusion_loss(model, x, schedule, t=t, noise=noise).mean()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.mul_(decay).add_(p, alpha=1 - decay)
        return loss.item()

    with pytest.raises(AssertionError, match=r"step 2 of 3(.|\n)*opt\.zero_grad\(\)"):
        exercises.check_train_step(step_without_zero_grad)

    def step_decay_swapped(model, ema, opt, x, t, noise, schedule, decay):
        opt.zero_grad()
        loss = diffusion_loss(model, x, schedule, t=t, noise=noise).mean()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.mul_(1 - decay).add_(p, alpha=decay)
        return loss.item()

    with pytest.raises(AssertionError) as err:
        exercises.check_train_step(step_decay_swapped)
    assert "the weights after opt.step(): correct" in str(err.value) and "swapped" in str(err.value)

    with pytest.raises(AssertionError, match=r"frame i=6 \(image\) should have position 5"):
        exercises.check_frame_positions(lambda m: torch.arange(m.shape[1]).expand(m.shape))

    def attention_without_mask(q, k, v, bias, image_mask):
        return (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias).softmax(-1) @ v

    with pytest.raises(AssertionError, match=r"image frame i=5 of example b=0: its output should be v\[b, :, i\] itself"):
        exercises.check_masked_temporal_attention(attention_without_mask)

    with pytest.raises(AssertionError, match=r"the null class is -1"):
        exercises.check_drop_condition(lambda labels, p, g: labels.masked_fill(torch.rand(labels.shape[0], generator=g) < p, 0))

    def guided_without_conversion(model, z_t, logsnr, class_label, w):
        return (1 + w) * model(z_t, logsnr, class_label=class_label) - w * model(z_t, logsnr, class_label=torch.full_like(class_label, -1))

    with pytest.raises(AssertionError, match=r"convert the predictions to eps"):
        exercises.check_guided_eps(guided_without_conversion)

    def recon_over_all_frames(denoise_x, z_t, logsnr, x_a, known, w_r):
        z = z_t.detach().requires_grad_(True)
        x_hat = denoise_x(z, logsnr)
        (grad,) = torch.autograd.grad((x_a - x_hat).square().sum(), z)
        return x_hat.detach() - w_r * torch.sigmoid(logsnr).sqrt().reshape(-1, 1, 1, 1, 1) / 2 * grad * ~known[:, None, None]

    with pytest.raises(AssertionError) as err:
        exercises.check_reconstruction_guided_x(recon_over_all_frames)
    assert "x~ on the known frames: correct" in str(err.value) and "known frames only" in str(err.value)

    def superres_picking_pixels(denoise_x, z_t, logsnr, x_a, w_r):
        z = z_t.detach().requires_grad_(True)
        x_hat = denoise_x(z, logsnr)
        f = z.shape[-1] // x_a.shape[-1]
        (grad,) = torch.autograd.grad((x_a - x_hat[..., ::f, ::f]).square().sum(), z)
        return x_hat.detach() - w_r * torch.sigmoid(logsnr).sqrt().reshape(-1, 1, 1, 1, 1) / 2 * grad

    with pytest.raises(AssertionError, match=r"box average over f x f pixels .*not every f-th pixel"):
        exercises.check_superres_guided_x(superres_picking_pixels)

    with pytest.raises(AssertionError, match=r"divides by N; the unbiased covariance divides by N - 1"):
        exercises.check_fit_gaussian(lambda f: (f.double().mean(0), torch.cov(f.double().T, correction=0).reshape(f.shape[1], -1)))

    def frechet_as_if_commuting(mu1, sigma1, mu2, sigma2):
        e1, e2 = torch.linalg.eigvalsh(sigma1).clamp_min(0), torch.linalg.eigvalsh(sigma2).clamp_min(0)
        return float((mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * (e1 * e2).sqrt().sum())

    with pytest.raises(AssertionError) as err:
        exercises.check_frechet(frechet_as_if_commuting)
    assert "the mean term ||mu1 - mu2||^2 (equal covariances): correct" in str(err.value)
    assert "unless S1 and S2 commute" in str(err.value)


def test_the_train_step_solution_is_the_trainers_update(tmp_path):
    """Notebook 06's train_step, run on the batch, times and noise that Trainer.train_step draws (no
    gradient clipping, no warmup), ends with the Trainer's weights and EMA: the grader's reference is
    the Trainer's update."""
    import copy

    from vdm_lite.config import get_preset
    from vdm_lite.diffusion import sample_t
    from vdm_lite.overrides import apply_overrides
    from vdm_lite.train import Trainer, seed_for

    ex = next(ex for nb, ex in EXERCISES if ex["name"] == "train_step")
    train_step = _define(ex["source"], "train_step")
    cfg = apply_overrides(get_preset("cpu-smoke"), dict(steps=2, batch_size=2, frames=4, grad_clip=0.0, warmup_steps=0,
                                                        ckpt_every=0, sample_every=-1, log_every=1))
    trainer = Trainer(cfg, run_dir=tmp_path / "run", device="cpu")
    model, ema = copy.deepcopy(trainer.model), copy.deepcopy(trainer.ema)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)
    for step in range(2):
        x, cond = trainer._batch(step, 0, torch.Generator().manual_seed(seed_for(cfg.seed, step, 0, 0)))
        assert not cond  # unconditional
        noise_gen = torch.Generator().manual_seed(seed_for(cfg.seed, step, 0, 0, 1))
        t = sample_t(x.shape[0], noise_gen, cfg.low_discrepancy)  # as diffusion_loss draws them: t, then the noise
        noise = torch.randn(x.shape, generator=noise_gen)
        loss = train_step(model, ema, opt, x, t, noise, trainer.schedule, trainer.ema_decay_at(step))
        logged = trainer.train_step()
        assert loss == pytest.approx(logged["loss"], rel=1e-5)
    for mine, theirs in ((model, trainer.model), (ema, trainer.ema)):
        for (name, a), b in zip(mine.named_parameters(), theirs.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_student_source_replaces_each_block_and_rejects_broken_markers():
    source = (
        "def f(x):\n"
        '    """doc"""\n'
        "    # --- solution (your turn: write it) ---\n"
        "    return x\n"
        "    # --- end solution ---\n"
    )
    assert student_source(source) == 'def f(x):\n    """doc"""\n    raise NotImplementedError("your turn: write it")\n'
    assert student_source("x = 1\n") == "x = 1\n"
    with pytest.raises(ValueError, match="no '# --- end solution ---'"):
        student_source("    # --- solution (your turn: a) ---\n    pass\n")
    with pytest.raises(ValueError, match="outside a solution block"):
        student_source("    # --- end solution ---\n")
    with pytest.raises(ValueError, match="outside a solution block"):
        student_source("    # --- solution ---\n    pass\n    # --- end solution ---\n")  # no "(your turn: ...)"


def test_the_student_version_is_written_from_the_committed_notebooks(tmp_path, capsys):
    out = tmp_path / "student"
    assert exercises._main(["--student", str(ROOT / "notebooks"), str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(NOTEBOOKS) and all(re.search(r"\d+ exercise\(s\)$", line) for line in lines)
    for path in NOTEBOOKS:
        original, student = _nb(path), _nb(out / path.name)
        assert len(student["cells"]) == len(original["cells"])
        assert "Student version" in "".join(student["cells"][0]["source"])
        for ex in find_exercises(original):
            cell = student["cells"][ex["cell"]]
            text = "".join(cell["source"])
            assert "# --- solution" not in text and "# --- end solution ---" not in text
            assert 'raise NotImplementedError("your turn: ' in text
            assert cell["outputs"] == [] and student["cells"][ex["grader_cell"]]["outputs"] == []
        kept = [i for i, c in enumerate(original["cells"]) if c["cell_type"] == "code"
                and not exercises.is_exercise_cell(c) and not exercises.is_grader_cell(c)]
        assert all(student["cells"][i] == original["cells"][i] for i in kept), path.name  # the rest untouched
    assert student_notebook(original) == _nb(out / NOTEBOOKS[-1].name)
    with pytest.raises(SystemExit):  # never over the source of truth
        exercises._main(["--student", str(ROOT / "notebooks"), str(ROOT / "notebooks")])
