"""The phantom's bones fitted to another character's rig: one closed mesh per bone, in world space.

The phantom (render.phantom) is built once for the default body in its rest pose. Its bones are
grouped into the body segments between MaSkel's canonical joints (upper arm = shoulder -> elbow,
...). Given the same joints of a character (world coordinates, metres, Z up), each segment's bones
are moved by the map that takes the phantom's segment onto the character's: the segment axis onto
the segment axis (stretched to its length), a reference direction of the body (left-right, or
back-front) onto the same direction of the character, and the bone's thickness scaled with the
body's size. The add-on parents each mesh to the rig bone of its segment, so the bones then follow
the character's animation. Only render's public API is used (build_phantom, the label names), so
a better phantom improves these meshes with no change here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from maskel import MaskelError
from render.labels import is_bone

SIDES = ("left", "right")

# segment -> (start joint, end joint, reference direction used to fix the twist about its axis)
SEGMENTS: dict[str, tuple[str, str, str]] = {
    "pelvis": ("pelvis", "spine", "lateral"),
    "spine": ("spine", "chest", "lateral"),
    "chest": ("chest", "neck", "lateral"),
    "neck": ("neck", "head", "lateral"),
    "head": ("head", "head_top", "lateral"),
}
for _s in SIDES:
    SEGMENTS.update({
        f"{_s}_upper_arm": (f"{_s}_shoulder", f"{_s}_elbow", "back"),
        f"{_s}_forearm": (f"{_s}_elbow", f"{_s}_wrist", "back"),
        f"{_s}_hand": (f"{_s}_wrist", f"{_s}_hand", "back"),
        f"{_s}_thigh": (f"{_s}_hip", f"{_s}_knee", "lateral"),
        f"{_s}_shin": (f"{_s}_knee", f"{_s}_ankle", "lateral"),
        f"{_s}_foot": (f"{_s}_ankle", f"{_s}_foot", "lateral"),
    })  # fmt: skip

REQUIRED_JOINTS = ("pelvis", "neck", "left_hip", "right_hip", "left_shoulder", "right_shoulder")
"""Without these the body's own directions (up, left-right) are unknown."""

_TORSO = ("pelvis", "spine", "chest")
_FIXED = [
    (r"cranium|facial_skeleton|mandible|hyoid", "head"),
    (r"vertebra_C\d+", "neck"),
    (r"manubrium|sternum_body|clavicle_(\w+)|scapula_(\w+)", "chest"),
    (r"sacrum|coccyx|hip_bone_\w+", "pelvis"),
    (r"humerus_(\w+)", "{}_upper_arm"),
    (r"(?:radius|ulna)_(\w+)", "{}_forearm"),
    (r"(?:scaphoid|lunate|triquetrum|pisiform|trapezium|trapezoid|capitate|hamate)_(\w+)", "{}_hand"),
    (r"metacarpal_(\w+)_\d|phalanx_\w+?_(\w+)_hand_\d", "{}_hand"),
    (r"(?:femur|patella)_(\w+)", "{}_thigh"),
    (r"(?:tibia|fibula)_(\w+)", "{}_shin"),
    (r"(?:talus|calcaneus|navicular|cuboid|cuneiform_\w+?)_(left|right)", "{}_foot"),
    (r"metatarsal_(\w+)_\d|phalanx_\w+?_(\w+)_foot_\d", "{}_foot"),
]


@dataclass
class BoneMesh:
    name: str  # the phantom's bone name (render.labels), e.g. "humerus_left"
    label: int
    segment: str  # a key of SEGMENTS
    vertices: np.ndarray  # (N, 3) float64, world
    faces: np.ndarray  # (M, 3) int64


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n < 1e-9:
        raise MaskelError("two joints of the rig coincide; cannot place the bones")
    return v / n


def segment_of(name: str, centre: np.ndarray, joints: dict[str, np.ndarray],
               thoracic: dict[int, np.ndarray]) -> str | None:  # fmt: skip
    """The segment a phantom bone belongs to (None for soft organs such as the lungs). Vertebrae go
    to the torso segment nearest them; a rib follows its thoracic vertebra (centres in ``thoracic``)."""
    for pattern, seg in _FIXED:
        m = re.fullmatch(pattern, name)
        if m:
            side = next((g for g in m.groups() if g), None)
            return seg.format(side) if "{}" in seg else seg
    m = re.fullmatch(r"(?:rib|costal_cartilage)_\w+?_(\d+)", name)
    if m and int(m.group(1)) in thoracic:
        return _torso_segment(joints, thoracic[int(m.group(1))])
    if name.startswith("vertebra_") or m:
        return _torso_segment(joints, centre)
    return None


def _torso_segment(joints: dict[str, np.ndarray], centre: np.ndarray) -> str:
    best, best_d = "chest", np.inf
    for seg in _TORSO:
        a, b = joints[SEGMENTS[seg][0]], joints[SEGMENTS[seg][1]]
        t = np.clip(np.dot(centre - a, b - a) / max(np.dot(b - a, b - a), 1e-12), 0.0, 1.0)
        d = float(np.linalg.norm(a + t * (b - a) - centre))
        if d < best_d:
            best, best_d = seg, d
    return best


def _directions(j: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    up = _unit(j["neck"] - j["pelvis"])
    lateral = _unit(j["left_shoulder"] - j["right_shoulder"] + j["left_hip"] - j["right_hip"])
    return {"lateral": lateral, "back": _unit(np.cross(up, lateral)), "up": up}


def _frame(axis: np.ndarray, ref: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Columns x, y (= axis), z: the reference direction made perpendicular to the axis."""
    if abs(float(np.dot(ref, axis))) > 0.9:
        ref = fallback
    x = _unit(ref - np.dot(ref, axis) * axis)
    return np.stack([x, axis, np.cross(x, axis)], axis=1)


def _size(j: dict[str, np.ndarray]) -> float:
    return float(np.linalg.norm(j["neck"] - j["pelvis"]) + np.linalg.norm(j["left_hip"] - j["right_hip"])
                 + np.linalg.norm(j["left_shoulder"] - j["right_shoulder"]))  # fmt: skip


def check_joints(joints: dict[str, object]) -> dict[str, np.ndarray]:
    """Validate ``{joint: [x, y, z]}``; raise MaskelError with one line when unusable."""
    out = {}
    for name, p in joints.items():
        arr = np.asarray(p, dtype=np.float64)
        if arr.shape != (3,) or not np.isfinite(arr).all():
            raise MaskelError(f"joint {name!r} must be [x, y, z] in metres")
        out[name] = arr
    missing = [n for n in REQUIRED_JOINTS if n not in out]
    if missing:
        raise MaskelError(f"the rig lacks the joints {', '.join(missing)} (needed to place the skeleton)")
    return out


class PhantomSkeleton:
    """The default phantom's bones at rest, grouped by segment; ``fit`` places them on a rig."""

    def __init__(self, phantom) -> None:
        self.joints = {k: np.asarray(v, dtype=np.float64) for k, v in phantom.joints3d.items()}
        by_name: dict[str, list] = {}
        for part in phantom.parts:
            if part.displaces == "soft_tissue" and is_bone(part.label):
                by_name.setdefault(part.name, []).append(part)  # the outer surfaces of a bone
        thoracic = {int(n[len("vertebra_T"):]): np.concatenate([p.mesh.vertices for p in parts]).mean(axis=0)
                    for n, parts in by_name.items() if re.fullmatch(r"vertebra_T\d+", n)}  # fmt: skip
        self.bones: list[BoneMesh] = []
        for name, parts in by_name.items():
            verts, faces, base = [], [], 0
            for p in parts:
                verts.append(np.asarray(p.mesh.vertices, dtype=np.float64))
                faces.append(np.asarray(p.mesh.faces, dtype=np.int64) + base)
                base += len(p.mesh.vertices)
            v = np.concatenate(verts)
            seg = segment_of(name, v.mean(axis=0), self.joints, thoracic)
            if seg is not None:
                self.bones.append(BoneMesh(name, parts[0].label, seg, v, np.concatenate(faces)))

    def fit(self, joints: dict[str, object]) -> tuple[list[BoneMesh], list[str]]:
        """The bones placed on a rig's joints, and the segments left out (a joint missing)."""
        dst = check_joints(joints)
        src = self.joints
        radial = _size(dst) / _size(src)
        d_src, d_dst = _directions(src), _directions(dst)
        maps, skipped = {}, []
        for seg, (a, b, ref) in SEGMENTS.items():
            if a not in dst or b not in dst:
                skipped.append(seg)
                continue
            ax_s, ax_d = _unit(src[b] - src[a]), _unit(dst[b] - dst[a])
            fallback = "up" if ref == "back" else "back"
            f_s = _frame(ax_s, d_src[ref], d_src[fallback])
            f_d = _frame(ax_d, d_dst[ref], d_dst[fallback])
            axial = np.linalg.norm(dst[b] - dst[a]) / np.linalg.norm(src[b] - src[a])
            linear = f_d @ np.diag([radial, axial, radial]) @ f_s.T
            maps[seg] = (linear, src[a], dst[a])
        out = []
        for bone in self.bones:
            if bone.segment not in maps:
                continue
            linear, o_s, o_d = maps[bone.segment]
            out.append(BoneMesh(bone.name, bone.label, bone.segment, (bone.vertices - o_s) @ linear.T + o_d, bone.faces))
        return out, skipped


_DEFAULT: PhantomSkeleton | None = None


def default_skeleton() -> PhantomSkeleton:
    """The default body's phantom skeleton (built on first use: the body model takes ~60 s the first time)."""
    global _DEFAULT
    if _DEFAULT is None:
        from render.body import get_body_model
        from render.phantom import build_phantom

        _DEFAULT = PhantomSkeleton(build_phantom(get_body_model().pose(None, None)))
    return _DEFAULT


def skeleton_for_joints(joints: dict[str, object]) -> tuple[list[BoneMesh], list[str]]:
    """The default phantom's bones fitted to ``joints`` (canonical joint -> world [x, y, z])."""
    return default_skeleton().fit(joints)
