"""The anatomical phantom: a posed body's skin plus its skeleton (and lungs, trachea) as labelled meshes.

Bones are built once per body shape in the rest pose (render/bones), cached, and moved rigidly
with their rig bone: ``posed_matrix @ inv(rest_matrix)``; where the blend-skinned skin collapsed
through a bone, the skin is pushed back out over it (render/cover.py). Each ``Part`` is a closed,
outward-oriented mesh of one material sitting inside another (``displaces``), so a ray caster
computes ``mu = skin_chord * mu_soft + sum_parts chord * (mu[material] - mu[displaces])``.
Materials: cortical, spongy, marrow, cartilage, lung, air (the trachea), and soft_tissue (the
cranial cavity, which displaces the cortical vault).

With the fat layer (``build_phantom(body, fat=True)``, render/fat.py) the skin encloses adipose
tissue and a second surface, the skin offset inwards (``Phantom.muscle``), encloses the soft
tissue: that surface is a part of material soft_tissue displacing adipose, label 0 (no bone).
Bones still displace soft_tissue; where a bone reaches into the fat (it cannot: the layer is
capped at a share of the distance to the first bone) the error would be mu_soft - mu_adipose.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import trimesh

from maskel import MaskelError
from render.bones import RestBody, build_rest_parts
from render.cover import cover_bones
from render.drr import DrrScene
from render.fat import fat_thickness, muscle_surface
from render.labels import LABEL_IDS


@dataclass
class Part:
    name: str
    label: int
    material: str
    displaces: str
    mesh: trimesh.Trimesh
    shell_m: float = 0.0  # cortical shell thickness (m); inside it the part is `core`
    core: str = ""


@dataclass
class Phantom:
    skin: trimesh.Trimesh
    parts: list[Part]
    joints3d: dict[str, np.ndarray]
    body: object  # render.body.PosedBody
    muscle: trimesh.Trimesh | None = None  # inner surface of the fat layer; None = no fat layer
    _scene: DrrScene | None = field(default=None, repr=False, compare=False)

    def drr_scene(self) -> DrrScene:
        """The ray-casting scene (built on first use, then kept: the phantom is not meant to be
        changed after): skin of adipose tissue over the muscle surface when there is a fat layer,
        else skin of soft tissue; then the bones."""
        if self._scene is None:
            if self.muscle is None:
                self._scene = DrrScene(self.skin, self.parts)
            else:
                muscle = Part("muscle", 0, "soft_tissue", "adipose", self.muscle)
                self._scene = DrrScene(self.skin, self.parts + [muscle], skin_material="adipose")
        return self._scene


@dataclass
class _RestSkeleton:
    """All rest parts packed for vectorised posing."""

    names: list[str]
    labels: list[int]
    materials: list[str]
    displaces: list[str]
    shells: list[float]
    cores: list[str]
    rig_index: np.ndarray  # (P,) rig bone index per part
    vertices: np.ndarray  # (N,3) all parts' vertices
    vert_part: np.ndarray  # (N,) part index per vertex
    splits: np.ndarray  # vertex offsets (P+1,)
    faces: list[np.ndarray]
    rest_skin: DrrScene  # the rest skin's ray-casting scene (the fat layer is measured in it too)
    scale: float  # stature / 1.75 m (RestBody.scale)
    fat_m: np.ndarray | None = None  # (V,) fat thickness per skin vertex, made on first use


_CACHE: OrderedDict[str, _RestSkeleton] = OrderedDict()
_CACHE_SIZE = 16


def _key(body) -> str:
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(body.rest_heads, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(body.rest_vertices[::97], dtype=np.float64).tobytes())
    h.update(repr(sorted(body.phenotype.items())).encode())
    return h.hexdigest()


def rest_skeleton(body) -> _RestSkeleton:
    """The rest-pose skeleton of this body shape (cached by rest rig + skin)."""
    key = _key(body)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    rest = RestBody(body.bone_names, body.rest_heads, body.rest_tails, body.rest_vertices, body.faces)
    try:
        geoms = build_rest_parts(rest)
    except KeyError as e:
        raise MaskelError(f"the body's rig lacks bone {e.args[0]!r} needed by the skeleton") from None
    index = {n: i for i, n in enumerate(body.bone_names)}
    sizes = np.array([len(g.vertices) for g in geoms])
    rs = _RestSkeleton(
        names=[g.bone for g in geoms],
        labels=[LABEL_IDS[g.bone] for g in geoms],
        materials=[g.material for g in geoms],
        displaces=[g.displaces for g in geoms],
        shells=[g.shell for g in geoms],
        cores=[g.core for g in geoms],
        rig_index=np.array([index[g.rig] for g in geoms]),
        vertices=np.concatenate([g.vertices for g in geoms]),
        vert_part=np.repeat(np.arange(len(geoms)), sizes),
        splits=np.concatenate([[0], np.cumsum(sizes)]),
        faces=[g.faces for g in geoms],
        rest_skin=rest.scene,
        scale=rest.scale,
    )
    _CACHE[key] = rs
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return rs


def build_phantom(body, fat: bool = False) -> Phantom:
    """Skin + skeleton parts of a posed body (render.body.PosedBody), world coordinates; with
    `fat`, the subcutaneous fat layer's inner surface too (Phantom.muscle)."""
    rs = rest_skeleton(body)
    t = body.skinning_transforms[rs.rig_index][rs.vert_part]  # (N,4,4)
    v = np.einsum("nij,nj->ni", t[:, :3, :3], rs.vertices) + t[:, :3, 3]
    parts = [
        Part(rs.names[i], rs.labels[i], rs.materials[i], rs.displaces[i],
             trimesh.Trimesh(v[rs.splits[i]:rs.splits[i + 1]], rs.faces[i], process=False),
             rs.shells[i], rs.cores[i])
        for i in range(len(rs.names))
    ]
    if fat and rs.fat_m is None:
        bones = [(rs.vertices[rs.splits[i]:rs.splits[i + 1]], rs.faces[i])
                 for i in range(len(rs.names)) if rs.materials[i] != "lung"]
        rs.fat_m = fat_thickness(rs.rest_skin, body.rest_vertices, body.faces, body.skin_weights, body.bone_names,
                                 body.phenotype, bones)
    joints3d = body.joints3d()

    def phantom_with(skin_vertices: np.ndarray) -> Phantom:
        muscle = muscle_surface(skin_vertices, body.faces, rs.fat_m) if fat else None
        return Phantom(trimesh.Trimesh(skin_vertices, body.faces, process=False), parts, joints3d, body, muscle)

    # what the skin must cover: the bones' outer surfaces and the trachea (the lungs lie in the rib cage)
    covered = np.array([d == "soft_tissue" and m != "lung" for d, m in zip(rs.displaces, rs.materials, strict=True)])
    last: list[Phantom] = []  # the phantom the cover last tested in: its skin is the final one

    def scene_of(skin_vertices: np.ndarray) -> DrrScene:
        last[:] = [phantom_with(skin_vertices)]
        return last[0].drr_scene()

    skin = cover_bones(body.vertices, body.faces, v[covered[rs.vert_part]], rs.scale, scene_of)
    return last[0] if last else phantom_with(skin)
