"""Where the phantom's joints sit on the body's rig, and how long its long bones are for the stature.

    python -m benchmarks.landmarks [--bodies 60] [--seed 4242]

Body i has render.dataset's phenotype and pose of sample BODY_GROUP i of `--seed` (children of
5-17 years as often as a dataset draws them), posed. Joint centres: render/landmarks.py (sphere
fits to myo-sim's joint surfaces, against anny's joints; issue 9 bounds them by 10 mm).

Long bones: the extent of the mesh along its principal axis over the standing height (the rest
skin's), beside the rig's joint-to-joint distance over the same height. The bones span the rig's
joints (render/bones/register.py), so where anny's proportions differ from anthropometric tables
the bones follow anny. Reference, femur: 0.2674 of stature, Feldesman, Kleckner & Lundy (1990),
Am J Phys Anthropol 83: 359-372 (pooled sample). A last table splits the adults by stature: anny
makes a body taller mostly by lengthening its thighs, so the femur / stature its rig gives grows
with stature (in people it hardly changes).
"""

from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from render.body import age_years, get_body_model, sample_phenotype
from render.dataset import BODY_GROUP, body_rng, pose_rng
from render.landmarks import LANDMARKS, SIDES, fit_offsets, landmark_offsets
from render.phantom import build_phantom
from render.pose import sample_pose

LONG_BONES = (  # bone, rig joint at one end, at the other
    ("femur", "upperleg01", "lowerleg01"),
    ("tibia", "lowerleg01", "foot"),
    ("humerus", "upperarm01", "lowerarm01"),
    ("radius", "lowerarm01", "wrist"),
)
FEMUR_REFERENCE = 0.2674


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
    fit_offset = fit_offsets()
    model = get_body_model()
    dist: dict[str, list[float]] = {name: [] for name, *_ in LANDMARKS}
    ratios: dict[tuple[str, bool], list[tuple[float, float]]] = {}  # (bone, adult) -> (bone, rig segment) / stature
    adult_thighs: list[tuple[float, float, float, float]] = []  # stature m, anny's height parameter, femur / stature, rig thigh / stature
    ages = []
    for i in tqdm(range(a.bodies), unit="body"):
        phenotype = sample_phenotype(body_rng(a.seed, BODY_GROUP * i))
        body = model.pose(phenotype, sample_pose(pose_rng(a.seed, BODY_GROUP * i)))
        phantom = build_phantom(body)
        for (name, _), d in landmark_offsets(phantom).items():
            dist[name].append(d)
        parts = {p.name: p.mesh.vertices for p in phantom.parts if p.material != "marrow"}
        years = age_years(phenotype["age"])
        ages.append(years)
        adult = years >= 18
        stature = float(np.ptp(np.asarray(body.rest_vertices)[:, 2]))
        for side, sfx in SIDES:
            for bone, top, bottom in LONG_BONES:
                segment = np.linalg.norm(body.rest_heads[body.bone_index(f"{top}.{sfx}")] - body.rest_heads[body.bone_index(f"{bottom}.{sfx}")])
                ratio = (principal_extent(parts[f"{bone}_{side}"]) / stature, float(segment) / stature)
                ratios.setdefault((bone, adult), []).append(ratio)
                if bone == "femur" and adult:
                    adult_thighs.append((stature, phenotype["height"], *ratio))
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
    # anny makes a body taller mostly by lengthening its thighs: the femur / stature the bones
    # inherit from its rig grows with stature, where in people it hardly changes
    t = np.array(adult_thighs)
    print("\n| adults by stature | n (sides) | femur / stature | rig thigh / stature |")
    print("|---|---:|---:|---:|")
    for label, lo, hi in (("under 1.65 m", 0.0, 1.65), ("1.65-1.80 m", 1.65, 1.80), ("1.80 m and over", 1.80, np.inf)):
        sel = (t[:, 0] >= lo) & (t[:, 0] < hi)
        if sel.any():
            print(f"| {label} | {sel.sum()} | {np.median(t[sel, 2]):.3f} | {np.median(t[sel, 3]):.3f} |")
    print(f"\nCorrelation of the adults' rig thigh / stature with anny's height parameter: {np.corrcoef(t[:, 1], t[:, 3])[0, 1]:+.2f}")


if __name__ == "__main__":
    main()
