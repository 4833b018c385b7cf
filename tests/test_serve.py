"""`maskel serve` as a real subprocess on a free loopback port, driven over HTTP."""

from __future__ import annotations

import base64
import io
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from maskel.imageio import encode_u8
from maskel.infer import dilate
from tests._server import REPO, start_server
from tests.test_infer import body_mask


def png_b64(arr: np.ndarray, mode: str | None = None) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def mask_b64(mask: np.ndarray) -> str:
    return base64.b64encode(encode_u8(np.where(mask, 255, 0))).decode()


def decode_png(b64: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img


def huge_header_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG signature + IHDR claiming width x height, a tiny IDAT and IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "message"}, body
    assert "Traceback" not in body["message"] and "\n" not in body["message"]
    if code:
        assert body["error"] == code, body


def test_health_and_openapi(maskel_server: str) -> None:
    h = httpx.get(maskel_server + "/v1/health").json()
    assert {"model", "resolution", "device", "version", "styles"} <= set(h)
    assert h["device"] == "cpu" and h["resolution"] >= 16 and h["styles"]
    schema = httpx.get(maskel_server + "/openapi.json").json()
    assert {"/v1/health", "/v1/xray", "/v1/mannequin"} <= set(schema["paths"])
    assert "XrayRequest" in schema["components"]["schemas"]


@pytest.mark.parametrize("h,w", [(203, 317), (256, 256), (317, 203)])
def test_round_trip_size_and_alignment(maskel_server: str, h: int, w: int) -> None:
    m = body_mask(h, w, shift=(3, -5))
    r = httpx.post(maskel_server + "/v1/xray", json={"mask": mask_b64(m), "labels": True}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (w, h)
    img = decode_png(body["xray"])
    assert img.size == (w, h) and img.mode.startswith("I;16")
    x = np.asarray(img).astype(np.float64) / 65535
    assert not x[~dilate(m, 2)].any(), "X-ray outside the silhouette + 2 px margin"
    assert (x[m] > 0).mean() > 0.5
    assert body["timings"]["total_ms"] > 0 and body["style"] in httpx.get(maskel_server + "/v1/health").json()["styles"]
    assert body["labels"] is not None, "the tiny checkpoint has a label head"
    lab = np.asarray(decode_png(body["labels"]))
    assert lab.shape == (h, w) and not lab[~m].any()
    assert body["mirror_average"] is False and httpx.get(maskel_server + "/v1/health").json()["mirror_average"] is False
    both = httpx.post(maskel_server + "/v1/xray", json={"mask": mask_b64(m), "mirror_average": True}, timeout=60).json()
    assert both["mirror_average"] is True and both["xray"] != body["xray"]


def test_style_bits_and_mask_conversions(maskel_server: str) -> None:
    styles = httpx.get(maskel_server + "/v1/health").json()["styles"]
    m = body_mask(120, 100)
    u8 = np.where(m, 255, 0).astype(np.uint8)
    rgba = np.zeros((*m.shape, 4), np.uint8)
    rgba[..., 3] = u8  # body only in alpha, colour channels black
    inputs = {
        "rgb": png_b64(np.stack([u8] * 3, axis=-1)),
        "rgba": png_b64(rgba),
        "16bit": png_b64(np.where(m, 65535, 0).astype(np.uint16)),
    }
    results = {}
    for name, b64 in inputs.items():
        r = httpx.post(maskel_server + "/v1/xray", json={"mask": b64, "style": styles[-1], "bits": 8}, timeout=60)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["notes"], f"{name}: conversion not reported"
        img = decode_png(r.json()["xray"])
        assert img.mode == "L" and img.size == (100, 120)
        results[name] = np.asarray(img)
    plain = decode_png(httpx.post(maskel_server + "/v1/xray", json={"mask": mask_b64(m), "style": styles[-1], "bits": 8}).json()["xray"])
    for name, arr in results.items():
        assert np.array_equal(arr, np.asarray(plain)), f"{name} mask did not give the same X-ray as the 8-bit mask"


def test_sixteen_concurrent_requests(maskel_server: str) -> None:
    masks = [body_mask(96 + 8 * i, 80 + 4 * i) for i in range(16)]
    barrier = threading.Barrier(16)

    def one(m: np.ndarray) -> tuple[int, dict]:
        with httpx.Client(timeout=120) as c:
            barrier.wait()
            r = c.post(maskel_server + "/v1/xray", json={"mask": mask_b64(m)})
            return r.status_code, r.json()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, masks))
    assert [s for s, _ in results] == [200] * 16
    for m, (_, body) in zip(masks, results, strict=True):
        assert (body["height"], body["width"]) == m.shape
    assert max(b["timings"]["batch_size"] for _, b in results) >= 2, "concurrent requests were never batched"


def test_bad_inputs_get_json_errors_and_the_server_survives(maskel_server: str) -> None:
    url = maskel_server + "/v1/xray"
    m = body_mask(64, 64)
    good = mask_b64(m)
    raw = base64.b64decode(good)
    cases = [
        ({"mask": mask_b64(np.zeros((40, 40), bool))}, 422, "bad_mask"),  # empty
        ({"mask": mask_b64(np.ones((40, 40), bool))}, 422, "bad_mask"),  # all white
        ({"mask": base64.b64encode(b"GIF89a not a png at all").decode()}, 400, "bad_image"),
        ({"mask": base64.b64encode(raw[: len(raw) // 2]).decode()}, 400, "bad_image"),  # truncated
        ({"mask": base64.b64encode(huge_header_png()).decode()}, 413, "too_large"),
        ({"mask": "%%% not base64 %%%"}, 400, "bad_base64"),
        ({}, 422, "invalid_request"),
        ({"style": "radiograph"}, 422, "invalid_request"),
        ({"mask": good, "style": "ct"}, 422, "unknown_style"),
        ({"mask": good, "bits": 12}, 422, "invalid_request"),
        ({"mask": good, "seed": -1}, 422, "invalid_request"),
        ({"mask": good, "mirror_average": "no"}, 422, "invalid_request"),
        ({"mask": good, "joints": {"joints": [{"name": "tail", "x": 1, "y": 2}]}}, 422, "bad_joints"),
        ({"mask": good, "joints": {"width": 10, "height": 10, "joints": []}}, 422, "bad_joints"),
    ]
    for payload, status, code in cases:
        assert_error(httpx.post(url, json=payload, timeout=60), status, code)
    assert_error(httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}), 400, "bad_json")
    assert_error(httpx.post(url, content=b"[1, 2]", headers={"content-type": "application/json"}), 422)
    assert_error(httpx.get(url), 405)
    assert_error(httpx.get(maskel_server + "/v1/nothing"), 404)
    assert httpx.get(maskel_server + "/v1/health").status_code == 200
    assert httpx.post(url, json={"mask": good}, timeout=60).status_code == 200


def test_mannequin_endpoint(maskel_server: str) -> None:
    r = httpx.get(maskel_server + "/v1/mannequin", timeout=300)
    try:
        import render.mannequin  # noqa: F401
    except ImportError:
        assert_error(r, 503, "unavailable")
        return
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["format"] == "maskel-mannequin/1" and body["vertices"] and body["bones"]
    again = httpx.get(maskel_server + "/v1/mannequin", timeout=60)
    assert again.json() == body


def test_token_limits_and_queue(tiny_checkpoint: Path) -> None:
    args = ("--max-pixels", str(300 * 300), "--max-body-bytes", "200000", "--queue", "1", "--max-batch", "1")
    with start_server(tiny_checkpoint, *args, token="s3cret") as server:
        url = server.url
        assert_error(httpx.get(url + "/v1/health"), 401, "unauthorized")
        assert_error(httpx.get(url + "/v1/health", headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(httpx.get(url + "/openapi.json", headers={"Authorization": "s3cret"}), 401)
        auth = server.headers()
        assert httpx.get(url + "/v1/health", headers=auth).status_code == 200
        assert_error(httpx.post(url + "/v1/xray", json={"mask": "A" * 300000}, headers=auth), 413, "body_too_large")
        big = mask_b64(body_mask(400, 400))
        assert_error(httpx.post(url + "/v1/xray", json={"mask": big}, headers=auth), 413, "too_large")

        masks = [mask_b64(body_mask(290, 290, shift=(i, 0))) for i in range(16)]
        barrier = threading.Barrier(16)

        def one(b64: str) -> httpx.Response:
            with httpx.Client(timeout=120, headers=auth) as c:
                barrier.wait()
                return c.post(url + "/v1/xray", json={"mask": b64})

        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(one, masks))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
        for r in responses:
            if r.status_code == 503:
                assert_error(r, 503, "busy")
        assert httpx.get(url + "/v1/health", headers=auth).status_code == 200
        log = server.log()
    assert "POST /v1/xray 503" in log and "GET /v1/health 401" in log and "s3cret" not in log


def test_graceful_shutdown_finishes_in_flight_requests(tiny_checkpoint: Path) -> None:
    big = mask_b64(body_mask(2400, 2400))
    with start_server(tiny_checkpoint, "--batch-window-ms", "3000") as server:  # a job waits 3 s in the batcher
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(httpx.post, server.url + "/v1/xray", json={"mask": big}, timeout=120)
            time.sleep(1.5)  # it is in flight now, even on a loaded machine
            server.proc.send_signal(signal.SIGTERM)
            r = future.result()
        assert r.status_code == 200 and r.json()["width"] == 2400
        assert server.proc.wait(60) == 0  # as serve.run documents (uvicorn alone re-raises the signal: 143)
        log = server.log()
    assert "Finished server process" in log


def test_non_loopback_bind_without_token_is_refused(tiny_checkpoint: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "maskel", "serve", "--host", "0.0.0.0", "--checkpoint", str(tiny_checkpoint)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--token" in lines[0] and "0.0.0.0" in lines[0]
