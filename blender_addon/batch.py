"""Headless MaSkel X-rays over a frame range (works from the source tree and from the installed add-on).

    blender -b scene.blend --python-exit-code 1 -P <add-on dir>/batch.py -- \\
        --frames 1-48 --out DIR [--camera NAME ...] [--character NAME] [--server URL] \\
        [--style radiograph|dxa] [--resolution 512] [--token T] [--timeout S] [--seed N] [--sr]

With the bpy module instead of Blender: ``python <add-on dir>/batch.py -- --blend scene.blend ...``.

Writes DIR/xray_<camera>_<frame>.png and DIR/mask_<camera>_<frame>.png per frame, prints one summary
line and exits 0 only when every frame succeeded; server down or bad arguments: one line, exit 2.
Split a shot across farm workers with --frames (e.g. Flamenco/SLURM chunks "1-24", "25-48").
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from importlib import import_module

import bpy

_HERE = os.path.dirname(os.path.abspath(__file__))
_PKG = "maskel_xray_batch"


def _package():
    """This add-on's package, imported from the folder batch.py sits in (relative imports intact)."""
    if _PKG not in sys.modules:
        spec = importlib.util.spec_from_file_location(_PKG, os.path.join(_HERE, "__init__.py"),
                                                      submodule_search_locations=[_HERE])  # fmt: skip
        module = importlib.util.module_from_spec(spec)
        sys.modules[_PKG] = module
        spec.loader.exec_module(module)
    return sys.modules[_PKG]


def _client_module():
    _package()
    return import_module(f"{_PKG}.core.client")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="blender -b scene.blend -P batch.py --", description="MaSkel X-ray batch")
    p.add_argument("--frames", required=True, help='frames to render, e.g. "1-48" or "1,3,5-7"')
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--camera", action="append", default=[], help="camera name (repeatable; default: scene camera)")
    p.add_argument("--character", default="", help="armature or mesh name (default: the only armature)")
    p.add_argument("--server", default=os.environ.get("MASKEL_SERVER", "http://127.0.0.1:8765"))
    p.add_argument("--token", default=os.environ.get("MASKEL_TOKEN", ""))
    p.add_argument("--timeout", type=float, default=300.0)
    styles = import_module(f"{_PKG}.core.contract").STYLES
    p.add_argument("--style", default=_client_module().DEFAULT_STYLE, choices=list(styles))
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sr", action="store_true", help="ask for the server's super-resolution (maskel serve --sr)")
    p.add_argument("--keep-clothes", action="store_true", help="do not exclude clothing meshes")
    p.add_argument("--blend", help="open this .blend first (for the bpy module: python batch.py -- --blend F ...)")
    return p.parse_args(argv)


def run(argv: list[str]) -> int:
    pkg = _package()
    core_frames = import_module(f"{_PKG}.core.frames")
    client_mod = _client_module()
    pipeline = import_module(f"{_PKG}.pipeline")
    charmod = import_module(f"{_PKG}.character")
    del pkg

    args = parse_args(argv)
    try:
        if args.blend:
            if not os.path.isfile(args.blend):
                raise ValueError(f"no such .blend file: {args.blend}")
            bpy.ops.wm.open_mainfile(filepath=args.blend)
        scene = bpy.context.scene
        frames = core_frames.parse_frames(args.frames)
        if not 16 <= args.resolution <= 4096:
            raise ValueError("--resolution must be between 16 and 4096")
        character = charmod.find_character(scene, args.character)
        cameras = []
        for name in args.camera or ([scene.camera.name] if scene.camera else []):
            cam = scene.objects.get(name)
            if cam is None or cam.type != "CAMERA":
                raise ValueError(f"no camera called {name!r} in scene {scene.name!r}")
            cameras.append(cam)
        if not cameras:
            raise ValueError("the scene has no camera; pass --camera NAME")
        client = client_mod.MaskelClient(args.server, timeout=args.timeout, token=args.token or None)
        client.health()
        args.out = os.path.abspath(args.out)
        os.makedirs(args.out, exist_ok=True)
    except (ValueError, RuntimeError, client_mod.AddonError, OSError) as e:
        print(f"maskel batch: error: {e}", file=sys.stderr, flush=True)
        return 2

    failed: list[str] = []
    written = 0
    start = time.monotonic()
    for i, frame in enumerate(frames, 1):
        scene.frame_set(frame)
        job = pipeline.XrayJob(scene, character, cameras, client, resolution=args.resolution, style=args.style,
                               seed=args.seed, exclude_clothes=not args.keep_clothes, out_dir=args.out,
                               tag=f"_{frame:04d}", sr=args.sr)  # fmt: skip
        try:
            job.run_sync(show=False)
            written += 1
            print(f"maskel batch: frame {frame} ok ({i}/{len(frames)})", flush=True)
        except (client_mod.AddonError, OSError, ValueError) as e:
            failed.append(str(frame))
            print(f"maskel batch: frame {frame} failed: {e}", file=sys.stderr, flush=True)
            if isinstance(e, client_mod.AddonError) and e.code in client_mod.SERVER_GONE:
                break  # the server is gone: do not wait on every remaining frame
    print(f"maskel batch: {written}/{len(frames)} frames x {len(cameras)} camera(s) written to {args.out} "
          f"in {time.monotonic() - start:.1f} s" + (f"; failed: {','.join(failed)}" if failed else ""), flush=True)  # fmt: skip
    return 0 if written == len(frames) else 1


def _argv() -> list[str]:
    return sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []


if __name__ == "__main__":
    sys.exit(run(_argv()))  # Blender exits with this code, without a traceback
