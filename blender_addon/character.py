"""Which objects make up the character's body, and where its joints are.

Body meshes of an armature: its mesh children (recursively) and meshes deformed by it through an
Armature modifier. Clothing is left out (``exclude_clothes``) when an object has the custom property
``maskel_clothing`` = True, or its name or one of its material names has a clothing/hair word
(core.clothing: whole words, so a body called "Bradley" is not a bra). ``maskel_body`` = True/False
on an object overrides all of this.
"""

from __future__ import annotations

import json

import bpy

from .core import rigs
from .core.clothing import is_clothing_name

SKELETON_TAG = "maskel_skeleton"
"""On each bone mesh made by Add skeleton (value: the armature's name); such meshes are never body."""


def is_clothing(ob: bpy.types.Object) -> bool:
    if ob.get("maskel_clothing"):
        return True
    return is_clothing_name([ob.name] + [s.material.name for s in ob.material_slots if s.material])


def candidate_meshes(character: bpy.types.Object, scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """All meshes that belong to the character (before the body/clothing choice)."""
    if character.type == "MESH":
        return [character]
    found = {ob.name: ob for ob in character.children_recursive if ob.type == "MESH"} if hasattr(
        character, "children_recursive") else {}  # fmt: skip
    for ob in scene.objects:
        if ob.type == "MESH" and any(m.type == "ARMATURE" and m.object == character for m in ob.modifiers):
            found[ob.name] = ob
    found = {k: ob for k, ob in found.items() if ob.get(SKELETON_TAG) is None}
    return [found[k] for k in sorted(found)]


def is_body(ob: bpy.types.Object, exclude_clothes: bool = True) -> bool:
    """Whether one of the character's meshes is part of the silhouette: its ``maskel_body``
    property wins; otherwise everything but clothing (when clothes are excluded)."""
    if ob.get("maskel_body") is not None:
        return bool(ob.get("maskel_body"))
    return not (exclude_clothes and is_clothing(ob))


def body_meshes(character: bpy.types.Object, scene: bpy.types.Scene, exclude_clothes: bool = True) -> list:
    """The meshes whose silhouette is sent to the model."""
    return [ob for ob in candidate_meshes(character, scene) if is_body(ob, exclude_clothes)]


def find_armature(character: bpy.types.Object) -> bpy.types.Object | None:
    if character.type == "ARMATURE":
        return character
    for m in character.modifiers:
        if m.type == "ARMATURE" and m.object is not None:
            return m.object
    return character.parent if character.parent is not None and character.parent.type == "ARMATURE" else None


def resolve_joints(armature: bpy.types.Object) -> tuple[str | None, dict[str, tuple[str, str]]]:
    """(rig name, {canonical joint: (bone, "head"|"tail")}); (None, {}) for unknown rigs.

    A MaSkel mannequin carries its own map in the custom property ``maskel_joint_map``.
    """
    bones = [b.name for b in armature.data.bones]
    if armature.get("maskel_joint_map"):
        try:
            return "maskel_mannequin", rigs.parse_joint_map(json.loads(armature["maskel_joint_map"]), bones)
        except (ValueError, TypeError):
            pass
    return rigs.detect_rig(bones)


def joint_locations(armature: bpy.types.Object, rest: bool = False
                    ) -> tuple[str | None, dict[str, tuple[float, float, float]]]:  # fmt: skip
    """(rig name, {canonical joint: world position}) of the posed armature (``rest``: of its rest pose)."""
    rig, resolved = resolve_joints(armature)
    mw = armature.matrix_world
    out = {}
    for joint, (bone, end) in resolved.items():
        if rest:
            b = armature.data.bones[bone]
            p = b.head_local if end == "head" else b.tail_local
        else:
            pb = armature.pose.bones[bone]
            p = pb.head if end == "head" else pb.tail
        out[joint] = tuple(mw @ p)
    return rig, out


def find_character(scene: bpy.types.Scene, name: str = "") -> bpy.types.Object:
    """The named object, else the only MaSkel mannequin / the only armature in the scene."""
    if name:
        ob = scene.objects.get(name)
        if ob is None or ob.type not in ("ARMATURE", "MESH"):
            raise ValueError(f"no armature or mesh called {name!r} in scene {scene.name!r}")
        return ob
    arms = [o for o in scene.objects if o.type == "ARMATURE"]
    tagged = [o for o in arms if o.get("maskel_joint_map")]
    for group in (tagged, arms):
        if len(group) == 1:
            return group[0]
    raise ValueError(f"found {len(arms)} armatures in scene {scene.name!r}; choose the character by name")
