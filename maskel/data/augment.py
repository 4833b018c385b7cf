"""Augmentations that keep mask, X-rays, bone labels and joints aligned (at the model resolution).

A horizontal flip turns the character into its mirror image: the mask and X-ray flip, and the
character's left and right swap roles, so joints named ``left_*`` and ``right_*`` swap rows
(the pose map redrawn from them then shows the limbs on the right sides) and left/right bone
labels swap ids. The small similarity transform (scale, rotation, shift about the image centre)
moves images through ``grid_sample`` and joints through the same matrix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from maskel.data.joints import JOINT_MIRROR


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5  # probability of a horizontal flip
    scale: float = 0.05  # scale drawn from [1 - scale, 1 + scale]
    shift: float = 0.03  # shift per axis, fraction of the image size
    rotate_deg: float = 4.0  # rotation drawn from [-rotate_deg, rotate_deg]
    pose_dropout: float = 0.0  # probability of dropping the joints (the model must also work unposed)

    @classmethod
    def from_config(cls, d: dict[str, Any] | None) -> AugmentConfig | None:
        if not d:
            return None
        return cls(**{k: float(v) for k, v in d.items()})


_SIDE_SWAPS = (
    ("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"),
    (r"_l$", "_r"), (r"_L$", "_R"), (r"\.l$", ".r"), (r"\.L$", ".R"), (r"^l_", "r_"), (r"^L_", "R_"),
)  # fmt: skip
"""Regex pairs naming the two sides of a bone (e.g. femur_l / femur_r, left_humerus / right_humerus)."""


def _mirror_name(name: str) -> str | None:
    for a, b in _SIDE_SWAPS:
        for pat, rep in ((a, b), (b, a)):
            if re.search(pat, name):
                return re.sub(pat, rep.replace("\\", "").strip("^$"), name)
    return None


def mirror_label_table(names: dict[int, str]) -> np.ndarray:
    """A 256-entry id -> id lookup that swaps left/right bone labels (identity elsewhere)."""
    table = np.arange(256, dtype=np.uint8)
    by_name = {v: k for k, v in names.items()}
    for i, n in names.items():
        partner = _mirror_name(n)
        if partner is not None and partner in by_name:
            table[i] = by_name[partner]
    return table


def _warp(stack: np.ndarray, theta: torch.Tensor, mode: str) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))[None]
    grid = F.affine_grid(theta[None], list(t.shape), align_corners=False)
    return F.grid_sample(t, grid, mode=mode, padding_mode="zeros", align_corners=False)[0].numpy()


def augment_sample(
    rng: np.random.Generator,
    cfg: AugmentConfig,
    mask: np.ndarray,
    xray: np.ndarray,
    labels: np.ndarray,
    joints: np.ndarray | None,
    mirror: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """mask (R,R) float 0/1, xray (S,R,R), labels (R,R) uint8, joints (J,4) model px -> augmented
    (joints None when dropped: the pose map is then all zeros, as at inference without a rig)."""
    r = mask.shape[-1]
    if joints is not None and rng.random() < cfg.pose_dropout:
        joints = None
    present = np.any(joints != 0, axis=1) if joints is not None else None
    if rng.random() < cfg.flip:
        mask, xray, labels = mask[:, ::-1], xray[..., ::-1], mirror[labels[:, ::-1]]
        if joints is not None:
            joints = joints[JOINT_MIRROR].copy()
            present = present[JOINT_MIRROR]
            joints[present, 0] = r - joints[present, 0]
    s = 1.0 + rng.uniform(-cfg.scale, cfg.scale)
    a = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    t = rng.uniform(-cfg.shift, cfg.shift, size=2) * r
    if s == 1.0 and a == 0.0 and not t.any():
        return np.ascontiguousarray(mask), np.ascontiguousarray(xray), np.ascontiguousarray(labels), joints
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    # Forward map on pixel-edge coords: p' = c + s*rot@(p - c) + t. grid_sample needs the inverse
    # in normalised coords (u = 2p/r - 1): u_in = rot.T @ (u_out - 2t/r) / s.
    inv = rot.T / s
    theta = torch.tensor(np.concatenate([inv, (-inv @ (2.0 * t / r))[:, None]], axis=1), dtype=torch.float32)
    mask = (_warp(mask[None], theta, "bilinear")[0] >= 0.5).astype(np.float32)
    xray = _warp(xray, theta, "bicubic").clip(0.0, 1.0)  # bilinear would cost the target 8 % of its sharpness
    labels = _warp(labels[None].astype(np.float32), theta, "nearest")[0].round().astype(np.uint8)
    if joints is not None:
        joints = joints.copy()
        c = np.array([r / 2.0, r / 2.0])
        joints[present, :2] = (c + s * (joints[present, :2] - c) @ rot.T + t).astype(np.float32)
    return mask, xray, labels, joints
