"""Conditional PatchGAN discriminator (Isola et al.) on [condition, X-ray] and the hinge losses.
Instance norm, so its output for one image never depends on the rest of the batch. (Written here
rather than taken from MONAI: importing MONAI costs seconds at every start.)"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Discriminator(nn.Module):
    """Scores (B, S, R, R) X-rays given their (B, C, R, R) condition -> patch logits (B, 1, h, w)."""

    def __init__(self, in_channels: int, channels: int = 64, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c = channels
        for i in range(1, layers + 1):
            nxt = channels * min(2**i, 8)
            stride = 2 if i < layers else 1
            mods += [nn.Conv2d(c, nxt, 4, stride=stride, padding=1, bias=False), nn.InstanceNorm2d(nxt, affine=True), nn.LeakyReLU(0.2)]
            c = nxt
        mods.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, cond: torch.Tensor, xray: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([cond, xray], dim=1))


def build_discriminator(config: dict[str, Any], cond_channels: int) -> Discriminator:
    """For X-rays of the config's styles beside a condition of ``cond_channels`` (the generator's
    input: mask and limb maps)."""
    d = config["discriminator"]
    return Discriminator(cond_channels + len(config["styles"]), int(d["channels"]), int(d["layers"]))


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (torch.relu(1.0 - real_logits).mean() + torch.relu(1.0 + fake_logits).mean())


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()
