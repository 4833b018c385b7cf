"""Few-step residual-shifting diffusion super-resolution (the ResShift formulation, Yue et al. 2023),
conditioned on the low-resolution X-ray and the full-resolution mask.

With x0 the high-resolution X-ray, y the low-resolution one upsampled (bicubic) and e0 = y - x0,
the forward chain shifts the residual in over T steps while adding noise:
    x_t = x0 + eta_t * e0 + kappa * sqrt(eta_t) * noise,   eta_1 ~ 0 < ... < eta_T ~ 1,
so x_T is y plus noise and sampling starts from the low-resolution image, not from pure noise:
a handful of steps suffice. The network (MONAI's DiffusionModelUNet) sees (x_t, y, mask) and
predicts x0; a reverse step draws x_{t-1} from q(x_{t-1} | x_t, x0_hat) =
    N(eta_{t-1}/eta_t * x_t + alpha_t/eta_t * x0_hat,  kappa^2 * eta_{t-1}/eta_t * alpha_t),
with alpha_t = eta_t - eta_{t-1}. The output is multiplied by the full-resolution mask, so the
edges follow the silhouette exactly. Images are in [-1, 1] inside the model.

Training pairs come from the data itself: the framed X-ray at the high resolution, and its area
downsample by the scale factor as the low-resolution input.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
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

STAGE = "sr"
SCALES = (2, 4)


def eta_schedule(steps: int, kappa: float, power: float = 0.3, eta_max: float = 0.999) -> torch.Tensor:
    """ResShift's shifting schedule eta_1..eta_T: sqrt(eta_t) grows geometrically in a warped time
    ((t-1)/(T-1))^power from sqrt(eta_1) = min(0.04 / kappa, sqrt(0.001)) to sqrt(eta_max)."""
    if steps == 1:
        return torch.tensor([eta_max], dtype=torch.float64)
    eta1 = min((0.04 / kappa) ** 2, 0.001)
    beta = (torch.arange(steps, dtype=torch.float64) / (steps - 1)) ** power * (steps - 1)
    b0 = math.exp(math.log(eta_max / eta1) / (2 * (steps - 1)))
    return (math.sqrt(eta1) * b0**beta) ** 2


def _down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    return F.avg_pool2d(hr, scale)


def _up(lr: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


def build_sr(cfg: dict[str, Any]) -> nn.Module:
    s = len(cfg["styles"])
    return build_unet(cfg["unet"], 2 * s + 1, s)


def training_loss(cfg: dict[str, Any], masks: torch.Tensor, xrays: torch.Tensor) -> Any:
    """Random crops (aligned to the scale) of the high-resolution frames; x0-prediction MSE."""
    scale, steps, kappa = int(cfg["scale"]), int(cfg["sr"]["steps"]), float(cfg["sr"]["kappa"])
    eta = eta_schedule(steps, kappa).float()
    batch = int(cfg["train"]["batch_size"])
    crop = int(cfg["train"].get("crop", cfg["resolution"]))
    res = int(cfg["resolution"])
    if crop > res or crop % (4 * scale):
        raise MaskelError(f"crop {crop} must be a multiple of {4 * scale} and at most the resolution {res}")

    def loss(model: nn.Module, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(xrays), (batch,), generator=gen)
        ys = torch.randint(0, (res - crop) // scale + 1, (batch,), generator=gen) * scale
        xs = torch.randint(0, (res - crop) // scale + 1, (batch,), generator=gen) * scale
        hr = torch.stack([xrays[i, :, y : y + crop, x : x + crop] for i, y, x in zip(idx, ys, xs, strict=True)])
        m = torch.stack([masks[i, :, y : y + crop, x : x + crop] for i, y, x in zip(idx, ys, xs, strict=True)])
        flip = torch.rand(batch, generator=gen) < 0.5
        hr = torch.where(flip[:, None, None, None], hr.flip(-1), hr)
        m = torch.where(flip[:, None, None, None], m.flip(-1), m)
        x0 = hr * 2 - 1
        y = _up(_down(hr, scale), scale) * 2 - 1
        t = torch.randint(steps, (batch,), generator=gen)
        e = eta[t][:, None, None, None]
        xt = x0 + e * (y - x0) + kappa * e.sqrt() * torch.randn(x0.shape, generator=gen)
        pred = model(torch.cat([xt, y, m * 2 - 1], dim=1), t)
        return F.mse_loss(pred, x0)

    return loss


class SuperResolver:
    """A loaded SR checkpoint: ``upsample(lowres, masks, seed)`` -> X-rays ``scale`` times larger."""

    def __init__(self, checkpoint: str | Path, device: torch.device | str = "cpu"):
        tensors, meta = load_diffusion_checkpoint(checkpoint, STAGE)
        self.checkpoint, self.meta, self.cfg = Path(checkpoint), meta, meta["config"]
        self.scale = int(self.cfg["scale"])
        if self.scale not in SCALES:
            raise MaskelError(f"{checkpoint}: unsupported scale factor ×{self.scale} (expected one of {SCALES})")
        self.resolution = int(self.cfg["resolution"])
        self.low_resolution = self.resolution // self.scale
        self.styles = list(self.cfg["styles"])
        self.steps, self.kappa = int(self.cfg["sr"]["steps"]), float(self.cfg["sr"]["kappa"])
        self.device = torch.device(device)
        self.model = build_sr(self.cfg)
        try:
            self.model.load_state_dict(tensors)
        except RuntimeError as e:
            raise MaskelError(f"{checkpoint}: weights do not match the model in its metadata ({str(e).splitlines()[0]})") from None
        self.model.to(self.device).eval()

    def describe(self) -> str:
        return f"×{self.scale} ({self.low_resolution}px -> {self.resolution}px, {self.steps} steps)"

    def check(self, low_resolution: int, styles: list[str], scale: int | None = None) -> None:
        """Refuse (one line) a generator or a requested scale this checkpoint does not fit."""
        if scale is not None and scale != self.scale:
            raise MaskelError(f"{self.checkpoint}: this SR checkpoint upsamples ×{self.scale}, not ×{scale}")
        if low_resolution != self.low_resolution:
            raise MaskelError(
                f"{self.checkpoint}: this SR checkpoint upsamples {self.describe()}, but the generator draws at {low_resolution}px"
            )
        if styles != self.styles:
            raise MaskelError(f"{self.checkpoint}: trained on styles {self.styles}, the generator draws {styles}")

    @torch.inference_mode()
    def upsample(self, lowres: np.ndarray, masks: np.ndarray, seed: int = 0) -> np.ndarray:
        """(B, S, r, r) in [0, 1] and (B, R, R) bool masks -> (B, S, R, R) in [0, 1], zero outside
        the masks. Deterministic for a seed."""
        lo = torch.from_numpy(np.ascontiguousarray(lowres, dtype=np.float32)).to(self.device)
        if lo.ndim != 4 or lo.shape[-1] != self.low_resolution or lo.shape[1] != len(self.styles):
            raise MaskelError(f"SR input must be (B, {len(self.styles)}, {self.low_resolution}, {self.low_resolution}), got {tuple(lo.shape)}")
        m = torch.from_numpy(np.asarray(masks, dtype=np.float32))[:, None].to(self.device)
        eta = eta_schedule(self.steps, self.kappa).float().to(self.device)
        gen = torch.Generator().manual_seed(int(seed))
        y = _up(lo, self.scale) * 2 - 1
        cond = torch.cat([y, m * 2 - 1], dim=1)
        x = y + self.kappa * eta[-1].sqrt() * torch.randn(y.shape, generator=gen).to(self.device)
        for t in range(self.steps - 1, -1, -1):
            x0 = self.model(torch.cat([x, cond], dim=1), torch.full((len(x),), t, dtype=torch.long, device=self.device)).clamp(-1, 1)
            if t == 0:
                x = x0
                break
            alpha = eta[t] - eta[t - 1]
            mean = eta[t - 1] / eta[t] * x + alpha / eta[t] * x0
            std = self.kappa * (eta[t - 1] / eta[t] * alpha).sqrt()
            x = mean + std * torch.randn(x.shape, generator=gen).to(self.device)
        return (((x + 1) / 2).clamp(0, 1) * m).cpu().numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="maskel train sr", description="Train the residual-shifting diffusion super-resolution.")
    ap.add_argument("--config", default="sr-tiny", help="sr preset or TOML file")
    ap.add_argument("--data", required=True, nargs="+", help="dataset directories (either layout), read at the high resolution")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--scale", type=int, choices=SCALES, help="override the preset's scale factor")
    ap.add_argument("--resolution", type=int, help="override the preset's high resolution")
    ap.add_argument("--steps", type=int, help="override the preset's training step count")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--resume", action="store_true", help="continue from <out>/state.safetensors")
    args = ap.parse_args(argv)
    try:
        from maskel.data.datasets import load_paired_many

        cfg = load_preset(args.config, "sr")
        for key, value in (("scale", args.scale), ("resolution", args.resolution), ("seed", args.seed)):
            if value is not None:
                cfg[key] = value
        if args.steps is not None:
            cfg["train"]["steps"] = args.steps
        scale, res = int(cfg.get("scale", 0)), int(cfg["resolution"])
        if scale not in SCALES:
            raise MaskelError(f"scale factor must be one of {SCALES}, got {scale}")
        if res % (8 * scale):
            raise MaskelError(f"resolution {res} must be a multiple of {8 * scale} for ×{scale}")
        data = load_paired_many(args.data, res)
        cfg.update(styles=list(data.styles), pose_channel=False, low_resolution=res // scale)
        torch.manual_seed(int(cfg["seed"]))
        model = build_sr(cfg)
        masks, xrays = data_tensors(data)
        t0 = time.perf_counter()
        rc = train_loop(STAGE, cfg, model, training_loss(cfg, masks, xrays), args.out, args.resume, data.summary())
        print(f"sr ×{scale}: trained in {time.perf_counter() - t0:.1f} s")
        return rc
    except MaskelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
