"""The posable anny body (render/body.py) and the mannequin export (render/mannequin.py)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("anny")
trimesh = pytest.importorskip("trimesh")

from maskel import MaskelError  # noqa: E402
from maskel.data.joints import CANONICAL_JOINTS  # noqa: E402
from render.body import (  # noqa: E402
    PHENOTYPE_KEYS,
    age_param,
    age_years,
    get_body_model,
    sample_phenotype,
    validate_phenotype,
)
from render.pose import _REST_DIR_L, Pose, from_anatomical  # noqa: E402
from render.rigmap import ANNY_BONES  # noqa: E402


@pytest.fixture(scope="module")
def body():
    return get_body_model()


@pytest.fixture(scope="module")
def rest(body):
    return body.pose(None)


def test_phenotype_sampler_ranges_spread_and_determinism() -> None:
    a = [sample_phenotype(np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = np.random.default_rng(1)
    samples = [sample_phenotype(rng) for _ in range(400)]
    assert samples[0] != samples[1]
    for s in samples:
        assert set(s) == set(PHENOTYPE_KEYS)
        assert all(0.0 <= v <= 1.0 for v in s.values())
    years = np.array([age_years(s["age"]) for s in samples])
    children = np.mean(years < 18)
    assert 0.15 < children < 0.35 and years.min() >= 5 and years.max() <= 80
    gender = np.array([s["gender"] for s in samples])
    assert np.mean(gender < 0.3) > 0.3 and np.mean(gender > 0.7) > 0.3
    for key in ("muscle", "weight", "height"):
        assert np.std([s[key] for s in samples]) > 0.05
    assert age_years(age_param(30.0)) == pytest.approx(30.0)


@pytest.mark.parametrize(
    "bad",
    [{"size": 0.5}, {"height": 1.5}, {"age": -0.1}, {"weight": "heavy"}, {"gender": True}, [0.5]],
)
def test_bad_phenotype_is_a_one_line_error(bad) -> None:
    with pytest.raises(MaskelError):
        validate_phenotype(bad)


def test_bone_names_match_the_anny_rig(body) -> None:
    assert tuple(body.bone_names) == ANNY_BONES


def test_skin_is_one_closed_outward_surface(rest, body) -> None:
    rng = np.random.default_rng(3)
    from render.pose import sample_pose

    posed = body.pose(sample_phenotype(rng), sample_pose(rng, "crouching"))
    for b in (rest, posed):
        m = b.to_trimesh()
        assert m.is_watertight and m.is_winding_consistent
        assert m.volume > 0.01  # outward normals: positive enclosed volume (m³)
        assert len(trimesh.graph.connected_components(m.face_adjacency)) == 1
        assert b.faces.dtype == np.int64 and b.vertices.dtype == np.float64
    # eyes and tongue are separate closed pieces in anny: they are dropped
    assert len(rest.vertices) < 13718
    assert rest.skin_weights.shape == (len(rest.vertices), len(rest.bone_names))
    np.testing.assert_allclose(rest.skin_weights.sum(1), 1.0, atol=1e-5)


def test_joints_have_sensible_anatomy_at_rest(rest) -> None:
    j = rest.joints3d()
    assert set(j) == set(CANONICAL_JOINTS)
    z = {k: v[2] for k, v in j.items()}
    assert z["head_top"] > z["head"] > z["neck"] > z["chest"] > z["spine"] > z["pelvis"]
    assert z["head_top"] == pytest.approx(rest.vertices[:, 2].max(), abs=0.03)
    assert rest.vertices[:, 2].min() == pytest.approx(0.0, abs=1e-9)
    for side, sign in (("left", 1), ("right", -1)):
        for part in ("shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle", "foot"):
            assert sign * j[f"{side}_{part}"][0] > 0.05, f"{side}_{part} on the wrong side"
        assert z[f"{side}_hip"] > z[f"{side}_knee"] > z[f"{side}_ankle"] > z[f"{side}_foot"]
        assert z[f"{side}_foot"] < 0.06
        assert z[f"{side}_shoulder"] > z[f"{side}_elbow"] > z[f"{side}_wrist"]
        assert j[f"{side}_foot"][1] < j[f"{side}_ankle"][1] - 0.05  # toes point forward (-Y)
    mirror = np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(j["left_wrist"] * mirror, j["right_wrist"], atol=0.01)


def test_rest_directions_used_by_the_joint_frames_match_the_model(rest) -> None:
    h = {n: rest.rest_heads[i] for i, n in enumerate(rest.bone_names)}
    actual = {
        "thigh": h["lowerleg01.L"] - h["upperleg02.L"],
        "shin": h["foot.L"] - h["lowerleg01.L"],
        "upperarm": h["lowerarm01.L"] - h["upperarm01.L"],
        "forearm": h["wrist.L"] - h["lowerarm01.L"],
        "hand": h["finger3-1.L"] - h["wrist.L"],
    }
    for k, d in actual.items():
        t = np.asarray(_REST_DIR_L[k])
        cos = d @ t / np.linalg.norm(d) / np.linalg.norm(t)
        assert cos > np.cos(np.deg2rad(5)), k


def test_empty_pose_is_the_rest_pose(body, rest) -> None:
    b = body.pose(None, Pose())
    np.testing.assert_allclose(b.vertices, rest.vertices, atol=1e-9)
    np.testing.assert_allclose(b.bone_matrices, b.rest_bone_matrices, atol=1e-9)
    np.testing.assert_allclose(b.bone_heads, b.rest_heads, atol=1e-9)
    np.testing.assert_allclose(rest.rest_vertices, rest.vertices, atol=1e-9)


def test_rotation_moves_only_its_limb_and_bones_stay_rigid(body, rest) -> None:
    # abduct the left shoulder by 80 degrees: the left arm rises, the rest stays where it was
    pose = Pose(rotations={"upperarm01.L": from_anatomical("upperarm01.L", [0.0, np.deg2rad(80), 0.0])})
    b = body.pose(None, pose)
    j0, j1 = rest.joints3d(), b.joints3d()
    assert j1["left_wrist"][2] > j0["left_wrist"][2] + 0.3
    assert j1["left_wrist"][0] > j0["left_wrist"][0]
    for k in ("right_wrist", "head_top", "left_knee", "left_shoulder"):
        np.testing.assert_allclose(j1[k], j0[k], atol=1e-6)
    # a child's head stays on its parent's tail, and bone lengths are kept
    for i in range(len(b.bone_names)):
        np.testing.assert_allclose(
            np.linalg.norm(b.bone_tails[i] - b.bone_heads[i]),
            np.linalg.norm(b.rest_tails[i] - b.rest_heads[i]),
            atol=1e-9,
        )
    i_up, i_low = b.bone_index("upperarm02.L"), b.bone_index("lowerarm01.L")
    np.testing.assert_allclose(b.bone_tails[i_up], b.bone_heads[i_low], atol=1e-9)
    # skin transforms carry rest points rigidly with their bone
    t = b.skinning_transforms[i_low]
    np.testing.assert_allclose(t[:3, :3] @ b.rest_heads[i_low] + t[:3, 3], b.bone_heads[i_low], atol=1e-9)


def test_body_size_is_plausible_and_follows_height(body) -> None:
    rng = np.random.default_rng(11)
    for _ in range(4):
        ph = sample_phenotype(rng)
        v = body.pose(ph).vertices
        stature = v[:, 2].max() - v[:, 2].min()
        lo, hi = (0.95, 1.9) if age_years(ph["age"]) < 18 else (1.35, 2.1)
        assert lo < stature < hi, (ph, stature)
        assert np.ptp(v[:, 0]) < 0.8 * stature and np.ptp(v[:, 1]) < 0.5 * stature
    short = body.pose({"height": 0.2}).vertices[:, 2].max()
    tall = body.pose({"height": 0.8}).vertices[:, 2].max()
    child = body.pose({"age": age_param(8)}).vertices[:, 2].max()
    assert child < short < tall


def test_pose_speed(body) -> None:
    rng = np.random.default_rng(0)
    from render.pose import sample_pose

    ph, pose = sample_phenotype(rng), sample_pose(rng)
    body.pose(ph, pose)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        body.pose(ph, pose)
        times.append(time.perf_counter() - t)
    assert np.median(times) < 0.15  # ~10 ms on an idle core; generous for the shared CI box


# ---- mannequin ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mannequin(body):
    from render.mannequin import mannequin_dict

    return mannequin_dict(None, body=body)


def test_mannequin_json_is_consistent(mannequin) -> None:
    m = json.loads(json.dumps(mannequin))  # plain JSON types only
    assert m["format"] == "maskel-mannequin/1" and m["units"] == "m" and m["up"] == "Z"
    n = len(m["vertices"])
    faces = np.asarray(m["faces"])
    assert faces.min() >= 0 and faces.max() < n
    names = [b["name"] for b in m["bones"]]
    assert len(set(names)) == len(names)
    for b in m["bones"]:
        assert b["parent"] is None or b["parent"] in names
        assert np.linalg.norm(np.subtract(b["tail"], b["head"])) > 1e-3
        assert -np.pi - 1e-6 <= b["roll"] <= np.pi + 1e-6
    total = np.zeros(n)
    count = np.zeros(n, int)
    for bone, pairs in m["weights"].items():
        assert bone in names
        idx = np.array([p[0] for p in pairs])
        w = np.array([p[1] for p in pairs])
        assert np.all(w > 0)
        np.add.at(total, idx, w)
        np.add.at(count, idx, 1)
    np.testing.assert_allclose(total, 1.0, atol=1e-3)
    assert count.max() <= 4 and count.min() >= 1
    assert set(m["joint_map"]) == set(CANONICAL_JOINTS)
    for target in m["joint_map"].values():
        bone, end = target.split(":")
        assert bone in names and end in ("head", "tail")
    z = np.asarray(m["vertices"])[:, 2]
    assert z.min() == pytest.approx(0.0, abs=1e-4)


def test_blender_roll_conventions() -> None:
    from render.mannequin import blender_roll

    fwd = np.array([0.0, -1.0, 0.0])
    # Blender: a bone pointing up has its local Z towards -Y at roll 0, pointing down at roll 180
    assert blender_roll(np.zeros(3), np.array([0.0, 0.0, 1.0]), fwd) == pytest.approx(0.0, abs=1e-9)
    assert abs(blender_roll(np.zeros(3), np.array([0.0, 0.0, -1.0]), fwd)) == pytest.approx(np.pi)
    # a bone along +X with the Z axis wanted up: roll-0 Z is +Z already (smallest turn of +Y onto +X)
    assert blender_roll(np.zeros(3), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])) == pytest.approx(0.0, abs=1e-9)


def test_mannequin_cli_writes_atomically_and_rejects_bad_input(tmp_path, capsys) -> None:
    from render.mannequin import main

    out = tmp_path / "m.json"
    assert main(["--out", str(out), "--phenotype", '{"height": 0.3, "gender": 1.0}']) == 0
    data = json.loads(out.read_text())
    assert data["phenotype"]["height"] == 0.3 and data["format"] == "maskel-mannequin/1"
    assert main(["--out", str(tmp_path / "bad.json"), "--phenotype", '{"height": 3}']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "height" in err[0]
    assert main(["--out", str(tmp_path / "bad.json"), "--phenotype", "{not json"]) == 2
    assert not (tmp_path / "bad.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
