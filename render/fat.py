"""The subcutaneous fat layer: adipose tissue between the skin and the muscle underneath.

The layer is the skin offset inwards, vertex by vertex, by a thickness that follows the body's
phenotype and the region of the body. The offset surface is the muscle boundary: inside it the
body is soft tissue (ICRU-44 "soft tissue", muscle-like), between it and the skin adipose tissue
(ICRU-44 "adipose"); render/attenuation.py has both materials' coefficients and their sources.

Thickness at a vertex = abdominal thickness (phenotype) x regional factor (skin-weight blend of
the factors of the rig bones that move the vertex), capped by the local geometry of the rest
body so that the inner surface never folds through itself or a bone: at most FAT_OF_DEPTH of the
distance to the opposite skin along the inward normal, and at most FAT_OF_BONE_DEPTH of the
distance to the first bone. So the layer is thin over the shin, the skull, the spinous processes,
the knuckles and the fingers, as it is in the body.

Abdominal thickness (cm), ``abdominal_fat_cm``: 0.6 + 3.9 * weight**1.6 for a man of average
muscle (anny weight 0 / 0.5 / 1 -> 0.6 / 1.9 / 4.5 cm), x1.3 for a woman, x(1.25 - 0.5 muscle),
x stature / 1.75 m (children). Anchors, order of magnitude only: CT of the abdomen (Lee et al.,
University of Michigan, "normalized subcutaneous fat": skin to linea alba over T12-L4) puts the
fat at 12-16 % of the skin-to-vertebra depth in most men and 16-20 % in half of women, i.e.
~1.5-2.5 cm and ~2-3 cm for a ~13 cm depth; standardised ultrasound (Störchle et al., Sci Rep 2018,
8:16268) finds whole-body mean thicknesses of 3-10 mm in lean adults (BMI < 28.5), thinner than
the abdomen. The regional factors (thigh and hip fuller in women, little fat over hands, feet and
head) are our own approximations of those patterns, not measured values.
"""

from __future__ import annotations

import numpy as np
import trimesh
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh

from render.drr import DrrScene

FAT_OF_DEPTH = 0.3  # at most this share of the body's local depth (skin to opposite skin)
FAT_OF_BONE_DEPTH = 0.6  # at most this share of the distance from the skin to the first bone
SMOOTH_ROUNDS = 4  # neighbour averaging of the thickness (no steps in the inner surface)
REF_STATURE_M = 1.75

# rig bone name prefix -> (male, female) share of the abdominal thickness; first match wins
REGION_FACTORS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("spine05", (1.0, 1.0)), ("spine04", (1.0, 1.0)), ("spine03", (0.9, 0.9)), ("root", (0.9, 1.0)),
    ("pelvis", (0.8, 1.1)), ("spine02", (0.6, 0.7)), ("spine01", (0.5, 0.7)),
    ("upperleg01", (0.6, 1.0)), ("upperleg02", (0.45, 0.8)), ("lowerleg01", (0.3, 0.45)),
    ("lowerleg02", (0.25, 0.35)), ("upperarm01", (0.4, 0.65)), ("upperarm02", (0.35, 0.55)),
    ("shoulder", (0.4, 0.55)), ("clavicle", (0.4, 0.55)), ("lowerarm", (0.25, 0.35)),
    ("neck", (0.3, 0.35)), ("head", (0.15, 0.18)),
)  # fmt: skip
OTHER_FACTOR = (0.1, 0.12)  # hands, feet, fingers, toes


def abdominal_fat_cm(phenotype: dict[str, float], stature_m: float) -> float:
    """Subcutaneous fat thickness over the abdomen (cm) for an anny phenotype (module docstring)."""
    w, g, m = (float(phenotype.get(k, 0.5)) for k in ("weight", "gender", "muscle"))
    base = 0.6 + 3.9 * w**1.6
    return base * (1.0 + 0.3 * g) * (1.25 - 0.5 * m) * min(stature_m / REF_STATURE_M, 1.1)


def region_factors(bone_names: list[str], gender: float) -> np.ndarray:
    """(B,) share of the abdominal thickness for each rig bone, blended by gender (0 male, 1 female)."""
    out = np.empty(len(bone_names))
    for i, name in enumerate(bone_names):
        male, female = next((f for p, f in REGION_FACTORS if name.startswith(p)), OTHER_FACTOR)
        out[i] = male + (female - male) * gender
    return out


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of an outward mesh."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(vertices)
    for k in range(3):
        n += np.stack([np.bincount(faces[:, k], fn[:, j], minlength=len(vertices)) for j in range(3)], 1)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)


def _depth(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray, dirs: np.ndarray, start: float) -> np.ndarray:
    """Distance along each ray to the first hit of the mesh past `start` metres (inf where none)."""
    centre = vertices.mean(axis=0)
    scene = rtcore_scene.EmbreeScene()
    TriangleMesh(scene, (vertices - centre).astype(np.float32), faces.astype(np.int32))
    res = scene.run((origins - centre + dirs * start).astype(np.float32), dirs.astype(np.float32), output=1)
    return np.where(res["primID"] >= 0, res["tfar"].astype(np.float64) + start, np.inf)


def fat_thickness(rest_skin: DrrScene, rest_vertices: np.ndarray, faces: np.ndarray, skin_weights: np.ndarray,
                  bone_names: list[str], phenotype: dict[str, float], bones: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:  # fmt: skip
    """(V,) fat thickness (m) at each skin vertex of the rest body; `rest_skin` is that skin's
    ray-casting scene (the one the skeleton was fitted in, so it is not built twice), `bones`
    the rest skeleton's (vertices, faces) pieces. Deterministic for a given body."""
    v = np.asarray(rest_vertices, dtype=np.float64)
    stature = float(np.ptp(v[:, 2]))
    t = abdominal_fat_cm(phenotype, stature) / 100.0
    factors = region_factors(bone_names, float(phenotype.get("gender", 0.5))).astype(np.float32)
    t = t * (np.asarray(skin_weights) @ factors).astype(np.float64)
    inward = -vertex_normals(v, faces)
    skin_depth = rest_skin.first_hit(v + inward * 1e-4, inward)
    skin_depth = np.where(skin_depth > 0, skin_depth + 1e-4, np.inf)
    bone_v = np.concatenate([b[0] for b in bones])
    offs = np.cumsum([0] + [len(b[0]) for b in bones])[:-1]
    bone_f = np.concatenate([b[1] + o for b, o in zip(bones, offs, strict=True)])
    bone_depth = _depth(bone_v, bone_f, v, inward, 0.0)
    cap = np.minimum(FAT_OF_DEPTH * np.minimum(skin_depth, 1.0), FAT_OF_BONE_DEPTH * bone_depth)
    t = np.minimum(t, cap)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    deg = np.bincount(edges[:, 0], minlength=len(v)).astype(np.float64)
    for _ in range(SMOOTH_ROUNDS):
        t = 0.5 * t + 0.5 * np.bincount(edges[:, 0], t[edges[:, 1]], minlength=len(v)) / np.maximum(deg, 1)
        t = np.minimum(t, cap)
    return t


def muscle_surface(vertices: np.ndarray, faces: np.ndarray, thickness: np.ndarray) -> trimesh.Trimesh:
    """The inner boundary of the fat layer of a posed skin: each vertex moved inwards along its
    posed normal by its thickness. Same faces (so outward too)."""
    v = np.asarray(vertices, dtype=np.float64)
    return trimesh.Trimesh(v - vertex_normals(v, faces) * thickness[:, None], faces, process=False)
