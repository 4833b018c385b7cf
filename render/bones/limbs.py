"""Long bones of the limbs and the shoulder girdle: clavicle, scapula, humerus, radius, ulna,
femur, patella, tibia, fibula. Built along the rig's limb segments in the rest pose."""

from __future__ import annotations

import numpy as np

from render.bones.base import SIDES, UP, PartGeom, RestBody, perp, unit
from render.bones.shapes import blob, long_bone, tube


def upper_limbs(body: RestBody, sternal_notch: np.ndarray) -> list[PartGeom]:
    parts: list[PartGeom] = []
    for side, sfx, sx in SIDES:
        s = body.scale
        sh = body.h(f"upperarm01.{sfx}")
        el = body.h(f"lowerarm01.{sfx}")
        wr = body.h(f"wrist.{sfx}")
        arm = el - sh
        fore = wr - el
        lat = np.array([sx, 0.0, 0.0])
        # elbow flexion axis, pointing laterally
        flex = np.cross(arm, fore)
        flex = perp(lat, arm) if np.linalg.norm(flex) < 1e-3 * np.linalg.norm(arm) ** 2 else unit(flex)
        if np.dot(flex, lat) < 0:
            flex = -flex
        ml = perp(flex, arm)
        hr = 0.021 * s
        ctrl = np.stack([sh - unit(arm) * 0.6 * hr, sh, sh + arm * 0.12, sh + arm * 0.5, el - arm * 0.1,
                         el + unit(arm) * 0.008 * s])
        ru = np.array([0.8, 1.0, 0.62, 0.55, 0.9, 0.7]) * hr * np.array([1, 1, 1, 1, 1.5, 1.3])
        rv = np.array([0.8, 1.0, 0.62, 0.55, 0.6, 0.5]) * hr
        parts += long_bone(body, f"humerus_{side}", f"upperarm01.{sfx}", ctrl, ru, rv, up=ml,
                           marrow=(0.3, 0.75), fit=0.6)
        # forearm: the radius ends on the thumb side at the wrist, the lateral side at the elbow
        thumb = body.t(f"finger1-1.{sfx}") - body.t(f"metacarpal4.{sfx}")
        rad_w = perp(thumb, fore)
        rad_e = perp(flex, fore)
        off = 0.0095 * s
        r_ctrl = np.stack([el + fore * 0.02 + rad_e * off, el + fore * 0.3 + rad_e * off * 0.9,
                           el + fore * 0.7 + unit(rad_e + rad_w) * off, wr - fore * 0.04 + rad_w * off])
        parts += long_bone(body, f"radius_{side}", f"lowerarm02.{sfx}", r_ctrl,
                           np.array([0.55, 0.5, 0.6, 1.05]) * 0.011 * s, np.array([0.55, 0.45, 0.5, 0.7]) * 0.011 * s,
                           up=rad_w, n=12, n_around=10, fit=0.55)
        u_ctrl = np.stack([el - unit(fore) * 0.012 * s - rad_e * off * 0.5, el + fore * 0.3 - rad_e * off,
                           el + fore * 0.7 - unit(rad_e + rad_w) * off, wr - fore * 0.06 - rad_w * off])
        parts += long_bone(body, f"ulna_{side}", f"lowerarm01.{sfx}", u_ctrl,
                           np.array([1.1, 0.6, 0.45, 0.55]) * 0.011 * s, np.array([0.9, 0.55, 0.45, 0.5]) * 0.011 * s,
                           up=rad_e, n=12, n_around=10, fit=0.55)
        # clavicle: sternal end beside the notch -> acromion above the shoulder joint, S-curved
        acro = sh + UP * 0.028 * s + np.array([0.0, 0.012 * s, 0.0]) - lat * 0.01 * s
        st = sternal_notch + lat * 0.018 * s
        mid = 0.5 * (st + acro) + np.array([0.0, -0.012 * s, 0.004 * s])
        parts += tube(body, f"clavicle_{side}", f"clavicle.{sfx}", np.stack([st, 0.75 * st + 0.25 * mid * 1.0 + 0.0, mid, acro]),
                      np.array([0.65, 0.55, 0.5, 0.55]) * 0.011 * s, np.array([0.55, 0.5, 0.4, 0.35]) * 0.011 * s,
                      up=UP, n=12, fit=0.55)
        parts += _scapula(body, side, sfx, sx, sh)
    return parts


def _scapula(body: RestBody, side: str, sfx: str, sx: float, sh: np.ndarray) -> list[PartGeom]:
    """A triangular plate on the back of the chest (medial border -> glenoid) plus its spine."""
    s = body.scale
    lat = np.array([sx, 0.0, 0.0])
    back = np.array([0.0, 1.0, 0.0])
    glen = sh + back * 0.012 * s - lat * 0.022 * s
    med_z = sh[2] - 0.075 * s
    probe = np.array([sx * 0.085 * s, sh[1], med_z])
    d = body.depth(probe[None], back[None])[0]
    med = probe + back * max(d - 0.022 * s, 0.0)
    ctrl = np.stack([med - lat * 0.004 * s, 0.5 * (med + glen) + back * 0.004 * s, glen])
    normal = unit(np.cross(glen - med, UP))
    plate_up = unit(np.cross(normal, glen - med))
    if plate_up[2] < 0:
        plate_up = -plate_up
    plate = tube(body, f"scapula_{side}", f"shoulder01.{sfx}", ctrl,
                 np.array([0.075, 0.05, 0.018]) * s, np.array([0.005, 0.005, 0.012]) * s,
                 up=plate_up, n=10, n_around=10, power=2.0)
    spine_ctrl = np.stack([med + UP * 0.03 * s + back * 0.004 * s, glen + UP * 0.03 * s + back * 0.01 * s,
                           sh + UP * 0.026 * s + back * 0.004 * s])
    ridge = tube(body, f"scapula_{side}", f"shoulder01.{sfx}", spine_ctrl, 0.005 * s, up=UP, n=8, fit=0.5)
    return plate + ridge


def lower_limbs(body: RestBody) -> list[PartGeom]:
    parts: list[PartGeom] = []
    for side, sfx, sx in SIDES:
        s = body.scale
        hip = body.h(f"upperleg01.{sfx}")
        knee = body.h(f"lowerleg01.{sfx}")
        ankle = body.h(f"foot.{sfx}")
        lat = np.array([sx, 0.0, 0.0])
        thigh = knee - hip
        shin = ankle - knee
        rh = 0.022 * s
        troch = hip + lat * 0.05 * s - unit(thigh) * 0.045 * s
        shaft_dir = unit(knee - troch)
        ml = perp(lat, shaft_dir)
        ctrl = np.stack([hip - lat * 0.7 * rh + UP * 0.3 * rh, hip, 0.5 * (hip + troch), troch,
                         troch + (knee - troch) * 0.3, troch + (knee - troch) * 0.7,
                         knee - shaft_dir * 0.028 * s, knee - shaft_dir * 0.008 * s])
        ru = np.array([0.75, 1.0, 0.7, 1.05, 0.6, 0.62, 1.5, 1.3]) * rh
        rv = np.array([0.75, 1.0, 0.7, 0.8, 0.6, 0.62, 1.15, 1.0]) * rh
        parts += long_bone(body, f"femur_{side}", f"upperleg01.{sfx}", ctrl, ru, rv, up=ml, n=20,
                           marrow=(0.35, 0.78), spongy_ends=0.12, fit=0.65)
        ml_s = perp(lat, shin)
        rt = 0.02 * s
        t_ctrl = np.stack([knee + unit(shin) * 0.006 * s - ml_s * 0.003 * s, knee + shin * 0.08,
                           knee + shin * 0.35, knee + shin * 0.7, ankle - unit(shin) * 0.02 * s - ml_s * 0.004 * s,
                           ankle - unit(shin) * 0.006 * s - ml_s * 0.006 * s])
        parts += long_bone(body, f"tibia_{side}", f"lowerleg01.{sfx}", t_ctrl,
                           np.array([1.6, 1.3, 0.7, 0.62, 0.95, 0.95]) * rt, np.array([1.15, 1.0, 0.7, 0.6, 0.8, 0.75]) * rt,
                           up=ml_s, n=18, marrow=(0.3, 0.75), spongy_ends=0.12, fit=0.6)
        back = perp(np.array([0.0, 1.0, 0.0]), shin)
        f_ctrl = np.stack([knee + shin * 0.09 + ml_s * 0.026 * s + back * 0.01 * s,
                           knee + shin * 0.5 + ml_s * 0.024 * s + back * 0.008 * s,
                           ankle + ml_s * 0.024 * s - unit(shin) * 0.005 * s])
        parts += long_bone(body, f"fibula_{side}", f"lowerleg01.{sfx}", f_ctrl,
                           np.array([0.9, 0.5, 0.85]) * 0.0085 * s, np.array([0.8, 0.5, 0.7]) * 0.0085 * s,
                           up=ml_s, n=12, n_around=10, marrow=(0.3, 0.7), fit=0.5)
        fwd = -back
        d = body.depth((knee + unit(-shin) * 0.02 * s)[None], fwd[None])[0]
        pc = knee - unit(shin) * 0.02 * s + fwd * max(d - 0.018 * s, 0.0)
        parts += blob(body, f"patella_{side}", f"lowerleg01.{sfx}", pc,
                      np.stack([ml_s, fwd, unit(-shin)]), np.array([0.021, 0.01, 0.022]) * s, fit=0.8)
    return parts
