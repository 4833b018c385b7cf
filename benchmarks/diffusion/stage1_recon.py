"""Stage-1 reconstruction of held-out X-rays, per checkpoint (issue 12's ablation).

    python benchmarks/diffusion/stage1_recon.py --heldout DIR [--limit N] NAME=S1.safetensors ...

The held-out X-rays framed at the checkpoint's resolution go through the MAE twice: with its
training masking (75 % of patches blanked, the same seeded masks for every checkpoint) and with
nothing blanked; SSIM inside the body (radiograph) and bone Dice (DXA > 0.10) of the redrawn image.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from maskel.data.framing import compute_frame, frame_image, frame_mask
from maskel.evaluate import load_sample, mean_metrics, read_heldout, score_batch
from maskel.models import load_mae


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--limit", type=int, help="score only the first N held-out samples (default: all)")
    ap.add_argument("checkpoints", nargs="+", help="NAME=path")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    refs, styles, _ = read_heldout(args.heldout, args.limit)
    samples = [load_sample(r, styles) for r in refs]
    print("| stage 1 | masked 75 %: SSIM body | bone Dice | unmasked: SSIM body | bone Dice |\n|---|---:|---:|---:|---:|")
    for item in args.checkpoints:
        name, path = item.split("=", 1)
        mae, meta = load_mae(path)
        res = int(meta["resolution"])
        xs, ms = [], []
        for s in samples:
            f = compute_frame(s["mask"])
            xs.append(np.stack([frame_image(s["xray"][c], f, res) for c in range(len(styles))]))
            ms.append(frame_mask(s["mask"], f, res))
        x = torch.from_numpy(np.clip(np.stack(xs), 0, 1).astype(np.float32))
        m = torch.from_numpy(np.stack(ms))[:, None]
        cells = []
        for ratio in (None, 0.0):
            torch.manual_seed(0)
            pred = mae(x, mask_ratio=ratio)["pred"].clamp(0, 1)
            r = mean_metrics([score_batch(pred, x, m, styles)])
            cells += [r["ssim_body"], r["bone_dice"]]
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
