"""The training objectives of both stages, one function per optimiser step.

Stage 2 alternates a generator step and a discriminator step with separate optimisers:
- generator step: the discriminator's parameters are frozen (requires_grad False) and it is
  called unwrapped (no DDP gradient sync), so the adversarial term reaches only the generator;
- discriminator step: the generated X-ray is detached, so no gradient reaches the generator.
Pixel terms (L1, SSIM, gradient) are averaged inside the body (the mask dilated by 2 px), where all
the information is: outside it both images are black. The gradient term (L1 between the image
gradients) is there because L1 and SSIM alone settle on the blurred mean of the bone positions the
silhouette leaves open; matching the gradients keeps the bone edges that are determined sharp.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from maskel.metrics import image_gradients, masked_mean, ssim
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


def body_region(mask: torch.Tensor) -> torch.Tensor:
    """The mask dilated by 2 px: where the pixel losses are taken."""
    return F.max_pool2d(mask, 5, stride=1, padding=2)


def gradient_l1(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean |grad pred - grad target| over both directions inside ``region``."""
    (px, py), (tx, ty) = image_gradients(pred), image_gradients(target)
    return 0.5 * (masked_mean((px - tx).abs(), region).mean() + masked_mean((py - ty).abs(), region).mean())


def generator_loss(
    gen: nn.Module,
    mae: nn.Module | None,
    disc: nn.Module,
    batch: dict[str, torch.Tensor],
    weights: dict[str, Any],
    use_adv: bool,
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor, torch.Tensor]:
    """Stage-2 generator objective -> (loss, logged terms, generated X-ray, condition). ``disc``
    must be the unwrapped discriminator; it is frozen here. ``mae`` (frozen) gives the latent
    target; without it (the U-Net baseline) there is no latent term."""
    xray = batch["xray"]
    want_labels = float(weights.get("label", 0)) > 0
    out = gen(batch["mask"], batch["pose"], labels=want_labels, internals=True)
    pred = out["xray"].float()
    body = body_region(batch["mask"])
    terms: dict[str, torch.Tensor] = {
        "commit": out["commit"].float(),
        "l1": masked_mean((pred - xray).abs(), body).mean(),
        "ssim": 1.0 - ssim(pred, xray, body).mean(),
    }
    loss = terms["commit"] + float(weights["l1"]) * terms["l1"] + float(weights["ssim"]) * terms["ssim"]
    if float(weights.get("grad", 0)) > 0:
        terms["grad"] = gradient_l1(pred, xray, body)
        loss = loss + float(weights["grad"]) * terms["grad"]
    if mae is not None and float(weights.get("latent", 0)) > 0:
        with torch.no_grad():
            target_latent = mae.encode(xray)
        terms["latent"] = latent_distance(out["latent"].float(), target_latent.float(), weights.get("latent_kind", "mse"))
        loss = loss + float(weights["latent"]) * terms["latent"]
    if want_labels and "labels" in out:
        terms["label"] = F.cross_entropy(out["labels"].float(), batch["labels"])
        loss = loss + float(weights["label"]) * terms["label"]
    if use_adv and float(weights.get("adv", 0)) > 0:
        with frozen(disc):
            terms["adv"] = g_hinge_loss(disc(out["cond"], out["xray"]).float())
        loss = loss + float(weights["adv"]) * terms["adv"]
    return loss, {k: float(v.detach()) for k, v in terms.items()}, out["xray"], out["cond"]


def discriminator_loss(disc: nn.Module, xray: torch.Tensor, pred: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator on true vs generated (detached) X-rays."""
    cond = cond.detach()
    return d_hinge_loss(disc(cond, xray).float(), disc(cond, pred.detach()).float())
