"""Stage 1: a convolutional masked autoencoder over X-rays.

In the spirit of He et al., "Masked Autoencoders Are Scalable Vision Learners" (the method
MaSkel's stage 1 follows), made convolutional so the latent keeps a spatial layout at 1/p of
the image (p = ``patch``), trains on crops and runs on any frame: random p x p patches of the
X-ray are blanked (their pixels set to 0, an indicator channel marks them), the encoder maps what
is left to the latent (B, D, H/p, W/p), and the decoder redraws the whole X-ray from the latent.
The loss weights the blanked patches fully and the visible ones by ``visible_weight``, and the
air around the body (black in every X-ray) by ``background_weight``: at full weight the air's
pixels, most of a frame, pull every output towards black, and a run can fall into the sigmoid's
flat end and draw nothing from then on (a phantom-v6 stage 1 did by step 250). A fraction
``full_view`` of the samples is shown unmasked, because stage 2 targets ``encode`` of whole
X-rays. The decoder learned here is where stage 2's decoder starts.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from maskel.models.blocks import ConvEncoder, XrayDecoder
from maskel.models.losses import body_region


class XrayMAE(nn.Module):
    """Masked autoencoder of (B, C, H, W) X-rays (C = number of styles)."""

    def __init__(
        self,
        in_channels: int,
        channels: list[int],
        latent_dim: int,
        res_blocks: int = 1,
        context_blocks: int = 2,
        mask_ratio: float = 0.75,
        full_view: float = 0.25,
        visible_weight: float = 0.25,
        background_weight: float = 1.0,
    ):
        super().__init__()
        self.in_channels, self.latent_dim = in_channels, latent_dim
        self.patch = 2 ** (len(channels) - 1)
        self.mask_ratio, self.full_view, self.visible_weight = mask_ratio, full_view, visible_weight
        self.background_weight = background_weight
        self.encoder = ConvEncoder(in_channels + 1, channels, latent_dim, res_blocks, context_blocks)
        self.decoder = XrayDecoder(latent_dim, channels, in_channels, res_blocks)

    def random_masking(self, x: torch.Tensor, ratio: float) -> torch.Tensor:
        """(B, 1, H, W) with 1 where a patch is blanked: ``ratio`` of the patches of each sample,
        none for a ``full_view`` fraction of the samples."""
        b, _, h, w = x.shape
        gh, gw = h // self.patch, w // self.patch
        n = gh * gw
        drop = int(round(n * ratio))
        ranks = torch.rand(b, n, device=x.device).argsort(dim=1).argsort(dim=1)
        removed = (ranks < drop).float()
        removed = removed * (torch.rand(b, 1, device=x.device) >= self.full_view).float()
        return F.interpolate(removed.view(b, 1, gh, gw), scale_factor=float(self.patch), mode="nearest")

    def forward_encoder(self, x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        """X-ray with blanked patches -> latent (B, D, H/p, W/p)."""
        latent, _ = self.encoder(torch.cat([x * (1.0 - removed), removed], dim=1))
        return latent

    def forward_decoder(self, latent: torch.Tensor) -> torch.Tensor:
        """latent -> X-ray (B, C, H, W) in [0, 1]."""
        return self.decoder(latent)[0]

    def forward_loss(self, x: torch.Tensor, pred: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        """L1 + squared error per pixel, blanked patches weighted 1, visible ``visible_weight``; the
        pixels more than 2 px from any non-black pixel of the true X-ray (air) ``background_weight``."""
        err = (pred - x).abs() + (pred - x) ** 2
        body = body_region((x > 0).any(dim=1, keepdim=True).float())
        weight = (removed + self.visible_weight * (1.0 - removed)) * (body + self.background_weight * (1.0 - body))
        return (err * weight).sum() / (weight.sum() * x.shape[1]).clamp_min(1.0)

    def forward(self, x: torch.Tensor, mask_ratio: float | None = None) -> dict[str, Any]:
        """Masked reconstruction -> {"loss", "pred" (B, C, H, W), "mask" (B, 1, H, W), 1 = blanked}."""
        self._check(x)
        removed = self.random_masking(x, self.mask_ratio if mask_ratio is None else mask_ratio)
        pred = self.forward_decoder(self.forward_encoder(x, removed))
        return {"loss": self.forward_loss(x, pred, removed), "pred": pred, "mask": removed}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The whole X-ray, nothing blanked -> latent (B, D, H/p, W/p): the stage-2 target."""
        self._check(x)
        return self.forward_encoder(x, torch.zeros_like(x[:, :1]))

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[-1] % self.patch or x.shape[-2] % self.patch:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of the patch size {self.patch}")


def mae_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    m = config["mae"]
    return {
        "channels": [int(c) for c in m["channels"]],
        "latent_dim": int(m["latent_dim"]),
        "res_blocks": int(m.get("res_blocks", 1)),
        "context_blocks": int(m.get("context_blocks", 2)),
    }


def build_mae(config: dict[str, Any]) -> XrayMAE:
    """A stage-1 MAE from a resolved training config (``styles``, ``[mae]``)."""
    m = config["mae"]
    patch = int(m["patch"])
    kw = mae_kwargs(config)
    if 2 ** (len(kw["channels"]) - 1) != patch or int(config["resolution"]) % patch:
        raise ValueError(f"[mae] patch {patch} must be 2^(stages - 1) of its {len(kw['channels'])} channel stages and divide the resolution")
    return XrayMAE(
        in_channels=len(config["styles"]),
        mask_ratio=float(m["mask_ratio"]),
        full_view=float(m.get("full_view", 0.25)),
        visible_weight=float(m.get("visible_weight", 0.25)),
        background_weight=float(m.get("background_weight", 1.0)),
        **kw,
    )


def latent_shape(config: dict[str, Any]) -> tuple[int, int]:
    """(channels, downsampling factor) of the stage-1 latent for a config."""
    m = config["mae"]
    return int(m["latent_dim"]), int(m["patch"])
