"""Build a rigged, skinned MaSkel mannequin (armature + mesh + vertex groups + Armature modifier)
from the mannequin JSON (format maskel-mannequin/1, world coordinates, metres, Z up)."""

from __future__ import annotations

import json

import bpy

FORMAT = "maskel-mannequin/1"


def validate(data: dict) -> None:
    """Raise ValueError (one line) when ``data`` is not a usable mannequin."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a MaSkel mannequin (expected format {FORMAT!r})")
    verts, faces, bones = data.get("vertices"), data.get("faces"), data.get("bones")
    if not verts or not faces or not bones:
        raise ValueError("mannequin JSON has no vertices, faces or bones")
    n = len(verts)
    if any(len(v) != 3 for v in verts):
        raise ValueError("mannequin vertices must be [x, y, z]")
    if any(len(f) < 3 or min(f) < 0 or max(f) >= n for f in faces):
        raise ValueError("mannequin face refers to a missing vertex")
    names = {b["name"] for b in bones}
    for b in bones:
        if b.get("parent") not in (None, *names):
            raise ValueError(f"bone {b['name']!r} has unknown parent {b.get('parent')!r}")
    for bone, pairs in (data.get("weights") or {}).items():
        if bone not in names:
            raise ValueError(f"weights for unknown bone {bone!r}")
        if any(not 0 <= int(i) < n for i, _ in pairs):
            raise ValueError(f"weights of bone {bone!r} refer to a missing vertex")


def load_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON ({e.msg} at line {e.lineno})") from None
    validate(data)
    return data


def build(data: dict, collection: bpy.types.Collection, name: str = "MaSkel Mannequin") -> bpy.types.Object:
    """Create the armature object (returned) and its skinned body mesh (its child) in ``collection``."""
    validate(data)
    arm_data = bpy.data.armatures.new(name)
    arm = bpy.data.objects.new(name, arm_data)
    collection.objects.link(arm)
    arm["maskel_joint_map"] = json.dumps(data.get("joint_map") or {})
    _build_bones(arm, data["bones"])

    mesh = bpy.data.meshes.new(f"{name} Body")
    mesh.from_pydata([tuple(v) for v in data["vertices"]], [], [tuple(f) for f in data["faces"]])
    mesh.validate()
    mesh.update()
    body = bpy.data.objects.new(f"{name} Body", mesh)
    body["maskel_body"] = True
    collection.objects.link(body)
    body.parent = arm
    for bone, pairs in (data.get("weights") or {}).items():
        vg = body.vertex_groups.new(name=bone)
        for i, w in pairs:
            vg.add([int(i)], float(w), "REPLACE")
    mod = body.modifiers.new("Armature", "ARMATURE")
    mod.object = arm
    return arm


def _build_bones(arm: bpy.types.Object, bones: list[dict]) -> None:
    view_layer = bpy.context.view_layer
    previous = view_layer.objects.active
    for ob in view_layer.objects:
        ob.select_set(False)
    view_layer.objects.active = arm
    arm.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        ebones = arm.data.edit_bones
        for b in bones:
            eb = ebones.new(b["name"])
            eb.head = b["head"]
            eb.tail = b["tail"]
            eb.roll = float(b.get("roll", 0.0))
            eb.use_deform = True
        for b in bones:
            if b.get("parent"):
                ebones[b["name"]].parent = ebones[b["parent"]]
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        if previous is not None and previous.name in view_layer.objects:
            view_layer.objects.active = previous
