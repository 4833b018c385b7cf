"""The two MaSkel training stages as step objects: what each builds, what one optimiser step does,
and how a validation batch is scored. The loop, data, checkpoints and resume are the Trainer's
(maskel.train); a stage owns its models and optimisers.

- ``Stage1``: the masked autoencoder on X-rays (its latent is what an X-ray looks like).
- ``Stage2``: the generator (mask encoder -> latent landing on the frozen stage-1 latent -> VQ ->
  decoder) against a conditional discriminator; the stage-1 model is passed in explicitly.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from maskel.evaluate import score_batch
from maskel.models import build_generator, build_mae
from maskel.models.discriminator import build_discriminator
from maskel.models.losses import discriminator_loss, generator_loss
from maskel.models.mae import XrayMAE


@dataclass(frozen=True)
class Placement:
    """Where and how the models run: device, DDP world size, CUDA memory format, bf16 autocast,
    torch.compile."""

    device: torch.device
    world: int = 1
    channels_last: bool = False
    amp: bool = False
    compile: bool = False

    def prep(self, m: nn.Module) -> nn.Module:
        m = m.to(self.device)
        if self.device.type == "cuda" and self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        return m

    def wrap(self, m: nn.Module) -> nn.Module:
        if self.world > 1:
            m = DistributedDataParallel(m, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return torch.compile(m) if self.compile else m

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()


def adamw(m: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices and kernels only (not on biases and norms)."""
    decay = [p for p in m.parameters() if p.requires_grad and p.ndim >= 2]
    rest = [p for p in m.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def apply(opt: torch.optim.Optimizer, loss: torch.Tensor, module: nn.Module, clip: float) -> None:
    """One optimiser step on ``loss``, the module's gradient norm clipped to ``clip`` (0: not)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        nn.utils.clip_grad_norm_(module.parameters(), clip)
    opt.step()


class Stage1:
    """The X-ray masked autoencoder; checkpoints are the MAE, the best one has the lowest loss."""

    name = "stage1"
    reads_limbs = False  # the MAE sees X-rays only

    def __init__(self, cfg: dict[str, Any], place: Placement):
        s = cfg["stage1"]
        self.place, self.styles, self.clip = place, list(cfg["styles"]), float(cfg["train"].get("grad_clip", 0))
        self.model = place.prep(build_mae(cfg))
        self._trained = place.wrap(self.model)
        self.modules: dict[str, nn.Module] = {"mae": self.model}
        self.optims = {"mae": adamw(self.model, float(s["lr"]), float(s["weight_decay"]))}
        self.base_lr = {"mae": float(s["lr"])}

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        with self.place.autocast():
            loss = self._trained(batch["xray"])["loss"]
        apply(self.optims["mae"], loss, self.model, self.clip)
        return {"loss": float(loss.detach())}

    def score(self, batch: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """-> (per-image metrics, the input as shown in the sample grid, the prediction) of
        ``model`` (this stage's MAE or its weight average)."""
        with self.place.autocast():
            out = model(batch["xray"])
        pred = out["pred"].float()
        row = {"loss": out["loss"].float().reshape(1).expand(len(pred))}
        row.update(score_batch(pred, batch["xray"], batch["mask"], self.styles))
        return row, batch["xray"] * (1 - out["mask"]), pred

    @staticmethod
    def ranking(metrics: dict[str, float]) -> float:
        """Lower is better."""
        return metrics["loss"]


class Stage2:
    """The generator and its discriminator (two optimisers, alternating steps; the adversarial
    term and the discriminator start at ``adv_warmup``); the best checkpoint has the highest
    SSIM inside the body among those sharp enough (``ranking``)."""

    name = "stage2"

    def __init__(self, cfg: dict[str, Any], place: Placement, stage1: XrayMAE | None):
        s = cfg["stage2"]
        self.place, self.styles, self.clip = place, list(cfg["styles"]), float(cfg["train"].get("grad_clip", 0))
        self.weights = s["loss"]
        self.min_sharpness = float(s.get("min_sharpness", 0.0))
        self.reads_limbs = bool(cfg["pose_channel"])
        self.labels = int(cfg.get("num_labels", 0)) > 0
        gen = build_generator(cfg, training=True)
        if stage1 is not None and cfg["generator"].get("init_from_stage1", True):
            gen.init_from_stage1(stage1)
        self.mae = place.prep(stage1) if stage1 is not None else None
        self.model = place.prep(gen)
        self.disc = place.prep(build_discriminator(cfg, gen.in_channels))
        self._gen, self._disc = place.wrap(self.model), place.wrap(self.disc)
        self.modules: dict[str, nn.Module] = {"generator": self.model, "discriminator": self.disc}
        self.optims = {
            "generator": adamw(self.model, float(s["lr"]), float(s["weight_decay"])),
            "discriminator": torch.optim.AdamW(self.disc.parameters(), lr=float(s["d_lr"]), betas=(0.5, 0.9)),
        }
        self.base_lr = {"generator": float(s["lr"]), "discriminator": float(s["d_lr"])}

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        w = self.weights
        use_adv = step >= int(w["adv_warmup"]) and float(w.get("adv", 0)) > 0
        with self.place.autocast():
            loss, terms, pred, cond = generator_loss(self._gen, self.mae, self.disc, batch, w, use_adv)
        apply(self.optims["generator"], loss, self.model, self.clip)
        terms["loss"] = float(loss.detach())
        if use_adv:
            with self.place.autocast():
                d_loss = discriminator_loss(self._disc, batch["xray"], pred, cond)
            apply(self.optims["discriminator"], d_loss, self.disc, self.clip)
            terms["d_loss"] = float(d_loss.detach())
        return terms

    def score(self, batch: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """-> (per-image metrics, the mask as shown in the sample grid, the prediction) of
        ``model`` (this stage's generator or its weight average)."""
        with self.place.autocast():
            out = model(batch["mask"], batch["pose"], labels=self.labels)
        pred = out["xray"].float()
        pred_labels = out["labels"].argmax(dim=1) if "labels" in out else None
        row = score_batch(pred, batch["xray"], batch["mask"], self.styles, pred_labels=pred_labels,
                          labels=batch["labels"] if self.labels else None)  # fmt: skip
        return row, batch["mask"].expand_as(pred), pred

    def ranking(self, metrics: dict[str, float]) -> float:
        """Lower is better: minus the validation SSIM inside the body, plus the shortfall of the
        sharpness ratio under ``stage2.min_sharpness`` (0: SSIM alone), so a checkpoint that wins
        SSIM by drawing blur pays for it in the same units."""
        return -metrics["ssim_body"] + max(0.0, self.min_sharpness - metrics["sharpness"])
