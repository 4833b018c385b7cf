"""The vector quantiser of stage 2: the library in training, a plain lookup at inference.

Training uses vector-quantize-pytorch (EMA codebook, dead-code restart, commitment loss on the
encoder side). Importing it costs seconds (it pulls einx and torch._dynamo), so inference never
does: ``CodebookLookup`` holds the same tensors under the same state-dict names (project_in,
project_out, _codebook.embed, ...) and does what the library does outside training — project in,
take the nearest code (Euclidean), project out — so one checkpoint loads into either.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class _Codebook(nn.Module):
    """The library's ``_codebook`` buffers (single head, Euclidean)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("initted", torch.tensor(True))
        self.register_buffer("cluster_size", torch.zeros(1, size))
        self.register_buffer("embed_avg", torch.zeros(1, size, dim))
        self.register_buffer("embed", torch.zeros(1, size, dim))


class CodebookLookup(nn.Module):
    """(B, D, h, w) -> (quantised (B, D, h, w), code indices (B, h, w), zero commitment loss)."""

    def __init__(self, dim: int, codebook_size: int, codebook_dim: int):
        super().__init__()
        proj = codebook_dim != dim
        self.project_in = nn.Linear(dim, codebook_dim) if proj else nn.Identity()
        self.project_out = nn.Linear(codebook_dim, dim) if proj else nn.Identity()
        self._codebook = _Codebook(codebook_size, codebook_dim)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, d, h, w = z.shape
        flat = self.project_in(z.permute(0, 2, 3, 1).reshape(b, h * w, d))
        embed = self._codebook.embed[0]
        dist = (flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ embed.t() + embed.pow(2).sum(-1)[None, None])
        idx = dist.argmin(dim=-1)
        q = self.project_out(embed[idx])
        return q.reshape(b, h, w, d).permute(0, 3, 1, 2), idx.reshape(b, h, w), z.new_zeros(())


def build_quantizer(dim: int, g: dict[str, Any], training: bool) -> nn.Module:
    """The library's VectorQuantize for training, else the lookup (same state dict)."""
    size, cdim = int(g["codebook_size"]), int(g["codebook_dim"])
    if not training:
        return CodebookLookup(dim, size, cdim)
    from vector_quantize_pytorch import VectorQuantize

    return VectorQuantize(
        dim=dim,
        codebook_size=size,
        codebook_dim=cdim,
        decay=float(g["ema_decay"]),
        commitment_weight=float(g["commitment_weight"]),
        threshold_ema_dead_code=float(g["dead_code_threshold"]),
        accept_image_fmap=True,
    )
