"""Body poses: per-bone rotations of the anny rig, joint limits, and a sampler of plausible poses.

A rotation is a rotation vector (axis * angle, radians) in the *rest-world-aligned* axes of the
bone (anny's ``local-ref`` parameterisation): the world axes of the project (X = character's
left, Y = backwards, Z = up) carried along by the bone's posed parent. So, for a limb hanging
down, +X swings it backwards, -X forwards; +Y swings it towards the character's right, -Y
towards its left; +Z turns it anticlockwise seen from above. Mirroring a left-side rotation
onto the right side is ``(x, -y, -z)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maskel import MaskelError
from render.rigmap import ANNY_BONES

_ROTATABLE = frozenset(ANNY_BONES) - {"root"}


def rotvec_to_matrix(rv: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vector (3,) -> rotation matrix (3, 3)."""
    rv = np.asarray(rv, dtype=np.float64)
    theta = float(np.linalg.norm(rv))
    if theta < 1e-12:
        return np.eye(3)
    k = rv / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * kx + (1.0 - np.cos(theta)) * (kx @ kx)


def matrix_to_rotvec(m: np.ndarray) -> np.ndarray:
    """Inverse of rotvec_to_matrix (angle in [0, pi])."""
    m = np.asarray(m, dtype=np.float64)
    cos = np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0)
    theta = float(np.arccos(cos))
    if theta < 1e-9:
        return np.zeros(3)
    if np.pi - theta < 1e-4:  # near 180 degrees: axis from the symmetric part
        b = (m + np.eye(3)) / 2.0
        k = np.sqrt(np.clip(np.diag(b), 0.0, None))
        i = int(np.argmax(k))
        k = b[i] / max(k[i], 1e-12)
        return k / np.linalg.norm(k) * theta
    w = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
    return w / (2.0 * np.sin(theta)) * theta


def mirror_rotvec(rv: np.ndarray) -> np.ndarray:
    """A left-side rotation as the matching right-side one (reflection through the X=0 plane)."""
    rv = np.asarray(rv, dtype=np.float64)
    return np.array([rv[0], -rv[1], -rv[2]])


def _vec3(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise MaskelError(f"pose: {what} must be 3 numbers, got {value!r}") from None
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise MaskelError(f"pose: {what} must be 3 finite numbers, got {value!r}")
    return arr


@dataclass
class Pose:
    """A body pose. Bones missing from ``rotations`` stay at rest.

    ``root_rotation`` turns the whole body about the root (pelvis) joint, in world axes;
    ``root_translation`` moves it (metres). When ``grounded`` the posed body is then shifted
    vertically so its lowest skin point is at Z=0 (feet on the floor).
    """

    rotations: dict[str, np.ndarray] = field(default_factory=dict)
    root_rotation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    root_translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    grounded: bool = True
    kind: str = "custom"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rotations) - _ROTATABLE)
        if unknown:
            raise MaskelError(
                f"pose: unknown bone name(s) {unknown[:5]} (anny rig bones; use root_rotation for the root)"
            )
        self.rotations = {k: _vec3(v, f"rotation of {k!r}") for k, v in self.rotations.items()}
        self.root_rotation = _vec3(self.root_rotation, "root_rotation")
        self.root_translation = _vec3(self.root_translation, "root_translation")
        self.grounded = bool(self.grounded)
        self.kind = str(self.kind)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "maskel-pose/1",
            "kind": self.kind,
            "rotations": {
                k: [round(float(x), 6) for x in v] for k, v in sorted(self.rotations.items())
            },
            "root_rotation": [round(float(x), 6) for x in self.root_rotation],
            "root_translation": [round(float(x), 6) for x in self.root_translation],
            "grounded": self.grounded,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Pose:
        if not isinstance(obj, dict):
            raise MaskelError(f"pose: expected a JSON object, got {type(obj).__name__}")
        if obj.get("format", "maskel-pose/1") != "maskel-pose/1":
            raise MaskelError(
                f"pose: unsupported format {obj.get('format')!r} (expected 'maskel-pose/1')"
            )
        extra = sorted(
            set(obj)
            - {"format", "kind", "rotations", "root_rotation", "root_translation", "grounded"}
        )
        if extra:
            raise MaskelError(f"pose: unknown field(s) {extra}")
        rotations = obj.get("rotations", {})
        if not isinstance(rotations, dict):
            raise MaskelError("pose: 'rotations' must be an object {bone name: [x, y, z]}")
        grounded = obj.get("grounded", True)
        if not isinstance(grounded, bool):
            raise MaskelError("pose: 'grounded' must be true or false")
        return cls(
            rotations=dict(rotations),
            root_rotation=obj.get("root_rotation", [0.0, 0.0, 0.0]),
            root_translation=obj.get("root_translation", [0.0, 0.0, 0.0]),
            grounded=grounded,
            kind=obj.get("kind", "custom"),
        )


# ---- anatomical frames and joint limits ---------------------------------------------------
# Rest directions of the character's LEFT limbs (anny default phenotype, rest pose; a test
# checks them against the model). Right-side frames are their mirror images.
_REST_DIR_L = {
    "thigh": (0.038, -0.007, -0.343),
    "shin": (0.043, 0.031, -0.452),
    "upperarm": (0.191, -0.009, -0.213),
    "forearm": (0.131, -0.175, -0.134),
    "hand": (0.048, -0.086, -0.057),
}
_KNUCKLES_L = (0.029, 0.060, -0.031)  # index-finger base -> little-finger base


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _swing_frame(u) -> np.ndarray:
    """Rows: flexion axis (+ swings the bone's tip forward, -Y), abduction axis (+ swings it
    outwards, towards +X for a left limb), twist axis (the bone direction)."""
    u = _unit(u)
    flex = _unit(np.cross(u, [0.0, -1.0, 0.0]))
    return np.stack([flex, np.cross(flex, u), u])


def _hand_frame() -> np.ndarray:
    """Rows: curl axis (+ curls fingers / flexes the wrist towards the palm), side axis, hand direction."""
    d = _unit(_REST_DIR_L["hand"])
    k = np.asarray(_KNUCKLES_L, dtype=np.float64)
    curl = _unit(k - (k @ d) * d)
    return np.stack([curl, np.cross(d, curl), d])


_WORLD = np.eye(3)  # trunk, head, clavicles, feet, toes: +X bends forward (tips down for the foot)
_FRAME_L: dict[str, np.ndarray] = {
    "upperleg01": _swing_frame(_REST_DIR_L["thigh"]),
    "upperleg02": _swing_frame(_REST_DIR_L["thigh"]),
    "lowerleg01": _swing_frame(_REST_DIR_L["shin"]),
    "lowerleg02": _swing_frame(_REST_DIR_L["shin"]),
    "upperarm01": _swing_frame(_REST_DIR_L["upperarm"]),
    "upperarm02": _swing_frame(_REST_DIR_L["upperarm"]),
    "lowerarm01": _swing_frame(_REST_DIR_L["forearm"]),
    "lowerarm02": _swing_frame(_REST_DIR_L["forearm"]),
    "wrist": _hand_frame(),
}

_R = np.deg2rad
# (lo, hi) per anatomical component (axis 0, 1, 2 of the bone's frame), radians. Sided bones
# are given for the left side (the right side mirrors them).
_LIMITS_BASE: dict[str, tuple[tuple[float, float], ...]] = {
    # trunk and head (world frame: flexion forward, lateral bend, twist)
    "spine05": ((_R(-10), _R(25)), (_R(-10), _R(10)), (_R(-12), _R(12))),
    "spine04": ((_R(-10), _R(25)), (_R(-10), _R(10)), (_R(-12), _R(12))),
    "spine03": ((_R(-10), _R(25)), (_R(-10), _R(10)), (_R(-12), _R(12))),
    "spine02": ((_R(-8), _R(20)), (_R(-10), _R(10)), (_R(-12), _R(12))),
    "spine01": ((_R(-8), _R(20)), (_R(-10), _R(10)), (_R(-12), _R(12))),
    "neck01": ((_R(-20), _R(25)), (_R(-15), _R(15)), (_R(-25), _R(25))),
    "neck02": ((_R(-20), _R(25)), (_R(-15), _R(15)), (_R(-25), _R(25))),
    "neck03": ((_R(-20), _R(25)), (_R(-15), _R(15)), (_R(-25), _R(25))),
    "head": ((_R(-20), _R(20)), (_R(-15), _R(15)), (_R(-20), _R(20))),
    # arms
    "clavicle": ((_R(-15), _R(15)), (_R(-25), _R(10)), (_R(-15), _R(15))),
    "shoulder01": ((_R(-10), _R(10)), (_R(-10), _R(10)), (_R(-10), _R(10))),
    "upperarm01": ((_R(-45), _R(150)), (_R(-45), _R(115)), (_R(-70), _R(70))),
    "upperarm02": ((_R(-5), _R(5)), (_R(-5), _R(5)), (_R(-30), _R(30))),
    "lowerarm01": ((_R(-5), _R(145)), (_R(-5), _R(5)), (_R(-40), _R(40))),
    "lowerarm02": ((_R(-5), _R(5)), (_R(-5), _R(5)), (_R(-45), _R(45))),
    "wrist": ((_R(-45), _R(60)), (_R(-20), _R(20)), (_R(-15), _R(15))),
    # legs
    "pelvis": ((_R(-5), _R(5)), (_R(-5), _R(5)), (_R(-5), _R(5))),
    "upperleg01": ((_R(-20), _R(125)), (_R(-25), _R(45)), (_R(-35), _R(35))),
    "upperleg02": ((_R(-5), _R(5)), (_R(-5), _R(5)), (_R(-15), _R(15))),
    "lowerleg01": ((_R(-145), _R(2)), (_R(-4), _R(4)), (_R(-20), _R(20))),
    "lowerleg02": ((_R(-5), _R(5)), (_R(-5), _R(5)), (_R(-15), _R(15))),
    "foot": ((_R(-25), _R(45)), (_R(-20), _R(20)), (_R(-20), _R(20))),
}
_FINGER_LIMIT = ((_R(-10), _R(95)), (_R(-10), _R(10)), (_R(-10), _R(10)))
_THUMB_LIMIT = ((_R(-20), _R(40)), (_R(-20), _R(20)), (_R(-20), _R(20)))
_METACARPAL_LIMIT = ((_R(-5), _R(15)), (_R(-5), _R(5)), (_R(-5), _R(5)))
_TOE_LIMIT = ((_R(-40), _R(30)), (_R(-5), _R(5)), (_R(-5), _R(5)))
_EYE_LIMIT = ((_R(-25), _R(25)), (_R(-5), _R(5)), (_R(-30), _R(30)))


def _mirror_frame(frame: np.ndarray) -> np.ndarray:
    return np.stack([mirror_rotvec(r) for r in frame])


def _limit_for(base: str) -> tuple[tuple[float, float], ...]:
    if base.startswith("finger1"):
        return _THUMB_LIMIT
    if base.startswith("finger"):
        return _FINGER_LIMIT
    if base.startswith("metacarpal"):
        return _METACARPAL_LIMIT
    if base.startswith("toe"):
        return _TOE_LIMIT
    if base == "eye":
        return _EYE_LIMIT
    return _LIMITS_BASE[base]


def _frame_for(base: str) -> np.ndarray:
    if base.startswith(("finger", "metacarpal")):
        return _FRAME_L["wrist"]
    return _FRAME_L.get(base, _WORLD)


def _build_limits() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    frames, limits = {}, {}
    for bone in ANNY_BONES:
        if bone == "root":
            continue
        base, _, side = bone.partition(".")
        frame = _frame_for(base)
        frames[bone] = _mirror_frame(frame) if side == "R" else frame
        limits[bone] = np.asarray(_limit_for(base), dtype=np.float64)
    return frames, limits


JOINT_FRAMES, JOINT_LIMITS = _build_limits()
"""JOINT_FRAMES[bone]: (3, 3) rows = the bone's anatomical axes in world rest axes;
JOINT_LIMITS[bone]: (3, 2) [lo, hi] of ``JOINT_FRAMES[bone] @ rotvec`` (radians). Sided
bones are symmetric: a left/right pair gets the same anatomical components."""


def anatomical(bone: str, rv: np.ndarray) -> np.ndarray:
    """A bone's rotation vector -> its anatomical components (flexion, abduction/side, twist)."""
    return JOINT_FRAMES[bone] @ np.asarray(rv, dtype=np.float64)


def from_anatomical(bone: str, comps) -> np.ndarray:
    """Anatomical components -> the bone's rotation vector (inverse of anatomical)."""
    return JOINT_FRAMES[bone].T @ np.asarray(comps, dtype=np.float64)


def limit_violations(pose: Pose, tol: float = 1e-6) -> list[str]:
    """Bones whose rotation leaves its joint limits (empty = plausible)."""
    bad = []
    for bone, rv in pose.rotations.items():
        c = anatomical(bone, rv)
        lim = JOINT_LIMITS[bone]
        if np.any(c < lim[:, 0] - tol) or np.any(c > lim[:, 1] + tol):
            bad.append(bone)
    return bad


def clamp_pose(pose: Pose) -> Pose:
    """The same pose with every bone's anatomical components clipped into its limits."""
    rotations = {}
    for bone, rv in pose.rotations.items():
        lim = JOINT_LIMITS[bone]
        rotations[bone] = from_anatomical(bone, np.clip(anatomical(bone, rv), lim[:, 0], lim[:, 1]))
    return Pose(
        rotations=rotations,
        root_rotation=pose.root_rotation.copy(),
        root_translation=pose.root_translation.copy(),
        grounded=pose.grounded,
        kind=pose.kind,
    )


# ---- pose sampler --------------------------------------------------------------------------
POSE_KINDS: tuple[str, ...] = (
    "standing", "walking", "reaching", "crouching", "sitting", "arms_crossed",
    "leg_raised", "turned_torso", "arms_raised", "bending",
)  # fmt: skip

_SPINE = ("spine05", "spine04", "spine03", "spine02", "spine01")
_NECK = ("neck01", "neck02", "neck03", "head")


class _PoseBuilder:
    """Accumulates anatomical components per bone, then clamps them into the limits."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.comps: dict[str, np.ndarray] = {}

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def add(self, bone: str, flex: float = 0.0, abd: float = 0.0, twist: float = 0.0) -> None:
        self.comps[bone] = self.comps.get(bone, np.zeros(3)) + np.array([flex, abd, twist])

    def limb(
        self, base: str, side: str, flex: float = 0.0, abd: float = 0.0, twist: float = 0.0
    ) -> None:
        self.add(f"{base}.{side}", flex, abd, twist)

    def spread(
        self, bones: tuple[str, ...], flex: float = 0.0, bend: float = 0.0, twist: float = 0.0
    ) -> None:
        """Share a total trunk/neck motion between several vertebral bones."""
        n = len(bones)
        for b in bones:
            self.add(b, flex / n, bend / n, twist / n)

    def relaxed_arm(self, side: str) -> None:
        self.limb("upperarm01", side, self.u(-0.15, 0.25), self.u(-0.65, -0.3), self.u(-0.3, 0.3))
        self.limb("lowerarm01", side, self.u(0.05, 0.45), 0.0, self.u(-0.3, 0.3))

    def jitter(self) -> None:
        """Mild variation: spine and neck posture, finger curl, wrists, feet."""
        self.spread(_SPINE, self.u(-0.1, 0.15), self.u(-0.08, 0.08), self.u(-0.1, 0.1))
        self.spread(_NECK, self.u(-0.15, 0.25), self.u(-0.1, 0.1), self.u(-0.25, 0.25))
        for side in ("L", "R"):
            curl = self.u(0.0, 0.9)
            for f in range(2, 6):
                for k, share in ((1, 0.8), (2, 1.0), (3, 0.7)):
                    self.limb(f"finger{f}-{k}", side, curl * share * self.u(0.7, 1.2))
            for k in (1, 2, 3):
                self.limb(f"finger1-{k}", side, curl * 0.3 * self.u(0.5, 1.0))
            self.limb("wrist", side, self.u(-0.2, 0.3), self.u(-0.1, 0.1))

    def pose(self, kind: str) -> Pose:
        rotations = {}
        for bone, c in self.comps.items():
            lim = JOINT_LIMITS[bone]
            rotations[bone] = from_anatomical(bone, np.clip(c, lim[:, 0], lim[:, 1]))
        return Pose(rotations=rotations, kind=kind)


def _standing(b: _PoseBuilder) -> None:
    for s in "LR":
        b.relaxed_arm(s)
        b.limb("upperleg01", s, b.u(-0.08, 0.12), b.u(-0.05, 0.12), b.u(-0.2, 0.2))
        b.limb("lowerleg01", s, -b.u(0.0, 0.12))


def _walking(b: _PoseBuilder) -> None:
    swing = b.u(0.25, 0.55)
    lead = "L" if b.rng.random() < 0.5 else "R"
    back = "R" if lead == "L" else "L"
    b.limb("upperleg01", lead, swing)
    b.limb("lowerleg01", lead, -b.u(0.0, 0.3))
    b.limb("foot", lead, -b.u(0.0, 0.2))
    b.limb("upperleg01", back, -swing * b.u(0.4, 0.8))
    b.limb("lowerleg01", back, -b.u(0.2, 0.8))
    b.limb("foot", back, b.u(0.0, 0.4))
    # arms swing opposite to the legs
    b.limb("upperarm01", back, swing * b.u(0.6, 1.2), b.u(-0.6, -0.4))
    b.limb("upperarm01", lead, -swing * b.u(0.4, 0.9), b.u(-0.6, -0.4))
    for s in "LR":
        b.limb("lowerarm01", s, b.u(0.2, 0.7))
    b.spread(_SPINE, b.u(0.0, 0.12), 0.0, (1 if lead == "L" else -1) * b.u(0.0, 0.15))


def _reaching(b: _PoseBuilder) -> None:
    side = "L" if b.rng.random() < 0.5 else "R"
    other = "R" if side == "L" else "L"
    b.limb("upperarm01", side, b.u(1.2, 2.5), b.u(-0.4, 0.6), b.u(-0.4, 0.4))
    b.limb("lowerarm01", side, b.u(0.0, 0.5))
    b.limb("clavicle", side, 0.0, -b.u(0.0, 0.3))
    b.relaxed_arm(other)
    sign = 1 if side == "L" else -1
    b.spread(_SPINE, b.u(-0.1, 0.35), sign * b.u(-0.15, 0.05), sign * b.u(-0.3, 0.1))
    for s in "LR":
        b.limb("upperleg01", s, b.u(-0.05, 0.15), b.u(0.0, 0.12))


def _crouching(b: _PoseBuilder) -> None:
    hip = b.u(1.5, 2.0)
    knee = b.u(1.9, 2.4)
    for s in "LR":
        b.limb("upperleg01", s, hip * b.u(0.9, 1.05), b.u(0.1, 0.45), b.u(-0.3, 0.1))
        b.limb("lowerleg01", s, -knee * b.u(0.95, 1.05))
        b.limb("foot", s, -b.u(0.2, 0.4))
        b.limb("upperarm01", s, b.u(0.3, 1.1), b.u(-0.5, -0.2))
        b.limb("lowerarm01", s, b.u(0.4, 1.3))
    b.spread(_SPINE, b.u(0.3, 0.8))
    b.spread(_NECK, -b.u(0.1, 0.4))


def _sitting(b: _PoseBuilder) -> None:
    hip = b.u(1.35, 1.7)
    for s in "LR":
        b.limb("upperleg01", s, hip, b.u(0.0, 0.25), b.u(-0.2, 0.2))
        b.limb("lowerleg01", s, -b.u(1.2, 1.8))
        b.limb("upperarm01", s, b.u(0.2, 0.8), b.u(-0.55, -0.25))
        b.limb("lowerarm01", s, b.u(0.6, 1.3))
    b.spread(_SPINE, b.u(-0.1, 0.35))


def _arms_crossed(b: _PoseBuilder) -> None:
    for s in "LR":
        b.limb("upperarm01", s, b.u(0.35, 0.6), b.u(-0.75, -0.55), b.u(0.5, 0.9))
        b.limb("lowerarm01", s, b.u(1.75, 2.2), 0.0, b.u(-0.2, 0.2))
        b.limb("upperleg01", s, b.u(-0.05, 0.1), b.u(0.0, 0.12))


def _leg_raised(b: _PoseBuilder) -> None:
    side = "L" if b.rng.random() < 0.5 else "R"
    if b.rng.random() < 0.6:  # forward: knee up
        b.limb("upperleg01", side, b.u(0.6, 1.7), b.u(0.0, 0.2))
        b.limb("lowerleg01", side, -b.u(0.2, 1.8))
    else:  # sideways
        b.limb("upperleg01", side, b.u(0.0, 0.3), b.u(0.35, 0.75))
        b.limb("lowerleg01", side, -b.u(0.0, 0.3))
    b.limb("foot", side, b.u(0.0, 0.6))
    for s in "LR":
        b.limb("upperarm01", s, b.u(-0.2, 0.5), b.u(-0.3, 0.9))
        b.limb("lowerarm01", s, b.u(0.1, 0.6))


def _turned_torso(b: _PoseBuilder) -> None:
    sign = 1 if b.rng.random() < 0.5 else -1
    b.spread(_SPINE, b.u(-0.05, 0.2), sign * b.u(-0.1, 0.2), sign * b.u(0.35, 0.6))
    b.spread(_NECK, 0.0, 0.0, sign * b.u(0.0, 0.6))
    for s in "LR":
        b.relaxed_arm(s)
        b.limb("upperleg01", s, b.u(-0.05, 0.15), b.u(0.0, 0.12))


def _arms_raised(b: _PoseBuilder) -> None:
    overhead = b.rng.random() < 0.5
    for s in "LR":
        if overhead:
            b.limb("upperarm01", s, b.u(0.0, 0.6), b.u(1.5, 2.0), b.u(-0.3, 0.3))
        else:  # T-pose-like
            b.limb("upperarm01", s, b.u(-0.2, 0.3), b.u(0.6, 0.9), b.u(-0.3, 0.3))
        b.limb("lowerarm01", s, b.u(0.0, 0.6))
        b.limb("upperleg01", s, b.u(-0.05, 0.1), b.u(0.0, 0.15))


def _bending(b: _PoseBuilder) -> None:
    trunk = b.u(0.5, 1.0)
    hip = b.u(0.3, 1.0)
    b.spread(_SPINE, trunk)
    b.spread(_NECK, -b.u(0.0, 0.4))
    for s in "LR":
        b.limb("upperleg01", s, hip, b.u(0.0, 0.15))
        b.limb("lowerleg01", s, -b.u(0.0, 0.4))
        # arms hang roughly vertically: swing them forward by the trunk's lean
        b.limb("upperarm01", s, (trunk + hip) * b.u(0.6, 1.0), b.u(-0.5, -0.2))
        b.limb("lowerarm01", s, b.u(0.0, 0.5))


_KIND_FUNCS = {
    "standing": _standing, "walking": _walking, "reaching": _reaching, "crouching": _crouching,
    "sitting": _sitting, "arms_crossed": _arms_crossed, "leg_raised": _leg_raised,
    "turned_torso": _turned_torso, "arms_raised": _arms_raised, "bending": _bending,
}  # fmt: skip
assert set(_KIND_FUNCS) == set(POSE_KINDS)


def sample_pose(rng: np.random.Generator, kind: str | None = None) -> Pose:
    """A plausible random pose of ``kind`` (a random kind when None), within JOINT_LIMITS,
    with mild random spine, neck, wrist and finger-curl variation. Grounded (feet on Z=0)."""
    if kind is None:
        kind = POSE_KINDS[int(rng.integers(len(POSE_KINDS)))]
    if kind not in _KIND_FUNCS:
        raise MaskelError(f"unknown pose kind {kind!r}; expected one of {list(POSE_KINDS)}")
    b = _PoseBuilder(rng)
    _KIND_FUNCS[kind](b)
    b.jitter()
    return b.pose(kind)
