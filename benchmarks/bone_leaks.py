"""Where the phantom's bones leave the skin: bone vertices outside the body, per bone family,
at rest and posed, over the bodies and poses a dataset would draw.

    python -m benchmarks.bone_leaks [--bodies 60] [--seed 4242] [--fat off]

Body i has render.dataset's phenotype and pose for sample BODY_GROUP i of `--seed` (a new body and pose
each), and is built twice: in the rest pose (leaks there are the fitting's) and posed (the extra
ones come from moving rigid bones inside a linearly blend-skinned skin). Each is tested against
two skins: the body's own ("blend") and the phantom's, which render/cover.py pushed out over the
bones that the blend skin lets through (phantom v7). Outside = the skin's winding number <= 0
along a ray and the opposite ray (the DRR's own inside test, DrrScene.outside_skin). The depth
of a leaking vertex is its distance to the nearest skin vertex, an upper bound of its distance to the surface (the skin's
edges are ~1 cm). Rays are cast only inside the silhouette (grown by 2 px), so a bone part outside
the skin is missing from the pictures.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import numpy as np
import trimesh
from scipy.spatial import cKDTree
from tqdm import tqdm

from render.body import get_body_model, sample_phenotype
from render.dataset import BODY_GROUP, body_rng, pose_rng
from render.drr import DrrScene
from render.phantom import build_phantom
from render.pose import sample_pose

SKINS = ("blend", "phantom")  # the body's linear-blend skinned skin; the phantom's, pushed out over bones
_SIDE_OR_INDEX = re.compile(r"(_left|_right|left_|right_|_[A-Z]?\d+)")


def family(bone: str) -> str:
    """The bone's name without side and index: 'rib_left_7' -> 'rib', 'vertebra_T4' -> 'vertebra'."""
    return _SIDE_OR_INDEX.sub("", bone)


def leaks(phantom, skin: trimesh.Trimesh) -> tuple[Counter, np.ndarray, int]:
    """Leaking vertices per bone family, their depths (m) and the number of bone vertices, of
    the phantom's bones against `skin`."""
    parts = [p for p in phantom.parts if p.material != "lung"]
    points = np.concatenate([p.mesh.vertices for p in parts])
    names = np.concatenate([[family(p.name)] * len(p.mesh.vertices) for p in parts])
    outside = DrrScene(skin, []).outside_skin(points)
    depth, _ = cKDTree(skin.vertices).query(points[outside])
    return Counter(names[outside].tolist()), depth, len(points)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bodies", type=int, default=60)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--fat", choices=("on", "off"), default="off", help="the fat layer does not move bones; off is faster")
    a = ap.parse_args()
    model = get_body_model()
    cases = [(state, skin) for state in ("rest", "posed") for skin in SKINS]
    totals = {c: Counter() for c in cases}
    depths: dict[tuple[str, str], list[np.ndarray]] = {c: [] for c in cases}
    bodies_leaking = Counter()
    by_kind: dict[str, dict[str, Counter]] = {}  # posed leaks per pose kind, skin and bone family
    pushed: dict[str, list[float]] = {}  # posed: how far the phantom skin was pushed out, per kind
    vertices = 0
    for i in tqdm(range(a.bodies), unit="body"):
        phenotype = sample_phenotype(body_rng(a.seed, BODY_GROUP * i))
        pose = sample_pose(pose_rng(a.seed, BODY_GROUP * i))
        for state, p in (("rest", None), ("posed", pose)):
            body = model.pose(phenotype, p)
            phantom = build_phantom(body, fat=a.fat == "on")
            blend = trimesh.Trimesh(body.vertices, body.faces, process=False)
            for skin, mesh in zip(SKINS, (blend, phantom.skin), strict=True):
                count, depth, n = leaks(phantom, mesh)
                totals[state, skin] += count
                depths[state, skin].append(depth)
                bodies_leaking[state, skin] += bool(count)
                if state == "posed":
                    by_kind.setdefault(pose.kind, {k: Counter() for k in SKINS})[skin].update(count)
            if state == "posed":
                moved = np.linalg.norm(phantom.skin.vertices - blend.vertices, axis=1).max()
                pushed.setdefault(pose.kind, []).append(float(moved))
            vertices += n
    print(f"{a.bodies} bodies (seed {a.seed}), {vertices // (2 * a.bodies):,} bone vertices each")
    for state, skin in cases:
        d = np.concatenate(depths[state, skin]) * 1000
        spread = f"depth median {np.median(d):.1f} / p90 {np.percentile(d, 90):.1f} / max {d.max():.1f} mm" if d.size else ""
        print(f"{state}, {skin} skin: {sum(totals[state, skin].values()):,} vertices outside, "
              f"in {bodies_leaking[state, skin]} bodies; {spread}")
    print("\n| bone family | " + " | ".join(f"{s}, {k} skin" for s, k in cases) + " |\n|---|" + "---:|" * len(cases))
    for name, _ in sum(totals.values(), Counter()).most_common():
        print(f"| {name} | " + " | ".join(f"{totals[c][name]:,}" for c in cases) + " |")
    print("\n| pose kind (posed) | outside, blend skin | most | outside, phantom skin | skin pushed out, max mm (median / max over bodies) |"
          "\n|---|---:|---|---:|---:|")
    for kind, count in sorted(by_kind.items(), key=lambda kv: -sum(kv[1]["blend"].values())):
        most = ", ".join(f"{n} {c}" for n, c in count["blend"].most_common(3))
        mm = np.array(pushed[kind]) * 1000
        print(f"| {kind} | {sum(count['blend'].values()):,} | {most} | {sum(count['phantom'].values()):,} | "
              f"{np.median(mm):.1f} / {mm.max():.1f} |")


if __name__ == "__main__":
    main()
