"""Rasterise 2D joints for the model and for people. Pure numpy.

- ``render_limb_maps`` (what the model takes beside the mask): one channel per limb segment of
  ``LIMBS``, so the character's left and right and crossed or foreshortened limbs are never
  confused. A segment is a thick line whose value is its nearness to the camera: 1.0 at the
  pose's nearest joint down to 0.5 at its farthest, interpolated along the segment, so depth
  order survives where limbs overlap in the image.
- ``render_pose_map`` (a single-channel picture for previews): segments valued by side (trunk
  1.0, character's left 0.66, right 0.33), nearer limbs drawn over farther ones.
"""

from __future__ import annotations

import numpy as np

from maskel.data.joints import JOINT_INDEX, LIMBS

GROUP_VALUE = {0: 1.0, 1: 0.66, 2: 0.33}


def _segment_window(
    shape: tuple[int, int], p0: np.ndarray, p1: np.ndarray, radius: float
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """The pixel window around a segment, each pixel's parameter t along it and its distance."""
    h, w = shape
    lo = np.floor(np.minimum(p0, p1) - radius).astype(int)
    hi = np.ceil(np.maximum(p0, p1) + radius).astype(int) + 1
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w), min(hi[1], h)
    if x0 >= x1 or y0 >= y1:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1]
    pts = np.stack([xs + 0.5, ys + 0.5], axis=-1)
    d = p1 - p0
    denom = float(d @ d)
    t = np.zeros(pts.shape[:2]) if denom == 0 else np.clip(((pts - p0) @ d) / denom, 0.0, 1.0)
    dist = np.linalg.norm(pts - (p0 + t[..., None] * d), axis=-1)
    return (slice(y0, y1), slice(x0, x1)), t, dist


def _draw_segment(canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, radius: float, value: float) -> None:
    win = _segment_window(canvas.shape, p0, p1, radius)
    if win is not None:
        (rows, cols), _, dist = win
        canvas[rows, cols][dist <= radius] = value


def default_radius(h: int, w: int) -> float:
    """Segment radius for an (h, w) image: 1.5 % of its larger side."""
    return max(1.0, 0.015 * max(h, w))


def render_limb_maps(joints: np.ndarray | None, size: int | tuple[int, int], radius: float | None = None) -> np.ndarray:
    """joints (J, 4) x, y, depth, visible in the target image's pixel coordinates, or None ->
    float32 (len(LIMBS), H, W): each limb segment in its own channel, valued by nearness.

    A segment is drawn when both its joints are present (any non-zero entry); visibility does not
    hide it (the model needs occluded limbs too). No joints -> all zeros (the mask-only input).
    """
    h, w = (size, size) if isinstance(size, int) else size
    maps = np.zeros((len(LIMBS), h, w), dtype=np.float32)
    if joints is None:
        return maps
    radius = default_radius(h, w) if radius is None else radius
    present = np.any(joints != 0, axis=1)
    if not present.any():
        return maps
    depth = joints[present, 2]
    near, span = float(depth.min()), float(np.ptp(depth))
    for k, (a, b, _) in enumerate(LIMBS):
        ia, ib = JOINT_INDEX[a], JOINT_INDEX[b]
        if not (present[ia] and present[ib]):
            continue
        win = _segment_window((h, w), joints[ia, :2].astype(float), joints[ib, :2].astype(float), radius)
        if win is None:
            continue
        (rows, cols), t, dist = win
        d = joints[ia, 2] + t * (joints[ib, 2] - joints[ia, 2])
        value = 1.0 - 0.5 * (d - near) / span if span > 0 else np.ones_like(t)
        maps[k, rows, cols] = np.where(dist <= radius, value, 0.0)
    return maps


def render_pose_map(joints: np.ndarray, size: int | tuple[int, int], radius: float | None = None) -> np.ndarray:
    """joints: (J, 4) x, y, depth, visible in the target image's pixel coordinates -> float32 (H, W).

    A limb is drawn when both its joints are present (any non-zero entry); visibility does not
    hide a limb (the model needs occluded limbs too). Radius defaults to 1.5% of the image size.
    """
    h, w = (size, size) if isinstance(size, int) else size
    canvas = np.zeros((h, w), dtype=np.float32)
    radius = default_radius(h, w) if radius is None else radius
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
