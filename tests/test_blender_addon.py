"""The add-on inside real Blender: Debian's blender 3.4 (installed as a legacy add-on) and the bpy 4.5 and
5.0 wheels (installed as an extension), all from the same built zip.

Each Blender kind runs tests/blender/addon_scenario.py once (install from the built zip, add + pose
the mannequin, Generate X-ray against the real `maskel serve`, error cases, save a .blend); the tests
below assert on the JSON it prints, then run batch.py on the saved .blend.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests._addon_helpers import (
    BPY_VENVS,
    REPO,
    blender_env,
    blender_exe,
    box_mannequin,
    bpy_python,
    repo_python,
    results,
    run_in_blender,
    run_in_blender_ui,
)

pytestmark = pytest.mark.blender
KINDS = ["blender", "bpy", "bpy5"]
MARGIN_PX = 2
FRAME_CORNERS = [0, 0, 1, 0, 1, 1, 0, 1]  # world_to_camera_view of the overlay picture's four corners


def _flat(uv: list[list[float]]) -> list[float]:
    return [c for p in uv for c in p]  # maskel.infer's documented dilation of the silhouette (DEFAULT_MARGIN_PX)


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("addon_build")
    proc = subprocess.run([sys.executable, str(REPO / "blender_addon" / "build.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def test_build_writes_one_archive_for_every_version(addon_zip):
    m = re.fullmatch(r"maskel_xray-(\d+\.\d+\.\d+)\.zip", addon_zip.name)
    assert m
    with zipfile.ZipFile(addon_zip) as z:
        names = z.namelist()
        assert all(n.startswith("maskel_xray/") for n in names)  # one top folder: nothing scattered on install
        assert {"maskel_xray/__init__.py", "maskel_xray/batch.py", "maskel_xray/core/client.py",
                "maskel_xray/blender_manifest.toml"} <= set(names)  # fmt: skip
        assert not any("__pycache__" in n or n.endswith("build.py") for n in names)
        assert "bl_info" in z.read("maskel_xray/__init__.py").decode()
        manifest = z.read("maskel_xray/blender_manifest.toml").decode()
    assert 'id = "maskel_xray"' in manifest and 'blender_version_min = "4.2.0"' in manifest
    assert f'version = "{m.group(1)}"' in manifest


def _require(kind: str) -> None:
    if kind == "blender" and not blender_exe():
        pytest.skip("Debian blender not found (set MASKEL_BLENDER)")
    if kind != "blender" and not bpy_python(kind):
        venv, var = BPY_VENVS[kind]
        pytest.skip(f"bpy wheel venv not found at {venv} (set {var})")


@pytest.fixture(scope="module")
def mannequin_source(maskel_server, tmp_path_factory) -> str:
    """'server' (the anny mannequin from GET /v1/mannequin); a box-figure JSON file of the same format
    only where render.mannequin is not installed."""
    import importlib.util

    from blender_addon.core.client import MaskelClient, ServerError

    try:
        data = MaskelClient(maskel_server, timeout=300).mannequin()
        assert len(data["vertices"]) > 1000 and data["joint_map"]
        return "server"
    except ServerError:
        if importlib.util.find_spec("render.mannequin") is not None:
            raise
        path = tmp_path_factory.mktemp("mannequin") / "box_mannequin.json"
        path.write_text(json.dumps(box_mannequin()))
        return str(path)


@pytest.fixture(scope="module", params=KINDS)
def scenario(request, addon_zip, maskel_server, mannequin_source, tiny_checkpoint, tmp_path_factory):
    kind = request.param
    _require(kind)
    home = tmp_path_factory.mktemp(f"home_{kind}")
    blend = home / "scene.blend"
    proc = run_in_blender(kind, "addon_scenario.py", [
        "--zip", str(addon_zip), "--server", maskel_server,
        "--down-url", "http://127.0.0.1:9", "--mannequin", mannequin_source, "--work", str(home / "work"),
        "--save-blend", str(blend), "--margin", str(MARGIN_PX + 1),
        "--host-python", repo_python(home), "--checkpoint", str(tiny_checkpoint),
        *(["--skeleton"] if mannequin_source == "server" else []),
    ], home, timeout=900)  # fmt: skip
    res = results(proc)
    assert proc.returncode == 0, f"{kind} scenario failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return {"kind": kind, "home": home, "blend": blend, "server": maskel_server, **res}


def test_installs_from_the_built_zip(scenario):
    if scenario["kind"] == "blender":
        assert scenario["installed"] == "maskel_xray" and scenario["blender"][:2] == [3, 4]
    else:
        assert scenario["installed"] == "bl_ext.user_default.maskel_xray"
        assert scenario["blender"][:2] == ([4, 5] if scenario["kind"] == "bpy" else [5, 0])
    assert scenario["addon_file"].startswith(str(scenario["home"]))  # the installed copy, not the source tree
    assert scenario["install_dir"] == ["maskel_xray"]  # one folder, no files scattered over the add-ons folder


def test_mannequin_is_rigged_and_skinned(scenario):
    assert scenario["mannequin_op"] == ["FINISHED"]
    assert scenario["mannequin_bones"] >= 17 and scenario["vertex_groups"] >= 17
    assert scenario["mannequin_verts"] > 100 and scenario["armature_modifier"]


def test_generate_shows_an_image_empty_exactly_on_the_camera_frame(scenario):
    assert scenario["generate"] == ["FINISHED"]
    ov = scenario["overlay"]
    # Blender's reference image: drawn in Solid view (and every other shading) with no setting changed.
    assert ov["type"] == "EMPTY" and ov["display"] == "IMAGE" and ov["image"] == "MaSkel X-ray ShotCam"
    assert ov["visible"] and not ov["hide_viewport"] and ov["persp"] and ov["ortho"]
    assert ov["depth"] == "FRONT" and ov["use_alpha"] and ov["alpha"] == pytest.approx(0.8)
    assert _flat(scenario["overlay_uv"]) == pytest.approx(FRAME_CORNERS, abs=1e-5)
    assert scenario["overlay_parent"] == "ShotCam"
    assert scenario["background"] == ["MaSkel X-ray ShotCam"]
    assert scenario["image_size"] == [256, 192]  # 640x480 frame aspect, long side = resolution


@pytest.mark.parametrize("change", ["aspect", "lens", "shift", "sensor", "moved"])
def test_overlay_refits_when_the_camera_changes(scenario, change):
    assert _flat(scenario["refit_uv"][change]) == pytest.approx(FRAME_CORNERS, abs=1e-5)


def test_opacity_and_in_front_toggle(scenario):
    d = scenario["display_changed"]
    assert d["alpha"] == pytest.approx(0.35) and d["depth"] == "BACK"
    assert scenario["background_alpha"] == [pytest.approx(0.8)]  # restored with the slider


def test_render_settings_and_hide_flags_are_restored(scenario):
    assert scenario["restored"], scenario["diff"]
    assert scenario["restored_on_error"]
    assert scenario["restored_after_error"]


def test_silhouette_is_binary_and_xray_stays_inside_it(scenario):
    assert scenario["mask_partial"] == 0  # alpha exactly 0/1
    assert scenario["mask_body"] > 500
    assert scenario["mask_size"] == scenario["xray_size"]
    assert scenario["xray_nonzero"] > 0.5 * scenario["mask_body"]
    assert scenario["xray_outside"] == 0  # none farther than MARGIN_PX (+1 for resampling) from the body
    assert scenario["thread_error"] is None and scenario["thread_done"] == 1


def test_progress_moves_through_real_stages(scenario):
    stages = scenario["progress_stages"]
    names = [s for s, _ in stages]
    assert names[0] == "queued" and names[-1] == "done" and stages[-1][1] == 1.0
    assert names[1] == "sending the silhouette"  # the silhouette was rendered by prepare()
    assert "waiting for the server (ShotCam)" in names and "received the X-ray for ShotCam" in names
    assert [p for _, p in stages] == sorted(p for _, p in stages)  # never goes back
    assert 0 < stages[1][1] < 1  # not 0 % until the end


def test_rig_joints_are_sent_and_project_inside_the_body(scenario):
    assert scenario["rig"] == "maskel_mannequin" and scenario["n_joints"] == 22
    assert scenario["joints_inside"] == {"pelvis": True, "chest": True, "head": True}


def test_front_and_side_cameras_in_one_click(scenario):
    assert scenario["create_cameras"] == ["FINISHED"] and scenario["generate_two"] == ["FINISHED"]
    assert scenario["xcam_types"] == ["ORTHO", "ORTHO"]
    for view in ("front", "side"):
        assert _flat(scenario["xcam_overlay_uv"][view]) == pytest.approx(FRAME_CORNERS, abs=1e-5)


def test_clear_error_messages(scenario):
    e = scenario["errors"]
    assert e["no_camera"].startswith("no camera")
    assert "outside the view of camera 'AwayCam'" in e["outside_view"]
    assert "no MaSkel server" in e["server_down"] and "maskel serve" in e["server_down"]
    assert "not in view layer" in e["excluded"] and e["excluded"].startswith("MaSkel Mannequin Body")
    assert "beyond the clip end of camera 'ShotCam'" in e["clip_end"] and "Clip End" in e["clip_end"]
    assert "outside the view" in e["operator"]
    assert e["no_sr"].startswith("no_super_resolution: ") and "--sr" in e["no_sr"]
    assert all("Traceback" not in m for m in e.values())


def test_a_body_hidden_from_render_is_xrayed_on_purpose(scenario):
    assert scenario["hidden_collection_mask"] > 500 and scenario["hidden_collection_restored"]


def test_no_temporary_folder_is_left_behind(scenario):
    assert scenario["leftover_temp"] == []  # after successes, errors, a server that is down and live mode


def test_clothing_filter_matches_whole_words(scenario):
    assert scenario["clothing_is_body"] == {"Bradley": True, "Bra_01": False, "Female_Casualsuit01": False,
                                            "Shoes.L": False, "Hairband Mesh": True}  # fmt: skip


def test_live_mode_follows_the_pose_one_request_at_a_time(scenario):
    assert scenario["live_first"] and scenario["live_errors"] is None
    assert scenario["live_updates"] >= 6  # the first X-ray + one per pose change
    assert scenario["live_idle_extra"] == 0  # nothing changed: nothing requested
    assert scenario["live_in_flight"] and scenario["live_dropped"] == 1  # switched off: its answer is dropped
    assert scenario["live_images"] == 0  # each update replaces the image, none pile up
    assert scenario["live_timer_off"]


def test_add_skeleton_parents_bone_meshes_that_follow_the_rig(scenario):
    if "skeleton_op" not in scenario:
        pytest.skip("the server cannot build the phantom here (render extras missing)")
    assert scenario["skeleton_op"] == ["FINISHED"]
    assert scenario["skeleton_objects"] >= 100 and scenario["skeleton_parented"] == scenario["skeleton_objects"]
    assert scenario["humerus_parent"] == "upperarm01.L"
    assert scenario["humerus_moved"] > 0.05  # rotating the upper arm moves the humerus...
    assert scenario["humerus_in_bone_drift"] < 1e-4  # ...rigidly with the bone
    assert scenario["humerus_off_axis"] < 0.03  # and unrotated it lies along the shoulder-elbow line
    assert not scenario["skeleton_in_body_list"]  # the bones are never taken for body meshes


def test_preferences_start_and_stop_a_local_server(scenario):
    assert scenario["local_server"] == ["FINISHED"]
    assert scenario["local_url"].startswith("http://127.0.0.1:") and scenario["local_health"]
    assert scenario["after_disable"] == "unreachable"  # disabling the add-on stopped the child process


@pytest.fixture(scope="module")
def ui_run(addon_zip, maskel_server, mannequin_source, tmp_path_factory) -> dict:
    """tests/blender/ui_scenario.py in Blender 3.4's real UI under Xvfb (software OpenGL)."""
    if not blender_exe() or not shutil.which("xvfb-run"):
        pytest.skip("needs Debian blender and xvfb-run")
    home = tmp_path_factory.mktemp("home_ui")
    out = home / "out"
    out.mkdir()
    proc = run_in_blender_ui("ui_scenario.py", [
        "--zip", str(addon_zip), "--server", maskel_server, "--mannequin", mannequin_source, "--out", str(out),
        "--live-seconds", "4", *(["--skeleton"] if mannequin_source == "server" else []),
    ], home)  # fmt: skip
    path = out / "ui_results.json"
    assert path.is_file(), f"no results:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    res = json.loads(path.read_text())
    assert "error" not in res, res.get("error")
    return {**res, "out": out}


def _changed_fraction(a: Path, b: Path) -> float:
    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.int16)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=np.int16)
    return float((np.abs(x - y).sum(axis=-1) > 30).mean())


def test_ui_generate_shows_the_xray_in_solid_view_at_once(ui_run):
    assert ui_run["generate_invoke"] == ["RUNNING_MODAL"] and ui_run["generate_message"].startswith("done")
    assert ui_run["overlay"] == {"type": "EMPTY", "display": "IMAGE", "image": "MaSkel X-ray ShotCam",
                                 "shading": "SOLID", "depth": "FRONT"}  # fmt: skip
    out = ui_run["out"]
    # What the viewport shows with the overlay vs the same view with only the overlay hidden.
    assert _changed_fraction(out / "addon_solid_after_generate.png", out / "overlay_hidden.png") > 0.2
    assert _changed_fraction(out / "addon_behind_opacity45.png", out / "addon_solid_after_generate.png") > 0.05


def test_ui_live_mode_follows_a_moving_bone(ui_run):
    off, on = ui_run["jitter_live_off"], ui_run["jitter_live_on"]
    assert off["live_updates"] == 0 and on["live_updates"] >= 2 and on["live_error"] is None
    assert on["probe_calls"] >= 3 and on["interval_mean_ms"] is not None  # measured, reported in the note


def test_ui_add_skeleton_runs_from_the_button(ui_run):
    if "skeleton_message" not in ui_run:
        pytest.skip("the server cannot build the phantom here (render extras missing)")
    assert ui_run["skeleton_objects"] >= 100 and ui_run["skeleton_message"].startswith("skeleton: ")


def test_add_skeleton_on_mixamo_and_rigify_rigs_built_in_blender(scenario):
    if "other_rigs" not in scenario:
        pytest.skip("the server cannot build the phantom here (render extras missing)")
    rigs = scenario["other_rigs"]
    mixamo = rigs["mixamo"]
    assert mixamo["rig"] == "mixamo" and mixamo["joints"] == 22 and mixamo["op"] == ["FINISHED"]
    assert mixamo["bones"] >= 100 and mixamo["parented"] == mixamo["bones"]
    assert mixamo["humerus_bone"] == "mixamorig:LeftArm"
    if "rigify_missing" in rigs:
        pytest.skip(f"no Rigify in this Blender: {rigs['rigify_missing']}")
    rigify = rigs["rigify"]
    assert rigify["rig"] == "rigify_metarig" and rigify["joints"] >= 20 and rigify["op"] == ["FINISHED"]
    assert rigify["bones"] >= 100 and rigify["parented"] == rigify["bones"]
    assert rigify["humerus_bone"] == "upper_arm.L"


def _batch(scenario, batch_py: str, out: Path, frames: str, server: str) -> subprocess.CompletedProcess:
    args = ["--frames", frames, "--out", str(out), "--server", server, "--resolution", "128"]
    if scenario["kind"] == "blender":
        cmd = [blender_exe(), "-b", str(scenario["blend"]), "--factory-startup", "--python-exit-code", "1",
               "-P", batch_py, "--", *args]  # fmt: skip
    else:
        cmd = [bpy_python(scenario["kind"]), batch_py, "--", "--blend", str(scenario["blend"]), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=blender_env(scenario["home"]))


def test_batch_from_the_installed_addon_writes_one_xray_per_frame(scenario, tmp_path):
    proc = _batch(scenario, str(Path(scenario["addon_dir"]) / "batch.py"), tmp_path, "1-3", scenario["server"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("xray_*.png")) == [f"xray_ShotCam_000{i}.png" for i in (1, 2, 3)]
    assert len(list(tmp_path.glob("mask_*.png"))) == 3
    assert "maskel batch: 3/3 frames" in proc.stdout
    masks = {p.read_bytes() for p in tmp_path.glob("mask_*.png")}
    assert len(masks) == 3  # the animated arm changes the silhouette per frame


def test_batch_from_source_tree_fails_in_one_line_when_server_is_down(scenario, tmp_path):
    proc = _batch(scenario, str(REPO / "blender_addon" / "batch.py"), tmp_path, "1-3", "http://127.0.0.1:9")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("maskel batch:")]
    assert len(lines) == 1 and "no MaSkel server" in lines[0] and "maskel serve" in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not list(tmp_path.glob("xray_*.png"))


def test_batch_rejects_bad_frames(scenario, tmp_path):
    proc = _batch(scenario, str(REPO / "blender_addon" / "batch.py"), tmp_path, "5-1", scenario["server"])
    assert proc.returncode == 2 and "end before start" in proc.stderr and "Traceback" not in proc.stderr
