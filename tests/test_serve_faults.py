"""Issue 11's fault matrix against real `maskel serve` processes: a huge request does not freeze
the server, memory is admitted by a pixel budget, abandoned requests are dropped and idle
connections closed, foreign Host/Origin refused, the log cannot be forged, and the small ones."""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests._server import Server, start_server
from tests.test_infer import body_mask
from tests.test_serve import assert_error, mask_b64


@pytest.fixture(scope="module")
def server(tiny_checkpoint: Path) -> Iterator[Server]:
    with start_server(tiny_checkpoint, "--header-timeout", "2") as s:
        yield s


def peak_rss_mb(pid: int) -> float:
    line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_a_huge_many_joint_body_neither_freezes_health_nor_takes_long(server: Server) -> None:
    joint = json.dumps({"name": "pelvis", "x": 1.5, "y": 2.5}, separators=(",", ":")).encode()
    body = b'{"mask": "' + mask_b64(body_mask(64, 64)).encode() + b'", "joints": {"joints": [' + b",".join([joint] * 400_000) + b"]}}"
    stop, worst = threading.Event(), [0.0]

    def probe() -> None:
        with httpx.Client(timeout=60) as c:
            while not stop.is_set():
                t = time.perf_counter()
                assert c.get(server.url + "/v1/health").status_code == 200
                worst[0] = max(worst[0], time.perf_counter() - t)
                time.sleep(0.02)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        t = time.perf_counter()
        r = httpx.post(server.url + "/v1/xray", content=body, headers={"content-type": "application/json"}, timeout=120)
        took = time.perf_counter() - t
    finally:
        stop.set()
        thread.join()
    assert_error(r, 413, "body_too_complex")
    assert took < 10, f"the request took {took:.1f} s"
    assert worst[0] < 1.0, f"/v1/health stalled for {worst[0]:.2f} s while the body was handled"  # was seconds
    too_many = {"mask": mask_b64(body_mask(64, 64)), "joints": {"joints": [{"name": "pelvis", "x": 1, "y": 1}] * 65}}
    assert_error(httpx.post(server.url + "/v1/xray", json=too_many, timeout=60), 422, "bad_joints")


def test_big_masks_are_admitted_by_a_pixel_budget(tiny_checkpoint: Path) -> None:
    side = 2048
    with start_server(tiny_checkpoint, "--pixel-budget", str(side * side + 1000)) as s:
        body = {"mask": mask_b64(body_mask(side, side))}
        barrier = threading.Barrier(6)

        def one(_: int) -> httpx.Response:
            with httpx.Client(timeout=300) as c:
                barrier.wait()
                return c.post(s.url + "/v1/xray", json=body)

        with ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(one, range(6)))
        statuses = sorted(r.status_code for r in responses)
        assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}, statuses
        for r in responses:
            if r.status_code == 503:
                assert_error(r, 503, "busy")
                assert r.headers["retry-after"] == "1"
        assert peak_rss_mb(s.proc.pid) < 1500
        small = httpx.post(s.url + "/v1/xray", json={"mask": mask_b64(body_mask(64, 64))}, timeout=60)
        assert small.status_code == 200, "the budget was not given back"


def test_requests_whose_clients_left_are_dropped(tiny_checkpoint: Path) -> None:
    """A 3 s batch window holds the first job while more are collected: clients that leave meanwhile
    must not be computed."""
    small = {"mask": mask_b64(body_mask(96, 96))}
    with start_server(tiny_checkpoint, "--batch-window-ms", "3000", "--max-batch", "16") as s:

        def leave(_: int) -> None:
            with pytest.raises(httpx.TimeoutException):
                httpx.post(s.url + "/v1/xray", json=small, timeout=0.8)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(leave, range(8)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "dropped" not in s.log():
            time.sleep(0.2)
        dropped = [int(m) for m in re.findall(r"dropped (\d+) queued request", s.log())]
        assert sum(dropped) == 8, s.log()[-2000:]
        assert s.log().count("POST /v1/xray 499") == 8
        assert httpx.post(s.url + "/v1/xray", json=small, timeout=60).status_code == 200


def test_idle_and_half_header_connections_are_closed(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    for sent in (b"", b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"):
        with socket.create_connection((host, int(port))) as s:
            s.sendall(sent)
            s.settimeout(15)
            t = time.perf_counter()
            assert s.recv(1) == b"", "the server answered a request it never got"
            assert time.perf_counter() - t < 6


def test_foreign_host_and_origin_are_refused_without_a_token(server: Server) -> None:
    for headers in ({"Host": "evil.example:8765"}, {"Host": "attacker.test"}, {"Origin": "http://evil.example"}, {"Origin": "null"}):
        assert_error(httpx.get(server.url + "/v1/health", headers=headers), 403, "forbidden_host")
    for headers in ({"Host": "localhost:1"}, {"Host": "127.0.0.1"}, {"Host": "[::1]:8765"}, {"Origin": "http://127.0.0.1:8765"}):
        assert httpx.get(server.url + "/v1/health", headers=headers).status_code == 200, headers
    r = httpx.options(server.url + "/v1/xray", headers={"Origin": "http://127.0.0.1", "Access-Control-Request-Method": "POST"})
    assert not any(k.lower().startswith("access-control") for k in r.headers), "no CORS"


def test_a_token_server_serves_any_host(tiny_checkpoint: Path) -> None:
    with start_server(tiny_checkpoint, token="t0k") as s:
        assert httpx.get(s.url + "/v1/health", headers={**s.headers(), "Host": "maskel.lan"}).status_code == 200
        assert "t0k" not in " ".join(map(str, s.proc.args)), "the token travels in the environment, not in ps"


def test_the_log_cannot_be_forged(server: Server) -> None:
    httpx.get(server.url + "/v1/health%0aFORGED%0d%1b[2J line")
    time.sleep(0.3)
    lines = server.log().splitlines()
    assert not any(ln.startswith("FORGED") for ln in lines)
    assert any("\\nFORGED\\r\\x1b[2J line" in ln for ln in lines)


def test_small_faults(server: Server) -> None:
    url = server.url + "/v1/xray"
    good = mask_b64(body_mask(64, 64))
    png = bytearray(base64.b64decode(good))
    png[29] ^= 0xFF  # inside IHDR: its CRC no longer matches
    r = httpx.post(url, json={"mask": base64.b64encode(bytes(png)).decode()}, timeout=60)
    assert_error(r, 400, "bad_image")
    assert "0x" not in r.json()["message"] and "BytesIO" not in r.json()["message"]
    r = httpx.post(url, json={"mask": good, "joints": {"width": "64", "height": 64, "joints": []}}, timeout=60)
    assert_error(r, 422, "bad_joints")
    assert "64x64 image but the mask is 64x64" not in r.json()["message"] and "width" in r.json()["message"]
    for bad in ({"visible": "no"}, {"x": True}, {"x": 3.5e38}, {"y": "3"}, {"depth": 1e300}):
        joint = {"name": "pelvis", "x": 10, "y": 10, **bad}
        assert_error(httpx.post(url, json={"mask": good, "joints": {"joints": [joint]}}, timeout=60), 422, "bad_joints")
    r = httpx.post(url, json={"mask": good, "style": "x" * 10_000_000}, timeout=60)
    assert_error(r, 422, "invalid_request")
    assert len(r.content) < 1000
    r = httpx.post(url, json={"mask": good, "style": "x" * 60}, timeout=60)
    assert_error(r, 422, "unknown_style")
    assert len(r.content) < 300
    assert_error(httpx.get(server.url + "/docs"), 404)
    assert_error(httpx.get(server.url + "/redoc"), 404)
    ok = {"mask": good, "joints": {"width": 64, "height": 64, "joints": [{"name": "pelvis", "x": 30, "y": 31.5, "visible": False}]}}
    assert httpx.post(url, json=ok, timeout=60).status_code == 200


def test_sigterm_exits_zero(tiny_checkpoint: Path) -> None:
    with start_server(tiny_checkpoint) as s:
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(60) == 0


def test_error_codes_are_the_documented_ones(server: Server) -> None:
    from maskel.api import ERROR_CODES

    schema = httpx.get(server.url + "/openapi.json").json()
    described = schema["components"]["schemas"]["ErrorBody"]["properties"]["error"]["description"]
    assert all(code in described for code in ERROR_CODES)
    r = httpx.post(server.url + "/v1/xray", json={"mask": mask_b64(np.zeros((40, 40), bool))}, timeout=60)
    assert_error(r, 422, "bad_mask")
    assert ERROR_CODES[r.json()["error"]] == r.status_code
