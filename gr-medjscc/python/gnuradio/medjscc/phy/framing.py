"""Split an image's codec symbols + side info into frames, and gather them back.

Three things make every frame stand on its own (a radio loses whole frames):

* **Interleaving.** The codec emits its symbols channel by channel (strong components first). Sent
  in that order, neighbours land on adjacent subcarriers and the first frame carries most of the
  power: a peaky signal that a DAC clips. A fixed permutation (it depends only on the symbol count
  and frame size, so both ends know it) deals every part of the image evenly over all frames and
  shuffles it over the subcarriers: even power per frame, Gaussian-like peaks, and a lost frame
  erases an even 1/frame_count of every codec channel instead of one block of the image.
* **Erasure-coded side info.** The side info (plus a CRC-16 that binds it to its nonce and
  image_id) is cut into K chunks of ``header_side_info_bytes`` and extended to one chunk per
  frame with a systematic Cauchy Reed-Solomon code over GF(256): *any* K received frames rebuild
  it. At least ``side_info_parity`` frames are parity (header-only frames are added when the
  payload needs fewer frames), so losing that many frames never loses the side info. A wrong
  rebuild (chunks of two transmissions, a corrupted chunk) fails the CRC and is reported as
  ``corrupt``, never decoded.
* **Self-describing headers.** Every header states the image's symbol count and the session
  nonce, so the receiver sizes and de-interleaves an image whose last frame is lost, and never
  merges two transmissions that reuse an image_id.
"""
from __future__ import annotations

import binascii
import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import MedJSCCError
from .csi import check_carrier_rank
from .header import MAX_CSI_TAG, MAX_FRAMES, MAX_IMAGE_SYMBOLS, MAX_SIDE_INFO, FrameHeader
from .params import OfdmParams

SIDE_CRC_BYTES = 2
MAX_SIDE_INFO_TRIES = 8     # chunk subsets tried when the side-info CRC fails
INTERLEAVER_SEED = 0x1A7E


# ============================================================================ interleaver
_PERM_CACHE: dict[tuple, np.ndarray] = {}


def interleaver(n: int, per: int, carrier_rank=None) -> np.ndarray:
    """Transmit order of ``n`` symbols in frames of ``per``: the sent sequence is
    ``symbols[interleaver(n, per)]``.

    Symbols are dealt to the frames in proportion to their sizes (symbol i goes to the frame whose
    share of the image is due next), so every frame carries the same mix of strong and weak codec
    channels (even power); inside each frame their order is a fixed pseudo-random shuffle (no two
    codec neighbours on adjacent subcarriers: Gaussian-like peaks).

    ``carrier_rank`` (the data-carrier positions 0..n_data-1 from the strongest to the weakest, fed
    back by the receiver: ``phy.csi``) replaces the shuffle: inside each frame the symbols, in
    stream order (strong components first), fill the strongest carrier's slots first (over the
    frame's OFDM symbols in a fixed pseudo-random order), then the next carrier's."""
    n, per = int(n), int(per)
    rank_key = None if carrier_rank is None else tuple(int(c) for c in carrier_rank)
    perm = _PERM_CACHE.get((n, per, rank_key))
    if perm is None:
        sizes = [min(per, n - f * per) for f in range(-(-n // per))]
        rng = np.random.default_rng([INTERLEAVER_SEED, n, per])
        due = np.concatenate([(np.arange(s) + 0.5) / s for s in sizes])      # slot t = f*per + j
        slot_of_symbol = np.argsort(due, kind="stable")
        if rank_key is None:
            within = [rng.permutation(s) for s in sizes]
        else:
            place = np.empty(len(rank_key), np.int64)     # carrier position -> its rank
            place[np.asarray(rank_key)] = np.arange(len(rank_key))
            # slot j of a frame rides data carrier j % n_data of OFDM symbol j // n_data
            within = [np.lexsort((rng.random(s), place[np.arange(s) % len(rank_key)])) for s in sizes]
        shuffled = np.concatenate([f * per + w for f, w in enumerate(within)])
        perm = np.empty(n, np.int64)
        perm[shuffled[slot_of_symbol]] = np.arange(n)
        if len(_PERM_CACHE) > 64:      # a handful of image sizes and rankings in practice
            _PERM_CACHE.clear()
        _PERM_CACHE[(n, per, rank_key)] = perm
    return perm


def deinterleave(sent: np.ndarray, per: int, fill=0, carrier_rank=None) -> np.ndarray:
    """Inverse of ``x[interleaver(n, per, carrier_rank)]`` for a received array in transmit order."""
    sent = np.asarray(sent)
    out = np.full(sent.shape, fill, dtype=sent.dtype)
    out[interleaver(sent.size, per, carrier_rank)] = sent
    return out


# ============================================================================ GF(256) erasure code
def _gf_tables():
    exp = np.zeros(512, np.int32)
    log = np.zeros(256, np.int32)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= 0x11D
    exp[255:510] = exp[:255]
    return exp, log


_EXP, _LOG = _gf_tables()


def _gf_mul(a, b):
    a = np.asarray(a, np.int32)
    b = np.asarray(b, np.int32)
    out = _EXP[(_LOG[a] + _LOG[b]) % 255]
    return np.where((a == 0) | (b == 0), 0, out).astype(np.uint8)


def _gf_inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("GF(256) inverse of 0")
    return int(_EXP[255 - _LOG[a]])


def _code_row(f: int, k: int) -> np.ndarray:
    """Generator row of frame ``f``: identity for the K data chunks, Cauchy 1/(x_j + y_i) after."""
    if f < k:
        row = np.zeros(k, np.uint8)
        row[f] = 1
        return row
    return np.array([_gf_inv((f) ^ i) for i in range(k)], np.uint8)   # x_j = f >= k > y_i = i


def erasure_encode(blob: bytes, k: int, n: int, chunk: int) -> list[bytes]:
    """``n`` chunks of ``chunk`` bytes; any ``k`` of them rebuild ``blob`` (<= k*chunk bytes)."""
    data = np.frombuffer(bytes(blob).ljust(k * chunk, b"\0"), np.uint8).reshape(k, chunk)
    out = []
    for f in range(n):
        row = _code_row(f, k)
        acc = np.zeros(chunk, np.uint8)
        for i in range(k):
            if row[i]:
                acc ^= _gf_mul(row[i], data[i])
        out.append(acc.tobytes())
    return out


def erasure_decode(chunks: dict[int, bytes], k: int, chunk: int) -> bytes | None:
    """``{frame index: chunk}`` -> the k*chunk data bytes, or None with fewer than k chunks."""
    if len(chunks) < k:
        return None
    use = sorted(chunks)[:k]          # data frames first: fewer operations
    A = np.array([_code_row(f, k) for f in use], np.uint8)
    R = np.array([np.frombuffer(chunks[f].ljust(chunk, b"\0")[:chunk], np.uint8) for f in use])
    for c in range(k):                # Gauss-Jordan over GF(256)
        piv = next(r for r in range(c, k) if A[r, c])     # a Cauchy-systematic matrix is invertible
        A[[c, piv]], R[[c, piv]] = A[[piv, c]], R[[piv, c]]
        inv = _gf_inv(int(A[c, c]))
        A[c], R[c] = _gf_mul(inv, A[c]), _gf_mul(inv, R[c])
        for r in range(k):
            if r != c and A[r, c]:
                f = int(A[r, c])
                A[r] ^= _gf_mul(f, A[c])
                R[r] ^= _gf_mul(f, R[c])
    return R.reshape(-1).tobytes()


def _side_crc(nonce: int, image_id: int, side_info: bytes) -> bytes:
    return binascii.crc_hqx(int(nonce).to_bytes(2, "big") + int(image_id).to_bytes(2, "big") + side_info,
                            0xFFFF).to_bytes(SIDE_CRC_BYTES, "big")


# ============================================================================ plan
@dataclass(frozen=True)
class FramePlan:
    payload_frames: int
    side_chunks: int      # K: chunks (= frames) needed to rebuild the side info
    frames: int

    @property
    def parity_frames(self) -> int:
        return self.frames - self.side_chunks if self.side_chunks else 0


def balanced_per(n_symbols: int, max_len: int) -> int:
    """Payload symbols per frame (the last frame may have fewer) when ``n_symbols`` are split over
    the fewest frames of at most ``max_len``, as evenly as possible. Even frames (no short runt
    frame at the end) let the interleaver deal consecutive symbols to different frames, which
    repeated symbols (``codec.repetition``) rely on, and give every frame the same share of the
    image. Both ends compute it from the symbol count every header states."""
    n, max_len = int(n_symbols), int(max_len)
    if n <= max_len:
        return max_len if n <= 0 else n
    return -(-n // -(-n // max_len))


def frame_plan(n_symbols: int, side_info_bytes: int, params: OfdmParams, per: int | None = None) -> FramePlan:
    p = params
    per = p.max_payload_len if per is None else int(per)
    n = int(n_symbols)
    pay = math.ceil(n / per) if n else 0
    C = p.header_side_info_bytes
    k = 0
    if side_info_bytes:
        if C == 0:
            raise MedJSCCError("side info given but header_side_info_bytes is 0")
        k = math.ceil((int(side_info_bytes) + SIDE_CRC_BYTES) / C)
    frames = max(pay, k + p.side_info_parity if k else 0, 1)
    if frames > MAX_FRAMES:
        raise MedJSCCError(f"image needs {frames} frames; at most {MAX_FRAMES} fit the header "
                           f"(raise symbols_per_frame or header_side_info_bytes)")
    return FramePlan(pay, k, frames)


def frame_image(image_id: int, symbols, side_info: bytes, params: OfdmParams | None = None,
                payload_per_frame: int | None = None, nonce: int = 0, carrier_rank=None,
                csi_tag: int = 0) -> list[tuple[FrameHeader, np.ndarray]]:
    """-> [(FrameHeader, complex64 payload)], one per frame, in order (seq = 0..frame_count-1).

    ``carrier_rank`` with its ``csi_tag`` (1..15, as the receiver issued them: ``phy.csi``) maps
    the strong codec symbols onto the strong carriers; None (tag 0) uses the fixed interleaver."""
    p = (params or OfdmParams()).validate()
    symbols = np.asarray(symbols, np.complex64).reshape(-1)
    side_info = bytes(side_info or b"")
    per = balanced_per(symbols.size, p.max_payload_len) if payload_per_frame is None else int(payload_per_frame)
    if not (1 <= per <= p.max_payload_len):
        raise MedJSCCError(f"payload_per_frame must be in [1, {p.max_payload_len}], got {per}")
    if not (0 <= int(image_id) <= 0xFFFF):
        raise MedJSCCError(f"image_id must be in [0, 65535], got {image_id}")
    if not (0 <= int(nonce) <= 0xFFFF):
        raise MedJSCCError(f"nonce must be in [0, 65535], got {nonce}")
    if len(side_info) > MAX_SIDE_INFO:
        raise MedJSCCError(f"side info has {len(side_info)} bytes; at most {MAX_SIDE_INFO} fit the header field")
    if symbols.size > MAX_IMAGE_SYMBOLS:
        raise MedJSCCError(f"image has {symbols.size} symbols; at most {MAX_IMAGE_SYMBOLS} fit the header field")
    if carrier_rank is not None:
        carrier_rank = check_carrier_rank(carrier_rank, p.n_data_carriers)
        if not p.interleave:
            raise MedJSCCError("a carrier ranking needs the interleaver (interleave=True)")
        if not (1 <= int(csi_tag) <= MAX_CSI_TAG):
            raise MedJSCCError(f"csi_tag must be in [1, {MAX_CSI_TAG}] with a carrier ranking, got {csi_tag}")
    elif int(csi_tag):
        raise MedJSCCError(f"csi_tag {csi_tag} given without its carrier ranking")
    plan = frame_plan(symbols.size, len(side_info), p, per)
    if p.interleave and symbols.size:
        symbols = symbols[interleaver(symbols.size, per, carrier_rank)]
    C = p.header_side_info_bytes
    chunks = [b""] * plan.frames
    if side_info:
        blob = side_info + _side_crc(nonce, image_id, side_info)
        chunks = erasure_encode(blob, plan.side_chunks, plan.frames, C)
    frames = []
    for i in range(plan.frames):
        pay = symbols[i * per: (i + 1) * per]
        hdr = FrameHeader(seq=i, image_id=int(image_id), frame_count=plan.frames, payload_len=int(pay.size),
                          side_info_chunk=chunks[i], side_info_total=len(side_info), nonce=int(nonce),
                          n_symbols=int(symbols.size), csi_tag=int(csi_tag))
        frames.append((hdr, pay.copy()))
    return frames


# ============================================================================ receive side
SIDE_OK, SIDE_NONE, SIDE_MISSING, SIDE_CORRUPT = "ok", "none", "missing", "corrupt"


@dataclass
class AssembledImage:
    image_id: int
    symbols: np.ndarray          # complex64, zeros where lost (codec order)
    erased: np.ndarray           # bool, True where lost
    side_info: bytes | None      # None unless side_info_status is "ok"
    frames_received: int
    frame_count: int
    # float32 per symbol 1/SNR_i after equalisation (= the ZF noise variance; inf where erased),
    # if the frames had it
    noise_var: np.ndarray | None = None
    side_info_status: str = SIDE_NONE     # ok | none (image sent without) | missing | corrupt
    nonce: int = 0
    csi_tag: int = 0                      # the carrier mapping the frames state (0: fixed interleaver)
    # False when the frames name a carrier ranking this receiver does not know (the symbols stay
    # in transmit order: never decode them)
    mapping_known: bool = True

    def as_tuple(self):
        return self.symbols, self.erased, self.side_info


class ImageAssembler:
    """Collect frames of one or more images; duplicates, reordering and losses are tolerated.

    ``add(frame)`` takes an ``RxFrame`` (or ``add(header, payload)``); frames without a valid
    header are ignored. Images are keyed by (nonce, image_id): frames of a restarted transmitter
    that reuses an image_id form a separate image. ``assemble(key)`` (key = image_id, meaning the
    newest session with that id, or a (nonce, image_id) tuple) returns an ``AssembledImage``.
    ``n_symbols`` sizes the output when no received header states it (frames of old transmitters).
    ``carrier_ranks``: the receiver's table {csi_tag: carrier ranking} of the rankings it fed back
    (``phy.csi``; the caller may keep adding to it), used for images whose headers name a tag.
    """

    def __init__(self, params: OfdmParams | None = None, payload_per_frame: int | None = None,
                 carrier_ranks: dict | None = None):
        self.params = (params or OfdmParams()).validate()
        # frames of ``per`` symbols (the sender's payload_per_frame) or, when None, each image
        # split evenly (``balanced_per`` of its stated size; ``per`` = the longest payload)
        self.balanced = payload_per_frame is None
        self.per = self.params.max_payload_len if payload_per_frame is None else int(payload_per_frame)
        self._images: dict[tuple[int, int], dict] = {}
        self.carrier_ranks = carrier_ranks if carrier_ranks is not None else {}

    def add(self, frame, payload=None, noise_var=None, erased=None) -> bool:
        if payload is None:     # an RxFrame
            header = getattr(frame, "header", None)
            if header is None or not getattr(frame, "crc_ok", False):
                return False
            payload, erased = frame.payload, frame.erased
            noise_var = frame.inv_snr() if hasattr(frame, "inv_snr") else frame.noise_var
        else:
            header = frame
        if header is None or header.seq >= header.frame_count:
            return False
        payload = np.asarray(payload, np.complex64).reshape(-1)
        if payload.size != header.payload_len:
            return False
        key = (int(header.nonce), int(header.image_id))
        img = self._images.setdefault(key, {"frames": {}, "count": header.frame_count})
        if header.seq in img["frames"]:
            return False       # duplicate: keep the first copy
        img["count"] = max(img["count"], header.frame_count)
        img["frames"][header.seq] = (header, payload, noise_var, erased)
        return True

    def keys(self) -> list[tuple[int, int]]:
        return list(self._images)

    def image_ids(self) -> list[int]:
        return sorted({k[1] for k in self._images})

    def _key(self, key):
        if isinstance(key, tuple):
            return key
        matches = [k for k in self._images if k[1] == int(key)]
        return matches[-1] if matches else (None, int(key))

    def frame_count(self, key) -> int:
        img = self._images.get(self._key(key))
        return 0 if img is None else int(img["count"])

    def frames_received(self, key) -> int:
        img = self._images.get(self._key(key))
        return 0 if img is None else len(img["frames"])

    def is_complete(self, key) -> bool:
        img = self._images.get(self._key(key))
        return img is not None and len(img["frames"]) >= img["count"]

    def missing_frames(self, key) -> list[int]:
        """Sequence numbers of the frames of ``key`` not received (by the largest frame count seen)."""
        img = self._images.get(self._key(key))
        if img is None:
            return []
        return [s for s in range(int(img["count"])) if s not in img["frames"]]

    def discard(self, key) -> None:
        self._images.pop(self._key(key), None)

    def _size(self, frames, count, n_symbols):
        stated = [h.n_symbols for h, *_r in frames.values() if h.n_symbols]
        if stated:
            return max(set(stated), key=stated.count)
        if n_symbols is not None:
            return int(n_symbols)
        per = self.per
        # all frames but the last are full; the last one's length is known only if received
        last = frames.get(count - 1)
        if last is not None:
            return (count - 1) * per + last[0].payload_len
        ends = [s * per + h.payload_len for s, (h, *_r) in frames.items()]
        if any(h.payload_len < per for h, *_r in frames.values()):   # payload ended inside a received frame
            return max(ends)
        return count * per

    def _side_info(self, frames, key):
        totals = {h.side_info_total for h, *_r in frames.values()}
        if totals == {0}:
            return None, SIDE_NONE
        if len(totals) != 1:
            return None, SIDE_CORRUPT
        total = totals.pop()
        C = self.params.header_side_info_bytes
        if not C:
            return None, SIDE_MISSING
        k = math.ceil((total + SIDE_CRC_BYTES) / C)
        chunks = {s: h.side_info_chunk for s, (h, *_r) in frames.items()}
        if len(chunks) < k:
            return None, SIDE_MISSING
        # the first k chunks, then other subsets while the CRC fails: a chunk corrupted under a
        # valid header CRC does not cost the side info when other frames carry enough of it
        # (a handful of tries: each wrong one passes the CRC-16 with probability 2^-16)
        for use in itertools.islice(itertools.combinations(sorted(chunks), k), MAX_SIDE_INFO_TRIES):
            blob = erasure_decode({s: chunks[s] for s in use}, k, C)
            side, crc = blob[:total], blob[total: total + SIDE_CRC_BYTES]
            if _side_crc(key[0] or 0, key[1], side) == crc:
                return side, SIDE_OK
        return None, SIDE_CORRUPT

    def assemble(self, key, n_symbols: int | None = None) -> AssembledImage:
        key = self._key(key)
        img = self._images.get(key)
        per = self.per
        if img is None:
            n = int(n_symbols or 0)
            return AssembledImage(key[1], np.zeros(n, np.complex64), np.ones(n, bool), None, 0, 0,
                                  side_info_status=SIDE_MISSING, nonce=key[0] or 0)
        frames, count = img["frames"], img["count"]
        n = int(self._size(frames, count, n_symbols))
        if self.balanced and any(h.n_symbols for h, *_r in frames.values()):
            per = balanced_per(n, self.per)
        symbols = np.zeros(n, np.complex64)
        erased = np.ones(n, bool)
        nvar = np.full(n, np.inf, np.float32)
        have_nv = False
        for seq, (hdr, pay, nv, er) in frames.items():
            a = seq * per
            b = min(a + pay.size, n)
            if b <= a:
                continue
            symbols[a:b] = pay[: b - a]
            erased[a:b] = False if er is None else np.asarray(er[: b - a], bool)
            if nv is not None and np.size(nv) == pay.size:
                nvar[a:b] = nv[: b - a]
                have_nv = True
        symbols[erased] = 0
        stated = any(h.n_symbols for h, *_r in frames.values())
        tags = [int(h.csi_tag) for h, *_r in frames.values()]
        tag = max(set(tags), key=tags.count) if tags else 0
        rank = self.carrier_ranks.get(tag) if tag else None
        known = not tag or rank is not None
        if self.params.interleave and n and (stated or n_symbols is not None) and known:
            # without a stated size (or the ranking) the permutation is unknown: the image stays
            # scrambled, and the caller sees it through the status below
            symbols, erased, nvar = (deinterleave(symbols, per, 0, rank), deinterleave(erased, per, True, rank),
                                     deinterleave(nvar, per, np.inf, rank))
        side_info, status = self._side_info(frames, key)
        return AssembledImage(key[1], symbols, erased, side_info, len(frames), count,
                              nvar if have_nv else None, status, key[0], tag, known)


def overhead_symbols(n_payload_symbols: int, side_info_bytes: int = 0, params: OfdmParams | None = None,
                     payload_per_frame: int | None = None, header_format: str | None = None) -> dict:
    """Channel uses of an image sent with ``frame_image``, split by kind.

    Everything is counted in complex time-domain samples (= complex channel uses) per the
    project's CBR convention: ``total`` includes preambles, headers, pilots, cyclic prefixes,
    guard/DC carriers and padding of the last payload symbol; ``overhead = total - payload``.
    CBR_total = ``total / n_pixels`` (see ``snr.cbr``). ``header_format``: the header format sent
    (None: the longest this configuration sends; ``params.tx_header_format(snr)`` gives the TX's).
    """
    p = (params or OfdmParams()).validate()
    n = int(n_payload_symbols)
    per = balanced_per(n, p.max_payload_len) if payload_per_frame is None else int(payload_per_frame)
    n_frames = frame_plan(n, side_info_bytes, p, per).frames
    lens = [min(per, max(0, n - i * per)) for i in range(n_frames)]
    total = sum(p.frame_len(ln, header_format) for ln in lens)
    n_hdr = p.n_header_symbols if header_format is None else p.header_symbols(header_format)
    pay_syms = sum(p.n_payload_symbols(ln) for ln in lens)
    ofdm_payload = pay_syms * p.symbol_len
    return {
        "frames": n_frames,
        "payload": n,
        "preamble": n_frames * p.preamble_len,
        "header": n_frames * n_hdr * p.symbol_len,
        "pilots": pay_syms * p.n_pilot_carriers,
        "cyclic_prefix": pay_syms * p.cp_len,
        "guard_and_padding": ofdm_payload - pay_syms * p.cp_len - pay_syms * p.n_pilot_carriers - n,
        "total": total,
        "overhead": total - n,
    }
