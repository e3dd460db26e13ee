"""Land covers of a simulated region: codes, how often parcels get them, and their phenology.

Crop phenology is a double logistic (green-up inflection ``t1``, senescence inflection ``t2``)
with a harvest and a tillage date; the ranges are at 48 °N in a normal year (shifted by the
scene's latitude and weather, :mod:`agrostress.simulate.domain`) and were fitted to the real
Sentinel-2 series of ``shared/real`` (France 2023) — see ``docs/simulator.md`` and
``python bench/realism.py``. Days are days of year (DOY).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# land-cover codes (the ``land_cover`` variable of a simulated cube; not the label codes)
WHEAT, GRASS, BARE, HEDGE, TRACK = 1, 2, 3, 4, 5
MAIZE, BARLEY, RAPESEED, SUNFLOWER, FOREST, WATER, BUILT = 6, 7, 8, 9, 10, 11, 12
COVER_NAMES = {
    WHEAT: "wheat", GRASS: "grassland", BARE: "bare_soil", HEDGE: "hedge", TRACK: "track",
    MAIZE: "maize", BARLEY: "winter_barley", RAPESEED: "rapeseed", SUNFLOWER: "sunflower",
    FOREST: "forest", WATER: "water", BUILT: "built_up",
}
# what the non-wheat parcels of a region are (probabilities; strips between parcels aside)
OTHER_PARCELS = {
    MAIZE: 0.18, BARLEY: 0.12, RAPESEED: 0.10, SUNFLOWER: 0.08, GRASS: 0.20, BARE: 0.10,
    FOREST: 0.10, WATER: 0.04, BUILT: 0.08,
}
CROPS = (WHEAT, MAIZE, BARLEY, RAPESEED, SUNFLOWER)  # covers with a crop season


@dataclass(frozen=True)
class CropPhenology:
    """Ranges of one crop's season at 48 °N, normal year (uniform unless a normal is noted)."""

    t1: tuple[float, float]  # green-up inflection, normal (mean, sd)
    r1: tuple[float, float]
    t2: tuple[float, float]  # senescence inflection, normal (mean, sd)
    r2: tuple[float, float]
    lai0: tuple[float, float]  # green LAI at the start of the season (winter canopy)
    laipk: tuple[float, float]
    cab0: tuple[float, float]
    cabpk: tuple[float, float]
    brown_max: tuple[float, float]  # brown pigment of the ripe canopy
    harvest_after_t2: tuple[float, float] | None  # harvest, days after t2 (None: not in season)
    precover: float = 0.0  # probability of a winter cover crop / weeds before a spring crop
    flowering: bool = False  # rapeseed: a yellow flowering window after green-up


PHENOLOGY: dict[int, CropPhenology] = {
    # winter wheat: green through the winter (NDVI ~0.65 in February), peak NDVI 0.86-0.91 in
    # April-May, senescence mid-June, stubble by early July at 48 °N (real France 2023)
    WHEAT: CropPhenology(t1=(92, 6), r1=(0.05, 0.09), t2=(164, 5), r2=(0.12, 0.22),
                         lai0=(0.3, 1.2), laipk=(3.0, 5.6), cab0=(28, 38), cabpk=(44, 60),
                         brown_max=(2.5, 4.0), harvest_after_t2=(12, 24)),
    # winter barley: about two weeks ahead of wheat (NDVI 0.36 by 11 June)
    BARLEY: CropPhenology(t1=(86, 6), r1=(0.05, 0.09), t2=(150, 5), r2=(0.10, 0.18),
                          lai0=(0.6, 1.8), laipk=(3.0, 5.5), cab0=(25, 35), cabpk=(40, 54),
                          brown_max=(2.0, 3.5), harvest_after_t2=(14, 24)),
    # winter rapeseed: a large winter canopy, yellow flowers mid-April to early May
    RAPESEED: CropPhenology(t1=(80, 6), r1=(0.05, 0.09), t2=(160, 5), r2=(0.07, 0.12),
                            lai0=(1.2, 2.8), laipk=(3.0, 5.0), cab0=(30, 40), cabpk=(40, 55),
                            brown_max=(1.5, 3.0), harvest_after_t2=(16, 26), flowering=True),
    # maize: bare, tilled soil April to early June, emergence late May, NDVI 0.8 by July
    MAIZE: CropPhenology(t1=(176, 6), r1=(0.07, 0.12), t2=(262, 8), r2=(0.06, 0.10),
                         lai0=(0.0, 0.0), laipk=(3.0, 5.5), cab0=(30, 40), cabpk=(40, 58),
                         brown_max=(1.5, 2.5), harvest_after_t2=None, precover=0.85),
    # sunflower: like maize, a little later at the same latitude
    SUNFLOWER: CropPhenology(t1=(184, 6), r1=(0.07, 0.12), t2=(228, 8), r2=(0.06, 0.10),
                             lai0=(0.0, 0.0), laipk=(2.5, 4.5), cab0=(30, 40), cabpk=(38, 55),
                             brown_max=(1.5, 2.5), harvest_after_t2=None, precover=0.6),
}


def draw_other_covers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Land covers of ``n`` non-wheat parcels."""
    codes = np.array(list(OTHER_PARCELS))
    p = np.array(list(OTHER_PARCELS.values()))
    return rng.choice(codes, size=n, p=p / p.sum()).astype(np.uint8)


def _interp(wl: np.ndarray, nodes: dict[float, float]) -> np.ndarray:
    x = np.array(list(nodes))
    return np.interp(wl, x, np.array(list(nodes.values())))


def water_spectrum(wl_nm: np.ndarray) -> np.ndarray:
    """Reflectance of inland water (moderately turbid; Kutser et al. / typical S2 lake values)."""
    return _interp(wl_nm, {400: 0.035, 490: 0.04, 560: 0.05, 665: 0.03, 705: 0.025, 740: 0.012,
                           800: 0.008, 865: 0.006, 1000: 0.004, 1600: 0.003, 2200: 0.002, 2500: 0.002})


def built_up_spectrum(wl_nm: np.ndarray) -> np.ndarray:
    """Mean reflectance of roofs, asphalt and concrete (urban mixtures, e.g. Herold et al. 2004)."""
    return _interp(wl_nm, {400: 0.07, 490: 0.09, 560: 0.11, 665: 0.13, 705: 0.14, 800: 0.16,
                           865: 0.17, 1000: 0.18, 1600: 0.21, 2200: 0.19, 2500: 0.17})
