"""Cameras all around the body: orthographic or mild perspective, with framing jitter.

One `Camera` drives the silhouette (an OpenGL projection matrix), the DRR (one ray per pixel
centre) and the joint projection, so the three agree to floating-point precision.

Conventions (project-wide): world metres, Z up, the character faces -Y. Camera axes follow
OpenGL: x right, y up, looking along -z. Image S x S, pixel-edge coordinates (u right, v down,
(0, 0) the top-left corner of the top-left pixel; pixel (i, j) has its centre at (j+.5, i+.5)).
yaw 0 looks along +Y at the character's front (Blender's front view); yaw 90 looks along -X
(from the character's left side). pitch > 0 looks down from above.

  orthographic: u = cx + x_c / scale,           v = cy - y_c / scale       (scale = m / pixel)
  perspective:  u = cx + f * x_c / (-z_c),      v = cy - f * y_c / (-z_c)  (f in pixels)
  depth = -z_c (metres along the view axis, larger = farther).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

PROJECTIONS = ("orthographic", "perspective")
FULL_FRAME_MM = 36.0  # focal lengths are quoted as on a 36 mm wide sensor


def look_rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """World-to-camera rotation (3, 3): rows are the camera's x, y, z axes in world coordinates."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    # viewing direction: yaw 0 -> +Y, rotating counter-clockwise seen from above; pitch tilts down
    fwd = np.array([-math.sin(yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch), -math.sin(pitch)])
    right = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    up = np.cross(right, fwd)
    return np.stack([right, up, -fwd])


@dataclass
class Camera:
    """A pinhole or orthographic camera over an S x S image (see the module docstring)."""

    size: int
    projection: str  # "orthographic" | "perspective"
    rotation: np.ndarray  # (3, 3) world -> camera
    position: np.ndarray  # (3,) eye (orthographic: the centre of the near plane, outside the body)
    scale: float = 0.0  # orthographic: metres per pixel
    focal_px: float = 0.0  # perspective: focal length in pixels
    cx: float = 0.0  # principal point, pixel-edge coordinates
    cy: float = 0.0
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    near: float = 0.05
    far: float = 20.0

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {self.projection!r}")
        self.rotation = np.asarray(self.rotation, dtype=np.float64)
        self.position = np.asarray(self.position, dtype=np.float64)

    @property
    def forward(self) -> np.ndarray:
        return -self.rotation[2]

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> camera coordinates (N, 3)."""
        return (np.asarray(points, dtype=np.float64) - self.position) @ self.rotation.T

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> (N, 3): u, v in pixel-edge coordinates and depth in metres."""
        pc = self.to_camera(points)
        depth = -pc[:, 2]
        if self.projection == "orthographic":
            u = self.cx + pc[:, 0] / self.scale
            v = self.cy - pc[:, 1] / self.scale
        else:
            d = np.where(np.abs(depth) < 1e-9, 1e-9, depth)
            u = self.cx + self.focal_px * pc[:, 0] / d
            v = self.cy - self.focal_px * pc[:, 1] / d
        return np.stack([u, v, depth], axis=1)

    def rays(self, pixels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Origins and unit directions (N, 3) through pixel centres: all S*S pixels row-major
        (row = v), or only the given flat pixel indices (row * S + column)."""
        s = self.size
        flat = np.arange(s * s) if pixels is None else np.asarray(pixels, dtype=np.int64)
        uu, vv = flat % s + 0.5, flat // s + 0.5
        cam_to_world = self.rotation.T
        if self.projection == "orthographic":
            local = np.stack([(uu - self.cx) * self.scale, -(vv - self.cy) * self.scale, np.zeros_like(uu)], 1)
            origins = self.position + local @ cam_to_world.T
            dirs = np.broadcast_to(self.forward, origins.shape).copy()
        else:
            local = np.stack([(uu - self.cx) / self.focal_px, -(vv - self.cy) / self.focal_px, -np.ones_like(uu)], 1)
            dirs = local @ cam_to_world.T
            dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
            origins = np.broadcast_to(self.position, dirs.shape).copy()
        return origins, dirs

    def projection_matrix(self) -> np.ndarray:
        """OpenGL projection (4, 4) mapping camera space to clip space consistently with project()."""
        s, n, f = float(self.size), self.near, self.far
        p = np.zeros((4, 4))
        if self.projection == "orthographic":
            p[0, 0] = 2.0 / (self.scale * s)
            p[0, 3] = 2.0 * self.cx / s - 1.0
            p[1, 1] = 2.0 / (self.scale * s)
            p[1, 3] = 1.0 - 2.0 * self.cy / s
            p[2, 2] = -2.0 / (f - n)
            p[2, 3] = -(f + n) / (f - n)
            p[3, 3] = 1.0
        else:
            p[0, 0] = 2.0 * self.focal_px / s
            p[0, 2] = 1.0 - 2.0 * self.cx / s
            p[1, 1] = 2.0 * self.focal_px / s
            p[1, 2] = 2.0 * self.cy / s - 1.0
            p[2, 2] = -(f + n) / (f - n)
            p[2, 3] = -2.0 * f * n / (f - n)
            p[3, 2] = -1.0
        return p

    def pose_matrix(self) -> np.ndarray:
        """Camera-to-world (4, 4), the node pose OpenGL renderers expect."""
        m = np.eye(4)
        m[:3, :3] = self.rotation.T
        m[:3, 3] = self.position
        return m

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "projection": self.projection,
            "yaw_deg": round(self.yaw_deg, 4),
            "pitch_deg": round(self.pitch_deg, 4),
            "size": self.size,
            "position": [round(float(x), 6) for x in self.position],
            "rotation": [[round(float(x), 8) for x in row] for row in self.rotation],
            "cx": round(self.cx, 4),
            "cy": round(self.cy, 4),
        }
        if self.projection == "orthographic":
            out["scale_m_per_px"] = self.scale
        else:
            out["focal_px"] = self.focal_px
            out["focal_mm"] = round(self.focal_px * FULL_FRAME_MM / self.size, 3)
        return out


def _fit(cam: Camera, points: np.ndarray, fill: float, rng: np.random.Generator, cut: bool) -> None:
    """Scale and shift `cam` so the projected points fill `fill` of the frame at a jittered place."""
    s = cam.size
    uv = cam.project(points)[:, :2]
    extent = float(np.max(uv.max(0) - uv.min(0)))
    zoom = fill * s / max(extent, 1e-9)
    if cam.projection == "orthographic":
        cam.scale /= zoom
    else:
        cam.focal_px *= zoom
    uv = cam.project(points)[:, :2]
    lo, hi = uv.min(0), uv.max(0)
    room = s - (hi - lo)
    if cut:  # push the box past one edge by up to 8% of its size
        over = (hi - lo) * rng.uniform(0.02, 0.08, size=2)
        target = np.where(rng.random(2) < 0.5, -over, room + over)
    else:
        target = np.maximum(room, 0) * rng.uniform(0.15, 0.85, size=2)
    cam.cx += float(target[0] - lo[0])
    cam.cy += float(target[1] - lo[1])


def sample_camera(
    rng: np.random.Generator,
    body_bounds: np.ndarray,
    size: int,
    p_perspective: float = 0.5,
    max_pitch_deg: float = 12.0,
    p_cut: float = 0.03,
) -> Camera:
    """A random camera around a body: yaw uniform in [0, 360), pitch in +-max_pitch_deg,
    orthographic or perspective (85-200 mm equivalent lens), the body filling 60-92% of the frame
    at a jittered place; with probability p_cut it is pushed slightly past one frame edge.

    body_bounds: (N, 3) world points enclosing the body (its vertices or bounding-box corners).
    """
    pts = np.asarray(body_bounds, dtype=np.float64).reshape(-1, 3)
    lo, hi = pts.min(0), pts.max(0)
    centre = 0.5 * (lo + hi)
    radius = 0.5 * float(np.linalg.norm(hi - lo))
    yaw = float(rng.uniform(0.0, 360.0))
    pitch = float(rng.uniform(-max_pitch_deg, max_pitch_deg))
    rot = look_rotation(yaw, pitch)
    fwd = -rot[2]
    perspective = rng.random() < p_perspective
    fill = float(rng.uniform(0.6, 0.92))
    cut = rng.random() < p_cut
    if perspective:
        focal_mm = float(rng.uniform(85.0, 200.0))
        focal_px = focal_mm / FULL_FRAME_MM * size
        # distance at which the body's bounding sphere roughly fills the frame at that lens
        dist = max(radius * focal_px / (0.5 * fill * size), radius + 0.5)
        cam = Camera(size, "perspective", rot, centre - fwd * dist, focal_px=focal_px,
                     cx=size / 2, cy=size / 2, yaw_deg=yaw, pitch_deg=pitch,
                     near=max(0.05, dist - radius - 0.5), far=dist + radius + 0.5)
    else:
        dist = radius + 1.0
        cam = Camera(size, "orthographic", rot, centre - fwd * dist, scale=2 * radius / size,
                     cx=size / 2, cy=size / 2, yaw_deg=yaw, pitch_deg=pitch,
                     near=0.01, far=2 * dist + 1.0)
    _fit(cam, pts, fill, rng, cut)
    return cam
