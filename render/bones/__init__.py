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

FIT_BINS = 12  # a long bone's cross-section shrinks piecewise-linearly along its axis
MIN_FIT = 0.4  # never below this fraction of its registered size (per round)
FIT_ROUNDS = 3
MAX_SHORTEN = 0.1  # a long bone whose end leaks is shortened by at most this fraction a round
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
    long bone shrinks towards its own long axis (its principal axis through its centroid), by a
    factor that varies piecewise-linearly along it (a trochanter near the skin narrows the
    bone there, not the whole shaft), so its length and the joint centres it was registered on
    stay; a compact bone (no clear long axis) shrinks towards the head of its rig bone (a joint
    centre inside the body). All parts of one bone shrink together.
    """
    from render.drr import DrrScene

    margin *= rest.scale
    sizes = [len(p.vertices) for p in parts]
    owner = np.repeat(np.arange(len(parts)), sizes)
    bones = sorted({p.bone for p in parts})
    bone_of = np.array([bones.index(p.bone) for p in parts])[owner]
    scene = DrrScene(rest.skin, [])
    out = list(parts)
    for _ in range(FIT_ROUNDS):
        allv = np.concatenate([p.vertices for p in out])
        # depth from the nearest skin vertex's tangent plane, overruled by the DRR's own inside
        # test where that approximation fails (thin fingers, toes, the skin folding over)
        depth = rest.skin_depth(allv)
        outside = scene.skin_winding(allv) <= 0
        depth[outside] = np.minimum(depth[outside], -margin)
        leaking = np.unique(bone_of[depth < margin])
        if not len(leaking):
            break
        out = _shrink(rest, out, allv, depth, bone_of, bones, leaking, margin)
    return out


def _shrink(rest: RestBody, parts: list[PartGeom], allv: np.ndarray, depth: np.ndarray, bone_of: np.ndarray,
            bones: list[str], leaking: np.ndarray, margin: float) -> list[PartGeom]:
    out = list(parts)
    for b in leaking:
        sel = bone_of == b
        v, dep = allv[sel], depth[sel]
        c = v.mean(axis=0)
        _, sv, vt = np.linalg.svd(v - c, full_matrices=False)
        if sv[0] > 2.0 * sv[1]:  # a long bone: shrink its cross-section, more where it leaks
            axis = vt[0]
            t = (v - c) @ axis
            knots = np.linspace(t.min(), t.max(), FIT_BINS)
            dist = np.linalg.norm(v - c - np.outer(t, axis), axis=1)
            need = np.clip((margin - dep) / np.maximum(dist, 1e-6), 0.0, 1.0 - MIN_FIT)
            nearest = np.clip(np.rint((t - knots[0]) / max(knots[1] - knots[0], 1e-9)), 0, FIT_BINS - 1).astype(int)
            per_bin = np.zeros(FIT_BINS)
            np.maximum.at(per_bin, nearest, need)
            per_bin = np.maximum(per_bin, np.maximum(np.r_[per_bin[1:], 0.0], np.r_[0.0, per_bin[:-1]]) * 0.5)

            # an end poking out (a fingertip, a toe) also shortens the bone a little
            ends = np.abs(t) > 0.8 * np.abs(t).max()
            along = float(np.clip(((margin - dep) / np.maximum(np.abs(t), 1e-6))[ends].max(), 0.0, MAX_SHORTEN))

            def shrink(x: np.ndarray, axis=axis, c=c, knots=knots, per_bin=per_bin, along=along) -> np.ndarray:
                tx = (x - c) @ axis
                q = c + np.outer(tx, axis)
                return q + (x - q) * (1.0 - np.interp(tx, knots, per_bin))[:, None] - np.outer(tx * along, axis)
        else:  # compact: shrink towards the rig bone's head (a joint centre inside the body)
            c = rest.h(next(p.rig for p in parts if bones.index(p.bone) == b))
            dist = np.linalg.norm(v - c, axis=1)
            factor = 1.0 - float(np.clip((margin - dep) / np.maximum(dist, 1e-6), 0.0, 1.0 - MIN_FIT).max())

            def shrink(x: np.ndarray, c=c, factor=factor) -> np.ndarray:
                return c + (x - c) * factor
        for i, p in enumerate(parts):
            if bones.index(p.bone) == b:
                out[i] = dataclasses.replace(p, vertices=shrink(p.vertices))
    return out
