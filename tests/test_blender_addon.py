"""The add-on inside real Blender: Debian's blender 3.4 (legacy zip) and the bpy 4.5 wheel (extension zip).

Each Blender kind runs tests/blender/addon_scenario.py once (install from the built zip, add + pose
the mannequin, Generate X-ray against the real `maskel serve`, error cases, save a .blend); the tests
below assert on the JSON it prints, then run batch.py on the saved .blend.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests._addon_helpers import (
    REPO,
    blender_env,
    blender_exe,
    box_mannequin,
    bpy_python,
    results,
    run_in_blender,
)

pytestmark = pytest.mark.blender
KINDS = ["blender", "bpy"]
MARGIN_PX = 2
FRAME_CORNERS = [0, 0, 1, 0, 1, 1, 0, 1]  # world_to_camera_view of the plane's four corners


def _flat(uv: list[list[float]]) -> list[float]:
    return [c for p in uv for c in p]  # maskel.infer's documented dilation of the silhouette (DEFAULT_MARGIN_PX)


@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("addon_build")
    proc = subprocess.run([sys.executable, str(REPO / "blender_addon" / "build.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    legacy, extension = (Path(p) for p in proc.stdout.split())
    return legacy, extension


def test_build_writes_both_archives(zips):
    legacy, extension = zips
    assert re.fullmatch(r"maskel_xray-\d+\.\d+\.\d+-legacy\.zip", legacy.name)
    with zipfile.ZipFile(legacy) as z:
        names = z.namelist()
        assert "maskel_xray/__init__.py" in names and "maskel_xray/batch.py" in names
        assert "maskel_xray/core/client.py" in names
        assert not any("blender_manifest" in n or "__pycache__" in n or n.endswith("build.py") for n in names)
        assert "bl_info" in z.read("maskel_xray/__init__.py").decode()
    with zipfile.ZipFile(extension) as z:
        names = z.namelist()
        assert "blender_manifest.toml" in names and "__init__.py" in names and "core/rigs.py" in names
        manifest = z.read("blender_manifest.toml").decode()
    assert 'id = "maskel_xray"' in manifest and 'blender_version_min = "4.2.0"' in manifest
    version = legacy.name.split("-")[1]
    assert f'version = "{version}"' in manifest


def _require(kind: str) -> None:
    if kind == "blender" and not blender_exe():
        pytest.skip("Debian blender not found (set MASKEL_BLENDER)")
    if kind == "bpy" and not bpy_python():
        pytest.skip("bpy wheel venv not found at .venv-bpy (set MASKEL_BPY_PYTHON)")


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
def scenario(request, zips, maskel_server, mannequin_source, tiny_checkpoint, tmp_path_factory):
    kind = request.param
    _require(kind)
    home = tmp_path_factory.mktemp(f"home_{kind}")
    blend = home / "scene.blend"
    proc = run_in_blender(kind, "addon_scenario.py", [
        "--legacy-zip", str(zips[0]), "--extension-zip", str(zips[1]), "--server", maskel_server,
        "--down-url", "http://127.0.0.1:9", "--mannequin", mannequin_source, "--work", str(home / "work"),
        "--save-blend", str(blend), "--margin", str(MARGIN_PX + 1),
        "--host-python", sys.executable, "--checkpoint", str(tiny_checkpoint),
    ], home, timeout=600)  # fmt: skip
    res = results(proc)
    assert proc.returncode == 0, f"{kind} scenario failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return {"kind": kind, "home": home, "blend": blend, "server": maskel_server, **res}


def test_installs_from_the_built_zip(scenario):
    if scenario["kind"] == "blender":
        assert scenario["installed"] == "maskel_xray" and scenario["blender"][:2] == [3, 4]
    else:
        assert scenario["installed"] == "bl_ext.user_default.maskel_xray" and scenario["blender"][:2] >= [4, 2]
    assert scenario["addon_file"].startswith(str(scenario["home"]))  # the installed copy, not the source tree


def test_mannequin_is_rigged_and_skinned(scenario):
    assert scenario["mannequin_op"] == ["FINISHED"]
    assert scenario["mannequin_bones"] >= 17 and scenario["vertex_groups"] >= 17
    assert scenario["mannequin_verts"] > 100 and scenario["armature_modifier"]


def test_generate_puts_a_plane_exactly_on_the_camera_frame(scenario):
    assert scenario["generate"] == ["FINISHED"]
    assert _flat(scenario["plane_uv"]) == pytest.approx(FRAME_CORNERS, abs=1e-5)
    assert scenario["plane_parent"] == "ShotCam"
    assert scenario["background"] == ["MaSkel X-ray ShotCam"]
    assert scenario["image_size"] == [256, 192]  # 640x480 frame aspect, long side = resolution


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


def test_rig_joints_are_sent_and_project_inside_the_body(scenario):
    assert scenario["rig"] == "maskel_mannequin" and scenario["n_joints"] == 22
    assert scenario["joints_inside"] == {"pelvis": True, "chest": True, "head": True}


def test_front_and_side_cameras_in_one_click(scenario):
    assert scenario["create_cameras"] == ["FINISHED"] and scenario["generate_two"] == ["FINISHED"]
    assert scenario["xcam_types"] == ["ORTHO", "ORTHO"]
    for view in ("front", "side"):
        assert _flat(scenario["xcam_plane_uv"][view]) == pytest.approx(FRAME_CORNERS, abs=1e-5)


def test_clear_error_messages(scenario):
    e = scenario["errors"]
    assert e["no_camera"].startswith("no camera")
    assert "outside the view of camera 'AwayCam'" in e["outside_view"]
    assert "no MaSkel server" in e["server_down"] and "maskel serve" in e["server_down"]
    assert e["empty_mask"].startswith("empty mask")
    assert "outside the view" in e["operator"]
    assert all("Traceback" not in m for m in e.values())


def test_preferences_start_and_stop_a_local_server(scenario):
    assert scenario["local_server"] == ["FINISHED"]
    assert scenario["local_url"].startswith("http://127.0.0.1:") and scenario["local_health"]
    assert scenario["after_disable"] == "unreachable"  # disabling the add-on stopped the child process


def _batch(scenario, batch_py: str, out: Path, frames: str, server: str) -> subprocess.CompletedProcess:
    args = ["--frames", frames, "--out", str(out), "--server", server, "--resolution", "128"]
    if scenario["kind"] == "blender":
        cmd = [blender_exe(), "-b", str(scenario["blend"]), "--factory-startup", "--python-exit-code", "1",
               "-P", batch_py, "--", *args]  # fmt: skip
    else:
        cmd = [bpy_python(), batch_py, "--", "--blend", str(scenario["blend"]), *args]
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
