"""Average the weights of several checkpoints of one training run (checkpoint averaging).

    maskel average runs/s2/step-003000 runs/s2/step-003250 ... --out runs/s2/averaged

The uniform mean of the last few step checkpoints (the trainer keeps ``keep_last`` of them) is a
free, post-hoc relative of a weight EMA: no retraining, and the averaged model usually lands in a
flatter part of the loss than any one checkpoint. Floating-point tensors (weights, the VQ
codebook's EMA buffers) are averaged; integer and bool buffers (``initted`` flags, counters) are
taken from the newest checkpoint, as ``maskel.ema`` does. The checkpoints must come from one
architecture (same stage, resolution, styles and tensor shapes); the result carries the newest
one's metadata with ``averaged_steps`` added and no validation metrics (it was never validated).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from maskel.checkpoint import load_checkpoint, save_checkpoint
from maskel.errors import BadCheckpoint, MaskelError

SAME_META = ("stage", "resolution", "styles", "pose_channel")
"""Metadata that every averaged checkpoint must share (besides its tensors' names and shapes)."""


def average_checkpoints(paths: list[str | Path]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The uniform weight average of ``paths`` (newest = highest step last), with its metadata."""
    if len(paths) < 2:
        raise MaskelError("averaging needs at least two checkpoints")
    loaded = sorted((load_checkpoint(p) + (str(p),) for p in paths), key=lambda c: c[1]["step"])
    steps = [int(meta["step"]) for _, meta, _ in loaded]
    if len(set(steps)) != len(steps):
        raise MaskelError(f"the checkpoints repeat a step ({steps}): give each checkpoint once")
    first_tensors, first_meta, first_path = loaded[0]
    sums = {k: v.double() for k, v in first_tensors.items() if v.is_floating_point()}
    for tensors, meta, path in loaded[1:]:
        for key in SAME_META:
            if meta[key] != first_meta[key]:
                raise BadCheckpoint(f"{path}: {key} {meta[key]!r} differs from {first_path}'s {first_meta[key]!r}")
        if tensors.keys() != first_tensors.keys():
            raise BadCheckpoint(f"{path}: holds other tensors than {first_path} (another architecture)")
        for k, v in tensors.items():
            if v.shape != first_tensors[k].shape:
                raise BadCheckpoint(f"{path}: tensor {k} is {tuple(v.shape)}, {tuple(first_tensors[k].shape)} in {first_path}")
            if k in sums:
                sums[k] += v.double()
    newest, newest_meta, _ = loaded[-1]
    averaged = {k: (sums[k] / len(loaded)).to(v.dtype) if k in sums else v.clone() for k, v in newest.items()}
    return averaged, {**newest_meta, "metrics": {}, "averaged_steps": steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="maskel average", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="checkpoints of one run (.safetensors, .json or the name without either)")
    ap.add_argument("--out", required=True, help="the averaged checkpoint (writes <out>.safetensors + <out>.json)")
    args = ap.parse_args(argv)
    try:
        tensors, meta = average_checkpoints(args.checkpoints)
        written = save_checkpoint(args.out, tensors, meta)
    except MaskelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{written}: the mean of {len(meta['averaged_steps'])} checkpoints (steps {', '.join(map(str, meta['averaged_steps']))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
