"""``maskel demo`` (plugged in by render.plugin): the main job end to end without Blender or a server.

A fresh random phantom (body, pose, camera) is rendered by render.dataset.generate_sample; its
silhouette and 2D joints go through the Predictor; the prediction is written beside the
phantom's own rendered X-ray of the same style, and a side-by-side sheet (mask | predicted |
truth) for people to look at.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskel import MaskelError
from maskel.imageio import save_gray, save_mask, save_u8
from maskel.infer import Predictor
from render.dataset import generate_sample

SHEET_GAP = 4  # px of grey between the panels


@dataclass
class DemoResult:
    seed: int
    style: str
    model: str
    device: str
    files: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)  # seconds
    mae_in_body: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"seed": self.seed, "style": self.style, "model": self.model, "device": self.device,
                "files": {k: str(v) for k, v in self.files.items()}, "timings": self.timings,
                "mae_in_body": self.mae_in_body}  # fmt: skip


def contact_sheet(panels: list[np.ndarray]) -> np.ndarray:
    """Float [0, 1] (H, W) panels of one size -> one uint8 image, side by side with grey gaps."""
    h = panels[0].shape[0]
    gap = np.full((h, SHEET_GAP), 128, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for i, p in enumerate(panels):
        if i:
            parts.append(gap)
        parts.append((np.clip(p, 0.0, 1.0) * 255 + 0.5).astype(np.uint8))
    return np.concatenate(parts, axis=1)


def run_demo(
    out: str | Path,
    seed: int | None = None,
    size: int = 256,
    style: str | None = None,
    checkpoint: str | None = None,
    device: str = "auto",
) -> DemoResult:
    """Render a random posed phantom, predict its X-ray, write mask/xray/truth/sheet PNGs into ``out``."""
    if size < 32:
        raise MaskelError(f"--size {size} is too small for a phantom render (use 32 or more)")
    t0 = time.perf_counter()
    predictor = Predictor(checkpoint, device=device)
    name = predictor.styles[predictor.style_index(style)]
    t1 = time.perf_counter()
    seed = secrets.randbelow(2**31) if seed is None else seed
    try:
        sample = generate_sample(0, seed, size)
    except ImportError as e:
        raise MaskelError(f"the phantom renderer is not fully installed: {e}") from None
    truth = getattr(sample, name, None)
    if truth is None:
        raise MaskelError(f"the phantom renderer has no {name!r} image to compare with")
    t2 = time.perf_counter()
    pred = predictor.predict([sample.mask], [sample.joints], style=name, seed=seed)[0]
    t3 = time.perf_counter()
    out = Path(out)
    files = {"mask": out / "mask.png", "xray": out / "xray.png", "truth": out / "truth.png", "sheet": out / "sheet.png"}
    save_mask(files["mask"], sample.mask)
    save_gray(files["xray"], pred.xray)
    save_gray(files["truth"], truth)
    save_u8(files["sheet"], contact_sheet([sample.mask.astype(np.float32), pred.xray, truth]))
    t4 = time.perf_counter()
    body = sample.mask.astype(bool)
    mae = float(np.abs(pred.xray - truth)[body].mean())
    return DemoResult(
        seed=seed, style=name, model=predictor.name, device=str(predictor.device), files=files,
        timings={"load_model": t1 - t0, "render_phantom": t2 - t1, "predict": t3 - t2, "write": t4 - t3},
        mae_in_body=mae,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="maskel demo", description="Pose a random phantom, draw its X-ray, compare with the phantom's own.")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, help="random body/pose/camera seed (default: a fresh one, printed)")
    ap.add_argument("--size", type=int, default=256, help="image size in px (default 256)")
    ap.add_argument("--style", help="radiograph or dxa (default: the model's first style)")
    ap.add_argument("--checkpoint", help="stage-2 .safetensors (default: $MASKEL_CHECKPOINT, the cache, the packaged model)")
    ap.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")
    args = ap.parse_args(argv)
    result = run_demo(args.out, seed=args.seed, size=args.size, style=args.style, checkpoint=args.checkpoint, device=args.device)
    info: dict[str, Any] = result.summary()
    print(f"demo seed {info['seed']}, style {info['style']}, model {info['model']} ({info['device']})")
    for name, path in info["files"].items():
        print(f"  {name:6s} {path}")
    print("  timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in info["timings"].items()))
    print(f"  mean abs error inside the body vs the phantom's X-ray: {info['mae_in_body']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
