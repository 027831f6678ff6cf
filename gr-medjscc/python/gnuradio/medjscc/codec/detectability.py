"""Where in the spectrum a lung nodule is detectable: per-band weights for the hybrid's analog
layer (issue #15, "ROI weighting that raises the AUC at equal CBR"). Pure numpy.

The analog layer's closed-form allocation minimises the LLSE error ``sum_b n_b c_b s2 / (p_b + s2)``
with ``c_b`` the band's variance: every grey level of error counts the same wherever it lies in the
spectrum. The nodule observer (``evaluation/observer.py``: a channelized Hotelling observer, known
location) does not see it so. Its decision variable is ``t = T . image`` for a spatial template
``T`` (its Laguerre-Gauss channels, scaled to the nodule, combined by the Hotelling weights), so
an error ``e`` moves ``t`` by ``T . e``: error at DCT frequency f costs detectability in
proportion to ``|T(f)|^2`` (the same argument that gives a contrast-sensitivity weighted MSE for a
human reader). Weighting the error by ``w_b = 1 + task_weight * rho_b`` (``rho_b``: the template's
mean energy per coefficient in band b, the largest band 1; ``c_b = w_b * lam_b``) moves channel
uses and power towards the frequencies the observer reads, at a cost in PSNR. ``task_weight`` 0
is the plain MSE allocation, bit for bit.

The template's radial DCT energy profile (``BINS`` bins of normalised radius) is fitted on
**train**-split nodule pairs (the observer trained on them, its template placed at each nodule
at that nodule's scale) by ``bench/fit_nodule_spectrum.py`` into
``evaluation/codes/nodule_spectrum.json`` (with the nodule's own energy profile, present minus
absent, for the record); both ends of a link read the same file, so the weights cost no side info.
The weight per SNR (``weight_rule``) is the smallest within 0.01 of the highest observer AUC on
**validation** pairs (``bench/task_weight_pick.py`` -> ``evaluation/codes/task_weights.json``).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import InputError, MedJSCCError

SPECTRUM_FILE_NAME = "nodule_spectrum.json"
WEIGHTS_FILE_NAME = "task_weights.json"   # the weight per SNR, picked on validation pairs
BINS = 128   # radial bins over the normalised DCT radius r / hypot(H, W) in [0, 1]


def spectrum_file():
    from ..evaluation import ldpc

    return ldpc.CODES_DIR / SPECTRUM_FILE_NAME


def weights_file():
    from ..evaluation import ldpc

    return ldpc.CODES_DIR / WEIGHTS_FILE_NAME


@functools.lru_cache(maxsize=2)
def _weight_table(path: str) -> tuple:
    from ..evaluation.linkadapt import read_fitted_json

    data = read_fitted_json(path, "task_weight_pick.py")
    try:
        rows = tuple(sorted((float(k), float(v)) for k, v in data["weights"].items()))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise MedJSCCError(f"{path}: no weight table ({e}); refit it with bench/task_weight_pick.py") from None
    if not rows or any(not (math.isfinite(w) and w >= 0) for _, w in rows):
        raise MedJSCCError(f"{path}: weights must be finite numbers >= 0; refit it with bench/task_weight_pick.py")
    return rows


def weight_rule(snr_db: float, path=None) -> float:
    """The task weight picked on validation pairs for the highest fitted SNR at or below
    ``snr_db`` (the lowest fitted one below the grid); both ends of a link know it."""
    rows = _weight_table(str(path or weights_file()))
    best = rows[0][1]
    for s, w in rows:
        if s <= float(snr_db) + 1e-9:
            best = w
    return best


def radius_bins(shape) -> np.ndarray:
    """Bin of every DCT coefficient of an image of ``shape`` (raster order) by normalised radius."""
    h, w = (int(s) for s in shape)
    u, v = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    r = np.sqrt(u ** 2 + v ** 2).ravel() / math.hypot(h, w)
    return np.minimum((r * BINS).astype(np.int64), BINS - 1)


def radial_energy(coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """-> (energy summed per radial bin, coefficient count per bin) of a 2-D DCT array."""
    b = radius_bins(coefs.shape)
    return (np.bincount(b, weights=np.asarray(coefs, float).ravel() ** 2, minlength=BINS),
            np.bincount(b, minlength=BINS).astype(float))


def observer_template(present, absent, nodules) -> np.ndarray:
    """The channelized Hotelling observer's weights on its channels (``observer.N_CHANNELS``),
    trained on the given pairs (``nodules[i]``: ``centre_px``, ``radius_px``)."""
    from ..evaluation import observer

    v1 = np.stack([observer.channel_responses(img, n["centre_px"], n["radius_px"]) for img, n in zip(present, nodules)])
    v0 = np.stack([observer.channel_responses(img, n["centre_px"], n["radius_px"]) for img, n in zip(absent, nodules)])
    return observer.hotelling_template(v1, v0)


def template_image(weights: np.ndarray, shape, nodule: dict) -> np.ndarray:
    """The observer's spatial template for ``nodule``: its channels at that nodule's centre and
    scale combined by ``weights``, zero elsewhere in an image of ``shape``."""
    from ..evaluation import observer

    r, c = (float(x) for x in nodule["centre_px"])
    ri, ci = int(round(r)), int(round(c))
    u, h = observer.lg_channels(observer.channel_width(nodule["radius_px"]), (r - ri, c - ci))
    patch = np.tensordot(np.asarray(weights, float), u, axes=(0, 0))
    out = np.zeros((shape[0] + 2 * h, shape[1] + 2 * h))
    out[ri: ri + 2 * h + 1, ci: ci + 2 * h + 1] = patch
    return out[h: h + shape[0], h: h + shape[1]]


def fit_profiles(present, absent, nodules) -> dict:
    """Mean energy per DCT coefficient, per radial bin, of the observer's template (trained on
    these pairs, placed at each nodule) and of the nodule itself (present - absent)."""
    from scipy.fft import dctn

    present = [np.asarray(p, float) for p in present]
    absent = [np.asarray(a, float) for a in absent]
    if not (len(present) == len(absent) == len(nodules)) or len(present) < 2:
        raise InputError("need at least 2 nodule pairs, each with its nodule record, to fit the spectrum")
    weights = observer_template(present, absent, nodules)
    t_sum, s_sum, n_sum = np.zeros(BINS), np.zeros(BINS), np.zeros(BINS)
    for p, a, nod in zip(present, absent, nodules):
        if p.shape != a.shape or p.ndim != 2:
            raise InputError(f"nodule pair of shapes {p.shape} / {a.shape}; two equal 2-D images expected")
        et, cnt = radial_energy(dctn(template_image(weights, p.shape, nod), norm="ortho"))
        es, _ = radial_energy(dctn(p - a, norm="ortho"))
        t_sum, s_sum, n_sum = t_sum + et, s_sum + es, n_sum + cnt
    per = lambda x: np.where(n_sum > 0, x / np.maximum(n_sum, 1), 0.0).tolist()   # noqa: E731
    return {"bins": BINS, "pairs": len(present), "observer_weights": [float(w) for w in weights],
            "observer_energy": per(t_sum), "nodule_energy": per(s_sum)}


@functools.lru_cache(maxsize=2)
def _observer_profile(path: str) -> np.ndarray:
    from ..evaluation.linkadapt import read_fitted_json

    data = read_fitted_json(path, "fit_nodule_spectrum.py")
    try:
        t = np.asarray(data["observer_energy"], float)
    except (KeyError, TypeError, ValueError) as e:
        raise MedJSCCError(f"{path}: no observer profile ({e}); refit it with bench/fit_nodule_spectrum.py") from None
    if t.shape != (BINS,) or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise MedJSCCError(f"{path}: an observer profile of {BINS} finite values >= 0 expected; refit it")
    return t


@functools.lru_cache(maxsize=16)
def band_detectability(shape: tuple, n_bands: int, path: str | None = None) -> np.ndarray:
    """Per band of ``bands.band_map`` (the hybrid's): the observer template's mean energy per
    coefficient, scaled so the largest band is 1."""
    from .bands import band_map

    t = _observer_profile(str(path or spectrum_file()))
    labels, _ = band_map(tuple(shape), n_bands)
    cnt = np.bincount(labels, minlength=n_bands)
    rho = np.bincount(labels, weights=t[radius_bins(shape)], minlength=n_bands) / np.maximum(cnt, 1)
    top = rho.max()
    if not top > 0:
        raise MedJSCCError("nodule spectrum: the observer template has no energy; refit it")
    return rho / top


def band_weights(shape, n_bands: int, task_weight: float, path=None) -> np.ndarray | None:
    """``1 + task_weight * rho_b`` per band; None for ``task_weight`` 0 (the MSE allocation)."""
    task_weight = float(task_weight)
    if not task_weight >= 0 or not math.isfinite(task_weight):
        raise InputError(f"task weight must be a finite number >= 0, got {task_weight}")
    if task_weight == 0.0:
        return None
    return 1.0 + task_weight * band_detectability(tuple(int(s) for s in shape), int(n_bands),
                                                  None if path is None else str(path))
