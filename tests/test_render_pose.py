"""Poses, joint limits and the pose sampler (render/pose.py); BVH reading and retargeting (render/bvh.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskel import MaskelError
from render.pose import (
    JOINT_LIMITS,
    POSE_KINDS,
    Pose,
    anatomical,
    clamp_pose,
    from_anatomical,
    limit_violations,
    matrix_to_rotvec,
    mirror_rotvec,
    rotvec_to_matrix,
    sample_pose,
)
from render.rigmap import ANNY_BONES, mocap_to_anny

CLIP = Path(__file__).parent / "data" / "tpose_cmu.bvh"


# ---- Pose, limits, sampler (no body model needed) ----------------------------------------
def test_rotvec_round_trip() -> None:
    rng = np.random.default_rng(0)
    for rv in [*rng.normal(size=(50, 3)), np.array([np.pi - 1e-6, 0.0, 0.0]), np.zeros(3)]:
        rv = rv / max(1.0, np.linalg.norm(rv) / 3.1)  # keep angles below pi
        m = rotvec_to_matrix(rv)
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(rotvec_to_matrix(matrix_to_rotvec(m)), m, atol=1e-9)


def test_pose_json_round_trip_and_validation() -> None:
    pose = sample_pose(np.random.default_rng(5), "walking")
    again = Pose.from_json(json.loads(json.dumps(pose.to_json())))
    assert again.to_json() == pose.to_json() and again.kind == "walking"
    for bone, rv in pose.rotations.items():
        np.testing.assert_allclose(again.rotations[bone], rv, atol=1e-6)
    bad = [
        "not a pose",
        {"rotations": {"tail.L": [0, 0, 0]}},
        {"rotations": {"root": [0, 0, 0]}},
        {"rotations": {"head": [0, 0]}},
        {"rotations": {"head": [0, "x", 0]}},
        {"rotations": {"head": [0, float("nan"), 0]}},
        {"rotations": []},
        {"root_translation": [1, 2]},
        {"grounded": "yes"},
        {"format": "other/2"},
        {"rotatons": {}},
    ]
    for obj in bad:
        with pytest.raises(MaskelError):
            Pose.from_json(obj)


def test_every_limited_bone_is_a_rig_bone_and_limits_are_ordered() -> None:
    assert set(JOINT_LIMITS) == set(ANNY_BONES) - {"root"}
    for lim in JOINT_LIMITS.values():
        assert lim.shape == (3, 2) and np.all(lim[:, 0] <= 0) and np.all(lim[:, 1] >= 0)


@pytest.mark.parametrize("kind", POSE_KINDS)
def test_sampled_poses_are_within_limits_and_deterministic(kind: str) -> None:
    for seed in range(25):
        a = sample_pose(np.random.default_rng(seed), kind)
        b = sample_pose(np.random.default_rng(seed), kind)
        assert a.to_json() == b.to_json()
        assert a.kind == kind and a.grounded
        assert limit_violations(a) == []
        assert any(np.linalg.norm(rv) > 0.05 for rv in a.rotations.values())
        # fingers curl a little (mild variation), within the finger limits
        assert any(k.startswith("finger3") for k in a.rotations)
    assert sample_pose(np.random.default_rng(1), kind).to_json() != sample_pose(np.random.default_rng(2), kind).to_json()


def test_random_kind_and_unknown_kind() -> None:
    rng = np.random.default_rng(0)
    kinds = {sample_pose(rng).kind for _ in range(80)}
    assert kinds == set(POSE_KINDS)
    with pytest.raises(MaskelError):
        sample_pose(rng, "moonwalk")


def test_limits_are_mirror_symmetric_and_clamping_works() -> None:
    rv = from_anatomical("upperarm01.L", [0.3, 0.5, -0.2])
    np.testing.assert_allclose(anatomical("upperarm01.R", mirror_rotvec(rv)), [0.3, 0.5, -0.2], atol=1e-12)
    wild = Pose(rotations={"lowerarm01.L": from_anatomical("lowerarm01.L", [-1.0, 0.0, 0.0]), "head": [3.0, 0.0, 0.0]})
    assert sorted(limit_violations(wild)) == ["head", "lowerarm01.L"]
    tame = clamp_pose(wild)
    assert limit_violations(tame) == []
    assert anatomical("head", tame.rotations["head"])[0] == pytest.approx(JOINT_LIMITS["head"][0, 1])


# ---- posed body: signs of the anatomical axes, grounding, no explosions --------------------
@pytest.fixture(scope="module")
def body():
    pytest.importorskip("anny")
    from render.body import get_body_model

    return get_body_model()


def _joints(body, pose):
    return body.pose(None, pose).joints3d()


def test_anatomical_axes_move_limbs_the_anatomical_way(body) -> None:
    r = body.pose(None).joints3d()

    def moved(bone, comps):
        return _joints(body, Pose(rotations={bone: from_anatomical(bone, comps)}))

    for side, sx in (("L", 1), ("R", -1)):
        s = "left" if side == "L" else "right"
        j = moved(f"upperleg01.{side}", [1.2, 0, 0])  # hip flexion: knee forward and up
        assert j[f"{s}_knee"][1] < r[f"{s}_knee"][1] - 0.2 and j[f"{s}_knee"][2] > r[f"{s}_knee"][2] + 0.1
        j = moved(f"lowerleg01.{side}", [-1.2, 0, 0])  # knee flexion: ankle backwards
        assert j[f"{s}_ankle"][1] > r[f"{s}_ankle"][1] + 0.2
        j = moved(f"lowerarm01.{side}", [1.3, 0, 0])  # elbow flexion: wrist forward and up
        assert j[f"{s}_wrist"][1] < r[f"{s}_wrist"][1] - 0.05 and j[f"{s}_wrist"][2] > r[f"{s}_wrist"][2] + 0.1
        j = moved(f"upperarm01.{side}", [0, 1.2, 0])  # abduction: elbow outwards and up
        assert sx * j[f"{s}_elbow"][0] > sx * r[f"{s}_elbow"][0] and j[f"{s}_elbow"][2] > r[f"{s}_elbow"][2] + 0.1
        # finger curl: in the rest A-pose the palms face the thighs, so curling fingers
        # brings the fingertips towards the body's midline and closer to the wrist
        curl = {f"finger{f}-{k}.{side}": from_anatomical(f"finger{f}-{k}.{side}", [0.9, 0, 0]) for f in range(2, 6) for k in (1, 2, 3)}
        b0, b1 = body.pose(None), body.pose(None, Pose(rotations=curl))
        tip = b0.bone_index(f"finger3-3.{side}")
        wrist = b0.bone_index(f"wrist.{side}")
        assert sx * b1.bone_tails[tip][0] < sx * b0.bone_tails[tip][0] - 0.01
        assert np.linalg.norm(b1.bone_tails[tip] - b1.bone_heads[wrist]) < np.linalg.norm(b0.bone_tails[tip] - b0.bone_heads[wrist]) - 0.02
    j = moved("spine03", [0.4, 0, 0])  # trunk flexion: head forward
    assert j["head"][1] < r["head"][1] - 0.1


def test_sampled_poses_stand_on_the_floor_without_exploding(body) -> None:
    from render.body import sample_phenotype

    rng = np.random.default_rng(21)
    for kind in POSE_KINDS:
        ph = sample_phenotype(rng)
        b = body.pose(ph, sample_pose(rng, kind))
        rest_height = b.rest_vertices[:, 2].max()
        v = b.vertices
        assert v[:, 2].min() == pytest.approx(0.0, abs=1e-9)
        assert 0.35 * rest_height < v[:, 2].max() < 1.35 * rest_height, kind
        assert np.linalg.norm(v - b.bone_heads[0], axis=1).max() < 0.95 * rest_height, kind
        # the skin stays attached: no long edges; linear blend skinning does stretch a few
        # small crotch/armpit edges (up to ~8x in a deep crouch), so bound the bulk of them
        e = np.linalg.norm(v[b.faces[:, 0]] - v[b.faces[:, 1]], axis=1)
        e0 = np.linalg.norm(b.rest_vertices[b.faces[:, 0]] - b.rest_vertices[b.faces[:, 1]], axis=1)
        assert e.max() < 0.1, kind
        assert np.percentile(e / e0, 99.9) < 3.0, kind
        j = b.joints3d()
        feet = min(j["left_foot"][2], j["right_foot"][2], j["left_ankle"][2], j["right_ankle"][2])
        if kind not in ("leg_raised",):
            assert feet < 0.15, kind


def test_ungrounded_pose_keeps_its_translation(body) -> None:
    r = body.pose(None)
    b = body.pose(None, Pose(root_translation=[0.1, -0.2, 0.3], grounded=False))
    np.testing.assert_allclose(b.vertices, r.vertices + [0.1, -0.2, 0.3], atol=1e-9)
    g = body.pose(None, Pose(root_translation=[0.1, -0.2, 0.3]))
    np.testing.assert_allclose(g.vertices, r.vertices + [0.1, -0.2, 0.0], atol=1e-9)


# ---- BVH -------------------------------------------------------------------------------------
def test_bvh_reader_parses_the_test_clip() -> None:
    from render.bvh import load_bvh

    clip = load_bvh(CLIP)
    assert clip.n_frames == 3 and clip.motion.shape == (3, 6 + 3 * 20)
    assert clip.names[0] == "Hips" and clip.parents[0] == -1
    assert clip.names[clip.parents[clip.index("LeftForeArm")]] == "LeftArm"
    assert clip.frame_time == pytest.approx(1 / 30, rel=1e-5)
    rest = clip.global_transforms(None)[:, :3, 3]
    np.testing.assert_allclose(rest[clip.index("LeftHand")], [3 + 14 + 28 + 25, 95 + 12 + 16 + 18, 0.0])
    g = clip.global_transforms(1)  # forearm turned +90 about Z: hand straight above the elbow
    np.testing.assert_allclose(g[clip.index("LeftHand"), :3, 3] - g[clip.index("LeftForeArm"), :3, 3], [0, 25, 0], atol=1e-9)


def test_bvh_euler_channel_order_is_respected() -> None:
    from render.bvh import parse_bvh

    def clip(order: str, values: str):
        text = (
            "HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 3 " + order + "\n"
            "End Site\n{\nOFFSET 0 1 0\n}\n}\nMOTION\nFrames: 1\nFrame Time: 0.04\n" + values + "\n"
        )
        return parse_bvh(text).local_transforms(0)[0, :3, :3]

    def rot(axis: int, deg: float) -> np.ndarray:
        rv = np.zeros(3)
        rv[axis] = np.deg2rad(deg)
        return rotvec_to_matrix(rv)

    zxy = clip("Zrotation Xrotation Yrotation", "30 40 50")
    np.testing.assert_allclose(zxy, rot(2, 30) @ rot(0, 40) @ rot(1, 50), atol=1e-12)
    xyz = clip("Xrotation Yrotation Zrotation", "40 50 30")
    np.testing.assert_allclose(xyz, rot(0, 40) @ rot(1, 50) @ rot(2, 30), atol=1e-12)
    assert not np.allclose(zxy, xyz)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("", "end of file"),
        ("HIERARCHY\nROOT Hips\n{\nOFFSET 0 0\n}", "number"),
        ("HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 1 Wrotation\n}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0\n", "channel"),
        ("HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\n}\nMOTION\nFrames: 2\nFrame Time: 0.1\n0\n", "end of file"),
        ("HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\n}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0 1\n", "more motion"),
        ("HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nWHAT\n}\n", "unexpected"),
    ],
)
def test_malformed_bvh_is_a_clear_error(text: str, needle: str) -> None:
    from render.bvh import parse_bvh

    with pytest.raises(MaskelError, match=needle):
        parse_bvh(text)


def test_mocap_names_map_for_cmu_and_mixamo() -> None:
    names = ["Hips", "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot"]
    parents = [-1, 0, 1, 2, 3, 4, 5, 3, 7, 8, 9, 0, 11, 12, 13]
    m = {names[k]: v for k, v in mocap_to_anny(names, parents).items()}
    assert m["Hips"] == "root" and m["Head"] == "head" and m["LeftArm"] == "upperarm01.L"
    assert m["LowerBack"] == "spine05" and m["Spine1"].startswith("spine") and m["Neck"] == "neck01"
    assert m["LeftUpLeg"] == "upperleg01.L" and m["LeftLeg"] == "lowerleg01.L" and "LHipJoint" not in m
    mix = [f"mixamorig:{n}" for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightHandIndex1")]
    mp = [-1, 0, 1, 2, 3, 4, 3, 6, 7, 8, 9]
    m = {mix[k].split(":")[1]: v for k, v in mocap_to_anny(mix, mp).items()}
    assert m["Hips"] == "root" and m["Spine"] == "spine05" and m["Spine2"] in ("spine02", "spine01")
    assert m["RightForeArm"] == "lowerarm01.R" and m["RightHandIndex1"] == "finger2-1.R"


def test_bvh_retargeting_lands_bones_where_the_clip_puts_them(body) -> None:
    from render.bvh import clip_to_poses, load_bvh

    clip = load_bvh(CLIP)
    poses = clip_to_poses(clip, body=body)
    assert len(poses) == 3 and all(p.kind == "mocap" for p in poses)
    j0, j1, j2 = (_joints(body, p) for p in poses)
    rest = body.pose(None).joints3d()
    # frame 0 is the clip's T-pose: arms horizontal, straight out to the sides
    for s, sx in (("left", 1), ("right", -1)):
        for part in ("elbow", "wrist", "hand"):
            assert j0[f"{s}_{part}"][2] == pytest.approx(j0[f"{s}_shoulder"][2], abs=0.03)
        assert sx * (j0[f"{s}_wrist"][0] - j0[f"{s}_elbow"][0]) > 0.2
        # the clip's legs are straight and vertical (anny's rest legs are slightly splayed)
        for part in ("knee", "ankle"):
            np.testing.assert_allclose(j0[f"{s}_{part}"][:2], j0[f"{s}_hip"][:2], atol=0.01)
        assert j0[f"{s}_knee"][2] == pytest.approx(rest[f"{s}_knee"][2], abs=0.03)
    # frame 1: left forearm turned 90 degrees about the clip's Z (forward) axis: points straight up
    up = j1["left_wrist"] - j1["left_elbow"]
    assert up[2] / np.linalg.norm(up) > 0.98
    np.testing.assert_allclose(j1["left_elbow"], j0["left_elbow"], atol=1e-6)
    np.testing.assert_allclose(j1["right_wrist"], j0["right_wrist"], atol=1e-6)
    # frame 2: right hip flexed 90 degrees (thigh straight forward) and hips moved forward
    thigh = j2["right_knee"] - j2["right_hip"]
    assert -thigh[1] / np.linalg.norm(thigh) > 0.98
    shift = j2["left_knee"] - j0["left_knee"]
    assert shift[1] < -0.05 and abs(shift[0]) < 1e-6  # the clip's +Z (forward) is the world's -Y
    # the same clip with Mixamo names and another Euler order for the untouched joints retargets the same
    text = CLIP.read_text()
    for name in clip.names:
        text = text.replace(f"ROOT {name}\n", f"ROOT mixamorig:{name}\n").replace(f"JOINT {name}\n", f"JOINT mixamorig:{name}\n")
    from render.bvh import parse_bvh

    mix = clip_to_poses(parse_bvh(text), frames=[1], body=body)[0]
    np.testing.assert_allclose(_joints(body, mix)["left_wrist"], j1["left_wrist"], atol=1e-9)


def test_bvh_clip_without_a_recognisable_skeleton_is_an_error(body) -> None:
    from render.bvh import clip_to_poses, parse_bvh

    text = "HIERARCHY\nROOT Thing\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\nEnd Site\n{\nOFFSET 0 1 0\n}\n}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0 0 0\n"
    with pytest.raises(MaskelError, match="hips"):
        clip_to_poses(parse_bvh(text), body=body)
