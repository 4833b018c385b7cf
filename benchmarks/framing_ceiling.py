"""What the canonical framing alone costs a perfect model: each truth framed to the model
resolution and back (maskel.data.framing), scored against itself inside the body like
``maskel eval`` scores a model.

    python benchmarks/framing_ceiling.py --data DIR [DIR ...] [--resolution 256] [--limit 200]

A dataset whose bodies' framed square is smaller than the resolution is upsampled into the model
and downsampled back, which blurs: the sharpness ratio of that round trip is the most a model
trained on such framed targets can score. Prints, per dataset: the share of samples upsampled,
the median framed side, and the round trip's SSIM inside the body and sharpness ratio (radiograph).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from maskel.data.framing import compute_frame, frame_image, unframe_image  # noqa: E402
from maskel.data.manifest import read_manifest  # noqa: E402
from maskel.imageio import load_gray, load_mask  # noqa: E402
from maskel.metrics import sharpness, ssim  # noqa: E402


def round_trip(mask: np.ndarray, truth: np.ndarray, resolution: int) -> tuple[int, float, float]:
    """(framed side, SSIM inside the body, sharpness ratio) of truth -> model frame -> back."""
    frame = compute_frame(mask)
    back = unframe_image(np.clip(frame_image(truth, frame, resolution), 0.0, 1.0), frame) * mask
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]  # noqa: E731
    m = t(mask)
    ratio = sharpness(t(back), m) / sharpness(t(truth), m).clamp_min(1e-6)
    return frame.side, float(ssim(t(back), t(truth), m)), float(ratio)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="+", type=Path, required=True)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args()
    print(f"{'dataset':<28} {'size':>5} {'upsampled':>9} {'side p50':>8} {'ssim_body':>9} {'sharpness':>9}")
    for root in args.data:
        rows = []
        for rec in read_manifest(root, verify_files=False)[: args.limit]:
            mask = load_mask(root / rec["files"]["mask"]).mask
            rows.append(round_trip(mask, load_gray(root / rec["files"]["radiograph"]), args.resolution))
        sides = [r[0] for r in rows]
        print(f"{root.name:<28} {rec['size']:>5} {np.mean([s < args.resolution for s in sides]):>9.2f} "
              f"{statistics.median(sides):>8.0f} {np.mean([r[1] for r in rows]):>9.3f} {np.mean([r[2] for r in rows]):>9.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
