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
adipose         0.253         0.95            0.240
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
"""

from __future__ import annotations

MATERIALS: tuple[str, ...] = (
    "soft_tissue", "adipose", "cortical", "spongy", "marrow", "cartilage", "lung", "air",
)  # fmt: skip

MU_PER_CM: dict[str, float] = {
    "soft_tissue": 0.285,
    "adipose": 0.240,
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
