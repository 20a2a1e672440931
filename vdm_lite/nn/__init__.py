"""The network of Section 3 (Figure 1): a 3D U-Net factorized over space and time.

* :mod:`vdm_lite.nn.unet`         -- :class:`UNetConfig`, :class:`UNet3D`, residual blocks
* :mod:`vdm_lite.nn.attention`    -- spatial / temporal attention, relative bias, image mask
* :mod:`vdm_lite.nn.conditioning` -- log-SNR Fourier features, class / text embeddings, nulls
* :mod:`vdm_lite.nn.text`         -- byte-level tiny text encoder, frozen pretrained MiniLM
* :mod:`vdm_lite.nn.presets`      -- Appendix A configurations and small CPU/Colab ones

Notebook ``notebooks/04_unet3d.ipynb`` builds the network block by block.
"""

from .attention import (
    RelativePositionBias,
    SpaceTimeAttention,
    SpatialAttention,
    TemporalAttention,
    frame_positions,
    temporal_attention_mask,
)
from .conditioning import NULL_CLASS, NULL_TEXT, AttentionPooling, ClassEmbedding, Conditioning, TextConditioning, logsnr_fourier
from .text import ByteTokenizer, MiniLMTextEncoder, TinyTextEncoder, WordPieceTokenizer, minilm_available
from .unet import Downsample, ResBlock, UNet3D, UNetBlock, UNetConfig, Upsample, count_parameters

__all__ = [
    "UNetConfig",
    "UNet3D",
    "UNetBlock",
    "ResBlock",
    "Downsample",
    "Upsample",
    "count_parameters",
    "SpatialAttention",
    "TemporalAttention",
    "SpaceTimeAttention",
    "RelativePositionBias",
    "frame_positions",
    "temporal_attention_mask",
    "logsnr_fourier",
    "ClassEmbedding",
    "AttentionPooling",
    "TextConditioning",
    "Conditioning",
    "NULL_CLASS",
    "NULL_TEXT",
    "ByteTokenizer",
    "TinyTextEncoder",
    "WordPieceTokenizer",
    "MiniLMTextEncoder",
    "minilm_available",
    "PRESETS",
    "PAPER_PRESETS",
    "get_preset",
    "build",
    "preset_parameters",
    "preset_table",
]

_PRESET_NAMES = {"PRESETS", "PAPER_PRESETS", "get_preset", "build", "preset_parameters", "preset_table"}


def __getattr__(name):  # presets load lazily, so `python -m vdm_lite.nn.presets` runs cleanly
    if name in _PRESET_NAMES:
        from . import presets

        return getattr(presets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
