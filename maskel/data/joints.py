"""The canonical joint set shared by render/, the model, the server and the Blender add-on.

"left"/"right" are the character's own left and right. A 2D pose is JSON:
``{"width": W, "height": H, "joints": [{"name": str, "x": px, "y": px, "depth": float,
"visible": bool}, ...]}`` with pixel coordinates in the image frame (x right, y down, origin at
the top-left corner of the top-left pixel), depth = distance along the camera's view axis in
metres (larger = farther). Joints may be missing; unknown names are an input error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maskel import MaskelError

CANONICAL_JOINTS: tuple[str, ...] = (
    "pelvis", "spine", "chest", "neck", "head", "head_top",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
)  # fmt: skip

JOINT_INDEX = {name: i for i, name in enumerate(CANONICAL_JOINTS)}

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


def joints_to_array(pose: dict[str, Any]) -> np.ndarray:
    """Pose JSON -> float32 array (J, 4): x, y, depth, visible (0/1); missing joints are all-zero rows.

    Raises MaskelError on unknown names or non-finite coordinates.
    """
    out = np.zeros((len(CANONICAL_JOINTS), 4), dtype=np.float32)
    try:
        items = pose["joints"]
        for j in items:
            name = j["name"]
            if name not in JOINT_INDEX:
                raise MaskelError(f"unknown joint name {name!r} (expected one of the canonical set)")
            row = [float(j["x"]), float(j["y"]), float(j.get("depth", 0.0)), 1.0 if j.get("visible", True) else 0.0]
            if not np.all(np.isfinite(row)):
                raise MaskelError(f"joint {name!r} has a non-finite coordinate")
            out[JOINT_INDEX[name]] = row
    except (KeyError, TypeError, ValueError) as e:
        raise MaskelError(f"malformed joints: {e!r}") from None
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
