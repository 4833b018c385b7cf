"""The rest-pose mannequin for Blender: skin mesh, rig bones (head/tail/roll), skin weights, joint map.

JSON format "maskel-mannequin/1" (world coordinates: metres, Z up, facing -Y, standing on Z=0).
Bone roll follows Blender's convention (roll 0 = the smallest rotation taking +Y onto the
bone); we pick the roll that points each bone's local Z axis forward (-Y), or up (+Z) for
bones that themselves point mostly along Y (feet, toes, fingers).

CLI: ``maskel mannequin --out FILE [--phenotype JSON]`` (``render.mannequin.main(argv)``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from maskel import MaskelError
from maskel.atomic import atomic_write_bytes

FORMAT = "maskel-mannequin/1"
MAX_INFLUENCES = 4
MIN_WEIGHT = 0.01


def blender_roll(head: np.ndarray, tail: np.ndarray, z_target: np.ndarray) -> float:
    """Roll (radians) giving a Blender bone from head to tail the local Z axis closest to z_target."""
    n = np.asarray(tail, float) - np.asarray(head, float)
    n = n / np.linalg.norm(n)
    x, y, z = n
    if 1.0 + y < 1e-6:  # pointing straight along -Y: Blender's roll-0 frame is a turn about Z
        x0, z0 = np.array([-1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    else:
        t = 1.0 + y
        x0 = np.array([1.0 - x * x / t, -x, -x * z / t])
        z0 = np.array([-x * z / t, -z, 1.0 - z * z / t])
    zt = np.asarray(z_target, float)
    zt = zt - (zt @ n) * n
    return float(np.arctan2(zt @ x0, zt @ z0))


def _z_target(head: np.ndarray, tail: np.ndarray) -> np.ndarray:
    d = (tail - head) / np.linalg.norm(tail - head)
    return np.array([0.0, 0.0, 1.0]) if abs(d[1]) > 0.7 else np.array([0.0, -1.0, 0.0])


def prune_weights(
    weights: np.ndarray, k: int = MAX_INFLUENCES, floor: float = MIN_WEIGHT
) -> np.ndarray:
    """Keep each row's k largest weights that are >= floor (at least the largest), renormalised."""
    w = np.asarray(weights, dtype=np.float64)
    order = np.argsort(-w, axis=1)[:, :k]
    top = np.take_along_axis(w, order, axis=1)
    keep = top >= floor
    keep[:, 0] = True
    top = np.where(keep, top, 0.0)
    out = np.zeros_like(w)
    np.put_along_axis(out, order, top, axis=1)
    return out / out.sum(axis=1, keepdims=True)


def mannequin_dict(phenotype: dict | None = None, body=None) -> dict[str, Any]:
    """The mannequin of ``phenotype`` (render.body.DEFAULT_PHENOTYPE when None) in the rest pose."""
    from maskel.data.joints import MAKEHUMAN_RIG
    from render.body import get_body_model

    rest = (body or get_body_model()).pose(phenotype, None)
    names = rest.bone_names
    bones = []
    for i, name in enumerate(names):
        h, t = rest.rest_heads[i], rest.rest_tails[i]
        p = int(rest.bone_parents[i])
        bones.append({
            "name": name,
            "parent": names[p] if p >= 0 else None,
            "head": [round(float(c), 5) for c in h],
            "tail": [round(float(c), 5) for c in t],
            "roll": round(blender_roll(h, t, _z_target(h, t)), 6),
        })  # fmt: skip
    w = prune_weights(rest.skin_weights)
    weights: dict[str, list[list[float]]] = {}
    for b in range(w.shape[1]):
        idx = np.nonzero(w[:, b])[0]
        if len(idx):
            weights[names[b]] = [[int(i), round(float(w[i, b]), 5)] for i in idx]
    return {
        "format": FORMAT,
        "units": "m",
        "up": "Z",
        "phenotype": rest.phenotype,
        "vertices": [[round(float(c), 5) for c in v] for v in rest.rest_vertices],
        "faces": rest.faces.astype(int).tolist(),
        "bones": bones,
        "weights": weights,
        "joint_map": {j: f"{bone}:{end}" for j, (bone, end) in MAKEHUMAN_RIG.items()},
    }


def _phenotype_arg(text: str | None) -> dict | None:
    if text is None:
        return None
    src = text
    if not text.lstrip().startswith("{"):
        try:
            src = Path(text).read_text(encoding="utf-8")
        except OSError as e:
            raise MaskelError(
                f"--phenotype: not a JSON object and not a readable file: {text!r} ({e.strerror})"
            ) from None
    try:
        value = json.loads(src)
    except json.JSONDecodeError as e:
        raise MaskelError(f"--phenotype is not valid JSON ({e.msg})") from None
    if not isinstance(value, dict):
        raise MaskelError('--phenotype must be a JSON object like {"gender": 0.2, "height": 0.4}')
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="maskel mannequin",
        description="Write the rest-pose mannequin JSON for the Blender add-on.",
    )
    ap.add_argument("--out", required=True, type=Path, help="output JSON file")
    ap.add_argument(
        "--phenotype",
        help="JSON object (or a file holding one) of anny phenotype values in [0, 1]: gender, age, muscle, weight, height, proportions",
    )
    args = ap.parse_args(argv)
    try:
        data = mannequin_dict(_phenotype_arg(args.phenotype))
        atomic_write_bytes(args.out, (json.dumps(data, separators=(",", ":")) + "\n").encode())
    except MaskelError as e:
        print(f"maskel mannequin: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("maskel mannequin: interrupted", file=sys.stderr)
        return 130
    print(f"wrote {args.out} ({len(data['vertices'])} vertices, {len(data['bones'])} bones)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
