"""The skeleton of one body in its rest pose: myo-sim's bone meshes registered to the rig.

``build_rest_parts(rest)`` returns every bone (and the lungs) as closed rest-pose meshes, each
attached to one rig bone; render/phantom.py poses them rigidly with the rig. Bones come from
myo-sim (render/bones/myosim.py, registered by render/bones/register.py); the lungs and the
hyoid, which myo-sim does not have, stay procedural (render/bones/axial.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from render.bones.axial import Spine, skull, thorax
from render.bones.base import PartGeom, RestBody
from render.bones.myosim import reference
from render.bones.register import register

__all__ = ["PROCEDURAL", "PartGeom", "RestBody", "build_rest_parts"]

PROCEDURAL = ("hyoid", "lung_left", "lung_right")
"""Label names still built procedurally: myo-sim has no meshes for them."""


def build_rest_parts(rest: RestBody) -> list[PartGeom]:
    """All skeleton parts in the rest pose, in a fixed order (deterministic for a given body)."""
    sp = Spine(rest)
    chest, _ = thorax(rest, sp)
    procedural = [p for p in skull(rest, sp) + chest if p.bone in PROCEDURAL]
    return fit_inside(rest, register(rest, reference()) + procedural)


def fit_inside(rest: RestBody, parts: list[PartGeom], margin: float = 0.003) -> list[PartGeom]:
    """Shrink any bone that reaches within ``margin`` (x body scale) of the rest skin.

    Depth is measured against the nearest skin vertex's normal plane (cheap, vectorised). A
    bone shrinks towards its own long axis (its principal axis through its centroid), so its
    length, and the joint centres it was registered on, stay; a compact bone (no clear long
    axis) shrinks towards the head of its rig bone (a joint centre inside the body). All parts
    of one bone shrink together.
    """
    margin *= rest.scale
    sizes = [len(p.vertices) for p in parts]
    allv = np.concatenate([p.vertices for p in parts])
    owner = np.repeat(np.arange(len(parts)), sizes)
    bones = sorted({p.bone for p in parts})
    bone_of = np.array([bones.index(p.bone) for p in parts])[owner]
    depth = rest.skin_depth(allv)
    out = list(parts)
    for b in np.unique(bone_of[depth < margin]):
        sel = bone_of == b
        v, dep = allv[sel], depth[sel]
        c = v.mean(axis=0)
        _, sv, vt = np.linalg.svd(v - c, full_matrices=False)
        long = sv[0] > 2.0 * sv[1]
        axis = vt[0] if long else np.zeros(3)
        if not long:
            c = rest.h(next(p.rig for p in parts if bones.index(p.bone) == b))

        def toward(x: np.ndarray, axis: np.ndarray = axis, c: np.ndarray = c) -> np.ndarray:
            return c + np.outer((x - c) @ axis, axis)

        dist = np.linalg.norm(v - toward(v), axis=1)
        factor = 1.0 - float(np.clip((margin - dep) / np.maximum(dist, 1e-6), 0.0, 0.6).max())
        for i, p in enumerate(parts):
            if bones.index(p.bone) == b:
                q = toward(p.vertices)
                out[i] = dataclasses.replace(p, vertices=q + (p.vertices - q) * factor)
    return out
