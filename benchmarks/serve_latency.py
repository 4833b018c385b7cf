"""End-to-end latency and throughput of a real `maskel serve` process.

Starts the server on a free loopback port, then measures from the client side (base64 + JSON +
HTTP + decode + model + encode): p50/p95 of one request at a time for each mask size, and
throughput with 1/4/16 concurrent clients (the server micro-batches concurrent requests).

    python benchmarks/serve_latency.py [--checkpoint CKPT] [--sizes 256 512] [--requests 20]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from maskel import MaskelError  # noqa: E402
from maskel.defaults import find_checkpoint  # noqa: E402
from maskel.imageio import encode_u8, load_mask  # noqa: E402
from tests._server import start_server  # noqa: E402
from tests.test_infer import body_mask  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def payload(size: int, mask_png: Path | None) -> dict:
    if mask_png is not None:
        m = load_mask(mask_png).mask
        from PIL import Image

        m = np.asarray(Image.fromarray(m).resize((size, size), Image.Resampling.NEAREST))
    else:
        m = body_mask(size, size)
    return {"mask": base64.b64encode(encode_u8(np.where(m, 255, 0))).decode()}


def sequential(client: httpx.Client, url: str, body: dict, n: int) -> tuple[list[float], list[float]]:
    """Client-side and server-side (timings.total_ms) latencies in ms."""
    client_ms, server_ms = [], []
    for _ in range(n):
        t = time.perf_counter()
        r = client.post(url, json=body)
        client_ms.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        server_ms.append(r.json()["timings"]["total_ms"])
    return client_ms, server_ms


def concurrent(url: str, body: dict, clients: int, n: int) -> tuple[float, list[float], float]:
    """(requests/s, latencies ms, mean batch size) for n requests spread over ``clients`` threads."""
    per = max(1, n // clients)

    def worker(_: int) -> list[tuple[float, float]]:
        out = []
        with httpx.Client(timeout=300) as c:
            for _ in range(per):
                t = time.perf_counter()
                r = c.post(url, json=body)
                r.raise_for_status()
                out.append(((time.perf_counter() - t) * 1000, r.json()["timings"]["batch_size"]))
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        rows = [x for chunk in pool.map(worker, range(clients)) for x in chunk]
    wall = time.perf_counter() - t0
    return len(rows) / wall, [r[0] for r in rows], statistics.mean(r[1] for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="stage-2 checkpoint (default: the usual discovery)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--requests", type=int, default=20, help="sequential requests per size")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--throughput-size", type=int, default=256)
    ap.add_argument("--max-batch", type=int, help="the server's --max-batch (default: the server's own, 2 on a CPU)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mask", type=Path, help="use this mask PNG (resized) instead of a drawn figure")
    args = ap.parse_args(argv)
    try:
        ckpt = find_checkpoint(args.checkpoint)
    except MaskelError as e:
        print(f"serve_latency: error: {e}", file=sys.stderr)
        return 2
    batch_args = ["--max-batch", str(args.max_batch)] if args.max_batch else []
    with start_server(ckpt, "--device", args.device, *batch_args) as server:
        health = httpx.get(server.url + "/v1/health").json()
        print(f"model {health['model']} ({health['resolution']} px) on {health['device']}, max batch {args.max_batch or 'server default'}")
        url = server.url + "/v1/xray"
        print(f"\n{'mask':>9} {'p50 ms':>8} {'p95 ms':>8} {'server p50':>11}   ({args.requests} sequential requests)")
        with httpx.Client(timeout=300) as client:
            for size in args.sizes:
                body = payload(size, args.mask)
                sequential(client, url, body, 3)  # warm-up
                c_ms, s_ms = sequential(client, url, body, args.requests)
                print(f"{size:>4}x{size:<4} {percentile(c_ms, 50):8.1f} {percentile(c_ms, 95):8.1f} {percentile(s_ms, 50):11.1f}")
        size = args.throughput_size
        body = payload(size, args.mask)
        print(f"\n{'clients':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'mean batch':>11}   ({size}x{size} masks)")
        for clients in args.clients:
            rps, lat, batch = concurrent(url, body, clients, max(16, 2 * clients))
            print(f"{clients:>7} {rps:7.2f} {percentile(lat, 50):8.1f} {percentile(lat, 95):8.1f} {batch:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
