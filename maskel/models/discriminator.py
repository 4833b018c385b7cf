"""Conditional PatchGAN discriminator (MONAI's PatchDiscriminator) on [condition, X-ray] and the
hinge losses. Instance norm, so its output for one image never depends on the rest of the batch."""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets import PatchDiscriminator
from torch import nn


class Discriminator(nn.Module):
    """Scores (B, S, R, R) X-rays given their (B, C, R, R) condition -> patch logits (B, 1, h, w)."""

    def __init__(self, in_channels: int, channels: int = 64, layers: int = 3):
        super().__init__()
        self.net = PatchDiscriminator(
            spatial_dims=2, channels=channels, in_channels=in_channels, out_channels=1, num_layers_d=layers, norm="INSTANCE"
        )

    def forward(self, cond: torch.Tensor, xray: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([cond, xray], dim=1))[-1]


def build_discriminator(config: dict[str, Any]) -> Discriminator:
    d = config["discriminator"]
    cond = 2 if config["pose_channel"] else 1
    return Discriminator(cond + len(config["styles"]), int(d["channels"]), int(d["layers"]))


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.relu(1.0 - real_logits).mean() + torch.relu(1.0 + fake_logits).mean())


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()
