"""Digitally reconstructed radiographs of a surface phantom by ray casting with Embree.

One cast against a combined mesh (skin + every part, with a per-face part index) collects all
hits along each ray (re-casting from just past the last hit). Each hit is signed by the
outward normal: sign(n . d) = -1 entering, +1 leaving; the chord of a part along a ray is
sum(sign * t) over that part's hits. A ray through a part must alternate enter/leave, starting
with enter: a ray that does not (a hit missed or duplicated at a grazing angle or through a
crack between triangles, an open mesh) or whose chord exceeds the part's own diagonal is
marked bad and its chord is replaced by the mean of its good 3 x 3 neighbours for that part;
a lone zero inside a part (a ray that slipped through a crack) is filled the same way. Every
physical quantity is then clamped to its range, so no resolution can produce absurd pixels.

Attenuation along a ray (the phantom convention):
  sum mu L = skin_chord * mu[soft_tissue] + sum_parts chord * (mu[material] - mu[displaces]).
Outputs (all S x S, zero outside the body):
  radiograph = 1 - exp(-RADIOGRAPH_GAIN * sum mu L)           (render.attenuation)
  dxa        = min(areal bone mineral / DXA_FULL_SCALE, 1)     (soft tissue removed)
  labels     = per pixel the bone label with the LONGEST total chord (all parts of that label
               summed): the bone that dominates the pixel's attenuation, not merely the nearest
  thickness  = skin chord in cm (soft-tissue thickness; > 0 exactly where the body is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import trimesh
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh

from render.attenuation import DXA_FULL_SCALE_G_PER_CM2, RADIOGRAPH_GAIN, mineral, mu
from render.camera import Camera

STEP_M = 5e-6  # re-cast this far past each hit: skips a duplicate hit on a shared edge
MAX_HITS = 512  # per ray; far above any real body (ribs + spine + arms ~ 100)


class PartLike(Protocol):
    name: str
    label: int
    material: str
    displaces: str
    mesh: trimesh.Trimesh


@dataclass
class DRR:
    radiograph: np.ndarray  # float32 (S, S) in [0, 1]
    dxa: np.ndarray  # float32 (S, S) in [0, 1]
    labels: np.ndarray  # uint8 (S, S), 0 = none
    thickness_cm: np.ndarray  # float32 (S, S) skin chord
    line_integral: np.ndarray  # float32 (S, S) sum mu L (dimensionless)
    bad_fraction: float  # fraction of (ray, part) chords that had to be repaired


@dataclass
class _Combined:
    triangles: np.ndarray  # (F, 3, 3) float32, centred on `centre`
    centre: np.ndarray
    face_part: np.ndarray  # (F,) int: 0 = skin, k = parts[k - 1]
    normals: np.ndarray  # (F, 3) float64, outward (orientation fixed per part)
    max_chord_m: np.ndarray  # (P + 1,) each part's bounding-box diagonal


def _combine(meshes: Sequence[trimesh.Trimesh]) -> _Combined:
    tris = [np.asarray(m.vertices, dtype=np.float64)[np.asarray(m.faces)] for m in meshes]
    part = np.concatenate([np.full(len(t), i, dtype=np.int64) for i, t in enumerate(tris)])
    allt = np.concatenate(tris)
    centre = 0.5 * (allt.reshape(-1, 3).min(0) + allt.reshape(-1, 3).max(0))
    allt = allt - centre
    cross = np.cross(allt[:, 1] - allt[:, 0], allt[:, 2] - allt[:, 0])
    # signed volume per part (divergence theorem): negative = inward-wound mesh, flip its normals
    vol = np.bincount(part, weights=np.einsum("ij,ij->i", allt[:, 0], cross), minlength=len(tris))
    flip = np.where(vol[part] < 0, -1.0, 1.0)
    normals = cross * flip[:, None]
    diag = np.array([float(np.linalg.norm(np.ptp(t.reshape(-1, 3), axis=0))) if len(t) else 0.0 for t in tris])
    return _Combined(allt.astype(np.float32), centre, part, normals, diag)


def _all_hits(tris: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every hit along every ray: (ray index, face index, t in metres), in casting order."""
    scene = rtcore_scene.EmbreeScene()
    TriangleMesh(scene, tris)
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


def _chords(ray: np.ndarray, sign: np.ndarray, t: np.ndarray, max_chord: float) -> tuple[np.ndarray, ...]:
    """Hits of ONE part sorted by (ray, t) -> per ray that hit: ray id, chord (m), good flag."""
    starts = np.flatnonzero(np.r_[True, ray[1:] != ray[:-1]])
    counts = np.diff(np.r_[starts, len(ray)])
    k = np.arange(len(ray)) - np.repeat(starts, counts)  # index within the ray's hit list
    expected = np.where(k % 2 == 0, -1.0, 1.0)
    alternates = np.add.reduceat((sign != expected).astype(np.int64), starts) == 0
    chord = np.add.reduceat(sign * t, starts)
    good = alternates & (counts % 2 == 0) & (chord >= 0) & (chord <= max_chord)
    return ray[starts], np.where(good, chord, 0.0), good


def first_entries_before(mesh: trimesh.Trimesh, origins: np.ndarray, dirs: np.ndarray, t_max: np.ndarray) -> np.ndarray:
    """How many times each ray (unit dirs) enters `mesh` before distance t_max (e.g. to tell a
    joint hidden behind another limb: more than one entry before reaching it)."""
    comb = _combine([mesh])
    ray, face, t = _all_hits(comb.triangles, origins - comb.centre, dirs)
    entering = np.einsum("ij,ij->i", comb.normals[face], dirs[ray]) < 0
    return np.bincount(ray[entering & (t < t_max[ray])], minlength=len(origins))


def _box3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1)
    return sum(p[i : i + a.shape[0], j : j + a.shape[1]] for i in range(3) for j in range(3))


def _repair(img: np.ndarray, bad: np.ndarray, max_chord: float) -> np.ndarray:
    """Fill bad pixels and lone zeros (all 4 neighbours > 0) from their good 3 x 3 neighbours."""
    p = np.pad(img, 1)
    pb = np.pad(bad, 1, constant_values=True)
    h, w = img.shape
    nb = [(p[1 + di : 1 + di + h, 1 + dj : 1 + dj + w], pb[1 + di : 1 + di + h, 1 + dj : 1 + dj + w])
          for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    lone = (img == 0) & ~bad & np.logical_and.reduce([(v > 0) & ~b for v, b in nb])
    fix = bad | lone
    if not fix.any():
        return img
    ok = (~fix).astype(np.float64)
    num, den = _box3(img * ok), _box3(ok)
    out = img.copy()
    out[fix] = np.where(den[fix] > 0, num[fix] / np.maximum(den[fix], 1), 0.0)
    return np.clip(out, 0.0, max_chord)


def render_drr(skin: trimesh.Trimesh, parts: Sequence[PartLike], cam: Camera) -> DRR:
    """Ray-cast radiograph, DXA, labels and thickness of a phantom (skin + parts) seen by cam."""
    s = cam.size
    comb = _combine([skin] + [p.mesh for p in parts])
    origins, dirs = cam.rays()
    hit_ray, hit_face, hit_t = _all_hits(comb.triangles, origins - comb.centre, dirs)
    hit_part = comb.face_part[hit_face]
    sign = np.sign(np.einsum("ij,ij->i", comb.normals[hit_face], dirs[hit_ray]))
    order = np.lexsort((hit_t, hit_ray, hit_part))
    hit_ray, hit_part, sign, hit_t = hit_ray[order], hit_part[order], sign[order], hit_t[order]
    bounds = np.searchsorted(hit_part, np.arange(len(parts) + 2))

    d_mu = np.array([mu("soft_tissue")] + [mu(p.material) - mu(p.displaces) for p in parts])
    d_min = np.array([0.0] + [mineral(p.material) - mineral(p.displaces) for p in parts])
    labels_of = np.array([0] + [int(p.label) for p in parts])
    line = np.zeros((s, s))
    bone_mineral = np.zeros((s, s))
    thickness = np.zeros((s, s))
    per_label: dict[int, list[tuple[tuple[int, int, int, int], np.ndarray]]] = {}
    n_groups = n_bad = 0
    for pi in range(len(parts) + 1):
        a, b = bounds[pi], bounds[pi + 1]
        if a == b:
            continue
        rays, chord, good = _chords(hit_ray[a:b], sign[a:b], hit_t[a:b], comb.max_chord_m[pi])
        n_groups += len(rays)
        n_bad += int((~good).sum())
        r, c = rays // s, rays % s
        r0, r1, c0, c1 = r.min(), r.max() + 1, c.min(), c.max() + 1
        img = np.zeros((r1 - r0, c1 - c0))
        bad = np.zeros(img.shape, bool)
        img[r - r0, c - c0] = chord
        bad[r - r0, c - c0] = ~good
        img = _repair(img, bad, comb.max_chord_m[pi]) * 100.0  # metres -> cm
        window = (slice(r0, r1), slice(c0, c1))
        line[window] += img * d_mu[pi]
        bone_mineral[window] += img * d_min[pi]
        if pi == 0:
            thickness[window] = img
        elif labels_of[pi] > 0:
            per_label.setdefault(int(labels_of[pi]), []).append(((r0, r1, c0, c1), img))

    body = thickness > 0
    line = np.where(body, np.clip(line, 0.0, None), 0.0)
    bone_mineral = np.where(body, np.clip(bone_mineral, 0.0, None), 0.0)
    best = np.zeros((s, s))
    labels = np.zeros((s, s), np.uint8)
    for lab, pieces in per_label.items():
        acc = np.zeros((s, s))
        for (r0, r1, c0, c1), img in pieces:
            acc[r0:r1, c0:c1] += img
        win = (acc > best) & body
        best[win] = acc[win]
        labels[win] = lab
    return DRR(
        radiograph=(1.0 - np.exp(-RADIOGRAPH_GAIN * line)).astype(np.float32),
        dxa=np.clip(bone_mineral / DXA_FULL_SCALE_G_PER_CM2, 0.0, 1.0).astype(np.float32),
        labels=labels,
        thickness_cm=thickness.astype(np.float32),
        line_integral=line.astype(np.float32),
        bad_fraction=n_bad / max(n_groups, 1),
    )
