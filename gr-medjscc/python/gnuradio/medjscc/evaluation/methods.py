"""One sweep point: send one image through one method at several SNRs, return tidy rows.

Method families (``METHODS``):

* neural (``medjscc``, ``medjscc_csi``, ``medjscc_radio``, ``medjscc_task``, ``ntscc``, ``adjscc``, ``deepjscc``;
  ``medjscc-rep`` / ``medjscc_csi-rep`` / ``medjscc_radio-rep`` / ``medjscc_task-rep``:
  the same weights sending 20 % of the strongest symbols twice): ``codec.load_codec(name)``; the
  analog symbols cross the channel, fading is MMSE-equalised with the known gain, the codec
  decodes at the true SNR. On the symbol link the side info is one digital frame on the same
  noisy channel (``envelope.send_side_info``; its symbols in ``cbr_total``, the analog payload
  shrunk to fit; a lost frame loses the image); on the OFDM link it travels in the frame headers.
* digital separation (``j2k-ldpc``, ``hevc-ldpc``, ``j2k-roi-ldpc``): for every MCS (LDPC rate x
  QAM order) the source stream is the largest that fits ``floor(cbr*H*W)`` symbols, is LDPC
  encoded, bit-interleaved, QAM-mapped, sent, soft-demapped (max-log LLRs) and min-sum decoded.
  Any failed codeword (or a decoded word that differs from the sent one: a CRC would catch it)
  fails the image: mid-grey, ``decode_ok=False``. One row per MCS; the sweep's aggregate picks
  the envelope.
* capacity bounds (``j2k-capacity``, ``hevc-capacity``): the source codec at
  ``floor(cbr*H*W) * C(SNR) / 8`` bytes, no errors (an ideal code); header-free like every
  source stream here (``source.py``).
* ``digital-envelope`` (``envelope.py``): the fair digital reference: one MCS of the rate-matched
  family per SNR by a rule fitted on the validation split, the codec that rule names for it, every
  symbol and byte counted; its rows' ``mcs`` read ``<mcs>+<codec>``.
* ``hybrid-softcast`` (``codec/hybrid.py``): a header-free JPEG2000 base at the
  envelope rule's MCS on a share of the symbols, the base's error as linear analog symbols (full
  -frame DCT, closed-form power allocation, LLSE) on the rest, its side frame in the same
  budget; split per SNR fitted on the validation split. Rows' ``mcs`` read
  ``<base mcs>+<codec>[-prior][-bg<w>]+b<base share of all symbols>`` (``none+...``: pure analog;
  ``-prior``: band variances from the validation prior, no side frame; ``-bg<w>``: the analog
  layer weighs the residual outside the ROI by w); ``decode_ok``: the side frame and the base
  (if any) decoded.
* ``medjscc-hda`` (``codec/hda.py``): the same frames as ``hybrid-softcast``, received by the
  learned SNR-aware refinement decoder (``models/hda_refiner.pt``) where they decoded; rows as
  ``hybrid-softcast``'s, plus ``model_sha256``.
* ``hybrid-softcast-nomask``: ``hybrid-softcast`` with the split fitted without the mask (no ROI
  JPEG2000, no weighting: the fit's reference, ``split_nomask``), symbol link only. Beside
  ``hybrid-softcast`` it measures what the ROI mask buys (issue #13).
* ``hybrid-softcast-task``: ``hybrid-softcast``'s split with the analog layer's error weighted
  towards the DCT bands where a nodule is detectable (``codec/detectability.py``, the weight per
  SNR from ``detectability.weight_rule``; rows' ``mcs`` show ``-t<w>``), symbol link only: what
  that buys the nodule AUC, and costs in PSNR (issue #15).
* ``hybrid-layered``: ``hybrid-softcast`` whose base is two JPEG2000 quality layers, the first at
  the MCS for 4 dB less (``hybrid.layered``): when the TX over-estimates the SNR the finer layer
  is lost and the first still decodes. ``decode_ok`` counts such an image (model
  ``hybrid_layered`` on the OFDM link; rows' ``mcs`` read ``<first-layer mcs>/<base mcs>+...``).

Rows carry ``cbr_total`` (the method's own symbols per pixel: a neural codec's analog symbols
plus its side info, a digital chain's QAM symbols) and, on the OFDM link, ``cbr_air`` (every
complex sample of its bursts per pixel: preambles, headers, pilots, cyclic prefix, guard carriers,
padding; ``OfdmLink.total_symbols``). The symbol link has no framing, so ``cbr_air`` is NaN there.

Budget (``BUDGETS``): ``codec`` gives every method ``cbr`` as its own CBR; ``air`` (OFDM link
only) reads ``cbr`` as an air budget and gives each method the largest codec CBR whose bursts
fit it on the same framing (``air_payload``), so the digital chain pays the same overhead.
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

# "<model>-rep": the model sending 20 % of its strongest symbols twice within the same CBR
# (codec.repetition; the OFDM link's default), the copies combined at the receiver
REPEAT_VARIANTS = {"medjscc-rep": ("medjscc", 0.2), "medjscc_csi-rep": ("medjscc_csi", 0.2),
                   "medjscc_radio-rep": ("medjscc_radio", 0.2), "medjscc_task-rep": ("medjscc_task", 0.2)}
NEURAL = ("medjscc", "medjscc_csi", "medjscc_radio", "medjscc_task", "ntscc", "adjscc", "deepjscc") + tuple(REPEAT_VARIANTS)
DIGITAL = {"j2k-ldpc": "j2k", "hevc-ldpc": "hevc", "j2k-roi-ldpc": "j2k-roi"}
CAPACITY = {"j2k-capacity": "j2k", "hevc-capacity": "hevc"}
ENVELOPE = ("digital-envelope",)
# codec/hybrid.py: digital base + SoftCast-style analog residual; medjscc-hda adds the learned
# refinement decoder (codec/hda.py) to the same frames
HYBRID = ("hybrid-softcast", "medjscc-hda", "hybrid-softcast-nomask", "hybrid-softcast-task", "hybrid-layered")
HYBRID_REFINER = {"medjscc-hda": "hda_refiner"}
# the hybrid without any use of the mask (codec/hybrid.py split_nomask): what the mask is worth
HYBRID_NOMASK = ("hybrid-softcast-nomask",)
# the shipped split with its analog layer's error weighted towards the bands where a nodule is
# detectable (codec/detectability.py, weight per SNR picked on validation pairs): what that buys
# the nodule AUC (issue #15)
HYBRID_TASK = ("hybrid-softcast-task",)
SYMBOL_LINK_ONLY = HYBRID_NOMASK + HYBRID_TASK
# the hybrid whose base is two JPEG2000 layers, the first at a more robust MCS (hybrid.layered;
# model hybrid_layered on the air)
HYBRID_LAYERED = ("hybrid-layered",)
METHODS = NEURAL + tuple(DIGITAL) + tuple(CAPACITY) + ENVELOPE + HYBRID
LINKS = ("symbol", "ofdm")
BUDGETS = ("codec", "air")   # what the sweep's cbr fixes: each method's own CBR, or its samples on air
AIR_SOLVE_SYMBOLS = 16   # air budget: a neural codec's CBR is solved to within this many symbols

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

    def total_symbols(self, n_payload: int, side_info_bytes: int, snr_db=None) -> int | None:
        return None  # symbol link: no framing overhead beyond what the method counts itself

    def payload_for_air(self, air_samples: int, side_info_bytes: int, snr_db=None):
        raise InputError("an air budget needs the OFDM link (--link ofdm): the symbol link has no framing")

    def capacity(self, snr_db: float) -> float:
        return chan.capacity_bits_per_symbol(self.kind, snr_db)

    def analog(self, tx: Transmission, snr_db, seed_words):
        """-> (equalised symbols complex64, side_info | None, erased | None, inv_snr | None).

        AWGN: y = x + n and no per-symbol CSI; fading: MMSE estimates and each symbol's
        1/SNR_i = N0/|h|^2 (what a CSI-aware decoder weighs them by)."""
        y, h, n0 = chan.transmit(tx.symbols, self.kind, snr_db, seed_words)
        inv_snr = None if h is None else (n0 / np.maximum(np.abs(h) ** 2, 1e-30)).astype(np.float32)
        return chan.mmse_equalise(y, h, n0).astype(np.complex64), tx.side_info, None, inv_snr


def get_link(link: str, kind: str):
    if link == "symbol":
        return SymbolLink(kind)
    if link == "ofdm":
        from .ofdm_link import OfdmLink

        return OfdmLink(kind)
    raise InputError(f"unknown link {link!r}; choose one of {', '.join(LINKS)}")


def check_budget(budget: str) -> str:
    if budget not in BUDGETS:
        raise InputError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    return budget


def air_payload(cbr: float, shape, link, side_info_bytes: int = 0, snr_db=None) -> int:
    """Payload symbols an image of ``shape`` may send so that its bursts on ``link`` take at most
    ``floor(cbr*H*W)`` samples on air (``cbr`` read as an air CBR), sent at ``snr_db`` (the
    header format may depend on it; None: the longest header)."""
    n = link.payload_for_air(n_symbols(cbr, shape), side_info_bytes, snr_db)
    if not n:
        raise MedJSCCError(f"air CBR {cbr:g} is below what one burst of this framing costs for a "
                           f"{shape[1]}x{shape[0]} image; use a larger --cbr")
    return n


def symbol_budget(cbr: float, shape, link, budget: str = "codec", snr_db=None) -> int:
    """Symbols a digital or capacity method may send: ``floor(cbr*H*W)`` (codec budget), or the
    most whose bursts fit ``cbr`` on air at ``snr_db`` (air budget; the digital chain has no side
    info)."""
    if check_budget(budget) == "codec":
        return n_symbols(cbr, shape)
    return air_payload(cbr, shape, link, snr_db=snr_db)


def air_cbr(link, n_payload: int, side_info_bytes: int, n_pix: int, snr_db=None) -> float:
    """Samples on air per pixel for an image's bursts sent at ``snr_db`` (the header format may
    depend on it), NaN on a link without framing."""
    total = link.total_symbols(n_payload, side_info_bytes, snr_db)
    return math.nan if total is None else total / float(n_pix)


# ----------------------------------------------------------------------------- digital
def digital_mcs(image, mask, source_name, mcs: Mcs, snr_db, cbr, link, seed_words, max_iter=40, n_sym=None):
    """One MCS: returns (recon uint8, decode_ok, source_bytes, used_symbols). ``n_sym``: the symbol
    budget (default ``floor(cbr*H*W)``); ``used_symbols`` counts the QAM symbols sent, no framing."""
    shape = image.shape
    n_sym = n_symbols(cbr, shape) if n_sym is None else int(n_sym)
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
    rx_info = []
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
        rx_info.append(code.info_bits(out))
        start = stop
    used = symbols.size
    if not ok:
        return source.grey_image(shape), False, len(data), used
    # the receiver sees every information byte (payload + padding) and no length: the payload delimits itself
    received = np.packbits(np.concatenate(rx_info).reshape(-1)).tobytes()
    return _source(source_name).decode(received, shape), True, len(data), used


def capacity_point(image, mask, source_name, snr_db, cbr, link, n_sym=None):
    """Ideal code at the link's capacity per payload symbol on ``n_sym`` symbols (default
    ``floor(cbr*H*W)``); the framing's samples are not charged here (the row's cbr_air shows them)."""
    n_sym = n_symbols(cbr, image.shape) if n_sym is None else int(n_sym)
    budget = int(math.floor(n_sym * link.capacity(snr_db) / 8))
    data = _source(source_name).encode(image, budget, mask)
    if data is None:
        return source.grey_image(image.shape), False, 0
    return _source(source_name).decode(data, image.shape), True, len(data)


# ----------------------------------------------------------------------------- neural
RANDOM_INIT_SHA = "random-init"   # model_sha256 of untrained codecs (random_init=True: plumbing tests)


@dataclass(frozen=True)
class NeuralModel:
    """A loaded neural codec and the SHA-256 of the weights it was loaded from (the rows say so)."""

    codec: object
    sha256: str


# Per-process cache of loaded codecs (a sweep task must not reload 4 MB of weights per image).
# The key names what was loaded: the method with the weights file it resolves to now (so a
# different MEDJSCC_MODELS_DIR loads again) or its random-init codec. Entries are frozen; the
# codec objects themselves are only used for encode/decode here. Tests may clear it.
_NEURAL_CACHE: dict = {}


def _frozen(codec, repeat_strong: float = 0.0):
    """Cached codecs are never trained: let encode reuse its CBR-independent network outputs when
    the side-info frame makes ``_symbol_link_encode`` retry the CBR (same numbers, fewer passes).
    Each method has its own codec object, so a ``-rep`` method's repeat share is its own."""
    codec.reuse_analysis = True
    codec.repeat_strong = float(repeat_strong)
    return codec


def hybrid_split(method: str, snr_db: float, cbr: float):
    """The split a hybrid method sends on the symbol link at ``snr_db`` and ``cbr``; None: the
    shipped rule's (``hybrid.sweep_point``'s default)."""
    from dataclasses import replace

    from ..codec import hybrid

    if method in HYBRID_NOMASK:
        return hybrid.split_rule(snr_db, cbr=cbr, nomask=True)
    if method in HYBRID_LAYERED:
        return hybrid.layered(hybrid.split_rule(snr_db, cbr=cbr))
    if method in HYBRID_TASK:
        from ..codec import detectability

        return replace(hybrid.split_rule(snr_db, cbr=cbr), task_weight=detectability.weight_rule(snr_db))
    return None


@functools.lru_cache(maxsize=2)
def hybrid_refiner(name: str):
    """The learned refinement decoder of a hybrid method, loaded once per process."""
    from ..codec.hda import load_refiner

    return load_refiner(name)


def neural_model(name: str, random_init: bool = False) -> NeuralModel:
    """The codec of a neural method with the SHA-256 of its weights (cached per process).

    ``random_init``: an untrained codec (``build_codec(name, seed=0)``, ``sha256`` =
    ``RANDOM_INIT_SHA``) instead of the weights: exercises the plumbing in tests without trained
    weights; the caller asks for it explicitly and every row says so.
    """
    try:
        from ..codec import build_codec, load_codec
        from ..codec.api import resolve_weights
    except ImportError as e:
        raise MedJSCCError(f"method {name}: the codec package is not available ({e})") from None
    base, repeat = REPEAT_VARIANTS.get(name, (name, 0.0))
    if random_init:
        key = (name, RANDOM_INIT_SHA)
        if key not in _NEURAL_CACHE:
            _NEURAL_CACHE[key] = NeuralModel(_frozen(build_codec(base, seed=0), repeat), RANDOM_INIT_SHA)
        return _NEURAL_CACHE[key]
    try:
        path = resolve_weights(base)
    except MedJSCCError as e:
        raise MedJSCCError(f"method {name}: weights not found ({e}); train them with "
                           f"'medjscc train' or drop {name} from --methods") from None
    key = (name, str(path))
    if key not in _NEURAL_CACHE:
        from ..checksums import sha256_path

        try:
            codec = load_codec(base)
        except FileNotFoundError as e:
            raise MedJSCCError(f"method {name}: weights not found ({e}); train them with "
                               f"'medjscc train' or drop {name} from --methods") from None
        except MedJSCCError as e:
            raise MedJSCCError(f"method {name}: {e}") from None
        # load_codec has just verified the file against this side file
        sha = sha256_path(path).read_text().split()[0].lower()
        _NEURAL_CACHE[key] = NeuralModel(_frozen(codec, repeat), sha)
    return _NEURAL_CACHE[key]


def neural_codec(name: str, random_init: bool = False):
    """The codec for a neural method (cached per process; see ``neural_model``)."""
    return neural_model(name, random_init).codec


def neural_encode(codec, image, mask, snr_db, cbr, link, budget: str = "codec"):
    """``codec.encode`` at ``cbr`` (codec budget), or at the largest codec CBR whose bursts fit
    ``floor(cbr*H*W)`` samples on air (air budget). The side info's size depends on the
    allocation: the payload is first solved for the side info of the last encode; where that
    flips across a frame boundary (a larger payload -> more side info -> one more burst) the
    codec's total symbols are bisected between an encode that fits and one that does not."""
    if check_budget(budget) == "codec":
        if getattr(link, "name", "") == "symbol" and SIDE_INFO_ON_AIR:
            return _symbol_link_encode(codec, image, mask, snr_db, cbr)
        return codec.encode(image, mask, snr_db=snr_db, cbr=cbr)
    n_pix, budget_air = image.size, n_symbols(cbr, image.shape)

    def encode(total):   # encode gives floor(total - side symbols) payload symbols: + 0.5 lands on it
        return codec.encode(image, mask, snr_db=snr_db, cbr=(total + 0.5) / n_pix)

    def fits(enc):
        return link.total_symbols(enc.n_payload_symbols, len(enc.side_info), snr_db) <= budget_air

    lo, hi = (0.0, None), None          # (codec total symbols, encode) that fit / do not fit
    side_bytes, side_symbols = 0, 0.0
    for _ in range(3):
        total = air_payload(cbr, image.shape, link, side_bytes, snr_db) + side_symbols
        enc = encode(total)
        if fits(enc):
            if total >= lo[0]:
                lo = (total, enc)
            if len(enc.side_info) == side_bytes:   # the side info it was solved for: air filled
                return enc
        elif hi is None or total < hi[0]:
            hi = (total, enc)
        side_bytes, side_symbols = len(enc.side_info), enc.side_info_symbols
    while hi is not None and hi[0] - lo[0] > AIR_SOLVE_SYMBOLS:
        mid = math.floor((lo[0] + hi[0]) / 2)
        enc = encode(mid)
        if fits(enc):
            lo = (mid, enc)
        else:
            hi = (mid, enc)
    if lo[1] is None:
        raise MedJSCCError(f"no codec CBR of this model fits air CBR {cbr:g} with its side info; use a larger --cbr")
    return lo[1]


# Symbol link: the side info crosses the same noisy channel as a digital frame (envelope.py), as
# it does in the OFDM headers; False restores the old noiseless side info (tests of the codec only).
SIDE_INFO_ON_AIR = True


class SideInfoDoesNotFit(MedJSCCError):
    """The side-info frame at this SNR leaves no room for the payload in the symbol budget."""


def _symbol_link_encode(codec, image, mask, snr_db, cbr, tries: int = 4):
    """Symbol link: the side info travels as its own frame (``envelope.send_side_info``), so the
    analog payload is solved for payload + that frame's symbols <= floor(cbr*H*W) (the codec's own
    count of side info, 1 bit a symbol, is replaced by the frame's). Keeps the largest that fits."""
    from .envelope import side_info_mcs, side_info_symbols

    budget_sym, n_pix = n_symbols(cbr, image.shape), image.size
    mcs = side_info_mcs(snr_db)
    total, best, enc = float(budget_sym), None, None
    for _ in range(tries):
        if total <= 0:
            break
        enc = codec.encode(image, mask, snr_db=snr_db, cbr=total / n_pix)
        used = enc.symbols.size + (side_info_symbols(len(enc.side_info), mcs) if enc.side_info else 0)
        if used <= budget_sym and (best is None or used > best[0]):
            best = (used, enc)
        if used == budget_sym:
            break
        total -= used - budget_sym
    if best is None:
        raise SideInfoDoesNotFit(f"CBR {cbr:g} cannot hold this codec's payload and its side-info frame at "
                                 f"{snr_db:g} dB ({mcs.name}); use a larger --cbr")
    return best[1]


def neural_point(codec, image, mask, snr_db, cbr, link, seed_words, budget: str = "codec", design_snr_db=None):
    """-> (recon, decode_ok, cbr_total, cbr_air). ``design_snr_db``: the SNR the TX was told (its
    CAU and its side info's MCS follow it; default ``snr_db``); the channel runs at ``snr_db`` and
    the decoder takes it (what the receiver measures)."""
    told = snr_db if design_snr_db is None else design_snr_db
    try:
        enc = neural_encode(codec, image, mask, told, cbr, link, budget)
    except SideInfoDoesNotFit:   # nothing can be sent at this SNR: the receiver shows grey
        from .source import grey_image

        return grey_image(image.shape), False, n_symbols(cbr, image.shape) / float(image.size), math.nan
    rx, side_info, erased, inv_snr = link.analog(Transmission(enc.symbols, enc.side_info), snr_db, seed_words)
    cbr_total = float(enc.cbr_total)
    if getattr(link, "name", "") == "symbol" and SIDE_INFO_ON_AIR and enc.side_info:
        from .envelope import send_side_info

        side_info, n_side = send_side_info(enc.side_info, told, link, seed_words, channel_snr_db=snr_db)
        cbr_total = (enc.symbols.size + n_side) / float(image.size)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # codec warns when it falls back to grey
        recon = codec.decode(rx, side_info, enc.shape, snr_db=snr_db, erased=erased, inv_snr=inv_snr)
    ok = side_info is not None and (erased is None or not np.asarray(erased).any())
    return recon, ok, cbr_total, air_cbr(link, enc.symbols.size, len(enc.side_info), image.size, snr_db)


def hybrid_air_point(method, refiner, image, mask, snr_db, cbr, link, seed_words, budget: str = "codec"):
    """A hybrid method on the OFDM link: the frame ``jscc_tx`` sends (``codec.hybrid_codec``: the
    design SNR in the header side info, a CRC-16 on the base), ZF-equalised symbols weighted by
    their 1/SNR_i at the RX. -> (recon, decode_ok, cbr_total, cbr_air, base bytes, row label);
    ``decode_ok``: the side info, the side frame and the base (if any) decoded, as on the symbol link."""
    from ..codec import hybrid
    from ..codec.hybrid_codec import HybridCodec, HybridSideInfoError
    from .source import grey_image

    codec = HybridCodec(method, refiner)
    enc = neural_encode(codec, image, mask, snr_db, cbr, link, budget)
    n_pay = enc.symbols.size
    rx, side_info, erased, inv_snr = link.analog(Transmission(enc.symbols, enc.side_info), snr_db, seed_words,
                                                 equalizer="zf")
    cbr_air = air_cbr(link, enc.symbols.size, len(enc.side_info), image.size, snr_db)
    # the row label is the planned split's, as on the symbol link (one per SNR: rows aggregate)
    label = hybrid.layout(n_pay, enc.snr_db, codec.split(enc.snr_db, n_pay, image.shape)).label
    try:
        recon, info = codec.decode_with_info(rx, side_info, image.shape, snr_db=snr_db, erased=erased,
                                             inv_snr=inv_snr)
    except HybridSideInfoError:   # the header side info was lost: the RX cannot lay the frame out
        return grey_image(image.shape), False, float(enc.cbr_total), cbr_air, enc.source_bytes, label
    ok = info["shown"] in ("hybrid", "first_layer")   # (first_layer: as the symbol link counts it)
    return recon, ok, float(enc.cbr_total), cbr_air, enc.source_bytes, label


# ----------------------------------------------------------------------------- one point
def run_point(method: str, image: np.ndarray, mask, image_name: str, snrs, cbr: float,
              channel: str, link: str, trial: int, seed: int, keep_recon_snrs=(), budget: str = "codec",
              random_codecs: bool = False, metrics: bool = True):
    """All rows of one (method, image, trial, cbr) for every SNR in ``snrs``; ``budget``: what
    ``cbr`` fixes (``BUDGETS``); ``random_codecs``: neural methods use untrained codecs
    (``neural_model(random_init=True)``; their rows' ``model_sha256`` says ``RANDOM_INIT_SHA``);
    ``metrics=False``: rows carry NaN PSNR/ROI-PSNR/MS-SSIM (callers that only need the received
    images, e.g. the nodule task, skip computing them).

    Returns ``(rows, recons)``: rows are dicts with the CSV columns; ``recons`` maps
    ``(snr_db, mcs)`` -> uint8 image for the SNRs in ``keep_recon_snrs`` (montage).
    """
    check_method(method)
    check_budget(budget)
    image = np.ascontiguousarray(image, dtype=np.uint8)
    mask = None if mask is None else np.asarray(mask, bool)
    lk = get_link(link, channel)
    rows, recons = [], {}
    n_pix = image.size
    base = dict(method=method, cbr=float(cbr), channel=channel, link=link, trial=int(trial), image=image_name)

    def emit(snr_db, mcs, recon, ok, cbr_total, cbr_air, nbytes, model_sha256=""):
        m = _metrics(image, recon, mask) if metrics else dict.fromkeys(("psnr", "roi_psnr", "ms_ssim"), math.nan)
        rows.append(dict(base, snr_db=float(snr_db), mcs=mcs, psnr=m["psnr"], roi_psnr=m["roi_psnr"],
                         ms_ssim=m["ms_ssim"], cbr_total=cbr_total, cbr_air=cbr_air, decode_ok=bool(ok),
                         source_bytes=nbytes, model_sha256=model_sha256))
        if any(abs(snr_db - s) < 1e-9 for s in keep_recon_snrs):
            recons[(float(snr_db), mcs)] = recon

    for snr_db in snrs:
        # the air budget's payload depends on the SNR (header format under header_mcs=auto)
        n_sym = None if method in NEURAL else symbol_budget(cbr, image.shape, lk, budget, snr_db)
        seed_words = chan.channel_seed(seed, image_name, snr_db, trial)
        if method in NEURAL:
            model = neural_model(method, random_codecs)
            recon, ok, cbr_total, cbr_air = neural_point(model.codec, image, mask, snr_db, cbr, lk, seed_words, budget)
            emit(snr_db, "", recon, ok, cbr_total, cbr_air, 0, model.sha256)
        elif method in CAPACITY:
            recon, ok, nbytes = capacity_point(image, mask, CAPACITY[method], snr_db, cbr, lk, n_sym)
            emit(snr_db, "", recon, ok, n_sym / n_pix, air_cbr(lk, n_sym, 0, n_pix, snr_db), nbytes)
        elif method in ENVELOPE:
            from .envelope import envelope_point

            recon, ok, nbytes, picked = envelope_point(image, mask, snr_db, n_sym, lk, seed_words)
            emit(snr_db, picked, recon, ok, n_sym / n_pix, air_cbr(lk, n_sym, 0, n_pix, snr_db), nbytes)
        elif method in HYBRID:
            refiner = hybrid_refiner(HYBRID_REFINER[method]) if method in HYBRID_REFINER else None
            sha = "" if refiner is None else refiner.sha256
            if lk.name == "symbol":
                from ..codec.hybrid import sweep_point

                split = hybrid_split(method, snr_db, n_sym / n_pix)
                recon, ok, nbytes, picked, _ = sweep_point(image, mask, snr_db, n_sym, lk, seed_words, split,
                                                           refiner=refiner)
                emit(snr_db, picked, recon, ok, n_sym / n_pix, math.nan, nbytes, sha)
            elif method in SYMBOL_LINK_ONLY:
                raise InputError(f"method {method} runs on --link symbol only")
            else:
                recon, ok, cbr_total, cbr_air, nbytes, picked = hybrid_air_point(
                    method, refiner, image, mask, snr_db, cbr, lk, seed_words, budget)
                emit(snr_db, picked, recon, ok, cbr_total, cbr_air, nbytes, sha)
        else:
            for mcs in MCS_TABLE:
                recon, ok, nbytes, used = digital_mcs(image, mask, DIGITAL[method], mcs, snr_db, cbr, lk, seed_words,
                                                      n_sym=n_sym)
                air = air_cbr(lk, used, 0, n_pix, snr_db)
                if not used:   # an MCS that sends nothing sends no burst either (NaN stays NaN)
                    air *= 0.0
                emit(snr_db, mcs.name, recon, ok, used / n_pix, air, nbytes)
    return rows, recons
