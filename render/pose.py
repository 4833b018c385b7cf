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
