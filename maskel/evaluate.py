"""Scoring generated X-rays inside the body, and ``maskel eval``: the results table of checkpoints.

What is measured (per image, then averaged over the images where it is defined):
- ``ssim_body`` / ``ssim_body_dxa``: the SSIM map (``maskel.metrics``) averaged over the body's
  pixels, radiograph and DXA style; ``psnr_body``: PSNR over the body's pixels (radiograph).
- ``bone_dice``: Dice of the bone masks ``dxa > BONE_THRESHOLD`` of generated and true DXA images.
- ``dice_<region>`` for skull, spine, ribs (ribs + sternum + costal cartilage), pelvis, arms
  (shoulder girdle + arm bones), hands, legs, feet: the same Dice restricted to the region's
  support, i.e. the true label map's pixels of that region dilated by ``REGION_DILATE`` px (so a
  bone drawn just beside the true one counts against the model); undefined when the region is
  not in view. Regions come from the label *names* of the dataset's labels.json.
- ``sharpness``: mean gradient magnitude inside the body (outline excluded), generated / true
  radiograph: below 1 the model blurs, above 1 it invents texture.
- ``label_dice``: Dice of the label head's bone region vs the true one, when the model has one.

Images are scored at the held-out set's own size, end to end through the ``Predictor`` (framing,
model, inverse framing), so models of different resolutions are compared on the same pixels.

    maskel eval --checkpoint C [--checkpoint C2 ...] --data HELDOUT --out DIR [--limit N] [--mirror-average]

writes DIR/report.md, DIR/report.json and DIR/review-<model>.png (worst / median / best by
ssim_body: mask | generated | truth | |difference| for both styles, cropped to the body and
enlarged), and prints the table. Each model is scored with the joints and without them.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from tqdm import tqdm

from maskel import MaskelError
from maskel.atomic import atomic_write_bytes
from maskel.imageio import encode_u8
from maskel.interrupt import StopRequest, ctrl_c_stops
from maskel.metrics import dice, psnr, sharpness, ssim

BONE_THRESHOLD = 0.10
"""A pixel is bone where the DXA image (bone-mineral areal density scaled to [0, 1]) exceeds it."""
REGION_DILATE = 3

REGION_PATTERNS: dict[str, str] = {
    "skull": r"cranium|skull|facial|mandible|jaw|hyoid",
    "spine": r"vertebra|cervical|thoracic\d|lumbar|sacrum|coccyx",
    "ribs": r"rib|stern|manubrium|costal|xiphoid|thorax",
    "pelvis": r"hip_bone|pelvis|ilium|ischium|pubis",
    "arms": r"clavicle|scapula|humerus|radius|ulna",
    "hands": r"_hand_|metacarpal|carpal|scaphoid|lunate|triquetrum|pisiform|trapezi|capitate|hamate",
    "legs": r"femur|patella|tibia|fibula",
    "feet": r"_foot_|metatarsal|tarsal|talus|calcaneus|navicular|cuboid|cuneiform|toe",
}
REGIONS = tuple(REGION_PATTERNS)


def region_of(name: str) -> str | None:
    """The evaluation region of a bone label name (None for organs and unknown names)."""
    for region in REGIONS:  # the first matching region wins
        if re.search(REGION_PATTERNS[region], name):
            return region
    return None


def region_lut(label_names: dict[int, str]) -> np.ndarray:
    """A 256-entry label id -> region index (len(REGIONS) = none) table."""
    lut = np.full(256, len(REGIONS), dtype=np.int64)
    for i, name in label_names.items():
        r = region_of(name)
        if r is not None and 0 <= i < 256:
            lut[i] = REGIONS.index(r)
    return lut


def _dilate(x: torch.Tensor, px: int) -> torch.Tensor:
    return F.max_pool2d(x.float(), 2 * px + 1, stride=1, padding=px) > 0


def score_batch(
    pred: torch.Tensor,
    truth: torch.Tensor,
    mask: torch.Tensor,
    styles: list[str],
    labels: torch.Tensor | None = None,
    lut: np.ndarray | None = None,
    pred_labels: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Per-image metrics (B,) of generated vs true X-rays (B, S, H, W) in [0, 1] with the body mask
    (B, 1, H, W); NaN where a metric is undefined for an image (a region not in view)."""
    mask = mask.float()
    rad = styles.index("radiograph") if "radiograph" in styles else 0
    out: dict[str, torch.Tensor] = {
        "ssim_body": ssim(pred[:, rad : rad + 1], truth[:, rad : rad + 1], mask),
        "psnr_body": psnr(pred[:, rad : rad + 1], truth[:, rad : rad + 1], mask),
        "sharpness": sharpness(pred[:, rad : rad + 1], mask) / sharpness(truth[:, rad : rad + 1], mask).clamp_min(1e-6),
    }
    if "dxa" in styles:
        d = styles.index("dxa")
        out["ssim_body_dxa"] = ssim(pred[:, d : d + 1], truth[:, d : d + 1], mask)
        bone_p, bone_t = pred[:, d] > BONE_THRESHOLD, truth[:, d] > BONE_THRESHOLD
        out["bone_dice"] = dice(bone_p, bone_t)
        if labels is not None and lut is not None:
            region = torch.from_numpy(lut)[labels.long().clamp(0, 255)]
            for k, name in enumerate(REGIONS):
                support = _dilate((region == k)[:, None], REGION_DILATE)[:, 0]
                present = (region == k).flatten(1).any(dim=1)
                value = dice(bone_p & support, bone_t & support)
                out[f"dice_{name}"] = torch.where(present, value, torch.full_like(value, math.nan))
    if pred_labels is not None and labels is not None:
        out["label_dice"] = dice(pred_labels > 0, labels > 0)
    return out


def mean_metrics(per_image: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Means over images of per-image metric rows, ignoring undefined (NaN) entries."""
    keys = list(per_image[0]) if per_image else []
    return {k: float(torch.nanmean(torch.cat([m[k].float() for m in per_image]))) for k in keys}


# --- maskel eval --------------------------------------------------------------------------------

TABLE_KEYS = ("ssim_body", "ssim_body_dxa", "psnr_body", "bone_dice", "dice_hands", "sharpness") + tuple(
    f"dice_{r}" for r in REGIONS if r != "hands"
) + ("label_dice",)


def format_table(rows: list[tuple[str, dict[str, float]]], markdown: bool = False) -> str:
    keys = [k for k in TABLE_KEYS if any(k in r for _, r in rows)]
    if markdown:
        lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        lines += ["| " + name + " | " + " | ".join(f"{r[k]:.3f}" if k in r else "-" for k in keys) + " |" for name, r in rows]
        return "\n".join(lines)
    width = max([28] + [len(n) + 2 for n, _ in rows])
    names = [k.replace("dice_", "d_").replace("ssim_body", "ssim") for k in keys]
    cols = [max(8, len(n) + 2) for n in names]
    head = f"{'model':<{width}}" + "".join(f"{n:>{c}}" for n, c in zip(names, cols, strict=True))
    lines = [head, "-" * len(head)]
    for name, r in rows:
        lines.append(f"{name:<{width}}" + "".join(f"{r[k]:>{c}.3f}" if k in r else f"{'-':>{c}}" for k, c in zip(keys, cols, strict=True)))
    return "\n".join(lines)


def read_heldout(root: str, limit: int | None) -> tuple[list[Any], list[str], dict[int, str]]:
    from maskel.data.datasets import find_refs

    _, refs, styles, names = find_refs(root)
    return refs[:limit] if limit else refs, styles, names


def load_sample(ref: Any, styles: list[str]) -> dict[str, Any]:
    from maskel.imageio import load_gray, load_labels, load_mask

    mask = load_mask(ref.mask).mask
    return {
        "mask": mask,
        "xray": np.stack([load_gray(ref.xrays[s]) for s in styles]),
        "labels": load_labels(ref.labels) if ref.labels is not None else None,
        "joints": json.loads(ref.joints.read_text()) if ref.joints is not None else None,
    }


def evaluate_predictor(
    predictor: Any, samples: list[dict[str, Any]], styles: list[str], lut: np.ndarray | None, joints: bool, stop: StopRequest | None = None
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Scores of a ``Predictor`` on loaded held-out samples -> (means, per-sample rows with the
    generated images, for the review sheet); ``stop`` (a Ctrl-C request) is checked per sample."""
    shown = []
    for s in tqdm(samples, desc=f"eval {'with' if joints else 'without'} joints", unit="img", leave=False, disable=None):
        if stop is not None:
            stop.check()
        n = len(styles)  # one call: the mask once per style, batched
        pj = [s["joints"]] * n if joints and s["joints"] is not None else None
        out = predictor.predict([s["mask"]] * n, joints=pj, style=styles, labels=predictor.has_labels and s["labels"] is not None)
        label_map = out[0].labels
        pred = torch.from_numpy(np.stack([p.xray for p in out]))[None]
        truth = torch.from_numpy(s["xray"].astype(np.float32))[None]
        m = torch.from_numpy(s["mask"])[None, None]
        lab = torch.from_numpy(s["labels"].astype(np.int64))[None] if s["labels"] is not None else None
        pl = torch.from_numpy(label_map.astype(np.int64))[None] if label_map is not None else None
        r = score_batch(pred, truth, m, styles, lab, lut, pl)
        shown.append({"mask": s["mask"], "pred": pred[0].numpy(), "truth": s["xray"], "ssim_body": float(r["ssim_body"][0]), "metrics": r})
    return mean_metrics([s["metrics"] for s in shown]), shown


def split_by_hold_out(refs: list[Any], shown: list[dict[str, Any]], hold_out: Any) -> dict[str, dict[str, float]]:
    """Means over the held-out set's samples a model saw the like of in training ("seen") and
    over those its training held out ("held out"), for a generalisation figure."""
    held = [hold_out.holds(r) for r in refs]
    parts = {"seen": [s["metrics"] for s, h in zip(shown, held, strict=True) if not h], "held out": [s["metrics"] for s, h in zip(shown, held, strict=True) if h]}
    return {k: {"samples": float(len(v)), **mean_metrics(v)} for k, v in parts.items() if v}


def _crop_box(mask: np.ndarray, pad: int = 4) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return max(0, xs.min() - pad), max(0, ys.min() - pad), min(w, xs.max() + 1 + pad), min(h, ys.max() + 1 + pad)


def review_sheet(shown: list[dict[str, Any]], styles: list[str], title: str, scale: int = 2) -> np.ndarray:
    """Worst, median and best sample by ssim_body: one row each, columns mask | generated | truth
    | |difference| per style, cropped to the body and enlarged ``scale`` times -> uint8 (H, W)."""
    order = sorted(range(len(shown)), key=lambda i: shown[i]["ssim_body"])
    picks = [("worst", order[0]), ("median", order[len(order) // 2]), ("best", order[-1])]
    rows: list[Image.Image] = []
    for name, i in picks:
        s = shown[i]
        x0, y0, x1, y1 = _crop_box(s["mask"])
        cols = [s["mask"].astype(np.float32)]
        for c in range(len(styles)):
            cols += [s["pred"][c], s["truth"][c], np.abs(s["pred"][c] - s["truth"][c])]
        strip = np.concatenate([np.pad(c[y0:y1, x0:x1], ((0, 0), (0, 2)), constant_values=0.5) for c in cols], axis=1)
        img = Image.fromarray((np.clip(strip, 0, 1) * 255 + 0.5).astype(np.uint8))
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
        row = Image.new("L", (img.width, img.height + 14), 0)
        row.paste(img, (0, 14))
        ImageDraw.Draw(row).text((4, 1), f"{name}: SSIM(body) {s['ssim_body']:.3f}", fill=255)
        rows.append(row)
    head = f"{title} - columns: mask | " + " | ".join(f"{s}: generated, truth, |diff|" for s in styles)
    canvas = Image.new("L", (max(r.width for r in rows), sum(r.height for r in rows) + 16), 0)
    ImageDraw.Draw(canvas).text((4, 2), head, fill=255)
    y = 16
    for r in rows:
        canvas.paste(r, (0, y))
        y += r.height
    return np.asarray(canvas)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def run_eval(
    checkpoints: Sequence[str],
    data: str,
    out: Path,
    limit: int | None,
    names: Sequence[str] | None = None,
    stop: StopRequest | None = None,
    mirror_average: bool = False,
) -> list[tuple[str, dict[str, float]]]:
    """Score each checkpoint on the held-out set in ``data``; write report.md, report.json and a
    review sheet per model into ``out``. ``stop`` (a Ctrl-C request) is checked per sample;
    ``mirror_average`` as the Predictor's (off by default, as for users)."""
    from maskel.data.datasets import HoldOut
    from maskel.infer import Predictor

    refs, styles, label_names = read_heldout(data, limit)
    lut = region_lut(label_names) if label_names else None
    samples = [load_sample(r, styles) for r in tqdm(refs, desc="reading held-out set", unit="sample", leave=False, disable=None)]
    table: list[tuple[str, dict[str, float]]] = []
    report: dict[str, Any] = {"data": str(data), "samples": len(samples), "bone_threshold": BONE_THRESHOLD, "models": {}}
    out.mkdir(parents=True, exist_ok=True)
    for k, ckpt in enumerate(checkpoints):
        pred = Predictor(ckpt, device="cpu", mirror_average=mirror_average)
        missing = [s for s in styles if s not in pred.styles]
        if missing:
            raise MaskelError(f"{ckpt}: the model does not draw {', '.join(missing)}, which the held-out set has")
        name = names[k] if names and k < len(names) else pred.name
        entry: dict[str, Any] = {"checkpoint": str(ckpt), "resolution": pred.resolution, "mirror_average": mirror_average}
        hold_out = HoldOut.from_config(pred.meta["config"].get("data", {}).get("hold_out"))
        if hold_out:
            entry["hold_out"] = hold_out.to_config()
        for joints in (True, False) if pred.pose_channel else (False,):
            means, shown = evaluate_predictor(pred, samples, styles, lut, joints, stop)
            label = f"{name} ({'joints' if joints else 'mask only'})"
            table.append((label, means))
            entry["with_joints" if joints else "mask_only"] = means
            if hold_out:
                parts = split_by_hold_out(refs, shown, hold_out)
                table += [(f"{label[:-1]}, {part}: {int(m['samples'])})", m) for part, m in parts.items()]
                entry[("with_joints" if joints else "mask_only") + "_by_hold_out"] = parts
            if joints or not pred.pose_channel:
                sheet = review_sheet(shown, styles, label)
                atomic_write_bytes(out / f"review-{_safe_name(name)}.png", encode_u8(sheet))
        report["models"][name] = entry
    atomic_write_bytes(out / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    md = f"# maskel eval\n\n{len(samples)} held-out samples from `{data}`; bone threshold DXA > {BONE_THRESHOLD}.\n\n{format_table(table, markdown=True)}\n"
    atomic_write_bytes(out / "report.md", md.encode())
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="maskel eval", description="Score stage-2 checkpoints inside the body on a held-out set")
    ap.add_argument("--checkpoint", action="append", required=True, help="a stage-2 checkpoint (repeat for a comparison table)")
    ap.add_argument("--name", action="append", help="a display name per --checkpoint, in order")
    ap.add_argument("--data", required=True, help="held-out dataset directory (manifest.jsonl or the upstream layout)")
    ap.add_argument("--out", type=Path, default=Path("eval_out"), help="where report.md, report.json and review sheets go")
    ap.add_argument("--limit", type=int, help="score only the first N samples")
    ap.add_argument("--mirror-average", action="store_true", help="score the mean with the mirror image's drawing, not the single drawing")
    args = ap.parse_args(argv)
    try:
        torch.set_grad_enabled(False)
        with ctrl_c_stops() as stop:
            table = run_eval(args.checkpoint, args.data, args.out, args.limit, args.name, stop, args.mirror_average)
    except MaskelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(format_table(table))
    print(f"report: {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
