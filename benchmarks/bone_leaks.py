"""Where the phantom's bones leave the skin: bone vertices outside the body, per bone family,
at rest and posed, over the bodies and poses a dataset would draw.

    python -m benchmarks.bone_leaks [--bodies 60] [--seed 4242] [--fat off]

Body i has render.dataset's phenotype and pose for sample 4 i of `--seed` (a new body and pose
each), and is built twice: in the rest pose (leaks there are the fitting's) and posed (the extra
ones come from moving rigid bones inside a linearly blend-skinned skin). Outside = the skin's
winding number along a ray <= 0 (the DRR's own inside test). The depth of a leaking vertex is its
distance to the nearest skin vertex, an upper bound of its distance to the surface (the skin's
edges are ~1 cm). Rays are cast only inside the silhouette (grown by 2 px), so a bone part outside
the skin is missing from the pictures.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import numpy as np
from scipy.spatial import cKDTree
from tqdm import tqdm

from render.body import get_body_model, sample_phenotype
from render.dataset import body_rng, pose_rng
from render.drr import DrrScene
from render.phantom import build_phantom
from render.pose import sample_pose

_SIDE_OR_INDEX = re.compile(r"(_left|_right|left_|right_|_[A-Z]?\d+)")


def family(bone: str) -> str:
    """The bone's name without side and index: 'rib_left_7' -> 'rib', 'vertebra_T4' -> 'vertebra'."""
    return _SIDE_OR_INDEX.sub("", bone)


def leaks(phantom) -> tuple[Counter, np.ndarray, int]:
    """Leaking vertices per bone family, their depths (m) and the number of bone vertices."""
    parts = [p for p in phantom.parts if p.material != "lung"]
    points = np.concatenate([p.mesh.vertices for p in parts])
    names = np.concatenate([[family(p.name)] * len(p.mesh.vertices) for p in parts])
    outside = DrrScene(phantom.skin, []).skin_winding(points) <= 0
    depth, _ = cKDTree(phantom.skin.vertices).query(points[outside])
    return Counter(names[outside].tolist()), depth, len(points)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bodies", type=int, default=60)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--fat", choices=("on", "off"), default="off", help="the fat layer does not move bones; off is faster")
    a = ap.parse_args()
    model = get_body_model()
    totals = {"rest": Counter(), "posed": Counter()}
    depths: dict[str, list[np.ndarray]] = {"rest": [], "posed": []}
    bodies_leaking = Counter()
    by_kind: dict[str, Counter] = {}  # posed leaks per pose kind and bone family
    vertices = 0
    for i in tqdm(range(a.bodies), unit="body"):
        phenotype = sample_phenotype(body_rng(a.seed, 4 * i))
        pose = sample_pose(pose_rng(a.seed, 4 * i))
        for state, p in (("rest", None), ("posed", pose)):
            count, depth, n = leaks(build_phantom(model.pose(phenotype, p), fat=a.fat == "on"))
            totals[state] += count
            depths[state].append(depth)
            bodies_leaking[state] += bool(count)
            if state == "posed":
                by_kind.setdefault(pose.kind, Counter()).update(count)
            vertices += n
    print(f"{a.bodies} bodies (seed {a.seed}), {vertices // (2 * a.bodies):,} bone vertices each")
    for state in ("rest", "posed"):
        d = np.concatenate(depths[state]) * 1000
        spread = f"depth median {np.median(d):.1f} / p90 {np.percentile(d, 90):.1f} / max {d.max():.1f} mm" if d.size else ""
        print(f"{state}: {sum(totals[state].values()):,} vertices outside, in {bodies_leaking[state]} bodies; {spread}")
    print("| bone family | rest | posed |\n|---|---:|---:|")
    for name, _ in (totals["rest"] + totals["posed"]).most_common():
        print(f"| {name} | {totals['rest'][name]:,} | {totals['posed'][name]:,} |")
    print("\n| pose kind (posed) | vertices outside | most |\n|---|---:|---|")
    for kind, count in sorted(by_kind.items(), key=lambda kv: -sum(kv[1].values())):
        most = ", ".join(f"{n} {c}" for n, c in count.most_common(3))
        print(f"| {kind} | {sum(count.values()):,} | {most} |")


if __name__ == "__main__":
    main()
