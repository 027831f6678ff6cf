"""Digital frame header: fields + CRC32, K=7 rate-1/3 convolutional code, interleaved BPSK bits."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import MedJSCCError
from . import fec
from .params import OfdmParams

_FIELDS = struct.Struct(">HHHHHB")   # seq, image_id, frame_count, payload_len, side_info_total, chunk_len


@dataclass(frozen=True)
class FrameHeader:
    """One frame's header.

    ``seq`` is the frame's index within its image (0 .. frame_count-1); ``side_info_chunk`` is
    this frame's slice of the image's side info and ``side_info_total`` the whole side-info
    length, so a receiver knows which frames carried side info.
    """
    seq: int
    image_id: int
    frame_count: int
    payload_len: int
    side_info_chunk: bytes = b""
    side_info_total: int = 0

    def check(self, params: OfdmParams | None = None) -> None:
        for name in ("seq", "image_id", "frame_count", "payload_len", "side_info_total"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not (0 <= int(v) <= 0xFFFF):
                raise MedJSCCError(f"FrameHeader.{name} must be an integer in [0, 65535], got {v!r}")
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
        body = _FIELDS.pack(int(self.seq), int(self.image_id), int(self.frame_count),
                            int(self.payload_len), int(self.side_info_total), len(chunk))
        body += chunk.ljust(params.header_side_info_bytes, b"\0")
        return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    @classmethod
    def from_bytes(cls, data: bytes, params: OfdmParams) -> "FrameHeader | None":
        if len(data) != params.header_bytes:
            return None
        body, crc = data[:-4], struct.unpack(">I", data[-4:])[0]
        if zlib.crc32(body) & 0xFFFFFFFF != crc:
            return None
        seq, image_id, count, plen, total, clen = _FIELDS.unpack(body[: _FIELDS.size])
        if clen > params.header_side_info_bytes or plen > params.max_payload_len:
            return None
        chunk = body[_FIELDS.size: _FIELDS.size + clen]
        return cls(seq, image_id, count, plen, bytes(chunk), total)

    # ------------------------------------------------------------ coded bits
    def to_bits(self, params: OfdmParams) -> np.ndarray:
        """Coded, interleaved header bits filling ``n_header_symbols * n_data_carriers`` slots."""
        info = np.unpackbits(np.frombuffer(self.to_bytes(params), np.uint8))
        coded = fec.conv_encode(info)
        return coded[_slot_map(params)]

    @classmethod
    def from_bits(cls, llr: np.ndarray, params: OfdmParams) -> "FrameHeader | None":
        """Decode soft bits (LLR, > 0 means 0; hard 0/1 bits are accepted too). None on CRC failure."""
        llr = np.asarray(llr)
        n_slots = params.n_header_symbols * params.n_data_carriers
        if llr.size != n_slots or not np.all(np.isfinite(llr)):
            return None
        if llr.dtype.kind in "ub" or (llr.dtype.kind == "i"):
            llr = 1.0 - 2.0 * llr.astype(np.float64)     # hard bits -> +-1
        n_coded = params.header_coded_bits
        # repeated slots (fill) are soft-combined
        soft = np.bincount(_slot_map(params), weights=llr.astype(np.float64), minlength=n_coded)
        bits = fec.viterbi_decode(soft, 8 * params.header_bytes)
        return cls.from_bytes(np.packbits(bits).tobytes(), params)


_MAP_CACHE: dict = {}


def _slot_map(params: OfdmParams) -> np.ndarray:
    """coded-bit index carried by each BPSK slot (symbol-major). Slots beyond the code length
    repeat coded bits; a fixed permutation spreads neighbouring coded bits over carriers/symbols."""
    key = (params.n_header_symbols, params.n_data_carriers, params.header_coded_bits)
    m = _MAP_CACHE.get(key)
    if m is None:
        n_slots = params.n_header_symbols * params.n_data_carriers
        src = np.arange(n_slots) % params.header_coded_bits
        perm = np.random.default_rng(0xC0DE).permutation(n_slots)
        m = _MAP_CACHE[key] = src[perm]
    return m
