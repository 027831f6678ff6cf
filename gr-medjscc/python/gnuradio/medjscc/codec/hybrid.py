"""Hybrid digital-analog codec, training-free stage (issue #13 part 2). Pure numpy, no GNU Radio.

One image, ``n_total`` complex symbols in all (side info and every header included), sent as one
frame ``[side | base | analog]``:

* **side** (``n_side`` symbols): one digital frame of the envelope's rate-matched family at the
  robust MCS the envelope uses for neural side info (``envelope.side_info_mcs``), chosen
  ``SIDE_EXTRA_DB`` lower (short frames need more SNR): a base-present flag, the analog layer's
  band variances (``BAND_BITS`` each) and its scale byte. Its size is fixed by the layout, so it
  carries no length field. A *prior* split sends no side frame: both ends use band variances
  fitted on the validation split for that split and SNR, and the scale byte leads the base
  payload. (Frames of 4-13 bytes of this code family need about 0 dB whatever their rate,
  measured: 4 bytes at rates 0.035-0.145 fail 37-92% of frames at -3 dB; the validation fit
  prefers the prior at every SNR from -10 to 15 dB.)
* **base** (``n_base`` symbols): header-free JPEG2000 (``source.py``; ROI-JPEG2000 when the split
  rule says so) at the MCS the envelope's validation-fitted rule picks for the SNR the TX knows,
  filling the frame's payload. Below the lowest MCS of that rule, or when the split rule gives it
  no share, there is no base (pure analog, no cliff). Where the split says ``rx_mask``, the ROI's
  grid code (``roi.sideinfo``, 12-16 bytes and a length byte) leads the stream, so the receiver
  knows the mask too.
* **analog** (``n_analog`` symbols, the rest): the base layer's error ``image - base`` in a
  full-frame orthonormal 2-D DCT. Coefficients are grouped in radial bands (log-spaced rings: 16 rings
  lost 0.1-0.7 dB to 1024 chunks of 8x8 coefficients on JPEG2000 residuals, both with exact
  variances, for 64x less side info); the bands' mean energies, quantised, are the side info.
  Both ends order the coefficients by band variance (then radius), send the first ``2 n_analog`` as the I and Q of complex symbols
  with the closed-form optimal linear power allocation for LLSE decoding (p_b = max(0,
  sqrt(lam_b s2 / mu) - s2), s2 = N0/2 per real; p ~ sqrt(lam) at high SNR, i.e. SoftCast's
  lam^-1/4 gains), then scale the symbols to unit mean power (the gain, rounded down to
  ``SCALE_STEP_DB``, is the scale byte). The RX decodes LLSE with the gains from the same
  quantised variances, the SNR and the scale byte, and its own N0 (and fading gains). A pure
  analog prior split has no byte to carry the scale: the RX takes a unit gain.
  With a ROI weight (``bg_weight`` < 1) the analog layer carries the residual times 1 in the ROI and
  ``bg_weight`` outside (feathered), so the ROI gets the power. If only the TX knows the mask the
  background arrives attenuated (biased towards the base); with ``rx_mask`` the RX divides by the
  same weights: the background comes back unbiased with its noise raised, which costs the whole
  image far less (the 1/16 fit's table at 10 dB, weight 0.5: -0.56 dB whole-image PSNR instead
  of -2.91 dB for +1.29 / +1.24 dB ROI-PSNR).

Failures are reported, never silent: if the base frame fails (a decoded word other than the
sent one: what a CRC catches), the RX adds the analog layer to a zero base (mid-grey) and says
``base_ok=False``; if the side frame fails the RX has no variances: it shows the base alone if
that decoded (else grey) with ``side_ok=False``. (Where the sweep runs, the sent bits stand in
for the CRC, as in the envelope; its bits are not charged, as there.)

The split of symbols between the layers (base share, number of bands or prior, base codec) per
SNR comes from ``evaluation/codes/hybrid_split.json``, fitted on the validation split by
``bench/fit_hybrid_split.py`` (never on test images) at CBR 1/16, or from the ``hybrid_split*.json``
beside it fitted at the CBR nearest the frame's (``split_file``). The learned refinement (ROI-aware JSCC over
the residual, CAU split) is a later stage; ``analog_layer`` / ``analog_decode`` are what it
replaces or adds to.
"""
from __future__ import annotations

import binascii
import functools
import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError, MedJSCCError
from .bands import band_map, band_members

GREY = 128.0                 # the zero base: what the RX shows with no base layer
BAND_BITS = 6                # per band variance code; code 0 = "not worth sending" (variance 0)
BAND_STEP_DB = 1.5           # quantiser step of 10*log10(variance) (<= 0.75 dB off: negligible for LLSE)
BAND_FLOOR_DB = -9.0         # code 1; below: code 0 (residual std < 0.4 grey level)
N_BANDS_DEFAULT = 16
ROI_BASE_CODECS = ("j2k-roi",)   # base codecs (evaluation/source.py) that use the mask
SPLIT_FILE_NAME = "hybrid_split.json"   # fitted at CBR 1/16
SPLIT_GLOB = "hybrid_split*.json"        # and the per-CBR fits beside it (their fit.cbr)
FLAG_BITS = 1                # base present
SCALE_STEP_DB = 0.25         # the analog layer's power-normalising gain, one byte (128 = 0 dB)
# The side frame is short (<= 14 bytes): measured with the rate-matched family, such frames need
# ~4 dB more SNR than the 4096-symbol thresholds the envelope's rule is built on (heavily
# shortened LDPC codewords), so the hybrid picks its side MCS this much lower.
SIDE_EXTRA_DB = 4.0
PRIOR_BANDS = 16             # bands of a prior split (variances known at both ends, no side frame)
MIN_BASE_BYTES = 64          # a smaller base payload is no base (the smallest DRR J2K stream is ~30 B, ROI ~40 B)
# On the air (``base_crc``) the base payload starts with a CRC-16 (CCITT) of the rest: the RX has no
# sent bits to compare with, and a wrong stream must not reach the JPEG2000 decoder as a good one.
BASE_CRC_BYTES = 2


# ----------------------------------------------------------------------------- bands
def quantise_variances(var: np.ndarray) -> np.ndarray:
    var = np.asarray(var, float)
    db = 10.0 * np.log10(np.maximum(var, 1e-30))
    codes = np.round((db - BAND_FLOOR_DB) / BAND_STEP_DB).astype(np.int64) + 1
    codes = np.clip(codes, 1, 2 ** BAND_BITS - 1)
    codes[db < BAND_FLOOR_DB - BAND_STEP_DB / 2] = 0
    return codes


def dequantise_variances(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, np.int64)
    lam = 10.0 ** ((BAND_FLOOR_DB + (codes - 1) * BAND_STEP_DB) / 10.0)
    return np.where(codes > 0, lam, 0.0)


def selection(shape, n_bands: int, lam: np.ndarray, n_real: int):
    """Coefficients both ends send, in slot order: bands by decreasing variance (ties: lower band
    first), each band's coefficients by radius; bands of variance 0 never. -> (coef idx, band idx).
    ``lam`` may be the variances times per-band weights (``allocation_variances``)."""
    members = band_members(tuple(shape), n_bands)
    idx, bands, left = [], [], int(n_real)
    for b in sorted(range(n_bands), key=lambda b: (-lam[b], b)):
        if left <= 0 or lam[b] <= 0:
            break
        take = members[b][:left]
        idx.append(take)
        bands.append(np.full(take.size, b))
        left -= take.size
    if not idx:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(idx), np.concatenate(bands)


def power_allocation(lam: np.ndarray, counts: np.ndarray, total_power: float, s2: float) -> np.ndarray:
    """Closed-form power per real coefficient of each band minimising the LLSE error
    sum_b counts_b lam_b s2 / (p_b + s2) under sum_b counts_b p_b = total_power (noise s2 per real):
    p_b = max(0, sqrt(lam_b s2 / mu) - s2), mu from the active set (largest variances first)."""
    lam = np.asarray(lam, float)
    counts = np.asarray(counts, float)
    p = np.zeros_like(lam)
    live = np.flatnonzero((lam > 0) & (counts > 0))
    if live.size == 0 or total_power <= 0:
        return p
    live = live[np.argsort(-lam[live], kind="stable")]
    for k in range(live.size, 0, -1):   # drop the weakest band until every active one gets power > 0
        a = live[:k]
        t = (total_power + s2 * counts[a].sum()) / (counts[a] * np.sqrt(lam[a])).sum()  # t = sqrt(s2 / mu)
        pa = np.sqrt(lam[a]) * t - s2
        if pa.min() > 0:
            p[a] = pa
            return p
    return p


def analog_gains(lam, counts, n_analog: int, snr_db: float, weights=None) -> np.ndarray:
    """Per band amplitude gain g_b (x = g_b * coefficient) for ``n_analog`` unit-power complex
    symbols at the design SNR; ``weights``: per-band error weights (``allocation_variances``)."""
    s2 = 10.0 ** (-snr_db / 10.0) / 2.0
    p = power_allocation(allocation_variances(lam, weights), counts, float(n_analog), s2)
    return np.where(lam > 0, np.sqrt(p / np.maximum(lam, 1e-300)), 0.0)


def allocation_variances(lam, weights=None) -> np.ndarray:
    """What the selection and the power allocation rank and weigh: the band variances, times the
    per-band error weights where given (``detectability.band_weights``: the error in a band counts
    ``w_b`` times, so ``power_allocation``'s closed form holds with ``w_b lam_b``). The LLSE
    decoder still uses the plain variances."""
    lam = np.asarray(lam, float)
    return lam if weights is None else lam * np.asarray(weights, float)


def _dct2(x):
    from scipy.fft import dctn

    return dctn(np.asarray(x, float), norm="ortho")


def _idct2(c):
    from scipy.fft import idctn

    return idctn(c, norm="ortho")


def band_variances(residual: np.ndarray, n_bands: int) -> np.ndarray:
    """Mean energy of the residual's DCT coefficients per band."""
    c = _dct2(residual).ravel()
    labels, _ = band_map(tuple(residual.shape), n_bands)
    cnt = np.bincount(labels, minlength=n_bands)
    return np.bincount(labels, weights=c ** 2, minlength=n_bands) / np.maximum(cnt, 1)


def scale_code(c: float) -> int:
    """Byte of the normalising gain ``c``, rounded down (the gain sent never exceeds unit power)."""
    if not c > 0 or not math.isfinite(c):
        return 128
    return int(np.clip(math.floor(20.0 * math.log10(c) / SCALE_STEP_DB) + 128, 0, 255))


def scale_value(code: int) -> float:
    return 10.0 ** ((int(code) - 128) * SCALE_STEP_DB / 20.0)


def analog_layer(residual: np.ndarray, n_analog: int, snr_db: float, n_bands: int, codes=None, weights=None):
    """-> (complex symbols (n_analog,), band codes (n_bands,), scale byte). The residual in grey
    levels; ``codes``: band codes both ends already know (prior split) instead of the residual's
    own. The symbols are scaled by the gain of the scale byte (unit mean power to within one
    ``SCALE_STEP_DB`` below): the realised power differs from the model by the variance
    quantiser, the subset of a band that is sent, and (prior split) the image. ``weights``:
    per-band error weights both ends know (a task-weighted layout), None: plain MSE."""
    shape = residual.shape
    c = _dct2(residual).ravel()
    codes = quantise_variances(band_variances(residual, n_bands)) if codes is None else np.asarray(codes, np.int64)
    lam = dequantise_variances(codes)
    sel, band = selection(shape, n_bands, allocation_variances(lam, weights), 2 * n_analog)
    g = analog_gains(lam, np.bincount(band, minlength=n_bands), n_analog, snr_db, weights)
    x = np.zeros(2 * n_analog)
    x[:sel.size] = g[band] * c[sel]
    sym = x[0::2] + 1j * x[1::2]
    p = float(np.mean(np.abs(sym) ** 2)) if sym.size else 0.0
    code = scale_code(1.0 / math.sqrt(p)) if p > 0 else 128
    return sym * scale_value(code), codes, code


def analog_decode(y: np.ndarray, h, n0: float, codes: np.ndarray, shape, snr_db: float,
                  scale: float = 1.0, weights=None) -> np.ndarray:
    """LLSE estimate of the residual (grey levels) from the analog symbols ``y`` (gains ``h`` or
    None on AWGN, complex noise variance ``n0``), the band codes, the normalising gain and the
    per-band error weights the TX allocated with (None: plain MSE)."""
    y = np.asarray(y, np.complex128).reshape(-1)
    n_analog, n_bands = y.size, len(codes)
    lam = dequantise_variances(codes)
    sel, band = selection(shape, n_bands, allocation_variances(lam, weights), 2 * n_analog)
    g = analog_gains(lam, np.bincount(band, minlength=n_bands), n_analog, snr_db, weights) * float(scale)
    if h is None:
        amp = np.ones(n_analog)
        z = y
    else:   # derotate: z = |h| x + n with the noise's statistics unchanged
        h = np.asarray(h, np.complex128).reshape(-1)
        amp = np.abs(h)
        z = y * np.conj(h) / np.maximum(amp, 1e-30)
    zr = np.empty(2 * n_analog)
    zr[0::2], zr[1::2] = z.real, z.imag
    ar = np.repeat(amp, 2)[:sel.size]
    s2 = n0 / 2.0
    gb, lb = g[band], lam[band]
    est = ar * gb * lb / (ar ** 2 * gb ** 2 * lb + s2) * zr[:sel.size]
    c = np.zeros(int(np.prod(shape)))
    c[sel] = est
    return _idct2(c.reshape(shape))


# ----------------------------------------------------------------------------- split rule + layout
@dataclass(frozen=True)
class Split:
    """What the split rule says for one SNR: the base layer's share of the symbols left after the
    side frame, the number of variance bands, the base codec, and ``prior_codes``: None (the band
    variances travel in the side frame) or the band codes both ends know (fitted on validation
    images for this split: no side frame; where even a tiny side frame is costly and fragile)."""

    base_share: float
    n_bands: int = N_BANDS_DEFAULT
    codec: str = "j2k-roi"
    prior_codes: tuple | None = None
    bg_weight: float = 1.0     # the analog layer's weight on the residual outside the ROI (1: no mask)
    base_backoff_db: float = 0.0   # the base MCS is the envelope rule's pick at SNR - this (more robust)
    rx_mask: bool = False      # the ROI's grid code rides in the base payload; the RX undoes bg_weight
    # the analog layer's error weighted towards the bands where a nodule is detectable
    # (codec/detectability.py; 0: plain MSE). Not in the fitted split: the sweep's
    # hybrid-softcast-task sets it from detectability.weight_rule (issue #15)
    task_weight: float = 0.0
    # a two-layer base (codec j2k only): the first quality layer on this share of the base's
    # symbols at the MCS the rule picks robust_backoff_db lower, the rest at the base MCS. When the
    # TX over-estimates the SNR the finer layer is lost and the first still decodes (no cliff)
    robust_share: float = 0.0
    robust_backoff_db: float = 4.0

    def without_rx_mask(self) -> "Split":
        """The same split with the mask known at the TX only."""
        return replace(self, rx_mask=False)

    @property
    def uses_mask(self) -> bool:
        """The ROI mask shapes the frame: an analog weight, or a base codec that favours the ROI."""
        return self.bg_weight < 1.0 or self.codec in ROI_BASE_CODECS


def split_file(cbr: float | None = None):
    """The split file fitted at the CBR nearest ``cbr`` (on a log scale); None: ``hybrid_split.json``
    (1/16). The base's size and so its residual's band variances (the priors) and the best share
    depend on the CBR."""
    from ..evaluation import ldpc

    if cbr is None:
        return ldpc.CODES_DIR / SPLIT_FILE_NAME
    if not cbr > 0:
        raise MedJSCCError(f"no hybrid split for CBR {cbr!r}")
    return min(fitted_split_files(), key=lambda cp: (abs(math.log(cp[0] / cbr)), cp[0]))[1]


@functools.lru_cache(maxsize=1)
def fitted_split_files() -> tuple:
    """((fitted CBR, path), ...) of every shipped split file."""
    from ..evaluation import ldpc

    out = tuple((float(_load_split_json(str(p))["fit"]["cbr"]), p)
                for p in sorted(ldpc.CODES_DIR.glob(SPLIT_GLOB)))
    if not out:   # let the reader name the missing default file
        _load_split_json(str(split_file()))
    return out


def _load_split_json(path: str) -> dict:
    from ..evaluation.linkadapt import read_fitted_json

    data = read_fitted_json(str(path), "fit_hybrid_split.py")
    if not data.get("split"):
        raise MedJSCCError(f"{path} holds no split")
    return data


def split_from_json(v: dict) -> Split:
    codes = v.get("prior_codes")
    sp = Split(float(v["base_share"]), int(v["n_bands"]), str(v["codec"]),
               None if codes is None else tuple(int(c) for c in codes), float(v.get("bg_weight", 1.0)),
               float(v.get("base_backoff_db", 0.0)), bool(v.get("rx_mask", False)), float(v.get("task_weight", 0.0)),
               float(v.get("robust_share", 0.0)), float(v.get("robust_backoff_db", 4.0)))
    if sp.prior_codes is not None and len(sp.prior_codes) != sp.n_bands:
        raise MedJSCCError(f"{SPLIT_FILE_NAME}: {len(sp.prior_codes)} prior codes for {sp.n_bands} bands")
    return sp


def split_to_json(sp: Split) -> dict:
    out = {"base_share": sp.base_share, "n_bands": sp.n_bands, "codec": sp.codec, "bg_weight": sp.bg_weight,
           "base_backoff_db": sp.base_backoff_db}
    if sp.rx_mask:
        out["rx_mask"] = True
    if sp.task_weight > 0:
        out["task_weight"] = sp.task_weight
    if sp.robust_share > 0:
        out["robust_share"] = sp.robust_share
        out["robust_backoff_db"] = sp.robust_backoff_db
    if sp.prior_codes is not None:
        out["prior_codes"] = list(sp.prior_codes)
    return out


def _load_split_table(path: str, key: str = "split") -> tuple:
    data = _load_split_json(path)
    if not data.get(key):
        raise MedJSCCError(f"{path} holds no {key}; refit it with bench/fit_hybrid_split.py")
    return tuple(sorted((float(k), split_from_json(v)) for k, v in data[key].items()))


def analog_prior_codes(path=None) -> tuple:
    """Band codes of ``image - GREY`` (no base, no mask) fitted on validation images: the prior of
    a prior split whose base is not sent at this SNR / budget."""
    data = _load_split_json(str(path or split_file()))
    codes = data.get("analog_prior")
    if codes is None or len(codes) != PRIOR_BANDS:
        raise MedJSCCError(f"{SPLIT_FILE_NAME} has no analog_prior of {PRIOR_BANDS} codes; refit it with "
                           f"bench/fit_hybrid_split.py")
    return tuple(int(c) for c in codes)


def split_rule(snr_db: float, path=None, cbr: float | None = None, rx_mask: bool = True,
               nomask: bool = False) -> Split:
    """The fitted split at the highest fitted SNR <= ``snr_db`` (the lowest one below the grid),
    from ``path`` or else the file fitted at the CBR nearest ``cbr`` (None: 1/16). ``rx_mask``
    False: the best split whose mask only the TX knows (``split_tx_mask``: the rule before the
    receiver could learn the mask, the frames medjscc-hda's refiner was trained on, which
    ``codec/hda_data.py`` makes; a file fitted before ``rx_mask`` existed has only ``split``,
    which is that). ``nomask``: the best split that uses no mask at all (``split_nomask``:
    JPEG2000 without ROI, no weighting), which ``hybrid-softcast-nomask`` sends to measure what
    the mask is worth."""
    path = str(path or split_file(cbr))
    key = "split_nomask" if nomask else "split"
    if not rx_mask and not nomask and "split_tx_mask" in _load_split_json(path):
        key = "split_tx_mask"
    rows = _load_split_table(path, key)
    best = rows[0][1]
    for s, sp in rows:
        if s <= snr_db + 1e-9:
            best = sp
    return best if rx_mask else best.without_rx_mask()


@dataclass(frozen=True)
class Layout:
    """Symbols of each section, derived at both ends from (n_total, SNR, split, flag)."""

    n_total: int
    n_side: int
    n_base: int
    n_analog: int
    side_mcs: object          # linkadapt.LaMcs
    mcs: object               # linkadapt.LaMcs of the base, or None (pure analog)
    codec: str
    n_bands: int
    base_share: float
    prior_codes: tuple | None = None   # band codes known at both ends (no side frame)
    bg_weight: float = 1.0
    rx_mask: bool = False     # the ROI grid code leads the base's stream; the RX divides by the weights
    task_weight: float = 0.0  # detectability weighting of the analog layer's error (Split.task_weight)
    # two-layer base (Split.robust_share): the first layer's frame, ahead of the base frame
    n_robust: int = 0
    robust_mcs: object = None

    @property
    def layered(self) -> bool:
        return self.has_base and self.robust_mcs is not None and self.n_robust > 0

    def band_weights(self, shape) -> np.ndarray | None:
        """Per-band error weights of the analog layer (None: plain MSE)."""
        from .detectability import band_weights

        return band_weights(shape, self.n_bands, self.task_weight)

    @property
    def has_base(self) -> bool:
        return self.mcs is not None and self.n_base > 0

    @property
    def prior(self) -> bool:
        return self.prior_codes is not None

    @property
    def base_stream_bytes(self) -> int:
        """Bytes the base's JPEG2000 stream may take: the base frame's payload, less the scale byte
        that leads it in a prior split (0 without base)."""
        from ..evaluation import linkadapt

        if not self.has_base:
            return 0
        return linkadapt.plan(self.mcs, self.n_base).payload_bytes - (1 if self.prior else 0)

    def without_base(self) -> "Layout":
        """The same frame when the TX found no base that fits: the analog layer takes its symbols
        (and the mask has no payload to ride in: the TX alone knows it)."""
        return replace(self, n_analog=self.n_analog + self.n_base + self.n_robust, n_base=0, mcs=None,
                       rx_mask=False, n_robust=0, robust_mcs=None)

    @property
    def label(self) -> str:
        """Row label ``<base mcs>+<codec>+b<share>`` (``none+analog+b0.00``: pure analog)."""
        if not self.has_base:
            return f"none+analog{'-prior' if self.prior else ''}{self._bg}+b0.00"
        robust = f"{self.robust_mcs.name}/" if self.layered else ""
        return (f"{robust}{self.mcs.name}+{self.codec}{'-prior' if self.prior else ''}{self._bg}"
                f"+b{(self.n_base + self.n_robust) / self.n_total:.2f}")

    @property
    def _bg(self) -> str:
        """``-bg<w>``; ``-bg<w>m`` when the RX knows the mask and undoes the weight; then ``-t<w>``
        for a task-weighted analog layer."""
        bg = f"-bg{self.bg_weight:g}{'m' if self.rx_mask else ''}" if self.bg_weight < 1.0 else ""
        return bg + (f"-t{self.task_weight:g}" if self.task_weight > 0 else "")


def side_bytes(n_bands: int) -> int:
    return -(-(FLAG_BITS + BAND_BITS * n_bands + 8) // 8)


def layout(n_total: int, snr_db: float, split: Split | None = None, rule=None) -> Layout:
    from ..evaluation import envelope, linkadapt

    rule = envelope.load_rule() if rule is None else rule
    split = split_rule(snr_db) if split is None else split
    side_mcs, n_side = None, 0
    if split.prior_codes is None:
        side_mcs = envelope.side_info_mcs(snr_db - SIDE_EXTRA_DB, rule)
        need = side_bytes(split.n_bands)
        n_side = max(1, int(8 * need / side_mcs.efficiency))
        while linkadapt.plan(side_mcs, n_side) is None or linkadapt.plan(side_mcs, n_side).payload_bytes < need:
            n_side += 1
    if n_side >= n_total:
        raise MedJSCCError(f"hybrid: {n_total} symbols cannot hold the {n_side}-symbol side frame at "
                           f"{snr_db:g} dB; use a larger --cbr")
    rest = n_total - n_side
    # below the lowest MCS the rule trusts (its threshold + margin) there is no base: pure analog
    th = dict(rule.thresholds)
    lowest = min(th.values()) + rule.margin_db if th else math.inf
    mcs = rule.pick(snr_db - split.base_backoff_db) if snr_db - split.base_backoff_db + 1e-9 >= lowest else None
    n_base = int(round(split.base_share * rest)) if mcs is not None else 0
    if mcs is not None and (n_base <= 0 or linkadapt.plan(mcs, n_base) is None
                            or linkadapt.plan(mcs, n_base).payload_bytes < MIN_BASE_BYTES):
        mcs, n_base = None, 0
    codes, bg = split.prior_codes, float(split.bg_weight)
    if codes is not None and split.base_share > 0 and mcs is None:
        # a prior fitted for the residual of a base that is not sent: use the pure-analog prior
        codes, bg = analog_prior_codes(), 1.0
    # the mask rides in the base payload: without a base the RX cannot know it
    rx_mask = bool(split.rx_mask) and bg < 1.0 and mcs is not None
    n_robust, robust_mcs = 0, None
    if split.robust_share > 0 and mcs is not None:
        n_robust, robust_mcs = _robust_section(split, snr_db, rule, lowest, mcs, n_base, rx_mask)
    return Layout(n_total, n_side, n_base - n_robust, rest - n_base, side_mcs, mcs, split.codec, split.n_bands,
                  float(split.base_share), codes, bg, rx_mask, float(split.task_weight), n_robust, robust_mcs)


LAYERED_CODECS = ("j2k",)   # base codecs with two quality layers (source.J2kCodec.encode_layers)
LAYER1_LEN_BYTES = 2        # the first layer's length, ahead of it in its frame (the RX joins the layers)
# the hybrid_layered model's two-layer base: half the base's symbols (more at low SNR: see
# _robust_section) carry the first layer at the MCS for 4 dB less (README "A two-layer base":
# 0.0-2.8 dB less ROI-PSNR at the right SNR; told 3 dB too high, an image from -5 dB up)
LAYERED_ROBUST_SHARE = 0.5
LAYERED_ROBUST_BACKOFF_DB = 4.0


def layered(split: Split) -> Split:
    """``split`` with its base in two layers (plain JPEG2000: the one codec with layers here);
    a split without base is returned as it is."""
    if split.base_share <= 0:
        return split
    return replace(split, codec="j2k", robust_share=LAYERED_ROBUST_SHARE, robust_backoff_db=LAYERED_ROBUST_BACKOFF_DB)


# The first layer's frame must hold a useful first layer: its CRC, scale byte and length, and a
# J2K stream of about 40 bytes (a DRR's smallest is ~30 B); with the ROI grid code, MIN_BASE_BYTES.
FIRST_LAYER_MIN_BYTES = 48
# Where half of the base's symbols cannot carry that at the robust MCS (low SNR: slow MCSs), the
# first layer takes more of them, up to this share; else the base goes in one layer.
ROBUST_MAX_SHARE = 0.9
# Below the lowest MCS the rule trusts, the first layer takes the lowest MCS if that is still at
# least this much more robust than the base's (else two layers protect too little to pay).
ROBUST_MIN_GAIN_DB = 2.0


def _robust_section(split: Split, snr_db: float, rule, lowest: float, mcs, n_base: int, rx_mask: bool = False):
    """-> (symbols, MCS) of a two-layer base's first-layer frame, or (0, None) where the split
    cannot have one: a codec without layers, no MCS at least ``ROBUST_MIN_GAIN_DB`` below the
    base's, or no share up to ``ROBUST_MAX_SHARE`` that holds a first layer."""
    from ..evaluation import linkadapt

    if split.codec not in LAYERED_CODECS:
        raise MedJSCCError(f"hybrid: a two-layer base needs codec {' or '.join(LAYERED_CODECS)}, not {split.codec}")
    if not 0.0 < split.robust_share < 1.0:
        raise MedJSCCError(f"hybrid: robust_share must lie in (0, 1), got {split.robust_share}")
    snr = snr_db - split.base_backoff_db - split.robust_backoff_db
    if snr + 1e-9 >= lowest:
        rmcs = rule.pick(snr)
    else:   # the told SNR is near the bottom of the table: the most robust MCS, if robust enough
        th = dict(rule.thresholds)
        name = min(th, key=th.get)
        rmcs = linkadapt.parse(name) if th[mcs.name] - th[name] >= ROBUST_MIN_GAIN_DB else None
    if rmcs is None or rmcs.efficiency >= mcs.efficiency:
        return 0, None
    need = MIN_BASE_BYTES if rx_mask else FIRST_LAYER_MIN_BYTES
    share = float(split.robust_share)
    while True:
        n_robust = int(round(share * n_base))
        p1, p2 = linkadapt.plan(rmcs, n_robust), linkadapt.plan(mcs, n_base - n_robust)
        if p1 is not None and p2 is not None and p1.payload_bytes >= need and p2.payload_bytes >= 8:
            return n_robust, rmcs
        if share >= ROBUST_MAX_SHARE - 1e-9 or (p1 is not None and p2 is not None and p2.payload_bytes < 8):
            return 0, None
        share = min(ROBUST_MAX_SHARE, share + 0.05)


# ----------------------------------------------------------------------------- encode / decode
class BaseDoesNotFit(MedJSCCError):
    """A prior split's base payload cannot hold this image's smallest stream (no flag can say so)."""


_SOURCES: dict = {}
_BASE_MEMO: dict = {}   # (image hash, mask hash, codec, bytes) -> stream: the val fit re-encodes a lot


def _source(name):
    from ..evaluation import source

    if name not in _SOURCES:
        _SOURCES[name] = source.get_source_codec(name)
    return _SOURCES[name]


def _base_stream(image, mask, codec: str, budget: int):
    key = (hashlib.sha1(image.tobytes()).hexdigest(),
           None if mask is None else hashlib.sha1(np.packbits(mask).tobytes()).hexdigest(), codec, int(budget))
    if key not in _BASE_MEMO:
        if len(_BASE_MEMO) > 2048:
            _BASE_MEMO.clear()
        _BASE_MEMO[key] = _source(codec).encode(image, budget, mask)
    return _BASE_MEMO[key]


ROI_FEATHER_PX = 2.0   # Gaussian width of the mask's edge (as RoiJ2kCodec): no hard seam in the residual
# The mask the RX learns (``rx_mask``): the ROI on a grid of one cell per MASK_CELL_PX pixels, a
# cell being ROI when half of it is (``roi.sideinfo``'s code, 12-16 bytes for two lungs at 256 px;
# in a one-off check on validation DRRs at 10 dB, 8-px cells cost more bytes for no gain and "any"
# cells widened the ROI at the background's expense), feathered wider than a pixel mask because
# its edges are blocky.
MASK_CELL_PX = 16
MASK_GRID_RULE = "majority"
MASK_FEATHER_PX = 4.0
MASK_LEN_BYTES = 1      # the grid code's length, ahead of it in the base payload


def _base_layers(image, mask, codec: str, budget1: int, budget2: int):
    """(first layer, second layer) of a two-layer base within the two budgets, or None."""
    key = (hashlib.sha1(image.tobytes()).hexdigest(), codec, int(budget1), int(budget2), "layers")
    if key not in _BASE_MEMO:
        if len(_BASE_MEMO) > 2048:
            _BASE_MEMO.clear()
        _BASE_MEMO[key] = _source(codec).encode_layers(image, budget1, budget2, mask)
    return _BASE_MEMO[key]


def roi_weights(shape, bg_weight: float, mask=None, grid=None) -> np.ndarray | None:
    """The analog layer's per-pixel weight: 1 in the ROI, ``bg_weight`` outside, feathered; from a
    pixel ``mask`` (TX only) or the RX-known ``grid``. None: no weighting."""
    if bg_weight >= 1.0 or (mask is None and grid is None):
        return None
    from scipy.ndimage import gaussian_filter

    if grid is not None:
        from ..roi.sideinfo import grid_to_mask

        soft = gaussian_filter(grid_to_mask(grid, shape).astype(float), MASK_FEATHER_PX)
    else:
        soft = gaussian_filter(np.asarray(mask, float), ROI_FEATHER_PX)
    return bg_weight + (1.0 - bg_weight) * soft


def mask_grid(mask, shape) -> np.ndarray:
    from ..roi.sideinfo import default_grid, mask_to_grid

    return mask_to_grid(mask, default_grid(shape, MASK_CELL_PX), MASK_GRID_RULE)


def mask_block(mask, shape) -> tuple[bytes, np.ndarray | None]:
    """-> (the bytes that lead the base's stream for an ``rx_mask`` layout: length + grid code, the
    grid). No mask: the all-ROI grid (weights 1 everywhere, the receiver undoes nothing)."""
    from ..roi.sideinfo import default_grid, encode_mask

    grid = (np.ones(default_grid(shape, MASK_CELL_PX), bool) if mask is None
            else mask_grid(np.asarray(mask, bool), shape))
    code = encode_mask(grid)
    if len(code) >= 1 << (8 * MASK_LEN_BYTES):
        raise MedJSCCError(f"hybrid: the ROI grid code takes {len(code)} bytes; its length field holds less")
    return len(code).to_bytes(MASK_LEN_BYTES, "big") + code, grid


def split_mask_block(payload: bytes, shape):
    """-> (grid, the rest of the payload) from a base payload led by ``mask_block``; raises
    ``MedJSCCError`` on a damaged block (the base CRC makes that rare)."""
    from ..roi.sideinfo import decode_mask, default_grid

    n = int.from_bytes(payload[:MASK_LEN_BYTES], "big")
    code = payload[MASK_LEN_BYTES:MASK_LEN_BYTES + n]
    if len(code) != n:
        raise MedJSCCError("hybrid: the base payload is shorter than its ROI grid code")
    return decode_mask(code, default_grid(shape, MASK_CELL_PX)), payload[MASK_LEN_BYTES + n:]


def _weighted_residual(image, base, mask, bg_weight: float, grid=None) -> np.ndarray:
    """What the analog layer carries: ``image - base``, times ``roi_weights`` (``bg_weight``
    outside the ROI, feathered). Without ``grid`` only the TX knows the mask: the RX adds what it
    receives as it is, so outside the ROI it gets ``bg_weight`` of the residual and the ROI gets the
    power saved. With the ``grid`` the RX learns (``rx_mask``), it divides by the same weights:
    the background comes back unbiased, with its noise raised instead."""
    r = image.astype(float) - base
    w = roi_weights(image.shape, bg_weight, mask, grid)
    return r if w is None else r * w


def base_residual_variances(image, mask, snr_db: float, n_total: int, split: Split, rule=None) -> np.ndarray:
    """Band variances of what the analog layer would carry for ``image`` under ``split`` (the base
    decoded): what a prior split's codes are fitted from (bench/fit_hybrid_split.py)."""
    from ..evaluation import linkadapt

    image = np.ascontiguousarray(image, dtype=np.uint8)
    lay = layout(int(n_total), float(snr_db), split, rule)
    base = np.full(image.shape, GREY)
    block, grid = mask_block(mask, image.shape) if lay.rx_mask else (b"", None)
    if lay.has_base:
        data = _base_stream(image, None if mask is None else np.asarray(mask, bool), lay.codec,
                            linkadapt.plan(lay.mcs, lay.n_base).payload_bytes - len(block))
        if data is not None:
            base = _source(lay.codec).decode(data, image.shape).astype(float)
    return band_variances(_weighted_residual(image, base, mask, lay.bg_weight, grid), lay.n_bands)


def _bits(data: bytes, n_info: int) -> np.ndarray:
    from ..evaluation.envelope import padding_bits

    b = np.unpackbits(np.frombuffer(bytes(data), np.uint8))
    return np.concatenate([b, padding_bits(n_info - b.size)]).astype(np.uint8)


def _base_bits(body: bytes, n_info: int, with_crc: bool) -> np.ndarray:
    """The base frame's information bits: ``body`` padded to the frame; with ``with_crc`` a CRC-16
    of the padded body leads (padding is deterministic, so the RX checks the block as received)."""
    if not with_crc:
        return _bits(body, n_info)
    rest = _bits(body, n_info - 8 * BASE_CRC_BYTES)
    crc = binascii.crc_hqx(np.packbits(rest).tobytes(), 0xFFFF).to_bytes(BASE_CRC_BYTES, "big")
    return np.concatenate([np.unpackbits(np.frombuffer(crc, np.uint8)), rest]).astype(np.uint8)


def _check_base_crc(block: bytes):
    """-> the body after a good CRC-16, or None."""
    head, body = block[:BASE_CRC_BYTES], block[BASE_CRC_BYTES:]
    return body if binascii.crc_hqx(body, 0xFFFF).to_bytes(BASE_CRC_BYTES, "big") == head else None


def _pack_side(has_base: bool, codes: np.ndarray, scale: int) -> bytes:
    """flag | band codes (BAND_BITS each) | scale byte, zero-padded to whole bytes."""
    bits = [1 if has_base else 0]
    for c in codes:
        bits += [(int(c) >> (BAND_BITS - 1 - k)) & 1 for k in range(BAND_BITS)]
    bits += [(int(scale) >> (7 - k)) & 1 for k in range(8)]
    return np.packbits(np.array(bits, np.uint8)).tobytes()


def _unpack_side(data: bytes, n_bands: int):
    bits = np.unpackbits(np.frombuffer(bytes(data), np.uint8)).astype(np.int64)
    end = FLAG_BITS + BAND_BITS * n_bands
    codes = bits[FLAG_BITS:end].reshape(n_bands, BAND_BITS) @ (1 << np.arange(BAND_BITS - 1, -1, -1))
    return bool(bits[0]), codes, int(bits[end:end + 8] @ (1 << np.arange(7, -1, -1)))


@dataclass
class HybridTx:
    symbols: np.ndarray        # complex128 (n_total,): side | base | analog
    layout: Layout
    side_bits: np.ndarray      # the side frame's information bits (what a CRC at the RX checks against)
    base_bits: np.ndarray | None
    base_bytes: int            # base frame payload sent (J2K stream, + the scale byte of a prior split)
    codes: np.ndarray
    scale: int                 # scale byte
    robust_bits: np.ndarray | None = None   # a two-layer base's first-layer frame bits


def encode(image: np.ndarray, mask, snr_db: float, n_total: int, split: Split | None = None, rule=None,
           base_crc: bool = False) -> HybridTx:
    """The frame of ``n_total`` symbols for ``image`` at the SNR the TX knows. ``base_crc``: the
    base payload carries a CRC-16 (on the air; ``BASE_CRC_BYTES`` fewer for the stream). An
    ``rx_mask`` layout's base payload is ``[scale byte (prior)] [mask_block] [stream]``. A
    two-layer base (``Layout.layered``) sends ``[scale byte (prior)] [mask_block] [length]
    [first layer]`` in its robust frame and the second layer alone in the base frame."""
    from ..evaluation import linkadapt

    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 2:
        raise InputError(f"hybrid: a greyscale image is expected, got shape {image.shape}")
    mask = None if mask is None else np.asarray(mask, bool)
    split = split_rule(float(snr_db), cbr=int(n_total) / image.size) if split is None else split
    lay = layout(int(n_total), float(snr_db), split, rule)
    base = np.full(image.shape, GREY)
    data, base_bits, base_sym = None, None, np.zeros(0, np.complex128)
    # a prior split has no side frame: its scale byte leads the base payload
    lead = 1 if lay.prior else 0
    crc_len = BASE_CRC_BYTES if base_crc else 0
    block, grid = mask_block(mask, image.shape) if lay.rx_mask else (b"", None)
    layers, robust_bits, robust_sym = None, None, np.zeros(0, np.complex128)
    if lay.layered:
        p1, p = linkadapt.plan(lay.robust_mcs, lay.n_robust), linkadapt.plan(lay.mcs, lay.n_base)
        budget = p1.payload_bytes - crc_len - lead - len(block) - LAYER1_LEN_BYTES
        layers = _base_layers(image, mask, lay.codec, budget, p.payload_bytes - crc_len)
        data = None if layers is None else layers[0] + layers[1]
        if data is None and lay.prior:
            raise BaseDoesNotFit(f"hybrid: no {lay.codec} stream of this image fits {budget} bytes")
        if data is None:
            lay, block, grid = lay.without_base(), b"", None
        else:
            base = _source(lay.codec).decode_layers(layers[0], layers[1], image.shape).astype(float)
    elif lay.has_base:
        p = linkadapt.plan(lay.mcs, lay.n_base)
        budget = lay.base_stream_bytes - crc_len - len(block)
        data = _base_stream(image, mask, lay.codec, budget)
        if data is None and lay.prior:   # MIN_BASE_BYTES keeps this from DRRs: no flag to signal it
            raise BaseDoesNotFit(f"hybrid: no {lay.codec} stream of this image fits {budget} bytes")
        if data is None:   # not even the smallest stream fits: the flag says so, analog takes the symbols
            lay, block, grid = lay.without_base(), b"", None
        else:
            base = _source(lay.codec).decode(data, image.shape).astype(float)
    ana, codes, scale = analog_layer(_weighted_residual(image, base, mask, lay.bg_weight, grid), lay.n_analog,
                                     snr_db, lay.n_bands, codes=lay.prior_codes, weights=lay.band_weights(image.shape))
    if lay.layered:
        first, second = layers
        head = (bytes([scale]) if lead else b"") + block + len(first).to_bytes(LAYER1_LEN_BYTES, "big")
        robust_bits = _base_bits(head + first, p1.info_bits, bool(base_crc))
        robust_sym = p1.encode(robust_bits[None])[0]
        base_bits = _base_bits(second, p.info_bits, bool(base_crc))
        base_sym = p.encode(base_bits[None])[0]
    elif lay.has_base:
        base_bits = _base_bits((bytes([scale]) if lead else b"") + block + data, p.info_bits, bool(base_crc))
        base_sym = p.encode(base_bits[None])[0]
    if lay.prior:   # (pure analog prior: no byte carries the scale; the RX takes 1, within a few dB)
        side_bits, side_sym = np.zeros(0, np.uint8), np.zeros(0, np.complex128)
    else:
        sp = linkadapt.plan(lay.side_mcs, lay.n_side)
        side_bits = _bits(_pack_side(lay.has_base, codes, scale), sp.info_bits)
        side_sym = sp.encode(side_bits[None])[0]
    sym = np.concatenate([side_sym, robust_sym, base_sym, ana]).astype(np.complex128)
    if sym.size != lay.n_total:
        raise MedJSCCError(f"hybrid: frame of {sym.size} symbols, layout says {lay.n_total}")
    sent = 0 if data is None else len(data) + lead + len(block) + crc_len
    if lay.layered and data is not None:
        sent += LAYER1_LEN_BYTES + crc_len
    return HybridTx(sym, lay, side_bits, base_bits, sent, codes, scale, robust_bits)


def _digital_rx(plan, y, h, n0, sent_bits, max_iter=40):
    from ..evaluation import qam

    llr = qam.demodulate_llr(y, plan.mcs.modulation, n0, h)
    bits, ok = plan.decode(llr[None], None if sent_bits is None else sent_bits[None], max_iter=max_iter)
    return bits[0], bool(ok[0])


def decode(y: np.ndarray, h, n0: float, shape, snr_db: float, n_total: int, split: Split | None = None,
           rule=None, crc_side=None, crc_base=None, refiner=None, base_crc: bool = False, crc_robust=None):
    """Receive one frame: ``y`` (n_total,) received symbols, ``h`` fading gains or None, ``n0`` the
    complex noise variance, ``snr_db`` the SNR the TX designed for (fed back). ``crc_*``: the sent
    information bits, standing in for the CRC that flags a wrongly decoded frame; ``base_crc``: the
    base payload's own CRC-16 is checked instead (on the air). ``refiner``
    (``codec/hda.py``, medjscc-hda): the learned refinement of a frame that decoded (side frame
    and base OK); a failed frame is returned as received.

    A two-layer base (``crc_robust``: its first-layer frame's sent bits) shows both layers, or the
    first alone when the base frame failed (``base_ok`` True: a base is shown; ``base_layers``
    says how many of its 2 layers; the analog layer is added as it came).

    -> (uint8 image, info) with info = dict(side_ok, base_ok (None without base), has_base, label,
    refined, base_layers (layered frames only))."""
    from ..evaluation import linkadapt

    shape = tuple(int(s) for s in shape)
    y = np.asarray(y, np.complex128).reshape(-1)
    if y.size != n_total:
        raise InputError(f"hybrid: received {y.size} symbols, the frame has {n_total}")
    hh = None if h is None else np.asarray(h, np.complex128).reshape(-1)
    # both ends know the CBR, so both take the split fitted nearest it
    split = split_rule(float(snr_db), cbr=int(n_total) / (shape[0] * shape[1])) if split is None else split
    lay = layout(int(n_total), float(snr_db), split, rule)
    cut = lambda a, lo, hi: None if a is None else a[lo:hi]   # noqa: E731
    s0, s1 = 0, lay.n_side
    if lay.prior:
        side, side_ok, codes = None, True, np.asarray(lay.prior_codes, np.int64)
    else:
        sp = linkadapt.plan(lay.side_mcs, lay.n_side)
        side, side_ok = _digital_rx(sp, y[s0:s1], cut(hh, s0, s1), n0, crc_side)
        codes = None
    info = dict(side_ok=side_ok, base_ok=None, has_base=lay.has_base, label=lay.label)
    scale = 128   # unknown (pure analog prior, or its base frame lost): unit gain assumed
    if side_ok and side is not None:
        has_base, codes, scale = _unpack_side(np.packbits(side).tobytes(), lay.n_bands)
        if not has_base:
            lay = lay.without_base()
        info.update(has_base=has_base, label=lay.label)
    base, grid = np.full(shape, GREY), None
    if lay.layered:
        base, grid, ok, (n_layers, robust_scale) = _receive_layers(lay, y, hh, n0, shape, crc_robust, crc_base,
                                                                   base_crc)
        if ok and lay.prior:
            scale = robust_scale
        info.update(base_ok=ok, base_layers=n_layers)
    elif lay.has_base:
        b0, b1 = s1, s1 + lay.n_base
        bits, ok = _digital_rx(linkadapt.plan(lay.mcs, lay.n_base), y[b0:b1], cut(hh, b0, b1), n0, crc_base)
        payload = np.packbits(bits).tobytes()
        if ok and base_crc:
            payload = _check_base_crc(payload)
            ok = payload is not None
        if ok:
            if lay.prior:
                scale, payload = payload[0], payload[1:]
            try:
                if lay.rx_mask:
                    grid, payload = split_mask_block(payload, shape)
                base = _source(lay.codec).decode(payload, shape).astype(float)
            except MedJSCCError:
                ok, grid = False, None
        info["base_ok"] = ok
    out = base
    if codes is not None:
        a0 = lay.n_side + lay.n_robust + lay.n_base
        ana = analog_decode(y[a0:], cut(hh, a0, None), n0, codes, shape, snr_db, scale_value(scale),
                            lay.band_weights(shape))
        w = roi_weights(shape, lay.bg_weight, grid=grid) if lay.rx_mask else None
        out = base + (ana if w is None else ana / w)   # (base lost: no mask, the background stays weighted)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    info["refined"] = False
    if refiner is not None and side_ok and info["base_ok"] is not False:
        snr_rx = 10.0 * math.log10(1.0 / max(float(n0), 1e-30))   # the RX's own noise estimate
        out = refiner(out, base, lay.has_base, snr_rx, float(snr_db), int(n_total) / (shape[0] * shape[1]))
        info["refined"] = True
    return out, info


def _receive_layers(lay: Layout, y, hh, n0, shape, crc_robust, crc_base, base_crc: bool):
    """A two-layer base's two frames -> (base image, grid, first layer decoded, (layers shown,
    scale byte or None))."""
    from ..evaluation import linkadapt

    def frame(lo, n, mcs, sent):
        bits, ok = _digital_rx(linkadapt.plan(mcs, n), y[lo:lo + n], None if hh is None else hh[lo:lo + n], n0, sent)
        payload = np.packbits(bits).tobytes()
        if ok and base_crc:
            payload = _check_base_crc(payload)
            ok = payload is not None
        return payload if ok else None

    r0 = lay.n_side
    first_frame = frame(r0, lay.n_robust, lay.robust_mcs, crc_robust)
    second = frame(r0 + lay.n_robust, lay.n_base, lay.mcs, crc_base)
    if first_frame is None:
        return np.full(shape, GREY), None, False, (0, None)
    scale, payload, grid = None, first_frame, None
    try:
        if lay.prior:
            scale, payload = payload[0], payload[1:]
        if lay.rx_mask:
            grid, payload = split_mask_block(payload, shape)
        n = int.from_bytes(payload[:LAYER1_LEN_BYTES], "big")
        first = payload[LAYER1_LEN_BYTES:LAYER1_LEN_BYTES + n]
        if len(first) != n:
            raise MedJSCCError("hybrid: the robust frame is shorter than its first layer")
        codec = _source(lay.codec)
        if second is not None:
            try:
                return codec.decode_layers(first, second, shape).astype(float), grid, True, (2, scale)
            except MedJSCCError:
                pass   # (a CRC-good second layer that does not decode: show the first)
        return codec.decode_layers(first, None, shape).astype(float), grid, True, (1, scale)
    except MedJSCCError:
        return np.full(shape, GREY), None, False, (0, None)


def sweep_point(image, mask, snr_db: float, n_total: int, link, seed_words, split: Split | None = None,
                refiner=None):
    """One image through the sweep's link (``link.digital``: the same channel draws as the
    envelope's frame of ``n_total`` symbols). -> (recon, decode_ok, base bytes, label, info);
    ``decode_ok``: the side frame and the base (if any) decoded; the label is the planned split's.
    The split (default) is the one fitted at the CBR nearest ``n_total`` per pixel."""
    split = split_rule(float(snr_db), cbr=int(n_total) / image.size) if split is None else split
    try:
        tx = encode(image, mask, snr_db, n_total, split)
    except BaseDoesNotFit:   # nothing sensible can be sent: the RX shows grey and the row says so
        lay = layout(n_total, snr_db, split)
        return (np.full(image.shape, int(GREY), np.uint8), False, 0, lay.label,
                dict(side_ok=False, base_ok=False, has_base=True, label=lay.label))
    y, h, n0, erased = link.digital(tx.symbols, snr_db, seed_words)
    if erased is not None:
        raise InputError("hybrid-softcast runs on the symbol link only (--link symbol)")
    recon, info = decode(y, h, n0, image.shape, snr_db, n_total, split, crc_side=tx.side_bits,
                         crc_base=tx.base_bits, refiner=refiner, crc_robust=tx.robust_bits)
    ok = bool(info["side_ok"]) and info["base_ok"] is not False
    # the row label is the split planned for this SNR (one per SNR, so rows aggregate together)
    return recon, ok, tx.base_bytes, layout(n_total, snr_db, split).label, info


def transmit_awgn(symbols: np.ndarray, snr_db: float, rng) -> tuple[np.ndarray, None, float]:
    """A seeded AWGN channel for tests and benches: (y, None, N0)."""
    from ..snr import complex_awgn, noise_variance

    return symbols + complex_awgn(symbols.shape, snr_db, rng), None, noise_variance(snr_db)
