"""The training objectives of both stages, one function per optimiser step.

Stage 2 alternates a generator step and a discriminator step with separate optimisers:
- generator step: the discriminator's parameters are frozen (requires_grad False) and it is
  called unwrapped (no DDP gradient sync), so the adversarial term reaches only the generator;
- discriminator step: the generated X-ray is detached, so no gradient reaches the generator.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from maskel.evaluate import ssim
from maskel.models.discriminator import d_hinge_loss, g_hinge_loss


@contextmanager
def frozen(module: nn.Module):
    """Temporarily stop a module's parameters from collecting gradients."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, f in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(f)


def latent_distance(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(pred.flatten(2), target.flatten(2), dim=1)).mean()
    return F.mse_loss(pred, target)


def cond_of(batch: dict[str, torch.Tensor], pose_channel: bool) -> torch.Tensor:
    return torch.cat([batch["mask"], batch["pose"]], dim=1) if pose_channel else batch["mask"]


def generator_loss(
    gen: nn.Module,
    mae: nn.Module,
    disc: nn.Module,
    batch: dict[str, torch.Tensor],
    weights: dict[str, Any],
    pose_channel: bool,
    use_adv: bool,
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """Stage-2 generator objective -> (loss, logged terms, generated X-ray). ``disc`` must be the
    unwrapped discriminator; it is frozen here."""
    xray = batch["xray"]
    out = gen(batch["mask"], batch["pose"] if pose_channel else None, internals=True)
    pred = out["xray"]
    with torch.no_grad():
        target_latent = mae.encode(xray)
    terms: dict[str, torch.Tensor] = {
        "latent": latent_distance(out["latent"].float(), target_latent.float(), weights.get("latent_kind", "mse")),
        "commit": out["commit"].float(),
        "l1": F.l1_loss(pred.float(), xray),
        "l2": F.mse_loss(pred.float(), xray),
        "ssim": 1.0 - ssim(pred.float(), xray).mean(),
    }
    loss = terms["latent"] * float(weights["latent"]) + terms["commit"]  # commitment weight is inside the VQ
    for k in ("l1", "l2", "ssim"):
        loss = loss + float(weights[k]) * terms[k]
    if float(weights.get("perceptual", 0)) > 0:
        terms["perceptual"] = F.mse_loss(mae.encode(pred).float(), target_latent.float())
        loss = loss + float(weights["perceptual"]) * terms["perceptual"]
    if "labels" in out and float(weights.get("label", 0)) > 0:
        terms["label"] = F.cross_entropy(out["labels"].float(), batch["labels"])
        loss = loss + float(weights["label"]) * terms["label"]
    if use_adv and float(weights.get("adv", 0)) > 0:
        with frozen(disc):
            terms["adv"] = g_hinge_loss(disc(cond_of(batch, pose_channel), pred).float())
        loss = loss + float(weights["adv"]) * terms["adv"]
    return loss, {k: float(v.detach()) for k, v in terms.items()}, pred


def discriminator_loss(disc: nn.Module, batch: dict[str, torch.Tensor], pred: torch.Tensor, pose_channel: bool) -> torch.Tensor:
    """Hinge loss of the discriminator on true vs generated (detached) X-rays."""
    cond = cond_of(batch, pose_channel)
    real = disc(cond, batch["xray"])
    fake = disc(cond, pred.detach())
    return d_hinge_loss(real.float(), fake.float())
