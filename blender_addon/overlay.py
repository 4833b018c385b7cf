"""The X-ray overlay: an Image Empty (Blender's reference-image object) exactly filling a camera's
frame at the character's depth, parented to the camera; and the camera background image.

An Image Empty shows in Solid, Material Preview and camera view with no viewport setting changed,
with its own opacity (object colour alpha) and depth mode (drawn in front of or behind everything).
``refit_all`` keeps it on the frame when the lens, sensor, shift, clip range, resolution or pixel
aspect change (a depsgraph handler calls it); moving the camera moves it through the parenting.
"""

from __future__ import annotations

import bpy
from mathutils import Matrix, Vector

from .core import camera as cammath

OVERLAY_TAG = "maskel_plane"  # value: the camera's name (kept from the first release's X-ray planes)
FIT_KEY = "maskel_fit"


def camera_params(scene: bpy.types.Scene, cam_ob: bpy.types.Object, res_x: int, res_y: int) -> cammath.CameraParams:
    c = cam_ob.data
    if c.type not in ("PERSP", "ORTHO"):
        raise ValueError(f"camera {cam_ob.name!r} is panoramic; use a perspective or orthographic camera")
    return cammath.CameraParams(
        type=c.type, lens=c.lens, sensor_width=c.sensor_width, sensor_height=c.sensor_height,
        sensor_fit=c.sensor_fit, shift_x=c.shift_x, shift_y=c.shift_y, ortho_scale=c.ortho_scale,
        res_x=res_x, res_y=res_y, aspect_x=scene.render.pixel_aspect_x, aspect_y=scene.render.pixel_aspect_y,
    )  # fmt: skip


def to_camera_space(cam_ob: bpy.types.Object, points) -> list[tuple[float, float, float]]:
    inv = cam_ob.matrix_world.normalized().inverted()
    return [tuple(inv @ p) for p in points]


def scene_resolution(scene: bpy.types.Scene) -> tuple[int, int]:
    r = scene.render
    return (max(1, round(r.resolution_x * r.resolution_percentage / 100)),
            max(1, round(r.resolution_y * r.resolution_percentage / 100)))  # fmt: skip


def overlays(scene: bpy.types.Scene) -> list[bpy.types.Object]:
    return [ob for ob in scene.objects if ob.get(OVERLAY_TAG) is not None and ob.type == "EMPTY"]


def _signature(scene: bpy.types.Scene, cam_ob: bpy.types.Object, ob: bpy.types.Object) -> str:
    c, r = cam_ob.data, scene.render
    size = tuple(ob.data.size) if ob.data is not None else (0, 0)
    return repr((c.type, c.lens, c.sensor_width, c.sensor_height, c.sensor_fit, c.shift_x, c.shift_y,
                 c.ortho_scale, c.clip_start, c.clip_end, scene_resolution(scene), r.pixel_aspect_x,
                 r.pixel_aspect_y, size, tuple(round(s, 6) for s in cam_ob.matrix_world.to_scale()),
                 ob.get("maskel_depth")))  # fmt: skip


def fit(scene: bpy.types.Scene, cam_ob: bpy.types.Object, ob: bpy.types.Object) -> None:
    """Place ``ob`` (an Image Empty child of ``cam_ob``) so its picture fills the camera frame."""
    c = cam_ob.data
    params = camera_params(scene, cam_ob, *scene_resolution(scene))
    depth = min(max(float(ob.get("maskel_depth", 1.0)), c.clip_start * 1.01), c.clip_end * 0.99)
    w, h = ob.data.size if ob.data is not None else (1, 1)
    loc, scale = cammath.empty_fit(params, depth, max(w, 1), max(h, 1))
    cs = cam_ob.matrix_world.to_scale()
    ob.parent = cam_ob
    ob.matrix_parent_inverse = Matrix.Diagonal((1 / cs[0], 1 / cs[1], 1 / cs[2], 1.0))
    ob.matrix_basis = Matrix.LocRotScale(Vector(loc), None, Vector(scale))
    ob.empty_display_size = 1.0
    ob.empty_image_offset = (-0.5, -0.5)
    ob[FIT_KEY] = _signature(scene, cam_ob, ob)


def refit_all(scene: bpy.types.Scene) -> int:
    """Refit every overlay whose camera or frame settings changed; returns how many moved."""
    moved = 0
    for ob in overlays(scene):
        cam = ob.parent
        if cam is None or cam.type != "CAMERA" or cam.data.type not in ("PERSP", "ORTHO"):
            continue
        if ob.get(FIT_KEY) != _signature(scene, cam, ob):
            fit(scene, cam, ob)
            moved += 1
    return moved


def set_display(scene: bpy.types.Scene, opacity: float, in_front: bool) -> None:
    """Apply opacity and front/back drawing to every X-ray overlay and its camera background image."""
    for ob in overlays(scene):
        ob.use_empty_image_alpha = True
        ob.color[3] = opacity
        ob.empty_image_depth = "FRONT" if in_front else "BACK"
        cam = ob.parent
        if cam is not None and cam.type == "CAMERA":
            for bg in cam.data.background_images:
                if bg.image is not None and bg.image.get(OVERLAY_TAG) is not None:
                    bg.alpha = opacity


def update_overlay(scene: bpy.types.Scene, cam_ob: bpy.types.Object, image: bpy.types.Image, depth: float,
                   opacity: float = 0.8, in_front: bool = True) -> bpy.types.Object:  # fmt: skip
    """Create or update the X-ray Image Empty of ``cam_ob`` (and its background image)."""
    name = f"MaSkel X-ray {cam_ob.name}"
    ob = None
    for old in [o for o in scene.objects if o.get(OVERLAY_TAG) == cam_ob.name]:
        if old.type == "EMPTY" and ob is None:
            ob = old
        else:  # a textured plane from an older version of the add-on
            mesh = old.data if old.type == "MESH" else None
            bpy.data.objects.remove(old)
            if mesh is not None and mesh.users == 0:
                bpy.data.meshes.remove(mesh)
    if ob is None:
        ob = bpy.data.objects.new(name, None)
        ob[OVERLAY_TAG] = cam_ob.name
        (cam_ob.users_collection[0] if cam_ob.users_collection else scene.collection).objects.link(ob)
    ob.empty_display_type = "IMAGE"
    ob.data = image
    ob.hide_render = True  # an Image Empty never renders; the flag keeps the silhouette snapshot simple
    ob.show_empty_image_orthographic = True
    ob.show_empty_image_perspective = True
    if hasattr(ob, "show_empty_image_only_axis_aligned"):
        ob.show_empty_image_only_axis_aligned = False
    ob["maskel_depth"] = float(depth)
    fit(scene, cam_ob, ob)
    _set_background(cam_ob, image, opacity)
    set_display(scene, opacity, in_front)
    return ob


def _set_background(cam_ob: bpy.types.Object, image: bpy.types.Image, opacity: float) -> None:
    c = cam_ob.data
    bg = next((b for b in c.background_images if b.image is not None and b.image.get(OVERLAY_TAG) is not None), None)
    if bg is None:
        bg = c.background_images.new()
    bg.image = image
    bg.alpha = opacity
    c.show_background_images = True


def load_image(name: str, path: str) -> bpy.types.Image:
    """Load ``path`` as image ``name`` (packed into the .blend), replacing an older one of that name."""
    new = bpy.data.images.load(path, check_existing=False)
    new.pack()
    new[OVERLAY_TAG] = name
    old = bpy.data.images.get(name)
    if old is not None and old != new:
        old.user_remap(new)
        bpy.data.images.remove(old)
    new.name = name
    return new
