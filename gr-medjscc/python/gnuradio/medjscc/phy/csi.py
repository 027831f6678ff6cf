"""Carrier ranking fed back from the receiver: strong codec symbols on strong subcarriers.

On a static frequency-selective channel (multipath between two fixed radios) some subcarriers sit
in a fade for the whole session. The fixed interleaver spreads every codec channel over all
subcarriers, so the strongest components lose as much as the weakest. A transmitter told which
subcarriers are strong can deal the codec's stream (strong components first) to the carriers from
the strongest to the weakest instead (``framing.interleaver(carrier_rank=...)``): with perfect CSI
this takes ``medjscc_radio``'s 10 dB multipath loss from 2.2 to ~0 dB (``bench/csi_oracle.py``).

The receiver measures each data carrier's post-equaliser SNR per frame (``carrier_snr_db`` in the
OFDM RX PDU metadata). :class:`CarrierRanker` keeps the shape of that profile (dB, mean removed)
and issues a ranking only when the channel is worth it and will still be there when the
transmitter uses it:

* **static**: ``min_frames`` frames whose profile correlates >= ``min_corr`` with the running
  average (one outlier frame is ignored, two in a row restart it; fading at 100 Hz Doppler
  decorrelates between frames: no ranking);
* **selective**: the averaged profile's spread (standard deviation) is >= ``min_spread_db`` (a flat
  channel's profile is estimation noise: no ranking).

Each issued ranking gets a 4-bit tag (1..15, cycling); the transmitter echoes the tag in every
header (``FrameHeader.csi_tag``) and the receiver looks the ranking up in its table of issued tags.
A new ranking is issued only when the old one misplaces the carriers by more than ``reissue_db``
on average, and never sooner than ``min_reissue_frames`` frames after the last, so a tag is reused
only after 15 x that many frames: a transmitter's tag is never that stale. When the channel stops
being static or selective the ranker issues tag 0 (back to the fixed interleaver).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MedJSCCError
from .header import MAX_CSI_TAG


def check_carrier_rank(rank, n_data: int) -> np.ndarray:
    """``rank`` as an int64 permutation of the ``n_data`` data-carrier positions (strongest
    first); a clear error otherwise."""
    r = np.asarray(rank).reshape(-1)
    if r.size != int(n_data) or r.dtype.kind not in "iu" or not np.array_equal(np.sort(r), np.arange(int(n_data))):
        raise MedJSCCError(f"carrier_rank must be a permutation of the {int(n_data)} data-carrier positions "
                           f"0..{int(n_data) - 1}, got {r.size} values")
    return r.astype(np.int64)


def carrier_snr_db(noise_var_carriers, equalizer: str = "mmse") -> np.ndarray | None:
    """Per data carrier SNR (dB) after equalisation from the mean post-equaliser error variance
    (MMSE: 1/mse - 1, ZF: 1/mse); None if there is none."""
    nv = np.asarray(noise_var_carriers, np.float64).reshape(-1)
    if not nv.size or not np.all(np.isfinite(nv)):
        return None
    snr = 1.0 / np.maximum(nv, 1e-12) - (1.0 if equalizer == "mmse" else 0.0)
    return (10.0 * np.log10(np.maximum(snr, 1e-3))).astype(np.float32)


@dataclass
class CsiUpdate:
    """What the ranker says after a frame: the tag and ranking to feed back (tag 0: none)."""
    tag: int
    rank: np.ndarray | None
    issued: bool          # a new tag was issued by this frame
    static: bool
    spread_db: float


class CarrierRanker:
    """Per-frame carrier SNR profiles -> the carrier ranking to feed back (see the module doc)."""

    def __init__(self, alpha: float = 0.3, min_frames: int = 3, min_corr: float = 0.8,
                 min_spread_db: float = 2.0, reissue_db: float = 1.0, min_reissue_frames: int = 8,
                 first_tag: int = 1):
        if not (0.0 < float(alpha) <= 1.0):
            raise MedJSCCError(f"CarrierRanker alpha must be in (0, 1], got {alpha}")
        if int(min_frames) < 1 or int(min_reissue_frames) < 1:
            raise MedJSCCError("CarrierRanker min_frames and min_reissue_frames must be >= 1")
        if not (-1.0 < float(min_corr) < 1.0):
            raise MedJSCCError(f"CarrierRanker min_corr must be in (-1, 1), got {min_corr}")
        self.alpha, self.min_frames, self.min_corr = float(alpha), int(min_frames), float(min_corr)
        self.min_spread_db, self.reissue_db = float(min_spread_db), float(reissue_db)
        self.min_reissue_frames = int(min_reissue_frames)
        self.profile: np.ndarray | None = None     # running average, dB, mean removed
        self.consistent = 0                        # frames that matched the average since it restarted
        self.misses = 0                            # frames in a row that did not (one is an outlier)
        self.tag = 0
        self.rank: np.ndarray | None = None
        self.table: dict[int, np.ndarray] = {}     # every tag issued -> its ranking
        self._since_issue = 0
        if not (1 <= int(first_tag) <= MAX_CSI_TAG):
            raise MedJSCCError(f"CarrierRanker first_tag must be in [1, {MAX_CSI_TAG}], got {first_tag}")
        self.next_tag = int(first_tag)

    def update(self, snr_db) -> CsiUpdate:
        x = np.asarray(snr_db, np.float64).reshape(-1)
        if not x.size or not np.all(np.isfinite(x)):
            return self._state(False)
        d = x - x.mean()
        self._since_issue += 1
        if self.profile is None or self.profile.size != d.size:
            self.profile, self.consistent = d, 1
        else:
            c = _corr(d, self.profile)
            if c >= self.min_corr:
                self.profile = (1.0 - self.alpha) * self.profile + self.alpha * d
                self.consistent += 1
                self.misses = 0
            else:
                self.misses += 1
                if self.misses >= 2:     # the channel changed (or never stood still): start over
                    self.profile, self.consistent = d, 1
        static = self.consistent >= self.min_frames
        spread = float(np.std(self.profile))
        issued = False
        if static and spread >= self.min_spread_db:
            cand = np.argsort(-self.profile, kind="stable")
            stale = self.rank is None or float(np.mean(np.abs(self.profile[self.rank] - self.profile[cand]))) > self.reissue_db
            if stale and (self.rank is None or self._since_issue >= self.min_reissue_frames):
                self._issue(cand)
                issued = True
        elif self.tag and (not static or spread < 0.5 * self.min_spread_db):
            self.tag, self.rank = 0, None     # back to the fixed interleaver
            issued = True
        return self._state(issued, static, spread)

    def _issue(self, rank: np.ndarray):
        self.tag = self.next_tag
        self.next_tag = self.next_tag % MAX_CSI_TAG + 1
        self.rank = rank.astype(np.int64)
        self.table[self.tag] = self.rank
        self._since_issue = 0

    def _state(self, issued: bool, static: bool = False, spread: float = float("nan")) -> CsiUpdate:
        return CsiUpdate(self.tag, self.rank, issued, static, spread)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = float(np.std(a)), float(np.std(b))
    if sa <= 1e-9 or sb <= 1e-9:
        return 0.0
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))


def csi_from_message(info: dict, n_data: int) -> tuple[int, np.ndarray | None] | None:
    """``(csi_tag, carrier_rank or None)`` from a feedback dict (``snr_feedback``'s), None when it
    has no ``csi_tag``; a malformed ranking raises ``MedJSCCError``."""
    if not isinstance(info, dict) or "csi_tag" not in info:
        return None
    try:
        tag = int(info["csi_tag"])
    except (TypeError, ValueError):
        raise MedJSCCError(f"csi_tag must be an integer, got {info['csi_tag']!r}") from None
    if not (0 <= tag <= MAX_CSI_TAG):
        raise MedJSCCError(f"csi_tag must be in [0, {MAX_CSI_TAG}], got {tag}")
    if tag == 0:
        return 0, None
    return tag, check_carrier_rank(info.get("carrier_rank", ()), n_data)
