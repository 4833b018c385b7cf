"""The axial skeleton and chest: skull, 24 vertebrae, sacrum, coccyx, ribs with costal cartilage,
sternum, lungs, hip bones. Placed from rig joints plus ray-cast skin depths in the rest pose."""

from __future__ import annotations

import numpy as np

from render.bones.base import PartGeom, RestBody, part
from render.bones.primitives import sweep
from render.bones.shapes import blob, tube
from render.labels import CARTILAGE_RIBS, VERTEBRAE

UP = np.array([0.0, 0.0, 1.0])
BACK = np.array([0.0, 1.0, 0.0])
SIDES = (("left", "L", 1.0), ("right", "R", -1.0))
SPINE_CHAIN = ("spine05", "spine04", "spine03", "spine02", "spine01", "neck01", "neck02", "neck03", "head")
# share of the S1 -> skull-base height taken by each region, and the vertebral body centre's
# depth from the back skin as a fraction of the trunk depth there
REGIONS = {"L": (0.32, 0.33), "T": (0.47, 0.30), "C": (0.21, 0.45)}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


class Spine:
    """Vertebral body centres, tangents and skin depths per level, bottom (L5) to top (C1)."""

    def __init__(self, body: RestBody) -> None:
        s = body.scale
        hip_z = 0.5 * (body.h("upperleg01.L")[2] + body.h("upperleg01.R")[2])
        self.s1 = hip_z + 0.085 * s
        self.skull_base = body.h("head")
        total = self.skull_base[2] - self.s1
        names = list(VERTEBRAE[::-1])  # L5 .. C1
        counts = {"L": 5, "T": 12, "C": 7}
        zs, z = [], self.s1
        for reg in ("L", "T", "C"):
            step = REGIONS[reg][0] * total / counts[reg]
            zs += list(z + step * (np.arange(counts[reg]) + 0.5))
            z += REGIONS[reg][0] * total
        self.names = names
        self.z = np.array(zs)
        self.step = np.gradient(self.z)
        heads = np.array([body.h(n) for n in SPINE_CHAIN])
        chain_y = np.interp(self.z, heads[:, 2], heads[:, 1])
        o = np.stack([np.zeros_like(self.z), chain_y, self.z], 1)
        n = len(o)
        d = body.depth(np.concatenate([o, o]), np.concatenate([np.tile(BACK, (n, 1)), np.tile(-BACK, (n, 1))]))
        self.y_back = chain_y + d[:n]
        self.y_front = chain_y - d[n:]
        depth = self.y_back - self.y_front
        frac = np.array([REGIONS[v[0]][1] for v in names])
        self.centers = np.stack([np.zeros(n), self.y_back - frac * depth, self.z], 1)
        self.tangents = np.array([_unit(t) for t in np.gradient(self.centers, axis=0)])
        self.rig = [SPINE_CHAIN[max(0, np.searchsorted(heads[:, 2], zz) - 1)] for zz in self.z]
        self.scale = s

    def at(self, name: str) -> int:
        return self.names.index(name)


def _body_size(name: str, s: float) -> tuple[float, float, float, float, float]:
    """(body lateral radius, AP radius, canal radius, transverse process, spinous length) in m."""
    reg, lvl = name[0], int(name[1:])
    if reg == "C":
        return 0.010 * s, 0.0075 * s, 0.008 * s, 0.024 * s, (0.03 if lvl == 7 else 0.016) * s
    if reg == "T":
        r = (0.013 + 0.0008 * lvl) * s
        return r, 0.8 * r, 0.0065 * s, 0.03 * s, 0.035 * s
    r = (0.021 + 0.001 * lvl) * s
    return r, 0.7 * r, 0.008 * s, 0.034 * s, 0.03 * s


def spine(body: RestBody, sp: Spine) -> list[PartGeom]:
    parts: list[PartGeom] = []
    s = sp.scale
    lat = np.array([1.0, 0.0, 0.0])
    for i, name in enumerate(sp.names):
        c, t, rig = sp.centers[i], sp.tangents[i], sp.rig[i]
        back = _unit(BACK - t * np.dot(BACK, t))
        rx, ry, canal, tp, spl = _body_size(name, s)
        h = 0.36 * sp.step[i]
        bone = f"vertebra_{name}"
        path = np.stack([c - t * h, c - t * 0.5 * h, c + t * 0.5 * h, c + t * h])
        parts.append(part(bone, rig, "cortical", "soft_tissue",
                          sweep(path, rx, ry, n_around=10, up=lat, power=2.4)))
        parts.append(part(bone, rig, "spongy", "cortical",
                          sweep(c + (path - c) * 0.8, rx * 0.82, ry * 0.82, n_around=10, up=lat, power=2.4)))
        arch_c = c + back * (ry + canal)
        arch = np.stack([c + back * ry * 0.6 + lat * tp, arch_c + lat * canal * 1.05, arch_c + back * canal * 1.1,
                         arch_c - lat * canal * 1.05, c + back * ry * 0.6 - lat * tp])
        parts += tube(body, bone, rig, arch, 0.0035 * s, 0.25 * h + 0.002 * s, up=t, n=14)
        tip0 = arch_c + back * canal * 1.1
        room = sp.y_back[i] - tip0[1] - 0.012 * s
        length = float(np.clip(spl, 0.004 * s, max(room, 0.004 * s)))
        tilt = {"C": 0.2, "T": 0.8, "L": 0.1}[name[0]]
        tip = tip0 + _unit(back - t * tilt) * length
        parts += tube(body, bone, rig, np.stack([tip0 - back * 0.003 * s, tip]), 0.003 * s, 0.006 * s, up=t, n=6)
    # sacrum and coccyx below L5
    c5, t5 = sp.centers[0], sp.tangents[0]
    top = c5 - t5 * 0.5 * sp.step[0]
    ctrl = np.stack([top - UP * 0.004 * s, top - UP * 0.05 * s + BACK * 0.012 * s, top - UP * 0.1 * s + BACK * 0.035 * s])
    parts += tube(body, "sacrum", "root", ctrl, np.array([0.048, 0.038, 0.016]) * s,
                  np.array([0.017, 0.013, 0.008]) * s, up=np.array([1.0, 0.0, 0.0]), n=10, n_around=12, fit=0.6)
    tip = ctrl[-1]
    parts += tube(body, "coccyx", "root", np.stack([tip - UP * 0.012 * s, tip - UP * 0.035 * s - BACK * 0.01 * s]),
                  0.006 * s, up=np.array([1.0, 0.0, 0.0]), n=6, fit=0.5)
    return parts


def thorax(body: RestBody, sp: Spine) -> tuple[list[PartGeom], np.ndarray]:
    """Ribs, costal cartilage, sternum and lungs; also returns the jugular notch (for clavicles)."""
    s = sp.scale
    parts: list[PartGeom] = []
    tidx = [sp.at(f"T{k}") for k in range(1, 13)]
    zc = sp.z[tidx]
    ymid = 0.5 * (sp.y_back[tidx] + sp.y_front[tidx])
    phis = np.radians(np.array([40.0, 65.0, 90.0, 115.0, 140.0, 160.0]))
    drop = (0.025 + 0.004 * np.arange(12)) * s
    # contour depths for every rib (12) x angle (6) x side (2), one ray batch
    o, d = [], []
    for k in range(12):
        for sx in (1.0, -1.0):
            for ph in phis:
                o.append([0.0, ymid[k], zc[k] - drop[k] * (ph / np.pi) ** 1.5])
                d.append([sx * np.sin(ph), np.cos(ph), 0.0])
    o, d = np.array(o), np.array(d)
    dist = body.depth(o, d).reshape(12, 2, len(phis))
    cap = np.array([0.6, 0.72, 0.82, 0.9, 0.96] + [1.0] * 7)
    dist = np.minimum(dist, dist[6][None] * cap[:, None, None])
    inset = 0.15 * dist + 0.012 * s
    pts = (o + d * (dist - inset).reshape(-1, 1)).reshape(12, 2, len(phis), 3)
    # sternum
    z_top, z_ang, z_bot = sp.z[sp.at("T2")], sp.z[sp.at("T5")] - 0.005 * s, sp.z[sp.at("T9")]
    sz = np.array([z_top, z_ang, z_bot])
    so = np.stack([np.zeros(3), np.interp(sz, zc, ymid), sz], 1)
    sd = body.depth(so, np.tile(-BACK, (3, 1)))
    sy = so[:, 1] - sd + 0.016 * s + 0.05 * sd
    st = np.stack([np.zeros(3), sy, sz], 1)
    notch = st[0] + UP * 0.004 * s
    xaxis = np.array([1.0, 0.0, 0.0])
    parts += tube(body, "manubrium", "spine01", np.stack([st[0], st[1] + UP * 0.006 * s]), np.array([0.024, 0.016]) * s,
                  0.0055 * s, up=xaxis, n=8, n_around=10)
    parts += tube(body, "sternum_body", "spine01", np.stack([st[1] - UP * 0.004 * s, st[2]]), np.array([0.014, 0.012]) * s,
                  0.005 * s, up=xaxis, n=10, n_around=10)
    end_phi = [5] * 7 + [4, 4, 4, 3, 2]
    for si, (side, _sfx, sx) in enumerate(SIDES):
        lat = np.array([sx, 0.0, 0.0])
        for k in range(12):
            c = sp.centers[tidx[k]]
            rx, ry, canal, tp, _ = _body_size(f"T{k + 1}", s)
            head = c + lat * rx * 1.05 + BACK * ry * 0.3
            tub = c + lat * tp * 0.9 + BACK * (ry + canal * 0.6)
            n_end = end_phi[k]
            ctrl = np.concatenate([[head, tub], pts[k, si, : n_end + 1 - (1 if k < 10 else 0)]])
            rib = f"rib_{side}_{k + 1}"
            r = (0.0045 if k > 0 else 0.0055) * s
            parts += tube(body, rib, sp.rig[tidx[k]], ctrl, r, r * 1.5, up=UP, n=14, n_around=6)
            if k + 1 in CARTILAGE_RIBS:
                a = ctrl[-1]
                if k < 7:
                    zst = z_top + (z_bot - z_top) * k / 6.5
                    b = np.array([sx * 0.014 * s, np.interp(zst, sz[::-1], sy[::-1]), zst])
                else:
                    b = np.array([sx * (0.03 + 0.012 * (k - 7)) * s, sy[2] + 0.012 * (k - 6) * s,
                                  z_bot - 0.012 * (k - 7) * s])
                mid = 0.5 * (a + b) + np.array([0.0, -0.004 * s, 0.0])
                parts += tube(body, f"costal_cartilage_{side}_{k + 1}", sp.rig[tidx[k]], np.stack([a, mid, b]),
                              r * 0.9, r * 1.2, up=UP, n=8, material="cartilage")
        # lung: sections between the ribs' lateral, front and back extents, inset from the ribs
        levels = range(0, 10)
        cen, ru, rv = [], [], []
        x_med = (0.05 if sx > 0 else 0.035) * s
        for k in levels:
            p = pts[k, si]
            x_lat = np.abs(p[:, 0]).max() - 0.012 * s
            yb = p[0, 1] - 0.012 * s
            yf = p[-2, 1] + 0.015 * s
            cen.append([sx * 0.5 * (x_lat + x_med), 0.5 * (yb + yf), zc[k] - 0.6 * drop[k]])
            ru.append(max(0.5 * (x_lat - x_med), 0.01 * s) * 0.85)
            rv.append(max(0.5 * (yb - yf), 0.01 * s) * 0.8)
        cen = np.array(cen)
        ru_a, rv_a = np.array(ru), np.array(rv)
        path = np.concatenate([[cen[0] + UP * 0.02 * s], cen, [cen[-1] - UP * 0.01 * s]])
        ru_a = np.concatenate([[ru_a[0] * 0.35], ru_a, [ru_a[-1] * 0.6]])
        rv_a = np.concatenate([[rv_a[0] * 0.35], rv_a, [rv_a[-1] * 0.6]])
        mesh = sweep(path[::-1], ru_a[::-1], rv_a[::-1], n_around=14, up=np.array([1.0, 0.0, 0.0]))
        parts.append(part(f"lung_{side}", sp.rig[tidx[5]], "lung", "soft_tissue", mesh))
    return parts, notch


def skull(body: RestBody, sp: Spine) -> list[PartGeom]:
    s = sp.scale
    base = sp.skull_base
    if body.has("eye.L") and body.has("eye.R"):
        eye = 0.5 * (body.h("eye.L") + body.h("eye.R"))
    else:
        eye = base + UP * 0.05 * s - BACK * 0.07 * s
    zc = eye[2] + 0.02 * s
    o = np.array([0.0, base[1] - 0.01 * s, zc])
    dirs = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0], [0, 0, 1.0]])
    dd = body.depth(np.tile(o, (5, 1)), dirs)
    scalp = 0.006 * s + 0.04 * dd
    ax = 0.92 * min(dd[0] - scalp[0], dd[1] - scalp[1])
    yc = o[1] + 0.5 * ((dd[2] - scalp[2]) - (dd[3] - scalp[3]))
    ay = 0.5 * ((dd[2] - scalp[2]) + (dd[3] - scalp[3]))
    az = dd[4] - scalp[4]
    c = np.array([0.0, yc, zc])
    head_rig = "head"
    parts: list[PartGeom] = []

    def vault(shrink: float) -> tuple[np.ndarray, np.ndarray]:
        phi = np.linspace(0.0, np.pi, 12)[1:-1]
        zz = np.where(phi < np.pi / 2, -np.cos(phi) * (0.55 * az - shrink), -np.cos(phi) * (az - shrink))
        path = c + zz[:, None] * UP
        low = np.where(phi < np.pi / 2, 0.85, 1.0)
        v, f = sweep(path, (ax - shrink) * np.sin(phi) * low, (ay - shrink) * np.sin(phi), n_around=14, up=BACK)
        v[-2] = c - UP * (0.55 * az - shrink)
        v[-1] = c + UP * (az - shrink)
        return v, f

    parts.append(part("cranium", head_rig, "cortical", "soft_tissue", vault(0.0)))
    parts.append(part("cranium", head_rig, "soft_tissue", "cortical", vault(0.0065 * s)))
    # face: below the front of the vault
    fz = eye[2] - 0.025 * s
    fo = np.array([0.0, yc, fz])
    fd = body.depth(fo[None], -BACK[None])[0]
    fc = fo - BACK * max(fd - 0.016 * s - 0.022 * s, 0.0)
    parts += blob(body, "facial_skeleton", head_rig, fc, np.eye(3), np.array([0.038, 0.022, 0.032]) * s, fit=0.8)
    # mandible: a U from condyle to condyle through the chin
    jaw = "jaw" if body.has("jaw") else head_rig
    cz = eye[2] - 0.1 * s
    co = np.array([0.0, yc, cz])
    cd = body.depth(co[None], -BACK[None])[0]
    chin = co - BACK * max(cd - 0.012 * s, 0.0)
    ctrl = []
    for sx in (1.0, -1.0):
        ctrl.append([np.array([sx * 0.04 * s, yc + 0.01 * s, eye[2] - 0.035 * s]),
                     np.array([sx * 0.04 * s, yc + 0.004 * s, cz + 0.004 * s]),
                     np.array([sx * 0.03 * s, 0.5 * (yc + chin[1]), cz])])
    path = np.stack(ctrl[0] + [chin] + ctrl[1][::-1])
    parts += tube(body, "mandible", jaw, path, 0.0045 * s, 0.009 * s, up=UP, n=24, fit=0.6)
    # hyoid at the front of the neck
    h_i = sp.at("C3")
    hz = sp.z[h_i]
    ho = np.array([0.0, sp.centers[h_i][1], hz])
    hd = body.depth(ho[None], -BACK[None])[0]
    hf = ho - BACK * max(hd - 0.015 * s, 0.0)
    parts += tube(body, "hyoid", sp.rig[h_i], np.stack([hf + np.array([0.016 * s, 0.014 * s, 0.003 * s]), hf,
                                                         hf + np.array([-0.016 * s, 0.014 * s, 0.003 * s])]),
                  0.003 * s, up=UP, n=10, fit=0.5)
    return parts


def pelvis(body: RestBody, sp: Spine) -> list[PartGeom]:
    """Hip bones: iliac wing, acetabular rim, pubic rami and ischium around the obturator opening."""
    parts: list[PartGeom] = []
    s = sp.scale
    for side, _sfx, sx in SIDES:
        hip = body.h(f"upperleg01.{'L' if sx > 0 else 'R'}")
        k = abs(hip[0]) / 0.1  # pelvic width scale
        lat = np.array([sx, 0.0, 0.0])
        bone = f"hip_bone_{side}"
        si_joint = np.array([sx * 0.035 * k, sp.centers[0][1] + 0.02 * s, sp.s1 - 0.02 * s])
        crest = hip + UP * 0.1 * s + lat * 0.02 * k + BACK * 0.01 * s
        ctrl = np.stack([hip + UP * 0.028 * s, 0.5 * (hip + crest) + lat * 0.005 * k + UP * 0.01 * s, crest])
        wing_u = _unit(np.array([sx * 0.55, -1.0, 0.0]))
        parts += tube(body, bone, "root", ctrl, np.array([0.022, 0.04, 0.055]) * s, np.array([0.008, 0.006, 0.006]) * s,
                      up=wing_u, n=12, n_around=12)
        parts += tube(body, bone, "root", np.stack([0.5 * (hip + crest) - lat * 0.01 * k + BACK * 0.02 * s, si_joint]),
                      0.013 * s, 0.007 * s, up=UP, n=8)
        # acetabular rim: an open ring around the femoral head
        ang = np.linspace(0.25 * np.pi, 1.95 * np.pi, 10)
        ring_u = _unit(np.array([0.0, -1.0, 0.0]))
        ring = hip + lat * 0.012 * s + 0.028 * s * (np.cos(ang)[:, None] * UP + np.sin(ang)[:, None] * ring_u)
        parts += tube(body, bone, "root", ring, 0.006 * s, up=lat, n=16)
        sym = np.array([sx * 0.006 * k, hip[1] - 0.045 * s, hip[2] - 0.03 * s])
        tub = hip + BACK * 0.03 * s - UP * 0.065 * s - lat * 0.012 * k
        sym_lo = sym - UP * 0.03 * s + BACK * 0.004 * s
        parts += tube(body, bone, "root", np.stack([hip - lat * 0.025 * s - BACK * 0.012 * s, sym]), 0.007 * s, up=UP, n=8)
        parts += tube(body, bone, "root", np.stack([hip - UP * 0.03 * s + BACK * 0.014 * s, tub]), 0.01 * s, up=lat, n=8)
        parts += tube(body, bone, "root", np.stack([tub, 0.5 * (tub + sym_lo) - UP * 0.006 * s, sym_lo]),
                      0.0065 * s, up=UP, n=10)
        parts += tube(body, bone, "root", np.stack([sym + UP * 0.004 * s, sym_lo]), 0.007 * s, 0.01 * s, up=lat, n=6)
    return parts
