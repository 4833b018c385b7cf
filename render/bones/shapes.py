"""Bone-shaped compositions of sweeps: long bones with a cortical shell, blobs, plates, fitting.

All sizes are absolute metres already scaled by the caller; ``fit_*`` helpers shrink shapes to
the measured skin clearance so thin bodies and children keep their bones inside the skin.
"""

from __future__ import annotations

import numpy as np

from render.bones.base import PartGeom, RestBody, part
from render.bones.primitives import ellipsoid, lerp_path, rounded_profile, smooth_path, sweep


def fit_factor(body: RestBody, points: np.ndarray, axis: np.ndarray, up: np.ndarray,
               radii: np.ndarray, frac: float = 0.7) -> np.ndarray:
    """Per-point factor (<= 1) so that a radius ``radii`` at ``points`` uses at most ``frac`` of
    the skin clearance around the axis there."""
    clear = body.radial_clearance(points, axis, up)
    return np.clip(frac * clear / np.maximum(radii, 1e-6), 0.05, 1.0)


def long_bone(
    body: RestBody,
    bone: str,
    rig: str,
    control: np.ndarray,
    ru: np.ndarray,
    rv: np.ndarray,
    *,
    up: np.ndarray,
    n: int = 16,
    n_around: int = 12,
    marrow: tuple[float, float] | None = (0.3, 0.75),
    marrow_frac: float = 0.55,
    spongy_ends: float = 0.14,
    fit: float = 0.7,
    core: bool = False,
) -> list[PartGeom]:
    """A long bone along the smooth curve through ``control`` (M,3).

    ``ru``/``rv`` give the outer semi-axes at the control points (interpolated along the curve);
    the ends are rounded. Parts: the whole bone (cortical), a medullary cavity (marrow inside
    cortical) over the arc-length span ``marrow``, and a spongy core in each end's
    ``spongy_ends`` fraction, all nested strictly inside the outer surface. ``core`` replaces
    cavity and ends by one spongy core (short bones of the hands and feet).
    """
    control = np.asarray(control, dtype=np.float64)
    s, f = rounded_profile(n, end=0.08, tip=0.35)
    path_dense = smooth_path(control, 64)
    path = lerp_path(path_dense, s)
    # control points sit at equal parameter steps of the spline; map them to arc length
    seg = np.linalg.norm(np.diff(path_dense, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)]) / max(seg.sum(), 1e-9)
    ctrl_s = cum[np.linspace(0, 63, len(control)).round().astype(int)]
    ru_s = np.interp(s, ctrl_s, ru)
    rv_s = np.interp(s, ctrl_s, rv)
    if fit:
        axis = path[-1] - path[0]
        k = fit_factor(body, path, axis, up, np.maximum(ru_s, rv_s), fit)
        ru_s, rv_s = ru_s * k, rv_s * k
    outer = sweep(path, ru_s * f, rv_s * f, n_around=n_around, up=up)
    parts = [part(bone, rig, "cortical", "soft_tissue", outer)]

    def inner(a: float, b: float, scale: float, tip: float) -> tuple[np.ndarray, np.ndarray]:
        si, fi = rounded_profile(8, end=0.25, tip=tip)
        ss = a + (b - a) * si
        p = lerp_path(path_dense, ss)
        g = np.interp(ss, s, f)
        return sweep(p, np.interp(ss, s, ru_s) * g * fi * scale, np.interp(ss, s, rv_s) * g * fi * scale,
                     n_around=n_around, up=up)

    if core:
        parts.append(part(bone, rig, "spongy", "cortical", inner(0.05, 0.95, 0.7, 0.5)))
        return parts
    if marrow is not None:
        parts.append(part(bone, rig, "marrow", "cortical", inner(marrow[0], marrow[1], marrow_frac, 0.5)))
    if spongy_ends:
        lo = marrow[0] - 0.04 if marrow else 0.5 - 0.02
        hi = marrow[1] + 0.04 if marrow else 0.5 + 0.02
        parts.append(part(bone, rig, "spongy", "cortical", inner(0.03, min(spongy_ends + 0.03, lo), 0.78, 0.45)))
        parts.append(part(bone, rig, "spongy", "cortical", inner(max(1 - spongy_ends - 0.03, hi), 0.97, 0.78, 0.45)))
    return parts


def blob(
    body: RestBody,
    bone: str,
    rig: str,
    center: np.ndarray,
    axes: np.ndarray,
    radii: np.ndarray,
    *,
    fit: float = 0.7,
    core: float = 0.7,
    n_rings: int = 6,
    n_around: int = 8,
) -> list[PartGeom]:
    """A small compact bone: an ellipsoid with a thin cortical shell around a spongy core."""
    radii = np.asarray(radii, dtype=np.float64)
    if fit:
        dirs = np.concatenate([axes, -axes])
        clear = body.depth(np.repeat(center[None], 6, 0), dirs).min()
        radii = radii * min(1.0, fit * clear / radii.max())
    parts = [part(bone, rig, "cortical", "soft_tissue",
                  ellipsoid(center, axes, radii, n_rings=n_rings, n_around=n_around))]
    if core:
        parts.append(part(bone, rig, "spongy", "cortical",
                          ellipsoid(center, axes, radii * core, n_rings=4, n_around=n_around)))
    return parts


def tube(
    body: RestBody,
    bone: str,
    rig: str,
    control: np.ndarray,
    r: np.ndarray | float,
    rv: np.ndarray | float | None = None,
    *,
    up: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 1.0),
    n: int = 10,
    n_around: int = 8,
    material: str = "cortical",
    fit: float = 0.0,
    power: float = 2.0,
) -> list[PartGeom]:
    """A solid curved tube with rounded ends through ``control`` (ribs, processes, rami)."""
    control = np.asarray(control, dtype=np.float64)
    s, f = rounded_profile(n, end=0.1, tip=0.4)
    path = lerp_path(smooth_path(control, 48), s)
    t = np.linspace(0.0, 1.0, len(control))
    ru = np.interp(s, t, np.broadcast_to(np.asarray(r, dtype=np.float64), (len(control),)))
    rv_ = ru if rv is None else np.interp(s, t, np.broadcast_to(np.asarray(rv, dtype=np.float64), (len(control),)))
    if fit:
        k = fit_factor(body, path, path[-1] - path[0], up, np.maximum(ru, rv_), fit)
        ru, rv_ = ru * k, rv_ * k
    mesh = sweep(path, ru * f, rv_ * f, n_around=n_around, up=up, power=power)
    return [part(bone, rig, material, "soft_tissue", mesh)]
