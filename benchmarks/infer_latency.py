"""Inference cost of a checkpoint on this machine: Predictor latency, import time, server cold start.

    python benchmarks/infer_latency.py [--checkpoint CKPT] [--sizes 256 512] [--repeats 15] [--starts 3]

- latency: ``Predictor.predict`` end to end for one body mask of each size (framing, model,
  inverse framing), with and without joints, single-pass (the default) and mirror-averaged, the
  two interleaved call by call; median and p90 of ``--repeats`` calls after a warm-up, and the
  ratio of the medians.
- import: seconds to ``import maskel.infer`` and build the Predictor in a fresh interpreter, and
  whether vector-quantize-pytorch (einx, torch._dynamo) was imported (it must not be).
- cold start: launch ``maskel serve`` -> first 200 from /v1/health, median of ``--starts``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from maskel.defaults import find_checkpoint  # noqa: E402
from maskel.infer import Predictor  # noqa: E402
from tests._server import start_server  # noqa: E402
from tests.test_infer import body_mask  # noqa: E402

IMPORT_PROBE = """
import sys, time, json
t = time.perf_counter()
from maskel.infer import Predictor
p = Predictor({ckpt!r}, device="cpu")
print(json.dumps({{"seconds": time.perf_counter() - t, "vq_imported": "vector_quantize_pytorch" in sys.modules,
                   "dynamo_imported": "torch._dynamo" in sys.modules}}))
"""


def _joints_for(size: int) -> dict:
    c = size / 2
    pts = {"pelvis": (c, 0.55 * size), "chest": (c, 0.35 * size), "head": (c, 0.15 * size),
           "left_shoulder": (c + 0.1 * size, 0.3 * size), "left_elbow": (c + 0.15 * size, 0.45 * size),
           "right_shoulder": (c - 0.1 * size, 0.3 * size), "right_elbow": (c - 0.15 * size, 0.45 * size),
           "left_hip": (c + 0.05 * size, 0.55 * size), "left_knee": (c + 0.06 * size, 0.75 * size),
           "right_hip": (c - 0.05 * size, 0.55 * size), "right_knee": (c - 0.06 * size, 0.75 * size)}  # fmt: skip
    return {"width": size, "height": size, "joints": [{"name": n, "x": x, "y": y, "depth": 3.0} for n, (x, y) in pts.items()]}


def latency(preds: dict[str, Predictor], size: int, repeats: int, joints: bool) -> dict[str, tuple[float, float]]:
    """-> {mode: (p50 ms, p90 ms)}, the predictors timed in turn on the same mask."""
    mask = body_mask(size, size)
    j = [_joints_for(size)] if joints else None
    times: dict[str, list[float]] = {mode: [] for mode in preds}
    for pred in preds.values():
        pred.predict([mask], joints=j)
    for _ in range(repeats):
        for mode, pred in preds.items():
            t = time.perf_counter()
            pred.predict([mask], joints=j)
            times[mode].append((time.perf_counter() - t) * 1000)
    return {mode: (statistics.median(ts), float(np.percentile(ts, 90))) for mode, ts in times.items()}


def cold_start(ckpt: Path) -> float:
    t = time.perf_counter()
    with start_server(ckpt):
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--starts", type=int, default=3)
    args = ap.parse_args()
    ckpt = find_checkpoint(args.checkpoint)
    preds = {"mirror": Predictor(ckpt, device="cpu", mirror_average=True), "single": Predictor(ckpt, device="cpu")}
    pred = preds["mirror"]
    import torch

    print(f"checkpoint {ckpt} ({pred.resolution}², joints: {pred.pose_channel}), torch threads {torch.get_num_threads()}")
    print(f"{'size':>6}{'joints':>8}{'mode':>8}{'p50 ms':>9}{'p90 ms':>9}{'ratio':>7}")
    for size in args.sizes:
        for joints in (True, False) if pred.pose_channel else (False,):
            result = latency(preds, size, args.repeats, joints)
            for mode, (p50, p90) in result.items():
                ratio = p50 / result["single"][0]
                print(f"{size:>6}{str(joints):>8}{mode:>8}{p50:>9.1f}{p90:>9.1f}{ratio:>7.2f}", flush=True)
    probe = subprocess.run([sys.executable, "-c", IMPORT_PROBE.format(ckpt=str(ckpt))], capture_output=True, text=True, cwd=REPO, check=True)
    info = json.loads(probe.stdout.strip().splitlines()[-1])
    print(f"import maskel.infer + Predictor: {info['seconds']:.2f} s; vector_quantize_pytorch imported: {info['vq_imported']}, "
          f"torch._dynamo imported: {info['dynamo_imported']}")  # fmt: skip
    starts = [cold_start(ckpt) for _ in range(args.starts)]
    print(f"server cold start (launch -> healthy): median {statistics.median(starts):.2f} s over {len(starts)} ({', '.join(f'{s:.2f}' for s in starts)})")


if __name__ == "__main__":
    main()
