"""The dataset generator end to end (real anny body + phantom), its manifest, resumption and shards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("ANNY_CACHE_DIR", str(Path.home() / ".cache" / "maskel" / "anny"))
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from maskel import MaskelError  # noqa: E402
from maskel.data.manifest import FILE_KEYS, read_manifest  # noqa: E402
from maskel.imageio import load_gray, load_labels, load_mask  # noqa: E402
from render.dataset import BODY_GROUP  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N, SIZE, SEED = 2 * BODY_GROUP, 48, 5  # two body groups: one per shard of two
ARGS = ["--n", str(N), "--size", str(SIZE), "--seed", str(SEED)]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "render.dataset", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "samples").rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """One run of the real CLI with 2 worker processes."""
    out = tmp_path_factory.mktemp("ds") / "one"
    proc = cli(*ARGS, "--out", str(out), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    return out


def test_dataset_layout_and_content(dataset: Path):
    recs = read_manifest(dataset)
    assert [r["id"] for r in recs] == [f"{i:06d}" for i in range(N)]
    labels = json.loads((dataset / "labels.json").read_text())
    assert labels["0"] == "background" and len(labels) > 100
    for rec in recs:
        assert rec["styles"] == ["radiograph", "dxa"] and rec["size"] == SIZE
        assert {"yaw_deg", "projection"} <= set(rec["camera"]) and rec["body"] and rec["pose"]
        f = {k: dataset / v for k, v in rec["files"].items()}
        raw = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(f["mask"]))
        assert set(np.unique(raw)) <= {0, 255}  # exactly binary on disk
        mask = load_mask(f["mask"]).mask
        lab = load_labels(f["labels"])
        assert not lab[~mask].any() and lab[mask].any()  # every label pixel inside the mask
        for style in ("radiograph", "dxa"):
            img = load_gray(f[style])
            assert img.shape == (SIZE, SIZE) and img.min() >= 0 and img.max() <= 1
            assert not img[~mask].any() and img[mask].max() > 0.05
        joints = json.loads(f["joints"].read_text())
        assert joints["width"] == SIZE and len(joints["joints"]) == 22
        assert any(j["visible"] for j in joints["joints"])
        # the silhouette agrees with where the DRR found soft tissue (a handful of grazing pixels)
        assert rec["quality"]["mask_vs_thickness_px"] <= max(2, 0.01 * mask.sum())


def test_generate_sample_is_deterministic(dataset: Path):
    from render.dataset import generate_sample, write_sample

    a = generate_sample(3, SEED, SIZE)
    b = generate_sample(3, SEED, SIZE)
    other = generate_sample(3, SEED + 1, SIZE)
    assert np.array_equal(a.radiograph, b.radiograph) and a.record == b.record
    assert not np.array_equal(a.mask, other.mask)
    # same bytes as the file written by the 2-worker CLI run in other processes
    root = dataset.parent / "again"
    write_sample(root, a)
    for key in FILE_KEYS:
        rel = f"samples/000003/{key}.{'json' if key == 'joints' else 'png'}"
        assert (root / rel).read_bytes() == (dataset / rel).read_bytes(), key


def _thread_pools(_: int) -> tuple[int, list[int]]:
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), sorted({pool["num_threads"] for pool in threadpool_info()})


def test_pool_workers_use_one_thread_each():
    """Dataset worker processes do not each spin up a thread per core (the bytes they write are
    those of the in-process path: test_generate_sample_is_deterministic)."""
    import multiprocessing as mp

    from render.dataset import _init_pool_worker

    with mp.get_context("spawn").Pool(1, initializer=_init_pool_worker) as pool:
        torch_threads, native_pools = pool.map(_thread_pools, [0])[0]
    assert torch_threads == 1 and native_pools == [1]


def test_two_shards_merge_to_the_same_dataset(dataset: Path, tmp_path: Path):
    from render.dataset import generate

    out = tmp_path / "sharded"
    generate(out, N, SIZE, SEED, shard=1, shards=2, progress=False)
    assert not (out / "manifest.jsonl").exists()  # not all parts done yet
    proc = cli("merge", str(out))
    assert proc.returncode == 2 and "not done" in proc.stderr and "Traceback" not in proc.stderr
    generate(out, N, SIZE, SEED, shard=0, shards=2, progress=False)  # completes and merges
    assert (out / "manifest.jsonl").read_bytes() == (dataset / "manifest.jsonl").read_bytes()
    assert file_bytes(out) == file_bytes(dataset)
    (out / "manifest.jsonl").unlink()
    assert cli("merge", str(out)).returncode == 0
    assert (out / "manifest.jsonl").read_bytes() == (dataset / "manifest.jsonl").read_bytes()


def test_resume_after_sigkill(dataset: Path, tmp_path: Path):
    from render.dataset import generate

    out = tmp_path / "killed"
    part = out / "manifest.shard-00000-of-00001.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "render.dataset", *ARGS, "--out", str(out)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + 240
        while time.time() < deadline and (not part.exists() or len(part.read_text().splitlines()) < 2):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = len(part.read_text().splitlines())
    assert 2 <= done < N, "the run was not interrupted in the middle"
    assert not (out / "manifest.jsonl").exists()
    # what a kill can leave: a temp file of a half-written sample and a torn manifest line
    victim = out / "samples" / f"{N - 1:06d}"
    victim.mkdir(parents=True, exist_ok=True)
    (victim / ".mask.png.abc.tmp").write_bytes(b"partial")
    (victim / "radiograph.png").write_bytes(b"\x89PNG truncated")
    with open(part, "a") as f:
        f.write('{"id": "0000')
    generate(out, N, SIZE, SEED, progress=False)
    ids = [json.loads(line)["id"] for line in part.read_text().splitlines()]
    assert sorted(ids) == [f"{i:06d}" for i in range(N)] and len(set(ids)) == N  # no duplicates
    assert not list(out.rglob("*.tmp"))
    assert file_bytes(out) == file_bytes(dataset)
    assert (out / "manifest.jsonl").read_bytes() == (dataset / "manifest.jsonl").read_bytes()


def test_read_manifest_reports_broken_samples(dataset: Path, tmp_path: Path):
    root = tmp_path / "broken"
    shutil.copytree(dataset, root)
    png = root / "samples" / "000002" / "dxa.png"
    png.write_bytes(png.read_bytes()[: len(png.read_bytes()) // 2])  # truncated
    with pytest.raises(MaskelError, match=r"sample 000002: dxa file .* not a readable PNG"):
        read_manifest(root)
    (root / "samples" / "000005" / "joints.json").unlink()
    with pytest.warns(UserWarning, match="000005"):
        recs = read_manifest(root, on_error="skip")
    assert [r["id"] for r in recs] == [f"{i:06d}" for i in range(N) if i not in (2, 5)]
    with open(root / "manifest.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(MaskelError, match=f"line {N + 1}: malformed"):
        read_manifest(root, verify_files=False)


def test_cli_rejects_bad_arguments(tmp_path: Path):
    for args, text in (
        (["--n", "0", "--out", str(tmp_path / "a")], "--n must be"),
        (["--n", "4", "--size", "5", "--out", str(tmp_path / "a")], "--size must be"),
        (["--n", "4", "--shard", "2/2", "--out", str(tmp_path / "a")], "--shard must be"),
    ):
        proc = cli(*args, timeout=60)
        assert proc.returncode == 2 and text in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "dataset.json").write_text('{"n": 99}')
    proc = cli("--n", "4", "--size", "32", "--out", str(tmp_path / "b"), timeout=60)
    assert proc.returncode == 2 and "different dataset" in proc.stderr


def test_femur_profile_shows_two_cortical_peaks():
    """Front view of the real phantom at rest: across the femoral shaft the radiograph rises at
    both cortical walls and dips over the marrow canal."""
    from render.body import get_body_model
    from render.camera import Camera, look_rotation
    from render.drr import render_drr
    from render.labels import LABEL_IDS
    from render.phantom import build_phantom

    phantom = build_phantom(get_body_model().pose(None))
    femur_id = LABEL_IDS["femur_left"]
    pts = np.concatenate([p.mesh.vertices for p in phantom.parts if p.label == femur_id])
    mid = 0.5 * (pts.min(0) + pts.max(0))  # mid-shaft, on the femur's long axis
    size = 128
    cam = Camera(size, "orthographic", look_rotation(0, 0), [mid[0], mid[1] - 1.0, mid[2]], scale=0.2 / size,
                 cx=size / 2, cy=size / 2)  # fmt: skip
    drr = render_drr(phantom.skin, phantom.parts, cam)
    row = size // 2
    cols = np.flatnonzero(drr.labels[row] == femur_id)
    assert len(cols) >= 10, "the femur should be ~17 px wide at 1.6 mm per pixel"
    inner = drr.line_integral[row, cols[0] : cols[-1] + 1]
    half = len(inner) // 2
    peak_l, peak_r = int(np.argmax(inner[:half])), half + int(np.argmax(inner[half:]))
    valley = inner[peak_l : peak_r + 1].min()
    assert peak_r - peak_l >= 4
    assert valley < inner[peak_l] - 0.05 and valley < inner[peak_r] - 0.05, inner
    # DXA: bone only, so the same profile is zero beside the femur and positive on it
    assert drr.dxa[row, cols].min() > 0 and drr.dxa[row, cols[0] - 8] == 0


def test_realistic_physics_is_recorded_deterministic_and_keeps_dxa(tmp_path: Path):
    from render.dataset import PHANTOM_VERSION, generate, generate_sample
    from render.physics import Physics

    out = tmp_path / "real"
    generate(out, 4, SIZE, SEED, progress=False, physics=Physics(kvp=70.0))
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["physics"]["mode"] == "realistic" and meta["physics"]["kvp"] == 70.0
    assert meta["phantom"] == {"version": PHANTOM_VERSION, "fat_layer": True}
    for rec in read_manifest(out):
        f = {k: out / v for k, v in rec["files"].items()}
        mask, lab = load_mask(f["mask"]).mask, load_labels(f["labels"])
        assert not lab[~mask].any() and not load_gray(f["radiograph"])[~mask].any()
    generate(out, 4, SIZE, SEED, progress=False, physics=Physics(kvp=70.0))  # same settings: resumes
    with pytest.raises(MaskelError, match="different dataset"):
        generate(out, 4, SIZE, SEED, progress=False)  # clean physics into a realistic dataset
    a = generate_sample(1, SEED, SIZE, Physics())
    b = generate_sample(1, SEED, SIZE, Physics())
    clean = generate_sample(1, SEED, SIZE)
    assert np.array_equal(a.radiograph, b.radiograph)  # the noise is seeded per sample
    assert not np.array_equal(a.radiograph, clean.radiograph)
    assert np.array_equal(a.dxa, clean.dxa) and np.array_equal(a.labels, clean.labels)


def test_switched_off_is_the_previous_phantom_and_old_datasets_resume(tmp_path: Path):
    from scipy.ndimage import binary_dilation

    from render.body import get_body_model, sample_phenotype
    from render.camera import sample_camera
    from render.dataset import _POSED, body_rng, generate, generate_sample, pose_rng, sample_rng
    from render.drr import DrrScene
    from render.phantom import build_phantom
    from render.pose import sample_pose
    from render.silhouette import render_mask

    off = generate_sample(2, SEED, SIZE, None, fat=False)
    _POSED.clear()

    body = get_body_model().pose(sample_phenotype(body_rng(SEED, 2)), sample_pose(pose_rng(SEED, 2)))
    phantom = build_phantom(body)  # the phantom-2 path: no fat layer, skin of soft tissue
    cam = sample_camera(sample_rng(SEED, 2), phantom.skin.vertices, SIZE)
    mask = render_mask(phantom.skin, cam)
    drr = DrrScene(phantom.skin, phantom.parts).render(cam, region=binary_dilation(mask, iterations=2))
    assert np.array_equal(off.radiograph, np.where(mask, drr.radiograph, 0).astype(np.float32))
    on = generate_sample(2, SEED, SIZE)  # the fat layer (default) changes the radiograph a little
    assert np.array_equal(on.mask, off.mask)
    assert np.abs(on.dxa - off.dxa)[off.mask].mean() < 0.01, np.abs(on.dxa - off.dxa)[off.mask].mean()  # float rounding, repairs
    diff = np.abs(on.radiograph - off.radiograph)[off.mask]
    assert 0.001 < diff.mean() < 0.05
    # a dataset.json from before the phantom/physics keys resumes with --fat off --physics clean
    old = tmp_path / "old"
    old.mkdir()
    (old / "dataset.json").write_text(json.dumps({"format": "maskel-dataset/1", "n": 4, "size": SIZE,
                                                  "seed": SEED, "styles": ["radiograph", "dxa"]}))  # fmt: skip
    generate(old, 4, SIZE, SEED, progress=False, fat=False)
    assert "phantom" not in json.loads((old / "dataset.json").read_text())
    proc = cli("--n", "4", "--size", str(SIZE), "--seed", str(SEED), "--out", str(old), timeout=120)
    assert proc.returncode == 2 and "--fat off --physics clean" in proc.stderr


def test_cli_physics_options_and_bad_values(tmp_path: Path):
    for args, text in ((["--physics", "fancy"], "physics must be one of"),
                       (["--kvp", "70"], "need --physics realistic"),
                       (["--physics", "realistic", "--kvp", "300"], "physics kvp must be")):  # fmt: skip
        proc = cli("--n", "4", "--size", "32", "--out", str(tmp_path / "x"), *args, timeout=60)
        assert proc.returncode == 2 and text in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
