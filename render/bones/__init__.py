"""The skeleton of one body in its rest pose: myo-sim's bone meshes registered to the rig.

``build_rest_parts(rest)`` returns every bone (and the lungs and trachea) as closed rest-pose
meshes, each attached to one rig bone; render/phantom.py poses them rigidly with the rig. Bones
come from myo-sim (render/bones/myosim.py, registered by render/bones/register.py); the lungs,
the trachea and the hyoid, which myo-sim does not have, are built here from the registered rib
cage and spine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import trimesh

from render.bones.base import PartGeom, RestBody, part
from render.bones.myosim import reference
from render.bones.primitives import sweep
from render.bones.register import register

__all__ = ["PROCEDURAL", "PartGeom", "RestBody", "build_rest_parts"]

PROCEDURAL = ("hyoid", "lung_left", "lung_right", "trachea")
"""Label names built here rather than taken from myo-sim, which has no meshes for them."""
FIT_BINS = 12  # a long bone's cross-section shrinks piecewise-linearly along its axis
MIN_FIT = 0.4  # a fitting round never shrinks a bone below this fraction of its size
FIT_ROUNDS = 3
TESTED_BELOW = 0.01  # m: only bone vertices this shallow get the inside test (measured over 40
# bodies: the vertices it finds outside the skin all had an approximate depth below 3.3 mm)
JOINT_KEEP = 0.04  # m at 1.75 m stature
MAX_SHORTEN = 0.1  # a long bone whose end leaks is shortened by at most this fraction a round
LONG_BONES = ("femur", "tibia", "fibula", "humerus", "radius", "ulna")
CANAL_SPAN = 0.6  # share of a long bone's length with a marrow canal (the shaft)
CANAL_FRACTION = 0.8  # canal radius / the shaft's inner radius (10th percentile of its section)
LUNG_INSET = 0.82  # a lung is its half of the rib cage's hull, shrunk about its centre
MEDIASTINUM = 0.035  # m at the myo stature: half-width of the heart and great vessels
TRACHEA_LEVELS = ("C6", "C7", "T1", "T2", "T3", "T4", "T5")  # from the cricoid (C6) to the carina (T4/T5 disc)
TRACHEA_RADIUS = 0.0085  # m at 1.75 m: an adult's lumen is 15-20 mm across
TRACHEA_BEHIND = 0.008  # m at 1.75 m: the oesophagus, between the trachea and the vertebral bodies
TRACHEA_UNDER_SKIN = 0.008  # m at 1.75 m: at least this much tissue in front of it


def build_rest_parts(rest: RestBody) -> list[PartGeom]:
    """All skeleton parts in the rest pose, in a fixed order (deterministic for a given body)."""
    parts = register(rest, reference())
    parts = fit_inside(rest, parts + lungs(parts, rest.scale) + [hyoid(rest, parts)] + trachea(rest, parts))
    return parts + [medullary_canal(p) for p in parts if p.bone.split("_")[0] in LONG_BONES]


def medullary_canal(bone: PartGeom) -> PartGeom:
    """The marrow canal of a long bone's shaft: a tube along the bone's centre line over the
    middle CANAL_SPAN of its length, its radius CANAL_FRACTION of the shaft's local inner
    radius less the cortical shell. Marrow displacing the bone's spongy core."""
    v = bone.vertices
    c = v.mean(axis=0)
    _, _, vt = np.linalg.svd(v - c, full_matrices=False)
    axis = vt[0]
    t = (v - c) @ axis
    lo, hi = np.quantile(t, [0.5 - CANAL_SPAN / 2, 0.5 + CANAL_SPAN / 2])
    edges = np.linspace(lo, hi, 9)
    centres, radii = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        ring = v[(t >= a) & (t < b)]
        if len(ring) < 4:
            ring = v[np.argsort(np.abs(t - 0.5 * (a + b)))[:8]]
        m = ring.mean(axis=0)
        off = ring - m
        r = np.linalg.norm(off - np.outer(off @ axis, axis), axis=1)
        centres.append(m)
        radii.append(max(CANAL_FRACTION * float(np.quantile(r, 0.1)) - bone.shell, 0.4 * CANAL_FRACTION * float(np.quantile(r, 0.1))))
    up = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    mesh = sweep(np.array(centres), np.array(radii), n_around=10, up=up)
    return part(bone.bone, bone.rig, "marrow", bone.core or "spongy", mesh)


def lungs(parts: list[PartGeom], scale: float) -> list[PartGeom]:
    """Each lung: the convex hull of its side's ribs 1-10 (from the midline plane out), shrunk
    about its centre so it sits inside the ribs, beside the mediastinum."""
    by_name = {p.bone: p for p in parts}
    out = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        ribs = [by_name[f"rib_{side}_{i}"] for i in range(1, 11)]
        spine = by_name["vertebra_T6"]
        pts = np.concatenate([r.vertices for r in ribs])
        pts = pts[sign * (pts[:, 0] - spine.vertices[:, 0].mean()) > MEDIASTINUM * scale]
        hull = trimesh.convex.convex_hull(pts)
        c = hull.vertices.mean(axis=0)
        v = c + (np.asarray(hull.vertices) - c) * LUNG_INSET
        rig = ribs[5].rig
        out.append(PartGeom(f"lung_{side}", rig, "lung", "soft_tissue", v, np.asarray(hull.faces, dtype=np.int64)))
    return out


def hyoid(rest: RestBody, parts: list[PartGeom]) -> PartGeom:
    """A U-shaped bar (body and greater horns) at the level of C3, opening backwards."""
    c3 = next(p for p in parts if p.bone == "vertebra_C3")
    jaw = next(p for p in parts if p.bone == "mandible")
    s = rest.scale
    centre = c3.vertices.mean(axis=0)
    front = 0.5 * (centre[1] + jaw.vertices[:, 1].min())  # halfway to the chin
    th = np.linspace(-0.42 * np.pi, 0.42 * np.pi, 9)
    path = np.stack([np.sin(th) * 0.02 * s, front + (1.0 - np.cos(th)) * 0.028 * s, np.full(9, centre[2])], axis=1)
    return part("hyoid", c3.rig, "cortical", "soft_tissue", sweep(path, 0.0035 * s, 0.005 * s, n_around=8))


def trachea(rest: RestBody, parts: list[PartGeom]) -> list[PartGeom]:
    """The trachea's air column, from the cricoid (the middle of C6) to the carina (the T4/T5
    disc), in the midline in front of the vertebral bodies with the oesophagus between: one
    straight tube per vertebral level, moving with that level's vertebra, so that it bends with
    the neck. Where the skin in front is near (a thin neck, a deep jugular notch) the tube and the
    gap behind it shrink until its front keeps TRACHEA_UNDER_SKIN under the skin. The main
    bronchi, which run into the lungs' hulls, are left out."""
    by_name = {p.bone: p for p in parts}
    levels = [by_name[f"vertebra_{v}"] for v in TRACHEA_LEVELS]
    r, behind, under = (x * rest.scale for x in (TRACHEA_RADIUS, TRACHEA_BEHIND, TRACHEA_UNDER_SKIN))
    fronts = np.array([[p.vertices[:, 0].mean(), p.vertices[:, 1].min(), p.vertices[:, 2].mean()] for p in levels])
    room = rest.depth(fronts + [0.0, 0.001, 0.0], np.tile([0.0, -1.0, 0.0], (len(levels), 1)))  # forward to the skin
    fit = np.clip((room - under) / (behind + 2 * r), 0.5, 1.0)
    centres = fronts - np.outer(fit * (behind + r), [0.0, 1.0, 0.0])
    ends = np.concatenate([centres[:1], 0.5 * (centres[1:] + centres[:-1])])  # level boundaries
    radii = r * np.minimum(fit[:-1], fit[1:])
    return [part("trachea", p.rig, "air", "soft_tissue",
                 sweep(ends[i:i + 2], [radii[max(i - 1, 0)], radii[i]], n_around=12, up=(1.0, 0.0, 0.0)))
            for i, p in enumerate(levels[:-1])]


def fit_inside(rest: RestBody, parts: list[PartGeom], margin: float = 0.003) -> list[PartGeom]:
    """Shrink any bone that reaches within ``margin`` (x body scale) of the rest skin.

    Depth is measured against the nearest skin vertex's tangent plane (cheap, vectorised) and,
    for vertices shallower than TESTED_BELOW, overruled by the DRR's own inside test (the skin's
    winding number) where that approximation fails (thin fingers, toes, folds). A long bone
    shrinks towards its own long axis (its principal axis through its centroid) by a factor that
    varies piecewise-linearly along it (a trochanter near the skin narrows the bone there, not
    the whole shaft), so its length and the joint centres it was registered on stay (the femoral
    head does not move at all); a compact bone (no clear long axis) shrinks towards the head of
    its rig bone (a joint centre inside the body). Up to FIT_ROUNDS rounds,
    each re-measuring only the parts it moved.
    """
    margin *= rest.scale
    scene = rest.scene
    out = list(parts)
    todo = list(range(len(parts)))
    for _ in range(FIT_ROUNDS):
        sizes = [len(out[i].vertices) for i in todo]
        allv = np.concatenate([out[i].vertices for i in todo])
        depth = rest.skin_depth(allv)
        near = np.flatnonzero(depth < TESTED_BELOW)
        outside = near[scene.skin_winding(allv[near]) <= 0]
        depth[outside] = np.minimum(depth[outside], -margin)
        leaking = []
        for i, d in zip(todo, np.split(depth, np.cumsum(sizes)[:-1]), strict=True):
            if d.min() < margin:
                out[i] = dataclasses.replace(out[i], vertices=_shrunk(rest, out[i], d, margin))
                leaking.append(i)
        if not leaking:
            break
        todo = leaking
    return out


def _need(short: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Shrink fraction that moves each vertex in by `short` towards a centre `dist` away; 0 for
    vertices inside the margin and for those too close to the centre for shrinking to help."""
    useful = (short > 0) & (dist > 2.0 * short)
    return np.where(useful, np.clip(short / np.maximum(dist, 1e-9), 0.0, 1.0 - MIN_FIT), 0.0)


def _shrunk(rest: RestBody, p: PartGeom, depth: np.ndarray, margin: float) -> np.ndarray:
    v = p.vertices
    c = v.mean(axis=0)
    _, sv, vt = np.linalg.svd(v - c, full_matrices=False)
    if sv[0] <= 2.0 * sv[1]:  # compact: towards the rig bone's head (a joint centre inside)
        h = rest.h(p.rig)
        factor = 1.0 - float(_need(margin - depth, np.linalg.norm(v - h, axis=1)).max())
        return h + (v - h) * factor
    axis = vt[0]
    t = (v - c) @ axis
    q = c + np.outer(t, axis)
    need = _need(margin - depth, np.linalg.norm(v - q, axis=1))
    knots = np.linspace(t.min(), t.max(), FIT_BINS)
    nearest = np.clip(np.rint((t - knots[0]) / max(knots[1] - knots[0], 1e-9)), 0, FIT_BINS - 1).astype(int)
    per_bin = np.zeros(FIT_BINS)
    np.maximum.at(per_bin, nearest, need)
    per_bin = np.maximum(per_bin, 0.5 * np.maximum(np.r_[per_bin[1:], 0.0], np.r_[0.0, per_bin[:-1]]))
    # an end poking out (a fingertip, a toe) also shortens the bone a little
    ends = np.abs(t) > 0.8 * np.abs(t).max()
    along = float(np.clip(_need(margin - depth, np.abs(t))[ends].max(), 0.0, MAX_SHORTEN))
    moved = (q - v) * np.interp(t, knots, per_bin)[:, None] - np.outer(t * along, axis)
    if p.bone.startswith("femur"):
        # the femoral head stays on the hip joint (it sits off the shaft's axis, on the neck):
        # the shrink fades out within JOINT_KEEP of the rig bone's head
        moved *= np.clip(np.linalg.norm(v - rest.h(p.rig), axis=1) / (JOINT_KEEP * rest.scale), 0.0, 1.0)[:, None]
    return v + moved
