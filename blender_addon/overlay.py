"""The X-ray plane: a quad exactly filling a camera's frame at a depth, with a shadeless image material,
parented to the camera; and the camera background image."""

from __future__ import annotations

import bpy
from mathutils import Matrix

from .core import camera as cammath

PLANE_TAG = "maskel_plane"


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


def _material(name: str, image: bpy.types.Image, opacity: float) -> bpy.types.Material:
    mat = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    mat.use_nodes = True
    nt = mat.node_tree
    nt.nodes.clear()
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.name = "maskel_image"
    tex.image = image
    tex.interpolation = "Closest"
    emit = nt.nodes.new("ShaderNodeEmission")
    transp = nt.nodes.new("ShaderNodeBsdfTransparent")
    mix = nt.nodes.new("ShaderNodeMixShader")
    mix.name = "maskel_opacity"
    mix.inputs[0].default_value = opacity
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    nt.links.new(tex.outputs["Color"], emit.inputs["Color"])
    nt.links.new(transp.outputs[0], mix.inputs[1])
    nt.links.new(emit.outputs[0], mix.inputs[2])
    nt.links.new(mix.outputs[0], out.inputs["Surface"])
    if hasattr(mat, "surface_render_method"):  # 4.2+
        mat.surface_render_method = "BLENDED"
    elif hasattr(mat, "blend_method"):
        mat.blend_method = "BLEND"
        if hasattr(mat, "shadow_method"):
            mat.shadow_method = "NONE"
    return mat


def set_opacity(scene: bpy.types.Scene, opacity: float) -> None:
    """Apply the opacity to every X-ray plane and camera background image in the scene."""
    for ob in scene.objects:
        if ob.get(PLANE_TAG) is None:
            continue
        for slot in ob.material_slots:
            node = slot.material.node_tree.nodes.get("maskel_opacity") if slot.material else None
            if node is not None:
                node.inputs[0].default_value = opacity
        cam = ob.parent
        if cam is not None and cam.type == "CAMERA":
            for bg in cam.data.background_images:
                if bg.image is not None and bg.image.get(PLANE_TAG) is not None:
                    bg.alpha = opacity


def scene_resolution(scene: bpy.types.Scene) -> tuple[int, int]:
    r = scene.render
    return (max(1, round(r.resolution_x * r.resolution_percentage / 100)),
            max(1, round(r.resolution_y * r.resolution_percentage / 100)))  # fmt: skip


def update_plane(scene: bpy.types.Scene, cam_ob: bpy.types.Object, image: bpy.types.Image, depth: float,
                 opacity: float = 0.8) -> bpy.types.Object:  # fmt: skip
    """Create or update the plane of ``cam_ob`` so it exactly fills the frame (the scene's own
    resolution and pixel aspect, as the viewport shows it) at ``depth``."""
    params = camera_params(scene, cam_ob, *scene_resolution(scene))
    c = cam_ob.data
    depth = min(max(depth, c.clip_start * 1.01), c.clip_end * 0.99)
    corners = cammath.frame_corners(params, depth)
    name = f"MaSkel X-ray {cam_ob.name}"
    plane = next((o for o in scene.objects if o.get(PLANE_TAG) == cam_ob.name), None)
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(corners, [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    for loop, coord in zip(uv.data, ((0, 0), (1, 0), (1, 1), (0, 1)), strict=True):
        loop.uv = coord
    mesh.update()
    if plane is None:
        plane = bpy.data.objects.new(name, mesh)
        plane[PLANE_TAG] = cam_ob.name
        (cam_ob.users_collection[0] if cam_ob.users_collection else scene.collection).objects.link(plane)
    else:
        old = plane.data
        plane.data = mesh
        if old.users == 0:
            bpy.data.meshes.remove(old)
    plane.parent = cam_ob
    scale = cam_ob.matrix_world.to_scale()
    plane.matrix_parent_inverse = Matrix.Diagonal((1 / scale[0], 1 / scale[1], 1 / scale[2], 1.0))
    plane.matrix_basis = Matrix.Identity(4)
    mat = _material(name, image, opacity)
    plane.data.materials.clear()
    plane.data.materials.append(mat)
    plane["maskel_depth"] = depth
    _set_background(cam_ob, image, opacity)
    return plane


def _set_background(cam_ob: bpy.types.Object, image: bpy.types.Image, opacity: float) -> None:
    c = cam_ob.data
    bg = next((b for b in c.background_images if b.image is not None and b.image.get(PLANE_TAG) is not None), None)
    if bg is None:
        bg = c.background_images.new()
    bg.image = image
    bg.alpha = opacity
    c.show_background_images = True


def load_image(name: str, path: str) -> bpy.types.Image:
    """Load ``path`` as image ``name`` (packed into the .blend), replacing an older one of that name."""
    new = bpy.data.images.load(path, check_existing=False)
    new.pack()
    new[PLANE_TAG] = name
    old = bpy.data.images.get(name)
    if old is not None and old != new:
        old.user_remap(new)
        bpy.data.images.remove(old)
    new.name = name
    return new
