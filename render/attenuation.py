"""Material constants for the DRR: X-ray attenuation (radiograph style) and bone mineral (DXA style).

Linear attenuation coefficients mu (/cm) at an effective photon energy of ~40 keV, the mean
energy of a filtered ~70-80 kVp beam as used for skeletal (limb, spine, pelvis) radiography.
Each is the mass attenuation mu/rho of the ICRU-44 tissue composition as tabulated by NIST XCOM
(Hubbell & Seltzer, NIST Standard Reference Database 126, Table 4) times the tissue density;
spongiosa and costal cartilage follow ICRP-110 reference densities. They are approximations
good to about the second digit, which is all a synthetic look-alike needs. At ~60 keV (the
values in DESIGN.md section 6: soft 0.21, cortical 0.60 /cm) bone/soft contrast is ~2.8; at
40 keV it is ~4.5, which is why skeletal radiographs are taken at lower kVp and why bones are
clearly visible in them:

==============  ============  ==============  =========
material        mu/rho cm2/g  density g/cm3   mu /cm
==============  ============  ==============  =========
soft_tissue     0.269         1.06            0.285
adipose         0.240         0.95            0.228
cortical        0.666         1.92            1.279
spongy          0.42          1.18            0.50
marrow          0.262         1.03            0.270
cartilage       0.280         1.10            0.308
lung            0.269         0.26            0.070
air             ~0            ~0              0
==============  ============  ==============  =========

Bone-mineral (hydroxyapatite) volumetric densities for the DXA style, g/cm3: cortical bone is
~65 % mineral by mass of 1.92 g/cm3 (~1.2 g/cm3); adult trabecular (spongy) bone ~0.2 g/cm3
as measured by QCT; marrow, cartilage and soft tissues carry none. DXA areal density
(g/cm2) = sum over the ray of chord (cm) x mineral density.

Energy-dependent attenuation (the "realistic" imaging physics, render/physics.py): MASS_ATT_CM2_G
holds mu/rho (cm2/g) at ENERGIES_KEV for each material. The values are the mixture rule over the
ICRU-44 elemental mass fractions of each tissue (as listed by NIST, Hubbell & Seltzer, SRD 126),
with elemental cross sections from the Elam, Ravel & Sieber (2002) tables, computed with xraydb
4.5.8 (``sum(w_el * xraydb.mu_elam(el, E))``). They agree with NIST XCOM's own tissue tables to 3-4
digits (water 0.2683, ICRU soft tissue 0.2688, cortical bone 0.6655, aluminium 0.5684 cm2/g at 40
keV). Compositions (mass %): soft tissue H10.2 C14.3 N3.4 O70.8 Na.2 P.3 S.3 Cl.2 K.3; adipose
H11.4 C59.8 N.7 O27.8 Na.1 S.1 Cl.1; cortical bone H3.4 C15.5 N4.2 O43.5 Na.1 Mg.2 P10.3 S.3 Ca22.5;
red marrow H10.5 C41.4 N3.4 O43.9 P.1 S.2 Cl.2 K.2 Fe.1; cartilage H9.6 C9.9 N2.2 O74.4 Na.5 P2.2
S.9 Cl.3; lung H10.3 C10.5 N3.1 O74.9 Na.2 P.2 S.3 Cl.3 K.2. Spongiosa is a mass mixture of 27.5 %
cortical bone and 72.5 % red marrow, which gives its ICRP-110 density of 1.18 g/cm3 and the 0.20
g/cm3 of mineral used for DXA. Between tabulated energies mu/rho is interpolated log-log (no
absorption edge of these elements lies in 10-150 keV).
"""

from __future__ import annotations

import numpy as np

MATERIALS: tuple[str, ...] = (
    "soft_tissue", "adipose", "cortical", "spongy", "marrow", "cartilage", "lung", "air",
)  # fmt: skip

MU_PER_CM: dict[str, float] = {
    "soft_tissue": 0.285,
    "adipose": 0.228,
    "cortical": 1.279,
    "spongy": 0.50,
    "marrow": 0.270,
    "cartilage": 0.308,
    "lung": 0.070,
    "air": 0.0,
}

MINERAL_G_PER_CM3: dict[str, float] = {
    "soft_tissue": 0.0,
    "adipose": 0.0,
    "cortical": 1.20,
    "spongy": 0.20,
    "marrow": 0.0,
    "cartilage": 0.0,
    "lung": 0.0,
    "air": 0.0,
}

ENERGIES_KEV: tuple[float, ...] = (10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0)

MASS_ATT_CM2_G: dict[str, tuple[float, ...]] = {
    "soft_tissue": (5.38, 1.699, 0.8231, 0.379, 0.2688, 0.2264, 0.2048, 0.1823, 0.1693, 0.1492),
    "adipose": (3.268, 1.083, 0.5678, 0.3064, 0.2396, 0.2123, 0.1974, 0.18, 0.1688, 0.15),
    "cortical": (28.51, 9.032, 4.001, 1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.148),
    "marrow": (4.352, 1.408, 0.7045, 0.3457, 0.2553, 0.2197, 0.2011, 0.1809, 0.1687, 0.1492),
    "cartilage": (6.375, 1.998, 0.9483, 0.4149, 0.2831, 0.2332, 0.2083, 0.1832, 0.1694, 0.1486),
    "lung": (5.46, 1.721, 0.8318, 0.3815, 0.2699, 0.227, 0.2053, 0.1826, 0.1695, 0.1493),
    "aluminium": (26.21, 7.955, 3.442, 1.128, 0.5684, 0.3682, 0.2778, 0.2018, 0.1704, 0.1378),
}
SPONGY_CORTICAL_MASS_FRACTION = 0.275

DENSITY_G_CM3: dict[str, float] = {
    "soft_tissue": 1.06, "adipose": 0.95, "cortical": 1.92, "spongy": 1.18, "marrow": 1.03,
    "cartilage": 1.10, "lung": 0.26, "air": 0.0, "aluminium": 2.699,
}  # fmt: skip

RADIOGRAPH_GAIN = 0.12
"""Display gain of the radiograph style: I = 1 - exp(-RADIOGRAPH_GAIN * sum mu_i L_i).

With physical mu and L in cm the trunk (~25 cm of soft tissue, line integral ~7) would
saturate at I = 0.999 and bone would be invisible. A detector/display maps log transmission
into the visible range; this fixed gain does the same (trunk ~0.57, thigh ~0.4, air 0) while
keeping the Beer-Lambert ordering (more attenuation = brighter). Fixed, never per image.
"""

DXA_FULL_SCALE_G_PER_CM2 = 3.0
"""DXA style: pixel = min(areal bone-mineral density / 3.0 g/cm2, 1). Fixed, never per image.

Clinical areal BMD is ~0.8-1.3 g/cm2 for spine and hip; overlapping bones (pelvis over
sacrum, a tangential view of a cortical wall) reach 2-3 g/cm2, which this scale keeps.
"""


def mu(material: str) -> float:
    """Linear attenuation coefficient (/cm) of a material name; KeyError names unknown ones."""
    if material not in MU_PER_CM:
        raise KeyError(f"unknown material {material!r}; expected one of {', '.join(MATERIALS)}")
    return MU_PER_CM[material]


def mineral(material: str) -> float:
    """Bone-mineral volumetric density (g/cm3) of a material name."""
    if material not in MINERAL_G_PER_CM3:
        raise KeyError(f"unknown material {material!r}; expected one of {', '.join(MATERIALS)}")
    return MINERAL_G_PER_CM3[material]


def mass_attenuation(material: str, energies_kev) -> np.ndarray:
    """mu/rho (cm2/g) of a material at the given energies (keV, within 10-150), log-log
    interpolated in MASS_ATT_CM2_G; spongy is its cortical/marrow mixture, air is 0."""
    e = np.asarray(energies_kev, dtype=np.float64)
    if material == "air":
        return np.zeros_like(e)
    if material == "spongy":
        f = SPONGY_CORTICAL_MASS_FRACTION
        return f * mass_attenuation("cortical", e) + (1 - f) * mass_attenuation("marrow", e)
    if material not in MASS_ATT_CM2_G:
        raise KeyError(f"unknown material {material!r}; expected one of {', '.join(MATERIALS)}")
    if e.size and (e.min() < ENERGIES_KEV[0] or e.max() > ENERGIES_KEV[-1]):
        raise ValueError(f"energies must lie within {ENERGIES_KEV[0]}-{ENERGIES_KEV[-1]} keV")
    table = np.log(np.asarray(MASS_ATT_CM2_G[material]))
    return np.exp(np.interp(np.log(e), np.log(ENERGIES_KEV), table))


def mu_at(material: str, energies_kev) -> np.ndarray:
    """Linear attenuation (/cm) of a material at the given energies (keV)."""
    return mass_attenuation(material, energies_kev) * DENSITY_G_CM3[material]
