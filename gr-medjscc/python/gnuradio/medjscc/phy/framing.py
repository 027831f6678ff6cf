"""Split an image's codec symbols + side info into frames, and gather them back.

Side info rides in the (CRC-protected, digitally coded) headers: frame ``i`` carries bytes
``[i*C, (i+1)*C)`` of it (C = ``params.header_side_info_bytes``) and every header states the total
length, so the receiver knows exactly which frames it needs for the side info. When the side info
needs more frames than the payload does, extra header-only frames (payload_len 0) are sent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import MedJSCCError
from .header import FrameHeader
from .params import OfdmParams


def frame_image(image_id: int, symbols, side_info: bytes, params: OfdmParams | None = None,
                payload_per_frame: int | None = None) -> list[tuple[FrameHeader, np.ndarray]]:
    """-> [(FrameHeader, complex64 payload)], one per frame, in order (seq = 0..frame_count-1)."""
    p = (params or OfdmParams()).validate()
    symbols = np.asarray(symbols, np.complex64).reshape(-1)
    side_info = bytes(side_info or b"")
    per = p.max_payload_len if payload_per_frame is None else int(payload_per_frame)
    if not (1 <= per <= p.max_payload_len):
        raise MedJSCCError(f"payload_per_frame must be in [1, {p.max_payload_len}], got {per}")
    if not (0 <= int(image_id) <= 0xFFFF):
        raise MedJSCCError(f"image_id must be in [0, 65535], got {image_id}")
    if len(side_info) > 0xFFFF:
        raise MedJSCCError(f"side info has {len(side_info)} bytes; at most 65535 fit the header field")
    C = p.header_side_info_bytes
    if side_info and C == 0:
        raise MedJSCCError("side info given but params.header_side_info_bytes is 0")
    n_pay_frames = math.ceil(symbols.size / per) if symbols.size else 0
    n_side_frames = math.ceil(len(side_info) / C) if side_info else 0
    count = max(n_pay_frames, n_side_frames, 1)
    if count > 0xFFFF:
        raise MedJSCCError(f"image needs {count} frames; at most 65535 are addressable")
    frames = []
    for i in range(count):
        pay = symbols[i * per: (i + 1) * per]
        chunk = side_info[i * C: (i + 1) * C] if C else b""
        hdr = FrameHeader(seq=i, image_id=int(image_id), frame_count=count, payload_len=int(pay.size),
                          side_info_chunk=chunk, side_info_total=len(side_info))
        frames.append((hdr, pay.copy()))
    return frames


@dataclass
class AssembledImage:
    image_id: int
    symbols: np.ndarray          # complex64, zeros where lost
    erased: np.ndarray           # bool, True where lost
    side_info: bytes | None      # None if any side-info chunk is missing
    frames_received: int
    frame_count: int
    noise_var: np.ndarray | None = None   # float32 per symbol (inf where erased), if frames had it

    def as_tuple(self):
        return self.symbols, self.erased, self.side_info


class ImageAssembler:
    """Collect frames of one or more images; duplicates, reordering and losses are tolerated.

    ``add(frame)`` takes an ``RxFrame`` (or ``add(header, payload)``); frames without a valid
    header are ignored. ``assemble(image_id, n_symbols=None)`` returns an ``AssembledImage``.
    ``n_symbols`` (the codec's payload length) lets the receiver size the output even when the
    last frames are lost; without it the size is inferred from the frames received.
    """

    def __init__(self, params: OfdmParams | None = None, payload_per_frame: int | None = None):
        self.params = (params or OfdmParams()).validate()
        self.per = self.params.max_payload_len if payload_per_frame is None else int(payload_per_frame)
        self._images: dict[int, dict] = {}

    def add(self, frame, payload=None, noise_var=None, erased=None) -> bool:
        if payload is None:     # an RxFrame
            header = getattr(frame, "header", None)
            if header is None or not getattr(frame, "crc_ok", False):
                return False
            payload, noise_var, erased = frame.payload, frame.noise_var, frame.erased
        else:
            header = frame
        if header is None or header.seq >= header.frame_count:
            return False
        payload = np.asarray(payload, np.complex64).reshape(-1)
        if payload.size != header.payload_len:
            return False
        img = self._images.setdefault(header.image_id, {"frames": {}, "count": header.frame_count})
        if header.seq in img["frames"]:
            return False       # duplicate: keep the first copy
        img["count"] = max(img["count"], header.frame_count)
        img["frames"][header.seq] = (header, payload, noise_var, erased)
        return True

    def image_ids(self) -> list[int]:
        return sorted(self._images)

    def is_complete(self, image_id: int) -> bool:
        img = self._images.get(image_id)
        return img is not None and len(img["frames"]) >= img["count"]

    def discard(self, image_id: int) -> None:
        self._images.pop(image_id, None)

    def assemble(self, image_id: int, n_symbols: int | None = None) -> AssembledImage:
        img = self._images.get(image_id)
        per = self.per
        if img is None:
            n = int(n_symbols or 0)
            return AssembledImage(image_id, np.zeros(n, np.complex64), np.ones(n, bool), None, 0, 0)
        frames, count = img["frames"], img["count"]
        if n_symbols is None:
            # all frames but the last are full; the last one's length is known only if received
            last = frames.get(count - 1)
            n_symbols = (count - 1) * per + last[0].payload_len if last is not None else count * per
            if last is None:
                ends = [s * per + h.payload_len for s, (h, *_r) in frames.items()]
                lens = [h.payload_len for h, *_r in frames.values()]
                if any(ln < per for ln in lens):      # payload ended inside a received frame
                    n_symbols = max(ends)
        n_symbols = int(n_symbols)
        symbols = np.zeros(n_symbols, np.complex64)
        erased = np.ones(n_symbols, bool)
        nvar = np.full(n_symbols, np.inf, np.float32)
        have_nv = False
        for seq, (hdr, pay, nv, er) in frames.items():
            a = seq * per
            b = min(a + pay.size, n_symbols)
            if b <= a:
                continue
            symbols[a:b] = pay[: b - a]
            erased[a:b] = False if er is None else np.asarray(er[: b - a], bool)
            if nv is not None and np.size(nv) == pay.size:
                nvar[a:b] = nv[: b - a]
                have_nv = True
        symbols[erased] = 0
        # side info: frame i holds bytes [i*C, (i+1)*C) of side_info_total bytes
        side_info = None
        C = self.params.header_side_info_bytes
        totals = {h.side_info_total for h, *_r in frames.values()}
        if len(totals) == 1:
            total = totals.pop()
            need = math.ceil(total / C) if (total and C) else 0
            if all(i in frames for i in range(need)):
                chunks = b"".join(frames[i][0].side_info_chunk for i in range(need))
                if len(chunks) == total:
                    side_info = chunks
        return AssembledImage(image_id, symbols, erased, side_info, len(frames), count,
                              nvar if have_nv else None)


def overhead_symbols(n_payload_symbols: int, side_info_bytes: int = 0, params: OfdmParams | None = None,
                     payload_per_frame: int | None = None) -> dict:
    """Channel uses of an image sent with ``frame_image``, split by kind.

    Everything is counted in complex time-domain samples (= complex channel uses) per the
    project's CBR convention: ``total`` includes preambles, headers, pilots, cyclic prefixes,
    guard/DC carriers and padding of the last payload symbol; ``overhead = total - payload``.
    CBR_total = ``total / n_pixels`` (see ``snr.cbr``).
    """
    p = (params or OfdmParams()).validate()
    per = p.max_payload_len if payload_per_frame is None else int(payload_per_frame)
    n = int(n_payload_symbols)
    C = p.header_side_info_bytes
    n_frames = max(math.ceil(n / per) if n else 0, math.ceil(side_info_bytes / C) if (side_info_bytes and C) else 0, 1)
    lens = [min(per, max(0, n - i * per)) for i in range(n_frames)]
    total = sum(p.frame_len(ln) for ln in lens)
    pay_syms = sum(p.n_payload_symbols(ln) for ln in lens)
    ofdm_payload = pay_syms * p.symbol_len
    return {
        "frames": n_frames,
        "payload": n,
        "preamble": n_frames * p.preamble_len,
        "header": n_frames * p.n_header_symbols * p.symbol_len,
        "pilots": pay_syms * p.n_pilot_carriers,
        "cyclic_prefix": pay_syms * p.cp_len,
        "guard_and_padding": ofdm_payload - pay_syms * p.cp_len - pay_syms * p.n_pilot_carriers - n,
        "total": total,
        "overhead": total - n,
    }
