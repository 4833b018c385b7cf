"""Dataset generation speed: samples/s at 256² and 512² with 1 and 2 workers, and the stage split.

    python -m benchmarks.render_speed [--samples 16] [--repeats 3] [--sizes 256 512] [--workers 1 2]

Each cell runs `render.dataset.generate` into a fresh temporary folder (worker start-up and the
anny build excluded: the pool is warmed on a first throw-away dataset) and reports the median
samples/s over the repeats. The stage split (pose, phantom, silhouette, DRR, write) is the mean
per-sample time measured inside the workers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from render.dataset import BODY_GROUP, _init_worker, _work  # noqa: E402

STAGES = ("pose", "phantom", "silhouette", "drr", "write")


def run(pool, size: int, n: int, seed: int) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(tmp, i, seed, size) for i in range(n)]
        t = time.perf_counter()
        results = list(pool.imap_unordered(_work, jobs, chunksize=BODY_GROUP)) if pool else list(map(_work, jobs))
        wall = time.perf_counter() - t
    split = {k: statistics.mean(r[1][k] for r in results) for k in STAGES}
    return n / wall, split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    rows = []
    for w in a.workers:
        pool = mp.get_context("spawn").Pool(w, initializer=_init_worker) if w > 1 else None
        if pool is None:
            _init_worker()
        try:
            run(pool, 64, max(w, 2) * BODY_GROUP, seed=999)  # warm-up: imports, anny, EGL context
            for size in a.sizes:
                speeds, splits = [], []
                for r in range(a.repeats):
                    sps, split = run(pool, size, a.samples, seed=size * 1000 + r)  # fresh bodies per cell
                    speeds.append(sps)
                    splits.append(split)
                mean_split = {k: statistics.mean(s[k] for s in splits) for k in STAGES}
                rows.append((size, w, statistics.median(speeds), mean_split))
                print(f"  {size}² x {w} worker(s): {statistics.median(speeds):.2f} samples/s", flush=True)
        finally:
            if pool is not None:
                pool.terminate()
    print(f"\n{'size':>6} {'workers':>7} {'samples/s':>10} " + " ".join(f"{k + ' ms':>13}" for k in STAGES))
    for size, w, sps, split in rows:
        print(f"{size:>6} {w:>7} {sps:>10.2f} " + " ".join(f"{1000 * split[k]:>13.1f}" for k in STAGES))
    print(f"\n(cpu count {os.cpu_count()}, {a.samples} samples per run, median of {a.repeats}; "
          f"stage times are per sample inside a worker)")  # fmt: skip


if __name__ == "__main__":
    main()
