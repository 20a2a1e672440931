"""The conditioning embedding of Section 3: log-SNR (+ class label, + text) -> one vector
``(B, emb_dim)`` that every residual block of the U-Net receives (Figure 1).

    e = MLP( W_0 fourier(logsnr) + class_emb(label) + pool(text tokens) )

* :func:`logsnr_fourier`: sinusoidal features of ``logsnr`` rescaled from ``[-20, 20]`` (the
  paper's clipped log-SNR range) to ``[0, 1000]``; the network never sees an integer step.
* :class:`ClassEmbedding`: a table of ``num_classes + 1`` vectors; label ``-1`` is the null
  condition and selects the last, learned, *null* row.
* :class:`AttentionPooling`: a learned query attends over the text token embeddings (the
  paper reduces BERT token embeddings by attention pooling); caption ``""`` is the null
  condition and is replaced by a learned null vector.

Nulls are per example, so classifier-free guidance (eq. (6)) can drop the condition for any
subset of a batch (:func:`vdm_lite.samplers.null_condition`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..conventions import NULL_CLASS, NULL_TEXT  # the null values (docs/design.md, Conventions)
from .text import MINILM_DIM, MiniLMTextEncoder, TinyTextEncoder

__all__ = [
    "NULL_CLASS",
    "NULL_TEXT",
    "LOGSNR_RANGE",
    "logsnr_fourier",
    "ClassEmbedding",
    "AttentionPooling",
    "TextConditioning",
    "Conditioning",
]

LOGSNR_RANGE = (-20.0, 20.0)


def logsnr_fourier(logsnr: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features ``(B, dim)`` of ``logsnr`` ``(B,)``.

    ``u = 1000 (logsnr + 20) / 40`` maps the paper's range ``[-20, 20]`` onto ``[0, 1000]``
    (the range of the usual timestep embedding); features are ``[cos(u f_i), sin(u f_i)]``
    with ``f_i = max_period^(-i / (dim/2))``. Values outside the range extrapolate smoothly.
    """
    if dim % 2:
        raise ValueError(f"Fourier feature dim must be even, got {dim}")
    lo, hi = LOGSNR_RANGE
    u = (logsnr.float() - lo) * (1000.0 / (hi - lo))
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=logsnr.device, dtype=torch.float32) / half)
    ang = u[:, None] * freqs[None]
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)


class ClassEmbedding(nn.Module):
    """``class_label`` ``(B,)`` long in ``{-1, 0, ..., num_classes - 1}`` -> ``(B, dim)``.
    ``-1`` (:data:`NULL_CLASS`) selects a learned null embedding (the extra last row)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, class_label: torch.Tensor) -> torch.Tensor:
        idx = torch.where(class_label < 0, torch.full_like(class_label, self.num_classes), class_label)
        return self.table(idx)


class AttentionPooling(nn.Module):
    """Reduce token embeddings ``(B, L, D)`` with padding mask ``(B, L)`` to one vector
    ``(B, out_dim)``: a learned query attends over the tokens (multi-head, fused attention),
    then a linear map to ``out_dim``."""

    def __init__(self, dim: int, out_dim: int, heads: int | None = None):
        super().__init__()
        heads = heads or max(1, dim // 64)
        if dim % heads:
            raise ValueError(f"pooling dim {dim} not divisible by heads {heads}")
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Parameter(torch.randn(dim) * dim**-0.5)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, out_dim)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = tokens.shape
        h, d = self.heads, D // self.heads
        k, v = self.kv(self.norm(tokens)).view(B, L, 2, h, d).permute(2, 0, 3, 1, 4)  # (B, h, L, d)
        q = self.query.to(k.dtype).view(1, h, 1, d).expand(B, h, 1, d)
        pooled = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])  # (B, h, 1, d)
        return self.out(pooled.reshape(B, D))


class TextConditioning(nn.Module):
    """Captions (list of ``B`` strings) -> ``(B, out_dim)``: text encoder tokens, then
    :class:`AttentionPooling`; ``""`` (:data:`NULL_TEXT`) gives a learned null vector.

    ``encoder="byte"``: a :class:`~vdm_lite.nn.text.TinyTextEncoder` trained with the model.
    ``encoder="minilm"``: the frozen :class:`~vdm_lite.nn.text.MiniLMTextEncoder`, loaded on
    first use and kept *outside* the module tree, so its 22.7M frozen weights are neither in
    ``state_dict()`` nor counted as parameters; it follows the input's device.
    """

    def __init__(self, encoder: str, out_dim: int, width: int = 128, layers: int = 2, heads: int = 4, max_len: int = 64):
        super().__init__()
        self.kind = encoder
        if encoder == "byte":
            self.encoder = TinyTextEncoder(width, layers, heads, max_len)
            dim = width
        elif encoder == "minilm":
            self.encoder = None
            self._frozen: list[MiniLMTextEncoder] = []  # a list: not registered as a submodule
            dim = MINILM_DIM
        else:
            raise ValueError(f"unknown text encoder {encoder!r}; choose 'byte' or 'minilm'")
        self.pool = AttentionPooling(dim, out_dim)
        self.null = nn.Parameter(torch.randn(out_dim) * 0.02)

    def encode(self, texts: Sequence[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings ``(B, L, D)`` and mask ``(B, L)`` of the captions."""
        if self.encoder is not None:
            return self.encoder(list(texts), device)
        if not self._frozen:
            self._frozen.append(MiniLMTextEncoder())
        enc = self._frozen[0]
        if enc.embeddings.word_embeddings.weight.device != torch.device(device):
            enc.to(device)
        return enc(list(texts), device)

    def forward(self, texts: Sequence[str], device) -> torch.Tensor:
        tokens, mask = self.encode(texts, device)
        pooled = self.pool(tokens, mask)
        is_null = torch.tensor([t == NULL_TEXT for t in texts], device=pooled.device)
        return torch.where(is_null[:, None], self.null.to(pooled.dtype), pooled)


class Conditioning(nn.Module):
    """The conditioning MLP of Figure 1: ``(logsnr, class_label, text) -> (B, emb_dim)``.

    The first linear layer embeds the Fourier features of ``logsnr``; class and text
    embeddings are *added* to its output; ``mlp_layers - 1`` further ``SiLU -> Linear`` layers
    follow (``mlp_layers`` linear layers in all; the paper uses 2-4 layers of width 1024).
    A class-conditional model called without ``class_label`` (or a text model without
    ``text``) uses the null condition for the whole batch.
    """

    def __init__(
        self,
        emb_dim: int,
        fourier_dim: int,
        mlp_layers: int = 2,
        num_classes: int = 0,
        text_encoder: str | None = None,
        text_kwargs: dict | None = None,
    ):
        super().__init__()
        if mlp_layers < 1:
            raise ValueError(f"mlp_layers must be >= 1, got {mlp_layers}")
        self.fourier_dim = fourier_dim
        self.num_classes = num_classes
        self.first = nn.Linear(fourier_dim, emb_dim)
        self.classes = ClassEmbedding(num_classes, emb_dim) if num_classes > 0 else None
        self.text = TextConditioning(text_encoder, emb_dim, **(text_kwargs or {})) if text_encoder else None
        rest = []
        for _ in range(mlp_layers - 1):
            rest += [nn.SiLU(), nn.Linear(emb_dim, emb_dim)]
        self.rest = nn.Sequential(*rest)

    def forward(
        self,
        logsnr: torch.Tensor,
        class_label: torch.Tensor | None = None,
        text: Sequence[str] | None = None,
    ) -> torch.Tensor:
        B = logsnr.shape[0]
        e = self.first(logsnr_fourier(logsnr, self.fourier_dim))
        if self.classes is not None:
            if class_label is None:
                class_label = torch.full((B,), NULL_CLASS, dtype=torch.long, device=logsnr.device)
            e = e + self.classes(class_label)
        if self.text is not None:
            e = e + self.text([NULL_TEXT] * B if text is None else text, logsnr.device)
        return self.rest(e)
