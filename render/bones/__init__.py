"""Procedural anatomical skeleton built from a body's rest-pose rig and skin.

``build_rest_parts(rest)`` returns every bone (and the lungs) as closed rest-pose meshes, each
attached to one rig bone; render/phantom.py poses them rigidly with the rig.
"""

from __future__ import annotations

import numpy as np

from render.bones.axial import Spine, pelvis, skull, spine, thorax
from render.bones.base import PartGeom, RestBody
from render.bones.extremities import feet, hands
from render.bones.limbs import lower_limbs, upper_limbs

__all__ = ["PartGeom", "RestBody", "build_rest_parts"]


def build_rest_parts(rest: RestBody) -> list[PartGeom]:
    """All skeleton parts in the rest pose, in a fixed order (deterministic for a given body)."""
    sp = Spine(rest)
    chest, notch = thorax(rest, sp)
    parts = (
        skull(rest, sp) + spine(rest, sp) + chest + pelvis(rest, sp)
        + upper_limbs(rest, notch) + hands(rest) + lower_limbs(rest) + feet(rest)
    )
    return fit_inside(rest, parts)


def fit_inside(rest: RestBody, parts: list[PartGeom], margin: float = 0.004) -> list[PartGeom]:
    """Shrink any bone that reaches within ``margin`` (x body scale) of the rest skin.

    Depth is measured against the nearest skin vertex's normal plane (cheap, vectorised). All
    parts of one bone shrink together about the head of its rig bone (a joint centre, inside
    the body) so shells and cavities stay nested.
    """
    margin *= rest.scale
    sizes = [len(p.vertices) for p in parts]
    allv = np.concatenate([p.vertices for p in parts])
    owner = np.repeat(np.arange(len(parts)), sizes)
    bones = sorted({p.bone for p in parts})
    bone_of = np.array([bones.index(p.bone) for p in parts])[owner]
    depth = rest.skin_depth(allv)
    rig_of = {p.bone: p.rig for p in parts}
    centres = np.stack([rest.h(rig_of[b]) for b in bones])
    dist = np.linalg.norm(allv - centres[bone_of], axis=1)
    need = np.clip((margin - depth) / np.maximum(dist, 1e-6), 0.0, 0.9)
    factor = 1.0 - np.array([need[bone_of == b].max() for b in range(len(bones))])
    out = []
    for p in parts:
        b = bones.index(p.bone)
        if factor[b] < 1.0:
            c = centres[b]
            p = PartGeom(p.bone, p.rig, p.material, p.displaces, c + (p.vertices - c) * factor[b], p.faces)
        out.append(p)
    return out
