"""The canonical framing: one function pair used by training and inference (DESIGN.md section 3).

Crop to the mask's bounding box, pad to a square with a fixed margin (the pad is virtual: a body
cut by the image edge gets zeros beyond the edge), resize to the model resolution. ``unframe``
maps a model-resolution image back into the original frame, so an X-ray lands pixel-exact on
the input silhouette. The square has integer origin and side, so when side == resolution the
round trip is exact; points map by ``(p - origin) * resolution / side`` (pixel-edge coordinates,
consistent with PIL's resampling).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from maskel.errors import BadMask, MaskelError

DEFAULT_MARGIN = 0.06
"""Margin on each side of the body, as a fraction of the bounding box's longer side."""


@dataclass(frozen=True)
class Frame:
    """A square window [x0, x0+side) x [y0, y0+side) of the original image (may extend past it)."""

    x0: int
    y0: int
    side: int
    height: int  # original image size
    width: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def compute_frame(mask: np.ndarray, margin: float = DEFAULT_MARGIN) -> Frame:
    """The square window around the body of a boolean (H, W) mask."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise BadMask(f"a mask must be 2-D, got shape {mask.shape}")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise BadMask("the mask is empty (no body pixels)")
    by0, by1 = int(rows[0]), int(rows[-1]) + 1
    bx0, bx1 = int(cols[0]), int(cols[-1]) + 1
    longest = max(by1 - by0, bx1 - bx0)
    side = longest + 2 * math.ceil(margin * longest)
    x0 = bx0 - (side - (bx1 - bx0)) // 2
    y0 = by0 - (side - (by1 - by0)) // 2
    return Frame(x0=x0, y0=y0, side=side, height=mask.shape[0], width=mask.shape[1])


def _crop_square(img: np.ndarray, f: Frame) -> np.ndarray:
    out = np.zeros((f.side, f.side) + img.shape[2:], dtype=img.dtype)
    sx0, sy0 = max(f.x0, 0), max(f.y0, 0)
    sx1, sy1 = min(f.x0 + f.side, f.width), min(f.y0 + f.side, f.height)
    if sx0 < sx1 and sy0 < sy1:
        out[sy0 - f.y0 : sy1 - f.y0, sx0 - f.x0 : sx1 - f.x0] = img[sy0:sy1, sx0:sx1]
    return out


def _resize(img: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """Lanczos (antialiased when shrinking), clipped to the input's range (no ringing beyond it).
    Bilinear would blur every framed image: a truth framed to 256² and back kept 0.77 of its
    sharpness with bilinear, 0.94 with Lanczos (benchmarks/framing_ceiling.py), and a model trained
    on bilinear-framed targets learns to draw that blur."""
    if img.shape[0] == size:
        return img
    if nearest:
        return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.NEAREST))
    out = np.asarray(Image.fromarray(img.astype(np.float32), mode="F").resize((size, size), Image.Resampling.LANCZOS))
    return np.clip(out, img.min(), img.max()) if img.size else out


def frame_image(img: np.ndarray, f: Frame, resolution: int, nearest: bool = False) -> np.ndarray:
    """Original (H, W) image -> (resolution, resolution). float32 (Lanczos, antialiased) or, with
    ``nearest``, the input dtype (for label maps)."""
    if img.shape[:2] != (f.height, f.width):
        raise MaskelError(f"image of shape {img.shape[:2]} does not match the frame's {(f.height, f.width)}")
    sq = _crop_square(img, f)  # crop first, then convert: a big frame is never copied whole as float
    return _resize(sq if nearest else sq.astype(np.float32), resolution, nearest)


def unframe_image(img: np.ndarray, f: Frame, nearest: bool = False) -> np.ndarray:
    """Model-resolution (R, R) image -> original (H, W) frame; zeros outside the window."""
    sq = _resize(img if nearest else np.asarray(img, dtype=np.float32), f.side, nearest)
    out = np.zeros((f.height, f.width), dtype=sq.dtype)
    sx0, sy0 = max(f.x0, 0), max(f.y0, 0)
    sx1, sy1 = min(f.x0 + f.side, f.width), min(f.y0 + f.side, f.height)
    if sx0 < sx1 and sy0 < sy1:
        out[sy0:sy1, sx0:sx1] = sq[sy0 - f.y0 : sy1 - f.y0, sx0 - f.x0 : sx1 - f.x0]
    return out


def frame_points(xy: np.ndarray, f: Frame, resolution: int) -> np.ndarray:
    """(N, 2+) points in original pixel-edge coordinates -> model coordinates (extra columns kept)."""
    out = np.array(xy, dtype=np.float32, copy=True)
    s = resolution / f.side
    out[:, 0] = (out[:, 0] - f.x0) * s
    out[:, 1] = (out[:, 1] - f.y0) * s
    return out


def unframe_points(xy: np.ndarray, f: Frame, resolution: int) -> np.ndarray:
    out = np.array(xy, dtype=np.float32, copy=True)
    s = f.side / resolution
    out[:, 0] = out[:, 0] * s + f.x0
    out[:, 1] = out[:, 1] * s + f.y0
    return out


def frame_mask(mask: np.ndarray, f: Frame, resolution: int) -> np.ndarray:
    """Boolean (H, W) mask -> the model's binary (resolution, resolution) input (area-resampled,
    thresholded at 0.5). Training and inference both call this, so they see the same input."""
    return frame_image(np.asarray(mask, dtype=np.float32), f, resolution) >= 0.5


def frame_joints(joints: np.ndarray, f: Frame, resolution: int) -> np.ndarray:
    """(J, 4) joints (x, y, depth, visible; all-zero rows = missing) -> model coordinates,
    missing joints kept all-zero so the pose map leaves them out."""
    present = np.any(joints != 0, axis=1)
    out = frame_points(joints, f, resolution)
    out[~present] = 0.0
    return out
