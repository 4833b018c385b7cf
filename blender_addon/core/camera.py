"""Camera frustum maths, following Blender's own view-plane rules (BKE_camera_params_compute_viewplane).

Camera space is Blender's: the camera looks along -Z, +X right, +Y up. ``depth`` is the distance
along the view axis (positive in front of the camera). Normalised view coordinates match
``bpy_extras.object_utils.world_to_camera_view``: (0, 0) bottom-left, (1, 1) top-right of the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class CameraParams:
    """What determines a camera's frame; read from bpy by ``CameraParams`` construction in the add-on."""

    type: str  # "PERSP" | "ORTHO"
    lens: float = 50.0  # mm
    sensor_width: float = 36.0  # mm
    sensor_height: float = 24.0  # mm
    sensor_fit: str = "AUTO"  # "AUTO" | "HORIZONTAL" | "VERTICAL"
    shift_x: float = 0.0
    shift_y: float = 0.0
    ortho_scale: float = 6.0
    res_x: int = 1920  # effective pixels (resolution times percentage)
    res_y: int = 1080
    aspect_x: float = 1.0  # pixel aspect
    aspect_y: float = 1.0

    def __post_init__(self) -> None:
        if self.type not in ("PERSP", "ORTHO"):
            raise ValueError(f"camera type {self.type!r} is not supported (use a perspective or orthographic camera)")
        if self.res_x <= 0 or self.res_y <= 0:
            raise ValueError("render resolution must be positive")


def _viewplane(cam: CameraParams) -> tuple[float, float, float, float, bool]:
    """(xmin, xmax, ymin, ymax, scales_with_depth): the frame at depth 1 (perspective) or any depth (ortho)."""
    ycor = cam.aspect_y / cam.aspect_x
    fit = cam.sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if cam.aspect_x * cam.res_x >= cam.aspect_y * cam.res_y else "VERTICAL"
    viewfac = cam.res_x if fit == "HORIZONTAL" else ycor * cam.res_y
    if cam.type == "ORTHO":
        pixsize = cam.ortho_scale / viewfac
    else:
        sensor = cam.sensor_height if cam.sensor_fit == "VERTICAL" else cam.sensor_width
        pixsize = sensor / cam.lens / viewfac
    dx, dy = cam.shift_x * viewfac, cam.shift_y * viewfac
    xmin, xmax = (-0.5 * cam.res_x + dx) * pixsize, (0.5 * cam.res_x + dx) * pixsize
    ymin, ymax = (-0.5 * ycor * cam.res_y + dy) * pixsize, (0.5 * ycor * cam.res_y + dy) * pixsize
    return xmin, xmax, ymin, ymax, cam.type == "PERSP"


def frame_corners(cam: CameraParams, depth: float) -> list[Vec3]:
    """Camera-space corners of the rectangle that exactly fills the frame at ``depth`` (> 0).

    Order: bottom-left, bottom-right, top-right, top-left (counter-clockwise seen from the camera,
    so the face normal points at it).
    """
    if not depth > 0:
        raise ValueError("depth must be positive (in front of the camera)")
    xmin, xmax, ymin, ymax, persp = _viewplane(cam)
    s = depth if persp else 1.0
    z = -depth
    return [(xmin * s, ymin * s, z), (xmax * s, ymin * s, z), (xmax * s, ymax * s, z), (xmin * s, ymax * s, z)]


def project(cam: CameraParams, p: Sequence[float]) -> Vec3:
    """Camera-space point -> (u, v, depth), u/v in [0, 1] inside the frame, as world_to_camera_view."""
    x, y, z = float(p[0]), float(p[1]), float(p[2])
    depth = -z
    xmin, xmax, ymin, ymax, persp = _viewplane(cam)
    if persp:
        if depth <= 0:
            return (float("nan"), float("nan"), depth)
        x, y = x / depth, y / depth
    return ((x - xmin) / (xmax - xmin), (y - ymin) / (ymax - ymin), depth)


def to_pixels(cam: CameraParams, uvd: Vec3) -> tuple[float, float]:
    """Normalised (u, v) -> pixel coordinates of the rendered image (x right, y down, pixel edges)."""
    return uvd[0] * cam.res_x, (1.0 - uvd[1]) * cam.res_y


def in_frame(uvd: Vec3) -> bool:
    u, v, d = uvd
    return d > 0 and 0.0 <= u <= 1.0 and 0.0 <= v <= 1.0


def bbox_view_overlap(cam: CameraParams, points_cam: Sequence[Sequence[float]]) -> float:
    """Fraction of the frame-clipped projected bounding box of ``points_cam`` relative to its full box.

    1.0: everything inside the frame; 0.0: nothing visible (all behind the camera or outside).
    Used to tell "character outside the camera view" apart from an empty render.
    """
    uvs = [project(cam, p) for p in points_cam]
    front = [(u, v) for u, v, d in uvs if d > 0]
    if not front:
        return 0.0
    u0, u1 = min(u for u, _ in front), max(u for u, _ in front)
    v0, v1 = min(v for _, v in front), max(v for _, v in front)
    area = max(u1 - u0, 1e-9) * max(v1 - v0, 1e-9)
    cu = max(0.0, min(u1, 1.0) - max(u0, 0.0))
    cv = max(0.0, min(v1, 1.0) - max(v0, 0.0))
    if u1 - u0 < 1e-9:
        cu = 1e-9 if 0.0 <= u0 <= 1.0 else 0.0
    if v1 - v0 < 1e-9:
        cv = 1e-9 if 0.0 <= v0 <= 1.0 else 0.0
    return min(1.0, cu * cv / area)


def fit_ortho(points: Sequence[Sequence[float]], res_x: int, res_y: int, margin: float = 0.08) -> tuple[float, Vec3]:
    """Ortho scale and frame-centre offset (camera-space x, y, 0) that frame ``points`` (camera space).

    Blender's ortho_scale spans the larger of the two frame sides (sensor fit AUTO).
    """
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    w, h = max(xs) - min(xs), max(ys) - min(ys)
    w, h = w * (1 + 2 * margin), h * (1 + 2 * margin)
    if res_x >= res_y:
        scale = max(w, h * res_x / res_y)
    else:
        scale = max(h, w * res_y / res_x)
    centre = ((max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2, 0.0)
    return max(scale, 1e-3), centre


def image_aspect(width: int, height: int) -> tuple[float, float]:
    """The extents of an Image Empty's picture for display size 1: the long side is 1 (Blender's
    overlay_image_calc_aspect, with the image's own pixel aspect 1:1)."""
    if width <= 0 or height <= 0:
        raise ValueError("image size must be positive")
    return (1.0, height / width) if width > height else (width / height, 1.0)


def empty_fit(cam: CameraParams, depth: float, image_w: int, image_h: int) -> tuple[Vec3, Vec3]:
    """(location, scale) in camera space of an Image Empty (display size 1, image offset -0.5, -0.5,
    no rotation) whose picture exactly fills the frame at ``depth``."""
    (x0, y0, z), _, (x1, y1, _), _ = frame_corners(cam, depth)
    ax, ay = image_aspect(image_w, image_h)
    return ((x0 + x1) / 2, (y0 + y1) / 2, z), ((x1 - x0) / ax, (y1 - y0) / ay, 1.0)


def empty_corners(location: Sequence[float], scale: Sequence[float], image_w: int, image_h: int,
                  size: float = 1.0, offset: Sequence[float] = (-0.5, -0.5)) -> list[Vec3]:  # fmt: skip
    """Local corners (bottom-left, bottom-right, top-right, top-left) of the picture Blender draws for an
    Image Empty: a quad of ``size * aspect`` whose bottom-left sits at ``offset * size * aspect``."""
    ax, ay = image_aspect(image_w, image_h)
    w, h = size * ax, size * ay
    ox, oy = offset[0] * w, offset[1] * h
    return [(location[0] + scale[0] * (ox + dx), location[1] + scale[1] * (oy + dy), location[2])
            for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]  # fmt: skip
