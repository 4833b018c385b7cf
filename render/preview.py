"""Contact sheet of a dataset: one row per sample, mask | radiograph | dxa | labels | pose map.

    python -m render.preview --data DIR --n 16 --out sheet.png
    python -m render.preview --seed 3 --n 8 --size 256 --out sheet.png   (fresh samples)
    python -m render.preview --seed 3 --n 8 --physics realistic [--fat off] --out sheet.png
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from maskel import MaskelError
from maskel.atomic import atomic_write_bytes

COLUMNS = ("mask", "radiograph", "dxa", "labels", "pose map")
HEADER_PX = 22
GAP = 2


def label_colours(n: int = 256) -> np.ndarray:
    """(n, 3) uint8: 0 black, then well-separated hues (golden-angle steps) for bone ids."""
    i = np.arange(n)
    h = (i * 0.618034) % 1.0
    s, v = 0.55 + 0.45 * ((i * 7) % 3) / 2, 0.75 + 0.25 * ((i * 5) % 2)
    k = (np.stack([5.0, 3.0, 1.0])[:, None] + h * 6) % 6
    rgb = v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)
    out = (rgb.T * 255).astype(np.uint8)
    out[0] = 0
    return out


def _row(mask, radiograph, dxa, labels, pose_map) -> np.ndarray:
    grey = [np.asarray(x, dtype=np.float32) for x in (mask, radiograph, dxa)]
    tiles = [np.repeat((np.clip(g, 0, 1) * 255).astype(np.uint8)[..., None], 3, -1) for g in grey]
    tiles.append(label_colours()[np.asarray(labels, dtype=np.uint8)])
    pm = np.clip(np.asarray(pose_map, dtype=np.float32), 0, 1)
    # trunk white, character's left orange, right cyan: easy to read at a glance
    colour = np.select([pm > 0.9, pm > 0.5, pm > 0.1], [1.0, 0.66, 0.33], 0.0)
    pm_rgb = np.zeros(pm.shape + (3,), np.uint8)
    pm_rgb[colour == 1.0] = (255, 255, 255)
    pm_rgb[colour == 0.66] = (255, 150, 40)
    pm_rgb[colour == 0.33] = (40, 200, 255)
    mask_dim = (np.asarray(mask, dtype=bool)[..., None] * 40).astype(np.uint8)
    tiles.append(np.maximum(pm_rgb, mask_dim))
    h = tiles[0].shape[0]
    gap = np.full((h, GAP, 3), 60, np.uint8)
    return np.concatenate(sum(([t, gap] for t in tiles), [])[:-1], axis=1)


def contact_sheet(rows: list[tuple[np.ndarray, ...]]) -> Image.Image:
    """Rows of (mask, radiograph, dxa, labels, pose_map) arrays of one size -> RGB image."""
    if not rows:
        raise MaskelError("no samples to show")
    body = [_row(*r) for r in rows]
    w = body[0].shape[1]
    size = rows[0][0].shape[0]
    gap = np.full((GAP, w, 3), 60, np.uint8)
    sheet = np.concatenate(sum(([b, gap] for b in body), [])[:-1], axis=0)
    img = Image.new("RGB", (w, sheet.shape[0] + HEADER_PX), (30, 30, 30))
    img.paste(Image.fromarray(sheet), (0, HEADER_PX))
    draw = ImageDraw.Draw(img)
    for k, name in enumerate(COLUMNS):
        draw.text((k * (size + GAP) + 4, 5), name, fill=(235, 235, 235))
    return img


def rows_from_dataset(root: Path, n: int) -> list[tuple[np.ndarray, ...]]:
    from maskel.data.manifest import read_manifest
    from maskel.imageio import load_gray, load_labels, load_mask

    out = []
    for rec in read_manifest(root, verify_files=False)[:n]:  # the loaders check what is shown
        f = {k: root / v for k, v in rec["files"].items() if v}
        mask = load_mask(f["mask"]).mask
        blank = np.zeros(mask.shape, np.float32)  # `maskel augment` samples have no labels nor pose map
        out.append((mask, load_gray(f["radiograph"]), load_gray(f["dxa"]),
                    load_labels(f["labels"]) if "labels" in f else blank.astype(np.uint8),
                    load_gray(f["pose_map"]) if "pose_map" in f else blank))  # fmt: skip
    return out


def rows_fresh(seed: int, n: int, size: int, physics=None, fat: bool | None = None) -> list[tuple[np.ndarray, ...]]:
    from render.dataset import DEFAULT_FAT, generate_sample

    out = []
    for i in range(n):
        s = generate_sample(i, seed, size, physics, DEFAULT_FAT if fat is None else fat)
        out.append((s.mask, s.radiograph, s.dxa, s.labels, s.pose_map))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m render.preview", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="dataset folder (default: render fresh samples)")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0, help="for fresh samples")
    ap.add_argument("--size", type=int, default=256, help="for fresh samples")
    ap.add_argument("--physics", default="clean", help="for fresh samples: clean or realistic (default physics)")
    ap.add_argument("--fat", choices=("on", "off"), help="for fresh samples: the fat layer (default: the dataset's)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        from render.physics import parse_physics

        physics = parse_physics(a.physics)
        if a.n < 1:
            raise MaskelError(f"--n must be at least 1, got {a.n}")
        if a.data is not None and not a.data.is_dir():
            raise MaskelError(f"--data {a.data} is not a folder")
        fat = None if a.fat is None else a.fat == "on"
        rows = rows_from_dataset(a.data, a.n) if a.data else rows_fresh(a.seed, a.n, a.size, physics, fat)
        buf = io.BytesIO()
        contact_sheet(rows).save(buf, format="PNG")
        atomic_write_bytes(a.out, buf.getvalue())
    except MaskelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {a.out} ({len(rows)} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
