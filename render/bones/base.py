"""What the skeleton builders share: the rest-pose body they measure, and what they return.

They work in the rest pose (world coordinates: metres, Z up, facing -Y, character's left +X),
read rig joint positions and measure the rest skin (ray casts from inside the body) so that
bones fit any body, child to adult, and stay inside the skin. They return ``PartGeom``
records: one closed mesh of one material, attached to one rig bone, under one label name from
render/labels.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from render.bones.primitives import Mesh, oriented

ADULT_HEIGHT = 1.75  # metres: the nominal sizes in the builders are for this stature


@dataclass
class PartGeom:
    """One closed rest-pose mesh of one bone (or lung)."""

    bone: str  # label name, a value of render.labels.BONE_LABELS
    rig: str  # rig bone it moves with
    material: str
    displaces: str
    vertices: np.ndarray  # (V,3) float64, rest-pose world coordinates
    faces: np.ndarray  # (F,3) int64, outward oriented
    shell: float = 0.0  # m: cortical shell thickness of a solid bone (0 = all `material`)
    core: str = ""  # material inside the shell


def part(bone: str, rig: str, material: str, displaces: str, mesh: Mesh) -> PartGeom:
    v, f = oriented(mesh)
    return PartGeom(bone, rig, material, displaces, v, f)


class RestBody:
    """Rest-pose rig joints + skin, with the measurements the builders need."""

    def __init__(
        self,
        bone_names: list[str],
        heads: np.ndarray,
        tails: np.ndarray,
        skin_vertices: np.ndarray,
        skin_faces: np.ndarray,
    ) -> None:
        self.names = list(bone_names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.heads = np.asarray(heads, dtype=np.float64)
        self.tails = np.asarray(tails, dtype=np.float64)
        self.skin = trimesh.Trimesh(
            np.asarray(skin_vertices, dtype=np.float64), np.asarray(skin_faces), process=False
        )
        zs = self.skin.vertices[:, 2]
        self.height = float(zs.max() - zs.min())
        self.floor = float(zs.min())
        self.scale = self.height / ADULT_HEIGHT
        self._scene = None
        self._tree = None

    def skin_depth(self, points: np.ndarray) -> np.ndarray:
        """Approximate depth below the skin (positive inside): distance to the nearest skin
        vertex's tangent plane, signed by its outward normal (vertices no face uses, such as
        those of the sealed mouth pocket, are left out)."""
        if self._tree is None:
            from scipy.spatial import cKDTree

            used = np.unique(np.asarray(self.skin.faces).ravel())
            self._used = self.skin.vertices[used]
            self._normals = self.skin.vertex_normals[used]
            self._tree = cKDTree(self._used)
        _, idx = self._tree.query(points)
        return np.einsum("ij,ij->i", self._used[idx] - points, self._normals[idx])

    def h(self, name: str) -> np.ndarray:
        return self.heads[self.index[name]]

    def t(self, name: str) -> np.ndarray:
        return self.tails[self.index[name]]

    def has(self, name: str) -> bool:
        return name in self.index

    @property
    def scene(self):
        """The skin alone as a render.drr.DrrScene (ray casts, the DRR's inside test)."""
        if self._scene is None:
            from render.drr import DrrScene

            self._scene = DrrScene(self.skin, [])
        return self._scene

    def depth(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Distance from each origin (N,3) along its direction (N,3) to the first skin hit.

        Origins are expected inside the body; a ray that hits nothing (origin outside, or a hole)
        returns 0 so that anything sized from it shrinks instead of growing.
        """
        return self.scene.first_hit(np.asarray(origins, dtype=np.float64).reshape(-1, 3),
                                    np.asarray(directions, dtype=np.float64).reshape(-1, 3))
