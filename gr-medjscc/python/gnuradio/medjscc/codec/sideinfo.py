"""Codec side information: what the receiver needs besides the analog symbols.

It travels *digitally* (inside the PHY frame headers, CRC-protected). Layout, in bits::

    [version:3][alloc_mode:2][has_mask:1][log2 rate_block:2]  8 bits
    [power code:16]                                          (version 2 only)
    [rate indices ...] zero-padded to a byte boundary        (alloc_mode 1 or 2 only)
    [ROI grid mask, roi.sideinfo.encode_mask bytes]          (has_mask only)

* alloc_mode 0: fixed length, no rate indices (the receiver derives the allocation from the
  symbol count); 1: raw ``index_bits``-bit rate indices per allocation cell; 2: order-0
  Exp-Golomb code of the zig-zag delta to the previous cell in raster order; 3: adaptive
  arithmetic code of the median-predicted residuals (``rangecoder``). The shortest is sent.
* ``rate_block``: allocation cell = rate_block x rate_block latent positions (1, 2, 4 or 8);
  the encoder picks coarser cells when the budget is small so the side info stays a few %.
* version 2 carries the per-image power-normalisation factor (``linear_path`` models: the
  decoder multiplies it back): log2(power) in 1/512 steps, offset 32768. The encoder divides by
  the *quantised* power, so both ends use the same number (average power within 0.07% of 1).
* version 3 adds an 8-bit repeat code after the power code, version 4 carries the repeat code
  alone (no power code): the stream repeats its first symbols (``codec.repetition``).
* The size counted in the channel bandwidth ratio is ``8 * len(side_info)`` bits (padding
  included), carried at ``SIDE_INFO_BITS_PER_SYMBOL`` bits per complex symbol.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import MedJSCCError

VERSION = 1             # no power code
VERSION_POWER = 2       # with a 16-bit power code after the header byte
VERSION_POWER_REPEAT = 3  # power code, then an 8-bit repeat code
VERSION_REPEAT = 4      # an 8-bit repeat code, no power code
# version -> (has power code, has repeat code)
_VERSION_FIELDS = {VERSION: (False, False), VERSION_POWER: (True, False),
                   VERSION_POWER_REPEAT: (True, True), VERSION_REPEAT: (False, True)}
POWER_STEPS_PER_OCTAVE = 512
POWER_CODE_OFFSET = 32768
MODE_FIXED, MODE_RAW, MODE_EXPGOLOMB, MODE_AC = 0, 1, 2, 3
# Digital rate of the side info: QPSK with a rate-1/2 code = 1 bit per complex symbol.
SIDE_INFO_BITS_PER_SYMBOL = 1.0


class _Bits:
    def __init__(self):
        self.bits: list[int] = []

    def put(self, value: int, n: int):
        for i in range(n - 1, -1, -1):
            self.bits.append((value >> i) & 1)

    def put_expgolomb(self, value: int):
        v = value + 1
        n = v.bit_length()
        self.put(0, n - 1)
        self.put(v, n)

    def to_bytes(self) -> bytes:
        return np.packbits(np.array(self.bits, dtype=np.uint8)).tobytes() if self.bits else b""


class _Reader:
    def __init__(self, data: bytes):
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)) if data else np.zeros(0, np.uint8)
        self.pos = 0

    def get(self, n: int) -> int:
        if self.pos + n > len(self.bits):
            raise MedJSCCError("codec side info truncated")
        v = 0
        for b in self.bits[self.pos:self.pos + n]:
            v = (v << 1) | int(b)
        self.pos += n
        return v

    def get_expgolomb(self) -> int:
        zeros = 0
        while self.get(1) == 0:
            zeros += 1
            if zeros > 24:
                raise MedJSCCError("codec side info: malformed Exp-Golomb code")
        return ((1 << zeros) | self.get(zeros)) - 1

    def byte_pos(self) -> int:
        return -(-self.pos // 8)


def _zigzag(d: int) -> int:
    return 2 * d if d >= 0 else -2 * d - 1


def _unzigzag(u: int) -> int:
    return u // 2 if u % 2 == 0 else -(u + 1) // 2


def index_bits(n_levels: int) -> int:
    return max(1, math.ceil(math.log2(n_levels)))


def _rate_payload(rate_idx: np.ndarray, n_levels: int) -> tuple[int, bytes]:
    flat = [int(v) for v in np.asarray(rate_idx).reshape(-1)]
    raw = _Bits()
    nb = index_bits(n_levels)
    for v in flat:
        raw.put(v, nb)
    eg = _Bits()
    prev = 0
    for v in flat:
        eg.put_expgolomb(_zigzag(v - prev))
        prev = v
    from .rangecoder import encode_map

    ac = _Bits()
    ac.bits = encode_map(np.asarray(rate_idx), n_levels)
    best = min((len(raw.bits), MODE_RAW, raw), (len(eg.bits), MODE_EXPGOLOMB, eg), (len(ac.bits), MODE_AC, ac),
               key=lambda t: (-(-t[0] // 8), t[1]))
    return best[1], best[2].to_bytes()


BLOCK_CODES = {1: 0, 2: 1, 4: 2, 8: 3}


def power_code(power: float) -> int:
    """16-bit code of a positive power (log2 domain, 1/512-octave steps, clipped)."""
    if not (power > 0 and math.isfinite(power)):
        raise MedJSCCError(f"signal power must be positive and finite, got {power!r}")
    return int(min(max(round(math.log2(power) * POWER_STEPS_PER_OCTAVE) + POWER_CODE_OFFSET, 0), 65535))


def power_from_code(code: int) -> float:
    return 2.0 ** ((int(code) - POWER_CODE_OFFSET) / POWER_STEPS_PER_OCTAVE)


def _fields_of(data: bytes) -> tuple[bool, bool, int]:
    """(has power code, has repeat code, bytes before the rate section) of a side-info block."""
    data = bytes(data)
    if not data:
        raise MedJSCCError("codec side info is empty")
    version = data[0] >> 5
    if version not in _VERSION_FIELDS:
        raise MedJSCCError(f"codec side info has unknown header byte 0x{data[0]:02x}")
    has_power, has_repeat = _VERSION_FIELDS[version]
    start = 1 + 2 * has_power + has_repeat
    if len(data) < start:
        raise MedJSCCError("codec side info truncated (power / repeat code)")
    return has_power, has_repeat, start


def power_code_of(data: bytes) -> int | None:
    """The power code of a side-info block, None when it has none (version 1 or 4)."""
    has_power, _, _ = _fields_of(data)
    data = bytes(data)
    return (data[1] << 8) | data[2] if has_power else None


def repeat_code_of(data: bytes) -> int:
    """The repeat code of a side-info block (0 = no symbol repeated)."""
    has_power, has_repeat, start = _fields_of(data)
    return bytes(data)[start - 1] if has_repeat else 0


def pack(rate_idx: np.ndarray | None, n_levels: int, mask_bytes: bytes | None, rate_block: int = 2,
         power_code: int | None = None, repeat_code: int = 0) -> bytes:
    """Serialise rate indices (None for fixed length), an encoded ROI grid mask (or None),
    for ``linear_path`` models the 16-bit power code, and a non-zero 8-bit repeat code."""
    if rate_block not in BLOCK_CODES:
        raise MedJSCCError(f"rate_block must be one of {sorted(BLOCK_CODES)}, got {rate_block}")
    if not 0 <= int(repeat_code) <= 255:
        raise MedJSCCError(f"repeat code must be in [0, 255], got {repeat_code}")
    mode, rate_bytes = (MODE_FIXED, b"") if rate_idx is None else _rate_payload(rate_idx, n_levels)
    version = {(False, False): VERSION, (True, False): VERSION_POWER, (True, True): VERSION_POWER_REPEAT,
               (False, True): VERSION_REPEAT}[(power_code is not None, bool(repeat_code))]
    header = (version << 5) | (mode << 3) | ((1 if mask_bytes is not None else 0) << 2) | BLOCK_CODES[rate_block]
    power = b"" if power_code is None else int(power_code).to_bytes(2, "big")
    repeat = bytes([int(repeat_code)]) if repeat_code else b""
    return bytes([header]) + power + repeat + rate_bytes + (mask_bytes or b"")


def rate_block_of(data: bytes) -> int:
    """Allocation cell size signalled in a side-info block."""
    if not data:
        raise MedJSCCError("codec side info is empty")
    return 1 << (bytes(data)[0] & 0x3)


def unpack(data: bytes, cell_shape: tuple[int, int], n_levels: int):
    """Inverse of ``pack``: returns (rate_idx or None, mask_bytes or None). Raises MedJSCCError
    on a malformed block. ``cell_shape`` is the allocation grid for ``rate_block_of(data)``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MedJSCCError(f"codec side info must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 1:
        raise MedJSCCError("codec side info is empty")
    header = data[0]
    mode, has_mask = (header >> 3) & 0x3, (header >> 2) & 0x1
    _, _, start = _fields_of(data)
    rest = data[start:]
    rate_idx = None
    if mode != MODE_FIXED:
        n = cell_shape[0] * cell_shape[1]
        rd = _Reader(rest)
        if mode == MODE_AC:
            from .rangecoder import decode_map

            # the arithmetic code is the rest of the rate section: its length is not stored,
            # so the mask (if any) is located by re-encoding the decoded map
            grid = decode_map(rd.bits, cell_shape, n_levels)
            vals = [int(v) for v in grid.reshape(-1)]
            from .rangecoder import encode_map

            rd.pos = len(encode_map(grid, n_levels))
        elif mode == MODE_RAW:
            vals = [rd.get(index_bits(n_levels)) for _ in range(n)]
        else:
            vals, prev = [], 0
            for _ in range(n):
                prev = prev + _unzigzag(rd.get_expgolomb())
                vals.append(prev)
        if min(vals) < 0 or max(vals) >= n_levels:
            raise MedJSCCError("codec side info: rate index out of range")
        rate_idx = np.array(vals, dtype=np.int64).reshape(cell_shape)
        rest = rest[rd.byte_pos():]
    mask_bytes = rest if has_mask else None
    if not has_mask and rest:
        raise MedJSCCError("codec side info has trailing bytes")
    return rate_idx, mask_bytes


def size_bits(side_info: bytes) -> int:
    return 8 * len(side_info)
