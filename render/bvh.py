"""BVH motion capture: a reader (hierarchy + motion, any Euler channel order) and retargeting
onto the anny rig as Pose objects.

Retargeting works on world-space bone directions, so the clip's rest pose (usually a T-pose)
may differ from anny's A-pose: each mapped anny bone gets the clip bone's rotation composed
with the fixed rotation that takes the anny rest direction onto the clip's rest direction.
The clip's axes (Y-up, Z-up, facing +Z or -Z ...) are found from its rest skeleton (left hip
minus right hip = character's left, hips to head = up).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from maskel import MaskelError
from render.pose import Pose, matrix_to_rotvec, rotvec_to_matrix
from render.rigmap import mocap_to_anny

_AXES = {"X": 0, "Y": 1, "Z": 2}


@dataclass
class BvhClip:
    names: list[str]
    parents: np.ndarray  # (J,) int, -1 for the root
    offsets: np.ndarray  # (J, 3) rest offset of each joint from its parent (clip units)
    end_sites: dict[int, np.ndarray]  # joint -> End Site offset
    channels: list[
        list[str]
    ]  # per joint, e.g. ["Xposition", ..., "Zrotation", "Xrotation", "Yrotation"]
    frame_time: float
    motion: np.ndarray  # (F, total channels)

    @property
    def n_frames(self) -> int:
        return int(self.motion.shape[0])

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise MaskelError(f"BVH: no joint named {name!r}") from None

    def local_transforms(self, frame: int) -> np.ndarray:
        """(J, 4, 4) joint transforms relative to the parent at ``frame`` (clip axes and units)."""
        if not 0 <= frame < self.n_frames:
            raise MaskelError(f"BVH: frame {frame} out of range 0..{self.n_frames - 1}")
        row = self.motion[frame]
        out = np.tile(np.eye(4), (len(self.names), 1, 1))
        col = 0
        for j, chans in enumerate(self.channels):
            t = self.offsets[j].copy()
            r = np.eye(3)
            for ch in chans:
                value = float(row[col])
                col += 1
                axis = _AXES[ch[0].upper()]
                if ch[1:].lower() == "position":
                    t[axis] += value
                else:
                    rv = np.zeros(3)
                    rv[axis] = np.deg2rad(value)
                    r = r @ rotvec_to_matrix(rv)
            out[j, :3, :3] = r
            out[j, :3, 3] = t
        return out

    def global_transforms(self, frame: int | None) -> np.ndarray:
        """(J, 4, 4) world transforms at ``frame`` (None = the rest skeleton from the offsets)."""
        if frame is None:
            local = np.tile(np.eye(4), (len(self.names), 1, 1))
            local[:, :3, 3] = self.offsets
        else:
            local = self.local_transforms(frame)
        out = np.empty_like(local)
        for j, p in enumerate(self.parents):  # parents come before children in a BVH file
            out[j] = local[j] if p < 0 else out[p] @ local[j]
        return out


def _tokens(text: str):
    for line_no, line in enumerate(text.splitlines(), 1):
        for tok in line.replace("{", " { ").replace("}", " } ").split():
            yield line_no, tok


def parse_bvh(text: str) -> BvhClip:
    """Parse BVH text; MaskelError naming the line on malformed input."""
    toks = list(_tokens(text))
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(toks):
            raise MaskelError("BVH: unexpected end of file")
        line, tok = toks[pos]
        pos += 1
        if expected is not None and tok.upper() != expected:
            raise MaskelError(f"BVH line {line}: expected {expected!r}, got {tok!r}")
        return tok

    def number() -> float:
        line, tok = toks[pos] if pos < len(toks) else (0, "")
        try:
            value = float(take())
        except ValueError:
            raise MaskelError(f"BVH line {line}: expected a number, got {tok!r}") from None
        if not np.isfinite(value):
            raise MaskelError(f"BVH line {line}: non-finite number {tok!r}")
        return value

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_sites: dict[int, np.ndarray] = {}

    def joint(parent: int) -> None:
        idx = len(names)
        names.append(take())
        parents.append(parent)
        take("{")
        take("OFFSET")
        offsets.append([number(), number(), number()])
        chans: list[str] = []
        if pos < len(toks) and toks[pos][1].upper() == "CHANNELS":
            take()
            line = toks[pos][0] if pos < len(toks) else 0
            n = number()
            if n != int(n) or not 0 <= n <= 6:
                raise MaskelError(f"BVH line {line}: bad channel count {n}")
            for _ in range(int(n)):
                line, ch = toks[pos] if pos < len(toks) else (0, "")
                take()
                if (
                    len(ch) < 2
                    or ch[0].upper() not in _AXES
                    or ch[1:].lower() not in ("position", "rotation")
                ):
                    raise MaskelError(f"BVH line {line}: unknown channel {ch!r}")
                chans.append(ch)
        channels.append(chans)
        while True:
            line, tok = toks[pos] if pos < len(toks) else (0, "")
            key = tok.upper()
            if key == "}":
                take()
                return
            if key == "JOINT":
                take()
                joint(idx)
            elif key == "END":
                take()
                take("SITE")
                take("{")
                take("OFFSET")
                end_sites[idx] = np.array([number(), number(), number()])
                take("}")
            else:
                raise MaskelError(f"BVH line {line}: unexpected {tok!r} in joint {names[idx]!r}")

    take("HIERARCHY")
    take("ROOT")
    joint(-1)
    take("MOTION")
    take("FRAMES:")
    n_frames = number()
    take("FRAME")
    take("TIME:")
    frame_time = number()
    if n_frames != int(n_frames) or n_frames < 1 or frame_time <= 0:
        raise MaskelError(f"BVH: bad frame count {n_frames} or frame time {frame_time}")
    n_ch = sum(len(c) for c in channels)
    values = [number() for _ in range(int(n_frames) * n_ch)]
    if pos != len(toks):
        raise MaskelError(
            f"BVH line {toks[pos][0]}: more motion values than {int(n_frames)} frames x {n_ch} channels"
        )
    if len(set(names)) != len(names):
        raise MaskelError("BVH: duplicate joint names")
    return BvhClip(
        names=names,
        parents=np.asarray(parents, dtype=np.int64),
        offsets=np.asarray(offsets, dtype=np.float64),
        end_sites=end_sites,
        channels=channels,
        frame_time=float(frame_time),
        motion=np.asarray(values, dtype=np.float64).reshape(int(n_frames), n_ch),
    )


def load_bvh(path: str | os.PathLike) -> BvhClip:
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError as e:
        raise MaskelError(f"cannot read BVH file {path}: {e.strerror}") from None
    return parse_bvh(text)


# ---- retargeting ---------------------------------------------------------------------------
def _min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a onto direction b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.clip(a @ b, -1.0, 1.0))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return rotvec_to_matrix(perp / np.linalg.norm(perp) * np.pi)
    return rotvec_to_matrix(axis / s * np.arctan2(s, c))


def _clip_axes(clip: BvhClip, rest: np.ndarray, mapping: dict[int, str]) -> np.ndarray:
    """Rotation from the clip's axes to the world's (character's left -> +X, up -> +Z)."""
    by_bone = {bone: j for j, bone in mapping.items()}
    try:
        left = rest[by_bone["upperleg01.L"]] - rest[by_bone["upperleg01.R"]]
        top = by_bone.get("head", by_bone.get("neck01", by_bone.get("spine01")))
        up = rest[top] - rest[by_bone["root"]]
    except (KeyError, TypeError):
        raise MaskelError(
            "BVH: cannot find hips, both thighs and a head/neck joint to orient the clip"
        ) from None
    e_l = left / np.linalg.norm(left)
    e_u = up - (up @ e_l) * e_l
    e_u /= np.linalg.norm(e_u)
    return np.stack([e_l, np.cross(e_u, e_l), e_u])


def _segment_ends(
    clip: BvhClip, mapping: dict[int, str], anny_parents: dict[str, str | None]
) -> dict[int, tuple[str, int | None]]:
    """For each mapped clip joint: the anny bone/clip joint (or None for its End Site) that
    ends its segment, preferring a descendant that continues the same anny chain."""

    def anny_ancestors(bone: str) -> set[str]:
        out = set()
        while bone is not None:
            out.add(bone)
            bone = anny_parents[bone]
        return out

    children: dict[int, list[int]] = {j: [] for j in range(len(clip.names))}
    for j, p in enumerate(clip.parents):
        if p >= 0:
            children[int(p)].append(j)
    ends = {}
    for j, bone in mapping.items():
        found: list[int] = []
        queue = list(children[j])
        while queue:
            k = queue.pop(0)
            if k in mapping and bone in anny_ancestors(mapping[k]) and mapping[k] != bone:
                found.append(k)
            else:
                queue.extend(children[k])
        same_side = [k for k in found if ("." in mapping[k]) == ("." in bone)]
        pick = (same_side or found or [None])[0]
        ends[j] = (mapping[pick] if pick is not None else None, pick)
    return ends


def clip_to_poses(
    clip: BvhClip, frames=None, *, body=None, phenotype: dict | None = None, clamp: bool = False
) -> list[Pose]:
    """Retarget clip frames (all when None) to anny Poses.

    ``body`` (a BodyModel, default the shared one) gives anny's rest bone directions for
    ``phenotype``. Root translation is the hips' motion relative to frame 0, scaled by the
    ratio of leg lengths; poses are grounded. ``clamp`` clips every bone into JOINT_LIMITS.
    """
    from render.body import get_body_model
    from render.pose import clamp_pose

    body = body or get_body_model()
    rest_body = body.pose(phenotype, None)
    names = rest_body.bone_names
    anny_parents = {
        n: (names[p] if p >= 0 else None)
        for n, p in zip(names, rest_body.bone_parents, strict=True)
    }
    mapping = mocap_to_anny(clip.names, clip.parents)
    if "root" not in mapping.values():
        raise MaskelError(
            "BVH: no hips/root joint recognised (expected names like Hips or mixamorig:Hips)"
        )
    rest_clip = clip.global_transforms(None)[:, :3, 3]
    axes = _clip_axes(clip, rest_clip, mapping)
    heads = {n: rest_body.rest_heads[i] for i, n in enumerate(names)}
    tails = {n: rest_body.rest_tails[i] for i, n in enumerate(names)}

    # fixed correction per mapped joint: anny rest direction -> clip rest direction (world axes)
    correction: dict[int, np.ndarray] = {}
    for j, (end_bone, end_joint) in _segment_ends(clip, mapping, anny_parents).items():
        bone = mapping[j]
        if bone == "root":
            correction[j] = np.eye(3)
            continue
        if end_joint is not None:
            d_clip = rest_clip[end_joint] - rest_clip[j]
            d_anny = heads[end_bone] - heads[bone]
        else:
            end = clip.end_sites.get(j)
            d_clip = end if end is not None and np.linalg.norm(end) > 1e-9 else None
            d_anny = tails[bone] - heads[bone]
        if d_clip is None or np.linalg.norm(d_clip) < 1e-9 or np.linalg.norm(d_anny) < 1e-9:
            correction[j] = np.eye(3)
        else:
            correction[j] = _min_rotation(d_anny, axes @ d_clip)

    leg = [j for j, b in mapping.items() if b in ("upperleg01.L", "foot.L")]
    scale = 1.0
    if len(leg) == 2:
        clip_leg = np.linalg.norm(rest_clip[leg[0]] - rest_clip[leg[1]])
        anny_leg = np.linalg.norm(heads["upperleg01.L"] - heads["foot.L"])
        scale = anny_leg / clip_leg if clip_leg > 1e-9 else 1.0
    root_joint = next(j for j, b in mapping.items() if b == "root")

    frame_list = range(clip.n_frames) if frames is None else list(frames)
    start = clip.global_transforms(0)[root_joint, :3, 3]
    poses = []
    for f in frame_list:
        g = clip.global_transforms(int(f))
        # rest-relative world rotation Q of each anny bone: mapped ones from the clip, the
        # others inherit their parent's (no local rotation)
        q: dict[str, np.ndarray] = {}
        for j, bone in mapping.items():
            q[bone] = axes @ g[j, :3, :3] @ axes.T @ correction[j]
        full: dict[str, np.ndarray] = {}
        for n in names:
            full[n] = q[n] if n in q else (full[anny_parents[n]] if anny_parents[n] else np.eye(3))
        rotations = {}
        for n in names[1:]:
            local = full[anny_parents[n]].T @ full[n]
            rv = matrix_to_rotvec(local)
            if np.linalg.norm(rv) > 1e-9:
                rotations[n] = rv
        pose = Pose(
            rotations=rotations,
            root_rotation=matrix_to_rotvec(full["root"]),
            root_translation=axes @ (g[root_joint, :3, 3] - start) * scale,
            grounded=True,
            kind="mocap",
        )
        poses.append(clamp_pose(pose) if clamp else pose)
    return poses
