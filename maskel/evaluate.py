"""Metrics for generated X-rays (SSIM, PSNR, bone-Dice) and the results table of a checkpoint.

bone-Dice: with a label head and labelled data, the mean over samples of the Dice between the
predicted bone region (argmax != background) and the true one (``dice_labels``); otherwise (and
also reported) the Dice between the thresholded predicted and true bone images
(``dice_threshold``: DXA channel when present, else the first style, threshold ``tau``).
``bone_dice`` is the first of these that exists.

``python -m maskel.evaluate --checkpoint CKPT --data DIR [--split val|all]`` prints a table.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch
import torch.nn.functional as F

from maskel import MaskelError


def _gauss_window(size: int, sigma: float, channels: int, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (B,) of (B, C, H, W) images in [0, 1] (Gaussian window, valid region);
    differentiable, so 1 - ssim also serves as a loss."""
    c = pred.shape[1]
    window = min(window, pred.shape[-1], pred.shape[-2])
    w = _gauss_window(window, sigma, c, pred.device).to(pred.dtype)
    c1, c2 = 0.01**2, 0.03**2

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, groups=c)

    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x**2
    syy = blur(target * target) - mu_y**2
    sxy = blur(pred * target) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(dim=1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB (B,) for data range 1 (capped at 100 dB for identical images)."""
    mse = ((pred - target) ** 2).flatten(1).mean(dim=1)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp(max=100.0)


def dice(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image Dice (B,) of boolean (B, ...) masks; 1 when both are empty."""
    a, b = a.flatten(1).float(), b.flatten(1).float()
    inter = (a * b).sum(dim=1)
    total = a.sum(dim=1) + b.sum(dim=1)
    return torch.where(total > 0, 2 * inter / total.clamp_min(1e-8), torch.ones_like(total))


def batch_metrics(
    pred: torch.Tensor,
    target: torch.Tensor,
    styles: list[str],
    label_logits: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    tau: float = 0.2,
) -> dict[str, torch.Tensor]:
    """Per-image metrics of a batch: ssim, psnr, dice_threshold, dice_labels (if any), bone_dice."""
    ch = styles.index("dxa") if "dxa" in styles else 0
    out = {
        "ssim": ssim(pred, target),
        "psnr": psnr(pred, target),
        "dice_threshold": dice(pred[:, ch] > tau, target[:, ch] > tau),
    }
    if label_logits is not None and labels is not None:
        out["dice_labels"] = dice(label_logits.argmax(dim=1) > 0, labels > 0)
    out["bone_dice"] = out.get("dice_labels", out["dice_threshold"])
    return out


def mean_metrics(per_image: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    keys = per_image[0].keys() if per_image else []
    return {k: float(torch.cat([m[k] for m in per_image]).mean()) for k in keys}


@torch.no_grad()
def evaluate_generator(gen: torch.nn.Module, loader: Any, styles: list[str], device: torch.device) -> dict[str, float]:
    """Mean metrics of a generator over a DataLoader of TrainView batches."""
    was_training = gen.training
    gen.eval()
    rows = []
    for batch in loader:
        mask, pose = batch["mask"].to(device), batch["pose"].to(device)
        out = gen(mask, pose)
        xray = batch["xray"].to(device)
        labels = batch["labels"].to(device) if "labels" in out else None
        rows.append(batch_metrics(out["xray"].float(), xray, styles, out.get("labels"), labels))
    gen.train(was_training)
    return mean_metrics(rows)


def format_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    keys = ["ssim", "psnr", "bone_dice", "dice_threshold", "dice_labels"]
    keys = [k for k in keys if any(k in r for _, r in rows)]
    head = f"{'model':<28}" + "".join(f"{k:>16}" for k in keys)
    lines = [head, "-" * len(head)]
    for name, r in rows:
        lines.append(f"{name:<28}" + "".join(f"{r[k]:>16.4f}" if k in r else f"{'-':>16}" for k in keys))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from maskel.data.datasets import TrainView, load_paired, split_indices
    from maskel.models import load_generator

    ap = argparse.ArgumentParser(prog="maskel evaluate", description="SSIM / PSNR / bone-Dice of a stage-2 checkpoint")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", choices=["val", "all"], default="val")
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args(argv)
    try:
        gen, meta = load_generator(args.checkpoint)
        cfg = meta["config"]
        data = load_paired(args.data, int(meta["resolution"]))
        if data.styles != meta["styles"]:
            raise MaskelError(f"the data has styles {data.styles}, the checkpoint {meta['styles']}")
        idx = list(range(len(data.samples)))
        if args.split == "val":
            idx = split_indices([s.id for s in data.samples], float(cfg["data"]["val_fraction"]))[1] or idx
        view = TrainView(data, idx, seed=0, augment=None, resolution=int(meta["resolution"]))
        loader = torch.utils.data.DataLoader(view, batch_size=args.batch_size)
        res = evaluate_generator(gen, loader, meta["styles"], torch.device("cpu"))
    except MaskelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table([(f"{cfg.get('name', 'model')} step {meta['step']} ({len(idx)} img)", res)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
