"""Dataset generation speed: marginal samples/s per size, worker count and imaging physics.

    python -m benchmarks.render_speed [--samples 16] [--repeats 3] [--sizes 256 512] [--workers 1 2]
                                      [--physics clean realistic] [--fat off]

Each cell renders `--samples` samples of fresh bodies (no skeleton cached from another cell; through render.dataset's own worker function) on a
pool that was already warmed on a throw-away dataset, so worker start-up, imports and the anny
build are excluded: the rate is the marginal one. It reports the median samples/s over the
repeats, the CPU seconds a sample costs inside a worker (all stages, process time), and what
that CPU cost allows on `workers` otherwise idle cores (workers / CPU s per sample) - the
figure to compare with a target when the machine is shared. The stage split (pose, phantom,
silhouette, DRR, write) is the mean wall time per sample inside the workers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from render.dataset import BODY_GROUP, DEFAULT_FAT, _init_pool_worker, _init_worker, _work  # noqa: E402
from render.physics import Physics  # noqa: E402

STAGES = ("pose", "phantom", "silhouette", "drr", "write")


def run(pool, size: int, n: int, seed: int, physics: dict | None, fat: bool) -> tuple[float, float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(tmp, i, seed, size, physics, fat) for i in range(n)]
        t = time.perf_counter()
        results = list(pool.imap_unordered(_work, jobs, chunksize=BODY_GROUP)) if pool else list(map(_work, jobs))
        wall = time.perf_counter() - t
    split = {k: statistics.mean(r[1][k] for r in results) for k in STAGES}
    return n / wall, statistics.mean(r[1]["cpu"] for r in results), split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--physics", nargs="+", choices=("clean", "realistic"), default=["clean", "realistic"])
    ap.add_argument("--fat", choices=("on", "off"), default="on" if DEFAULT_FAT else "off")
    a = ap.parse_args()
    fat = a.fat == "on"
    rows = []
    for w in a.workers:
        pool = mp.get_context("spawn").Pool(w, initializer=_init_pool_worker) if w > 1 else None
        if pool is None:
            _init_worker()
        try:
            run(pool, 64, max(w, 2) * BODY_GROUP, 999, Physics().to_json(), fat)  # warm-up: imports, anny, EGL
            for size in a.sizes:
                for k, mode in enumerate(a.physics):
                    physics = Physics().to_json() if mode == "realistic" else None
                    cells = [run(pool, size, a.samples, size * 1000 + 100 * k + r, physics, fat) for r in range(a.repeats)]
                    sps = statistics.median(c[0] for c in cells)
                    cpu = statistics.median(c[1] for c in cells)
                    split = {k: statistics.mean(c[2][k] for c in cells) for k in STAGES}
                    rows.append((size, w, mode, sps, cpu, split))
                    print(f"  {size}² x {w} worker(s), {mode}: {sps:.2f} samples/s, {cpu:.2f} CPU s/sample", flush=True)
        finally:
            if pool is not None:
                pool.terminate()
    print(f"\n{'size':>6} {'workers':>7} {'physics':>9} {'samples/s':>10} {'cpu s':>7} {'idle est/s':>10} "
          + " ".join(f"{k + ' ms':>13}" for k in STAGES))  # fmt: skip
    for size, w, mode, sps, cpu, split in rows:
        print(f"{size:>6} {w:>7} {mode:>9} {sps:>10.2f} {cpu:>7.2f} {w / cpu:>10.2f} "
              + " ".join(f"{1000 * split[k]:>13.1f}" for k in STAGES))  # fmt: skip
    print(f"\n(cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, {a.samples} samples per run, "
          f"median of {a.repeats}, fat layer {a.fat}; stage times are wall time per sample inside a worker)")  # fmt: skip


if __name__ == "__main__":
    main()
