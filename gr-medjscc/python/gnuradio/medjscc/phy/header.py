"""Digital frame header: fields + CRC32, K=7 convolutional code, interleaved bits on the data carriers.

Two formats (``params.HEADER_FORMATS``): ``robust`` sends all three outputs of the rate-1/3 mother
code as BPSK; ``dense`` sends two of them (the rate-1/2 802.11 code) as Gray QPSK, a third of the
symbols for about 6 dB more required SNR. The receiver decodes either with the same Viterbi
decoder (unsent outputs count as erasures); the CRC tells which format arrived.

Fields (13 bytes, big-endian), then ``header_side_info_bytes`` of side-info chunk, then CRC32::

    nonce u16        transmission session: a restarted transmitter draws a new one, so frames of
                     two sessions that reuse an image_id never merge into one image
    image_id u16
    seq u8           this frame's index within its image (0 .. frame_count-1)
    frame_count u8   frames of the image (payload frames + header-only side-info frames)
    payload_len u16  analog symbols in this frame
    csi_tag u4 | n_symbols u20
                     csi_tag: the carrier mapping the image was sent with (0: the fixed interleaver;
                     1-15: a carrier ranking the receiver fed back, see ``phy.csi``); n_symbols:
                     analog symbols of the whole image (sizes and de-interleaves it even when the
                     last frame is lost)
    side_info_total u8   side-info bytes of the image (its erasure-coded chunks ride in the headers)
    chunk_len u8     bytes of side-info chunk in this header
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import MedJSCCError
from . import fec
from .params import HEADER_FORMATS, OfdmParams


def default_format(params: OfdmParams) -> str:
    """The header format sent when nothing says otherwise (``auto`` without an SNR: robust)."""
    return "dense" if params.header_mcs == "dense" else "robust"


def slot_values(bits: np.ndarray, fmt: str) -> np.ndarray:
    """Header slot bits -> complex data-carrier values, unit power (BPSK, or Gray QPSK pairs)."""
    b = 1.0 - 2.0 * np.asarray(bits, np.float64)
    if HEADER_FORMATS[fmt].bits_per_carrier == 1:
        return b.astype(np.complex128)
    return (b[0::2] + 1j * b[1::2]) / np.sqrt(2.0)

# nonce, image_id, seq, frame_count, payload_len, n_symbols, side_info_total, chunk_len
_FIELDS = struct.Struct(">HHBBH3sBB")
FIELD_BYTES = _FIELDS.size             # 13
MAX_FRAMES = 0xFF
MAX_SIDE_INFO = 0xFF
MAX_IMAGE_SYMBOLS = 0xFFFFF          # 20 bits: 255 frames of the default layout need 19
MAX_CSI_TAG = 0xF

_LIMITS = {"seq": MAX_FRAMES - 1, "image_id": 0xFFFF, "frame_count": MAX_FRAMES, "payload_len": 0xFFFF,
           "side_info_total": MAX_SIDE_INFO, "nonce": 0xFFFF, "n_symbols": MAX_IMAGE_SYMBOLS,
           "csi_tag": MAX_CSI_TAG}


@dataclass(frozen=True)
class FrameHeader:
    """One frame's header.

    ``side_info_chunk`` is this frame's erasure-coded share of the image's side info (see
    ``framing``); ``side_info_total`` the side-info length in bytes. ``n_symbols`` is the image's
    analog symbol count (0 = not stated: the receiver infers it from the frames it got).
    ``csi_tag`` names the carrier mapping of the payload (0 = the fixed interleaver).
    """
    seq: int
    image_id: int
    frame_count: int
    payload_len: int
    side_info_chunk: bytes = b""
    side_info_total: int = 0
    nonce: int = 0
    n_symbols: int = 0
    csi_tag: int = 0

    def check(self, params: OfdmParams | None = None) -> None:
        for name, hi in _LIMITS.items():
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not (0 <= int(v) <= hi):
                raise MedJSCCError(f"FrameHeader.{name} must be an integer in [0, {hi}], got {v!r}")
        if self.seq >= self.frame_count:
            raise MedJSCCError(f"FrameHeader.seq {self.seq} must be below frame_count {self.frame_count}")
        if not isinstance(self.side_info_chunk, (bytes, bytearray)):
            raise MedJSCCError("FrameHeader.side_info_chunk must be bytes")
        if params is not None:
            if len(self.side_info_chunk) > params.header_side_info_bytes:
                raise MedJSCCError(f"FrameHeader.side_info_chunk has {len(self.side_info_chunk)} bytes; "
                                   f"params.header_side_info_bytes is {params.header_side_info_bytes}")
            if self.payload_len > params.max_payload_len:
                raise MedJSCCError(f"FrameHeader.payload_len {self.payload_len} exceeds "
                                   f"symbols_per_frame*n_data_carriers = {params.max_payload_len}")

    # ------------------------------------------------------------ bytes
    def to_bytes(self, params: OfdmParams) -> bytes:
        self.check(params)
        chunk = bytes(self.side_info_chunk)
        body = _FIELDS.pack(int(self.nonce), int(self.image_id), int(self.seq), int(self.frame_count),
                            int(self.payload_len), (int(self.csi_tag) << 20 | int(self.n_symbols)).to_bytes(3, "big"),
                            int(self.side_info_total), len(chunk))
        body += chunk.ljust(params.header_side_info_bytes, b"\0")
        return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    @classmethod
    def from_bytes(cls, data: bytes, params: OfdmParams) -> "FrameHeader | None":
        """Parse and range-check; None on a CRC failure or a field no transmitter would send."""
        if len(data) != params.header_bytes:
            return None
        body, crc = data[:-4], struct.unpack(">I", data[-4:])[0]
        if zlib.crc32(body) & 0xFFFFFFFF != crc:
            return None
        nonce, image_id, seq, count, plen, nsym, total, clen = _FIELDS.unpack(body[:FIELD_BYTES])
        nsym = int.from_bytes(nsym, "big")
        tag, nsym = nsym >> 20, nsym & MAX_IMAGE_SYMBOLS
        # checked before anything is allocated from them (a CRC-valid hostile header stays harmless)
        if plen > params.max_payload_len or count == 0 or seq >= count or clen > params.header_side_info_bytes:
            return None
        if nsym and (plen > nsym or nsym > count * params.max_payload_len):
            return None
        chunk = body[FIELD_BYTES: FIELD_BYTES + clen]
        return cls(seq, image_id, count, plen, bytes(chunk), total, nonce, nsym, tag)

    # ------------------------------------------------------------ coded bits
    def to_bits(self, params: OfdmParams, fmt: str | None = None) -> np.ndarray:
        """Coded, interleaved, scrambled header bits filling the ``n_slots(params, fmt)`` slots
        (``bits_per_carrier`` per data carrier of ``header_symbols(fmt)`` symbols)."""
        fmt = fmt or default_format(params)
        info = np.unpackbits(np.frombuffer(self.to_bytes(params), np.uint8))
        coded = fec.conv_encode(info)
        return coded[_slot_map(params, fmt)] ^ header_scrambler(params, fmt)

    @classmethod
    def from_bits(cls, llr: np.ndarray, params: OfdmParams, fmt: str | None = None) -> "FrameHeader | None":
        """Decode soft bits (LLR, > 0 means 0; hard 0/1 bits are accepted too). None on CRC failure."""
        fmt = fmt or default_format(params)
        llr = np.asarray(llr)
        if llr.size != n_slots(params, fmt) or not np.all(np.isfinite(llr)):
            return None
        if llr.dtype.kind in "ub" or (llr.dtype.kind == "i"):
            llr = 1.0 - 2.0 * llr.astype(np.float64)     # hard bits -> +-1
        llr = llr * (1.0 - 2.0 * header_scrambler(params, fmt))
        # repeated slots (fill) are soft-combined; outputs a format does not send stay 0 (erased)
        soft = np.bincount(_slot_map(params, fmt), weights=llr.astype(np.float64), minlength=params.header_coded_bits)
        bits = fec.viterbi_decode(soft, 8 * params.header_bytes)
        return cls.from_bytes(np.packbits(bits).tobytes(), params)


def n_slots(params: OfdmParams, fmt: str = "robust") -> int:
    """Coded-bit slots of a header of format ``fmt``."""
    return params.header_symbols(fmt) * params.n_data_carriers * HEADER_FORMATS[fmt].bits_per_carrier


_MAP_CACHE: dict = {}


def _slot_map(params: OfdmParams, fmt: str = "robust") -> np.ndarray:
    """Mother-code bit index carried by each slot (symbol-major; QPSK: I then Q). Slots beyond the
    sent bits repeat them; a fixed permutation spreads neighbouring coded bits over
    carriers/symbols."""
    outputs = HEADER_FORMATS[fmt].outputs
    n = n_slots(params, fmt)
    key = (n, params.header_coded_bits, outputs)
    m = _MAP_CACHE.get(key)
    if m is None:
        sent = params.header_sent_bits(fmt)
        src = np.arange(n) % sent
        # sent bit d is output outputs[d % r] of trellis step d // r (r = outputs per step)
        r = len(outputs)
        src = 3 * (src // r) + np.asarray(outputs)[src % r]
        perm = np.random.default_rng(0xC0DE).permutation(n)
        m = _MAP_CACHE[key] = src[perm]
    return m


_SCRAMBLER_CACHE: dict = {}


def header_scrambler(params: OfdmParams, fmt: str = "robust") -> np.ndarray:
    """Fixed pseudo-random bits XORed onto the header slots (uint8 0/1, one per slot). Without it
    the zero fields and padding code to runs of equal BPSK values: OFDM symbols with all carriers
    in phase, a 16 dB peak that a DAC clips."""
    n_slots_ = n_slots(params, fmt)
    s = _SCRAMBLER_CACHE.get(n_slots_)
    if s is None:
        s = _SCRAMBLER_CACHE[n_slots_] = np.random.default_rng(0x5C4A).integers(0, 2, n_slots_).astype(np.uint8)
    return s
