"""Convolutional building blocks shared by both stages.

Everything here is fully convolutional and local (no positional embeddings, no fixed grid, no
normalisation statistics across the image), so the models train on crops and run on whole
frames of any size that is a multiple of their downsampling.
``XrayDecoder`` is the one piece the two stages share: stage 1 learns it (latent -> X-ray) and
stage 2 starts from it, adding skip connections from the mask encoder whose projections start at
zero, so a fresh stage-2 decoder draws exactly what the stage-1 decoder drew.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelNorm(nn.Module):
    """Layer norm over the channels of each pixel. Unlike group or batch norm it uses no
    statistics across the image, so a crop and the whole frame see the same normalisation."""

    def __init__(self, c: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(dim=1, keepdim=True)
        var = (x - mu).pow(2).mean(dim=1, keepdim=True)
        return (x - mu) * torch.rsqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]


def norm(c: int) -> ChannelNorm:
    return ChannelNorm(c)


class ResBlock(nn.Module):
    """x + conv(SiLU(GN(conv(SiLU(GN(x)))))), optionally dilated (context without downsampling)."""

    def __init__(self, c: int, dilation: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            norm(c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation),
            norm(c), nn.SiLU(), nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def res_stack(c: int, n: int, dilations: tuple[int, ...] = (1,)) -> nn.Sequential:
    """``n`` residual blocks cycling through ``dilations``."""
    return nn.Sequential(*[ResBlock(c, dilations[i % len(dilations)]) for i in range(n)])


class Upsample(nn.Module):
    """Nearest x2 then a 3x3 convolution (no checkerboard artefacts)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ConvEncoder(nn.Module):
    """(B, in_ch, H, W) -> latent (B, latent_dim, H/2^k, W/2^k) and the features of every level
    (finest first): those before each halving, then the coarsest level's own (the latent's
    input), k = len(channels) - 1. The coarsest level runs ``context_blocks`` dilated blocks,
    which give the latent a receptive field of most of the body."""

    def __init__(self, in_ch: int, channels: list[int], latent_dim: int, res_blocks: int, context_blocks: int):
        super().__init__()
        self.stem = nn.Conv2d(in_ch, channels[0], 3, padding=1)
        self.stages = nn.ModuleList(res_stack(c, res_blocks) for c in channels[:-1])
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(channels[:-1], channels[1:], strict=True))
        self.context = res_stack(channels[-1], context_blocks, dilations=(1, 2, 4, 8))
        self.to_latent = nn.Sequential(norm(channels[-1]), nn.SiLU(), nn.Conv2d(channels[-1], latent_dim, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.stem(x)
        skips = []
        for stage, down in zip(self.stages, self.downs, strict=True):
            h = stage(h)
            skips.append(h)
            h = down(h)
        h = self.context(h)
        skips.append(h)
        return self.to_latent(h), skips


class XrayDecoder(nn.Module):
    """latent (B, latent_dim, h, w) [+ skip features, finest first] -> X-ray (B, out_ch, 2^k h,
    2^k w) in [0, 1] and the final features (B, channels[0], ...). With ``skip_channels`` each
    upsampled scale adds a 1x1 projection of the matching skip; with ``bottleneck_channels`` the
    latent's own scale also adds one of the encoder's coarsest features (``bottleneck``). The
    projections start at zero."""

    def __init__(
        self,
        latent_dim: int,
        channels: list[int],
        out_ch: int,
        res_blocks: int,
        skip_channels: list[int] | None = None,
        bottleneck_channels: int | None = None,
    ):
        super().__init__()
        rev = list(reversed(channels))
        self.from_latent = nn.Conv2d(latent_dim, rev[0], 3, padding=1)
        self.context = res_stack(rev[0], res_blocks)
        self.ups = nn.ModuleList(Upsample(a, b) for a, b in zip(rev[:-1], rev[1:], strict=True))
        self.stages = nn.ModuleList(res_stack(c, res_blocks) for c in rev[1:])
        self.skip_proj = None
        if skip_channels is not None:
            self.skip_proj = nn.ModuleList(nn.Conv2d(s, c, 1) for s, c in zip(reversed(skip_channels), rev[1:], strict=True))
        self.bottleneck_proj = nn.Conv2d(bottleneck_channels, rev[0], 1) if bottleneck_channels is not None else None
        for p in [*(self.skip_proj or []), *filter(None, [self.bottleneck_proj])]:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)
        self.out_norm = norm(channels[0])
        self.to_xray = nn.Conv2d(channels[0], out_ch, 3, padding=1)

    def forward(
        self, z: torch.Tensor, skips: list[torch.Tensor] | None = None, bottleneck: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.from_latent(z)
        if self.bottleneck_proj is not None and bottleneck is not None:
            h = h + self.bottleneck_proj(bottleneck)
        h = self.context(h)
        coarse_first = list(reversed(skips)) if skips is not None else None
        for i, (up, stage) in enumerate(zip(self.ups, self.stages, strict=True)):
            h = up(h)
            if self.skip_proj is not None and coarse_first is not None:
                h = h + self.skip_proj[i](coarse_first[i])
            h = stage(h)
        features = F.silu(self.out_norm(h))
        return torch.sigmoid(self.to_xray(features)), features
