"""Tiny procedural paired datasets for the model/training tests (written in milliseconds).

A "body" is a vertical ellipse torso + a round head + two leg bars; inside it bright bone-like
bars (spine, left femur, right femur). Radiograph = soft tissue grey + bones bright; DXA = bones
only. Bone labels, joints (canonical names) and a pose-map PNG complete our manifest layout; the
upstream layout gets <i>/skeleton.png (DXA) + <i>/label.png (mask).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from maskel.data.joints import array_to_joints, joints_to_array
from maskel.data.posemap import render_pose_map
from maskel.imageio import save_gray, save_mask, save_u8

REPO = Path(__file__).resolve().parents[1]
LABEL_NAMES = {1: "spine", 2: "femur_l", 3: "femur_r"}


def _bar(h: int, w: int, p0: tuple[float, float], p1: tuple[float, float], r: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    p0a, d = np.array(p0), np.array(p1) - np.array(p0)
    t = np.clip(((xs - p0a[0]) * d[0] + (ys - p0a[1]) * d[1]) / float(d @ d), 0, 1)
    return np.hypot(xs - (p0a[0] + t * d[0]), ys - (p0a[1] + t * d[1])) <= r


def make_body(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """One procedural sample at size x size: mask, radiograph, dxa, labels, joints (J,4)."""
    h = w = size
    cx = size * rng.uniform(0.4, 0.6)
    top = size * rng.uniform(0.08, 0.15)
    height = size * rng.uniform(0.7, 0.8)
    half_w = size * rng.uniform(0.1, 0.16)
    spread = size * rng.uniform(0.03, 0.1)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    head_c, head_r = (cx, top + 0.08 * height), 0.08 * height
    torso_c, torso_ry = (cx, top + 0.38 * height), 0.22 * height
    hip = (cx, top + 0.58 * height)
    foot_l, foot_r = (cx + half_w * 0.5 + spread, top + height), (cx - half_w * 0.5 - spread, top + height)
    hip_l, hip_r = (cx + half_w * 0.5, hip[1]), (cx - half_w * 0.5, hip[1])
    mask = ((xs - head_c[0]) ** 2 + (ys - head_c[1]) ** 2 <= head_r**2) | (
        ((xs - torso_c[0]) / half_w) ** 2 + ((ys - torso_c[1]) / torso_ry) ** 2 <= 1
    )
    mask |= _bar(h, w, hip_l, foot_l, 0.05 * height) | _bar(h, w, hip_r, foot_r, 0.05 * height)
    labels = np.zeros((h, w), np.uint8)
    knee_l = (0.5 * (hip_l[0] + foot_l[0]), 0.5 * (hip_l[1] + foot_l[1]))
    knee_r = (0.5 * (hip_r[0] + foot_r[0]), 0.5 * (hip_r[1] + foot_r[1]))
    labels[_bar(h, w, (cx, top + 0.2 * height), hip, 0.02 * height) & mask] = 1
    labels[_bar(h, w, hip_l, knee_l, 0.022 * height) & mask] = 2
    labels[_bar(h, w, hip_r, knee_r, 0.022 * height) & mask] = 3
    bone = labels > 0
    dxa = np.where(bone, rng.uniform(0.6, 0.9), 0.0).astype(np.float32)
    radiograph = np.where(mask, 0.35, 0.0) + np.where(bone, 0.5, 0.0)
    pose = {
        "width": w, "height": h,
        "joints": [
            {"name": "pelvis", "x": hip[0], "y": hip[1]}, {"name": "chest", "x": cx, "y": top + 0.3 * height},
            {"name": "neck", "x": cx, "y": top + 0.17 * height}, {"name": "head", "x": head_c[0], "y": head_c[1]},
            {"name": "left_hip", "x": hip_l[0], "y": hip_l[1]}, {"name": "left_knee", "x": knee_l[0], "y": knee_l[1]},
            {"name": "left_ankle", "x": foot_l[0], "y": foot_l[1] - 1},
            {"name": "right_hip", "x": hip_r[0], "y": hip_r[1]}, {"name": "right_knee", "x": knee_r[0], "y": knee_r[1]},
            {"name": "right_ankle", "x": foot_r[0], "y": foot_r[1] - 1},
        ],
    }  # fmt: skip
    return {"mask": mask, "radiograph": radiograph.astype(np.float32), "dxa": dxa, "labels": labels, "joints": joints_to_array(pose)}


def write_manifest_dataset(root: Path, n: int = 12, size: int = 48, seed: int = 0, body_group: int = 0) -> Path:
    """Our manifest layout (manifest.jsonl + labels.json + samples/<id>/...); with ``body_group``,
    each run of that many samples records one body, as render.dataset does."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        s = make_body(rng, size)
        sid = f"{i:06d}"
        d = root / "samples" / sid
        files = {k: f"samples/{sid}/{k}.png" for k in ("mask", "radiograph", "dxa", "labels", "pose_map")}
        files["joints"] = f"samples/{sid}/joints.json"
        save_mask(d / "mask.png", s["mask"])
        save_gray(d / "radiograph.png", s["radiograph"])
        save_gray(d / "dxa.png", s["dxa"])
        save_u8(d / "labels.png", s["labels"])
        save_u8(d / "pose_map.png", (render_pose_map(s["joints"], size) * 255).astype(np.uint8))
        (d / "joints.json").write_text(json.dumps(array_to_joints(s["joints"], size, size)))
        rec = {"id": sid, "index": i, "seed": seed, "size": size, "files": files,
               "body": {"weight": round(i // body_group * 0.01, 2)} if body_group else {}, "pose": {"name": "stand"},
               "camera": {"yaw_deg": 0.0, "projection": "orthographic"}, "styles": ["radiograph", "dxa"]}  # fmt: skip
        lines.append(json.dumps(rec))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (root / "labels.json").write_text(json.dumps({"0": "background", **{str(k): v for k, v in LABEL_NAMES.items()}}))
    return root


def write_upstream_dataset(root: Path, n: int = 12, size: int = 48, seed: int = 0) -> Path:
    """The upstream MaSkel layout: <i>/skeleton.png (DXA-like X-ray) + <i>/label.png (mask)."""
    for i in range(n):
        s = make_body(np.random.default_rng([seed, i]), size)
        save_gray(root / str(i) / "skeleton.png", s["dxa"], bits=8)
        save_mask(root / str(i) / "label.png", s["mask"])
    return root


def run_train(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m maskel.train ...`` in a subprocess (2 threads, like the CI machine)."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "maskel.train", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=full_env)
