"""Link adaptation of the fair digital envelope (issue #13): a rate-matched MCS family over the
IEEE 802.11n n=1944 LDPC codes, its measured thresholds, and the SNR -> MCS rule.

Rate matching, in the spirit of LTE's circular buffer: a frame of ``n_sym`` symbols carries
``B = n_sym * bits_per_symbol`` coded bits and ``K = floor(B * rate / 8) * 8`` information bits.
K is split over ``n_cw = ceil(K / k)`` codewords of the mother code (``k_i ~ K / n_cw`` each; the
other information positions are shortened: known zeros, not sent). A codeword's circular buffer
is its k_i information bits followed by its parity bits in a fixed pseudo-random order; codeword
i sends ``E_i ~ B / n_cw`` bits read cyclically from it: fewer than the buffer punctures the last
parity bits of that order, more repeats the buffer from the start (the receiver adds the LLRs of
repeated bits: soft combining). A frame-wide interleaver spreads repetitions over symbols and
label bits. So every symbol of the budget carries coded bits, at the MCS's rate exactly, whatever
the budget (no codeword-granularity waste), and rates far below 1/2 reach -5 dB.

The mother code is chosen per frame among the eight 802.11n codes (n = 1944 or 648, rates 1/2 to
5/6): the one whose rate after shortening, ``k_i / (k_i + n - k)``, is nearest the MCS rate (n=648
only when clearly nearer), so little is punctured or repeated. Much puncturing costs dearly: a
short frame (a JSCC side-info frame of ~200 bits) from a shortened n=1944 code punctured two
thirds of its parity and failed 2.5 dB above the long frame's threshold; for the 4096-symbol
frames the choice is the n=1944 code of the nearest rate.

Thresholds (``codes/mcs_thresholds.json``, made by ``bench/mcs_thresholds.py``): the AWGN SNR at
which 10% of frames of 4096 symbols fail (a frame fails if any codeword fails). The rule
(``codes/mcs_rule.json``, margin fitted by ``bench/fit_mcs_margin.py`` on the validation split):
the highest-rate MCS whose threshold + margin <= the SNR.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, MedJSCCError
from . import ldpc, qam

MOTHER_CODES = tuple(f"wifi_n{n}_r{r}" for n in (1944, 648) for r in ("12", "23", "34", "56"))
SHORT_CODE_PENALTY = 0.1   # |log rate ratio| a 648-bit code must win by (longer codes decode better)
THRESHOLDS_FILE = ldpc.CODES_DIR / "mcs_thresholds.json"
RULE_FILE = ldpc.CODES_DIR / "mcs_rule.json"
SHORTENED_LLR = 1e3   # a known zero: a certain bit to the decoder


@dataclass(frozen=True)
class LaMcs:
    """One MCS of the family: a modulation and the information rate per coded bit."""

    modulation: str
    rate: float

    @property
    def name(self) -> str:
        return f"{self.modulation}-{self.rate:.3f}"

    @property
    def bits_per_symbol(self) -> int:
        return qam.bits_per_symbol(self.modulation)

    @property
    def efficiency(self) -> float:
        """Information bits per symbol."""
        return self.rate * self.bits_per_symbol



# Efficiencies spaced ~1.3 dB apart in Shannon SNR (measured steps: codes/mcs_thresholds.json)
FAMILY = tuple(LaMcs(m, r) for m, rates in [
    ("qpsk", (0.07, 0.09, 0.115, 0.145, 0.185, 0.235, 0.295, 0.37, 0.46, 0.56, 0.66, 0.76)),
    ("16qam", (0.45, 0.53, 0.61, 0.69, 0.77, 0.85)),
    ("64qam", (0.62, 0.68, 0.745, 0.81, 0.87)),
    ("256qam", (0.70, 0.755, 0.81, 0.865, 0.895)),
] for r in rates)


def parse(name: str) -> LaMcs:
    for m in FAMILY:
        if m.name == name:
            return m
    raise InputError(f"unknown link-adaptation MCS {name!r}; known: {[m.name for m in FAMILY]}")


class Plan:
    """Where each coded bit of a frame comes from: ``tx_cw[j]``, ``tx_pos[j]`` = codeword and bit
    position of the j-th transmitted bit (after interleaving)."""

    def __init__(self, mcs: LaMcs, n_sym: int):
        self.mcs, self.n_sym = mcs, int(n_sym)
        bps = mcs.bits_per_symbol
        self.coded_bits = self.n_sym * bps
        self.info_bits = int(self.coded_bits * mcs.rate) // 8 * 8
        if self.info_bits <= 0:
            raise MedJSCCError(f"MCS {mcs.name}: {n_sym} symbols carry no information byte")
        code = self.code = choose_mother(self.info_bits, mcs.rate)
        n_cw = self.n_cw = -(-self.info_bits // code.k)
        self.k_i = np.full(n_cw, self.info_bits // n_cw)
        self.k_i[:self.info_bits % n_cw] += 1
        e_i = np.full(n_cw, self.coded_bits // n_cw)
        e_i[:self.coded_bits % n_cw] += 1
        parity = np.setdiff1d(np.arange(code.n), code.info_cols)
        parity = parity[np.random.default_rng(0x9A817).permutation(parity.size)]
        cws, poss = [], []
        for i in range(n_cw):
            buf = np.concatenate([code.info_cols[:self.k_i[i]], parity])
            poss.append(buf[np.arange(e_i[i]) % buf.size])
            cws.append(np.full(e_i[i], i))
        perm = np.random.default_rng(0x1D7E5 + self.coded_bits).permutation(self.coded_bits)
        self.tx_cw = np.concatenate(cws)[perm]
        self.tx_pos = np.concatenate(poss)[perm]
        self._flat = self.tx_cw * code.n + self.tx_pos
        self._info_mask = np.arange(code.k)[None, :] < self.k_i[:, None]   # (n_cw, k) sent info slots

    @property
    def payload_bytes(self) -> int:
        return self.info_bits // 8

    def encode(self, bits: np.ndarray) -> np.ndarray:
        """(F, K) information bits of F frames -> (F, n_sym) symbols."""
        bits = np.atleast_2d(np.asarray(bits, np.uint8))
        f = bits.shape[0]
        info = np.zeros((f, self.n_cw, self.code.k), np.uint8)
        info[:, self._info_mask] = bits
        cw = self.code.encode(info.reshape(-1, self.code.k)).reshape(f, -1)
        return qam.modulate(cw[:, self._flat].reshape(-1), self.mcs.modulation).reshape(f, self.n_sym)

    def codeword_llrs(self, llr_tx: np.ndarray) -> np.ndarray:
        """(F, B) received LLRs -> (F * n_cw, n) combined codeword LLRs (shortened bits known)."""
        llr_tx = np.atleast_2d(np.asarray(llr_tx, np.float32))
        f = llr_tx.shape[0]
        n_all = self.n_cw * self.code.n
        out = np.zeros((f, n_all), np.float32)
        for r in range(f):  # bincount adds the LLRs of repeated bits (soft combining)
            out[r] = np.bincount(self._flat, weights=llr_tx[r], minlength=n_all)
        out = out.reshape(f, self.n_cw, self.code.n)
        short_cw, short_j = np.nonzero(~self._info_mask)
        out[:, short_cw, self.code.info_cols[short_j]] = SHORTENED_LLR
        return out.reshape(-1, self.code.n)

    def decode(self, llr_tx: np.ndarray, sent_bits: np.ndarray | None = None, max_iter: int = 40):
        """(F, B) LLRs -> (F, K) decoded bits, (F,) frame ok. With ``sent_bits`` a frame whose
        decoded word differs from the sent one also fails (what a CRC would catch)."""
        llr = self.codeword_llrs(llr_tx)
        f = llr.shape[0] // self.n_cw
        out, conv, _ = self.code.decode(llr, max_iter=max_iter)
        info = self.code.info_bits(out).reshape(f, self.n_cw, self.code.k)[:, self._info_mask]
        ok = conv.reshape(f, self.n_cw).all(axis=1)
        if sent_bits is not None:
            ok &= (info == np.atleast_2d(sent_bits)).all(axis=1)
        return info.astype(np.uint8), ok


def choose_mother(info_bits: int, rate: float) -> ldpc.LdpcCode:
    """The code whose rate after shortening to this frame's k_i is nearest ``rate`` (see module doc)."""
    best = None
    for name in MOTHER_CODES:
        code = ldpc.load_code(name)
        n_cw = -(-info_bits // code.k)
        k_i = info_bits / n_cw
        score = abs(math.log((k_i / (k_i + code.n - code.k)) / rate)) + (SHORT_CODE_PENALTY if code.n < 1944 else 0)
        if best is None or score < best[0]:
            best = (score, code)
    return best[1]


@functools.lru_cache(maxsize=256)
def plan(mcs: LaMcs, n_sym: int) -> Plan | None:
    """The rate-matching plan of ``mcs`` on ``n_sym`` symbols (None: no information byte fits)."""
    if int(n_sym * mcs.bits_per_symbol * mcs.rate) < 8:
        return None
    return Plan(mcs, n_sym)


# ----------------------------------------------------------------------------- thresholds + rule
@functools.lru_cache(maxsize=8)
def read_fitted_json(path: str, maker: str) -> dict:
    """A fitted table shipped as JSON (read once); a clear error naming the bench script
    ``maker`` that makes it when it is missing or broken."""
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise MedJSCCError(f"{p.name} is missing; make it with bench/{maker}") from None
    except json.JSONDecodeError as e:
        raise MedJSCCError(f"{p} is not valid JSON ({e})") from None


def _read_json(path: str) -> dict:
    maker = "mcs_thresholds.py" if Path(path) == THRESHOLDS_FILE else "fit_mcs_margin.py"
    return read_fitted_json(str(path), maker)


def thresholds(path=THRESHOLDS_FILE) -> dict[str, float]:
    """Measured required SNR (dB) per MCS name (MCSs that never reached the target are left out)."""
    data = _read_json(str(path))
    return {name: float(v["threshold_db"]) for name, v in data["mcs"].items()
            if v.get("threshold_db") is not None and math.isfinite(float(v["threshold_db"]))}


def fitted_margin(path=RULE_FILE) -> float:
    return float(_read_json(str(path))["margin_db"])


def pick(snr_db: float, margin_db: float, table: dict[str, float] | None = None) -> LaMcs:
    """Highest-efficiency MCS whose threshold + margin <= snr_db; the most robust one if none."""
    table = thresholds() if table is None else table
    if not table:
        raise MedJSCCError("no MCS threshold measured")
    fams = sorted((parse(n) for n in table), key=lambda m: m.efficiency)
    ok = [m for m in fams if table[m.name] + margin_db <= snr_db + 1e-9]
    return ok[-1] if ok else fams[0]
