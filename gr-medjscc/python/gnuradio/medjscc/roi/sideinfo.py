"""ROI mask as side information: latent-grid reduction and a compact lossless code.

The transmitter's pixel mask is brought to the codec's latent grid (``mask_to_grid``), coded
with ``encode_mask`` and carried inside the codec's side info. The receiver calls
``decode_mask`` (or ``decode_mask_or_all_roi``, which never raises).

Bitstream (version 1), all sizes in bits::

    [mode:2][version:2][reserved:4] [crc8:8] [payload ...]

* mode 0: all cells False, mode 1: all cells True (no payload),
* mode 2: context-adaptive binary arithmetic code of the cells in raster order,
* mode 3: raw row-major bitmap (used when the arithmetic code would be longer).

The arithmetic coder models each cell with a 4-neighbour causal context (west, north-west,
north, north-east; outside the grid counts as False), i.e. 16 adaptive binary models with
Krichevsky-Trofimov-like counts, in the spirit of JBIG. Two lung regions on a 16x16 grid need
roughly 60-110 bits in total. The CRC-8 covers the grid shape and the decoded cells, and the
decoder re-encodes what it decoded: any corruption that changes the mask or the bitstream
raises ``MedJSCCError`` (a corrupted block can only slip through if it is another valid code
whose CRC also matches, probability ~1/256 for random damage; the frame CRC32 of the PHY
header is the first line of defence).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from ..arithcoder import ArithmeticDecoder, ArithmeticEncoder
from ..errors import InputError, MedJSCCError

__all__ = [
    "mask_to_grid", "grid_to_mask", "encode_mask", "decode_mask", "decode_mask_or_all_roi",
    "mask_bits", "default_grid",
]

log = logging.getLogger(__name__)

_VERSION = 1
_MODE_ZERO, _MODE_ONE, _MODE_AC, _MODE_RAW = 0, 1, 2, 3
_HEADER_BYTES = 2

# Context-adaptive binary models over the shared arithmetic coder (``..arithcoder``).
_MAX_TOTAL = 1 << 13   # counts are halved beyond this to stay adaptive and within precision
_COUNT_INC = 2         # counts start at 1 and grow by 2: KT estimator (n + 1/2) scaled by 2


def default_grid(shape, factor: int = 16) -> tuple[int, int]:
    """Latent grid for an image shape: one cell per ``factor`` x ``factor`` pixels (256 -> 16)."""
    h, w = int(shape[0]), int(shape[1])
    return max(1, -(-h // factor)), max(1, -(-w // factor))


def _check_mask(mask, name="mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise InputError(f"{name} must be a non-empty 2-D array, got shape {m.shape}")
    if m.dtype != np.bool_:
        if not np.issubdtype(m.dtype, np.number):
            raise InputError(f"{name} must be boolean or numeric, got dtype {m.dtype}")
        m = m > 0
    return m


def mask_to_grid(mask, grid=(16, 16), rule: str | float = "any") -> np.ndarray:
    """Reduce a pixel mask (bool HxW) to the latent grid (bool ``grid``).

    Each grid cell covers the pixel block ``[floor(i*H/h), floor((i+1)*H/h))`` (likewise for
    columns), so any H, W >= grid works. ``rule`` decides when a cell is ROI:

    * ``"any"`` (default): at least one ROI pixel. Conservative: every ROI pixel lies inside a
      protected cell, at the cost of a slightly larger ROI.
    * ``"majority"``: at least half of the cell's pixels are ROI.
    * a float ``t`` in (0, 1]: the ROI fraction of the cell is >= ``t``.
    """
    m = _check_mask(mask)
    gh, gw = int(grid[0]), int(grid[1])
    H, W = m.shape
    if gh < 1 or gw < 1:
        raise InputError(f"grid must be positive, got {grid}")
    if gh > H or gw > W:
        raise InputError(f"grid {grid} is finer than the mask {m.shape}")
    if rule == "any":
        threshold = None
    elif rule == "majority":
        threshold = 0.5
    elif isinstance(rule, (int, float)) and 0 < float(rule) <= 1:
        threshold = float(rule)
    else:
        raise InputError(f"mask_to_grid rule must be 'any', 'majority' or a float in (0, 1], got {rule!r}")
    r_edges = (np.arange(gh + 1) * H) // gh
    c_edges = (np.arange(gw + 1) * W) // gw
    # cell sums through a 2-D prefix sum (works for uneven cell sizes)
    integral = np.zeros((H + 1, W + 1), dtype=np.int64)
    integral[1:, 1:] = np.cumsum(np.cumsum(m, axis=0, dtype=np.int64), axis=1)
    sums = (integral[r_edges[1:]][:, c_edges[1:]] - integral[r_edges[:-1]][:, c_edges[1:]]
            - integral[r_edges[1:]][:, c_edges[:-1]] + integral[r_edges[:-1]][:, c_edges[:-1]])
    if threshold is None:
        return sums > 0
    areas = np.outer(np.diff(r_edges), np.diff(c_edges))
    return sums >= threshold * areas


def grid_to_mask(grid_mask, shape) -> np.ndarray:
    """Expand a grid mask back to pixels (inverse partition of ``mask_to_grid``)."""
    g = _check_mask(grid_mask, "grid_mask")
    H, W = int(shape[0]), int(shape[1])
    gh, gw = g.shape
    # same cell edges as mask_to_grid: pixel y lies in the last cell whose start is <= y
    rows = np.searchsorted((np.arange(gh) * H) // gh, np.arange(H), side="right") - 1
    cols = np.searchsorted((np.arange(gw) * W) // gw, np.arange(W), side="right") - 1
    return g[rows][:, cols]


# ----------------------------------------------------------------------------------------------
def _crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07, init 0), enough to flag a damaged mask block."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _mask_crc(g: np.ndarray) -> int:
    h, w = g.shape
    shape_bytes = int(h).to_bytes(2, "big") + int(w).to_bytes(2, "big")
    return _crc8(shape_bytes + np.packbits(g.reshape(-1)).tobytes())


def _contexts(g: np.ndarray, r: int, c: int, w: int) -> int:
    west = g[r, c - 1] if c > 0 else 0
    north = g[r - 1, c] if r > 0 else 0
    north_west = g[r - 1, c - 1] if r > 0 and c > 0 else 0
    north_east = g[r - 1, c + 1] if r > 0 and c + 1 < w else 0
    return int(west) | (int(north_west) << 1) | (int(north) << 2) | (int(north_east) << 3)


class _Model:
    """Adaptive binary probability per context."""

    def __init__(self, n_contexts=16):
        self.c0 = [1] * n_contexts
        self.c1 = [1] * n_contexts

    def probs(self, ctx):
        return self.c0[ctx], self.c0[ctx] + self.c1[ctx]

    def update(self, ctx, bit):
        if bit:
            self.c1[ctx] += _COUNT_INC
        else:
            self.c0[ctx] += _COUNT_INC
        if self.c0[ctx] + self.c1[ctx] > _MAX_TOTAL:
            self.c0[ctx] = (self.c0[ctx] + 1) // 2
            self.c1[ctx] = (self.c1[ctx] + 1) // 2


def _ac_encode(g: np.ndarray) -> bytes:
    h, w = g.shape
    model = _Model()
    coder = ArithmeticEncoder()
    for r in range(h):
        for c in range(w):
            ctx = _contexts(g, r, c, w)
            bit = int(g[r, c])
            c0, total = model.probs(ctx)
            coder.encode(c0 if bit else 0, total if bit else c0, total)   # 0 owns [0, c0)
            model.update(ctx, bit)
    bits = coder.finish_shortest()
    return np.packbits(np.array(bits, dtype=np.uint8)).tobytes() if bits else b""


def _ac_decode(payload: bytes, shape) -> np.ndarray:
    h, w = shape
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8)).tolist() if payload else []
    coder = ArithmeticDecoder(bits)
    g = np.zeros((h, w), dtype=np.bool_)
    model = _Model()
    for r in range(h):
        for c in range(w):
            ctx = _contexts(g, r, c, w)
            c0, total = model.probs(ctx)
            bit = int(coder.target(total) >= c0)
            coder.consume(c0 if bit else 0, total if bit else c0, total)
            g[r, c] = bit
            model.update(ctx, bit)
    return g


def encode_mask(grid_mask) -> bytes:
    """Lossless, compact code of a boolean grid mask (see the module docstring for the format).

    The grid shape is not stored: the receiver knows it from the image size (pass it to
    ``decode_mask``); it is covered by the CRC, so a shape mismatch is detected.
    """
    g = _check_mask(grid_mask, "grid_mask")
    if g.shape[0] > 0xFFFF or g.shape[1] > 0xFFFF:
        raise InputError(f"grid_mask too large: {g.shape}")
    # a codec's allocation plan codes the same grid several times per image (pure Python coder, ms)
    key = (g.shape, np.packbits(g.reshape(-1)).tobytes())
    code = _ENCODED.get(key)
    if code is None:
        code = _encode_mask(g)
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        _ENCODED[key] = code
    return code


_ENCODED: dict = {}     # (shape, packed cells) -> encode_mask bytes; entries are immutable
_ENCODED_MAX = 256


def _encode_mask(g: np.ndarray) -> bytes:
    crc = _mask_crc(g)
    if not g.any():
        mode, payload = _MODE_ZERO, b""
    elif g.all():
        mode, payload = _MODE_ONE, b""
    else:
        payload = _ac_encode(g)
        raw = np.packbits(g.reshape(-1)).tobytes()
        mode = _MODE_AC
        if len(raw) < len(payload):
            mode, payload = _MODE_RAW, raw
    header = bytes([(mode << 6) | (_VERSION << 4), crc])
    return header + payload


def decode_mask(data: bytes, shape) -> np.ndarray:
    """Decode ``encode_mask`` output for a grid of ``shape`` (h, w); raises ``MedJSCCError``
    when the block is damaged (bad header, CRC mismatch, non-canonical bitstream)."""
    try:
        h, w = int(shape[0]), int(shape[1])
    except (TypeError, ValueError, IndexError):
        raise InputError(f"mask shape must be (h, w), got {shape!r}") from None
    if h < 1 or w < 1:
        raise InputError(f"mask shape must be positive, got {shape!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MedJSCCError(f"ROI side info must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER_BYTES:
        raise MedJSCCError(f"ROI side info too short ({len(data)} bytes); corrupted")
    mode, version = data[0] >> 6, (data[0] >> 4) & 0x3
    if version != _VERSION or data[0] & 0x0F:
        raise MedJSCCError(f"ROI side info has unknown version/flags byte 0x{data[0]:02x}; corrupted")
    payload = data[_HEADER_BYTES:]
    if mode == _MODE_ZERO:
        g = np.zeros((h, w), dtype=np.bool_)
    elif mode == _MODE_ONE:
        g = np.ones((h, w), dtype=np.bool_)
    elif mode == _MODE_RAW:
        n = h * w
        if len(payload) != (n + 7) // 8:
            raise MedJSCCError(f"ROI side info raw block has {len(payload)} bytes, expected {(n + 7) // 8} for {h}x{w}")
        g = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[:n].astype(bool).reshape(h, w)
    else:
        g = _ac_decode(payload, (h, w))
    if (mode in (_MODE_ZERO, _MODE_ONE) and payload) or _mask_crc(g) != data[1]:
        raise MedJSCCError(f"ROI side info CRC mismatch for a {h}x{w} grid; corrupted or wrong shape")
    if mode == _MODE_AC and _ac_encode(g) != payload:
        raise MedJSCCError("ROI side info bitstream is not canonical; corrupted")
    if mode == _MODE_RAW and np.packbits(g.reshape(-1)).tobytes() != payload:
        raise MedJSCCError("ROI side info raw block has non-zero padding; corrupted")
    return g


def decode_mask_or_all_roi(data, shape) -> np.ndarray:
    """Receiver-side decode that never raises on damage: ``None`` (side-info CRC failed upstream)
    or a corrupted block gives an all-True mask (everything treated as ROI) and a warning."""
    h, w = int(shape[0]), int(shape[1])
    if data is None:
        reason = "ROI side info missing (CRC failed upstream)"
    else:
        try:
            return decode_mask(data, (h, w))
        except MedJSCCError as e:
            reason = str(e)
    msg = f"{reason}; treating the whole image as ROI"
    warnings.warn(msg, RuntimeWarning, stacklevel=2)
    log.warning(msg)
    return np.ones((h, w), dtype=np.bool_)


def mask_bits(grid_mask) -> int:
    """Size of ``encode_mask(grid_mask)`` in bits (header and CRC included)."""
    return 8 * len(encode_mask(grid_mask))
