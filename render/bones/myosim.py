"""The reference skeleton: myo-sim's OpenSim-derived bone meshes, placed by its MJCF models.

``reference()`` compiles two of myo-sim's MuJoCo models at their reference configuration (all
joints at zero: standing, arms hanging, palms forward) with MuJoCo itself, so body frames, geom
placements and mesh re-centring follow MuJoCo's own rules:

- ``scene/myobody_skeleton_decor.xml``: skull, jaw, cervical spine, T1-T12, L1-L5, sacrum,
  rib cage with sternum (``thorax.stl``), pelvis, legs and feet;
- ``arm/assets/myoarm_r_chain.xml``: right clavicle, scapula, humerus, ulna, radius, the eight
  carpals, metacarpals and phalanges (OpenSim frame: X forward, Y up, Z right).

Everything is returned in one "myo world" with the conventions of render/body.py (metres, Z up,
facing -Y, the character's left at +X). Multi-bone meshes are split into their connected
pieces and named with render/labels.py names (cervical vertebrae, ribs, tarsals, metatarsals,
toe phalanges); sub-millimetre fragments are dropped. Every piece is made a closed,
outward-oriented solid: holes are closed by a fan around each boundary loop, and where that does
not give a watertight piece, by the convex hull of its points. Needlessly dense pieces (the hand
bones have 2,000-8,000 faces each, the sternum 15,000) are decimated with fast-simplification. The right
side is the source of both sides: render/bones/register.py mirrors it.

Built once per process (~1-3 s); nothing is downloaded, the meshes come with the myo-sim wheel.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import trimesh

from maskel import MaskelError

# OpenSim ground (X forward, Y up, Z right) -> our world (X left, Y back, Z up)
OPENSIM_TO_WORLD = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
MIN_FACES = 12  # pieces with fewer faces are fragments (stray triangles in the STL files)
DENSE_FACES = 1500  # pieces denser than this are decimated ...
SMALL_FACES, LARGE_FACES = 240, 2000  # ... to this many faces (small: under SMALL_CM3)
SMALL_CM3 = 20.0
HULL_POINTS = 260  # points kept for a convex hull (farthest-point sampled)


@dataclass
class Piece:
    """One closed bone piece of the reference skeleton (myo world, right side + midline)."""

    name: str  # render.labels name with the right side (or a midline bone)
    source: str  # myo-sim mesh file it came from
    vertices: np.ndarray  # (V,3) float64
    faces: np.ndarray  # (F,3) int64, outward


@dataclass
class Reference:
    pieces: dict[str, Piece]
    joints: dict[str, np.ndarray]  # MJCF body origins (joint centres), myo world


def _models_dir() -> str:
    try:
        import myo_sim
    except ImportError as e:
        raise MaskelError(f"the skeleton needs the 'myo-sim' package (pip install 'maskel[render]'): {e}") from None
    return os.path.join(os.path.dirname(myo_sim.__file__), "models")


def _compile(xml: str, tmp: str, name: str):
    import mujoco

    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(xml)
    model = mujoco.MjModel.from_xml_path(path)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    return model, data


def _geoms(model, data, rot: np.ndarray) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """mesh name -> (world vertices, faces) and body name -> world origin, rotated by rot."""
    import mujoco

    meshes = {}
    for g in range(model.ngeom):
        if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH:
            continue
        m = int(model.geom_dataid[g])
        va, nv = model.mesh_vertadr[m], model.mesh_vertnum[m]
        fa, nf = model.mesh_faceadr[m], model.mesh_facenum[m]
        v = model.mesh_vert[va:va + nv].astype(np.float64)
        w = data.geom_xpos[g] + v @ data.geom_xmat[g].reshape(3, 3).T
        meshes[model.mesh(m).name] = (w @ rot.T, model.mesh_face[fa:fa + nf].astype(np.int64))
    bodies = {model.body(b).name: data.xpos[b] @ rot.T for b in range(model.nbody)}
    return meshes, bodies


def _load() -> tuple[dict, dict]:
    models = _models_dir()
    decor_assets = os.path.join(models, "scene", "myobody_skeleton_decor_assets.xml")
    decor = os.path.join(models, "scene", "myobody_skeleton_decor.xml")
    arm_chain = os.path.join(models, "arm", "assets", "myoarm_r_chain.xml")
    with open(os.path.join(models, "arm", "assets", "myoarm_r_assets.xml")) as f:
        # its mesh paths are relative to the model that includes it: make them absolute
        arm_assets = f.read().replace('file="meshes/', f'file="{models}/meshes/')
    with tempfile.TemporaryDirectory(prefix="maskel-myo-") as tmp:
        with open(os.path.join(tmp, "arm_assets.xml"), "w") as f:
            f.write(arm_assets)
        head = '<mujoco><compiler angle="radian" meshdir="{}" autolimits="true"/><include file="{}"/>'
        m1, d1 = _compile(head.format(os.path.join(models, "scene"), decor_assets)
                          + f'<worldbody><include file="{decor}"/></worldbody></mujoco>', tmp, "decor.xml")
        m2, d2 = _compile(head.format(models, os.path.join(tmp, "arm_assets.xml"))
                          + f'<worldbody><include file="{arm_chain}"/></worldbody></mujoco>', tmp, "arm.xml")
        meshes, bodies = _geoms(m1, d1, np.eye(3))
        arm_meshes, arm_bodies = _geoms(m2, d2, OPENSIM_TO_WORLD)
    return {**meshes, **arm_meshes}, {**bodies, **{f"arm:{k}": v for k, v in arm_bodies.items()}}


# ---- closing and simplifying ------------------------------------------------------------------

def _directed_loops(faces: np.ndarray) -> list[list[int]]:
    """Loops of directed boundary edges (each edge as it runs in its one face)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(e, axis=1)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    bnd = e[cnt[inv.ravel()] == 1]
    nxt: dict[int, list[int]] = {}
    for a, b in bnd.tolist():
        nxt.setdefault(a, []).append(b)
    loops = []
    while nxt:
        start = next(iter(nxt))
        loop, cur = [start], start
        while True:
            b = nxt[cur].pop()
            if not nxt[cur]:
                del nxt[cur]
            if b == start or b not in nxt:
                break
            loop.append(b)
            cur = b
        if len(loop) >= 3:
            loops.append(loop)
    return loops


def _simple_cycles(loop: list[int]) -> list[list[int]]:
    """Split a boundary loop that passes a vertex twice (a figure of eight) into simple ones."""
    out, stack, pos = [], [], {}
    for v in loop + [loop[0]]:
        if v in pos:
            i = pos[v]
            cyc = stack[i:]
            if len(cyc) >= 3:
                out.append(cyc)
            for u in cyc[1:]:
                del pos[u]
            stack = stack[:i + 1]
        else:
            pos[v] = len(stack)
            stack.append(v)
    return out


def boundary_loops(faces: np.ndarray) -> list[list[int]]:
    """The simple boundary loops of a triangle mesh, each in the direction its edges run."""
    return [c for loop in _directed_loops(faces) for c in _simple_cycles(loop)]


def fan_faces(loop: np.ndarray, centre: int) -> np.ndarray:
    """Faces closing a boundary loop with a fan around vertex `centre`, wound opposite to the
    loop's edges so that orientation stays consistent."""
    return np.stack([np.roll(loop, -1), loop, np.full(len(loop), centre)], 1)


def _fan_close(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Close every boundary loop with a fan around its centroid."""
    loops = boundary_loops(f)
    if not loops:
        return v, f
    faces = [f] + [fan_faces(np.array(loop), len(v) + k) for k, loop in enumerate(loops)]
    verts = [v] + [v[np.array(loop)].mean(axis=0)[None] for loop in loops]
    return np.concatenate(verts), np.concatenate(faces)


def _manifold(comp: trimesh.Trimesh) -> trimesh.Trimesh:
    """Drop the faces on edges shared by more than two faces, then make the winding consistent."""
    f = np.asarray(comp.faces)
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, inv, cnt = np.unique(e, axis=0, return_inverse=True, return_counts=True)
    bad = (cnt[inv.ravel()] > 2).reshape(3, -1).any(axis=0)
    m = trimesh.Trimesh(np.asarray(comp.vertices), f[~bad], process=True)
    trimesh.repair.fix_winding(m)
    return m


def _farthest_points(p: np.ndarray, k: int) -> np.ndarray:
    if len(p) <= k:
        return p
    chosen = [int(np.argmax(np.linalg.norm(p - p.mean(0), axis=1)))]
    d = np.linalg.norm(p - p[chosen[0]], axis=1)
    for _ in range(k - 1):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.linalg.norm(p - p[i], axis=1))
    return p[chosen]


def _decimate(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Quadric decimation (fast-simplification) to SMALL_FACES faces for a small bone or
    LARGE_FACES for a large one, re-closed where it left a non-manifold edge. If no setting
    gives a closed solid, a small bone becomes its convex hull and a large one stays as it was."""
    import fast_simplification

    small = abs(mesh.volume) < SMALL_CM3 * 1e-6
    target = SMALL_FACES if small else LARGE_FACES
    for agg in (3, 5, 7):  # fast-simplification's aggressiveness: lower keeps more shape
        v, f = fast_simplification.simplify(np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces),
                                            target_reduction=1.0 - target / len(mesh.faces), agg=agg)
        out = trimesh.Trimesh(v.astype(np.float64), f.astype(np.int64), process=True)
        if not out.is_watertight:
            m = _manifold(out)
            out = trimesh.Trimesh(*_fan_close(np.asarray(m.vertices), np.asarray(m.faces)), process=False)
        if out.is_watertight and out.is_winding_consistent:
            return out
    return _hull(np.asarray(mesh.vertices)) if small else mesh


def _hull(points: np.ndarray) -> trimesh.Trimesh:
    return trimesh.convex.convex_hull(_farthest_points(points, HULL_POINTS))


def solidify(vertices: np.ndarray, faces: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Closed, outward-oriented pieces of a (possibly open, multi-piece) triangle mesh, ordered
    as trimesh splits them; fragments under MIN_FACES faces are dropped."""
    mesh = trimesh.Trimesh(vertices, faces, process=True)
    mesh.merge_vertices(digits_vertex=6)
    out = []
    for comp in mesh.split(only_watertight=False):
        if len(comp.faces) < MIN_FACES:
            continue
        v = np.asarray(comp.vertices)
        if comp.is_watertight:
            closed = comp
        else:
            m = _manifold(comp)
            closed = trimesh.Trimesh(*_fan_close(np.asarray(m.vertices), np.asarray(m.faces)), process=False)
        if not (closed.is_watertight and closed.is_winding_consistent):
            closed = _hull(v)
        elif len(closed.faces) > DENSE_FACES:
            closed = _decimate(closed)
        if closed.volume < 0:
            closed.invert()
        out.append((np.asarray(closed.vertices, dtype=np.float64), np.asarray(closed.faces, dtype=np.int64)))
    return out


# ---- naming the pieces ------------------------------------------------------------------------

_HAND = {  # arm-model mesh -> label name (right side)
    "scaphoid_r": "scaphoid_right", "lunate_r": "lunate_right", "triquetrum_r": "triquetrum_right",
    "pisiform_r": "pisiform_right", "trapezium_r": "trapezium_right", "trapezoid_r": "trapezoid_right",
    "capitate_r": "capitate_right", "hamate_r": "hamate_right",
    "1mc_r": "metacarpal_right_1", "thumbprox_r": "phalanx_proximal_right_hand_1",
    "thumbdist_r": "phalanx_distal_right_hand_1",
    **{f"{d}mc_r": f"metacarpal_right_{d}" for d in range(2, 6)},
    **{f"{d}proxph_r": f"phalanx_proximal_right_hand_{d}" for d in range(2, 6)},
    **{f"{d}midph_r": f"phalanx_middle_right_hand_{d}" for d in range(2, 6)},
    **{f"{d}distph_r": f"phalanx_distal_right_hand_{d}" for d in range(2, 6)},
    "clavicle_r": "clavicle_right", "scapula_r": "scapula_right", "humerus_r": "humerus_right",
    "ulna_r": "ulna_right", "radius_r": "radius_right",
}  # fmt: skip
_SINGLE = {
    "hat_skull": "cranium", "hat_jaw": "mandible", "sacrum": "sacrum",
    "r_pelvis": "hip_bone_right", "r_femur": "femur_right", "r_patella": "patella_right",
    "r_tibia": "tibia_right", "r_fibula": "fibula_right", "r_talus": "talus_right",
    **{f"lumbar{i}": f"vertebra_L{i}" for i in range(1, 6)},
    **{f"thoracic{i}_s": f"vertebra_T{i}" for i in range(1, 13)},
}  # fmt: skip


def _largest(pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return max(pieces, key=lambda p: len(p[1]))


def _centre(p: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return p[0].mean(axis=0)


def _name_cervical(pieces: list) -> dict[str, tuple]:
    """hat_cervical: C1..C7 are the seven largest pieces (the rest are the discs), top down."""
    vert = sorted(sorted(pieces, key=lambda p: -len(p[1]))[:7], key=lambda p: -_centre(p)[2])
    return {f"vertebra_C{i + 1}": p for i, p in enumerate(vert)}


def _name_thorax(pieces: list) -> dict[str, tuple]:
    """thorax.stl: 24 ribs (the paired lateral pieces, numbered top down), the sternum (the
    largest midline piece) and costal cartilage (every other midline-front piece, merged)."""
    y_mid = float(np.mean([_centre(p)[1] for p in pieces]))
    lateral = [p for p in pieces if abs(_centre(p)[0]) > 0.03 and _centre(p)[1] > y_mid]
    others = [p for p in pieces if not any(p is q for q in lateral)]
    out = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        ribs = sorted([p for p in lateral if np.sign(_centre(p)[0]) == sign], key=lambda p: -_centre(p)[2])
        out.update({f"rib_{side}_{i + 1}": p for i, p in enumerate(ribs[:12])})
    sternum = _largest(others)
    out["sternum_body"] = sternum
    rest = [p for p in others if p is not sternum]
    if rest:
        offs = np.cumsum([0] + [len(p[0]) for p in rest[:-1]])
        out["costal_cartilage"] = (np.concatenate([p[0] for p in rest]),
                                   np.concatenate([p[1] + o for p, o in zip(rest, offs, strict=True)]))
    return out


def _name_foot(pieces: list) -> dict[str, tuple]:
    """r_foot: calcaneus (largest), five metatarsals (the five longest in front), and the
    navicular, cuboid and three cuneiforms told apart by position (medial = +X on the right)."""
    calc = _largest(pieces)
    rest = [p for p in pieces if p is not calc]
    length = [float(np.ptp(p[0][:, 1])) for p in rest]
    order = np.argsort(length)[::-1]
    meta = [rest[i] for i in order[:5]]
    small = [rest[i] for i in order[5:]]
    out = {"calcaneus_right": calc}
    meta.sort(key=lambda p: -_centre(p)[0])  # medial (big toe) first
    out.update({f"metatarsal_right_{d + 1}": p for d, p in enumerate(meta)})
    if len(small) == 5:
        cuboid = min(small, key=lambda p: _centre(p)[0])  # most lateral
        small = [p for p in small if p is not cuboid]
        navicular = max(small, key=lambda p: _centre(p)[1])  # most posterior
        cune = sorted([p for p in small if p is not navicular], key=lambda p: -_centre(p)[0])
        out.update({"cuboid_right": cuboid, "navicular_right": navicular, "cuneiform_medial_right": cune[0],
                    "cuneiform_intermediate_right": cune[1], "cuneiform_lateral_right": cune[2]})
    return out


def _name_toes(pieces: list) -> dict[str, tuple]:
    """r_bofoot: 14 phalanges; medial to lateral they group 2 (big toe), 3, 3, 3, 3; within a
    toe, back to front."""
    by_x = sorted(pieces, key=lambda p: -_centre(p)[0])
    out, i = {}, 0
    for d, n in zip(range(1, 6), (2, 3, 3, 3, 3), strict=True):
        toe = sorted(by_x[i:i + n], key=lambda p: -_centre(p)[1])
        kinds = ("proximal", "distal") if n == 2 else ("proximal", "middle", "distal")
        out.update({f"phalanx_{k}_right_foot_{d}": p for k, p in zip(kinds, toe, strict=True)})
        i += n
    return out


@lru_cache(maxsize=1)
def reference() -> Reference:
    """The named, closed reference pieces and MJCF joint centres (cached per process)."""
    meshes, joints = _load()
    pieces: dict[str, Piece] = {}

    def add(named: dict[str, tuple], source: str) -> None:
        for name, (v, f) in named.items():
            pieces[name] = Piece(name, source.removesuffix("_r") + ".stl", v, f)

    for mesh, name in {**_SINGLE, **_HAND}.items():
        add({name: _largest(solidify(*meshes[mesh]))}, mesh)
    add(_name_cervical(solidify(*meshes["hat_cervical"])), "hat_cervical")
    add(_name_thorax(solidify(*meshes["thorax"])), "thorax")
    add(_name_foot(solidify(*meshes["r_foot"])), "r_foot")
    add(_name_toes(solidify(*meshes["r_bofoot"])), "r_bofoot")
    return Reference(pieces, joints)
