"""Paired training data: our manifest format and the upstream MaSkel folder layout.

Every sample is read once, passed through the canonical framing (maskel.data.framing) to the
model resolution and kept in memory (masks and labels as uint8, X-rays as float16), so an epoch
costs no PNG decoding. ``TrainView`` then serves augmented tensors; its randomness is derived
from (seed, epoch, sample index) only, which makes a resumed run see exactly the same batches.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from maskel import MaskelError
from maskel.data.augment import AugmentConfig, augment_sample, mirror_label_table
from maskel.data.framing import compute_frame, frame_image, frame_joints, frame_mask
from maskel.data.joints import joints_to_array
from maskel.data.manifest import STYLES, read_manifest
from maskel.data.posemap import default_radius, render_limb_maps
from maskel.imageio import load_gray, load_labels, load_mask

UPSTREAM_STYLE = "dxa"


@dataclass
class SampleRef:
    """Where one sample's files are (absolute paths)."""

    id: str
    mask: Path
    xrays: dict[str, Path]
    labels: Path | None = None
    joints: Path | None = None
    pose_kind: str | None = None  # the sampler's pose family (manifest layout only)
    yaw_deg: float | None = None  # the camera's yaw around the body (manifest layout only)
    group: str | None = None  # the body it shows (manifest layout only): see split_indices


@dataclass(frozen=True)
class HoldOut:
    """Samples kept out of training so a generalisation figure can be measured on them: whole pose
    families, and a camera yaw range in degrees (``lo <= yaw < hi`` modulo 360, so 330..30 wraps).

    Mirror augmentation maps yaw to 360 - yaw, so a range symmetric about 0 or 180 stays unseen.
    Recorded in the checkpoint's config ([data] hold_out), where ``maskel eval`` finds it."""

    pose_kinds: tuple[str, ...] = ()
    yaw_deg: tuple[float, float] | None = None

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> HoldOut:
        cfg = cfg or {}
        yaw = cfg.get("yaw_deg")
        try:
            return cls(tuple(str(k) for k in cfg.get("pose_kinds", ())), None if yaw is None else (float(yaw[0]), float(yaw[1])))
        except (TypeError, ValueError, IndexError):
            raise MaskelError(f"[data] hold_out must be {{pose_kinds = [names], yaw_deg = [lo, hi]}}, not {cfg!r}") from None

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pose_kinds": list(self.pose_kinds)}
        if self.yaw_deg is not None:
            out["yaw_deg"] = list(self.yaw_deg)
        return out

    def __bool__(self) -> bool:
        return bool(self.pose_kinds) or self.yaw_deg is not None

    def holds(self, ref: SampleRef) -> bool:
        """Whether ``ref`` is one of the held-out samples."""
        if ref.pose_kind in self.pose_kinds:
            return True
        if self.yaw_deg is None or ref.yaw_deg is None:
            return False
        if self.yaw_deg[1] - self.yaw_deg[0] >= 360.0:
            return True
        lo, hi = (v % 360.0 for v in self.yaw_deg)
        yaw = ref.yaw_deg % 360.0
        return lo <= yaw < hi if lo <= hi else yaw >= lo or yaw < hi


@dataclass
class FramedSample:
    """One sample at the model resolution."""

    id: str
    mask: np.ndarray  # uint8 (R, R) 0/1
    xray: np.ndarray  # float16 (S, R, R) in [0, 1]
    labels: np.ndarray | None  # uint8 (R, R)
    joints: np.ndarray | None  # float32 (J, 4) in model pixel coordinates
    group: str | None = None  # samples of one body (and its poses); None: a group of its own

    @property
    def split_key(self) -> str:
        return self.group if self.group is not None else self.id


@dataclass
class PairedData:
    root: Path
    layout: str  # "manifest" | "upstream"
    styles: list[str]
    label_names: dict[int, str]
    samples: list[FramedSample] = field(default_factory=list)

    @property
    def has_joints(self) -> bool:
        return any(s.joints is not None for s in self.samples)

    @property
    def num_labels(self) -> int:
        has = self.label_names and all(s.labels is not None for s in self.samples)
        return max(self.label_names) + 1 if has else 0

    def summary(self) -> dict[str, Any]:
        return {"root": str(self.root), "layout": self.layout, "samples": len(self.samples), "styles": self.styles, "num_labels": self.num_labels}


def _manifest_refs(root: Path) -> tuple[list[SampleRef], list[str], dict[int, str]]:
    records = read_manifest(root, verify_files=False)  # frame_sample reads and checks every file
    styles: list[str] | None = None
    refs = []
    for rec in records:
        files = rec["files"]
        rec_styles = [s for s in rec.get("styles", STYLES) if s in files]
        if styles is None:
            styles = rec_styles
        elif rec_styles != styles:
            raise MaskelError(f"sample {rec['id']}: styles {rec_styles} differ from the dataset's {styles}")
        refs.append(
            SampleRef(
                id=str(rec["id"]),
                mask=root / files["mask"],
                xrays={s: root / files[s] for s in rec_styles},
                labels=root / files["labels"] if files.get("labels") else None,
                joints=root / files["joints"] if files.get("joints") else None,
                pose_kind=(rec.get("pose") or {}).get("kind"),
                yaw_deg=(rec.get("camera") or {}).get("yaw_deg"),
                group=json.dumps(rec["body"], sort_keys=True) if rec.get("body") else None,
            )
        )
    if not styles:
        raise MaskelError(f"{root / 'manifest.jsonl'}: the samples list no X-ray styles")
    label_names: dict[int, str] = {}
    if (root / "labels.json").exists():
        try:
            label_names = {int(k): str(v) for k, v in json.loads((root / "labels.json").read_text()).items()}
        except (OSError, ValueError, AttributeError) as e:
            raise MaskelError(f"{root / 'labels.json'}: unreadable ({e})") from None
    return refs, styles, label_names


def _upstream_refs(root: Path) -> list[SampleRef]:
    dirs = [d for d in root.iterdir() if d.is_dir() and (d / "skeleton.png").exists() and (d / "label.png").exists()]
    dirs.sort(key=lambda d: (0, int(d.name), "") if d.name.isdigit() else (1, 0, d.name))
    return [SampleRef(id=d.name, mask=d / "label.png", xrays={UPSTREAM_STYLE: d / "skeleton.png"}) for d in dirs]


def find_refs(root: str | os.PathLike) -> tuple[str, list[SampleRef], list[str], dict[int, str]]:
    """Detect the layout of ``root`` -> (layout, refs, styles, label names)."""
    root = Path(root)
    if not root.is_dir():
        raise MaskelError(f"data directory {root} does not exist")
    if (root / "manifest.jsonl").exists():
        refs, styles, names = _manifest_refs(root)
        layout = "manifest"
    else:
        refs, styles, names, layout = _upstream_refs(root), [UPSTREAM_STYLE], {}, "upstream"
    if not refs:
        raise MaskelError(f"no samples in {root} (expected manifest.jsonl, or <i>/skeleton.png + <i>/label.png folders)")
    return layout, refs, styles, names


def frame_sample(ref: SampleRef, styles: list[str], resolution: int) -> FramedSample:
    """Read one sample's files and bring them to the model resolution with the canonical framing."""
    try:
        mask = load_mask(ref.mask).mask
        frame = compute_frame(mask)
        xrays = []
        for s in styles:
            img = load_gray(ref.xrays[s])
            if img.shape != mask.shape:
                raise MaskelError(f"{ref.xrays[s].name} is {img.shape[1]}x{img.shape[0]} but the mask is {mask.shape[1]}x{mask.shape[0]}")
            xrays.append(frame_image(img, frame, resolution))
        labels = None
        if ref.labels is not None:
            lab = load_labels(ref.labels)
            if lab.shape != mask.shape:
                raise MaskelError(f"{ref.labels.name} is {lab.shape[1]}x{lab.shape[0]} but the mask is {mask.shape[1]}x{mask.shape[0]}")
            labels = frame_image(lab, frame, resolution, nearest=True)
        joints = None
        if ref.joints is not None:
            try:
                arr = joints_to_array(json.loads(ref.joints.read_text()))
            except (OSError, json.JSONDecodeError) as e:
                raise MaskelError(f"{ref.joints.name}: unreadable ({e})") from None
            joints = frame_joints(arr, frame, resolution)
    except MaskelError as e:
        raise MaskelError(f"sample {ref.id}: {e}") from None
    m = frame_mask(mask, frame, resolution)
    return FramedSample(
        id=ref.id,
        mask=m.astype(np.uint8),
        xray=np.clip(np.stack(xrays), 0.0, 1.0).astype(np.float16),
        labels=labels,
        joints=joints,
        group=ref.group,
    )


def load_paired(root: str | os.PathLike, resolution: int, progress: bool = True, hold_out: HoldOut | None = None) -> PairedData:
    """Read and frame a whole dataset (either layout) into memory, without the ``hold_out`` samples."""
    layout, refs, styles, names = find_refs(root)
    if hold_out:
        if any(r.pose_kind is None or r.yaw_deg is None for r in refs):
            raise MaskelError(f"{root}: holding samples out needs each sample's pose kind and camera yaw (a render.dataset manifest)")
        refs = [r for r in refs if not hold_out.holds(r)]
        if not refs:
            raise MaskelError(f"{root}: the hold-out {hold_out.to_config()} leaves no sample to train on")
    data = PairedData(root=Path(root), layout=layout, styles=styles, label_names=names)
    for ref in tqdm(refs, desc="framing samples", unit="sample", disable=None if progress else True, leave=False):
        data.samples.append(frame_sample(ref, styles, resolution))
    return data


def load_paired_many(roots: list[str | os.PathLike], resolution: int, progress: bool = True, hold_out: HoldOut | None = None) -> PairedData:
    """Several datasets of the same styles and labels read as one; sample ids get their folder's
    name as a prefix so they stay unique (and the validation split stays a function of the id)."""
    if len(roots) == 1:
        return load_paired(roots[0], resolution, progress, hold_out)
    parts = [load_paired(r, resolution, progress, hold_out) for r in roots]
    first = parts[0]
    for root, part in zip(roots[1:], parts[1:], strict=True):
        if part.styles != first.styles or part.label_names != first.label_names:
            raise MaskelError(f"{root}: its styles or bone labels differ from {roots[0]}'s; datasets trained together must agree")
    merged = PairedData(root=first.root, layout=first.layout, styles=first.styles, label_names=first.label_names)
    for root, part in zip(roots, parts, strict=True):
        name = Path(root).name
        merged.samples += [FramedSample(f"{name}/{x.id}", x.mask, x.xray, x.labels, x.joints,
                                        f"{name}/{x.group}" if x.group is not None else None) for x in part.samples]  # fmt: skip
    return merged


def split_indices(keys: list[str], val_fraction: float) -> tuple[list[int], list[int]]:
    """Deterministic train/val split by a hash of each sample's key (stable as a dataset grows).
    Keyed by ``FramedSample.split_key``, all the views of one body (render.dataset draws 4 per
    body, 2 per pose) fall on the same side, so validation scores bodies and poses never trained
    on, as the held-out set does (keyed by sample id, 3 of a validation sample's 4 siblings were
    trained on)."""

    def u(s: str) -> float:
        return int.from_bytes(hashlib.sha1(s.encode()).digest()[:8], "big") / 2.0**64

    hashes = [u(k) for k in keys]
    val = [i for i, h in enumerate(hashes) if h < val_fraction]
    if val_fraction > 0 and not val and len(keys) > 1:
        val = [i for i, h in enumerate(hashes) if h == min(hashes)]  # the one group hashing lowest
    in_val = set(val)
    train = [i for i in range(len(keys)) if i not in in_val]
    if not train:
        raise MaskelError(f"no training samples left after the validation split ({len(keys)} samples)")
    return train, val


CROP_ALIGN = 8
"""Crops start on multiples of this, so a crop's latent grid lines up with the full frame's."""


class TrainView(torch.utils.data.Dataset):
    """Tensors for the model: mask (1,R,R), pose (L,R,R) limb maps (all zeros without joints;
    (0,R,R) when ``limbs`` is false: nothing reads them), xray (S,R,R), labels (R,R) int64 (all
    zeros when the data has none). Augmented when ``augment`` is given; cut to a ``crop`` x
    ``crop`` window around a random body pixel when ``crop`` is given (the models are fully
    convolutional; the limb maps are drawn in that window only). Call set_epoch per epoch."""

    def __init__(
        self, data: PairedData, indices: list[int], seed: int, augment: AugmentConfig | None, resolution: int,
        crop: int | None = None, limbs: bool = True,
    ):  # fmt: skip
        self.data, self.indices, self.seed, self.augment, self.resolution = data, indices, seed, augment, resolution
        self.limbs = limbs
        if crop is not None and (crop > resolution or crop % CROP_ALIGN):
            raise MaskelError(f"crop {crop} must be a multiple of {CROP_ALIGN} and at most the resolution {resolution}")
        self.crop = crop if crop != resolution else None
        self.epoch = 0
        self.mirror = mirror_label_table(data.label_names)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def _crop_window(self, rng: np.random.Generator, mask: np.ndarray) -> tuple[slice, slice]:
        c, r = self.crop, self.resolution
        ys, xs = np.nonzero(mask)
        k = int(rng.integers(len(ys))) if len(ys) else 0
        cy, cx = (ys[k], xs[k]) if len(ys) else (r // 2, r // 2)
        y0 = int(np.clip(cy - c // 2, 0, r - c)) // CROP_ALIGN * CROP_ALIGN
        x0 = int(np.clip(cx - c // 2, 0, r - c)) // CROP_ALIGN * CROP_ALIGN
        return slice(y0, y0 + c), slice(x0, x0 + c)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.data.samples[self.indices[i]]
        mask = s.mask.astype(np.float32)
        xray = s.xray.astype(np.float32)
        labels = s.labels if s.labels is not None else np.zeros(mask.shape, np.uint8)
        joints = s.joints
        rng = np.random.default_rng([self.seed, self.epoch, self.indices[i]])
        if self.augment is not None:
            mask, xray, labels, joints = augment_sample(rng, self.augment, mask, xray, labels, joints, self.mirror)
        rows = cols = slice(None)
        if self.crop is not None:
            rows, cols = self._crop_window(rng, mask)
            mask, xray, labels = mask[rows, cols], xray[:, rows, cols], labels[rows, cols]
        if not self.limbs:
            pose = np.zeros((0, *mask.shape), np.float32)
        else:  # drawn in the window: joints shifted to it, the whole frame's segment radius
            if joints is not None and self.crop is not None:
                joints, present = joints.copy(), np.any(joints != 0, axis=1)  # absent rows stay all zeros
                joints[present, 0] -= cols.start
                joints[present, 1] -= rows.start
            pose = render_limb_maps(joints, mask.shape, default_radius(self.resolution, self.resolution))
        return {
            "mask": torch.from_numpy(np.ascontiguousarray(mask[None])),
            "pose": torch.from_numpy(np.ascontiguousarray(pose, dtype=np.float32)),
            "xray": torch.from_numpy(np.ascontiguousarray(xray)),
            "labels": torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64)),
        }
