"""Which objects make up the character's body, and where its joints are.

Body meshes of an armature: its mesh children (recursively) and meshes deformed by it through an
Armature modifier. Clothing is left out (``exclude_clothes``) when an object has the custom property
``maskel_clothing`` = True, or its name or one of its material names contains a clothing/hair
keyword (CLOTHING_WORDS). ``maskel_body`` = True/False on an object overrides all of this.
"""

from __future__ import annotations

import json

import bpy

from .core import rigs

CLOTHING_WORDS = (
    "cloth", "shirt", "pant", "trouser", "jean", "short", "skirt", "dress", "jacket", "coat", "hood",
    "sweater", "shoe", "boot", "sneaker", "sock", "glove", "hat", "cap", "helmet", "mask", "glass",
    "belt", "bag", "hair", "eyebrow", "eyelash", "beard", "scarf", "vest", "suit", "underwear", "bra",
)  # fmt: skip


def is_clothing(ob: bpy.types.Object) -> bool:
    if ob.get("maskel_clothing"):
        return True
    names = [ob.name.lower()] + [s.material.name.lower() for s in ob.material_slots if s.material]
    return any(word in n for n in names for word in CLOTHING_WORDS)


def candidate_meshes(character: bpy.types.Object, scene: bpy.types.Scene) -> list[bpy.types.Object]:
    """All meshes that belong to the character (before the body/clothing choice)."""
    if character.type == "MESH":
        return [character]
    found = {ob.name: ob for ob in character.children_recursive if ob.type == "MESH"} if hasattr(
        character, "children_recursive") else {}  # fmt: skip
    for ob in scene.objects:
        if ob.type == "MESH" and any(m.type == "ARMATURE" and m.object == character for m in ob.modifiers):
            found[ob.name] = ob
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


def joint_locations(armature: bpy.types.Object) -> tuple[str | None, dict[str, tuple[float, float, float]]]:
    """(rig name, {canonical joint: world position}) of the posed armature; (None, {}) for unknown rigs.

    A MaSkel mannequin carries its own map in the custom property ``maskel_joint_map``.
    """
    bones = [b.name for b in armature.pose.bones]
    rig, resolved = None, {}
    if armature.get("maskel_joint_map"):
        try:
            resolved = rigs.parse_joint_map(json.loads(armature["maskel_joint_map"]), bones)
            rig = "maskel_mannequin"
        except (ValueError, TypeError):
            resolved = {}
    if not resolved:
        rig, resolved = rigs.detect_rig(bones)
    mw = armature.matrix_world
    out = {}
    for joint, (bone, end) in resolved.items():
        pb = armature.pose.bones[bone]
        out[joint] = tuple(mw @ (pb.head if end == "head" else pb.tail))
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
