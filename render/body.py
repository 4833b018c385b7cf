"""The posable body: anny's parametric human as a closed skin mesh plus its rig, in world coordinates.

World: metres, Z up, standing on Z=0, facing -Y, the character's left at +X. anny's own frame
is already metres / Z up / facing -Y / left at +X, so the conversion is a vertical shift that
puts the lowest skin point on the floor (for the rest pose, and for a grounded pose).

One anny model per process (``get_body_model()``), built lazily: ~0.5-20 s from a warm cache
(``ANNY_CACHE_DIR``, default ``~/.cache/maskel/anny``), ~60 s and ~790 MB without one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maskel import MaskelError
from maskel.data.joints import MAKEHUMAN_RIG
from render.bones.primitives import signed_volume
from render.pose import Pose, rotvec_to_matrix

PHENOTYPE_KEYS: tuple[str, ...] = ("gender", "age", "muscle", "weight", "height", "proportions")
"""anny phenotype parameters, each in [0, 1]. gender: 0 male, 1 female. age: 0 = 1 year,
1/3 = 11 years, 2/3 = 25 years, 1 = 90 years (piecewise linear, see age_years). height, weight,
muscle: 0 = min, 0.5 = average, 1 = max. proportions: 0 = ideal, 1 = uncommon."""

DEFAULT_PHENOTYPE: dict[str, float] = {
    "gender": 0.5, "age": 0.7, "muscle": 0.5, "weight": 0.5, "height": 0.5, "proportions": 0.5,
}  # fmt: skip

_AGE_PARAMS = np.array([0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0])
_AGE_YEARS = np.array([1.0, 11.0, 25.0, 90.0])

# Where a bone with several children points (Blender-style tail = that child's head).
_MAIN_CHILD = {
    "root": "spine05",
    "spine01": "neck01",
    "wrist.L": "metacarpal2.L",
    "wrist.R": "metacarpal2.R",
    "foot.L": "toe2-1.L",
    "foot.R": "toe2-1.R",
}
_MIN_BONE = 0.005  # metres: shorter tails are extended (Blender drops zero-length bones)
POCKET_REACH = 0.12  # m: a face in front of the head that sees skin this close is in a pocket
POCKET_FACES = 30  # smaller groups of such faces are folds (nostrils, lips), not pockets


def age_years(age: float) -> float:
    """anny's age parameter -> years (MakeHuman convention, piecewise linear)."""
    return float(np.interp(age, _AGE_PARAMS, _AGE_YEARS))


def age_param(years: float) -> float:
    """Years -> anny's age parameter (inverse of age_years, clipped to 1-90 years)."""
    return float(np.interp(years, _AGE_YEARS, _AGE_PARAMS))


def validate_phenotype(phenotype: dict | None) -> dict[str, float]:
    """Fill defaults and check names and ranges; MaskelError on bad input."""
    if phenotype is None:
        return dict(DEFAULT_PHENOTYPE)
    if not isinstance(phenotype, dict):
        raise MaskelError(
            f"phenotype must be an object of {list(PHENOTYPE_KEYS)}, got {type(phenotype).__name__}"
        )
    unknown = sorted(set(phenotype) - set(PHENOTYPE_KEYS))
    if unknown:
        raise MaskelError(
            f"unknown phenotype parameter(s) {unknown}; expected some of {list(PHENOTYPE_KEYS)}"
        )
    out = dict(DEFAULT_PHENOTYPE)
    for k, v in phenotype.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise MaskelError(f"phenotype {k!r} must be a number in [0, 1], got {v!r}")
        v = float(v)
        if not (0.0 <= v <= 1.0):
            raise MaskelError(f"phenotype {k!r} must be in [0, 1], got {v}")
        out[k] = v
    return out


def sample_phenotype(rng: np.random.Generator) -> dict[str, float]:
    """A random body: ~25% children/teenagers (5-17 y), the rest adults (18-80 y); mostly clearly
    male or female with some in between; weight and muscle spread around the average; height
    centred where anny gives realistic statures (adults ~1.63 m female / ~1.76 m male, sd ~0.1 m:
    anny's height 0.5 is ~1.9 m for an adult man)."""
    if rng.random() < 0.25:
        years = rng.uniform(5.0, 17.0)
    else:
        years = rng.uniform(18.0, 80.0)
    if rng.random() < 0.1:
        gender = rng.uniform(0.2, 0.8)
    else:
        gender = float(np.clip(rng.normal(0.0 if rng.random() < 0.5 else 1.0, 0.08), 0.0, 1.0))
    return {
        "gender": round(float(gender), 4),
        "age": round(age_param(years), 4),
        "muscle": round(float(np.clip(rng.normal(0.5, 0.18), 0.05, 0.95)), 4),
        "weight": round(float(np.clip(rng.normal(0.5, 0.2), 0.05, 0.95)), 4),
        "height": round(
            float(np.clip(rng.normal(0.36 if years >= 18 else 0.55, 0.09), 0.02, 0.95)), 4
        ),
        "proportions": round(float(rng.uniform(0.0, 0.7)), 4),
    }


@dataclass
class PosedBody:
    """A posed body in world coordinates. Bone frames are anny's (rest frames from its cached
    orientation); ``skinning_transforms`` maps rest-pose points rigidly attached to a bone
    (e.g. bone meshes) to the pose."""

    vertices: np.ndarray  # (V, 3) float64, the closed skin
    faces: np.ndarray  # (F, 3) int64, outward-oriented, watertight
    bone_names: list[str]
    bone_parents: np.ndarray  # (B,) int, -1 for the root
    bone_heads: np.ndarray  # (B, 3)
    bone_tails: np.ndarray  # (B, 3)
    bone_matrices: np.ndarray  # (B, 4, 4) posed world transform of each bone's local frame
    rest_bone_matrices: np.ndarray  # (B, 4, 4) same phenotype, rest pose, standing on Z=0
    rest_heads: np.ndarray  # (B, 3)
    rest_tails: np.ndarray  # (B, 3)
    rest_vertices: np.ndarray  # (V, 3) the skin at rest, standing on Z=0
    skin_weights: np.ndarray  # (V, B) float32 dense, rows sum to 1 (shared, read-only)
    phenotype: dict[str, float]
    pose: Pose | None = None
    _bone_index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._bone_index = {n: i for i, n in enumerate(self.bone_names)}

    def bone_index(self, name: str) -> int:
        try:
            return self._bone_index[name]
        except KeyError:
            raise MaskelError(f"unknown bone {name!r}") from None

    @property
    def skinning_transforms(self) -> np.ndarray:
        """(B, 4, 4): bone_matrices @ inverse(rest_bone_matrices)."""
        return self.bone_matrices @ np.linalg.inv(self.rest_bone_matrices)

    def joints3d(self) -> dict[str, np.ndarray]:
        """World positions of every canonical joint (maskel.data.joints.MAKEHUMAN_RIG: the bone end each one is; the tails are ours, see _rest_tails)."""
        out = {}
        for joint, (bone, end) in MAKEHUMAN_RIG.items():
            i = self._bone_index[bone]
            out[joint] = (self.bone_heads if end == "head" else self.bone_tails)[i].copy()
        return out

    def to_trimesh(self):
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, process=False)


def _quiet_warp() -> None:
    """anny skins with NVIDIA Warp, whose start-up banner and per-kernel load lines would bury
    our own output; keep its warnings and errors only."""
    try:
        import warp
    except ImportError:
        return
    warp.config.log_level = max(int(warp.config.log_level), 30)


class BodyModel:
    """anny's full-body model, built once; ``pose()`` makes PosedBody instances (~15 ms each)."""

    def __init__(self, cache_dir: str | os.PathLike | None = None) -> None:
        self.cache_dir = Path(
            cache_dir or os.environ.get("ANNY_CACHE_DIR") or Path.home() / ".cache/maskel/anny"
        )
        self._model = None
        self._lock = threading.Lock()

    # ---- lazy build ---------------------------------------------------------------------
    def _ensure(self):
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                self._build()
        return self._model

    def _build(self) -> None:
        import warnings

        try:
            import anny
            import anny.paths
        except ImportError as e:
            raise MaskelError(
                f"the body model needs the 'anny' package (pip install 'maskel[render]'): {e}"
            ) from None
        anny.paths.set_anny_cache_path(self.cache_dir)
        _quiet_warp()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = anny.Anny()
        model.eval()
        # Identity deltas must give the rest (template) pose, not anny's slightly different
        # reference pose: with no reference orientations, local-ref deltas are rotations in
        # rest-world-aligned axes (anny.utils.kinematics.forward_kinematic).
        model.reference_bone_orientations = None
        names = list(model.bone_labels)
        parents = np.asarray(model.bone_parents, dtype=np.int64)
        faces_all = model.get_triangular_faces().cpu().numpy().astype(np.int64)
        n_all = int(model.template_vertices.shape[0])
        skin_idx, skin_faces = _largest_component(faces_all, n_all)
        weights = np.zeros((n_all, len(names)), dtype=np.float32)
        w = model.vertex_bone_weights.cpu().numpy()
        ix = model.vertex_bone_indices.cpu().numpy()
        np.add.at(weights, (np.repeat(np.arange(n_all), w.shape[1]), ix.ravel()), w.ravel())
        weights /= np.maximum(weights.sum(1, keepdims=True), 1e-12)
        # vertices each leaf bone mostly drives: the tail of a leaf is where its flesh ends
        self._leaf_vertices = {
            i: np.nonzero(weights[:, i] >= 0.5)[0]
            for i in range(len(names))
            if not np.any(parents == i) or names[i] == "head"
        }
        skin_weights = weights[skin_idx]
        skin_weights.flags.writeable = False
        self._names, self._parents = names, parents
        self._skin_idx, self._skin_faces, self._skin_weights = skin_idx, skin_faces, skin_weights
        self._children = {
            i: [int(c) for c in np.nonzero(parents == i)[0]] for i in range(len(names))
        }
        self._main_child = {names.index(k): names.index(v) for k, v in _MAIN_CHILD.items()}
        self._torch = __import__("torch")
        self._model = model
        # orient the skin outwards once (a closed mesh with negative volume is inside-out)
        self._caps: list[np.ndarray] = []
        rest = self.pose(None)
        if signed_volume((rest.vertices, self._skin_faces)) < 0:
            self._skin_faces = self._skin_faces[:, ::-1].copy()
        self._seal_mouth(self.pose(None))

    def _seal_mouth(self, rest: PosedBody) -> None:
        """Fill anny's mouth and eye sockets: its skin runs from the lips into an open pocket
        ~9 cm deep and ~8 cm tall, and from the eyelids into the orbits (teeth, tongue and eyes
        are separate meshes, dropped), which would be air inside the head where the mandible,
        palate, tongue and eyeballs are. A pocket face is one in front of the head joint whose
        outward normal runs into another such face within POCKET_REACH; each pocket (an
        edge-connected group of at least POCKET_FACES faces) is replaced by a fan across its
        rim, whose centre is the mean of the rim so that it follows any shape and pose."""
        import trimesh

        from render.bones.myosim import boundary_loops, fan_faces

        f = self._skin_faces
        v = rest.vertices
        tri = v[f]
        cen = tri.mean(axis=1)
        nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-30)
        hj = rest.bone_heads[rest.bone_index("head")]
        region = (np.abs(cen[:, 0]) < 0.07) & (np.abs(cen[:, 2] - hj[2] + 0.02) < 0.08) & (cen[:, 1] < hj[1] + 0.03)
        near = np.flatnonzero(region)
        if not len(near):
            return
        rays = trimesh.ray.ray_pyembree.RayMeshIntersector(trimesh.Trimesh(v, f, process=False))
        loc, idx, tri_hit = rays.intersects_location(cen[near] + nrm[near] * 1e-4, nrm[near], multiple_hits=False)
        close = (np.linalg.norm(loc - cen[near][idx], axis=1) < POCKET_REACH) & region[tri_hit]
        pockets = _face_sets(f, near[idx[close]], POCKET_FACES)
        if not pockets:
            return
        kept = np.delete(f, np.concatenate(pockets), axis=0)
        kept = kept[_face_sets(kept, np.arange(len(kept)), 1)[0]] if len(kept) else kept  # no islands
        loops = boundary_loops(kept)
        n = len(v)
        faces = np.concatenate([kept] + [fan_faces(np.asarray(loop), n + k) for k, loop in enumerate(loops)])
        caps = [np.asarray(loop) for loop in loops]
        sealed = trimesh.Trimesh(np.concatenate([v] + [v[c].mean(axis=0)[None] for c in caps]), faces, process=False)
        if not (sealed.is_watertight and sealed.is_winding_consistent and sealed.volume > 0):
            return
        self._caps = caps
        self._skin_faces = faces
        w = np.concatenate([self._skin_weights] + [self._skin_weights[c].mean(axis=0)[None] for c in caps])
        w.flags.writeable = False
        self._skin_weights = w

    # ---- public -------------------------------------------------------------------------
    @property
    def bone_names(self) -> list[str]:
        self._ensure()
        return list(self._names)

    @property
    def bone_parents(self) -> np.ndarray:
        self._ensure()
        return self._parents.copy()

    def pose(self, phenotype: dict | None, pose: Pose | None = None) -> PosedBody:
        """Shape the body (phenotype, defaults for missing keys) and pose it (None = rest)."""
        ph = validate_phenotype(phenotype)
        model = self._ensure()
        torch = self._torch
        names, nb = self._names, len(self._names)
        delta = np.tile(np.eye(4), (nb, 1, 1))
        if pose is not None:
            for bone, rv in pose.rotations.items():
                delta[names.index(bone), :3, :3] = rotvec_to_matrix(rv)
            delta[0, :3, :3] = rotvec_to_matrix(pose.root_rotation)
        # one small forward pass: extra torch threads only fight over the cores (~10x slower
        # on a busy 2-core box), so run it single-threaded and restore the caller's setting
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                out = model(
                    pose_parameters=torch.as_tensor(delta[None], dtype=model.dtype),
                    phenotype_kwargs={k: float(v) for k, v in ph.items()},
                )
        finally:
            torch.set_num_threads(threads)
        rest_all = out["rest_vertices"][0].cpu().numpy()
        posed_all = out["vertices"][0].cpu().numpy()
        rest_mats = out["rest_bone_poses"][0].cpu().numpy()
        mats = out["bone_poses"][0].cpu().numpy()
        # anny's local-ref root delta is the root's world pose: [R | 0] about the origin, while
        # the rest root sits at h0. Put it back at h0 (+ the pose's translation).
        h0 = rest_mats[0, :3, 3].copy()
        shift = h0 + (pose.root_translation if pose is not None else 0.0)
        posed_all = posed_all + shift
        mats = mats.copy()
        mats[:, :3, 3] += shift

        rest_heads = rest_mats[:, :3, 3].copy()
        rest_tails = self._rest_tails(rest_heads, rest_all)
        skin_t = mats @ np.linalg.inv(rest_mats)
        heads = mats[:, :3, 3].copy()
        tails = np.einsum("bij,bj->bi", skin_t[:, :3, :3], rest_tails) + skin_t[:, :3, 3]

        rest_v = rest_all[self._skin_idx]
        v = posed_all[self._skin_idx]
        if self._caps:  # the mouth's fan centres (see _seal_mouth)
            rest_v = np.concatenate([rest_v] + [rest_v[loop].mean(axis=0)[None] for loop in self._caps])
            v = np.concatenate([v] + [v[loop].mean(axis=0)[None] for loop in self._caps])
        rest_lift = -rest_v[:, 2].min()
        if pose is None:
            lift = rest_lift
        elif pose.grounded:
            lift = -v[:, 2].min()
        else:
            lift = rest_lift
        up = np.array([0.0, 0.0, 1.0])
        rest_mats = rest_mats.copy()
        rest_mats[:, :3, 3] += rest_lift * up
        mats[:, :3, 3] += lift * up
        return PosedBody(
            vertices=v + lift * up,
            faces=self._skin_faces,
            bone_names=list(names),
            bone_parents=self._parents.copy(),
            bone_heads=heads + lift * up,
            bone_tails=tails + lift * up,
            bone_matrices=mats,
            rest_bone_matrices=rest_mats,
            rest_heads=rest_heads + rest_lift * up,
            rest_tails=rest_tails + rest_lift * up,
            rest_vertices=rest_v + rest_lift * up,
            skin_weights=self._skin_weights,
            phenotype=ph,
            pose=pose,
        )

    # ---- helpers ------------------------------------------------------------------------
    def _rest_tails(self, heads: np.ndarray, rest_vertices: np.ndarray) -> np.ndarray:
        """Blender-style tails: the head of the (main) child; for leaves (and the head, whose
        tail is the top of the skull) the far end of the flesh the bone drives."""
        names, parents = self._names, self._parents
        tails = np.empty_like(heads)
        for i in range(len(names)):
            tail = None
            child = self._main_child.get(
                i, self._children[i][0] if len(self._children[i]) == 1 else None
            )
            while child is not None and names[i] != "head":
                if np.linalg.norm(heads[child] - heads[i]) >= _MIN_BONE:
                    tail = heads[child]
                    break
                kids = self._children[child]
                child = self._main_child.get(child, kids[0] if len(kids) == 1 else None)
            if tail is None:
                if names[i] == "head":
                    d = np.array([0.0, 0.0, 1.0])
                else:
                    d = (
                        heads[i] - heads[parents[i]]
                        if parents[i] >= 0
                        else np.array([0.0, 0.0, 1.0])
                    )
                    d = d / max(np.linalg.norm(d), 1e-9)
                idx = self._leaf_vertices.get(i, np.zeros(0, dtype=np.int64))
                length = float(((rest_vertices[idx] - heads[i]) @ d).max()) if len(idx) else 0.0
                tail = heads[i] + d * max(length, 2 * _MIN_BONE)
            tails[i] = tail
        return tails


def _face_sets(faces: np.ndarray, subset: np.ndarray, min_faces: int) -> list[np.ndarray]:
    """The edge-connected groups of at least min_faces faces among `subset` (face indices),
    largest first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    subset = np.unique(subset)
    if not len(subset):
        return []
    f = faces[subset]
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(len(f)), 3)
    _, inv = np.unique(e, axis=0, return_inverse=True)
    order = np.argsort(inv.ravel(), kind="stable")
    inv_s = inv.ravel()[order]
    same = inv_s[1:] == inv_s[:-1]
    a, b = owner[order][:-1][same], owner[order][1:][same]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(f), len(f)))
    _, label = connected_components(graph, directed=False)
    counts = np.bincount(label)
    big = np.flatnonzero(counts >= min_faces)
    return [subset[label == k] for k in big[np.argsort(-counts[big], kind="stable")]]


def _largest_component(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the biggest face-connected piece (the body; drops eyes and tongue), re-indexed."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = faces
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices))
    _, label = connected_components(graph, directed=False)
    used = np.zeros(n_vertices, bool)
    used[f.ravel()] = True
    counts = np.bincount(label[f[:, 0]], minlength=label.max() + 1)
    keep = np.nonzero(used & (label == int(np.argmax(counts))))[0]
    remap = -np.ones(n_vertices, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    kept_faces = remap[f[label[f[:, 0]] == int(np.argmax(counts))]]
    return keep, kept_faces




_SHARED: dict[str, BodyModel] = {}


def get_body_model(cache_dir: str | os.PathLike | None = None) -> BodyModel:
    """The process-wide BodyModel (built on first use)."""
    key = str(cache_dir or "")
    if key not in _SHARED:
        _SHARED[key] = BodyModel(cache_dir)
    return _SHARED[key]
