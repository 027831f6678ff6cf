"""Sweep method ``digital-envelope`` (issue #13): the digital reference a real link would field.

At each SNR the transmitter picks one MCS of the rate-matched family (``linkadapt``) by the rule
fitted on the validation split (highest MCS whose measured AWGN threshold + margin <= SNR;
``codes/mcs_rule.json``), and the source codec that rule file names for that MCS (the best of
JPEG2000, HEVC-intra and ROI-JPEG2000 on the validation images at that MCS's payload). Neither
choice looks at a test image or at the channel draw, and nothing about them is signalled: both
ends know the rule and the SNR. The payload is every information bit of the frame (headers are
rebuilt from templates, the payload delimits itself, the rest is padding), so every byte sent is
counted and every symbol of the budget is used. A frame with any failed codeword (or a decoded
word other than the sent one: what a CRC catches) fails the image: mid-grey, ``decode_ok=False``.

The row's ``mcs`` reads ``<mcs>+<codec>`` (e.g. ``qpsk-0.145+j2k-roi``). The thresholds are
measured on AWGN; on fading channels the same rule is applied as is.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import MedJSCCError
from . import linkadapt, qam, source

CODECS = ("j2k", "hevc", "j2k-roi")
SEP = "+"


@dataclass(frozen=True)
class Rule:
    margin_db: float
    thresholds: tuple          # ((mcs name, threshold dB), ...)
    codecs: tuple              # ((mcs name, codec), ...)

    def pick(self, snr_db: float) -> linkadapt.LaMcs:
        return linkadapt.pick(snr_db, self.margin_db, dict(self.thresholds))

    def codec(self, mcs_name: str) -> str:
        return dict(self.codecs).get(mcs_name, "j2k")


RULE_GLOB = "mcs_rule*.json"   # mcs_rule.json (fitted at CBR 1/16) and per-CBR fits beside it


@functools.lru_cache(maxsize=1)
def fitted_rule_files() -> tuple:
    """((fitted CBR, path), ...) of every shipped rule file (their ``fit.cbr``)."""
    out = []
    for path in sorted(linkadapt.RULE_FILE.parent.glob(RULE_GLOB)):
        data = linkadapt.read_fitted_json(str(path), "fit_mcs_margin.py")
        out.append((float(data["fit"]["cbr"]), path))
    if not out:   # let the reader name the missing default file
        linkadapt.read_fitted_json(str(linkadapt.RULE_FILE), "fit_mcs_margin.py")
    return tuple(out)


def rule_file(cbr: float | None = None):
    """The rule file fitted at the CBR nearest ``cbr`` (on a log scale); None: ``mcs_rule.json``.
    The margin is fitted per CBR because the frame's length (its codewords, the mother code the
    rate matching picks) moves the real threshold off the 4096-symbol one the table holds."""
    if cbr is None:
        return linkadapt.RULE_FILE
    if not cbr > 0:
        raise MedJSCCError(f"no MCS rule for CBR {cbr!r}")
    return min(fitted_rule_files(), key=lambda cp: (abs(np.log(cp[0] / cbr)), cp[0]))[1]


def load_rule(cbr: float | None = None) -> Rule:
    """The fitted rule: thresholds from ``mcs_thresholds.json``, margin and codecs from the rule
    file fitted at the CBR nearest ``cbr`` (None: ``mcs_rule.json``, fitted at 1/16)."""
    return _rule_from(str(rule_file(cbr)))


@functools.lru_cache(maxsize=8)
def _rule_from(path: str) -> Rule:
    data = linkadapt.read_fitted_json(path, "fit_mcs_margin.py")
    th = linkadapt.thresholds()
    return Rule(float(data["margin_db"]), tuple(sorted(th.items())), tuple(sorted(data.get("codec", {}).items())))


def label(mcs_name: str, codec: str) -> str:
    return f"{mcs_name}{SEP}{codec}"


def split_label(text: str) -> tuple[str, str]:
    mcs, _, codec = str(text).partition(SEP)
    return mcs, codec


def padding_bits(n: int) -> np.ndarray:
    return np.random.default_rng(n + 0xE17).integers(0, 2, n, dtype=np.uint8)


def send_frame(payload: bytes, mcs: linkadapt.LaMcs, n_sym: int, link, snr_db, seed_words, max_iter=40):
    """Send ``payload`` (padded to the frame's information bits) at ``mcs`` on ``n_sym`` symbols.

    Returns the received information bytes (payload + padding, as the receiver sees them) or None
    when the frame failed."""
    p = linkadapt.plan(mcs, n_sym)
    if p is None or 8 * len(payload) > p.info_bits:
        raise MedJSCCError(f"payload of {len(payload)} B does not fit MCS {mcs.name} on {n_sym} symbols")
    data_bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    bits = np.concatenate([data_bits, padding_bits(p.info_bits - data_bits.size)])
    x = p.encode(bits[None])[0]
    y, h, n0, erased = link.digital(x, snr_db, seed_words)
    llr = qam.demodulate_llr(y, mcs.modulation, n0, h)
    if erased is not None:
        llr = llr.reshape(-1, mcs.bits_per_symbol)
        llr[np.asarray(erased, bool)] = 0.0
        llr = llr.reshape(-1)
    rx, ok = p.decode(llr[None], bits[None], max_iter=max_iter)
    return np.packbits(rx[0]).tobytes() if ok[0] else None


def envelope_point(image, mask, snr_db, n_sym, link, seed_words, rule: Rule | None = None):
    """-> (recon uint8, decode_ok, source_bytes, row label ``mcs+codec``). The rule (default) is
    the one fitted at the CBR nearest ``n_sym`` per pixel."""
    rule = load_rule(n_sym / image.size) if rule is None else rule
    mcs = rule.pick(snr_db)
    codec = rule.codec(mcs.name)
    p = linkadapt.plan(mcs, n_sym)
    grey = source.grey_image(image.shape)
    if p is None:
        return grey, False, 0, label(mcs.name, codec)
    src = source.get_source_codec(codec) if codec not in _CODEC_CACHE else _CODEC_CACHE[codec]
    _CODEC_CACHE[codec] = src
    data = src.encode(image, p.payload_bytes, mask)
    if data is None:
        return grey, False, 0, label(mcs.name, codec)
    received = send_frame(data, mcs, n_sym, link, snr_db, seed_words)
    if received is None:
        return grey, False, len(data), label(mcs.name, codec)
    return src.decode(received, image.shape), True, len(data), label(mcs.name, codec)


_CODEC_CACHE: dict = {}   # per process: the source codecs keep rate-search memos


# ----------------------------------------------------------------------------- JSCC side info
# A neural codec's side info crosses the symbol link digitally too (issue #13): one frame of the
# family at a more robust MCS than the envelope's own (a short frame, and losing it loses the
# image), behind a length byte (the receiver needs its size; it is sent and counted).
SIDE_INFO_EXTRA_MARGIN_DB = 1.0


def side_info_mcs(snr_db: float, rule: Rule | None = None) -> linkadapt.LaMcs:
    rule = load_rule() if rule is None else rule
    return linkadapt.pick(snr_db, rule.margin_db + SIDE_INFO_EXTRA_MARGIN_DB, dict(rule.thresholds))


def _framed(side: bytes) -> bytes:
    n = len(side)
    if n >= 0xFFFF:
        raise MedJSCCError(f"side info of {n} B is too long for its length field")
    return (bytes([n]) if n < 0xFF else b"\xff" + n.to_bytes(2, "big")) + bytes(side)


def side_info_symbols(n_bytes: int, mcs: linkadapt.LaMcs) -> int:
    """Symbols of the frame that carries ``n_bytes`` of side info (length field included) at ``mcs``."""
    need = len(_framed(bytes(n_bytes)))
    n = max(1, int(8 * need / mcs.efficiency))
    while linkadapt.plan(mcs, n) is None or linkadapt.plan(mcs, n).payload_bytes < need:
        n += 1
    return n


def send_side_info(side: bytes, snr_db, link, seed_words, rule: Rule | None = None, channel_snr_db=None):
    """-> (received side info or None when its frame failed, symbols spent). Its channel draw is
    independent of the analog symbols' (an extra seed word). The MCS is the one for ``snr_db``
    (what the TX was told); the channel runs at ``channel_snr_db`` (default: the same)."""
    mcs = side_info_mcs(snr_db, rule)
    n = side_info_symbols(len(side), mcs)
    rx = send_frame(_framed(side), mcs, n, link, snr_db if channel_snr_db is None else channel_snr_db,
                    list(seed_words) + [0x51DE])
    if rx is None:
        return None, n
    size, start = (rx[0], 1) if rx[0] < 0xFF else (int.from_bytes(rx[1:3], "big"), 3)
    return bytes(rx[start:start + size]), n
