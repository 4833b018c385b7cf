"""Image metrics shared by the losses, training validation and ``maskel eval``.

Everything that scores an X-ray is computed *inside the body*: the background of a silhouette
X-ray is black in every image, so a whole-image score mostly measures the background.

- ``ssim_map`` / ``ssim``: SSIM (Gaussian window 11, sigma 1.5, same-size map with reflect
  padding); ``ssim`` averages the map over the image, ``masked_mean`` over the body's pixels.
- ``psnr``: over the body's pixels when a mask is given.
- ``dice``: of boolean masks, 1 when both are empty.
- ``sharpness``: mean gradient magnitude inside the body (finite differences); the ratio
  predicted / true says how much detail a model draws (a blurred copy of the truth scores < 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _gauss_window(size: int, sigma: float, channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous().to(dtype)


def ssim_map(pred: torch.Tensor, target: torch.Tensor, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-pixel SSIM (B, C, H, W) of (B, C, H, W) images in [0, 1]; differentiable."""
    c = pred.shape[1]
    window = min(window, pred.shape[-1], pred.shape[-2]) | 1
    w = _gauss_window(window, sigma, c, pred.device, pred.dtype)
    pad = window // 2
    c1, c2 = 0.01**2, 0.03**2

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), w, groups=c)

    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x**2
    syy = blur(target * target) - mu_y**2
    sxy = blur(pred * target) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean per image (B,) of (B, C, H, W) values over the pixels where the (B, 1, H, W) mask is
    set (all pixels when ``mask`` is None); 0 for an image with an empty mask."""
    if mask is None:
        return values.flatten(1).mean(dim=1)
    m = mask.expand_as(values).to(values.dtype)
    return (values * m).flatten(1).sum(dim=1) / m.flatten(1).sum(dim=1).clamp_min(1.0)


def ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image SSIM (B,), averaged over the body when a (B, 1, H, W) mask is given."""
    return masked_mean(ssim_map(pred, target), mask)


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR in dB (B,) for data range 1, over the body when a mask is given (capped at
    100 dB for identical images)."""
    mse = masked_mean((pred - target) ** 2, mask)
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp(max=100.0)


def dice(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image Dice (B,) of boolean (B, ...) masks; 1 when both are empty."""
    a, b = a.flatten(1).float(), b.flatten(1).float()
    inter = (a * b).sum(dim=1)
    total = a.sum(dim=1) + b.sum(dim=1)
    return torch.where(total > 0, 2 * inter / total.clamp_min(1e-8), torch.ones_like(total))


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(d/dx, d/dy) of x (B, C, H, W) by forward differences (zero on the last column/row)."""
    gx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
    gy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return gx, gy


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """|grad x| (B, C, H, W) by forward differences (zero on the last row/column)."""
    gx, gy = image_gradients(x)
    return torch.sqrt(gx**2 + gy**2 + 1e-12)


def sharpness(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean gradient magnitude (B,) inside the body, the body's outline excluded (the mask is
    eroded by 2 px, so the silhouette edge, which every model reproduces, does not count)."""
    inner = -F.max_pool2d(-mask.float(), 5, stride=1, padding=2)
    return masked_mean(gradient_magnitude(x), inner)
