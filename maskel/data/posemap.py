"""Rasterise 2D joints into the single-channel "pose map" the model takes beside the mask.

Limbs are drawn as thick segments whose value says which side they belong to (trunk 1.0,
character's left 0.66, right 0.33), so the model can tell a front view from a back view that
has the same silhouette. Nearer limbs are drawn last (over farther ones). Pure numpy.
"""

from __future__ import annotations

import numpy as np

from maskel.data.joints import JOINT_INDEX, LIMBS

GROUP_VALUE = {0: 1.0, 1: 0.66, 2: 0.33}


def _draw_segment(canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, radius: float, value: float) -> None:
    h, w = canvas.shape
    lo = np.floor(np.minimum(p0, p1) - radius).astype(int)
    hi = np.ceil(np.maximum(p0, p1) + radius).astype(int) + 1
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w), min(hi[1], h)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1]
    pts = np.stack([xs + 0.5, ys + 0.5], axis=-1)
    d = p1 - p0
    denom = float(d @ d)
    t = np.zeros(pts.shape[:2]) if denom == 0 else np.clip(((pts - p0) @ d) / denom, 0.0, 1.0)
    dist = np.linalg.norm(pts - (p0 + t[..., None] * d), axis=-1)
    sub = canvas[y0:y1, x0:x1]
    sub[dist <= radius] = value


def render_pose_map(joints: np.ndarray, size: int | tuple[int, int], radius: float | None = None) -> np.ndarray:
    """joints: (J, 4) x, y, depth, visible in the target image's pixel coordinates -> float32 (H, W).

    A limb is drawn when both its joints are present (any non-zero entry); visibility does not
    hide a limb (the model needs occluded limbs too). Radius defaults to 1.5% of the image size.
    """
    h, w = (size, size) if isinstance(size, int) else size
    canvas = np.zeros((h, w), dtype=np.float32)
    if radius is None:
        radius = max(1.0, 0.015 * max(h, w))
    present = np.any(joints != 0, axis=1)
    segs = []
    for a, b, group in LIMBS:
        ia, ib = JOINT_INDEX[a], JOINT_INDEX[b]
        if present[ia] and present[ib]:
            depth = 0.5 * (joints[ia, 2] + joints[ib, 2])
            segs.append((depth, joints[ia, :2], joints[ib, :2], GROUP_VALUE[group]))
    for _, p0, p1, value in sorted(segs, key=lambda s: -s[0]):  # far first, near drawn over
        _draw_segment(canvas, np.asarray(p0, float), np.asarray(p1, float), radius, value)
    return canvas
