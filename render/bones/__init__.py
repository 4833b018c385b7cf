"""Procedural anatomical skeleton built from a body's rest-pose rig and skin.

``build_rest_parts(rest)`` returns every bone (and the lungs) as closed rest-pose meshes, each
attached to one rig bone; render/phantom.py poses them rigidly with the rig.
"""

from __future__ import annotations

from render.bones.axial import Spine, pelvis, skull, spine, thorax
from render.bones.base import PartGeom, RestBody
from render.bones.extremities import feet, hands
from render.bones.limbs import lower_limbs, upper_limbs

__all__ = ["PartGeom", "RestBody", "build_rest_parts"]


def build_rest_parts(rest: RestBody) -> list[PartGeom]:
    """All skeleton parts in the rest pose, in a fixed order (deterministic for a given body)."""
    sp = Spine(rest)
    chest, notch = thorax(rest, sp)
    return (
        skull(rest, sp) + spine(rest, sp) + chest + pelvis(rest, sp)
        + upper_limbs(rest, notch) + hands(rest) + lower_limbs(rest) + feet(rest)
    )
