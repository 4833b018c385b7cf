"""Issue 12's super-resolution table (prints markdown; writes a JSON and a comparison sheet).

    python benchmarks/diffusion/sr_table.py --heldout DIR --sr SR [SR ...] --gen GEN
        [--direct maskel/weights/default.safetensors] [--limit N] --out DIR

1. Oracle input: the held-out X-ray framed at the SR model's output resolution, area-downsampled
   by its scale, brought back up by bicubic interpolation or by the SR model; scored against the
   framed truth inside the body.
2. End to end (at the held-out images' own size): a low-resolution generator's X-ray brought to the
   frame by the Predictor's own bilinear resize, or lifted by each SR model whose input resolution
   is the generator's, against a generator drawing 256² directly.
SSIM and sharpness on the radiograph, bone Dice on the DXA image (> 0.10), as ``maskel eval``.
Latency: wall time per image on this CPU, one image at a time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from maskel.data.framing import compute_frame, frame_image, frame_mask
from maskel.diffusion.sr import SuperResolver
from maskel.evaluate import (
    evaluate_predictor,
    load_sample,
    mean_metrics,
    read_heldout,
    region_lut,
    score_batch,
)
from maskel.imageio import save_u8
from maskel.infer import Predictor

KEYS = ("ssim_body", "bone_dice", "sharpness")


def framed(samples: list[dict], styles: list[str], res: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ms = [], []
    for s in samples:
        f = compute_frame(s["mask"])
        xs.append(np.stack([frame_image(s["xray"][c], f, res) for c in range(len(styles))]))
        ms.append(frame_mask(s["mask"], f, res))
    return torch.from_numpy(np.clip(np.stack(xs), 0, 1).astype(np.float32)), torch.from_numpy(np.stack(ms))


def oracle(sr: SuperResolver, truth: torch.Tensor, masks: torch.Tensor, styles: list[str]) -> dict[str, dict[str, float]]:
    s = sr.scale
    lo = F.avg_pool2d(truth, s)
    bicubic = F.interpolate(lo, scale_factor=s, mode="bicubic", align_corners=False).clamp(0, 1) * masks[:, None]
    t0 = time.perf_counter()
    up = torch.from_numpy(np.concatenate([sr.upsample(lo[i : i + 1].numpy(), masks[i : i + 1].numpy(), seed=i) for i in range(len(lo))]))
    ms = (time.perf_counter() - t0) * 1000 / len(lo)
    m = masks[:, None]
    rows = {"bicubic": mean_metrics([score_batch(bicubic, truth, m, styles)]),
            "SR": {**mean_metrics([score_batch(up, truth, m, styles)]), "ms": ms}}  # fmt: skip
    return rows


def end_to_end(path: str, samples: list[dict], styles: list[str], lut, sr: str | None = None) -> dict[str, float]:
    pred = Predictor(path, device="cpu", sr=sr)
    t0 = time.perf_counter()
    means, shown = evaluate_predictor(pred, samples, styles, lut, joints=pred.pose_channel)
    means["ms"] = (time.perf_counter() - t0) * 1000 / (len(samples) * len(styles))
    means["shown"] = shown  # type: ignore[assignment]
    return means


def sheet(rows: list[tuple[str, list[dict]]], out: Path, k: int) -> None:
    """One held-out sample: truth | each method, radiograph, cropped to the body."""
    truth = rows[0][1][k]["truth"][0]
    ys, xs = np.nonzero(rows[0][1][k]["mask"])
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    tiles = [truth[y0:y1, x0:x1]] + [r[k]["pred"][0][y0:y1, x0:x1] for _, r in rows]
    img = np.concatenate([np.pad(t, ((0, 0), (0, 3)), constant_values=0.5) for t in tiles], axis=1)
    save_u8(out, (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--sr", nargs="+", required=True, help="SR checkpoints (oracle rows for each)")
    ap.add_argument("--gen", required=True, help="a low-resolution stage-2 checkpoint (end-to-end rows)")
    ap.add_argument("--direct", default="maskel/weights/default.safetensors")
    ap.add_argument("--limit", type=int, help="score only the first N held-out samples")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    refs, styles, names = read_heldout(args.heldout, args.limit)
    samples = [load_sample(r, styles) for r in refs]
    lut = region_lut(names) if names else None
    args.out.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict[str, float]] = {}
    low = Predictor(args.gen, device="cpu").resolution
    e2e = [(f"{low}² generator, bilinear (Predictor)", end_to_end(args.gen, samples, styles, lut))]
    for path in args.sr:
        sr = SuperResolver(path)
        truth, masks = framed(samples, styles, sr.resolution)
        for method, r in oracle(sr, truth, masks, styles).items():
            label = f"oracle ×{sr.scale} ({sr.low_resolution}² truth -> {sr.resolution}²): {method}"
            table[label + (f", {sr.steps} steps" if method == "SR" else "")] = r
        if sr.low_resolution == low:
            e2e.append((f"{low}² generator + SR ×{sr.scale}, {sr.steps} steps", end_to_end(args.gen, samples, styles, lut, sr=path)))
    e2e.append(("direct 256² generator (shipped default)", end_to_end(args.direct, samples, styles, lut)))
    for name, r in e2e:
        table[f"end to end: {name}"] = {k: v for k, v in r.items() if k != "shown"}
    sheet([(n, r["shown"]) for n, r in e2e], args.out / "sr-sheet.png", k=0)
    (args.out / "sr_table.json").write_text(json.dumps(table, indent=2) + "\n")
    print(f"{len(samples)} held-out samples of {args.heldout}, scored inside the body (oracle rows at the SR "
          "model's output size, end-to-end rows at the held-out images' own size)")
    print("| method | SSIM body | bone Dice | sharpness | ms / image (CPU) |\n|---|---:|---:|---:|---:|")
    for name, r in table.items():
        ms = f"{r['ms']:.0f}" if "ms" in r else "-"
        print(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in KEYS) + f" | {ms} |")


if __name__ == "__main__":
    main()
