"""Binary silhouette of chosen objects from a camera, rendered with Workbench.

Every scene setting and hide flag touched here is recorded and restored on exit, also when the
render fails or the job is cancelled (``SceneOverrides``).
"""

from __future__ import annotations

import os
from array import array
from contextlib import contextmanager
from dataclasses import dataclass

import bpy


class SceneOverrides:
    """Set attributes and remember the old values; ``restore`` puts them back in reverse order."""

    def __init__(self) -> None:
        self._saved: list[tuple[object, str, object]] = []

    def set(self, owner: object, attr: str, value: object) -> None:
        if not hasattr(owner, attr):
            return  # setting absent in this Blender version
        old = getattr(owner, attr)
        if not isinstance(old, (str, bytes, bpy.types.ID)) and hasattr(old, "__len__"):
            old = tuple(old)  # colours/vectors/arrays are live views of the setting
        self._saved.append((owner, attr, old))
        setattr(owner, attr, value)

    def restore(self) -> list[str]:
        """Undo everything; returns the failures (never raises, so one bad attribute cannot block the rest)."""
        errors = []
        for owner, attr, old in reversed(self._saved):
            try:
                setattr(owner, attr, old)
            except (AttributeError, TypeError, ValueError, ReferenceError) as e:
                errors.append(f"{attr}: {e}")
        self._saved.clear()
        return errors


@contextmanager
def silhouette_setup(scene: bpy.types.Scene, camera: bpy.types.Object, objects: list[bpy.types.Object],
                     res_x: int, res_y: int, path: str, hide_particles: bool = True):  # fmt: skip
    """Configure ``scene`` to render a 0/1-alpha Workbench silhouette of ``objects`` only to ``path``."""
    ov = SceneOverrides()
    keep = {o.name for o in objects}
    try:
        r = scene.render
        ov.set(r, "engine", "BLENDER_WORKBENCH")
        ov.set(scene, "camera", camera)
        ov.set(r, "filepath", path)
        for attr, value in (("resolution_x", res_x), ("resolution_y", res_y), ("resolution_percentage", 100),
                            ("film_transparent", True), ("dither_intensity", 0.0), ("use_border", False),
                            ("use_compositing", False), ("use_sequencer", False), ("use_stamp", False),
                            ("use_freestyle", False), ("use_motion_blur", False), ("use_multiview", False),
                            ("use_single_layer", True), ("use_file_extension", True)):  # fmt: skip
            ov.set(r, attr, value)
        im = r.image_settings
        for attr, value in (("file_format", "PNG"), ("color_mode", "RGBA"), ("color_depth", "8"),
                            ("compression", 15), ("color_management", "FOLLOW_SCENE")):  # fmt: skip
            ov.set(im, attr, value)
        sh = scene.display.shading
        for attr, value in (("light", "FLAT"), ("color_type", "SINGLE"), ("single_color", (1.0, 1.0, 1.0)),
                            ("show_cavity", False), ("show_shadows", False), ("show_object_outline", False),
                            ("show_xray", False), ("use_dof", False), ("show_backface_culling", False)):  # fmt: skip
            ov.set(sh, attr, value)
        ov.set(scene.display, "render_aa", "OFF")
        vs = scene.view_settings
        for attr, value in (("view_transform", "Standard"), ("look", "None"), ("exposure", 0.0), ("gamma", 1.0),
                            ("use_curve_mapping", False)):  # fmt: skip
            ov.set(vs, attr, value)
        # Body meshes hidden from render (the object or a collection holding it) are X-rayed on
        # purpose: a user may hide the body in final renders and still want its X-ray.
        for coll in bpy.data.collections:
            if coll.hide_render and any(o.name in keep for o in coll.all_objects):
                ov.set(coll, "hide_render", False)
        for ob in scene.objects:
            ov.set(ob, "hide_render", ob.name not in keep)
            if ob.name in keep and hide_particles:
                for mod in ob.modifiers:
                    if mod.type == "PARTICLE_SYSTEM":
                        ov.set(mod, "show_render", False)
        yield
    finally:
        ov.restore()


@dataclass
class MaskStats:
    width: int
    height: int
    body: int  # pixels with alpha >= 0.5
    partial: int  # pixels with 0 < alpha < 1 (must be 0 for a binary silhouette)


def image_alpha(path: str) -> tuple[int, int, array]:
    """(width, height, alpha values bottom row first) of an image file, read through Blender."""
    img = bpy.data.images.load(path, check_existing=False)
    try:
        w, h = img.size
        px = array("f", bytes(4 * w * h * 4))
        img.pixels.foreach_get(px)
        return w, h, px[3::4]
    finally:
        bpy.data.images.remove(img)


def render_silhouette(scene: bpy.types.Scene, camera: bpy.types.Object, objects: list[bpy.types.Object],
                      res_x: int, res_y: int, path: str, hide_particles: bool = True) -> MaskStats:  # fmt: skip
    """Render the silhouette PNG (RGBA, alpha 0/255) to ``path`` and count its body pixels."""
    if os.path.exists(path):
        os.remove(path)
    with silhouette_setup(scene, camera, objects, res_x, res_y, path, hide_particles):
        bpy.ops.render.render(write_still=True, scene=scene.name)
    if not os.path.isfile(path):
        raise RuntimeError(f"Blender did not write the silhouette render {path}")
    w, h, alpha = image_alpha(path)
    ones = alpha.count(1.0)  # array.count runs in C: a binary mask needs no Python loop
    partial = len(alpha) - alpha.count(0.0) - ones
    body = ones + (sum(1 for a in alpha if 0.5 <= a < 1.0) if partial else 0)
    return MaskStats(w, h, body, partial)
