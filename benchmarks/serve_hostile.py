"""`maskel serve` under hostile load and the fault matrix of issue 11, from the client side.

    python benchmarks/serve_hostile.py mix    [--code DIR] [--seconds 30]   # the hostile mix
    python benchmarks/serve_hostile.py faults [--code DIR]                  # faults 1-5 and 8
    python benchmarks/serve_hostile.py speed  [--code DIR]                  # 512² p50, 4 vs 16 clients

``--code`` is the checkout whose ``maskel`` the server runs (default: this one), so the same probes
measure a change before and after. Mix: 16 clients posting 512² masks in a loop, 1 client posting a
61 MB body (1.7 M joints) in a loop, 8 clients posting 4096² masks in a loop, and a health probe
every 20 ms; it reports health p50/p99/max, the server's peak RSS (VmHWM), and the normal
clients' status counts (every one must be 200 or 503).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CKPT = REPO / "maskel" / "weights" / "default.safetensors"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def figure(size: int) -> np.ndarray:
    """A standing figure (head, torso, legs) filling ~60 % of a size x size frame, 0/255."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    m = ((xs - 0.5) ** 2 + (ys - 0.15) ** 2 < 0.006) | (((xs - 0.5) / 0.13) ** 2 + ((ys - 0.42) / 0.2) ** 2 < 1)
    m |= (np.abs(xs - 0.44) < 0.04) & (ys > 0.55) & (ys < 0.95)
    m |= (np.abs(xs - 0.56) < 0.04) & (ys > 0.55) & (ys < 0.95)
    return np.where(m, 255, 0).astype(np.uint8)


def mask_b64(size: int) -> str:
    buf = io.BytesIO()
    Image.fromarray(figure(size)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def hostile_body(n_joints: int = 1_700_000) -> bytes:
    joint = json.dumps({"name": "pelvis", "x": 1.5, "y": 2.5}, separators=(",", ":")).encode()  # 61 MB in all
    return b'{"mask": "' + mask_b64(64).encode() + b'", "joints": {"joints": [' + b",".join([joint] * n_joints) + b"]}}"


@contextmanager
def server(code: Path, ckpt: Path, *extra: str):
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="hostile-", suffix=".log", delete=False)
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.Popen([sys.executable, "-m", "maskel", "serve", "--checkpoint", str(ckpt), "--port", str(port),
                             "--device", "cpu", *extra], cwd=code, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(Path(log.name).read_text())
            try:
                if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url, proc, Path(log.name)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def health_probe(url: str, stop: threading.Event, out: list[float], every: float = 0.02) -> None:
    with httpx.Client(timeout=30) as c:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                c.get(url + "/v1/health")
                out.append((time.perf_counter() - t) * 1000)
            except httpx.HTTPError:
                out.append(30000.0)
            time.sleep(every)


def loop_post(url: str, body: bytes, stop: threading.Event, statuses: Counter, lat: list[float] | None = None) -> None:
    with httpx.Client(timeout=300) as c:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                r = c.post(url + "/v1/xray", content=body, headers={"content-type": "application/json"})
                statuses[r.status_code] += 1
                if lat is not None and r.status_code == 200:
                    lat.append((time.perf_counter() - t) * 1000)
            except httpx.HTTPError as e:
                statuses[type(e).__name__] += 1


def probe(args: argparse.Namespace) -> None:
    stop, out = threading.Event(), []
    thread = threading.Thread(target=health_probe, args=(args.url, stop, out))
    thread.start()
    time.sleep(args.seconds)
    stop.set()
    thread.join()
    print(json.dumps(out))


def mix(args: argparse.Namespace) -> None:
    normal = json.dumps({"mask": mask_b64(512)}).encode()
    big = json.dumps({"mask": mask_b64(4096)}).encode()
    hostile = hostile_body()
    print(f"bodies: normal 512² {len(normal) / 1e3:.0f} kB, 4096² {len(big) / 1e3:.0f} kB, hostile {len(hostile) / 1e6:.1f} MB")
    with server(args.code, args.checkpoint) as (url, proc, _):
        stop = threading.Event()
        normal_st, big_st, hostile_st = Counter(), Counter(), Counter()
        normal_lat: list[float] = []
        # health is probed from its own process: 25 busy client threads would otherwise hold its GIL
        probe = subprocess.Popen([sys.executable, __file__, "probe", "--url", url, "--seconds", str(args.seconds + 2)],
                                 stdout=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(1.0)
        threads = [threading.Thread(target=loop_post, args=(url, normal, stop, normal_st, normal_lat)) for _ in range(16)]
        threads += [threading.Thread(target=loop_post, args=(url, big, stop, big_st)) for _ in range(8)]
        threads += [threading.Thread(target=loop_post, args=(url, hostile, stop, hostile_st))]
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        rss = peak_rss_mb(proc.pid)
        stop.set()
        for t in threads:
            t.join(600)
        rss = max(rss, peak_rss_mb(proc.pid))
        health = json.loads(probe.communicate(timeout=120)[0])
    print(f"code {args.code}, {args.seconds:.0f} s")
    print(f"health: n={len(health)} p50 {pct(health, 50):.1f} ms  p99 {pct(health, 99):.1f} ms  max {max(health):.1f} ms")
    print(f"server peak RSS {rss:.0f} MB")
    print(f"normal 512² clients: {dict(normal_st)}  (200 p50 {pct(normal_lat, 50):.0f} ms)")
    print(f"4096² clients: {dict(big_st)}; hostile 61 MB client: {dict(hostile_st)}")


def speed(args: argparse.Namespace) -> None:
    """512² latency one request at a time, then requests/s of 4 and of 16 clients (256² masks)."""
    with server(args.code, args.checkpoint) as (url, _, _):
        with httpx.Client(timeout=300) as c:
            body = {"mask": mask_b64(512)}
            lat = []
            for i in range(13):
                t = time.perf_counter()
                c.post(url + "/v1/xray", json=body).raise_for_status()
                if i >= 3:  # warm-up
                    lat.append((time.perf_counter() - t) * 1000)
        print(f"code {args.code}")
        print(f"  512² one at a time: p50 {pct(lat, 50):.0f} ms (10 requests)")
        body = {"mask": mask_b64(256)}
        for clients in (4, 16):
            n, seconds = asyncio.run(_closed_loop(url, body, clients, max(2, 96 // clients)))
            print(f"  {clients:2d} clients, 256²: {n / seconds:.2f} req/s ({n} requests)")


async def _closed_loop(url: str, body: dict, clients: int, per: int) -> tuple[int, float]:
    """`clients` connections each posting `per` requests back to back, all from one thread: the
    clients' own cost stays the same for 4 and 16 (OS threads would compete for the server's cores)."""
    async def one(c: httpx.AsyncClient) -> None:
        for _ in range(per):
            (await c.post(url + "/v1/xray", json=body)).raise_for_status()

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=limits) as c:
        t = time.perf_counter()
        await asyncio.gather(*(one(c) for _ in range(clients)))
        return clients * per, time.perf_counter() - t


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def faults(args: argparse.Namespace) -> None:
    rows: list[tuple[str, str]] = []
    with server(args.code, args.checkpoint) as (url, proc, log_path):
        # 1: one 61 MB request vs health
        stop, health, hostile = threading.Event(), [], hostile_body()
        probe = threading.Thread(target=health_probe, args=(url, stop, health))
        probe.start()
        time.sleep(0.5)
        ms, r = timed(lambda: httpx.post(url + "/v1/xray", content=hostile, timeout=600,
                                         headers={"content-type": "application/json"}))  # fmt: skip
        time.sleep(0.5)
        stop.set()
        probe.join()
        rows.append(("1 61 MB body, 1.7 M joints", f"answered {r.status_code} in {ms:.0f} ms; health max {max(health):.0f} ms, p99 {pct(health, 99):.0f} ms"))
        # 2: 8 concurrent 4096² masks
        big = {"mask": mask_b64(4096)}
        with ThreadPoolExecutor(8) as pool:
            sts = Counter(f.status_code for f in pool.map(lambda _: httpx.post(url + "/v1/xray", json=big, timeout=600), range(8)))
        rows.append(("2 8 x 4096² at once", f"statuses {dict(sts)}; server peak RSS {peak_rss_mb(proc.pid):.0f} MB"))
        # 3: 16 abandoned requests, and an idle connection
        before = log_path.read_text().count("POST /v1/xray 200")
        body = {"mask": mask_b64(1024)}

        def abandon(_: int) -> None:
            try:
                httpx.post(url + "/v1/xray", json=body, timeout=0.3)
            except httpx.TimeoutException:
                pass

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(abandon, range(16)))
        ms, _ = timed(lambda: httpx.post(url + "/v1/xray", json={"mask": mask_b64(256)}, timeout=600))
        time.sleep(1.0)
        text = log_path.read_text()
        answered = text.count("POST /v1/xray 200") - before - 1
        dropped = sum(int(line.split("dropped ")[1].split()[0]) for line in text.splitlines() if "whose clients left" in line)
        rows.append(("3 16 clients leave", f"{answered} answered to nobody, {dropped} dropped unrun; the next request took {ms:.0f} ms"))
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as s:
            s.settimeout(25)
            t = time.perf_counter()
            try:
                closed = s.recv(1) == b""
            except TimeoutError:
                closed = False
            rows.append(("3 idle connection", f"closed by the server after {time.perf_counter() - t:.1f} s" if closed else "still open after 25 s"))
        # 4: Host check
        r = httpx.get(url + "/v1/health", headers={"Host": "evil.example:8765"})
        r2 = httpx.post(url + "/v1/xray", json={"mask": mask_b64(64)}, headers={"Origin": "http://evil.example"}, timeout=60)
        rows.append(("4 Host: evil.example / Origin: evil", f"{r.status_code} / {r2.status_code}"))
        # 5: log injection
        httpx.get(url + "/v1/health%0aFORGED%20line")
        time.sleep(0.3)
        forged = any(line.startswith("FORGED") for line in log_path.read_text().splitlines())
        rows.append(("5 %0a in the path", "forged a log line" if forged else "escaped (no forged line)"))
        # 8: the small ones
        png = base64.b64decode(mask_b64(64))
        crc = png[:29] + bytes([png[29] ^ 0xFF]) + png[30:]
        r = httpx.post(url + "/v1/xray", json={"mask": base64.b64encode(crc).decode()}, timeout=60)
        rows.append(("8 bad-CRC PNG", f"{r.status_code} {r.json().get('message', '')[:90]!r}"))
        pose = {"width": "64", "height": 64, "joints": []}
        r = httpx.post(url + "/v1/xray", json={"mask": mask_b64(64), "joints": pose}, timeout=60)
        rows.append(('8 "width": "64"', f"{r.status_code} {r.json().get('message', '')[:90]!r}"))
        for label, joint in (('visible: "no"', {"visible": "no"}), ("x: true", {"x": True}), ("x: 3.5e38", {"x": 3.5e38})):
            j = {"name": "pelvis", "x": 10, "y": 10, **joint}
            r = httpx.post(url + "/v1/xray", json={"mask": mask_b64(64), "joints": {"joints": [j]}}, timeout=60)
            rows.append((f"8 {label}", str(r.status_code)))
        r = httpx.post(url + "/v1/xray", json={"mask": mask_b64(64), "style": "x" * 10_000_000}, timeout=60)
        rows.append(("8 10 MB unknown style", f"{r.status_code}, reply {len(r.content)} bytes"))
        rows.append(("8 /docs", str(httpx.get(url + "/docs").status_code)))
        proc.send_signal(signal.SIGTERM)
        rows.append(("8 SIGTERM exit code", str(proc.wait(60))))
    print(f"code {args.code}")
    for name, value in rows:
        print(f"  {name:38s} {value}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["mix", "faults", "speed", "probe"])
    ap.add_argument("--url", help="probe: the server to probe")
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose maskel the server runs")
    ap.add_argument("--checkpoint", type=Path, default=DEFAULT_CKPT)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    {"mix": mix, "faults": faults, "speed": speed, "probe": probe}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
