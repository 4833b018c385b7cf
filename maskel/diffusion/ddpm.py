"""Unconditional DDPM over framed X-rays, for augmenting a small real dataset.

The model draws the silhouette together with the X-ray: channels (mask, style 1, style 2, ...)
scaled to [-1, 1], so every sample it draws is a complete pair in the canonical framing and can be
written in the dataset format (stage 1 needs the mask to crop around and to score inside the body).
Training is MONAI's DDPM objective; sampling is MONAI's DDIM (eta = 0, so a sample is a pure
function of its starting noise, which is seeded per sample index). The presets predict v
(``prediction = "v_prediction"``): with the few training steps a CPU allows, a noise-predicting
model's x0 estimate at high noise is its error amplified ~150 times, and its samples stay noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maskel import MaskelError
from maskel.diffusion.common import (
    build_unet,
    data_tensors,
    load_diffusion_checkpoint,
    load_preset,
    train_loop,
)

STAGE = "ddpm"


def _schedule_args(cfg: dict[str, Any]) -> dict[str, Any]:
    s = cfg["schedule"]
    return {"num_train_timesteps": int(s["timesteps"]), "schedule": str(s.get("kind", "linear_beta")),
            "beta_start": float(s.get("beta_start", 1e-4)), "beta_end": float(s.get("beta_end", 0.02))}  # fmt: skip


PREDICTIONS = ("epsilon", "v_prediction", "sample")


def _prediction(cfg: dict[str, Any]) -> str:
    pred = str(cfg["schedule"].get("prediction", "epsilon"))
    if pred not in PREDICTIONS:
        raise MaskelError(f"[schedule] prediction must be one of {', '.join(PREDICTIONS)}, got {pred!r}")
    return pred


def build_ddpm(cfg: dict[str, Any]) -> nn.Module:
    channels = 1 + len(cfg["styles"])
    return build_unet(cfg["unet"], channels, channels)


def training_loss(cfg: dict[str, Any], masks: torch.Tensor, xrays: torch.Tensor) -> Any:
    """The DDPM objective on random training images (horizontally flipped half of the time)."""
    from monai.networks.schedulers import DDPMScheduler

    scheduler = DDPMScheduler(**_schedule_args(cfg), prediction_type=_prediction(cfg))
    pred = _prediction(cfg)
    batch = int(cfg["train"]["batch_size"])
    images = torch.cat([masks, xrays], dim=1) * 2.0 - 1.0

    def loss(model: nn.Module, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(images), (batch,), generator=gen)
        x = images[idx]
        flip = torch.rand(batch, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        noise = torch.randn(x.shape, generator=gen)
        t = torch.randint(scheduler.num_train_timesteps, (batch,), generator=gen)
        target = {"epsilon": noise, "sample": x}.get(pred)
        if target is None:
            target = scheduler.get_velocity(x, noise, t)
        return F.mse_loss(model(scheduler.add_noise(x, noise, t), t), target)

    return loss


def start_noise(seed: int, index: int, channels: int, resolution: int) -> torch.Tensor:
    """The starting noise of sample ``index``: depends on (seed, index) only, not on batching."""
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))
    return torch.randn((channels, resolution, resolution), generator=gen)


class XraySampler:
    """A loaded DDPM checkpoint; ``sample(seed, indices)`` -> masks and X-rays (DDIM, eta = 0)."""

    def __init__(self, checkpoint: str | Path, steps: int | None = None):
        tensors, meta = load_diffusion_checkpoint(checkpoint, STAGE)
        self.meta, self.cfg = meta, meta["config"]
        self.model = build_ddpm(self.cfg)
        try:
            self.model.load_state_dict(tensors)
        except RuntimeError as e:
            raise MaskelError(f"{checkpoint}: weights do not match the model in its metadata ({str(e).splitlines()[0]})") from None
        self.model.eval()
        self.resolution, self.styles = int(self.cfg["resolution"]), list(self.cfg["styles"])
        self.steps = int(steps or self.cfg["schedule"].get("sample_steps", 50))
        total = int(self.cfg["schedule"]["timesteps"])
        if not 1 <= self.steps <= total:
            raise MaskelError(f"--steps must be between 1 and the model's {total} training timesteps, got {self.steps}")

    @torch.inference_mode()
    def sample(self, seed: int, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """-> (masks (B, R, R) bool, X-rays (B, S, R, R) float32 in [0, 1], zero outside the mask)."""
        from monai.networks.schedulers import DDIMScheduler

        scheduler = DDIMScheduler(**_schedule_args(self.cfg), clip_sample=True, prediction_type=_prediction(self.cfg))
        scheduler.set_timesteps(self.steps)
        c = 1 + len(self.styles)
        x = torch.stack([start_noise(seed, i, c, self.resolution) for i in indices])
        for t in scheduler.timesteps:
            out = self.model(x, torch.full((len(x),), int(t), dtype=torch.long))
            x, _ = scheduler.step(out, int(t), x)
        img = ((x.clamp(-1, 1) + 1) / 2).numpy()
        masks = img[:, 0] > 0.5
        return masks, (img[:, 1:] * masks[:, None]).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="maskel train ddpm", description="Train the unconditional X-ray DDPM (augmentation).")
    ap.add_argument("--config", default="ddpm-tiny", help="ddpm preset or TOML file")
    ap.add_argument("--data", required=True, nargs="+", help="dataset directories (either layout)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--steps", type=int, help="override the preset's step count")
    ap.add_argument("--resolution", type=int, help="override the preset's resolution")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--resume", action="store_true", help="continue from <out>/state.safetensors")
    args = ap.parse_args(argv)
    try:
        from maskel.data.datasets import load_paired_many

        cfg = load_preset(args.config, "ddpm")
        if args.resolution is not None:
            cfg["resolution"] = args.resolution
        levels = len(cfg["unet"]["channels"]) - 1
        if int(cfg["resolution"]) % (2**levels) or int(cfg["resolution"]) < 2**levels:
            raise MaskelError(f"resolution {cfg['resolution']} must be a multiple of {2**levels} (the U-Net halves it {levels} times)")
        if args.steps is not None:
            cfg["train"]["steps"] = args.steps
        if args.seed is not None:
            cfg["seed"] = args.seed
        data = load_paired_many(args.data, int(cfg["resolution"]))
        cfg.update(styles=list(data.styles), pose_channel=False, label_names={str(k): v for k, v in data.label_names.items()},
                   layout=data.layout)  # fmt: skip
        torch.manual_seed(int(cfg["seed"]))
        model = build_ddpm(cfg)
        masks, xrays = data_tensors(data)
        return train_loop(STAGE, cfg, model, training_loss(cfg, masks, xrays), args.out, args.resume, data.summary())
    except MaskelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
