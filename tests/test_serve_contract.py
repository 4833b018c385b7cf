"""The Blender add-on's client against the served schema: every key it sends is in /openapi.json,
and the exact bodies it sends are accepted by a real `maskel serve`."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from blender_addon.core.client import MaskelClient
from blender_addon.core.rigs import CANONICAL_JOINTS, pose_json
from maskel.imageio import encode_u8
from tests.test_infer import body_mask


def captured_bodies() -> dict[str, dict[str, Any]]:
    """What MaskelClient.xray and .skeleton put on the wire (a stdlib server records them)."""
    bodies: dict[str, dict[str, Any]] = {}
    mask_png = encode_u8(body_mask(64, 48) * 255)

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            bodies[self.path] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            reply = ({"xray": base64.b64encode(mask_png).decode(), "width": 48, "height": 64, "style": "dxa", "timings": {}}
                     if self.path == "/v1/xray" else {"format": "maskel-skeleton/1", "bones": []})  # fmt: skip
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = MaskelClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=10)
        points = {name: (10.0 + i, 20.0 + i, 2.5, i % 2 == 0) for i, name in enumerate(CANONICAL_JOINTS)}
        client.xray(mask_png, joints=pose_json(points, 48, 64), style="dxa", seed=3, labels=True, bits=8, sr=True,
                    mirror_average=True)  # fmt: skip
        client.skeleton({name: (0.0, 0.1 * i, 1.0) for i, name in enumerate(CANONICAL_JOINTS)})
    finally:
        server.shutdown()
    return bodies


def properties(schema: dict[str, Any], name: str) -> set[str]:
    return set(schema["components"]["schemas"][name]["properties"])


def test_the_addon_sends_only_keys_the_served_schema_documents(maskel_server: str) -> None:
    schema = httpx.get(maskel_server + "/openapi.json").json()
    ref = schema["paths"]["/v1/xray"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/XrayRequest")
    bodies = captured_bodies()
    xray = bodies["/v1/xray"]
    assert set(xray) <= properties(schema, "XrayRequest")
    assert set(xray["joints"]) <= properties(schema, "Pose")
    assert all(set(j) <= properties(schema, "Joint") for j in xray["joints"]["joints"])
    assert schema["components"]["schemas"]["Pose"]["properties"]["joints"]["maxItems"] == 64
    assert set(bodies["/v1/skeleton"]) <= properties(schema, "SkeletonRequest")
    # and the server takes them as they are (styles the tiny model knows)
    styles = httpx.get(maskel_server + "/v1/health").json()["styles"]
    r = httpx.post(maskel_server + "/v1/xray", json={**xray, "style": styles[-1]}, timeout=60)
    assert r.status_code == 422 and r.json()["error"] == "no_super_resolution", r.text  # started without --sr
    r = httpx.post(maskel_server + "/v1/xray", json={**xray, "style": styles[-1], "sr": False}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["mirror_average"] is True  # as the client asked, not the server's default (a single pass)


def test_the_addon_error_base_and_the_server_codes() -> None:
    from blender_addon.core import client
    from maskel.api import ERROR_CODES

    assert issubclass(client.ServerError, client.AddonError)
    own = {client.BAD_URL, client.UNREACHABLE, client.TIMEOUT, client.BAD_REPLY, client.NOT_MASKEL, client.CONFIG, client.DIED}
    assert not own & set(ERROR_CODES), "the add-on's own codes must not shadow the server's"
    assert client.SERVER_GONE <= own


def test_the_panel_line_names_what_the_served_health_says(maskel_server: str) -> None:
    from blender_addon.core.client import describe_health

    health = MaskelClient(maskel_server, timeout=10).health()
    line = describe_health(health)
    assert f"{health['resolution']} px" in line and health["device"] in line and health["model"] in line
    assert all(style in line for style in health["styles"]) and "?" not in line
