"""Realistic imaging physics (render/physics.py): spectrum, energy-dependent attenuation, beam
hardening, scatter, noise at a stated dose, determinism; and the fat layer (render/fat.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("ANNY_CACHE_DIR", os.path.expanduser("~/.cache/maskel/anny"))
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from maskel import MaskelError  # noqa: E402
from render.attenuation import MATERIALS, MU_PER_CM, mass_attenuation, mu_at  # noqa: E402
from render.physics import (  # noqa: E402
    RADIOGRAPH_GAIN,
    Physics,
    mean_energy,
    parse_physics,
    photons_per_mm2_per_ugy,
    primary,
    realistic_radiograph,
    spectrum,
)

SOFT, CORT = MATERIALS.index("soft_tissue"), MATERIALS.index("cortical")
RAW = {"spr_water_20cm": 0.0, "blur_mm": 0.0, "window_percentile": 0.0, "enhance": 0.0, "compress": 0.0}  # physics only


def slab(cm: float, size: int = 64, material: int = SOFT) -> np.ndarray:
    out = np.zeros((len(MATERIALS), size, size), np.float32)
    out[material] = cm
    return out


def transmission(img: np.ndarray) -> np.ndarray:
    """Invert the fixed display (window_percentile 0): I = 1 - T ** gain."""
    return (1.0 - img.astype(np.float64)) ** (1.0 / RADIOGRAPH_GAIN)


def test_spectrum_mean_energy_moves_with_kvp_and_filtration():
    # SpekPy 2.5.4 (W, 12 deg, + Al): 60/2.5 -> 36.0, 80/2.5 -> 42.9, 80/4 -> 45.4, 120/4 -> 57.1 keV
    for kvp, al, ref in ((60, 2.5, 36.0), (80, 2.5, 42.9), (80, 4.0, 45.4), (120, 4.0, 57.1)):
        assert mean_energy(kvp, al) == pytest.approx(ref, abs=0.4)
    assert mean_energy(80, 2.5) < mean_energy(82, 2.5) < mean_energy(85, 2.5) < mean_energy(100, 2.5)
    assert mean_energy(80, 1.0) < mean_energy(80, 2.5) < mean_energy(80, 10.0)
    e, phi = spectrum(82, 2.5)
    assert e.max() < 82 and phi.sum() == pytest.approx(1.0) and (phi >= 0).all()
    with pytest.raises(MaskelError, match="kVp"):
        spectrum(30, 2.5)


def test_fluence_per_air_kerma_matches_iec_rqa5():
    # IEC 62220-1: RQA5 (70 kV, 21 mm Al added, HVL 7.1 mm Al) has 30,174 photons / (mm2 uGy)
    assert photons_per_mm2_per_ugy(70, 23.5) == pytest.approx(30174, rel=0.06)


def test_attenuation_tables_match_nist_and_the_clean_table():
    # NIST XCOM at 40 keV: water-like soft tissue 0.2688, cortical bone 0.6655 cm2/g
    assert mass_attenuation("soft_tissue", [40.0])[0] == pytest.approx(0.2688, rel=1e-3)
    assert mass_attenuation("cortical", [40.0])[0] == pytest.approx(0.6655, rel=1e-3)
    for m in ("soft_tissue", "cortical", "marrow", "cartilage", "adipose"):  # the clean 40 keV values
        assert mu_at(m, [40.0])[0] == pytest.approx(MU_PER_CM[m], rel=0.03), m
    e = np.linspace(10, 150, 50)
    for m in MATERIALS:
        if m != "air":
            assert (np.diff(mass_attenuation(m, e)) < 0).all(), m  # no edges in 10-150 keV here
    assert mu_at("air", [40.0])[0] == 0.0


def test_beam_hardening_lowers_the_effective_attenuation_with_depth():
    ph = Physics(**RAW)
    mu_eff = [-np.log(primary(slab(t, 2), ph)[0, 0]) / t for t in (2.0, 10.0, 30.0)]
    assert mu_eff[0] > mu_eff[1] > mu_eff[2]
    # a harder beam (more kVp) attenuates less: bone contrast falls with kVp
    contrast = [(-np.log(primary(slab(1.0, 2, CORT), Physics(kvp=k, **RAW))[0, 0]))
                / (-np.log(primary(slab(1.0, 2), Physics(kvp=k, **RAW))[0, 0])) for k in (60, 80, 120)]  # fmt: skip
    assert contrast[0] > contrast[1] > contrast[2] > 1.5


def test_noise_follows_the_dose_and_is_deterministic_per_seed():
    img = slab(20.0, 96)
    sd = []
    for dose in (1.0, 4.0):
        ph = Physics(dose_ugy=dose, **RAW)
        a = realistic_radiograph(img, 1.0, ph, np.random.default_rng(7))
        b = realistic_radiograph(img, 1.0, ph, np.random.default_rng(7))
        c = realistic_radiograph(img, 1.0, ph, np.random.default_rng(8))
        assert np.array_equal(a, b) and not np.array_equal(a, c)
        t = transmission(a)
        sd.append(t.std() / t.mean())
    assert sd[0] / sd[1] == pytest.approx(2.0, rel=0.15)  # quantum noise ~ 1 / sqrt(dose)
    # at a clinical dose on a 7 mm pixel the noise is far below one grey level
    t = transmission(realistic_radiograph(img, 7.0, Physics(**RAW), np.random.default_rng(1)))
    assert t.std() / t.mean() < 2e-3


def test_scatter_adds_signal_behind_the_body_and_blur_smooths_noise():
    img = slab(20.0, 96)
    img[:, :, :48] = 0.0  # half body, half air
    kw = {**RAW, "dose_ugy": 0.05}
    no = transmission(realistic_radiograph(img, 10.0, Physics(**kw), np.random.default_rng(1)))
    sc = transmission(realistic_radiograph(img, 10.0, Physics(**{**kw, "spr_water_20cm": 0.6}), np.random.default_rng(1)))
    body = np.s_[:, 60:]
    spr = sc[body].mean() / no[body].mean() - 1.0
    assert 0.3 < spr < 0.9  # ~0.6 well inside a 20 cm slab, less near its edge
    blurred = transmission(realistic_radiograph(img, 10.0, Physics(**{**kw, "blur_mm": 10.0}), np.random.default_rng(1)))
    assert blurred[body].std() < 0.6 * no[body].std()


def test_windowed_display_spans_the_grey_range_and_bad_parameters_are_refused():
    img = slab(20.0, 64)
    img[CORT, 20:40, 28:36] = 2.0  # a bone
    out = realistic_radiograph(img, 3.0, Physics(), np.random.default_rng(0))
    assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    assert out[30, 32] > out[30, 10] + 0.1  # the bone is brighter than the soft tissue beside it
    assert parse_physics("clean") is None and parse_physics("realistic", {"kvp": 70.0}).kvp == 70.0
    for mode, over, msg in (("fancy", None, "one of"), ("clean", {"kvp": 70.0}, "realistic"),
                            ("realistic", {"kvp": 300.0}, "kvp"), ("realistic", {"volts": 1.0}, "unknown")):  # fmt: skip
        with pytest.raises(MaskelError, match=msg):
            parse_physics(mode, over)
    assert Physics.from_json(Physics(kvp=90.0).to_json()) == Physics(kvp=90.0)
