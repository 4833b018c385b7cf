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



# Mocap joint name (normalised: prefix such as "mixamorig:" removed, lower case, no "_"/" ")
# -> anny bone. Spine and neck chains are handled by position in the chain (mocap_to_anny).
_SIDED = {
    "shoulder": "clavicle", "collar": "clavicle", "clavicle": "clavicle",
    "arm": "upperarm01", "upperarm": "upperarm01", "humerus": "upperarm01",
    "forearm": "lowerarm01", "lowerarm": "lowerarm01", "elbow": "lowerarm01",
    "hand": "wrist", "wrist": "wrist",
    "upleg": "upperleg01", "upperleg": "upperleg01", "thigh": "upperleg01", "femur": "upperleg01", "hip": "upperleg01",
    "leg": "lowerleg01", "lowerleg": "lowerleg01", "shin": "lowerleg01", "knee": "lowerleg01", "tibia": "lowerleg01",
    "foot": "foot", "ankle": "foot",
    "handthumb1": "finger1-1", "handthumb2": "finger1-2", "handthumb3": "finger1-3",
    "handindex1": "finger2-1", "handindex2": "finger2-2", "handindex3": "finger2-3",
    "handmiddle1": "finger3-1", "handmiddle2": "finger3-2", "handmiddle3": "finger3-3",
    "handring1": "finger4-1", "handring2": "finger4-2", "handring3": "finger4-3",
    "handpinky1": "finger5-1", "handpinky2": "finger5-2", "handpinky3": "finger5-3",
}  # fmt: skip
_ROOT_NAMES = {"hips", "hip", "pelvis", "root"}
_HEAD_NAMES = {"head"}
_SPINE_TARGETS = ("spine05", "spine04", "spine03", "spine02", "spine01")
_NECK_TARGETS = ("neck01", "neck02", "neck03")


def normalise_mocap_name(name: str) -> str:
    """'mixamorig:LeftUpLeg' -> 'leftupleg'; 'Left_Up_Leg' -> 'leftupleg'."""
    base = name.rsplit(":", 1)[-1]
    return base.replace("_", "").replace(" ", "").replace("-", "").lower()


def _sided(norm: str) -> str | None:
    for prefix, side in (("left", "L"), ("right", "R"), ("l", "L"), ("r", "R")):
        if norm.startswith(prefix) and norm[len(prefix) :] in _SIDED:
            return f"{_SIDED[norm[len(prefix) :]]}.{side}"
    return None


def mocap_to_anny(names: list[str], parents) -> dict[int, str]:
    """Clip joint index -> anny bone, for the joints we recognise (CMU-style and Mixamo names).

    The joints strictly between the root and the head are split into the spine (up to the
    last one with 'spine'/'back'/'chest' in its name) and the neck, and spread over anny's
    five spine and three neck bones by their position along the chain.
    """
    norm = [normalise_mocap_name(n) for n in names]
    out: dict[int, str] = {}
    for j, n in enumerate(norm):
        bone = "root" if n in _ROOT_NAMES and int(parents[j]) < 0 else None
        bone = bone or ("head" if n in _HEAD_NAMES else None) or _sided(n)
        if bone is not None and bone not in out.values():
            out[j] = bone
    heads = [j for j, b in out.items() if b == "head"]
    roots = [j for j, b in out.items() if b == "root"]
    if heads and roots:
        chain = []
        j = int(parents[heads[0]])
        while j >= 0 and j != roots[0]:
            chain.append(j)
            j = int(parents[j])
        chain.reverse()  # root side first
        spine = [j for j in chain if any(k in norm[j] for k in ("spine", "back", "chest", "torso"))]
        n_spine = chain.index(spine[-1]) + 1 if spine else 0
        for targets, part in ((_SPINE_TARGETS, chain[:n_spine]), (_NECK_TARGETS, chain[n_spine:])):
            for k, j in enumerate(part):
                out[j] = targets[min(len(targets) - 1, (k * len(targets)) // len(part))]
    return out
