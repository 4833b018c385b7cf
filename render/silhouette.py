"""Exactly binary silhouette masks with pyrender (headless EGL), one renderer per process.

Rendered in pyrender's segmentation mode: flat colour, multisampling off, so each pixel is
covered or not according to OpenGL's rule of sampling at the pixel centre - the same points
the DRR casts its rays through. The mesh is drawn with both windings, so back-face culling can
never open holes whatever the mesh's orientation.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")  # must precede the first OpenGL import

import numpy as np  # noqa: E402
import pyrender  # noqa: E402
import trimesh  # noqa: E402

from render.camera import Camera  # noqa: E402

_RENDERER: pyrender.OffscreenRenderer | None = None
_WHITE = np.array([255, 255, 255], dtype=np.uint8)


class _MatrixCamera(pyrender.camera.Camera):
    """A pyrender camera whose projection is exactly the one of render.camera.Camera."""

    def __init__(self, cam: Camera) -> None:
        super().__init__(znear=cam.near, zfar=cam.far)
        self._p = cam.projection_matrix()

    def get_projection_matrix(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        return self._p


def _renderer(size: int) -> pyrender.OffscreenRenderer:
    global _RENDERER
    if _RENDERER is None:
        _RENDERER = pyrender.OffscreenRenderer(size, size)
    elif _RENDERER.viewport_width != size or _RENDERER.viewport_height != size:
        _RENDERER.viewport_width = size
        _RENDERER.viewport_height = size
    return _RENDERER


def render_mask(mesh: trimesh.Trimesh, cam: Camera) -> np.ndarray:
    """Boolean (S, S) silhouette of `mesh` seen by `cam` (True = body)."""
    verts = np.asarray(mesh.vertices, dtype=np.float32)
    faces = np.asarray(mesh.faces, dtype=np.uint32)
    both = np.concatenate([faces, faces[:, ::-1]])
    prim = pyrender.Primitive(positions=verts, indices=both, mode=pyrender.constants.GLTF.TRIANGLES)
    scene = pyrender.Scene(bg_color=[0, 0, 0, 0])
    node = scene.add(pyrender.Mesh([prim]))
    scene.add(_MatrixCamera(cam), pose=cam.pose_matrix())
    flags = pyrender.RenderFlags.SEG
    color, _ = _renderer(cam.size).render(scene, flags=flags, seg_node_map={node: _WHITE})
    return np.asarray(color[..., 0]) > 127

