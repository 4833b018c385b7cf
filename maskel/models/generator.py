"""Stage 2: silhouette (+ optional pose map) -> X-ray.

mask encoder (conv down to the stage-1 patch grid, then transformer blocks for global context)
-> latent of the stage-1 MAE's shape (trained to land on the frozen MAE latent of the true X-ray)
-> vector quantiser (vector-quantize-pytorch: EMA codebook, dead-code restart, commitment loss on
the encoder side only) -> convolutional decoder to all X-ray styles (sigmoid, [0, 1]) and an
optional bone-label head (logits). The decoder also sees the conditioning image (mask and pose
map) resized to each of its scales, so the silhouette's outline is reproduced exactly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import VectorQuantize

from maskel.models.mae import Block, latent_shape, sincos_2d


def _groups(c: int) -> int:
    return math.gcd(c, 8)


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(_groups(c), c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1),
            nn.GroupNorm(_groups(c), c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class MaskEncoder(nn.Module):
    """(B, in_ch, R, R) -> (B, latent_dim, R/p, R/p)."""

    def __init__(self, in_ch: int, channels: list[int], latent_dim: int, grid: int, res_blocks: int, attn_depth: int, heads: int):
        super().__init__()
        self.stem = nn.Conv2d(in_ch, channels[0], 3, padding=1)
        layers: list[nn.Module] = []
        c = channels[0]
        for nxt in channels[1:]:
            layers += [ResBlock(c) for _ in range(res_blocks)]
            layers.append(nn.Conv2d(c, nxt, 4, stride=2, padding=1))
            c = nxt
        layers += [ResBlock(c) for _ in range(res_blocks)]
        self.body = nn.Sequential(*layers)
        self.to_latent = nn.Conv2d(c, latent_dim, 1)
        self.register_buffer("pos_embed", sincos_2d(latent_dim, grid)[None], persistent=True)
        self.blocks = nn.ModuleList(Block(latent_dim, heads) for _ in range(attn_depth))
        self.norm = nn.LayerNorm(latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.to_latent(self.body(self.stem(x)))
        b, d, g, _ = h.shape
        t = h.flatten(2).transpose(1, 2) + self.pos_embed
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t).transpose(1, 2).reshape(b, d, g, g)


class Decoder(nn.Module):
    """(B, latent_dim, g, g) + conditioning (B, in_ch, R, R) -> features (B, channels[0], R, R)."""

    def __init__(self, latent_dim: int, channels: list[int], in_ch: int, res_blocks: int):
        super().__init__()
        rev = list(reversed(channels))
        self.inp = nn.Conv2d(latent_dim + in_ch, rev[0], 3, padding=1)
        self.stages = nn.ModuleList()
        self.ups = nn.ModuleList()
        c = rev[0]
        for nxt in rev[1:]:
            self.stages.append(nn.Sequential(*[ResBlock(c) for _ in range(res_blocks)]))
            self.ups.append(nn.Conv2d(c + in_ch, nxt, 3, padding=1))
            c = nxt
        self.stages.append(nn.Sequential(*[ResBlock(c) for _ in range(res_blocks)]))
        self.out_norm = nn.GroupNorm(_groups(c), c)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        def at(size: int) -> torch.Tensor:
            return F.interpolate(cond, size=(size, size), mode="area") if cond.shape[-1] != size else cond

        h = self.inp(torch.cat([z, at(z.shape[-1])], dim=1))
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i < len(self.ups):
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
                h = self.ups[i](torch.cat([h, at(h.shape[-1])], dim=1))
        return F.silu(self.out_norm(h))


class MaskelGenerator(nn.Module):
    """``gen(mask, pose_map)`` -> {"xray": (B, S, R, R) in [0, 1], "labels": (B, K, R, R) logits}."""

    def __init__(
        self,
        resolution: int,
        styles: list[str],
        pose_channel: bool,
        num_labels: int,
        latent_dim: int,
        grid: int,
        channels: list[int],
        res_blocks: int = 1,
        attn_depth: int = 2,
        heads: int = 4,
        codebook_size: int = 512,
        codebook_dim: int = 32,
        commitment_weight: float = 0.25,
        ema_decay: float = 0.95,
        dead_code_threshold: float = 1.0,
    ):
        super().__init__()
        if resolution // grid != 2 ** (len(channels) - 1):
            raise ValueError(f"{len(channels)} channel stages do not map {resolution}px to a {grid}x{grid} latent grid")
        self.resolution, self.styles, self.pose_channel = resolution, list(styles), pose_channel
        in_ch = 2 if pose_channel else 1
        self.encoder = MaskEncoder(in_ch, channels, latent_dim, grid, res_blocks, attn_depth, heads)
        self.quantizer = VectorQuantize(
            dim=latent_dim,
            codebook_size=codebook_size,
            codebook_dim=codebook_dim,
            decay=ema_decay,
            commitment_weight=commitment_weight,
            threshold_ema_dead_code=dead_code_threshold,
            accept_image_fmap=True,
        )
        self.decoder = Decoder(latent_dim, channels, in_ch, res_blocks)
        self.to_xray = nn.Conv2d(channels[0], len(styles), 3, padding=1)
        self.label_head = nn.Conv2d(channels[0], num_labels, 1) if num_labels > 0 else None

    def forward(self, mask: torch.Tensor, pose_map: torch.Tensor | None = None, internals: bool = False) -> dict[str, Any]:
        if self.pose_channel:
            # A missing pose (e.g. an unrecognised rig) is an all-zero map, as seen in training
            # for samples whose joints are absent.
            cond = torch.cat([mask, pose_map if pose_map is not None else torch.zeros_like(mask)], dim=1)
        else:
            cond = mask
        z = self.encoder(cond)
        with torch.autocast(z.device.type, enabled=False):  # codebook distances and EMA in float32
            q, indices, commit = self.quantizer(z.float())
        h = self.decoder(q, cond)
        out: dict[str, Any] = {"xray": torch.sigmoid(self.to_xray(h))}
        if self.label_head is not None:
            out["labels"] = self.label_head(h)
        if internals:
            out.update(latent=z, commit=commit.sum(), indices=indices)
        return out


def build_generator(config: dict[str, Any]) -> MaskelGenerator:
    """A stage-2 generator from a resolved training config (``resolution``, ``styles``,
    ``pose_channel``, ``num_labels``, ``[mae]`` for the latent shape, ``[generator]``)."""
    g = config["generator"]
    dim, grid = latent_shape(config)
    return MaskelGenerator(
        resolution=int(config["resolution"]),
        styles=list(config["styles"]),
        pose_channel=bool(config["pose_channel"]),
        num_labels=int(config.get("num_labels", 0)) if g.get("label_head", True) else 0,
        latent_dim=dim,
        grid=grid,
        channels=[int(c) for c in g["channels"]],
        res_blocks=int(g.get("res_blocks", 1)),
        attn_depth=int(g.get("attn_depth", 2)),
        heads=int(g.get("heads", 4)),
        codebook_size=int(g["codebook_size"]),
        codebook_dim=int(g["codebook_dim"]),
        commitment_weight=float(g["commitment_weight"]),
        ema_decay=float(g["ema_decay"]),
        dead_code_threshold=float(g["dead_code_threshold"]),
    )
