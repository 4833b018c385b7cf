"""Closed, outward-oriented triangle meshes built by sweeping a cross-section along a path.

Every bone shape in render/bones is a sweep: a ring of ``n_around`` points (an ellipse or a
superellipse with per-ring semi-axes) carried along a polyline with rotation-minimising frames,
closed by a fan at each end. A sweep is watertight by construction (no duplicated vertices),
and an inner sweep on the same path with smaller radii is nested inside the outer one, which is
how cortical shells around a medullary cavity or a spongy core are made.

Meshes are plain ``(vertices (V,3) float64, faces (F,3) int64)`` tuples so that hundreds of
them can be posed and concatenated with numpy before any trimesh object is created.
"""

from __future__ import annotations

import numpy as np

Mesh = tuple[np.ndarray, np.ndarray]

_FACE_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _dot(a: list[float], b: list[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def frames(path: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation-minimising frames (double reflection) along ``path`` (N,3).

    Returns tangents T, first normals U (starting as ``up`` made perpendicular to T) and W = T x U.
    """
    path = np.asarray(path, dtype=np.float64)
    seg = np.diff(path, axis=0)
    t_seg = _unit(seg)
    tang = np.empty_like(path)
    tang[0] = t_seg[0]
    tang[-1] = t_seg[-1]
    if len(path) > 2:
        tang[1:-1] = _unit(t_seg[:-1] + t_seg[1:])
    u0 = np.asarray(up, dtype=np.float64) - tang[0] * np.dot(up, tang[0])
    if np.linalg.norm(u0) < 1e-6:  # up parallel to the path: pick any perpendicular
        alt = np.array([1.0, 0.0, 0.0]) if abs(tang[0][0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        u0 = alt - tang[0] * np.dot(alt, tang[0])
    # The recurrence runs on plain floats: numpy's per-call overhead on 3-vectors made this loop
    # the phantom builder's hottest spot (~1300 sweeps per body).
    u = tuple(_unit(u0).tolist())
    out = [u]
    for v1, t0, t1 in zip(seg.tolist(), tang[:-1].tolist(), tang[1:].tolist(), strict=True):
        k1 = 2.0 / max(_dot(v1, v1), 1e-18)
        du, dt = k1 * _dot(v1, u), k1 * _dot(v1, t0)
        r_l = [u[j] - du * v1[j] for j in range(3)]
        v2 = [t1[j] - (t0[j] - dt * v1[j]) for j in range(3)]
        c2 = _dot(v2, v2)
        if c2 > 1e-18:
            k2 = 2.0 / c2 * _dot(v2, r_l)
            r_l = [r_l[j] - k2 * v2[j] for j in range(3)]
        u = r_l
        out.append(u)
    us = np.array(out)
    us = _unit(us - tang * np.sum(us * tang, axis=1, keepdims=True))
    return tang, us, np.cross(tang, us)


def _sweep_faces(n_rings: int, n_around: int) -> np.ndarray:
    key = (n_rings, n_around)
    if key not in _FACE_CACHE:
        r = np.arange(n_rings - 1)[:, None]
        k = np.arange(n_around)[None, :]
        a = r * n_around + k
        b = r * n_around + (k + 1) % n_around
        c = a + n_around
        d = b + n_around
        side = np.concatenate(
            [np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)]
        )
        first = n_rings * n_around
        last = first + 1
        kk = np.arange(n_around)
        cap0 = np.stack([np.full(n_around, first), (kk + 1) % n_around, kk], -1)
        top = (n_rings - 1) * n_around
        cap1 = np.stack([np.full(n_around, last), top + kk, top + (kk + 1) % n_around], -1)
        _FACE_CACHE[key] = np.concatenate([side, cap0, cap1]).astype(np.int64)
    return _FACE_CACHE[key]


def sweep(
    path: np.ndarray,
    ru: np.ndarray | float,
    rv: np.ndarray | float | None = None,
    *,
    n_around: int = 12,
    up: np.ndarray | tuple[float, float, float] = (0.0, 0.0, 1.0),
    power: float = 2.0,
    caps: tuple[float, float] = (0.0, 0.0),
    twist: float = 0.0,
) -> Mesh:
    """Sweep a (super)ellipse along ``path`` (N,3), N >= 2.

    ``ru``/``rv`` are the semi-axes along the frame's U (starting as ``up``) and W directions,
    per ring or scalar. ``power`` > 2 squares the section off (2 = ellipse). ``caps`` moves each
    end's fan apex out along the tangent by that length (0 = flat cap). ``twist`` rotates the
    section frame by that many radians at the first ring relative to ``up``.
    """
    path = np.asarray(path, dtype=np.float64)
    n = len(path)
    ru = np.broadcast_to(np.asarray(ru, dtype=np.float64), (n,))
    rv = ru if rv is None else np.broadcast_to(np.asarray(rv, dtype=np.float64), (n,))
    tang, us, ws = frames(path, np.asarray(up, dtype=np.float64))
    if twist:
        us, ws = np.cos(twist) * us + np.sin(twist) * ws, -np.sin(twist) * us + np.cos(twist) * ws
    th = np.linspace(0.0, 2.0 * np.pi, n_around, endpoint=False)
    c, s = np.cos(th), np.sin(th)
    if power != 2.0:
        e = 2.0 / power
        c = np.sign(c) * np.abs(c) ** e
        s = np.sign(s) * np.abs(s) ** e
    rings = (
        path[:, None, :]
        + (ru[:, None] * c[None, :])[..., None] * us[:, None, :]
        + (rv[:, None] * s[None, :])[..., None] * ws[:, None, :]
    )
    apex0 = path[0] - tang[0] * caps[0]
    apex1 = path[-1] + tang[-1] * caps[1]
    verts = np.concatenate([rings.reshape(-1, 3), apex0[None], apex1[None]])
    return verts, _sweep_faces(n, n_around).copy()


def signed_volume(mesh: Mesh) -> float:
    """Signed volume (positive for an outward-oriented closed mesh)."""
    v, f = mesh
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def oriented(mesh: Mesh) -> Mesh:
    """The mesh with its faces flipped if it was inside-out."""
    v, f = mesh
    return (v, f[:, ::-1].copy()) if signed_volume(mesh) < 0 else mesh
