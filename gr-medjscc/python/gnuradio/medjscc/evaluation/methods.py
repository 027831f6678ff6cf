"""One sweep point: send one image through one method at several SNRs, return tidy rows.

Method families (``METHODS``):

* neural (``medjscc``, ``ntscc``, ``adjscc``, ``deepjscc``): ``codec.load_codec(name)``; the
  analog symbols cross the channel, fading is MMSE-equalised with the known gain, the codec
  decodes at the true SNR. Side info is assumed received intact on the symbol link (it is
  counted in ``cbr_total``); on the OFDM link it travels in the frame headers.
* digital separation (``j2k-ldpc``, ``hevc-ldpc``, ``j2k-roi-ldpc``): for every MCS (LDPC rate x
  QAM order) the source stream is the largest that fits ``floor(cbr*H*W)`` symbols, is LDPC
  encoded, bit-interleaved, QAM-mapped, sent, soft-demapped (max-log LLRs) and min-sum decoded.
  Any failed codeword (or a decoded word that differs from the sent one: a CRC would catch it)
  fails the image: mid-grey, ``decode_ok=False``. One row per MCS; the sweep's aggregate picks
  the envelope.
* capacity bounds (``j2k-capacity``, ``hevc-capacity``): the source codec at
  ``floor(cbr*H*W) * C(SNR) / 8`` bytes, no errors (an ideal code).
"""
from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, MedJSCCError
from . import channel as chan
from . import ldpc, qam, source

NEURAL = ("medjscc", "ntscc", "adjscc", "deepjscc")
DIGITAL = {"j2k-ldpc": "j2k", "hevc-ldpc": "hevc", "j2k-roi-ldpc": "j2k-roi"}
CAPACITY = {"j2k-capacity": "j2k", "hevc-capacity": "hevc"}
METHODS = NEURAL + tuple(DIGITAL) + tuple(CAPACITY)
LINKS = ("symbol", "ofdm")

# LDPC rate -> candidate codes (lengths); the longest that wastes least of the budget is used.
RATE_CODES = {
    "1/4": ("grfec_n500_k127",),
    "2/5": ("grfec_n1100_k442",),
    "1/2": ("wifi_n648_r12", "wifi_n1944_r12"),
    "2/3": ("wifi_n648_r23", "wifi_n1944_r23"),
    "3/4": ("wifi_n648_r34", "wifi_n1944_r34"),
    "5/6": ("wifi_n648_r56", "wifi_n1944_r56"),
}


@dataclass(frozen=True)
class Mcs:
    rate: str
    modulation: str

    @property
    def name(self) -> str:
        return f"{self.modulation}-r{self.rate}"

    @property
    def bits_per_symbol(self) -> int:
        return qam.bits_per_symbol(self.modulation)


# an 802.11-like table extended with low rates for low SNR (gr-fec's shipped codes)
MCS_TABLE = tuple(Mcs(r, m) for m, rates in [
    ("bpsk", ("1/4", "2/5", "1/2")),
    ("qpsk", ("1/2", "2/3", "3/4", "5/6")),
    ("16qam", ("1/2", "2/3", "3/4", "5/6")),
    ("64qam", ("2/3", "3/4", "5/6")),
] for r in rates)


def parse_mcs(name: str) -> Mcs:
    for m in MCS_TABLE:
        if m.name == name:
            return m
    raise InputError(f"unknown MCS {name!r}; known: {[m.name for m in MCS_TABLE]}")


def check_method(name: str) -> str:
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return name


def choose_code(rate: str, coded_bits: int) -> ldpc.LdpcCode | None:
    best = None
    for cname in RATE_CODES[rate]:
        code = ldpc.load_code(cname)
        used = (coded_bits // code.n) * code.n
        if used and (best is None or used > best[0] or (used == best[0] and code.n > best[1].n)):
            best = (used, code)
    return None if best is None else best[1]


def n_symbols(cbr: float, shape) -> int:
    return int(math.floor(cbr * shape[0] * shape[1] + 1e-9))


# ----------------------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=8)
def _source(name: str):
    return source.get_source_codec(name)


_METRIC_MEMO: dict = {}


def _metrics(ref: np.ndarray, recon: np.ndarray, mask) -> dict:
    from ..metrics import image_metrics

    key = (hashlib.sha1(ref.tobytes()).hexdigest(), hashlib.sha1(recon.tobytes()).hexdigest(),
           None if mask is None else hashlib.sha1(np.packbits(mask).tobytes()).hexdigest())
    if key not in _METRIC_MEMO:
        if len(_METRIC_MEMO) > 20000:
            _METRIC_MEMO.clear()
        _METRIC_MEMO[key] = image_metrics(ref, recon, mask)
    return _METRIC_MEMO[key]


def _padding_bits(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 2, n, dtype=np.uint8)


def _interleaver(n: int) -> np.ndarray:
    return np.random.default_rng(0x1D7E5 + n).permutation(n)


@dataclass
class Transmission:
    """What a method hands the link: symbols, plus side info for JSCC codecs."""
    symbols: np.ndarray
    side_info: bytes | None = None


class SymbolLink:
    """Per-symbol channel with known gains (``channel.py``)."""

    name = "symbol"

    def __init__(self, kind: str):
        if kind not in chan.CHANNELS:
            raise InputError(f"unknown channel {kind!r}; choose one of {', '.join(chan.CHANNELS)}")
        self.kind = kind

    def digital(self, symbols, snr_db, seed_words):
        """-> (y zero-forcing-ready, h or None, N0 per symbol (scalar), erased or None)."""
        y, h, n0 = chan.transmit(symbols, self.kind, snr_db, seed_words)
        return y, h, n0, None

    def total_symbols(self, n_payload: int, side_info_bytes: int) -> int | None:
        return None  # symbol link: no framing overhead beyond what the method counts itself

    def capacity(self, snr_db: float) -> float:
        return chan.capacity_bits_per_symbol(self.kind, snr_db)

    def analog(self, tx: Transmission, snr_db, seed_words):
        """-> (equalised symbols complex64, side_info | None, erased | None)."""
        y, h, n0 = chan.transmit(tx.symbols, self.kind, snr_db, seed_words)
        return chan.mmse_equalise(y, h, n0).astype(np.complex64), tx.side_info, None


def get_link(link: str, kind: str):
    if link == "symbol":
        return SymbolLink(kind)
    if link == "ofdm":
        from .ofdm_link import OfdmLink

        return OfdmLink(kind)
    raise InputError(f"unknown link {link!r}; choose one of {', '.join(LINKS)}")


# ----------------------------------------------------------------------------- digital
def digital_mcs(image, mask, source_name, mcs: Mcs, snr_db, cbr, link, seed_words, max_iter=40):
    """One MCS: returns (recon uint8, decode_ok, source_bytes, used_symbols)."""
    shape = image.shape
    n_sym = n_symbols(cbr, shape)
    bps = mcs.bits_per_symbol
    code = choose_code(mcs.rate, n_sym * bps)
    if code is None:
        return source.grey_image(shape), False, 0, 0
    n_cw = (n_sym * bps) // code.n
    info_bits = n_cw * code.k
    data = _source(source_name).encode(image, info_bits // 8, mask)
    if data is None:
        return source.grey_image(shape), False, 0, 0
    payload = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    bits = np.concatenate([payload, _padding_bits(info_bits - payload.size)]).reshape(n_cw, code.k)
    coded = code.encode(bits).reshape(-1)
    n_coded = coded.size
    perm = _interleaver(n_coded)
    pad = (-n_coded) % bps
    tx_bits = np.concatenate([coded[perm], np.zeros(pad, np.uint8)])
    symbols = qam.modulate(tx_bits, mcs.modulation)
    y, h, n0, erased = link.digital(symbols, snr_db, seed_words)
    llr_tx = qam.demodulate_llr(y, mcs.modulation, n0, h)
    if erased is not None:
        llr_tx = llr_tx.reshape(-1, bps)
        llr_tx[np.asarray(erased, bool)] = 0.0
        llr_tx = llr_tx.reshape(-1)
    llr = np.empty(n_coded, np.float32)
    llr[perm] = llr_tx[:n_coded]
    llr = llr.reshape(n_cw, code.n)
    ok = True
    # decode a few codewords first: a hopeless MCS fails there without decoding the rest
    start = 0
    for size in (min(4, n_cw), n_cw):
        if start >= n_cw:
            break
        stop = min(n_cw, size) if start == 0 else n_cw
        try:
            out, conv, _ = code.decode(llr[start:stop], max_iter=max_iter)
        except Exception:  # noqa: BLE001 - a decoder exception is a failed image, never a crash
            ok = False
            break
        if not conv.all() or not np.array_equal(code.info_bits(out), bits[start:stop]):
            ok = False
            break
        start = stop
    used = symbols.size
    total = link.total_symbols(used, 0)
    if total is not None:
        used = total
    if not ok:
        return source.grey_image(shape), False, len(data), used
    return _source(source_name).decode(data, shape), True, len(data), used


def capacity_point(image, mask, source_name, snr_db, cbr, link):
    """Ideal code at the link's capacity per payload symbol (framing overhead not charged)."""
    n_sym = n_symbols(cbr, image.shape)
    budget = int(math.floor(n_sym * link.capacity(snr_db) / 8))
    data = _source(source_name).encode(image, budget, mask)
    if data is None:
        return source.grey_image(image.shape), False, 0
    return _source(source_name).decode(data, image.shape), True, len(data)


# ----------------------------------------------------------------------------- neural
RANDOM_CODECS_ENV = "MEDJSCC_EVAL_RANDOM_CODECS"  # test hook: random-init neural codecs (recorded in sweep.json)
RANDOM_INIT_SHA = "random-init"   # model_sha256 of the test hook's untrained codecs


@dataclass(frozen=True)
class NeuralModel:
    """A loaded neural codec and the SHA-256 of the weights it was loaded from (the rows say so)."""

    codec: object
    sha256: str


# Per-process cache of loaded codecs (a sweep task must not reload 4 MB of weights per image).
# The key names what was loaded: the method with the weights file it resolves to now (so a
# different MEDJSCC_MODELS_DIR loads again) or the random-init test hook. Entries are frozen; the
# codec objects themselves are only used for encode/decode here. Tests may clear it.
_NEURAL_CACHE: dict = {}


def neural_model(name: str) -> NeuralModel:
    """The codec of a neural method with the SHA-256 of its weights (cached per process)."""
    import os

    try:
        from ..codec import build_codec, load_codec
        from ..codec.api import resolve_weights
    except ImportError as e:
        raise MedJSCCError(f"method {name}: the codec package is not available ({e})") from None
    if os.environ.get(RANDOM_CODECS_ENV):
        key = (name, RANDOM_INIT_SHA)
        if key not in _NEURAL_CACHE:
            # test hook: untrained codecs exercise the plumbing; sweep.json and every row record it
            _NEURAL_CACHE[key] = NeuralModel(build_codec(name, seed=0), RANDOM_INIT_SHA)
        return _NEURAL_CACHE[key]
    try:
        path = resolve_weights(name)
    except MedJSCCError as e:
        raise MedJSCCError(f"method {name}: weights not found ({e}); train them with "
                           f"'medjscc train' or drop {name} from --methods") from None
    key = (name, str(path))
    if key not in _NEURAL_CACHE:
        from ..checksums import sha256_path

        try:
            codec = load_codec(name)
        except FileNotFoundError as e:
            raise MedJSCCError(f"method {name}: weights not found ({e}); train them with "
                               f"'medjscc train' or drop {name} from --methods") from None
        except MedJSCCError as e:
            raise MedJSCCError(f"method {name}: {e}") from None
        # load_codec has just verified the file against this side file
        sha = sha256_path(path).read_text().split()[0].lower()
        _NEURAL_CACHE[key] = NeuralModel(codec, sha)
    return _NEURAL_CACHE[key]


def neural_codec(name: str):
    """The codec for a neural method (cached per process; see ``neural_model``)."""
    return neural_model(name).codec


def neural_point(codec, image, mask, snr_db, cbr, link, seed_words):
    enc = codec.encode(image, mask, snr_db=snr_db, cbr=cbr)
    rx, side_info, erased = link.analog(Transmission(enc.symbols, enc.side_info), snr_db, seed_words)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # codec warns when it falls back to grey
        recon = codec.decode(rx, side_info, enc.shape, snr_db=snr_db, erased=erased)
    ok = side_info is not None and (erased is None or not np.asarray(erased).any())
    total = link.total_symbols(enc.symbols.size, len(enc.side_info))
    cbr_total = float(enc.cbr_total) if total is None else total / float(image.size)
    return recon, ok, cbr_total


# ----------------------------------------------------------------------------- one point
def run_point(method: str, image: np.ndarray, mask, image_name: str, snrs, cbr: float,
              channel: str, link: str, trial: int, seed: int, keep_recon_snrs=()):
    """All rows of one (method, image, trial, cbr) for every SNR in ``snrs``.

    Returns ``(rows, recons)``: rows are dicts with the CSV columns; ``recons`` maps
    ``(snr_db, mcs)`` -> uint8 image for the SNRs in ``keep_recon_snrs`` (montage).
    """
    check_method(method)
    image = np.ascontiguousarray(image, dtype=np.uint8)
    mask = None if mask is None else np.asarray(mask, bool)
    lk = get_link(link, channel)
    rows, recons = [], {}
    n_pix = image.size
    base = dict(method=method, cbr=float(cbr), channel=channel, link=link, trial=int(trial), image=image_name)

    def emit(snr_db, mcs, recon, ok, cbr_total, nbytes, model_sha256=""):
        m = _metrics(image, recon, mask)
        rows.append(dict(base, snr_db=float(snr_db), mcs=mcs, psnr=m["psnr"], roi_psnr=m["roi_psnr"],
                         ms_ssim=m["ms_ssim"], cbr_total=cbr_total, decode_ok=bool(ok), source_bytes=nbytes,
                         model_sha256=model_sha256))
        if any(abs(snr_db - s) < 1e-9 for s in keep_recon_snrs):
            recons[(float(snr_db), mcs)] = recon

    for snr_db in snrs:
        seed_words = chan.channel_seed(seed, image_name, snr_db, trial)
        if method in NEURAL:
            model = neural_model(method)
            recon, ok, cbr_total = neural_point(model.codec, image, mask, snr_db, cbr, lk, seed_words)
            emit(snr_db, "", recon, ok, cbr_total, 0, model.sha256)
        elif method in CAPACITY:
            recon, ok, nbytes = capacity_point(image, mask, CAPACITY[method], snr_db, cbr, lk)
            emit(snr_db, "", recon, ok, n_symbols(cbr, image.shape) / n_pix, nbytes)
        else:
            for mcs in MCS_TABLE:
                recon, ok, nbytes, used = digital_mcs(image, mask, DIGITAL[method], mcs, snr_db, cbr, lk, seed_words)
                emit(snr_db, mcs.name, recon, ok, used / n_pix, nbytes)
    return rows, recons
