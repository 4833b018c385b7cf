"""Realistic imaging physics for the radiograph style (switchable; the default stays "clean").

"clean" (the default, what the shipped model trains on): monochromatic Beer-Lambert at an
effective 40 keV, no scatter, blur or noise (render/drr.py). "realistic" (``Physics``):

1. Tube spectrum: tungsten anode, 12 degrees, tabulated every 5 kVp from 40 to 150 kVp in 1 keV
   bins by SpekPy 2.5.4 (render/spectra.json says how), linearly blended between the two
   nearest tabulated kVp, then filtered by `filtration_mm_al` of aluminium (total filtration;
   IEC 60601-1-3 asks for at least 2.5 mm Al in general radiography).
2. Energy-dependent attenuation per material (render/attenuation.py: mu/rho of the ICRU-44
   tissues at 10-150 keV, NIST XCOM-equal values), so every ray's spectrum hardens with depth
   (beam hardening): primary P = sum_E w(E) exp(-sum_m mu_m(E) L_m) / sum_E w(E), with the
   per-material path lengths L_m of the DRR. The detector is an ideal energy integrator,
   w(E) = fluence(E) * E.
3. Scatter: the scatter-kernel model (as in Love & Kruger 1987, Med Phys 14:178): each pixel
   scatters in proportion to P * (-ln P) (what it removes from the primary, to first order),
   spread by a Gaussian of `scatter_sigma_cm` at the detector. The amplitude is set by
   `spr_water_20cm`, the scatter-to-primary ratio behind a uniform 20 cm water slab with this
   spectrum (about 3-5 without an anti-scatter grid and about 0.3-1 with one; 0.6 = a grid).
4. Quantum noise: N0 photons per pixel in the open beam from the detector air kerma `dose_ugy`
   (unattenuated beam), the pixel area, and the spectrum's photons per air kerma (from air's
   mu_en/rho, NIST / Hubbell & Seltzer Table 4). Signal T = P + S gets Gaussian noise of
   variance T / N0 * <E^2>/<E>^2 (Poisson counts, energy-integrating: the Swank factor of the
   spectrum). Deterministic: the caller passes a seeded RNG.
5. Detector blur (MTF): a Gaussian point-spread of `blur_mm` (sigma, at the detector) applied
   after the noise, as a scintillator blurs both.
Display: the log image (line integral -ln T, as a detector's raw data are log-converted) is
windowed per image, as digital radiography systems range each exposure by its histogram and
DeepDRR normalises its log images, after the large-scale contrast equalisation that digital
radiography systems apply (unsharp masking of the log image, as in multi-scale processing such
as MUSICA; image processing, not physics): line' = (1 - compress) * G(line) + (1 + enhance) *
(line - G(line)), G a Gaussian mean over the body of EQUALISE_SIGMA_CM (the large-scale
thickness is compressed, the detail - bone edges - enhanced), then radiograph = clip(line' /
line_ref, 0, 1) ** DISPLAY_GAMMA with line_ref the `window_percentile` of line' over the body. Without it
(compress 0, enhance 0, gamma 1) the trunk's thickness takes most of the grey range and bones stay faint. With `window_percentile` 0
the clean style's fixed grey scale is used instead (1 - T ** RADIOGRAPH_GAIN, i.e.
1 - exp(-gain * line)), comparable pixel for pixel with the clean image but flat: at 80 kVp
bone/soft-tissue contrast is about half of the clean style's 40 keV, and scatter lowers it further.

Scale: an image pixel covers the body at the camera's scale (~7 mm at 256² for a whole body),
so at clinical doses quantum noise (~0.1 % at 50 uGy) and detector blur (~0.3 mm) are well under
a pixel and barely visible; they grow with image size, zoom or a lower dose. Spectrum, beam
hardening and scatter change what every image looks like.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from maskel import MaskelError
from render.attenuation import MATERIALS, RADIOGRAPH_GAIN, mu_at

PHYSICS_MODES = ("clean", "realistic")
DISPLAY_GAMMA = 1.2  # > 1 darkens soft tissue against bone, as a radiograph's display curve does
EQUALISE_SIGMA_CM = 4.0
KEV_TO_UGY = 1.602177e-5  # photons/mm2 x keV x cm2/g (mu_en/rho) -> uGy of air kerma
# air, mu_en/rho (cm2/g) at render.attenuation.ENERGIES_KEV: NIST (Hubbell & Seltzer) Table 4
AIR_MU_EN_CM2_G = (4.742, 1.334, 0.5389, 0.1537, 0.06833, 0.04098, 0.03041, 0.02407, 0.02325, 0.02496)


@dataclass(frozen=True)
class Physics:
    """Parameters of the realistic radiograph (module docstring); the defaults are a skeletal
    exposure at 80 kVp with a grid, at a clinical-order detector dose."""

    kvp: float = 80.0
    filtration_mm_al: float = 2.5
    spr_water_20cm: float = 0.6
    scatter_sigma_cm: float = 6.0
    dose_ugy: float = 50.0
    blur_mm: float = 0.3
    window_percentile: float = 99.5
    enhance: float = 1.5
    compress: float = 0.6

    def __post_init__(self) -> None:
        kv = sorted(int(k) for k in _table()["fluence"])
        checks = (("kvp", kv[0], kv[-1]), ("filtration_mm_al", 0.0, 30.0), ("spr_water_20cm", 0.0, 10.0),
                  ("scatter_sigma_cm", 0.1, 50.0), ("dose_ugy", 1e-4, 1e5), ("blur_mm", 0.0, 10.0),
                  ("window_percentile", 0.0, 100.0), ("enhance", 0.0, 5.0),
                  ("compress", 0.0, 0.9))  # fmt: skip
        for name, lo, hi in checks:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise MaskelError(f"physics {name} must be a number in [{lo}, {hi}], got {v!r}")

    def to_json(self) -> dict[str, Any]:
        return {"mode": "realistic", **asdict(self)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Physics:
        fields = {k: v for k, v in obj.items() if k != "mode"}
        unknown = sorted(set(fields) - set(cls.__dataclass_fields__))
        if unknown:
            raise MaskelError(f"unknown physics parameter(s) {unknown}; expected some of {sorted(cls.__dataclass_fields__)}")
        return cls(**fields)


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("spectra.json")).read_text())


@lru_cache(maxsize=32)
def spectrum(kvp: float, filtration_mm_al: float) -> tuple[np.ndarray, np.ndarray]:
    """(energies keV, relative photon fluence per 1 keV bin) behind the filtration; bins that
    carry less than 1e-6 of the peak are dropped."""
    t = _table()
    kvs = np.array(sorted(int(k) for k in t["fluence"]), dtype=np.float64)
    if not kvs[0] <= kvp <= kvs[-1]:
        raise MaskelError(f"kVp must be within {kvs[0]:.0f}-{kvs[-1]:.0f}, got {kvp}")
    hi = int(min(np.searchsorted(kvs, kvp), len(kvs) - 1))
    lo = max(hi - 1, 0) if kvs[hi] > kvp else hi
    a = 0.0 if hi == lo else (kvp - kvs[lo]) / (kvs[hi] - kvs[lo])
    n = int(np.ceil(kvp - t["first_kev"]))  # bins below kvp
    e = t["first_kev"] + t["step_kev"] * np.arange(n)

    def pad(k: float) -> np.ndarray:
        f = np.asarray(t["fluence"][str(int(k))], dtype=np.float64)[:n]
        return np.pad(f, (0, n - len(f)))

    phi = (1 - a) * pad(kvs[lo]) + a * pad(kvs[hi])
    phi = phi * np.exp(-mu_at("aluminium", e) * filtration_mm_al / 10.0)
    keep = phi > 1e-6 * phi.max()
    return e[keep], phi[keep] / phi[keep].sum()


def mean_energy(kvp: float, filtration_mm_al: float) -> float:
    """Fluence-weighted mean photon energy (keV) of the filtered spectrum."""
    e, phi = spectrum(kvp, filtration_mm_al)
    return float((e * phi).sum())


def photons_per_mm2_per_ugy(kvp: float, filtration_mm_al: float) -> float:
    """Photon fluence per air kerma of the filtered beam (IEC 62220-1 quotes ~30,000 for RQA5)."""
    from render.attenuation import ENERGIES_KEV

    e, phi = spectrum(kvp, filtration_mm_al)
    mu_en = np.exp(np.interp(np.log(e), np.log(ENERGIES_KEV), np.log(AIR_MU_EN_CM2_G)))
    return float(1.0 / (KEV_TO_UGY * (phi * e * mu_en).sum()))


def primary(material_cm: np.ndarray, physics: Physics) -> np.ndarray:
    """Primary transmission (S, S) of the energy-integrated beam through the per-material path
    lengths (M, S, S) (render.drr.DRR.material_cm)."""
    e, phi = spectrum(physics.kvp, physics.filtration_mm_al)
    w = phi * e
    w = w / w.sum()
    mus = np.stack([mu_at(m, e) for m in MATERIALS])  # (M, E)
    m, s, _ = material_cm.shape
    lengths = material_cm.reshape(m, -1)
    out = np.ones(s * s)
    live = np.flatnonzero(lengths.any(axis=0))
    for chunk in np.array_split(live, max(1, len(live) // 16384)):
        out[chunk] = np.exp(-(lengths[:, chunk].T.astype(np.float64) @ mus)) @ w
    return out.reshape(s, s)


def _water_spr_scale(physics: Physics) -> float:
    """k of the scatter model: k * (-ln P) = spr_water_20cm behind 20 cm of water (here ICRU soft
    tissue scaled to 1 g/cm3)."""
    lengths = np.zeros((len(MATERIALS), 1, 1))
    lengths[MATERIALS.index("soft_tissue")] = 20.0 / 1.06
    tau = -np.log(primary(lengths, physics)[0, 0])
    return physics.spr_water_20cm / tau


def realistic_radiograph(material_cm: np.ndarray, pixel_mm: float, physics: Physics,
                         rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """The radiograph style (S, S) float32 in [0, 1] under `physics`; `pixel_mm` is the size of a
    pixel at the body (detector plane); `rng` draws the quantum noise (seed it per sample)."""
    p = primary(material_cm, physics)
    sigma_px = physics.scatter_sigma_cm * 10.0 / pixel_mm
    scatter = _water_spr_scale(physics) * gaussian_filter(p * -np.log(np.maximum(p, 1e-12)), sigma_px, mode="constant")
    signal = p + scatter
    e, phi = spectrum(physics.kvp, physics.filtration_mm_al)
    swank = float((phi * e**2).sum() * phi.sum() / (phi * e).sum() ** 2)
    n0 = photons_per_mm2_per_ugy(physics.kvp, physics.filtration_mm_al) * physics.dose_ugy * pixel_mm**2
    signal = signal + rng.standard_normal(signal.shape) * np.sqrt(signal * swank / n0)
    blur_px = physics.blur_mm / pixel_mm
    if blur_px >= 0.05:
        signal = gaussian_filter(signal, blur_px, mode="nearest")
    signal = np.clip(signal, 1e-9, 1.0)
    if physics.window_percentile <= 0:
        return (1.0 - signal**RADIOGRAPH_GAIN).astype(np.float32)
    line = -np.log(signal)
    inside = material_cm.any(axis=0)
    if (physics.enhance > 0 or physics.compress > 0) and inside.any():
        s = EQUALISE_SIGMA_CM * 10.0 / pixel_mm
        local = gaussian_filter(np.where(inside, line, 0.0), s) / np.maximum(gaussian_filter(inside * 1.0, s), 1e-6)
        out = (1.0 - physics.compress) * local + (1.0 + physics.enhance) * (line - local)
        line = np.where(inside, np.maximum(out, 0.0), line)
    ref = float(np.percentile(line[inside], physics.window_percentile)) if inside.any() else 1.0
    return (np.clip(line / max(ref, 1e-6), 0.0, 1.0) ** DISPLAY_GAMMA).astype(np.float32)


def pixel_mm_at(cam, point: np.ndarray) -> float:
    """Size (mm) of one pixel at a world point seen by cam (orthographic: its scale)."""
    if cam.projection == "orthographic":
        return float(cam.scale) * 1000.0
    return float(np.linalg.norm(np.asarray(point) - cam.position) / cam.focal_px) * 1000.0


def parse_physics(mode: str, overrides: dict[str, float] | None = None) -> Physics | None:
    """'clean' -> None; 'realistic' -> Physics(**overrides); anything else: MaskelError."""
    if mode not in PHYSICS_MODES:
        raise MaskelError(f"physics must be one of {', '.join(PHYSICS_MODES)}, got {mode!r}")
    if mode == "clean":
        if overrides:
            raise MaskelError(f"physics parameters {sorted(overrides)} need --physics realistic")
        return None
    return Physics.from_json(dict(overrides or {}))
