"""The ``maskel`` command: generate, serve, train, eval, and the plugged-in mannequin and demo.

This is a composition root: it wires render's providers and commands (found through
maskel.plugins, never imported) into the server and the command line.
Exit codes: 0 ok, 1 some inputs failed (the rest were still done), 2 usage or fatal error,
130 interrupted. User errors are one line on stderr (``maskel: error: ...``), never a traceback.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maskel import MaskelError, __version__
from maskel.errors import OutputError
from maskel.interrupt import StopRequest, ctrl_c_stops
from maskel.plugins import load_plugins

DELEGATED = {"train": "maskel.train", "eval": "maskel.evaluate", "augment": "maskel.diffusion.augment",
             "average": "maskel.average"}
PLUGGED = {"demo": "pose a random phantom, draw its X-ray, compare with the phantom's own",
           "mannequin": "export the rest-pose mannequin JSON (--out FILE)"}  # fmt: skip
"""Commands render/ provides through maskel.plugins (shown in --help even when it is not installed)."""


def _err(message: str) -> None:
    print(f"maskel: error: {message}", file=sys.stderr, flush=True)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maskel", description="MaSkel: silhouette mask -> whole-body X-ray.")
    parser.add_argument("--version", action="version", version=f"maskel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--checkpoint", help="stage-2 .safetensors (default: $MASKEL_CHECKPOINT, the cache, the packaged model)")
        p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")
        p.add_argument("--mirror-average", action="store_true", help="average each X-ray with the drawing of the mirror "
                       "image: a little more accurate, about 2.4 times the model time")  # fmt: skip

    g = sub.add_parser("generate", help="X-rays for mask PNGs (files, globs or directories)",
                       description="Write one X-ray PNG per mask PNG, named like the mask, into --out.")  # fmt: skip
    g.add_argument("inputs", nargs="+", metavar="INPUT", help="mask PNG files, glob patterns or directories of PNGs")
    g.add_argument("--out", required=True, type=Path, help="output directory")
    g.add_argument("--style", help="radiograph or dxa (default: the model's first style)")
    g.add_argument("--size", type=_positive, help="resize so the longer side is N px (aspect kept; the mask is "
                   "resized, nearest, and the X-ray drawn at that size); default: the mask's own size")  # fmt: skip
    g.add_argument("--bits", type=int, choices=(8, 16), default=16, help="PNG bit depth (default 16)")
    g.add_argument("--joints-dir", type=Path, help="pose JSON per mask: DIR/<mask name>.json (used if present)")
    g.add_argument("--labels", action="store_true", help="also write <name>_labels.png (bone ids)")
    g.add_argument("--batch", type=_positive, default=8, help="masks per forward pass (default 8)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--sr", help="super-resolution checkpoint (python -m maskel.train sr): lifts the X-ray ×2 or ×4")
    g.add_argument("--sr-scale", type=int, choices=(2, 4), help="the scale factor --sr must have (refused otherwise)")
    model_args(g)

    s = sub.add_parser("serve", help="the local HTTP server for the Blender add-on")
    s.add_argument("--host", default="127.0.0.1", help="bind address (non-loopback needs --token)")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--token", default=os.environ.get("MASKEL_TOKEN"),
                   help="require 'Authorization: Bearer T'; prefer $MASKEL_TOKEN: a --token is visible to other users in ps")  # fmt: skip
    s.add_argument("--max-batch", type=_positive, help="requests per forward pass (default: 8 on a GPU, 2 on a CPU, "
                   "where bigger batches cost more per image)")  # fmt: skip
    s.add_argument("--queue", type=_positive, default=64, help="queued requests before 503")
    s.add_argument("--batch-window-ms", type=float, default=5.0, help="how long to wait for more requests to batch")
    s.add_argument("--max-pixels", type=_positive, default=4096 * 4096, help="largest mask, in pixels (413 above)")
    s.add_argument("--max-body-bytes", type=_positive, default=64 * 1024 * 1024, help="largest request body (413 above)")
    s.add_argument("--pixel-budget", type=_positive, default=3 * 4096 * 4096,
                   help="mask pixels in flight at once across requests (503 above; bounds memory)")  # fmt: skip
    s.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a connection may take to send a request header (closed after)")  # fmt: skip
    s.add_argument("--sr", help="super-resolution checkpoint (python -m maskel.train sr) that requests can ask for "
                   "with \"sr\": true (the add-on's Quality: Super-resolution)")  # fmt: skip
    s.add_argument("--sr-scale", type=int, choices=(2, 4), help="the scale factor --sr must have (refused otherwise)")
    model_args(s)

    sub.add_parser("train", help="train a model (python -m maskel.train --help)", add_help=False)
    sub.add_parser("eval", help="score checkpoints inside the body on a held-out set (maskel eval --help)", add_help=False)
    sub.add_parser("augment", help="draw synthetic X-ray samples from a DDPM (maskel augment --help)", add_help=False)
    sub.add_parser("average", help="average the weights of a run's step checkpoints (maskel average --help)", add_help=False)
    for name, text in PLUGGED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _delegate(command: str, argv: list[str]) -> int:
    import importlib

    try:
        module = importlib.import_module(DELEGATED[command])
    except ImportError as e:
        raise MaskelError(f"'maskel {command}' needs the train extras (pip install 'maskel[train]'): {e}") from None
    return int(module.main(argv) or 0)


def _plugged(command: str, argv: list[str]) -> int:
    plugins = load_plugins()
    if command not in plugins.commands:
        why = "; ".join(plugins.missing) or "no plugin provides it"
        raise MaskelError(f"'maskel {command}' needs the render extras (pip install 'maskel[render]'): {why}")
    _, main = plugins.commands[command]
    try:
        return int(main(argv) or 0)
    except ImportError as e:
        raise MaskelError(f"'maskel {command}' needs the render extras (pip install 'maskel[render]'): {e}") from None


def _serve(args: argparse.Namespace) -> int:
    from maskel.serve import run

    if "--token" in sys.argv[1:] or any(a.startswith("--token=") for a in sys.argv[1:]):
        print("maskel: warning: a --token on the command line is visible to other users (ps); "
              "prefer the MASKEL_TOKEN environment variable", file=sys.stderr)  # fmt: skip
    plugins = load_plugins()
    return run(host=args.host, port=args.port, checkpoint=args.checkpoint, device=args.device, token=args.token,
               max_batch=args.max_batch, queue_size=args.queue, max_pixels=args.max_pixels,
               max_body_bytes=args.max_body_bytes, batch_window_s=args.batch_window_ms / 1000,
               pixel_budget=args.pixel_budget, header_timeout_s=args.header_timeout,
               mannequin=plugins.mannequin, skeleton=plugins.skeleton, sr=args.sr, sr_scale=args.sr_scale,
               mirror_average=args.mirror_average)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in DELEGATED:
            return _delegate(argv[0], argv[1:])
        if argv and argv[0] in PLUGGED:
            return _plugged(argv[0], argv[1:])
        args = build_parser().parse_args(argv)
        if args.command == "generate":
            with ctrl_c_stops() as stop:
                return _generate(args, stop)
        if args.command == "serve":
            return _serve(args)
        raise AssertionError(args.command)
    except MaskelError as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        print("maskel: interrupted", file=sys.stderr)
        return 130


def expand_inputs(inputs: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files, globs and directories -> (existing PNG paths in order, one error line per bad input)."""
    paths: list[Path] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() == ".png" and q.is_file())
            if not found:
                errors.append(f"{item}: no .png files in this directory")
            paths += found
        elif p.is_file():
            paths.append(p)
        elif glob.has_magic(item):
            found = sorted(Path(q) for q in glob.glob(item) if Path(q).is_file())
            if not found:
                errors.append(f"{item}: no files match")
            paths += found
        else:
            errors.append(f"{item}: no such file or directory")
    unique = list(dict.fromkeys(paths))
    return unique, errors


def read_joints(joints_dir: Path | None, mask_path: Path) -> dict[str, Any] | None:
    if joints_dir is None:
        return None
    jp = joints_dir / (mask_path.stem + ".json")
    if not jp.is_file():
        return None
    try:
        return json.loads(jp.read_text())
    except (OSError, ValueError) as e:
        raise MaskelError(f"{jp}: unreadable pose JSON ({e})") from None



def _resize_input(mask: Any, pose: dict[str, Any] | None, size: int | None) -> tuple[Any, dict[str, Any] | None]:
    """--size: nearest-resize the mask so its longer side is ``size``; scale the joints to match."""
    import numpy as np
    from PIL import Image

    h, w = mask.shape
    if size is None or max(h, w) == size:
        return mask, pose
    nw, nh = max(1, round(w * size / max(h, w))), max(1, round(h * size / max(h, w)))
    out = np.asarray(Image.fromarray(mask).resize((nw, nh), Image.Resampling.NEAREST))
    if pose is not None:
        sx, sy = nw / w, nh / h
        joints = [{**j, "x": float(j["x"]) * sx, "y": float(j["y"]) * sy} for j in pose.get("joints", [])]
        pose = {**pose, "width": nw, "height": nh, "joints": joints}
    return out, pose


def _generate(args: argparse.Namespace, stop: StopRequest) -> int:
    from tqdm import tqdm

    from maskel.imageio import load_mask, save_gray, save_u8
    from maskel.infer import Predictor, pose_array

    paths, errors = expand_inputs(args.inputs)
    for line in errors:
        _err(line)
    if not paths:
        raise MaskelError("no input masks")
    out_dir: Path = args.out
    if out_dir.exists() and not out_dir.is_dir():
        raise MaskelError(f"--out {out_dir} exists and is not a directory")
    try:  # before the model loads: an unwritable --out is found in a second, not after the work
        out_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise OutputError(f"--out {out_dir}: cannot write there ({e.strerror or e})") from None
    predictor = Predictor(args.checkpoint, device=args.device, max_batch=args.batch, sr=args.sr, sr_scale=args.sr_scale,
                          mirror_average=args.mirror_average)  # fmt: skip
    predictor.style_index(args.style)
    targets: dict[Path, Path] = {}
    failed = len(errors)
    start = time.perf_counter()
    written = 0

    def fail(path: Path, reason: str) -> None:
        nonlocal failed
        failed += 1
        bar.write(f"maskel: error: {path}: {reason}", file=sys.stderr)

    # a with block: the bar's last line is out before any message, also when Ctrl-C stops the loop
    with tqdm(total=len(paths), unit="mask", desc="generating", disable=len(paths) < 2, file=sys.stderr) as bar:
        for i in range(0, len(paths), args.batch):
            stop.check()  # between batches: what is written stays whole, the rest is not started
            batch: list[tuple[Path, Path, Any, dict[str, Any] | None]] = []
            for path in paths[i : i + args.batch]:
                target = out_dir / (path.stem + ".png")
                if target in targets.values() or target.resolve() == path.resolve():
                    fail(path, f"output {target} would clash with {'its input' if target.resolve() == path.resolve() else 'another input'}")
                    bar.update(1)
                    continue
                try:
                    mask = load_mask(path).mask
                    pose = read_joints(args.joints_dir, path)
                    if pose is not None:
                        pose_array(pose, mask.shape)  # a bad pose is this input's error, before any resizing
                    mask, pose = _resize_input(mask, pose, args.size)
                except MaskelError as e:
                    fail(path, str(e).removeprefix(f"{path}: "))
                    bar.update(1)
                    continue
                targets[path] = target
                batch.append((path, target, mask, pose))
            if not batch:
                continue
            try:
                preds = predictor.predict([b[2] for b in batch], [b[3] for b in batch], style=args.style, seed=args.seed,
                                          labels=args.labels)  # fmt: skip
                items = list(zip(batch, preds, strict=True))
            except MaskelError:  # isolate the bad one(s)
                items = []
                for b in batch:
                    try:
                        items.append((b, predictor.predict([b[2]], [b[3]], style=args.style, seed=args.seed, labels=args.labels)[0]))
                    except MaskelError as e:
                        fail(b[0], str(e))
                        bar.update(1)
            for (_, target, _, _), pred in items:
                save_gray(target, pred.xray, bits=args.bits)
                if args.labels and pred.labels is not None:
                    save_u8(target.with_name(target.stem + "_labels.png"), pred.labels)
                written += 1
                bar.update(1)
    print(f"wrote {written} X-ray(s) to {out_dir} in {time.perf_counter() - start:.2f} s"
          + (f"; {failed} input(s) failed" if failed else ""))  # fmt: skip
    return 1 if failed else 0
