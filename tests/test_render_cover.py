"""The posed skin pushed out over bones it let through (render/cover.py), on a sphere of skin."""

from __future__ import annotations

import numpy as np
import trimesh

from render.cover import COVER_MARGIN, COVER_RADIUS, cover_bones
from render.drr import DrrScene
from render.phantom import Part


def _skin() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=4, radius=0.1)


def test_a_bone_point_outside_is_covered_by_a_local_bulge():
    skin = _skin()
    bone = np.array([[0.108, 0.0, 0.0], [0.05, 0.0, 0.0]])  # 8 mm out through the side, and one inside
    assert DrrScene(skin, []).outside_skin(bone).tolist() == [True, False]
    v = cover_bones(skin.vertices, skin.faces, bone, scale=1.0)
    covered = trimesh.Trimesh(v, skin.faces, process=False)
    assert not DrrScene(covered, []).outside_skin(bone).any()
    # at least the margin over the point, along the radius
    assert np.linalg.norm(v, axis=1).max() >= 0.108 + 0.5 * COVER_MARGIN
    moved = np.linalg.norm(v - skin.vertices, axis=1) > 1e-9
    far = np.linalg.norm(skin.vertices - bone[0], axis=1) > 0.008 + COVER_RADIUS + 0.01
    assert moved.any() and not moved[far].any()  # a bulge, not an inflated body
    assert (np.einsum("ij,ij->i", v - skin.vertices, skin.vertices)[moved] > 0).all()  # outwards only


def test_a_skin_with_every_bone_inside_is_left_as_it_is():
    skin = _skin()
    bone = np.random.default_rng(0).uniform(-0.05, 0.05, (200, 3))
    v = cover_bones(skin.vertices, skin.faces, bone, scale=1.0)
    np.testing.assert_array_equal(v, skin.vertices)


def test_the_other_side_of_a_fold_is_not_pushed_into_the_body():
    """Two spheres side by side, like an arm lying against the chest: a point poking out of the
    left one towards the right one moves the left one's skin, not the right one's."""
    left = _skin()
    right = _skin().apply_translation([0.215, 0.0, 0.0])
    skin = trimesh.util.concatenate([left, right])
    bone = np.array([[0.106, 0.0, 0.0]])  # 6 mm out of the left sphere, 9 mm short of the right
    v = cover_bones(skin.vertices, skin.faces, bone, scale=1.0)
    n = len(left.vertices)
    assert np.abs(v[:n] - skin.vertices[:n]).max() > 0.005
    np.testing.assert_array_equal(v[n:], skin.vertices[n:])


def test_later_rounds_test_in_the_callers_scene_and_give_the_same_skin():
    """scene_of lets the caller's own scene (here skin plus a bone inside it) stand in for a scene
    of the skin alone after the first round; the skin it gives is the same, and the last scene
    asked for is that of the returned skin (so a caller can keep it)."""
    skin = _skin()
    bone = np.array([[0.108, 0.0, 0.0], [0.0, 0.109, 0.02], [0.05, 0.0, 0.0]])
    inner = Part("inner", 1, "cortical", "soft_tissue", trimesh.creation.icosphere(subdivisions=2, radius=0.03))
    asked: list[np.ndarray] = []

    def scene_of(v: np.ndarray) -> DrrScene:
        asked.append(v)
        return DrrScene(trimesh.Trimesh(v, skin.faces, process=False), [inner])

    v = cover_bones(skin.vertices, skin.faces, bone, 1.0, scene_of)
    np.testing.assert_array_equal(v, cover_bones(skin.vertices, skin.faces, bone, scale=1.0))
    assert asked and asked[-1] is not v  # a copy: the cover goes on moving its own array
    np.testing.assert_array_equal(asked[-1], v)
    assert not scene_of(v).outside_skin(bone).any()
