"""Stable bone label ids (1..255, 0 = background) and their coarse groups.

The ids are part of the dataset format (labels.png + labels.json): append new names at the end,
never reorder. "left"/"right" are the character's own sides. Hand digits are numbered 1 (thumb)
to 5 (little finger), foot digits 1 (big toe) to 5. Soft tissue (the subcutaneous fat layer and
the muscle surface under it, render/fat.py) has no label id: labels.png marks bones, cartilage
and the air-filled organs (ORGANS) only.
"""

from __future__ import annotations

SIDES = ("left", "right")
CARPALS = ("scaphoid", "lunate", "triquetrum", "pisiform", "trapezium", "trapezoid", "capitate", "hamate")
TARSALS = (
    "talus", "calcaneus", "navicular", "cuboid",
    "cuneiform_medial", "cuneiform_intermediate", "cuneiform_lateral",
)  # fmt: skip
VERTEBRAE = (
    tuple(f"C{i}" for i in range(1, 8)) + tuple(f"T{i}" for i in range(1, 13)) + tuple(f"L{i}" for i in range(1, 6))
)
CARTILAGE_RIBS = tuple(range(1, 11))  # ribs whose costal cartilage is modelled
ORGANS = ("lung_left", "lung_right", "trachea")  # labelled, but not bones


def digit_phalanges(digit: int, thumb_like: bool) -> tuple[str, ...]:
    """Phalanx kinds of a digit: the thumb and big toe have no middle phalanx."""
    return ("proximal", "distal") if (digit == 1 and thumb_like) else ("proximal", "middle", "distal")


def _names() -> list[str]:
    names = ["cranium", "facial_skeleton", "mandible", "hyoid"]
    names += [f"vertebra_{v}" for v in VERTEBRAE] + ["sacrum", "coccyx"]
    names += ["manubrium", "sternum_body"]
    for side in SIDES:
        names += [f"rib_{side}_{i}" for i in range(1, 13)]
    for side in SIDES:
        names += [f"costal_cartilage_{side}_{i}" for i in CARTILAGE_RIBS]
    for side in SIDES:
        names += [f"clavicle_{side}", f"scapula_{side}", f"humerus_{side}", f"radius_{side}", f"ulna_{side}"]
        names += [f"{c}_{side}" for c in CARPALS]
        names += [f"metacarpal_{side}_{d}" for d in range(1, 6)]
        for d in range(1, 6):
            names += [f"phalanx_{k}_{side}_hand_{d}" for k in digit_phalanges(d, True)]
    for side in SIDES:
        names += [f"hip_bone_{side}", f"femur_{side}", f"patella_{side}", f"tibia_{side}", f"fibula_{side}"]
        names += [f"{t}_{side}" for t in TARSALS]
        names += [f"metatarsal_{side}_{d}" for d in range(1, 6)]
        for d in range(1, 6):
            names += [f"phalanx_{k}_{side}_foot_{d}" for k in digit_phalanges(d, True)]
    names += ["lung_left", "lung_right"]
    names += ["costal_cartilage"]  # myo-sim's costal cartilage is one piece across both sides
    names += ["trachea"]
    return names


BONE_LABELS: dict[int, str] = {i + 1: n for i, n in enumerate(_names())}
LABEL_IDS: dict[str, int] = {n: i for i, n in BONE_LABELS.items()}
assert len(BONE_LABELS) <= 255


def _group(name: str) -> str:
    if name in ("cranium", "facial_skeleton", "mandible", "hyoid"):
        return "skull"
    if name.startswith(("vertebra_", "sacrum", "coccyx")):
        return "spine"
    if name.startswith(("rib_", "costal_cartilage", "manubrium", "sternum")):
        return "thorax"
    if name in ORGANS:
        return "organs"
    side = "left" if "_left" in name else "right"
    if name.startswith(("clavicle", "scapula")):
        return f"shoulder_{side}"
    if name.startswith(("humerus", "radius", "ulna")):
        return f"upper_limb_{side}"
    if name.startswith(("hip_bone",)):
        return "pelvis"
    if name.startswith(("femur", "patella", "tibia", "fibula")):
        return f"lower_limb_{side}"
    if name.startswith(CARPALS + ("metacarpal",)) or "_hand_" in name:
        return f"hand_{side}"
    return f"foot_{side}"


def label_groups() -> dict[int, str]:
    """Each label id -> a coarse group: skull, spine, thorax, organs, pelvis, shoulder_<side>,
    upper_limb_<side>, hand_<side>, lower_limb_<side>, foot_<side>."""
    return {i: _group(n) for i, n in BONE_LABELS.items()}


def is_bone(label: int) -> bool:
    """False for the organs (lungs, trachea) that carry a label but are not bones."""
    return BONE_LABELS[label] not in ORGANS
