"""Plain-pytest tests of the add-on's bpy-free core (blender_addon/core)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from blender_addon.core import camera, frames, rigs
from blender_addon.core.client import BUSY_RETRIES, MaskelClient, ServerError
from blender_addon.core.clothing import is_clothing_name, name_words
from blender_addon.core.localserver import LocalServer, free_port
from blender_addon.core.pngsize import png_size
from blender_addon.core.skeleton import decode_bones, segment_bone


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- frames


@pytest.mark.parametrize(
    "text,expected",
    [("1-4", [1, 2, 3, 4]), ("1,3,5-7", [1, 3, 5, 6, 7]), ("12", [12]), ("3, 1-2 ,2", [1, 2, 3]),
     ("-2-1", [-2, -1, 0, 1]), ("-5", [-5])],
)  # fmt: skip
def test_parse_frames(text, expected):
    assert frames.parse_frames(text) == expected


@pytest.mark.parametrize("text", ["", "1-", "a", "5-3", "1,,2", "1-2-3", "0-1000000"])
def test_parse_frames_rejects(text):
    with pytest.raises(ValueError):
        frames.parse_frames(text)


# ---------------------------------------------------------------- camera maths


def test_perspective_frame_known_values():
    cam = camera.CameraParams("PERSP", lens=50, sensor_width=36, res_x=1920, res_y=1080)
    bl, br, tr, tl = camera.frame_corners(cam, 2.0)
    assert br[0] == pytest.approx(2.0 * 18 / 50)  # half sensor / focal length * depth
    assert tr[1] == pytest.approx(2.0 * 18 / 50 * 1080 / 1920)
    assert bl[2] == tl[2] == -2.0
    # Vertical fit uses the sensor height along y.
    cam_v = camera.CameraParams("PERSP", lens=35, sensor_height=24, sensor_fit="VERTICAL", res_x=1000, res_y=500)
    _, _, tr, _ = camera.frame_corners(cam_v, 1.0)
    assert tr[1] == pytest.approx(12 / 35)
    assert tr[0] == pytest.approx(2 * 12 / 35)
    # AUTO fit on a portrait frame fits the sensor width to the height.
    cam_p = camera.CameraParams("PERSP", lens=50, sensor_width=36, res_x=500, res_y=1000)
    _, _, tr, _ = camera.frame_corners(cam_p, 1.0)
    assert tr[1] == pytest.approx(18 / 50)


@pytest.mark.parametrize(
    "cam",
    [
        camera.CameraParams("PERSP", lens=35, res_x=640, res_y=480, shift_x=0.1, shift_y=-0.2),
        camera.CameraParams("PERSP", lens=85, sensor_fit="VERTICAL", res_x=300, res_y=700, aspect_x=2.0),
        camera.CameraParams("ORTHO", ortho_scale=3.0, res_x=256, res_y=512, shift_x=-0.3),
        camera.CameraParams("ORTHO", ortho_scale=2.5, res_x=512, res_y=256, sensor_fit="VERTICAL"),
    ],
)
def test_corners_project_to_frame_corners(cam):
    for depth in (0.5, 3.0, 40.0):
        uv = [camera.project(cam, c)[:2] for c in camera.frame_corners(cam, depth)]
        np.testing.assert_allclose(uv, [(0, 0), (1, 0), (1, 1), (0, 1)], atol=1e-9)


def test_ortho_frame_is_depth_independent_and_scale_spans_long_side():
    cam = camera.CameraParams("ORTHO", ortho_scale=4.0, res_x=200, res_y=100)
    a, b = camera.frame_corners(cam, 1.0), camera.frame_corners(cam, 9.0)
    assert [c[:2] for c in a] == [c[:2] for c in b]
    assert a[1][0] - a[0][0] == pytest.approx(4.0)
    assert a[3][1] - a[0][1] == pytest.approx(2.0)


def test_project_pixels_and_visibility():
    cam = camera.CameraParams("PERSP", lens=50, res_x=200, res_y=100)
    uvd = camera.project(cam, (0.0, 0.0, -3.0))
    assert camera.to_pixels(cam, uvd) == pytest.approx((100.0, 50.0))
    assert uvd[2] == pytest.approx(3.0) and camera.in_frame(uvd)
    assert not camera.in_frame(camera.project(cam, (0.0, 0.0, 3.0)))  # behind the camera
    assert not camera.in_frame(camera.project(cam, (10.0, 0.0, -1.0)))


def test_bbox_view_overlap():
    cam = camera.CameraParams("ORTHO", ortho_scale=2.0, res_x=100, res_y=100)
    inside = [(x, y, -5.0) for x in (-0.5, 0.5) for y in (-0.5, 0.5)]
    assert camera.bbox_view_overlap(cam, inside) == pytest.approx(1.0)
    half = [(x, y, -5.0) for x in (0.0, 2.0) for y in (-0.5, 0.5)]
    assert camera.bbox_view_overlap(cam, half) == pytest.approx(0.5)
    outside = [(x + 10, y, -5.0) for x, y, _ in inside]
    assert camera.bbox_view_overlap(cam, outside) == 0.0
    assert camera.bbox_view_overlap(cam, [(0, 0, 5.0)]) == 0.0


def test_fit_ortho_frames_points():
    pts = [(-0.3, 0.0, -4), (0.3, 1.8, -4), (0.0, 0.9, -4)]
    scale, centre = camera.fit_ortho(pts, 256, 512, margin=0.1)
    assert centre[:2] == pytest.approx((0.0, 0.9))
    cam = camera.CameraParams("ORTHO", ortho_scale=scale, res_x=256, res_y=512)
    uvs = [camera.project(cam, (x - centre[0], y - centre[1], z)) for x, y, z in pts]
    assert all(camera.in_frame(u) for u in uvs)
    assert max(u[1] for u in uvs) == pytest.approx(1 - 0.1 / 1.2, abs=1e-6)  # tall side sets the scale


@pytest.mark.parametrize(
    "cam,size",
    [
        (camera.CameraParams("PERSP", lens=35, res_x=640, res_y=480, shift_x=0.1, shift_y=-0.2), (256, 192)),
        (camera.CameraParams("PERSP", lens=85, sensor_fit="VERTICAL", res_x=300, res_y=700, aspect_x=2.0), (110, 256)),
        (camera.CameraParams("ORTHO", ortho_scale=3.0, res_x=256, res_y=512, shift_x=-0.3), (128, 256)),
        (camera.CameraParams("PERSP", lens=50, res_x=800, res_y=480), (256, 192)),  # image made before an aspect change
    ],
)  # fmt: skip
def test_image_empty_fit_fills_the_frame(cam, size):
    for depth in (0.5, 4.0):
        loc, scale = camera.empty_fit(cam, depth, *size)
        corners = camera.empty_corners(loc, scale, *size)
        np.testing.assert_allclose(corners, camera.frame_corners(cam, depth), atol=1e-12)


def test_image_aspect_follows_blender():
    assert camera.image_aspect(256, 192) == (1.0, 0.75)
    assert camera.image_aspect(100, 200) == (0.5, 1.0)
    assert camera.image_aspect(64, 64) == (1.0, 1.0)


def test_unsupported_camera_type():
    with pytest.raises(ValueError, match="not supported"):
        camera.CameraParams("PANO")


# ---------------------------------------------------------------- rigs


def _bones_of(table: dict[str, list[str]], prefix: str = "") -> list[str]:
    """The bone names a rig would have: the first candidate of every joint."""
    return sorted({prefix + c[0].rpartition(":")[0] for c in table.values()})


@pytest.mark.parametrize("rig", sorted(rigs.RIG_TABLES))
def test_every_table_covers_all_joints(rig):
    table = rigs.RIG_TABLES[rig]
    assert set(table) == set(rigs.CANONICAL_JOINTS)
    assert all(c.rpartition(":")[2] in ("head", "tail") for cands in table.values() for c in cands)


@pytest.mark.parametrize("rig", ["makehuman", "rigify_def", "rigify_org", "mixamo"])
def test_detect_rig(rig):
    name, found = rigs.detect_rig(_bones_of(rigs.RIG_TABLES[rig]) + ["some_extra_bone"])
    assert name == rig
    assert set(found) == set(rigs.CANONICAL_JOINTS)


def test_detect_mixamo_namespaced_and_sides():
    bones = _bones_of(rigs.MIXAMO, "mixamorig:")
    name, found = rigs.detect_rig(bones)
    assert name == "mixamo"
    assert found["left_elbow"] == ("mixamorig:LeftForeArm", "head")
    assert found["right_knee"] == ("mixamorig:RightLeg", "head")
    assert found["head_top"] == ("mixamorig:HeadTop_End", "head")


def test_detect_cmu_and_fallbacks():
    bones = ["Hips", "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head"]
    for s in ("Left", "Right"):
        bones += [f"{s}HipJoint", f"{s}UpLeg", f"{s}Leg", f"{s}Foot", f"{s}ToeBase",
                  f"{s}Shoulder", f"{s}Arm", f"{s}ForeArm", f"{s}Hand", f"{s}FingerBase"]  # fmt: skip
    name, found = rigs.detect_rig(bones)
    assert name == "cmu"
    assert found["spine"] == ("LowerBack", "tail") and found["left_hand"] == ("LeftFingerBase", "head")
    # A rig without finger/toe bones falls back to the tails of hand and foot.
    name, found = rigs.detect_rig([b for b in _bones_of(rigs.RIGIFY_DEF) if "toe" not in b])
    assert name == "rigify_def" and found["left_foot"] == ("DEF-foot.L", "tail")


def test_unknown_rig_is_not_recognised():
    assert rigs.detect_rig(["Bone", "Bone.001", "Bone.002"]) == (None, {})
    assert rigs.detect_rig(_bones_of(rigs.MIXAMO)[:8])[0] is None


def test_parse_joint_map():
    got = rigs.parse_joint_map({"pelvis": "hips:head", "head_top": "head:tail"}, ["hips", "head"])
    assert got == {"pelvis": ("hips", "head"), "head_top": ("head", "tail")}
    with pytest.raises(ValueError, match="unknown joint"):
        rigs.parse_joint_map({"tail": "hips:head"}, ["hips"])
    with pytest.raises(ValueError, match="existing"):
        rigs.parse_joint_map({"pelvis": "nope:head"}, ["hips"])


def test_pose_json_is_readable_by_the_package():
    from maskel.data.joints import joints_to_array

    pose = rigs.pose_json({"pelvis": (10.5, 20.25, 3.0, True), "left_knee": (12, 40, 3.1, False)}, 64, 48)
    arr = joints_to_array(json.loads(json.dumps(pose)))
    assert pose["width"] == 64 and pose["height"] == 48
    assert arr[0].tolist() == pytest.approx([10.5, 20.25, 3.0, 1.0])
    assert arr[rigs.CANONICAL_JOINTS.index("left_knee")].tolist() == pytest.approx([12, 40, 3.1, 0.0])


# ---------------------------------------------------------------- PNG size


def test_png_size():
    assert png_size(_png(np.zeros((7, 13), np.uint8))) == (13, 7)
    with pytest.raises(ValueError):
        png_size(b"GIF89a" + b"\0" * 30)


# ---------------------------------------------------------------- clothing names


@pytest.mark.parametrize(
    "name,clothing",
    [("Bradley", False), ("Bra_01", True), ("Female_Casualsuit01", True), ("TShirt.001", True), ("Shoes.L", True),
     ("eyelashes01", True), ("Glasses", True), ("Hairband", False), ("MyHairCap", True), ("Body", False),
     ("Shortcut_Body", False), ("mixamorig:Pants", True), ("Capsule", False), ("Hatsune", False)],
)  # fmt: skip
def test_clothing_words_are_whole_words(name, clothing):
    assert is_clothing_name([name]) is clothing


def test_name_words():
    assert name_words("Female_Casualsuit01") == ["female", "casualsuit"]
    assert name_words("TShirt.001") == ["t", "shirt"]
    assert name_words("myHairCap") == ["my", "hair", "cap"]


# ---------------------------------------------------------------- skeleton helpers


def test_segment_bone_for_known_rigs():
    mh = rigs.resolve(rigs.MAKEHUMAN, [b.split(":")[0] for c in rigs.MAKEHUMAN.values() for b in c])[0]
    assert segment_bone("left_shoulder", "left_elbow", mh) == "upperarm01.L"
    assert segment_bone("head", "head_top", mh) == "head"
    rigify = {"chest": ("DEF-spine.002", "tail"), "neck": ("DEF-spine.004", "head")}
    assert segment_bone("chest", "neck", rigify) == "DEF-spine.002"  # no bone starts there: the start's own bone
    mixamo = {"head": ("mixamorig:Head", "head"), "head_top": ("mixamorig:HeadTop_End", "head")}
    assert segment_bone("head", "head_top", mixamo) == "mixamorig:Head"
    assert segment_bone("left_knee", "left_ankle", {"left_ankle": ("shin.L", "tail")}) == "shin.L"
    assert segment_bone("left_knee", "left_ankle", {}) is None


def test_decode_bones_round_trip_and_errors():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], "<f4")
    f = np.array([[0, 1, 2]], "<u4")
    bone = {"name": "humerus_left", "segment": "left_upper_arm", "start": "left_shoulder", "end": "left_elbow",
            "vertices": base64.b64encode(v.tobytes()).decode(), "faces": base64.b64encode(f.tobytes()).decode()}  # fmt: skip
    (b,) = decode_bones({"bones": [bone]})
    assert b.vertices == [(0, 0, 0), (1, 0, 0), (0, 1, 0)] and b.faces == [(0, 1, 2)]
    bad = dict(bone, faces=base64.b64encode(np.array([[0, 1, 3]], "<u4").tobytes()).decode())
    with pytest.raises(ValueError, match="missing vertex"):
        decode_bones({"bones": [bad]})
    with pytest.raises(ValueError, match="bad vertices"):
        decode_bones({"bones": [dict(bone, vertices="***")]})
    with pytest.raises(ValueError, match="malformed"):
        decode_bones({"bones": [{"name": "x"}]})


# ---------------------------------------------------------------- client against a scripted HTTP peer


class _Peer(BaseHTTPRequestHandler):
    """Answers per the class attribute ``script``: path -> (status, body dict, delay[, headers]) or a
    list of those, answered in turn."""

    script: dict = {}
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).seen.append((self.command, self.path, dict(self.headers), body))
        answer = self.script.get(self.path, (404, {"error": "not_found", "message": "nope"}, 0))
        if isinstance(answer, list):  # a sequence of answers, the last one repeated
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        status, payload, delay, *headers = answer
        time.sleep(delay)
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers[0] if headers else {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        try:
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def peer():
    _Peer.script, _Peer.seen = {}, []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Peer)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_client_waits_out_a_busy_server_as_retry_after_says(peer):
    _, url = peer
    busy = (503, {"error": "busy", "message": "the request queue is full; retry shortly"}, 0, {"Retry-After": "1"})
    health = {"model": "m", "resolution": 64, "device": "cpu", "version": "1", "styles": ["radiograph"]}
    _Peer.script["/v1/health"] = [busy, busy, (200, health, 0)]
    t0 = time.monotonic()
    assert MaskelClient(url).health()["model"] == "m"
    assert len(_Peer.seen) == 3 and time.monotonic() - t0 >= 2.0
    _Peer.script["/v1/health"] = [busy]  # busy for good: the retries end and the user reads why
    with pytest.raises(ServerError, match="busy") as err:
        MaskelClient(url).health(timeout=10)
    assert err.value.code == "busy" and len(_Peer.seen) == 3 + 1 + BUSY_RETRIES
    _Peer.script["/v1/health"] = [(503, {"error": "unavailable", "message": "no render extras"}, 0)]
    with pytest.raises(ServerError, match="unavailable"):  # no Retry-After: not retried
        MaskelClient(url).health()
    assert len(_Peer.seen) == 3 + 1 + BUSY_RETRIES + 1


def test_client_sends_token_and_decodes_xray(peer):
    _, url = peer
    mask = _png(np.full((6, 9), 255, np.uint8))
    xray = _png(np.zeros((6, 9), np.uint16))
    _Peer.script["/v1/xray"] = (200, {"xray": base64.b64encode(xray).decode(), "labels": None, "width": 9,
                                      "height": 6, "style": "dxa", "timings": {"total_ms": 3}}, 0)  # fmt: skip
    res = MaskelClient(url, token="s3cret").xray(mask, joints={"width": 9, "height": 6, "joints": []}, style="dxa")
    assert res.xray_png == xray and (res.width, res.height) == (9, 6) and res.timings == {"total_ms": 3}
    method, path, headers, body = _Peer.seen[-1]
    assert (method, path) == ("POST", "/v1/xray")
    assert headers["Authorization"] == "Bearer s3cret"
    sent = json.loads(body)
    assert base64.b64decode(sent["mask"]) == mask and sent["style"] == "dxa" and sent["joints"]["width"] == 9


def test_client_rejects_wrong_size_reply(peer):
    _, url = peer
    _Peer.script["/v1/xray"] = (200, {"xray": base64.b64encode(_png(np.zeros((5, 5), np.uint8))).decode()}, 0)
    with pytest.raises(ServerError, match="5x5 X-ray for a 9x6 mask"):
        MaskelClient(url).xray(_png(np.full((6, 9), 255, np.uint8)))


@pytest.mark.parametrize(
    "status,payload,match",
    [(422, {"error": "empty_mask", "message": "the mask is empty"}, r"422 \(empty_mask\): the mask is empty"),
     (401, {"error": "unauthorized", "message": "bad token"}, "refused the token"),
     (503, {"error": "busy", "message": "queue full"}, r"503 \(busy\): queue full"),
     (500, {"error": "internal", "message": "see the log"}, r"500 \(internal\): see the log"),
     (502, b"<html>bad gateway</html>", r"another server answered at .* \(HTTP 502")],
)  # fmt: skip
def test_client_maps_error_json(peer, status, payload, match):
    _, url = peer
    _Peer.script["/v1/health"] = (status, payload, 0)
    with pytest.raises(ServerError, match=match) as e:
        MaskelClient(url).health()
    assert "\n" not in str(e.value) and e.value.status == status


def test_another_program_on_the_port_is_named_as_such(tmp_path):
    """Python's own file server answers GET with 404 and POST with 501: neither is 'server error 501'."""
    import functools
    from http.server import SimpleHTTPRequestHandler

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        for call in (lambda c: c.health(), lambda c: c.xray(_png(np.full((4, 4), 255, np.uint8)))):
            with pytest.raises(ServerError, match="another server answered at .*not a MaSkel server") as e:
                call(MaskelClient(url))
            assert e.value.code == "not_maskel" and "\n" not in str(e.value)
    finally:
        srv.shutdown()
        srv.server_close()


def test_client_timeout(peer):
    _, url = peer
    _Peer.script["/v1/health"] = (200, {"model": "x"}, 1.5)
    with pytest.raises(ServerError, match="did not answer within 0.3 s") as e:
        MaskelClient(url).health(timeout=0.3)
    assert e.value.code == "timeout"


def test_client_connection_refused_says_how_to_start():
    port = free_port()
    with pytest.raises(ServerError, match="no MaSkel server") as e:
        MaskelClient(f"http://127.0.0.1:{port}").health()
    assert "maskel serve" in str(e.value) and f"--port {port}" in str(e.value) and e.value.code == "unreachable"


@pytest.mark.parametrize("url", ["", "localhost:8000", "ftp://x", "http://"])
def test_client_bad_url(url):
    with pytest.raises(ServerError, match="bad server URL"):
        MaskelClient(url)


def test_local_server_reports_missing_python(tmp_path):
    with pytest.raises(ServerError, match="not found"):
        LocalServer(str(tmp_path / "nope"), free_port()).start()


def test_local_server_reports_a_missing_sr_checkpoint(tmp_path):
    import sys

    with pytest.raises(ServerError, match="SR checkpoint .*nope.safetensors.* not found"):
        LocalServer(sys.executable, free_port(), sr_checkpoint=str(tmp_path / "nope.safetensors")).start()


def test_local_server_reports_early_exit(tmp_path):
    import sys

    srv = LocalServer(sys.executable, free_port(), log_path=str(tmp_path / "log.txt"))
    srv.command = lambda: [sys.executable, "-c", "import sys; print('boom: no model'); sys.exit(3)"]
    with pytest.raises(ServerError, match="exited with code 3: boom: no model"):
        srv.start(wait=20)
    assert not srv.running()


# ---------------------------------------------------------------- against the real `maskel serve`


def _ellipse_mask(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((((yy - h / 2) / (0.4 * h)) ** 2 + ((xx - w / 2) / (0.2 * w)) ** 2) <= 1).astype(np.uint8) * 255


def test_client_round_trip_with_real_server(maskel_server):
    client = MaskelClient(maskel_server, timeout=120)
    health = client.health()
    assert health["styles"] and health["resolution"] > 0
    mask = _png(_ellipse_mask(48, 40))
    pose = rigs.pose_json({"pelvis": (20, 30, 3, True), "head": (20, 8, 3, True)}, 40, 48)
    res = client.xray(mask, joints=pose, style=health["styles"][0])
    assert (res.width, res.height) == (40, 48) and png_size(res.xray_png) == (40, 48)
    img = np.asarray(Image.open(io.BytesIO(res.xray_png)))
    assert img.shape == (48, 40) and img.dtype == np.uint16  # 16-bit grayscale by default


@pytest.mark.parametrize(
    "mask,body,match",
    [(np.zeros((32, 32), np.uint8), {}, "422"),
     (None, {"style": "watercolour"}, "422")],
)  # fmt: skip
def test_client_reports_real_server_errors(maskel_server, mask, body, match):
    client = MaskelClient(maskel_server, timeout=60)
    png = _png(mask if mask is not None else _ellipse_mask(32, 32))
    with pytest.raises(ServerError, match=match) as e:
        client.xray(png, **body)
    assert e.value.status == 422 and "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_local_server_starts_real_maskel_with_token(tiny_checkpoint, tmp_path):
    import sys

    srv = LocalServer(sys.executable, free_port(), str(tiny_checkpoint), token="t0ken",
                      log_path=str(tmp_path / "serve.log"))  # fmt: skip
    try:
        health = srv.start(wait=180)
        assert health["resolution"] > 0 and srv.running()
        assert MaskelClient(srv.url, token="t0ken").health()["version"]
        with pytest.raises(ServerError, match="refused the token") as e:
            MaskelClient(srv.url).health()
        assert e.value.status == 401
    finally:
        srv.stop()
    assert not srv.running()
    with pytest.raises(ServerError, match="no MaSkel server"):
        MaskelClient(srv.url).health(timeout=2)


def _mannequin_joints(data: dict) -> dict[str, list[float]]:
    bones = {b["name"]: b for b in data["bones"]}
    out = {}
    for joint, ref in data["joint_map"].items():
        bone, _, end = ref.rpartition(":")
        out[joint] = bones[bone][end]
    return out


def test_skeleton_endpoint_fits_the_phantom_to_a_rig(maskel_server):
    """POST /v1/skeleton: >= 100 closed bone meshes; a rig scaled and turned gets the same bones scaled and turned."""
    client = MaskelClient(maskel_server, timeout=600)
    try:
        joints = _mannequin_joints(client.mannequin())
    except ServerError as e:
        pytest.skip(f"the server has no render extras here: {e}")
    bones = {b.name: b for b in decode_bones(client.skeleton(joints))}
    assert len(bones) >= 100 and {"humerus_left", "femur_right", "cranium", "vertebra_T7"} <= bones.keys()
    assert bones["humerus_left"].segment == "left_upper_arm" and bones["humerus_left"].start == "left_shoulder"
    hum = np.array(bones["humerus_left"].vertices)
    sh, el = np.array(joints["left_shoulder"]), np.array(joints["left_elbow"])
    t = np.clip((hum - sh) @ (el - sh) / np.dot(el - sh, el - sh), 0, 1)
    assert np.linalg.norm(sh + t[:, None] * (el - sh) - hum, axis=1).max() < 0.05  # along the upper arm
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    moved = {k: (1.1 * turn @ np.array(v) + [0.5, 0.0, 0.0]).tolist() for k, v in joints.items()}
    bones2 = {b.name: b for b in decode_bones(client.skeleton(moved))}
    for name in ("humerus_left", "cranium", "rib_right_5", "phalanx_distal_left_foot_1"):
        expect = 1.1 * np.array(bones[name].vertices) @ turn.T + [0.5, 0.0, 0.0]
        np.testing.assert_allclose(np.array(bones2[name].vertices), expect, atol=1e-4)
    with pytest.raises(ServerError, match=r"422 \(bad_joints\): the rig lacks the joints .*left_hip"):
        client.skeleton({k: v for k, v in joints.items() if k != "left_hip"})
