"""Paired training data: posed phantom -> mask, radiograph, DXA, bone labels, joints, pose map.

    python -m render.dataset --n N --size S --out DIR --seed K [--shard i/n] [--workers W]
                             [--physics clean|realistic [--kvp 80 --filtration-mm-al 2.5 ...]]
                             [--fat on|off]
    python -m render.dataset merge DIR [--partial]

--physics: "clean" (default) is the monochromatic, noise-free radiograph the shipped model is
trained on; "realistic" adds a polychromatic spectrum, beam hardening, scatter, detector blur and
quantum noise at a stated dose (render/physics.py). The DXA style is bone-mineral areal density
either way. --fat: the subcutaneous fat layer (render/fat.py). Both, and the phantom's version,
are recorded in dataset.json; a rerun with other settings is refused.

Sample `index` of a dataset with seed K draws its camera from numpy's RNG seeded with
(K, index), its pose from one seeded with (K, index // VIEWS_PER_POSE) and its body shape from
one seeded with (K, index // BODY_GROUP): each posed phantom is seen from VIEWS_PER_POSE
cameras (its ray-casting scene is built once) and each body shape is reused for BODY_GROUP
consecutive samples (its skeleton is built once per group), so a worker that gets a group's
samples in order shares that work - and a sample is the same whatever the worker count or
sharding. Shard i/n makes the samples whose group (index // BODY_GROUP) % n == i and appends
to its own manifest part (manifest.shard-0000i-of-0000n.jsonl; an unsharded run is shard 0/1).
Sample files are written atomically and a record is appended only once all its files are in
place, so after Ctrl-C or a kill a rerun of the same command keeps complete samples and redoes
the rest. When every part is complete the parts are merged into a sorted manifest.jsonl."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import binary_dilation

from maskel import MaskelError
from maskel.atomic import atomic_write_json
from maskel.data.joints import CANONICAL_JOINTS, array_to_joints
from maskel.data.manifest import (
    LABELS,
    STYLES,
    append_record,
    load_part,
    merge_manifests,
    sample_files,
    sample_id,
)
from maskel.data.posemap import render_pose_map
from maskel.imageio import save_gray, save_mask, save_u8
from render.drr import DrrScene
from render.physics import Physics, parse_physics, pixel_mm_at, realistic_radiograph

META = "dataset.json"
MAX_SIZE = 2048
BODY_GROUP = 8  # 4 until phantom v7; 8 halves the skeleton fitting per sample (~0.07 CPU s), 1,000 body shapes per 8,000 samples
VIEWS_PER_POSE = 2  # divides BODY_GROUP
PHANTOM_VERSION = 7  # 2: myo-sim skeleton; 3: + optional subcutaneous fat layer; 4: the skull fitted to the head per level;
# 5: the rib cage narrowed level by level to the flank skin, the foot block side to side to the foot skin;
# 6: the mid- and forefoot and the toes flattened towards the sole, under the back of the foot's skin;
# 7: the posed skin pushed out over bones its blend skinning let through (render/cover.py); the trachea
DEFAULT_FAT = True  # a modest change (about 1 % of the radiograph's grey level on average)
PHYSICS_FLAGS = (("--kvp", "kvp"), ("--filtration-mm-al", "filtration_mm_al"), ("--spr", "spr_water_20cm"),
                 ("--scatter-sigma-cm", "scatter_sigma_cm"), ("--dose-ugy", "dose_ugy"), ("--blur-mm", "blur_mm"),
                 ("--window-percentile", "window_percentile"), ("--enhance", "enhance"),
                 ("--compress", "compress"))
_PART_RE = re.compile(r"manifest\.shard-(\d{5})-of-(\d{5})\.jsonl$")


@dataclass
class RenderedSample:
    mask: np.ndarray  # bool (S, S)
    radiograph: np.ndarray  # float32 (S, S) in [0, 1]
    dxa: np.ndarray  # float32 (S, S) in [0, 1]
    labels: np.ndarray  # uint8 (S, S)
    joints: dict[str, Any]  # pose JSON (maskel.data.joints), pixel coordinates of this image
    pose_map: np.ndarray  # float32 (S, S)
    record: dict[str, Any]  # index, seed, size, body, pose, camera, styles
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG of one sample's camera: a function of (dataset seed, index) only."""
    return np.random.default_rng([int(seed), int(index)])


def pose_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG of the pose shared by samples index // VIEWS_PER_POSE (a separate stream)."""
    return np.random.default_rng([int(seed), int(index) // VIEWS_PER_POSE, 0x9053])


def noise_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG of one sample's quantum noise (realistic physics): a separate stream."""
    return np.random.default_rng([int(seed), int(index), 0x7015E])


def body_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG of the body shape shared by samples index // BODY_GROUP (a separate stream)."""
    return np.random.default_rng([int(seed), int(index) // BODY_GROUP, 0xB0D1])


def shard_indices(n: int, shard: int, shards: int) -> list[int]:
    return [i for i in range(n) if (i // BODY_GROUP) % shards == shard]


def project_joints(joints3d: dict[str, np.ndarray], scene: DrrScene, cam) -> np.ndarray:
    """Canonical joints -> (J, 4) x, y, depth, visible. Visible = inside the frame and not behind
    another part of the body (the ray to it enters the skin at most once before reaching it)."""
    names = [n for n in CANONICAL_JOINTS if n in joints3d]
    pts = np.array([joints3d[n] for n in names], dtype=np.float64)
    uvd = cam.project(pts)
    if cam.projection == "orthographic":
        dirs = np.broadcast_to(cam.forward, pts.shape).copy()
        dist = uvd[:, 2]  # distance from the image plane
        origins = pts - dirs * dist[:, None]
    else:
        origins = np.broadcast_to(cam.position, pts.shape).copy()
        dirs = pts - origins
        dist = np.linalg.norm(dirs, axis=1)
        dirs = dirs / dist[:, None]
    entries = scene.skin_entries_before(origins, dirs, dist)
    inside = (uvd[:, 0] >= 0) & (uvd[:, 0] <= cam.size) & (uvd[:, 1] >= 0) & (uvd[:, 1] <= cam.size)
    out = np.zeros((len(CANONICAL_JOINTS), 4), dtype=np.float32)
    for k, name in enumerate(names):
        out[CANONICAL_JOINTS.index(name)] = (*uvd[k], float(inside[k] and entries[k] <= 1))
    return out


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@dataclass
class PosedScene:
    phenotype: dict[str, float]
    pose: Any  # render.pose.Pose
    phantom: Any  # render.phantom.Phantom
    scene: DrrScene


_POSED: dict[tuple[int, int, bool], PosedScene] = {}  # the last pose group only


def posed_scene(seed: int, index: int, times: dict[str, float], fat: bool = DEFAULT_FAT) -> PosedScene:
    """The body, pose, phantom and ray-casting scene of sample `index`, shared by the
    VIEWS_PER_POSE samples of its pose group (a worker gets a group's samples in a row). Adds
    the build's "pose" and "phantom" seconds to `times` when it was not cached."""
    from render.body import get_body_model, sample_phenotype
    from render.phantom import build_phantom
    from render.pose import sample_pose

    key = (int(seed), int(index) // VIEWS_PER_POSE, bool(fat))
    if key not in _POSED:
        _POSED.clear()
        t0 = time.perf_counter()
        phenotype = sample_phenotype(body_rng(seed, index))
        pose = sample_pose(pose_rng(seed, index))
        body = get_body_model().pose(phenotype, pose)
        t1 = time.perf_counter()
        phantom = build_phantom(body, fat=fat)
        _POSED[key] = PosedScene(phenotype, pose, phantom, phantom.drr_scene())
        times.update(pose=t1 - t0, phantom=time.perf_counter() - t1)
    return _POSED[key]


def generate_sample(index: int, seed: int, size: int, physics: Physics | None = None,
                    fat: bool = DEFAULT_FAT) -> RenderedSample:  # fmt: skip
    """Render sample `index` of the dataset with `seed` at size x size pixels (deterministic);
    `physics` None = the clean radiograph, else the realistic one (render/physics.py); `fat`:
    the subcutaneous fat layer."""
    from render.camera import sample_camera
    from render.silhouette import render_mask

    times = {"pose": 0.0, "phantom": 0.0}
    posed = posed_scene(seed, index, times, fat)
    phantom = posed.phantom
    t2 = time.perf_counter()
    cam = sample_camera(sample_rng(seed, index), phantom.skin.vertices, size)
    mask = render_mask(phantom.skin, cam)
    t3 = time.perf_counter()
    drr = posed.scene.render(cam, region=binary_dilation(mask, iterations=2), materials=physics is not None)
    radiograph = drr.radiograph
    if physics is not None:
        centre = 0.5 * (phantom.skin.vertices.min(0) + phantom.skin.vertices.max(0))
        radiograph = realistic_radiograph(drr.material_cm, pixel_mm_at(cam, centre), physics, noise_rng(seed, index))
    joints = project_joints(phantom.joints3d, posed.scene, cam)
    t4 = time.perf_counter()
    times.update(silhouette=t3 - t2, drr=t4 - t3)
    record = {
        "index": int(index), "seed": int(seed), "size": int(size),
        "body": _jsonable(posed.phenotype), "pose": _jsonable(posed.pose), "camera": cam.to_json(),
        "styles": list(STYLES),
        "quality": {"repaired_chords": round(drr.bad_fraction, 6),
                    "mask_vs_thickness_px": int(np.count_nonzero(mask != (drr.thickness_cm > 0)))},
    }  # fmt: skip
    return RenderedSample(
        mask=mask,
        radiograph=np.where(mask, radiograph, 0).astype(np.float32),
        dxa=np.where(mask, drr.dxa, 0).astype(np.float32),
        labels=np.where(mask, drr.labels, 0).astype(np.uint8),
        joints=array_to_joints(joints, size, size),
        pose_map=render_pose_map(joints, size),
        record=record,
        timings=times,
    )


def write_sample(root: Path, sample: RenderedSample) -> dict[str, Any]:
    """Write one sample's files (each atomically) and return its full manifest record."""
    sid = sample_id(sample.record["index"])
    rel = sample_files(sid)
    save_mask(root / rel["mask"], sample.mask)
    save_gray(root / rel["radiograph"], sample.radiograph)
    save_gray(root / rel["dxa"], sample.dxa)
    save_u8(root / rel["labels"], sample.labels)
    atomic_write_json(root / rel["joints"], sample.joints)
    save_u8(root / rel["pose_map"], np.round(np.clip(sample.pose_map, 0, 1) * 255))
    return {"id": sid, **sample.record, "files": rel}


def _work(args: tuple[str, int, int, int, dict | None, bool]) -> tuple[dict[str, Any], dict[str, float]]:
    root, index, seed, size, physics, fat = args
    c = time.process_time()
    sample = generate_sample(index, seed, size, None if physics is None else Physics.from_json(physics), fat)
    t = time.perf_counter()
    rec = write_sample(Path(root), sample)
    return rec, {**sample.timings, "write": time.perf_counter() - t, "cpu": time.process_time() - c}


def _init_worker() -> None:
    from render.body import get_body_model

    get_body_model().pose(None)  # build anny once per worker process


def _init_pool_worker() -> None:
    """A worker of a pool of `workers` processes uses one core: torch's and the BLAS's own thread
    pools would only compete with the other workers (on 2 cores: ~5 % less CPU per sample, the
    same bytes). The in-process path (one worker) keeps the caller's settings."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    _init_worker()


def part_path(root: Path, shard: int, shards: int) -> Path:
    return root / f"manifest.shard-{shard:05d}-of-{shards:05d}.jsonl"


def dataset_meta(n: int, size: int, seed: int, physics: Physics | None = None, fat: bool = DEFAULT_FAT) -> dict:
    """What dataset.json records: the arguments that decide every sample's content."""
    return {"format": "maskel-dataset/1", "n": n, "size": size, "seed": seed, "styles": list(STYLES),
            "phantom": {"version": PHANTOM_VERSION, "fat_layer": bool(fat)},
            "physics": {"mode": "clean"} if physics is None else physics.to_json()}  # fmt: skip


def _same_dataset(old: Any, meta: dict) -> bool:
    """A dataset.json written before the phantom/physics keys (phantom 2, clean) holds the same
    samples as a run without the fat layer and with clean physics."""
    if isinstance(old, dict) and "phantom" not in old and "physics" not in old:
        return not meta["phantom"]["fat_layer"] and meta["physics"] == {"mode": "clean"} and \
            old == {k: v for k, v in meta.items() if k not in ("phantom", "physics")}
    return old == meta


def _check_meta(root: Path, meta: dict) -> None:
    path = root / META
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        if not _same_dataset(old, meta):
            hint = ""
            if isinstance(old, dict) and "phantom" not in old:
                hint = " (made before the fat layer: continue it with --fat off --physics clean)"
            raise MaskelError(f"{root} holds a different dataset ({path}: {old}){hint}; use another --out")
    else:
        atomic_write_json(path, meta)
    from render.labels import BONE_LABELS

    atomic_write_json(root / LABELS, {"0": "background", **{str(k): v for k, v in BONE_LABELS.items()}})


def _clean_temps(root: Path, indices: list[int]) -> None:
    for i in indices:
        d = root / "samples" / sample_id(i)
        if d.is_dir():
            for tmp in d.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _results(todo: list[int], root: Path, seed: int, size: int, workers: int, physics: Physics | None,
             fat: bool) -> Iterator[tuple[dict, dict]]:  # fmt: skip
    ph = None if physics is None else physics.to_json()
    jobs = [(str(root), i, seed, size, ph, fat) for i in todo]
    if workers <= 1:
        _init_worker()
        yield from map(_work, jobs)
        return
    with mp.get_context("spawn").Pool(workers, initializer=_init_pool_worker) as pool:
        try:
            yield from pool.imap_unordered(_work, jobs, chunksize=BODY_GROUP)
        finally:
            pool.terminate()


def generate(root: Path, n: int, size: int, seed: int, shard: int = 0, shards: int = 1, workers: int = 1,
             progress: bool = True, physics: Physics | None = None, fat: bool = DEFAULT_FAT) -> int:  # fmt: skip
    """Make (or resume) shard `shard` of `shards` of an n-sample dataset; returns samples done."""
    from tqdm import tqdm

    root.mkdir(parents=True, exist_ok=True)
    _check_meta(root, dataset_meta(n, size, seed, physics, fat))
    mine = shard_indices(n, shard, shards)
    part = part_path(root, shard, shards)
    done = {r["index"] for r in load_part(part)}
    todo = [i for i in mine if i not in done]
    _clean_temps(root, todo)
    with tqdm(total=len(mine), initial=len(mine) - len(todo), unit="sample", disable=not progress) as bar:
        for rec, _ in _results(todo, root, seed, size, workers, physics, fat):
            append_record(part, rec)
            bar.update(1)
    maybe_merge(root, n, shards)
    return len(mine)


def maybe_merge(root: Path, n: int, shards: int) -> bool:
    """Merge the parts into manifest.jsonl when all `shards` parts hold all their samples."""
    parts = [part_path(root, i, shards) for i in range(shards)]
    if all(len(load_part(p)) == len(shard_indices(n, i, shards)) for i, p in enumerate(parts)):
        merge_manifests(root, parts)
        return True
    return False


def merge_command(root: Path, partial: bool) -> int:
    if not (root / META).exists():
        raise MaskelError(f"{root}: not a render.dataset folder (no {META})")
    meta = json.loads((root / META).read_text())
    parts = sorted(p for p in root.iterdir() if _PART_RE.search(p.name))
    if not parts:
        raise MaskelError(f"{root}: no manifest parts to merge")
    n = int(meta["n"])
    have = {r["index"] for p in parts for r in load_part(p)}
    missing = n - len(have & set(range(n)))
    if missing and not partial:
        raise MaskelError(f"{missing} of {n} samples are not done yet (finish the shards, or merge with --partial)")
    got = merge_manifests(root, parts)
    print(f"merged {got} of {n} samples into {root / 'manifest.jsonl'}")
    return 0


def _parse_shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise MaskelError(f"--shard must be i/n with 0 <= i < n, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["merge"]:
            ap = argparse.ArgumentParser(prog="python -m render.dataset merge")
            ap.add_argument("dir", type=Path)
            ap.add_argument("--partial", action="store_true", help="merge even if samples are missing")
            a = ap.parse_args(argv[1:])
            return merge_command(a.dir, a.partial)
        ap = argparse.ArgumentParser(prog="python -m render.dataset", description=__doc__.split("\n\n")[0])
        ap.add_argument("--n", type=int, required=True, help="number of samples in the whole dataset")
        ap.add_argument("--size", type=int, default=256, help="image size in pixels (square)")
        ap.add_argument("--out", type=Path, required=True, help="dataset folder")
        ap.add_argument("--seed", type=int, default=0)
        ap.add_argument("--shard", default="0/1", help=f"i/n: make only the samples with (index // {BODY_GROUP}) %% n == i")
        ap.add_argument("--workers", type=int, default=1, help="worker processes")
        ap.add_argument("--physics", default="clean", help="radiograph physics: clean (default, noise-free) or realistic")
        ap.add_argument("--fat", choices=("on", "off"), default="on" if DEFAULT_FAT else "off",
                        help="subcutaneous fat layer in the phantom")
        for flag, field_name in PHYSICS_FLAGS:
            ap.add_argument(flag, type=float, dest=field_name, help=f"realistic physics: {field_name} "
                            f"(default {getattr(Physics(), field_name)})")
        a = ap.parse_args(argv)
        if a.n < 1:
            raise MaskelError(f"--n must be at least 1, got {a.n}")
        if not 16 <= a.size <= MAX_SIZE:
            raise MaskelError(f"--size must be within 16..{MAX_SIZE}, got {a.size}")
        if a.workers < 1:
            raise MaskelError(f"--workers must be at least 1, got {a.workers}")
        if a.seed < 0:
            raise MaskelError(f"--seed must be >= 0, got {a.seed}")
        if a.out.exists() and not a.out.is_dir():
            raise MaskelError(f"--out {a.out} exists and is not a folder")
        shard, shards = _parse_shard(a.shard)
        overrides = {f: getattr(a, f) for _, f in PHYSICS_FLAGS if getattr(a, f) is not None}
        physics = parse_physics(a.physics, overrides)
        generate(a.out, a.n, a.size, a.seed, shard, shards, a.workers, physics=physics, fat=a.fat == "on")
        return 0
    except MaskelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: complete samples are kept; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
