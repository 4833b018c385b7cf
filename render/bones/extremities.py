"""Hands (8 carpals, 5 metacarpals, 14 phalanges) and feet (7 tarsals, 5 metatarsals, 14
phalanges), each bone along or beside its rig bone and shrunk to the local finger/toe skin."""

from __future__ import annotations

import numpy as np

from render.bones.base import SIDES, UP, PartGeom, RestBody, perp, unit
from render.bones.shapes import blob, long_bone
from render.labels import CARPALS, TARSALS, digit_phalanges


def _small_long(body: RestBody, bone: str, rig: str, a: np.ndarray, b: np.ndarray, r: float,
                up: np.ndarray, gap: float = 0.08) -> list[PartGeom]:
    """A short tubular bone from a to b (gap trimmed off each end), flared ends, spongy ends only."""
    d = b - a
    ctrl = np.stack([a + d * gap, a + d * 0.5, b - d * gap])
    return long_bone(body, bone, rig, ctrl, np.array([1.25, 0.8, 1.1]) * r, np.array([1.05, 0.75, 0.95]) * r,
                     up=up, n=8, n_around=6, marrow=None, core=True, fit=0.55)


def hands(body: RestBody) -> list[PartGeom]:
    parts: list[PartGeom] = []
    for side, sfx, _ in SIDES:
        w0 = body.h(f"wrist.{sfx}")
        w1 = body.t(f"wrist.{sfx}")
        bases = {d: body.t(f"metacarpal{d - 1}.{sfx}") for d in range(2, 6)}
        along = unit(np.mean(list(bases.values()), axis=0) - w0)
        width = perp(bases[2] - bases[5], along)  # towards the thumb
        palm = np.cross(along, width)
        hand_len = np.linalg.norm(body.t(f"finger3-3.{sfx}") - w0)
        k = hand_len / 0.19
        rig_chain = {1: ["finger1-1", "finger1-2", "finger1-3"]}
        for d in range(2, 6):
            rig_chain[d] = [f"metacarpal{d - 1}", f"finger{d}-1", f"finger{d}-2", f"finger{d}-3"]
        radii = {1: 0.0052, 2: 0.0048, 3: 0.005, 4: 0.0046, 5: 0.0042}
        for d in range(1, 6):
            chain = rig_chain[d]
            meta_rig = chain[0]
            a, b = body.h(f"{meta_rig}.{sfx}"), body.t(f"{meta_rig}.{sfx}")
            if d > 1:  # rig metacarpals all start at the wrist's tail: start past the carpus
                a = a + (b - a) * 0.12
            else:
                a = a + (b - a) * 0.15
            parts += _small_long(body, f"metacarpal_{side}_{d}", f"{meta_rig}.{sfx}", a, b,
                                 radii[d] * k, palm, gap=0.04)
            for kind, rig in zip(digit_phalanges(d, True), chain[1:], strict=True):
                r = radii[d] * k * {"proximal": 0.9, "middle": 0.8, "distal": 0.65}[kind]
                a, b = body.h(f"{rig}.{sfx}"), body.t(f"{rig}.{sfx}")
                if kind == "distal":  # the rig's leaf tail is the fingertip skin
                    b = a + (b - a) * 0.6
                parts += _small_long(body, f"phalanx_{kind}_{side}_hand_{d}", f"{rig}.{sfx}", a, b, r, palm)
        # carpals: proximal row (thumb side first) then distal row, on the wrist segment
        span = np.linalg.norm(bases[2] - bases[5]) * 1.05
        clen = max(np.linalg.norm(w1 - w0), 0.02 * k)
        rows = {0: CARPALS[:4], 1: CARPALS[4:]}
        axes = np.stack([width, palm, along])
        for row, names in rows.items():
            for i, name in enumerate(names):
                x = (0.5 - (i + 0.5) / 4.0) * span
                z = (0.3 if row == 0 else 0.85) * clen
                c = w0 + along * z + width * x
                if name == "pisiform":  # sits on the palmar face of the triquetrum
                    c = w0 + along * 0.35 * clen + width * (-0.3 * span) - palm * 0.006 * k
                parts += blob(body, f"{name}_{side}", f"wrist.{sfx}", c, axes,
                              np.array([0.42 * span / 4.0, 0.0055 * k, 0.3 * clen]), fit=0.6)
    return parts


def feet(body: RestBody) -> list[PartGeom]:
    parts: list[PartGeom] = []
    for side, sfx, sx in SIDES:
        ankle = body.h(f"foot.{sfx}")
        heads = {d: body.h(f"toe{d}-1.{sfx}") for d in range(1, 6)}
        fwd = np.mean(list(heads.values()), axis=0) - ankle
        fwd[2] = 0.0
        fwd = unit(fwd)
        lat = unit(np.cross(UP, fwd)) * sx
        if np.dot(lat, [sx, 0, 0]) < 0:
            lat = -lat
        s = np.linalg.norm(heads[1] - ankle) / 0.14  # foot scale from ankle -> big toe joint
        floor = body.floor
        toe_chain = {1: ["toe1-1", "toe1-2"]}
        for d in range(2, 6):
            toe_chain[d] = [f"toe{d}-1", f"toe{d}-2", f"toe{d}-3"]
        radii = {1: 0.0085, 2: 0.005, 3: 0.0048, 4: 0.0045, 5: 0.0045}
        # metatarsals from the midfoot arch down to each toe joint
        for d in range(1, 6):
            head = heads[d]
            base = ankle + (head - ankle) * 0.45
            base[2] = max(floor + 0.035 * s, head[2] + 0.01 * s)
            parts += _small_long(body, f"metatarsal_{side}_{d}", f"foot.{sfx}", base, head, radii[d] * s, UP, gap=0.05)
            for kind, rig in zip(digit_phalanges(d, True), toe_chain[d], strict=True):
                r = radii[d] * s * {"proximal": 0.8, "middle": 0.7, "distal": 0.7}[kind]
                a, b = body.h(f"{rig}.{sfx}"), body.t(f"{rig}.{sfx}")
                if kind == "distal":
                    b = a + (b - a) * 0.6
                parts += _small_long(body, f"phalanx_{kind}_{side}_foot_{d}", f"{rig}.{sfx}", a, b, r, UP)
        axes = np.stack([lat, fwd, UP])
        mid = {d: ankle + (heads[d] - ankle) * 0.45 for d in range(1, 6)}
        height = ankle[2] - floor
        spec = {
            "talus": (ankle - UP * 0.15 * height + fwd * 0.008 * s, (0.014, 0.022, 0.013)),
            "calcaneus": (ankle - UP * 0.55 * height - fwd * 0.025 * s, (0.014, 0.03, 0.014)),
            "navicular": (ankle + fwd * 0.03 * s - UP * 0.3 * height - lat * 0.008 * s, (0.012, 0.007, 0.011)),
            "cuboid": (0.5 * (ankle + mid[4]) + fwd * 0.008 * s + lat * 0.004 * s - UP * 0.4 * height, (0.011, 0.012, 0.01)),
            "cuneiform_medial": (mid[1] - fwd * 0.012 * s, (0.007, 0.01, 0.011)),
            "cuneiform_intermediate": (mid[2] - fwd * 0.014 * s, (0.006, 0.008, 0.009)),
            "cuneiform_lateral": (mid[3] - fwd * 0.013 * s, (0.006, 0.009, 0.009)),
        }
        for name in TARSALS:
            c, r = spec[name]
            c = c.copy()
            c[2] = max(c[2], floor + 0.02 * s)
            parts += blob(body, f"{name}_{side}", f"foot.{sfx}", c, axes, np.array(r) * s, fit=0.6)
    return parts
