"""Create orthographic front and side "X-ray cameras" framing the character."""

from __future__ import annotations

import bpy
from mathutils import Euler, Matrix, Vector

from .core import camera as cammath
from .pipeline import XRAY_CAMERA_TAG, silhouette_size, world_bbox

# Front: camera on -Y looking along +Y (Blender's front view). Side: on +X looking along -X,
# i.e. at the character's own left side (left is +X in its rest pose).
VIEWS = {
    "front": Euler((1.5707963, 0.0, 0.0)),
    "side": Euler((1.5707963, 0.0, 1.5707963)),
}


def create_xray_cameras(scene: bpy.types.Scene, meshes: list[bpy.types.Object], resolution: int = 512,
                        distance: float = 10.0) -> list[bpy.types.Object]:  # fmt: skip
    """Create or update cameras tagged front/side that frame ``meshes`` with a margin."""
    pts = world_bbox(meshes)
    centre = sum(pts, Vector()) / len(pts)
    res_x, res_y = silhouette_size(scene, resolution)
    out = []
    for view, rot in VIEWS.items():
        cam = next((o for o in scene.objects if o.type == "CAMERA" and o.get(XRAY_CAMERA_TAG) == view), None)
        if cam is None:
            cam = bpy.data.objects.new(f"MaSkel {view.title()}", bpy.data.cameras.new(f"MaSkel {view.title()}"))
            cam[XRAY_CAMERA_TAG] = view
            scene.collection.objects.link(cam)
        c = cam.data
        c.type = "ORTHO"
        c.sensor_fit = "AUTO"
        c.shift_x = c.shift_y = 0.0
        rot_m = rot.to_matrix().to_4x4()
        forward = rot_m.to_3x3() @ Vector((0, 0, -1))
        cam.matrix_world = Matrix.Translation(centre - forward * distance) @ rot_m
        inv = cam.matrix_world.inverted()
        local = [tuple(inv @ p) for p in pts]
        scale, offset = cammath.fit_ortho(local, res_x, res_y)
        c.ortho_scale = scale
        cam.matrix_world = cam.matrix_world @ Matrix.Translation(Vector(offset))
        zs = [-p[2] for p in local]
        c.clip_start = max(0.01, min(zs) * 0.5)
        c.clip_end = max(zs) * 2 + 1
        out.append(cam)
    return out
