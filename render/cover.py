"""Soft tissue over bone: the posed skin pushed out where it fell through a bone.

Bones move rigidly with their rig bone and the skin by linear-blend skinning, which loses volume
where a joint bends far: under a raised or crossed arm, in a deep crouch or a bend, the skin
collapses onto and through the scapula, clavicle, ribs or femur (benchmarks/bone_leaks.py
measured 2,121 bone vertices outside the skin over 60 posed bodies of phantom v6, up to ~5 cm
deep; dual-quaternion skinning, tried, left 93 % of them). Soft tissue does not pass through
bone, so here the skin gives way: each bone point outside the skin (the DRR's own inside test,
DrrScene.outside_skin) pushes the skin vertices around it out along their normals until the
point is COVER_MARGIN under the skin, fading out over COVER_RADIUS so the skin bulges smoothly
instead of spiking. Only skin that faces the same way as the skin nearest the point moves (an
arm lying against the chest is not pushed into it). Moving skin outwards can only bring points
in, so each further round re-tests only the points that were still outside.

The first round tests every point in a scene of the skin alone. Almost every posed body leaks
somewhere (a push was needed in 14 of 16 poses measured), so the later rounds test the few
points left in the scene the caller will render anyway (`scene_of`), each along its nearest skin
normal (out of the body after a crossing or two, however many bones lie behind it): a posed
phantom then builds two Embree scenes, not three, ~15 ms less of Embree's copy and BVH build.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from render.drr import DrrScene
from render.fat import vertex_normals

COVER_MARGIN = 0.003  # m at 1.75 m stature: as deep under the skin as the rest fitting keeps bones
COVER_RADIUS = 0.03  # m at 1.75 m stature: the bulge fades out this far beyond the nearest skin
COVER_ROUNDS = 4
SAME_SIDE_COS = 0.3  # a skin vertex moves only if its normal is within ~73 deg of the nearest one's


def _skin_scene(vertices: np.ndarray, faces: np.ndarray) -> DrrScene:
    return DrrScene(trimesh.Trimesh(vertices, faces, process=False), [])


def cover_bones(skin_vertices: np.ndarray, faces: np.ndarray, bone_points: np.ndarray, scale: float,
                scene_of: Callable[[np.ndarray], DrrScene] | None = None) -> np.ndarray:
    """The skin's vertices moved out so that every bone point lies inside it (unchanged where
    none is outside); `scale` = stature / 1.75 m. Deterministic.

    scene_of(v): a ray-casting scene whose skin has the vertices v (other parts may be in it); it
    is called with a copy of the skin after each round that moved it, so when it was called at
    all, its last call was with the returned vertices and the caller can keep that scene.
    Default: a scene of the skin alone."""
    v = np.array(skin_vertices, dtype=np.float64)
    faces = np.asarray(faces)
    used = np.flatnonzero(np.bincount(faces.ravel(), minlength=len(v)))  # vertices no face uses (the mouth's sealed pocket) stay put
    margin, radius = COVER_MARGIN * scale, COVER_RADIUS * scale
    todo = np.asarray(bone_points, dtype=np.float64)
    scene_of = scene_of or (lambda x: _skin_scene(x, faces))
    scene, direction = _skin_scene(v, faces), np.array([0.0, 1.0, 0.0])
    for _ in range(COVER_ROUNDS):
        todo = todo[scene.outside_skin(todo, direction)]
        if not len(todo):
            break
        normals = vertex_normals(v, faces)[used]
        skin = v[used]
        tree = cKDTree(skin)
        gap, nearest = tree.query(todo)
        # how far out the skin must come: the point's height over the nearest vertex's tangent
        # plane (at least half its distance, for a point beside a fold) plus the margin
        need = np.maximum(np.einsum("ij,ij->i", todo - skin[nearest], normals[nearest]), 0.5 * gap) + margin
        around = tree.query_ball_point(todo, gap + radius)
        counts = np.array([len(a) for a in around])
        k = np.concatenate(around).astype(np.int64)
        point = np.repeat(np.arange(len(todo)), counts)
        x = np.clip((np.linalg.norm(skin[k] - todo[point], axis=1) - gap[point]) / radius, 0.0, 1.0)
        same_side = np.einsum("ij,ij->i", normals[k], normals[nearest[point]]) > SAME_SIDE_COS
        push = np.zeros(len(skin))
        np.maximum.at(push, k, np.where(same_side, need[point] * (1.0 - x * x) ** 2, 0.0))
        v[used] += normals * push[:, None]
        scene, direction = scene_of(v.copy()), normals[nearest]
    return v
