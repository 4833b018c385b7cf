"""The anatomical phantom: labelled, closed bone meshes that stay inside the skin and move rigidly."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("ANNY_CACHE_DIR", os.path.expanduser("~/.cache/maskel/anny"))

from render.labels import BONE_LABELS, LABEL_IDS, is_bone, label_groups  # noqa: E402

pytest.importorskip("myo_sim")
from render.bones import PROCEDURAL, myosim  # noqa: E402
from render.drr import DrrScene  # noqa: E402

body_mod = pytest.importorskip("render.body")
import render.phantom  # noqa: E402
from render.landmarks import landmark_offsets  # noqa: E402
from render.phantom import Phantom, build_phantom  # noqa: E402
from render.pose import sample_pose  # noqa: E402

CHILD = {"gender": 0.0, "age": 0.2, "muscle": 0.3, "weight": 0.2, "height": 0.5, "proportions": 0.3}
LARGE = {"gender": 0.0, "age": 0.75, "muscle": 0.8, "weight": 0.95, "height": 0.6, "proportions": 0.5}
THIN = {"gender": 1.0, "age": 0.6, "muscle": 0.1, "weight": 0.05, "height": 0.3, "proportions": 0.6}


@pytest.fixture(scope="module")
def model():
    return body_mod.get_body_model()


@pytest.fixture(scope="module")
def rest_phantom(model):
    return build_phantom(model.pose(None, None))


def test_labels_are_stable_and_grouped():
    assert len(BONE_LABELS) >= 180 and max(BONE_LABELS) <= 255 and 0 not in BONE_LABELS
    assert LABEL_IDS["cranium"] == 1 and BONE_LABELS[LABEL_IDS["vertebra_T7"]] == "vertebra_T7"
    groups = label_groups()
    assert groups[LABEL_IDS["rib_left_3"]] == "thorax"
    assert groups[LABEL_IDS["phalanx_proximal_right_hand_2"]] == "hand_right"
    assert groups[LABEL_IDS["cuboid_left"]] == "foot_left"
    assert not is_bone(LABEL_IDS["lung_left"]) and is_bone(LABEL_IDS["femur_right"])
    assert not is_bone(LABEL_IDS["trachea"]) and groups[LABEL_IDS["trachea"]] == "organs"


def test_standing_sample_has_many_labelled_bones(rest_phantom):
    labels = {p.label for p in rest_phantom.parts if is_bone(p.label)}
    assert len(labels) >= 180
    procedural = {p.name for p in rest_phantom.parts} - set(myosim.reference().pieces) - {
        n.replace("_right", "_left").replace("right_", "left_") for n in myosim.reference().pieces}
    assert procedural == set(PROCEDURAL)  # everything else comes from myo-sim
    assert {p.material for p in rest_phantom.parts} <= {"cortical", "spongy", "marrow", "cartilage", "lung", "air", "soft_tissue"}
    assert sum(len(p.mesh.faces) for p in rest_phantom.parts) <= 60_000


def test_the_trachea_is_an_air_column_in_front_of_the_spine_that_bends_with_the_neck(model, rest_phantom):
    """From the middle of C6 to the T4/T5 disc, in front of the vertebral bodies, inside the skin;
    each level's segment keeps its place on its vertebra when the neck bends."""
    def named(ph, name):
        return [p for p in ph.parts if p.name == name]

    segments = named(rest_phantom, "trachea")
    assert len(segments) == 6 and all(p.material == "air" and p.mesh.is_watertight for p in segments)
    v = np.concatenate([p.mesh.vertices for p in segments])
    c6, t4 = (named(rest_phantom, f"vertebra_{n}")[0].mesh.vertices for n in ("C6", "T4"))
    assert v[:, 2].max() <= c6[:, 2].max() and v[:, 2].min() < t4[:, 2].mean()
    for level, seg in zip(("C6", "C7", "T1", "T2", "T3", "T4"), segments, strict=True):
        front = named(rest_phantom, f"vertebra_{level}")[0].mesh.vertices[:, 1].min()
        assert seg.mesh.vertices[:, 1].max() < front + 0.005  # in front of its vertebral body (the body faces -Y)
    assert not DrrScene(rest_phantom.skin, []).outside_skin(v).any()
    bent = build_phantom(model.pose(None, sample_pose(np.random.default_rng(6), "bending")))
    for level, rest_seg, bent_seg in zip(("C6", "T3"), segments[::3], named(bent, "trachea")[::3], strict=True):
        offset_rest = rest_seg.mesh.vertices - named(rest_phantom, f"vertebra_{level}")[0].mesh.vertices.mean(axis=0)
        offset_bent = bent_seg.mesh.vertices - named(bent, f"vertebra_{level}")[0].mesh.vertices.mean(axis=0)
        np.testing.assert_allclose(np.linalg.norm(offset_rest, axis=1), np.linalg.norm(offset_bent, axis=1), atol=1e-6)


def test_every_part_is_closed_with_positive_volume(rest_phantom):
    for p in rest_phantom.parts:
        assert p.mesh.is_watertight, p.name
        assert p.mesh.volume > 0, p.name


@pytest.mark.parametrize(
    "phenotype,kind,seed",
    [(CHILD, "walking", 1), (LARGE, "crouching", 2), (THIN, "arms_raised", 3), (CHILD, "sitting", 4),
     (LARGE, "arms_crossed", 5), (THIN, "bending", 6), (LARGE, "arms_raised", 7), (CHILD, "leg_raised", 8),
     (THIN, "reaching", 9), (LARGE, "turned_torso", 10), (THIN, "standing", 11), (CHILD, "crouching", 12)],
)
def test_bones_stay_inside_the_skin(model, phenotype, kind, seed):
    """Every pose kind of the sampler, self-contact ones included, checked with the DRR's own
    inside test (the skin's winding number, DrrScene.outside_skin), which is also right where
    the posed skin overlaps itself (crossed arms, deep crouch, sitting). The body's blend-skinned
    skin lets bones through in such poses; the phantom's skin is pushed out over them."""
    body = model.pose(phenotype, sample_pose(np.random.default_rng(seed), kind))
    ph = build_phantom(body)
    pts = np.concatenate([p.mesh.vertices for p in ph.parts])
    names = np.concatenate([[p.name] * len(p.mesh.vertices) for p in ph.parts])
    outside = DrrScene(ph.skin, []).outside_skin(pts)
    assert not outside.any(), sorted(set(names[outside]))[:10]
    pushed = np.linalg.norm(ph.skin.vertices - body.vertices, axis=1)
    assert pushed.max() < 0.06  # a bulge over a bone, not a blown-up limb


@pytest.mark.parametrize("fat", [False, True])
def test_the_scene_kept_from_the_cover_is_the_final_phantoms(model, fat):
    """build_phantom keeps the ray-casting scene the cover last tested in when its skin is the
    final one: it must render exactly what a scene built afresh from the phantom renders."""
    body = model.pose(LARGE, sample_pose(np.random.default_rng(2), "arms_raised"))
    ph = build_phantom(body, fat=fat)
    assert np.abs(ph.skin.vertices - body.vertices).max() > 0.01  # this pose needed the cover
    fresh = Phantom(ph.skin, ph.parts, ph.joints3d, ph.body, ph.muscle)
    cam = _front_camera(body, 96)
    kept, new = ph.drr_scene().render(cam, materials=True), fresh.drr_scene().render(cam, materials=True)
    assert ph.drr_scene() is ph.drr_scene()
    np.testing.assert_array_equal(kept.thickness_cm, new.thickness_cm)
    np.testing.assert_array_equal(kept.material_cm, new.material_cm)


SLIM_WOMAN = {"gender": 1.0, "age": 0.7633, "muscle": 0.2525, "weight": 0.4846, "height": 0.3869, "proportions": 0.1106}


@pytest.mark.parametrize("phenotype", [SLIM_WOMAN, THIN, LARGE, CHILD])
def test_the_rib_cage_stays_under_the_flank_skin(model, phenotype):
    """One width for the whole cage (the skin at its widest rib, where the A-pose arm touches the
    chest) put a slim woman's lower ribs up to 7 cm through her waist (58 of rib 9's 96 vertices
    outside at rest). Each rib level is now narrowed to the flank skin at its height."""
    ph = build_phantom(model.pose(phenotype, None))
    scene = DrrScene(ph.skin, [])
    ribs = [p for p in ph.parts if p.name.startswith(("rib_", "costal_cartilage", "sternum"))]
    outside = {p.name: int((scene.skin_winding(p.mesh.vertices) <= 0).sum()) for p in ribs}
    assert sum(outside.values()) == 0, {k: v for k, v in outside.items() if v}
    widths = {i: max(np.abs(p.mesh.vertices[:, 0]).max() for p in ribs if p.name.endswith(f"_{i}")) for i in (7, 10)}
    assert widths[10] < widths[7]  # the cage narrows towards its lower ribs


@pytest.mark.parametrize("phenotype", [SLIM_WOMAN, LARGE, CHILD])
def test_the_foot_bones_stay_under_the_foot_skin(model, phenotype):
    """myo-sim's foot at stature scale was wider and taller than many bodies' feet: the fifth
    metatarsal lay up to 14 mm outside the side of the foot (92-100 of its 112 vertices at rest),
    and over 60 bodies 658 metatarsal and 286 proximal toe phalanx vertices stuck out of the back
    of the foot. The foot block is now narrowed side to side, then all but the hindfoot flattened
    towards the sole, and the toes too."""
    ph = build_phantom(model.pose(phenotype, None))
    scene = DrrScene(ph.skin, [])
    fore = [p for p in ph.parts if p.name.startswith("metatarsal_") or p.name.startswith("phalanx_proximal_") and "_foot_" in p.name]
    assert len(fore) == 20
    outside = {p.name: int((scene.skin_winding(p.mesh.vertices) <= 0).sum()) for p in fore}
    assert sum(outside.values()) == 0, {k: v for k, v in outside.items() if v}


def _first_hit(mesh, origin: np.ndarray, direction: np.ndarray) -> float:
    loc, _, _ = mesh.ray.intersects_location(origin[None], direction[None])
    return float(np.linalg.norm(loc - origin, axis=1).min())


@pytest.mark.parametrize("phenotype", [None, CHILD, LARGE, THIN])
def test_skull_fills_the_head_under_its_scalp(model, phenotype):
    """The vault reaches the scalp (3-18 mm of soft tissue) to the sides, front, back and top:
    the skull was 14-30 mm under the skin when one scale fitted every level (about 15 % small)."""
    ph = build_phantom(model.pose(phenotype, None))
    cranium = next(p for p in ph.parts if p.name == "cranium").mesh
    v = cranium.vertices
    centre = np.array([v[:, 0].mean(), 0.5 * (v[:, 1].min() + v[:, 1].max()), v[:, 2].min() + 0.65 * np.ptp(v[:, 2])])
    for d in np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, -1.0, 0], [0, 1.0, 0], [0, 0, 1.0]]):
        start = centre + 0.4 * d
        gap = _first_hit(cranium, start, -d) - _first_hit(ph.skin, start, -d)
        assert 0.003 < gap < 0.018, (d, gap)


def test_binding_is_rigid_and_deterministic(model):
    rest = build_phantom(model.pose(LARGE, None))
    pose = sample_pose(np.random.default_rng(5), "reaching")
    posed = build_phantom(model.pose(LARGE, pose))
    render.phantom._CACHE.clear()  # rebuild the rest skeleton too, not just re-pose the cached one
    again = build_phantom(model.pose(LARGE, pose))
    moved = 0
    for a, b, c in zip(rest.parts, posed.parts, again.parts, strict=True):
        assert a.name == b.name and a.label == b.label
        np.testing.assert_array_equal(b.mesh.vertices, c.mesh.vertices)
        va, vb = a.mesh.vertices[::5], b.mesh.vertices[::5]
        da = np.linalg.norm(va[:, None] - va[None], axis=-1)
        db = np.linalg.norm(vb[:, None] - vb[None], axis=-1)
        np.testing.assert_allclose(da, db, atol=1e-6)
        moved += np.abs(va - vb).max() > 0.01
    assert moved > 50  # the pose really moved bones


def test_long_bone_shows_its_cortical_walls(rest_phantom):
    """The cortical-shell model: across the femoral shaft the DXA profile is brighter at the
    two walls than in the middle (the "tram lines" of a real radiograph)."""
    from render.camera import Camera, look_rotation

    body = rest_phantom.body
    knee = body.rest_heads[body.bone_index("lowerleg01.L")]
    hip = body.rest_heads[body.bone_index("upperleg01.L")]
    mid = 0.5 * (hip + knee)
    size, scale = 128, 0.0008  # 10 cm wide view of the mid-thigh
    cam = Camera(size, "orthographic", look_rotation(0.0, 0.0), mid - np.array([0.0, 1.0, 0.0]), scale=scale,
                 cx=size / 2, cy=size / 2)
    femur = [p for p in rest_phantom.parts if p.name == "femur_left"]
    drr = DrrScene(rest_phantom.skin, femur).render(cam)
    row = drr.dxa[size // 2]
    cols = np.flatnonzero(row > 0)
    assert len(cols) * scale > 0.015  # the shaft is there, 1.5-4 cm wide
    centre = row[cols[len(cols) // 2 - 1:len(cols) // 2 + 2]].mean()
    walls = max(row[cols[:len(cols) // 4]].max(), row[cols[-(len(cols) // 4):]].max())
    assert walls > 1.15 * centre > 0


@pytest.mark.parametrize("phenotype,kind", [(CHILD, "walking"), (LARGE, "sitting")])
def test_joint_landmarks_sit_on_the_rig_joints(model, phenotype, kind):
    """Femoral head and humeral head (sphere fits to myo-sim's own vertices there) and the femoral
    condyles lie within 10 mm of anny's hip, shoulder and knee joints, posed."""
    body = model.pose(phenotype, sample_pose(np.random.default_rng(7), kind))
    offsets = landmark_offsets(build_phantom(body))
    for landmark in ("femoral head / hip", "humeral head / shoulder", "femoral condyles / knee"):
        for side in ("left", "right"):
            assert offsets[landmark, side] < 0.010, (landmark, side)


def test_fat_layer_follows_weight_and_sex_and_sits_inside_the_skin(model):
    from render.fat import abdominal_fat_cm
    from render.phantom import rest_skeleton

    man, woman = {"gender": 0.0, "weight": 0.5}, {"gender": 1.0, "weight": 0.5}
    assert abdominal_fat_cm({"gender": 0.0, "weight": 0.1}, 1.75) < abdominal_fat_cm(man, 1.75) \
        < abdominal_fat_cm({"gender": 0.0, "weight": 0.9}, 1.75)
    assert abdominal_fat_cm(man, 1.75) < abdominal_fat_cm(woman, 1.75)
    assert 1.5 < abdominal_fat_cm(man, 1.75) < 2.5  # cm, an average man (CT/ultrasound ranges)
    body = model.pose(LARGE, sample_pose(np.random.default_rng(4), "sitting"))
    plain, fat = build_phantom(body), build_phantom(body, fat=True)
    assert plain.muscle is None and fat.muscle is not None
    t = rest_skeleton(body).fat_m
    assert t.min() >= 0 and 0.02 < t.max() < 0.08  # metres
    heads = body.skin_weights[:, body.bone_index("head")] > 0.9
    belly = body.skin_weights[:, body.bone_index("spine04")] > 0.5
    assert np.median(t[belly]) > 3 * np.median(t[heads])  # thick over the belly, thin on the head
    inside = fat.drr_scene().skin_winding(fat.muscle.vertices)
    assert (inside > 0).mean() > 0.995  # the muscle surface lies inside the skin
    cam = _front_camera(body, 128)
    a, b = plain.drr_scene().render(cam), fat.drr_scene().render(cam)
    # fat holds no mineral: the DXA and labels only move by the ray re-casts' float rounding
    assert np.abs(a.dxa - b.dxa).mean() < 1e-4 and (a.labels == b.labels).mean() > 0.999
    assert b.line_integral[a.thickness_cm > 0].mean() < a.line_integral[a.thickness_cm > 0].mean()
    assert b.bad_fraction < 0.02


def test_material_lengths_add_up_to_the_clean_line_integral(rest_phantom):
    from render.attenuation import MATERIALS, MU_PER_CM

    cam = _front_camera(rest_phantom.body, 96)
    d = rest_phantom.drr_scene().render(cam, materials=True)
    mu = np.array([MU_PER_CM[m] for m in MATERIALS], dtype=np.float32)
    line = np.einsum("m,mij->ij", mu, d.material_cm)
    body = d.thickness_cm > 0
    assert np.allclose(line[body], d.line_integral[body], rtol=1e-3, atol=1e-3)
    assert np.allclose(d.material_cm[MATERIALS.index("soft_tissue")][~body], 0)


def _front_camera(body, size: int):
    from render.camera import Camera, look_rotation

    v = body.vertices
    lo, hi = v.min(0), v.max(0)
    rot = look_rotation(0.0, 0.0)
    return Camera(size, "orthographic", rot, 0.5 * (lo + hi) + rot[2] * 2.0, scale=float(np.max(hi - lo)) * 1.05 / size,
                  cx=size / 2, cy=size / 2)  # fmt: skip


def test_the_trachea_darkens_the_neck_in_a_front_view(rest_phantom):
    """An air column displacing soft tissue: where it lies in the ray's path the line integral
    drops, and nowhere does it rise (beyond the DRR's repair of a few grazing chords)."""
    cam = _front_camera(rest_phantom.body, 256)  # ~7 mm a pixel: the tube is 1-3 pixels wide
    without = [p for p in rest_phantom.parts if p.name != "trachea"]
    darker = DrrScene(rest_phantom.skin, rest_phantom.parts).render(cam).line_integral
    plain = DrrScene(rest_phantom.skin, without).render(cam).line_integral
    assert (darker <= plain + 0.01).all()
    rows = np.flatnonzero((darker < plain - 0.01).any(axis=1))
    assert len(rows) >= 12  # the column runs down the neck into the chest (~11 cm)
