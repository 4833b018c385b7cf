"""Stage 1: a masked autoencoder over X-ray patches (in the spirit of He et al., "Masked
Autoencoders Are Scalable Vision Learners"), written for MaSkel.

Unlike the upstream MaSkel code, the transformer blocks are really applied, the fixed 2-D sin-cos
positional embeddings are registered buffers (saved with the weights), the mask token is a
parameter, and ``encode`` returns a latent with a spatial layout (B, D, H/p, W/p): the patch grid
on the spatial axes, features on the channel axis. That latent is the target of stage 2.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sin-cos positional embedding, (grid*grid, dim): half the channels encode the row,
    half the column, each with geometric frequencies."""
    if dim % 4:
        raise ValueError("embedding dim must be a multiple of 4")
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij")
    parts = []
    for coord in (ys.reshape(-1), xs.reshape(-1)):
        ang = coord[:, None] * omega[None, :]
        parts += [torch.sin(ang), torch.cos(ang)]
    return torch.cat(parts, dim=1).float()


class Block(nn.Module):
    """Pre-norm transformer block: x + MHSA(LN(x)), x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class XrayMAE(nn.Module):
    """ViT encoder + light transformer decoder over non-overlapping p x p patches of a
    (B, C, R, R) X-ray (C = number of styles)."""

    def __init__(
        self,
        resolution: int,
        in_channels: int,
        patch: int = 4,
        dim: int = 192,
        depth: int = 6,
        heads: int = 6,
        decoder_dim: int = 128,
        decoder_depth: int = 2,
        decoder_heads: int = 4,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = False,
        loss_on_all: bool = False,
    ):
        super().__init__()
        if resolution % patch:
            raise ValueError(f"resolution {resolution} is not a multiple of the patch size {patch}")
        self.resolution, self.in_channels, self.patch, self.dim = resolution, in_channels, patch, dim
        self.grid = resolution // patch
        self.mask_ratio, self.norm_pix_loss, self.loss_on_all = mask_ratio, norm_pix_loss, loss_on_all
        n = self.grid * self.grid
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)
        self.register_buffer("pos_embed", sincos_2d(dim, self.grid)[None], persistent=True)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed", sincos_2d(decoder_dim, self.grid)[None], persistent=True)
        self.decoder_blocks = nn.ModuleList(Block(decoder_dim, decoder_heads) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, patch * patch * in_channels)
        self.num_patches = n
        self._init_weights()

    def _init_weights(self) -> None:
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # --- patches <-> images ---------------------------------------------------------------
    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, R, R) -> (B, N, p*p*C)."""
        b, c, p, g = x.shape[0], self.in_channels, self.patch, self.grid
        x = x.reshape(b, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, g * g, p * p * c)

    def unpatchify(self, t: torch.Tensor) -> torch.Tensor:
        """(B, N, p*p*C) -> (B, C, R, R)."""
        b, c, p, g = t.shape[0], self.in_channels, self.patch, self.grid
        x = t.reshape(b, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, c, g * p, g * p)

    # --- encoder ----------------------------------------------------------------------------
    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed

    def _run_encoder(self, t: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """All patches, no masking -> latent (B, D, R/p, R/p): the stage-2 target space."""
        t = self._run_encoder(self._tokens(x))
        return t.transpose(1, 2).reshape(x.shape[0], self.dim, self.grid, self.grid)

    def random_masking(self, t: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keep a random (1 - ratio) subset of tokens per sample. Returns (kept tokens, mask (B, N)
        with 1 = removed, ids_restore)."""
        b, n, d = t.shape
        keep = max(1, int(round(n * (1.0 - ratio))))
        noise = torch.rand(b, n, device=t.device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        kept = torch.gather(t, 1, ids_keep[..., None].expand(-1, -1, d))
        mask = torch.ones(b, n, device=t.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return kept, mask, ids_restore

    def _decode(self, kept: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        t = self.decoder_embed(kept)
        b, n = ids_restore.shape
        filler = self.mask_token.expand(b, n - t.shape[1], -1)
        t = torch.cat([t, filler], dim=1)
        t = torch.gather(t, 1, ids_restore[..., None].expand(-1, -1, t.shape[2])) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            t = blk(t)
        return self.decoder_pred(self.decoder_norm(t))

    def forward(self, x: torch.Tensor, mask_ratio: float | None = None) -> dict[str, Any]:
        """Masked reconstruction. Returns {"loss", "pred" (B,N,p*p*C), "mask" (B,N)}."""
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        kept, mask, ids_restore = self.random_masking(self._tokens(x), ratio)
        pred = self._decode(self._run_encoder(kept), ids_restore)
        target = self.patchify(x)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = ((pred - target) ** 2).mean(dim=-1)
        weight = torch.ones_like(mask) if self.loss_on_all or ratio == 0 else mask
        loss = (per_patch * weight).sum() / weight.sum().clamp_min(1.0)
        return {"loss": loss, "pred": pred, "mask": mask}

    def reconstruct(self, x: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Prediction tokens -> image: predicted masked patches pasted among the visible true ones
        (the loss never trains the visible ones), per-patch normalisation undone."""
        target = self.patchify(x)
        if self.norm_pix_loss:
            pred = pred * (target.var(dim=-1, keepdim=True) + 1e-6).sqrt() + target.mean(dim=-1, keepdim=True)
        m = mask[..., None]
        return self.unpatchify(pred * m + target * (1 - m)).clamp(0.0, 1.0)


def build_mae(config: dict[str, Any]) -> XrayMAE:
    """A stage-1 MAE from a resolved training config (``resolution``, ``styles``, ``[mae]``)."""
    m = config["mae"]
    return XrayMAE(
        resolution=int(config["resolution"]),
        in_channels=len(config["styles"]),
        patch=int(m["patch"]),
        dim=int(m["dim"]),
        depth=int(m["depth"]),
        heads=int(m["heads"]),
        decoder_dim=int(m["decoder_dim"]),
        decoder_depth=int(m["decoder_depth"]),
        decoder_heads=int(m.get("decoder_heads", 4)),
        mask_ratio=float(m["mask_ratio"]),
        norm_pix_loss=bool(m.get("norm_pix_loss", False)),
        loss_on_all=bool(m.get("loss_on_all", False)),
    )


def latent_shape(config: dict[str, Any]) -> tuple[int, int]:
    """(channels, grid) of the stage-1 latent for a config."""
    m = config["mae"]
    return int(m["dim"]), int(config["resolution"]) // int(m["patch"])

