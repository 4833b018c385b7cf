"""``maskel augment``: draw synthetic (mask, X-ray) samples from a trained DDPM into a dataset folder.

    maskel augment --checkpoint runs/ddpm/last.safetensors --n 2000 --out data_aug [--steps 50]

The folder has the layout of the data the DDPM was trained on: our manifest layout
(manifest.jsonl + labels.json + samples/<id>/{mask,radiograph,dxa}.png, with no labels or joints),
or the upstream layout (<i>/skeleton.png + <i>/label.png) for a DXA-only model. Stage 1 reads it
like any dataset (``[stage1] augmented = [...]`` or another ``--data`` folder).

Resumable like ``render.dataset``: sample i is a pure function of (checkpoint, seed, i); its files
are written atomically, then its index is appended (one fsync'd line) to ``augment.progress``. A
rerun after any interruption (SIGKILL included) skips the indices listed there, so no sample is
drawn twice and a half-written one is simply drawn again. A sample with (almost) no silhouette is
rejected (listed as such, not written). ``augment.json`` records the settings;
a rerun with other settings into the same folder is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from maskel import MaskelError
from maskel.atomic import atomic_write_json
from maskel.data.manifest import sample_files, sample_id

PROGRESS = "augment.progress"
SETTINGS = "augment.json"
MIN_BODY_FRACTION = 0.02
"""A drawn sample whose silhouette covers less of the frame than this is rejected (not written)."""


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def read_progress(out: Path) -> dict[int, bool]:
    """Index -> kept (False: rejected, its mask was too small) of the samples finished so far; a
    line cut short by a crash is ignored (that sample is drawn again)."""
    path = out / PROGRESS
    if not path.exists():
        return {}
    done: dict[int, bool] = {}
    for line in path.read_text().splitlines(keepends=True):
        parts = line.split()
        if line.endswith("\n") and len(parts) == 2 and parts[0].isdigit() and parts[1] in ("ok", "rejected"):
            done[int(parts[0])] = parts[1] == "ok"
    return done


def _mark_done(out: Path, results: list[tuple[int, bool]]) -> None:
    with open(out / PROGRESS, "a", encoding="utf-8") as f:
        f.write("".join(f"{i} {'ok' if ok else 'rejected'}\n" for i, ok in results))
        f.flush()
        os.fsync(f.fileno())


def _record(index: int, settings: dict[str, Any]) -> dict[str, Any]:
    sid = sample_id(index)
    files = {"labels": "", "joints": "", "pose_map": "", **sample_files(sid, ["mask", *settings["styles"]])}
    return {"id": sid, "index": index, "seed": settings["seed"], "size": settings["resolution"], "files": files,
            "body": {}, "pose": {}, "camera": {}, "styles": settings["styles"],
            "source": {"ddpm": settings["checkpoint"], "sha256": settings["checkpoint_sha256"], "steps": settings["steps"]}}  # fmt: skip


def _write_sample(out: Path, index: int, mask: np.ndarray, xray: np.ndarray, settings: dict[str, Any]) -> None:
    from maskel.imageio import save_gray, save_mask

    if settings["layout"] == "upstream":
        d = out / str(index)
        save_gray(d / "skeleton.png", xray[0], bits=8)
        save_mask(d / "label.png", mask)
        return
    files = sample_files(sample_id(index), ["mask", *settings["styles"]])
    save_mask(out / files["mask"], mask)
    for c, style in enumerate(settings["styles"]):
        save_gray(out / files[style], xray[c])


def _finish(out: Path, kept: list[int], settings: dict[str, Any]) -> None:
    if settings["layout"] == "upstream":
        return
    from maskel.data.manifest import write_manifest

    write_manifest(out / "manifest.jsonl", [_record(i, settings) for i in kept])
    atomic_write_json(out / "labels.json", settings["label_names"])


def sampler_path(checkpoint: str | Path) -> Path:
    from maskel.checkpoint import checkpoint_paths

    return checkpoint_paths(checkpoint)[0]


def augment(checkpoint: str | Path, n: int, out: Path, seed: int = 0, steps: int | None = None, batch: int = 8) -> int:
    """Draw samples 0..n-1 into ``out`` (skipping finished ones); returns how many were drawn now.
    Samples with (almost) no silhouette are rejected and listed as such, so the folder may hold
    fewer than ``n``."""
    from tqdm import tqdm

    from maskel.diffusion.ddpm import XraySampler

    if n < 1 or batch < 1:
        raise MaskelError("--n and --batch must be at least 1")
    sampler = XraySampler(checkpoint, steps)
    cfg = sampler.cfg
    layout = "upstream" if cfg.get("layout") == "upstream" else "manifest"
    if layout == "upstream" and sampler.styles != ["dxa"]:
        raise MaskelError(f"{checkpoint}: an upstream-layout model must draw DXA only, this one draws {sampler.styles}")
    settings = {"checkpoint": Path(checkpoint).name, "checkpoint_sha256": _file_sha(sampler_path(checkpoint)),
                "seed": int(seed), "steps": sampler.steps, "resolution": sampler.resolution, "styles": sampler.styles,
                "layout": layout, "label_names": cfg.get("label_names", {})}  # fmt: skip
    if out.exists() and not out.is_dir():
        raise MaskelError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    old = out / SETTINGS
    if old.exists():
        prev = json.loads(old.read_text())
        if prev != settings:
            diff = ", ".join(f"{k} {prev.get(k)!r} -> {v!r}" for k, v in settings.items() if prev.get(k) != v)
            raise MaskelError(f"{out} holds samples drawn with other settings ({diff}); use another --out")
    else:
        atomic_write_json(old, settings)
    done = read_progress(out)
    todo = [i for i in range(n) if i not in done]
    bar = tqdm(total=n, initial=n - len(todo), desc="augment", unit="sample", dynamic_ncols=True)
    try:
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            masks, xrays = sampler.sample(seed, chunk)
            results = []
            for k, i in enumerate(chunk):
                ok = int(masks[k].sum()) >= MIN_BODY_FRACTION * masks[k].size
                if ok:
                    _write_sample(out, i, masks[k], xrays[k], settings)
                results.append((i, ok))
            _mark_done(out, results)
            bar.update(len(chunk))
    finally:
        bar.close()
    done = read_progress(out)
    _finish(out, [i for i in range(n) if done.get(i)], settings)
    return len(todo)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="maskel augment", description="Draw synthetic X-ray samples from a DDPM checkpoint (resumable).")
    ap.add_argument("--checkpoint", required=True, help="a ddpm checkpoint (python -m maskel.train ddpm)")
    ap.add_argument("--n", required=True, type=int, help="number of samples in the folder when done")
    ap.add_argument("--out", required=True, type=Path, help="dataset folder to write (or resume)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, help="DDIM sampling steps (default: the checkpoint's sample_steps)")
    ap.add_argument("--batch", type=int, default=8, help="samples per forward pass")
    args = ap.parse_args(argv)
    try:
        drawn = augment(args.checkpoint, args.n, args.out, args.seed, args.steps, args.batch)
    except MaskelError as e:
        print(f"maskel: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished samples are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    kept = sum(read_progress(args.out).values())
    rest = f" ({args.n - kept} rejected: no silhouette)" if kept < args.n else ""
    print(f"drew {drawn} sample(s); {args.out} holds {kept} of {args.n}{rest}")
    return 0
