"""Latency of the add-on's Generate X-ray: from the operator call to the X-ray shown, in headless
Blender against a real `maskel serve`, at 256² and 512² (median of --runs; phases from XrayJob).

    python benchmarks/addon_latency.py --checkpoint CKPT [--runs 7] [--kind blender|bpy|bpy5|all]
    python benchmarks/addon_latency.py --server http://127.0.0.1:8765

Headless Blender runs the synchronous path (bpy.app.timers/modal timers never fire under -b); the
interactive path runs the same three phases with `fetch` on a worker thread.
The same file is the script run inside Blender (``--inner``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def inner(argv: list[str]) -> None:
    """Inside Blender: install the add-on zip, add the mannequin, time Generate X-ray."""
    import bpy
    from mathutils import Euler, Vector

    sys.path.insert(0, str(REPO / "tests" / "blender"))
    from bl_setup import add_mannequin, clear_scene, install_addon, joint_bone

    p = argparse.ArgumentParser()
    p.add_argument("--inner", action="store_true")
    p.add_argument("--zip")
    p.add_argument("--server")
    p.add_argument("--mannequin")
    p.add_argument("--runs", type=int)
    a = p.parse_args(argv)
    name = install_addon(a.zip)
    pipeline = sys.modules[name + ".pipeline"]
    client_mod = sys.modules[name + ".core.client"]
    bpy.context.preferences.addons[name].preferences.server_url = a.server
    scene = bpy.context.scene
    clear_scene(scene)
    _, arm, jmap = add_mannequin(scene, a.mannequin)
    joint_bone(arm, jmap, "left_shoulder").rotation_euler = Euler((0, 1.0, 0))
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(cam)
    cam.location = (0.5, -5.0, 1.0)
    cam.rotation_euler = (Vector((0, 0, 0.9)) - cam.location).to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    scene.render.resolution_x = scene.render.resolution_y = 1000
    client = client_mod.MaskelClient(a.server, timeout=600)
    rows = []
    for res in (256, 512):
        scene.maskel.resolution = str(res)
        bpy.ops.maskel.generate("INVOKE_DEFAULT")  # warm-up (first render initialises EGL)
        totals, phases = [], {"prepare": [], "fetch": [], "apply": []}
        for _ in range(a.runs):
            t0 = time.perf_counter()
            bpy.ops.maskel.generate("INVOKE_DEFAULT")
            totals.append(time.perf_counter() - t0)
            job = pipeline.XrayJob(scene, arm, [cam], client, resolution=res)
            for phase in ("prepare", "fetch", "apply"):
                t = time.perf_counter()
                getattr(job, phase)()
                phases[phase].append(time.perf_counter() - t)
            server_ms = job.views[0].timings.get("total_ms")
            job.cleanup()
        rows.append({"blender": ".".join(map(str, bpy.app.version)), "res": res, "runs": a.runs,
                     "median_ms": 1000 * statistics.median(totals), "min_ms": 1000 * min(totals),
                     **{f"{k}_ms": 1000 * statistics.median(v) for k, v in phases.items()},
                     "server_total_ms": server_ms})  # fmt: skip
    print("MASKEL_BENCH " + json.dumps(rows), flush=True)


def outer() -> int:
    sys.path.insert(0, str(REPO))
    from blender_addon.build import build
    from blender_addon.core.localserver import LocalServer, free_port
    from tests._addon_helpers import blender_env, blender_exe, box_mannequin, bpy_python

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", help="URL of a running maskel serve")
    p.add_argument("--checkpoint", help="start `python -m maskel serve --checkpoint` for the run")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--kind", default="all", choices=("blender", "bpy", "bpy5", "all"))
    p.add_argument("--mannequin", default="box", choices=("box", "server"),
                   help="box figure (default) or the server's anny mannequin")  # fmt: skip
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="maskel_bench_"))
    zip_path = build(tmp / "zips")
    server = None
    if not a.server:
        if not a.checkpoint:
            p.error("give --server URL or --checkpoint CKPT")
        server = LocalServer(sys.executable, free_port(), a.checkpoint, log_path=str(tmp / "serve.log"))
        server.start(wait=300)
        a.server = server.url
    mannequin = "server"
    if a.mannequin == "box":
        mannequin = str(tmp / "box.json")
        Path(mannequin).write_text(json.dumps(box_mannequin()))
    rows = []
    try:
        for kind in (("blender", "bpy", "bpy5") if a.kind == "all" else (a.kind,)):
            exe = blender_exe() if kind == "blender" else bpy_python(kind)
            if not exe:
                print(f"skipping {kind}: not installed", file=sys.stderr)
                continue
            args = ["--inner", "--zip", str(zip_path), "--server", a.server, "--mannequin", mannequin,
                    "--runs", str(a.runs)]  # fmt: skip
            cmd = ([exe, "-b", "--factory-startup", "--python-exit-code", "1", "-P", __file__, "--", *args]
                   if kind == "blender" else [exe, __file__, "--", *args])  # fmt: skip
            import subprocess

            home = tmp / f"home_{kind}"
            proc = subprocess.run(cmd, capture_output=True, text=True, env=blender_env(home), timeout=1800)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MASKEL_BENCH ")]
            if proc.returncode or not lines:
                print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
                return 1
            rows += json.loads(lines[-1][len("MASKEL_BENCH ") :])
    finally:
        if server is not None:
            server.stop()
    print(f"{'blender':>8} {'res':>5} {'runs':>4} {'median ms':>10} {'min ms':>8} {'prepare':>8} {'fetch':>8} "
          f"{'apply':>8} {'server':>8}")  # fmt: skip
    for r in rows:
        print(f"{r['blender']:>8} {r['res']:>5} {r['runs']:>4} {r['median_ms']:>10.1f} {r['min_ms']:>8.1f} "
              f"{r['prepare_ms']:>8.1f} {r['fetch_ms']:>8.1f} {r['apply_ms']:>8.1f} {r['server_total_ms'] or 0:>8.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    if "--inner" in sys.argv:
        inner(sys.argv[sys.argv.index("--") + 1 :])
    else:
        sys.exit(outer())
