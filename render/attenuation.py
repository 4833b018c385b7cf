"""Material constants for the DRR: X-ray attenuation (radiograph style) and bone mineral (DXA style).

Linear attenuation coefficients mu (/cm) at an effective photon energy of ~60 keV, the mean
energy of a typical diagnostic beam (~100-120 kVp, filtered). Each is mass attenuation
mu/rho of the ICRU-44 tissue composition as tabulated by NIST XCOM (Hubbell & Seltzer, NIST
Standard Reference Database 126, Table 4) times the tissue density; spongiosa and costal
cartilage follow ICRP-110 reference densities. They are approximations good to about the
second digit (see DESIGN.md section 6), which is all a synthetic look-alike needs:

==============  ============  ==============  =========
material        mu/rho cm2/g  density g/cm3   mu /cm
==============  ============  ==============  =========
soft_tissue     0.205         1.06            0.217
adipose         0.197         0.95            0.187
cortical        0.315         1.92            0.605
spongy          0.238         1.18            0.281
marrow          0.204         1.03            0.210
cartilage       0.208         1.10            0.229
lung            0.205         0.26            0.053
air             ~0            ~0              0
==============  ============  ==============  =========

Bone-mineral (hydroxyapatite) volumetric densities for the DXA style, g/cm3: cortical bone is
~65 % mineral by mass of 1.92 g/cm3 (~1.2 g/cm3); adult trabecular (spongy) bone ~0.2 g/cm3
as measured by QCT; marrow, cartilage and soft tissues carry none. DXA areal density
(g/cm2) = sum over the ray of chord (cm) x mineral density.
"""

from __future__ import annotations

MATERIALS: tuple[str, ...] = (
    "soft_tissue", "adipose", "cortical", "spongy", "marrow", "cartilage", "lung", "air",
)  # fmt: skip

MU_PER_CM: dict[str, float] = {
    "soft_tissue": 0.217,
    "adipose": 0.187,
    "cortical": 0.605,
    "spongy": 0.281,
    "marrow": 0.210,
    "cartilage": 0.229,
    "lung": 0.053,
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

RADIOGRAPH_GAIN = 0.16
"""Display gain of the radiograph style: I = 1 - exp(-RADIOGRAPH_GAIN * sum mu_i L_i).

With physical mu and L in cm the trunk (~25 cm of soft tissue, line integral ~5.4) would
saturate at I = 0.996 and bone would be invisible. A detector/display maps log transmission
into the visible range; this fixed gain does the same (trunk ~0.58, thigh ~0.4, air 0) while
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
