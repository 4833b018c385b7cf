"""Digitally reconstructed radiographs of a surface phantom by ray casting with Embree.

One cast against a combined mesh (skin + every part, with a per-face part index) collects all
hits along each ray (re-casting from just past the last hit). Each hit is signed by the
outward normal: entering (n . d < 0) adds one to the ray's winding number for that part,
leaving subtracts one; the part's chord is the length where the winding number is positive
(right for self-intersecting posed skin too). A ray whose winding goes negative or does not
return to zero (a hit missed or duplicated at a grazing angle or through a crack between
triangles, an open mesh) or whose chord exceeds the part's own diagonal is marked bad and its
chord is replaced by the mean of its good 3 x 3 neighbours for that part. Every physical quantity is then clamped to its range, so no resolution can produce absurd pixels.

Attenuation along a ray (the phantom convention):
  sum mu L = skin_chord * mu[soft_tissue] + sum_parts chord * (mu[material] - mu[displaces]).
Outputs (all S x S, zero outside the body):
  radiograph = 1 - exp(-RADIOGRAPH_GAIN * sum mu L)           (render.attenuation)
  dxa        = min(areal bone mineral / DXA_FULL_SCALE, 1)     (soft tissue removed)
  labels     = per pixel the bone label with the LONGEST total chord (all parts of that label
               summed): the bone that dominates the pixel's attenuation, not merely the nearest
  thickness  = skin chord in cm (soft-tissue thickness; > 0 exactly where the body is).
  material_cm (on request) = per material of render.attenuation.MATERIALS the path length (cm)
               through it, for the energy-dependent imaging of render/physics.py.
The skin encloses soft tissue, or adipose tissue when the phantom has a fat layer (its muscle
surface is then a part of soft tissue displacing adipose).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import trimesh
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh
from numpy.typing import ArrayLike

from render.attenuation import DXA_FULL_SCALE_G_PER_CM2, MATERIALS, RADIOGRAPH_GAIN, mineral, mu
from render.camera import Camera

if TYPE_CHECKING:
    from render.phantom import Part

STEP_M = 5e-6  # re-cast this far past each hit: skips a duplicate hit on a shared edge
MAX_HITS = 512  # per ray; far above any real body (ribs + spine + arms ~ 100)
GRAZING_COS = 0.2  # a shell crossed at a flatter angle counts as crossed at this one (5 x shell)


@dataclass
class DRR:
    radiograph: np.ndarray  # float32 (S, S) in [0, 1]
    dxa: np.ndarray  # float32 (S, S) in [0, 1]
    labels: np.ndarray  # uint8 (S, S), 0 = none
    thickness_cm: np.ndarray  # float32 (S, S) skin chord
    line_integral: np.ndarray  # float32 (S, S) sum mu L (dimensionless)
    bad_fraction: float  # fraction of (ray, part) chords that had to be repaired
    material_cm: np.ndarray | None = None  # float32 (M, S, S) path length per material, on request


@dataclass
class _Combined:
    vertices: np.ndarray  # (V, 3) float32, centred on `centre`
    faces: np.ndarray  # (F, 3) int32 into vertices
    centre: np.ndarray
    face_part: np.ndarray  # (F,) int: 0 = skin, k = parts[k - 1]
    normals: np.ndarray  # (F, 3) float64, outward (orientation fixed per part)
    max_chord_m: np.ndarray  # (P + 1,) each part's bounding-box diagonal


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (N, 3) arrays (np.cross's arithmetic without its axis handling,
    which costs more than the products on a 100k-face mesh)."""
    out = np.empty_like(a)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def _combine(meshes: Sequence[trimesh.Trimesh]) -> _Combined:
    verts = [np.asarray(m.vertices, dtype=np.float64) for m in meshes]
    counts = np.array([len(v) for v in verts])
    offsets = np.cumsum(np.r_[0, counts])
    faces = np.concatenate([np.asarray(m.faces, dtype=np.int64) + o for m, o in zip(meshes, offsets[:-1], strict=True)])
    part = np.repeat(np.arange(len(meshes)), [len(m.faces) for m in meshes])
    allv = np.concatenate(verts)
    centre = 0.5 * (allv.min(0) + allv.max(0))
    allv = allv - centre
    v0 = allv[faces[:, 0]]
    cross = _cross(allv[faces[:, 1]] - v0, allv[faces[:, 2]] - v0)
    # signed volume per part (divergence theorem): negative = inward-wound mesh, flip its normals
    vol = np.bincount(part, weights=np.einsum("ij,ij->i", v0, cross), minlength=len(meshes))
    normals = cross * np.where(vol[part] < 0, -1.0, 1.0)[:, None]
    diag = np.zeros(len(meshes))
    filled = counts > 0
    if filled.any():
        starts = offsets[:-1][filled]
        ptp = np.maximum.reduceat(allv, starts) - np.minimum.reduceat(allv, starts)
        diag[filled] = np.sqrt((ptp * ptp).sum(axis=1))
    return _Combined(allv.astype(np.float32), faces.astype(np.int32), centre, part, normals, diag)


def _embree(comb: _Combined) -> rtcore_scene.EmbreeScene:
    scene = rtcore_scene.EmbreeScene()
    TriangleMesh(scene, comb.vertices, comb.faces)
    return scene


def _all_hits(scene: rtcore_scene.EmbreeScene, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every hit along every ray: (ray index, face index, t in metres), in casting order.
    `origins` are in the combined mesh's centred frame."""
    n = len(origins)
    live = np.arange(n)
    travelled = np.zeros(n)
    cur = origins.astype(np.float32)
    d32 = dirs.astype(np.float32)
    rays, faces, ts = [], [], []
    for _ in range(MAX_HITS):
        res = scene.run(cur[live], d32[live], output=1)
        hit = res["primID"] >= 0
        if not hit.any():
            break
        live = live[hit]
        t = travelled[live] + res["tfar"][hit].astype(np.float64)
        rays.append(live)
        faces.append(res["primID"][hit].astype(np.int64))
        ts.append(t)
        travelled[live] = t + STEP_M
        cur[live] = (origins[live] + dirs[live] * travelled[live, None]).astype(np.float32)
    if not rays:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rays), np.concatenate(faces), np.concatenate(ts)


def _chords(key: np.ndarray, sign: np.ndarray, t: np.ndarray, max_chord: np.ndarray) -> tuple[np.ndarray, ...]:
    """Hits sorted by (key, t), key = one (part, ray) pair -> per pair: key, chord (m), good flag.

    The chord is the length along the ray where the winding number (entries minus exits so far)
    is positive, which is also right for a self-intersecting closed surface (a posed arm pressed
    into the trunk). Good = the winding never goes negative, ends at zero, and the chord is at
    most the pair's `max_chord` (one value per pair).
    """
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    step = -sign.astype(np.int64)  # entering (n.d < 0) +1, leaving -1
    total = np.cumsum(step)
    winding = total - np.repeat(total[starts] - step[starts], counts)  # just after each hit
    last = np.zeros(len(key), bool)
    last[starts + counts - 1] = True
    dt = np.where(last, 0.0, np.diff(t, append=t[-1]))
    chord = np.add.reduceat(np.where(winding > 0, dt, 0.0), starts)
    broken = np.add.reduceat((winding < 0) | (sign == 0), starts) > 0
    good = ~broken & (winding[last] == 0) & (chord <= max_chord[starts])
    return key[starts], np.where(good, chord, 0.0), good


def _member(sorted_keys: np.ndarray, q: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(q), bool)
    pos = np.minimum(np.searchsorted(sorted_keys, q), len(sorted_keys) - 1)
    return sorted_keys[pos] == q


def _repair(key: np.ndarray, chord: np.ndarray, good: np.ndarray, size: int) -> np.ndarray:
    """Replace each bad (part, pixel) chord by the mean of that part's good chords over the 8
    neighbouring pixels (a neighbour the part does not cover counts as 0; bad ones are left out)."""
    if good.all():
        return chord
    s2 = size * size
    good_keys, good_vals, bad_keys = key[good], chord[good], key[~good]
    part, pix = bad_keys // s2, bad_keys % s2
    r, c = pix // size, pix % size
    acc = np.zeros(len(bad_keys))
    cnt = np.zeros(len(bad_keys))
    for dr, dc in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        rr, cc = r + dr, c + dc
        nk = part * s2 + rr * size + cc
        use = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size) & ~_member(bad_keys, nk)
        found = _member(good_keys, nk)
        val = np.zeros(len(nk))
        val[found] = good_vals[np.searchsorted(good_keys, nk[found])]
        acc += np.where(use, val, 0.0)
        cnt += use
    out = chord.copy()
    out[~good] = np.where(cnt > 0, acc / np.maximum(cnt, 1), 0.0)
    return out


class DrrScene:
    """A phantom (skin + parts) ready for ray casting: the combined mesh and its Embree scene are
    built once, so several views of one posed phantom share that cost."""

    def __init__(self, skin: trimesh.Trimesh, parts: Sequence[Part], skin_material: str = "soft_tissue") -> None:
        self.parts = list(parts)
        self._comb = _combine([skin] + [p.mesh for p in self.parts])
        self._scene = _embree(self._comb)
        self._d_mu = np.array([mu(skin_material)] + [mu(p.material) - mu(p.displaces) for p in self.parts])
        self._d_min = np.array([0.0] + [mineral(p.material) - mineral(p.displaces) for p in self.parts])
        cores = [p.core if p.shell_m > 0 else p.material for p in self.parts]
        self._core_mu = np.array([mu(skin_material)] + [mu(c) - mu(p.displaces) for c, p in zip(cores, self.parts, strict=True)])
        # material indices (into MATERIALS) of each part's shell, core and displaced material
        mi = MATERIALS.index
        self._mat_shell = np.array([mi(skin_material)] + [mi(p.material) for p in self.parts])
        self._mat_core = np.array([mi(skin_material)] + [mi(c) for c in cores])
        self._mat_disp = np.array([mi("air")] + [mi(p.displaces) for p in self.parts])
        self._core_min = np.array([0.0] + [mineral(c) - mineral(p.displaces) for c, p in zip(cores, self.parts, strict=True)])
        self._shell = np.array([0.0] + [p.shell_m for p in self.parts])
        self._unit_normals = self._comb.normals / np.maximum(np.linalg.norm(self._comb.normals, axis=1, keepdims=True), 1e-30)
        self._labels_of = np.array([0] + [int(p.label) for p in self.parts], dtype=np.int64)

    def skin_entries_before(self, origins: np.ndarray, dirs: np.ndarray, t_max: np.ndarray) -> np.ndarray:
        """How many times each ray (unit dirs) enters the skin before distance t_max (e.g. to tell a
        joint hidden behind another limb: more than one entry before reaching it)."""
        comb = self._comb
        ray, face, t = _all_hits(self._scene, origins - comb.centre, dirs)
        entering = (np.einsum("ij,ij->i", comb.normals[face], dirs[ray]) < 0) & (comb.face_part[face] == 0)
        return np.bincount(ray[entering & (t < t_max[ray])], minlength=len(origins))

    def first_hit(self, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Distance along each ray (unit dirs) to the first surface hit; 0 where it hits nothing."""
        res = self._scene.run((origins - self._comb.centre).astype(np.float32), dirs.astype(np.float32), output=1)
        return np.where(res["primID"] >= 0, res["tfar"].astype(np.float64), 0.0)

    def skin_winding(self, points: np.ndarray, direction: ArrayLike = (0.0, 1.0, 0.0)) -> np.ndarray:
        """The skin's winding number at each point (N, 3), the count the DRR's chords use: exits
        minus entries along a ray from the point out of the scene (front to back by default:
        the fewest crossings through a whole body; `direction` may also be one per point). > 0 =
        inside the body (also where the posed skin overlaps itself), 0 = outside."""
        comb = self._comb
        d = np.asarray(direction, dtype=np.float64)
        d = np.ascontiguousarray(np.broadcast_to(d / np.linalg.norm(d, axis=-1, keepdims=True), (len(points), 3)))
        ray, face, _ = _all_hits(self._scene, np.asarray(points, dtype=np.float64) - comb.centre, d)
        skin = comb.face_part[face] == 0
        step = np.sign(np.einsum("ij,ij->i", comb.normals[face], d[ray])).astype(np.int64)
        return np.bincount(ray[skin], step[skin], minlength=len(points)).astype(np.int64)

    def outside_skin(self, points: np.ndarray, direction: ArrayLike = (0.0, 1.0, 0.0)) -> np.ndarray:
        """Bool (N,): the point is outside the body, by the skin's winding number (skin_winding)
        along `direction` (one, or one per point) and, where that says outside, along the
        opposite ray too. A point outside a closed surface is outside along every ray, while a
        single ray can slip through a crack between triangles (Embree's traversal is not
        watertight) and miscount: seen on finger skin, where one ray called a point 3 mm inside
        the skin outside. Each ray costs a cast per surface it crosses, so a direction that leaves
        the body soon (the nearest skin's normal) is cheaper in a scene of the whole phantom."""
        points = np.asarray(points, dtype=np.float64)
        d = np.broadcast_to(np.asarray(direction, dtype=np.float64), points.shape)
        out = self.skin_winding(points, d) <= 0
        out[out] = self.skin_winding(points[out], -d[out]) <= 0
        return out

    def render(self, cam: Camera, region: np.ndarray | None = None, materials: bool = False) -> DRR:
        """Radiograph, DXA, labels and thickness seen by cam (and per-material path lengths when
        `materials`).

        region: optional bool (S, S); rays are cast only there (e.g. the silhouette grown by a few
        pixels: everything outside the body is zero anyway) - a 3-5x saving on a typical frame.
        """
        s, comb = cam.size, self._comb
        pixels = None if region is None else np.flatnonzero(np.asarray(region, bool).ravel())
        origins, dirs = cam.rays(pixels)
        hit_ray, hit_face, hit_t = _all_hits(self._scene, origins - comb.centre, dirs)
        facing = np.einsum("ij,ij->i", self._unit_normals[hit_face], dirs[hit_ray])
        sign, cos = np.sign(facing), np.abs(facing)
        if pixels is not None:
            hit_ray = pixels[hit_ray]
        hit_part = comb.face_part[hit_face]
        s2 = s * s
        key = hit_part * s2 + hit_ray
        order = np.argsort(key, kind="stable")  # each ray's hits come in casting order: t ascending
        key, sign, hit_t = key[order], sign[order], hit_t[order]
        # cortical shell model: each crossing of a shelled part's surface runs shell / |cos| through
        # cortex (capped at grazing incidence); the rest of its chord is its core material
        through = self._shell[key // s2] / np.maximum(cos[order], GRAZING_COS)
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        max_chord = comb.max_chord_m[key // s2]
        key, chord, good = _chords(key, sign, hit_t, max_chord)
        chord = _repair(key, chord, good, s)
        part, ray = key // s2, key % s2
        shell_len = np.where(good, np.add.reduceat(through, starts) if len(starts) else 0.0, 2.0 * self._shell[part])
        cortex = np.minimum(chord, shell_len)
        cm, cm_cortex = chord * 100.0, cortex * 100.0  # metres -> cm

        skin_hit = part == 0
        thickness = np.bincount(ray[skin_hit], cm[skin_hit], minlength=s2)
        body = thickness > 0
        mu_l = cm_cortex * self._d_mu[part] + (cm - cm_cortex) * self._core_mu[part]
        min_l = cm_cortex * self._d_min[part] + (cm - cm_cortex) * self._core_min[part]
        line = np.where(body, np.clip(np.bincount(ray, mu_l, minlength=s2), 0.0, None), 0.0)
        bone_mineral = np.where(body, np.clip(np.bincount(ray, min_l, minlength=s2), 0.0, None), 0.0)
        # labels: per (pixel, label) total chord over the label's parts; the longest wins
        lab = self._labels_of[part]
        sel = (lab > 0) & (cm > 0) & body[ray]
        pair, inv = np.unique(ray[sel] * 256 + lab[sel], return_inverse=True)
        total = np.bincount(inv, cm[sel])
        pr = pair // 256
        order = np.lexsort((total, pr))
        last = order[np.r_[pr[order][1:] != pr[order][:-1], True]] if len(order) else order
        labels = np.zeros(s2, np.uint8)
        labels[pr[last]] = (pair[last] % 256).astype(np.uint8)
        material_cm = None
        if materials:
            m = len(MATERIALS)
            w = np.where(body[ray], 1.0, 0.0)
            material_cm = (np.bincount(ray * m + self._mat_shell[part], w * cm_cortex, minlength=s2 * m)
                           + np.bincount(ray * m + self._mat_core[part], w * (cm - cm_cortex), minlength=s2 * m)
                           - np.bincount(ray * m + self._mat_disp[part], w * cm, minlength=s2 * m))
            material_cm = np.clip(material_cm.reshape(s, s, m).transpose(2, 0, 1), 0.0, None).astype(np.float32)
        line, bone_mineral, thickness = (x.reshape(s, s) for x in (line, bone_mineral, thickness))
        return DRR(
            radiograph=(1.0 - np.exp(-RADIOGRAPH_GAIN * line)).astype(np.float32),
            dxa=np.clip(bone_mineral / DXA_FULL_SCALE_G_PER_CM2, 0.0, 1.0).astype(np.float32),
            labels=labels.reshape(s, s),
            thickness_cm=thickness.astype(np.float32),
            line_integral=line.astype(np.float32),
            bad_fraction=float((~good).sum()) / max(len(good), 1),
            material_cm=material_cm,
        )


def render_drr(
    skin: trimesh.Trimesh, parts: Sequence[Part], cam: Camera, region: np.ndarray | None = None
) -> DRR:
    """One view of a phantom: ``DrrScene(skin, parts).render(cam, region)``."""
    return DrrScene(skin, parts).render(cam, region)
