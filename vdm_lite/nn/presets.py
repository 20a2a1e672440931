"""Named :class:`~vdm_lite.nn.unet.UNetConfig` presets: the paper's Appendix A models and
small ones that train on a CPU or a free GPU.

    python -m vdm_lite.nn.presets          # table of presets with parameter counts

Paper presets (Appendix A table: base channels, multipliers, blocks per resolution,
attention resolutions 8/16/32, head dim, 1024-d conditioning MLP, dropout, frames x
resolution, prediction target). The paper's text models use frozen BERT-large token
embeddings; here the ``t2v-*`` presets use the frozen MiniLM (:mod:`vdm_lite.nn.text`),
which is not counted (it is not a parameter of the U-Net). The paper reports no parameter
counts; the numbers printed are those of this implementation.

Small presets:

* ``cpu-tiny``: for tests; a training step on ``2 x 3 x 8 x 16 x 16`` takes well under a second.
* ``cpu-small``: 16 frames of 32x32; learns a small synthetic video data set in about an hour
  on 2 CPU cores.
* ``colab``: 16 frames of 64x64 on a Colab T4/L4 GPU.

Parameter counts are taken on the ``meta`` device: nothing is allocated, so the 1B-parameter
models count instantly on a laptop.
"""

from __future__ import annotations

import torch

from .unet import UNet3D, UNetConfig, count_parameters

__all__ = ["PRESETS", "PAPER_PRESETS", "get_preset", "build", "preset_parameters", "preset_table"]

_PAPER = dict(attention_resolutions=(8, 16, 32), head_dim=64, emb_dim=1024, image_size=64, num_frames=16)

PRESETS: dict[str, UNetConfig] = {
    # Appendix A
    "ucf101": UNetConfig(base_channels=256, channel_mults=(1, 2, 4, 8), num_res_blocks=2, mlp_layers=4, dropout=0.1, parameterization="eps", **_PAPER),
    "bair": UNetConfig(base_channels=128, channel_mults=(1, 2, 3, 4), num_res_blocks=3, mlp_layers=2, dropout=0.1, parameterization="v", **_PAPER),
    "kinetics600": UNetConfig(base_channels=256, channel_mults=(1, 2, 4, 8), num_res_blocks=2, mlp_layers=2, dropout=0.1, parameterization="v", **_PAPER),
    "t2v-small": UNetConfig(base_channels=128, channel_mults=(1, 2, 4, 8), num_res_blocks=2, mlp_layers=4, dropout=0.0, parameterization="eps", text_encoder="minilm", **_PAPER),
    "t2v-large": UNetConfig(base_channels=256, channel_mults=(1, 2, 4, 8), num_res_blocks=2, mlp_layers=4, dropout=0.0, parameterization="eps", text_encoder="minilm", **_PAPER),
    "t2v-128": UNetConfig(
        base_channels=128, channel_mults=(1, 2, 4, 8, 16), num_res_blocks=2, attention_resolutions=(8, 16, 32), head_dim=128,
        emb_dim=1024, mlp_layers=4, dropout=0.0, num_frames=9, image_size=128, parameterization="eps", text_encoder="minilm",
    ),
    # small
    "cpu-tiny": UNetConfig(
        base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(8,), head_dim=16, emb_dim=64,
        mlp_layers=2, norm_groups=8, num_frames=8, image_size=16, parameterization="eps", max_rel_distance=16,
    ),
    "cpu-small": UNetConfig(
        base_channels=32, channel_mults=(1, 2, 4), num_res_blocks=1, attention_resolutions=(16, 8), head_dim=32, emb_dim=128,
        mlp_layers=2, norm_groups=8, num_frames=16, image_size=32, parameterization="v", max_rel_distance=16,
    ),
    "colab": UNetConfig(
        base_channels=64, channel_mults=(1, 2, 4, 4), num_res_blocks=2, attention_resolutions=(16, 8), head_dim=64, emb_dim=256,
        mlp_layers=2, dropout=0.1, norm_groups=32, num_frames=16, image_size=64, parameterization="v",
    ),
}
PAPER_PRESETS = ("ucf101", "bair", "kinetics600", "t2v-small", "t2v-large", "t2v-128")


def get_preset(name: str, **overrides) -> UNetConfig:
    """A copy of preset ``name`` with ``overrides`` applied, e.g.
    ``get_preset("cpu-tiny", num_classes=10, dropout=0.0)``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)


def build(name_or_config: str | UNetConfig, device: torch.device | str | None = None, **overrides) -> UNet3D:
    """Build a :class:`UNet3D` from a preset name or a config; ``device="meta"`` allocates nothing."""
    cfg = get_preset(name_or_config, **overrides) if isinstance(name_or_config, str) else name_or_config.replace(**overrides)
    with torch.device(device or "cpu"):
        return UNet3D(cfg)


def preset_parameters(name: str) -> int:
    """Trainable parameter count of a preset (built on the meta device)."""
    return count_parameters(build(name, device="meta"))


def _fmt(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def preset_table(names=None) -> str:
    """A plain-text table of the presets: shape, widths, attention, target and parameter count."""
    names = list(PRESETS) if names is None else list(names)
    head = ("preset", "frames x res", "ch", "mults", "blocks", "attn res", "head", "emb", "mlp", "drop", "target", "text", "params")
    rows = [head]
    for n in names:
        c = PRESETS[n]
        rows.append((
            n, f"{c.num_frames}x{c.image_size}x{c.image_size}", str(c.base_channels), ",".join(map(str, c.channel_mults)),
            str(c.num_res_blocks), ",".join(map(str, sorted(c.attention_resolutions))), str(c.head_dim), str(c.emb_dim),
            str(c.mlp_layers), f"{c.dropout:g}", c.parameterization, c.text_encoder or "-", _fmt(preset_parameters(n)),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    print(preset_table())


if __name__ == "__main__":
    main()
