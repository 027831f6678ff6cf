"""Source codecs of the digital baselines, each fitted to a byte budget.

* ``J2kCodec``: JPEG 2000 (OpenJPEG through Pillow), irreversible 9/7 wavelet, one tile, one
  quality layer. Only the packet data is sent: the main header (SIZ, COD, QCD: 96 bytes for a
  256x256 image) depends only on the image size and the encoder setting, so the receiver rebuilds
  it from a template (checked against every encoded stream); the tile-part header is rebuilt with
  Psot = 0 ("to the end of the codestream") and EOC appended, so the stream needs no length field
  and bytes after it (link padding) are ignored by the decoder. That keeps 112 bytes off the
  budget of every image. The compression ratio is binary-searched so the payload is the
  *largest* that fits the budget. (No lossless mode: it would need a second template and a flag.)
* ``HeifCodec``: HEVC-intra through pillow-heif (x265/libde265), quality 0..100 binary-searched.
  Only the HEVC bitstream (the ``mdat`` payload) is counted and sent: the HEIF container (ftyp,
  meta with hvcC parameter sets, ispe, ...) is identical for every image of a given size and
  encoder setting (checked at run time), so the receiver rebuilds it from a template, as a BPG
  decoder would rebuild its header. This keeps ~360 bytes of container off the budget. The payload
  is one length-prefixed NAL unit (checked), so it delimits itself: link padding after it is
  dropped at the receiver.
* ``RoiJ2kCodec``: ROI-aware JPEG 2000 with the same budget. Pillow has no ROI max-shift, so two
  standard-decodable substitutes compete per image: (a) two J2K codestreams, the whole image at a
  low rate plus the ROI's bounding box at a higher rate (pasted over the first at the receiver),
  with a 10-byte header (bounding box, length of the first stream; all zero box: no crop); (b) one
  J2K stream of the image whose background
  was low-pass filtered first (Gaussian, several widths), so the wavelet coder spends its bits on
  the ROI. The encoder keeps the candidate with the lowest ``0.9 * MSE(ROI) + 0.1 *
  MSE(background)`` (an encoder-side rate-distortion choice using only the image and the mask,
  which the transmitter has).

``encode(image, budget_bytes, mask=None) -> bytes | None`` (None: even the smallest stream does
not fit) and ``decode(data, shape) -> uint8`` are the whole interface. Every byte ``encode``
returns is sent and counted; ``decode`` accepts the received bytes with trailing padding (the
digital link fills its codewords with it), so no length travels outside the payload.
"""
from __future__ import annotations

import io
import math
import struct

import numpy as np

from ..errors import InputError, MedJSCCError

GREY = 128


def grey_image(shape) -> np.ndarray:
    """What a receiver shows when the digital link failed (mid-grey everywhere)."""
    return np.full(shape, GREY, dtype=np.uint8)


def _strip_j2k_comments(cs: bytes) -> bytes:
    """Drop COM (0xFF64) marker segments from the J2K main header (before the first SOT)."""
    if cs[:2] != b"\xff\x4f":
        return cs
    out = bytearray(cs[:2])
    pos = 2
    while pos + 4 <= len(cs):
        marker = cs[pos:pos + 2]
        if marker == b"\xff\x90":  # SOT: tile data starts, copy the rest unchanged
            out += cs[pos:]
            return bytes(out)
        seg_len = struct.unpack(">H", cs[pos + 2:pos + 4])[0]
        if marker != b"\xff\x64":
            out += cs[pos:pos + 2 + seg_len]
        pos += 2 + seg_len
    return cs


J2K_SOT = b"\xff\x90"
J2K_SOD = b"\xff\x93"
J2K_EOC = b"\xff\xd9"
# tile 0, Psot = 0 (the tile-part runs to EOC), tile-part 0 of 1: what the receiver rebuilds
J2K_TILE_HEADER = J2K_SOT + struct.pack(">HHIBB", 10, 0, 0, 0, 1) + J2K_SOD


def _split_j2k(cs: bytes) -> tuple[bytes, bytes]:
    """(main header, packet data) of a one-tile, one-tile-part codestream; MedJSCCError otherwise."""
    pos = 2  # walk the main header's marker segments up to the first SOT
    while pos + 4 <= len(cs) and cs[pos:pos + 2] != J2K_SOT:
        pos += 2 + struct.unpack(">H", cs[pos + 2:pos + 4])[0]
    if cs[:2] != b"\xff\x4f" or cs[pos:pos + 2] != J2K_SOT or cs[-2:] != J2K_EOC:
        raise MedJSCCError("JPEG 2000 codestream layout not supported (SOC ... SOT ... EOC expected)")
    _, isot, psot, tpsot, tnsot = struct.unpack(">HHIBB", cs[pos + 2:pos + 12])
    if isot != 0 or tpsot != 0 or tnsot != 1 or pos + psot != len(cs) - 2 or cs[pos + 12:pos + 14] != J2K_SOD:
        raise MedJSCCError("JPEG 2000 codestream is not one tile in one tile-part; cannot strip its headers")
    return cs[:pos], cs[pos + 14:-2]


class J2kCodec:
    name = "j2k"
    # a ratio this large gives OpenJPEG's smallest stream (headers + almost no data)
    MAX_RATIO = 5000.0
    # a ratio this small keeps every coding pass (the finest stream of the 9/7 path)
    MIN_RATIO = 1.0

    def __init__(self, search_steps: int = 9):
        from PIL import features

        if not features.check("jpg_2000"):
            raise MedJSCCError("Pillow was built without OpenJPEG (JPEG 2000); j2k baselines unavailable")
        self.search_steps = search_steps
        self._memo: dict = {}
        self._templates: dict = {}

    def _codestream(self, image: np.ndarray, ratio: float) -> bytes:
        """Full codestream (COM marker removed) at compression ``ratio``."""
        from PIL import Image

        key = (image.shape, hash(image.tobytes()), ratio)
        if key in self._memo:
            return self._memo[key]
        buf = io.BytesIO()
        Image.fromarray(image, "L").save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[ratio],
                                         irreversible=True, no_jp2=True)
        data = _strip_j2k_comments(buf.getvalue())
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[key] = data
        return data

    def template(self, shape) -> bytes:
        """Main header the receiver rebuilds for this image size (encoder setting fixed)."""
        shape = tuple(int(v) for v in shape)
        if shape not in self._templates:
            flat = np.full(shape, GREY, dtype=np.uint8)
            self._templates[shape] = _split_j2k(self._codestream(flat, 50.0))[0]
        return self._templates[shape]

    def _encode_ratio(self, image: np.ndarray, ratio: float) -> bytes:
        """What is sent at compression ``ratio``: the packet data only (headers are the template's)."""
        header, body = _split_j2k(self._codestream(image, ratio))
        if header != self.template(image.shape):
            raise MedJSCCError("JPEG 2000 main header differs from the receiver's template; cannot strip it")
        return body

    def encode(self, image: np.ndarray, budget_bytes: int, mask=None) -> bytes | None:
        fit = self._fit(np.ascontiguousarray(image, dtype=np.uint8), int(budget_bytes))
        return None if fit is None else fit[1]

    def _fit(self, image: np.ndarray, budget_bytes: int):
        """-> (ratio, packet data) of the largest stream within the budget; None if none fits."""
        if budget_bytes <= 0:
            return None
        finest = self._encode_ratio(image, self.MIN_RATIO)
        if len(finest) <= budget_bytes:
            return self.MIN_RATIO, finest
        smallest = self._encode_ratio(image, self.MAX_RATIO)
        if len(smallest) > budget_bytes:
            return None
        best = (self.MAX_RATIO, smallest)
        # OpenJPEG's rate control lands near raw/ratio bytes, headers included: bracket around that
        raw = image.size
        guess = raw / (budget_bytes + len(self.template(image.shape)) + len(J2K_TILE_HEADER) + len(J2K_EOC))
        lo, hi = math.log(max(1.0, guess * 0.5)), math.log(min(self.MAX_RATIO, guess * 3.0))
        if len(self._encode_ratio(image, round(math.exp(hi), 4))) > budget_bytes:
            lo, hi = hi, math.log(self.MAX_RATIO)
        for _ in range(self.search_steps):
            mid = 0.5 * (lo + hi)
            ratio = round(math.exp(mid), 4)
            data = self._encode_ratio(image, ratio)
            if len(data) <= budget_bytes:
                if len(data) > len(best[1]):
                    best = (ratio, data)
                hi = mid
            else:
                lo = mid
        return best

    # ------------------------------------------------------------------ two quality layers
    # A stream of two quality layers in layer-major order (LRCP, OpenJPEG's default) starts with
    # exactly the packets of the one-layer stream at the first layer's ratio (checked): its first
    # part decodes alone with the one-layer template, and with the second part under a two-layer
    # template. What the hybrid's base sends in two frames of different robustness.
    def _codestream2(self, image: np.ndarray, ratio1: float, ratio2: float) -> bytes:
        from PIL import Image

        key = (image.shape, hash(image.tobytes()), ratio1, ratio2)
        if key not in self._memo:
            buf = io.BytesIO()
            Image.fromarray(image, "L").save(buf, format="JPEG2000", quality_mode="rates",
                                             quality_layers=[ratio1, ratio2], irreversible=True, no_jp2=True)
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[key] = _strip_j2k_comments(buf.getvalue())
        return self._memo[key]

    def template2(self, shape) -> bytes:
        """Main header of a two-layer stream for this image size (differs from ``template`` in COD)."""
        shape = tuple(int(v) for v in shape)
        key = ("two-layer", shape)
        if key not in self._templates:
            flat = np.full(shape, GREY, dtype=np.uint8)
            self._templates[key] = _split_j2k(self._codestream2(flat, 200.0, 50.0))[0]
        return self._templates[key]

    def _encode_ratio2(self, image: np.ndarray, ratio1: float, ratio2: float) -> bytes:
        header, body = _split_j2k(self._codestream2(image, ratio1, ratio2))
        if header != self.template2(image.shape):
            raise MedJSCCError("two-layer JPEG 2000 main header differs from the receiver's template")
        return body

    def encode_layers(self, image: np.ndarray, budget1: int, budget2: int, mask=None):
        """-> (first, second): ``first`` the largest one-layer stream within ``budget1`` bytes,
        ``second`` the largest continuation within ``budget2`` bytes such that ``first + second`` is
        a two-layer stream (``second`` may be empty: no finer layer fits or is worth it). None:
        not even the smallest stream fits ``budget1``."""
        image = np.ascontiguousarray(image, dtype=np.uint8)
        fit = self._fit(image, int(budget1))
        if fit is None:
            return None
        ratio1, first = fit
        budget2 = int(budget2)
        if budget2 <= 0 or ratio1 <= self.MIN_RATIO:   # (at MIN_RATIO the first layer holds every pass)
            return first, b""
        best = b""
        lo, hi = math.log(self.MIN_RATIO), math.log(ratio1)
        for _ in range(self.search_steps):
            mid = 0.5 * (lo + hi)
            body = self._encode_ratio2(image, ratio1, round(math.exp(mid), 4))
            if not body.startswith(first):
                raise MedJSCCError("two-layer JPEG 2000 stream does not start with the one-layer stream")
            extra = body[len(first):]
            if len(extra) <= budget2:
                if len(extra) > len(best):
                    best = extra
                hi = mid
            else:
                lo = mid
        return first, best

    def decode_layers(self, first: bytes, second: bytes | None, shape) -> np.ndarray:
        """Image from the first layer alone (``second`` None or empty) or from both. ``second``
        must be received whole (trailing padding allowed: the decoder stops at its last packet)."""
        if not second:
            return self.decode(first, shape)
        return self._decode_codestream(self.template2(shape) + J2K_TILE_HEADER + bytes(first) + bytes(second)
                                       + J2K_EOC, shape)

    def decode(self, data: bytes, shape) -> np.ndarray:
        """Packet data (trailing padding allowed) -> image: template header + SOT(Psot=0) + data + EOC."""
        return self._decode_codestream(self.template(shape) + J2K_TILE_HEADER + bytes(data) + J2K_EOC, shape)

    def _decode_codestream(self, cs: bytes, shape) -> np.ndarray:
        from PIL import Image

        try:
            im = Image.open(io.BytesIO(cs))
            arr = np.asarray(im.convert("L"), dtype=np.uint8)
        except (OSError, ValueError) as e:
            raise MedJSCCError(f"j2k stream does not decode: {e}") from None
        if arr.shape != tuple(shape):
            raise MedJSCCError(f"j2k decoded shape {arr.shape} != {tuple(shape)}")
        return arr


# ----------------------------------------------------------------------------- HEVC via HEIF
def _boxes(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, typ = struct.unpack(">I4s", data[pos:pos + 8])
        if size < 8:
            raise MedJSCCError("malformed HEIF box")
        yield typ, pos, size
        pos += size


def _find_box(data: bytes, path: list[bytes]):
    start, end = 0, len(data)
    for depth, name in enumerate(path):
        for typ, pos, size in _boxes(data, start, end):
            if typ == name:
                hdr = 12 if name in (b"meta",) else 8
                if depth == len(path) - 1:
                    return pos, size
                start, end = pos + hdr, pos + size
                break
        else:
            return None
    return None


def _iloc_length_field(data: bytes):
    """(offset, width) of the single item's single extent_length inside the iloc box."""
    found = _find_box(data, [b"meta", b"iloc"])
    if found is None:
        raise MedJSCCError("HEIF without iloc box")
    pos, size = found
    body = pos + 8
    version = data[body]
    p = body + 4
    offset_size, length_size = data[p] >> 4, data[p] & 15
    base_offset_size, index_size = data[p + 1] >> 4, data[p + 1] & 15
    p += 2
    item_count = struct.unpack(">H" if version < 2 else ">I", data[p:p + (2 if version < 2 else 4)])[0]
    p += 2 if version < 2 else 4
    p += 2 if version < 2 else 4  # item_ID of the (primary, first) item
    if version in (1, 2):
        p += 2  # construction_method
    p += 2 + base_offset_size  # data_reference_index, base_offset
    extent_count = struct.unpack(">H", data[p:p + 2])[0]
    p += 2
    if item_count < 1 or extent_count != 1:
        raise MedJSCCError("HEIF layout not supported (expected one item with one extent)")
    if version in (1, 2) and index_size > 0:
        p += index_size
    p += offset_size
    return p, length_size


def _nal_length(data: bytes) -> int:
    """Bytes of the first length-prefixed (4-byte, hvcC lengthSizeMinusOne = 3) NAL unit, prefix included."""
    if len(data) < 4:
        raise MedJSCCError("hevc payload shorter than its NAL length prefix")
    return 4 + struct.unpack(">I", bytes(data[:4]))[0]


class HeifCodec:
    name = "hevc"

    def __init__(self):
        try:
            import pillow_heif
        except ImportError:
            raise MedJSCCError("pillow-heif is not installed; the hevc baselines need it "
                               "(pip install -c requirements/constraints.txt pillow-heif)") from None
        pillow_heif.register_heif_opener()
        self._memo: dict = {}
        self._templates: dict = {}

    def _encode_file(self, image: np.ndarray, quality: int) -> bytes:
        from PIL import Image

        key = (image.shape, hash(image.tobytes()), quality)
        if key not in self._memo:
            buf = io.BytesIO()
            Image.fromarray(image, "L").save(buf, format="HEIF", quality=int(quality))
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[key] = buf.getvalue()
        return self._memo[key]

    def _split(self, data: bytes):
        found = _find_box(data, [b"mdat"])
        if found is None:
            raise MedJSCCError("HEIF without mdat box")
        pos, size = found
        return data[:pos], data[pos + 8:pos + size]

    def _template(self, shape) -> bytes:
        """Container header (everything before mdat) for this image size and encoder setting."""
        shape = tuple(shape)
        if shape not in self._templates:
            flat = np.full(shape, GREY, dtype=np.uint8)
            header, _ = self._split(self._encode_file(flat, 50))
            self._templates[shape] = header
        return self._templates[shape]

    def _payload(self, image: np.ndarray, quality: int) -> bytes:
        data = self._encode_file(image, quality)
        header, payload = self._split(data)
        off, width = _iloc_length_field(header)
        template = self._template(image.shape)
        # the receiver's template must match everything but the extent length
        if len(template) != len(header) or template[:off] != header[:off] or \
                template[off + width:] != header[off + width:]:
            raise MedJSCCError("HEIF container differs from the template; cannot strip it")
        if _nal_length(payload) != len(payload):
            raise MedJSCCError("HEVC payload is not one length-prefixed NAL unit; it would not delimit itself")
        return payload

    def encode(self, image: np.ndarray, budget_bytes: int, mask=None) -> bytes | None:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if budget_bytes <= 0:
            return None
        lo, hi = 0, 101  # 101: past the scale, so q=100 (the slowest encode) is only tried if it may fit
        if len(self._payload(image, lo)) > budget_bytes:
            return None
        while hi - lo > 1:  # invariant: q=lo fits, q=hi does not
            mid = (lo + hi) // 2
            if len(self._payload(image, mid)) <= budget_bytes:
                lo = mid
            else:
                hi = mid
        # size is not strictly monotone in quality: keep the largest fitting stream seen
        best = max((self._payload(image, q) for q in range(max(0, lo - 2), lo + 1)
                    if len(self._payload(image, q)) <= budget_bytes), key=len)
        return best

    def decode(self, data: bytes, shape) -> np.ndarray:
        """Received bytes (trailing padding allowed: the NAL length prefix ends the payload) -> image."""
        from PIL import Image

        n = _nal_length(data)
        if n > len(data):
            raise MedJSCCError(f"hevc payload claims {n} bytes, {len(data)} received")
        payload = bytes(data[:n])
        header = bytearray(self._template(shape))
        off, width = _iloc_length_field(bytes(header))
        header[off:off + width] = len(payload).to_bytes(width, "big")
        data = bytes(header) + struct.pack(">I4s", len(payload) + 8, b"mdat") + payload
        arr = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.uint8)
        if arr.shape != tuple(shape):
            raise MedJSCCError(f"hevc decoded shape {arr.shape} != {tuple(shape)}")
        return arr


# ----------------------------------------------------------------------------- ROI J2K
def roi_bbox(mask: np.ndarray, margin: int = 4):
    """Bounding box (r0, r1, c0, c1) of the mask, grown by ``margin`` px, or None if empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape
    return (max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin),
            max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin))


class RoiJ2kCodec:
    name = "j2k-roi"
    HEADER = struct.Struct(">HHHHH")  # r0, r1, c0, c1, length of the full-image stream
    SPLITS = (0.0, 0.45, 0.7)  # fraction of the budget spent on the ROI crop
    ROI_WEIGHT = 0.9
    BLUR_SIGMAS = (3.0, 8.0)  # background low-pass widths (px) of the single-stream candidates

    def __init__(self):
        self.j2k = J2kCodec()

    def _objective(self, image, recon, mask):
        d = (image.astype(np.float64) - recon) ** 2
        bg = ~mask
        mse_roi = d[mask].mean()
        mse_bg = d[bg].mean() if bg.any() else 0.0
        return self.ROI_WEIGHT * mse_roi + (1 - self.ROI_WEIGHT) * mse_bg

    def encode(self, image: np.ndarray, budget_bytes: int, mask=None) -> bytes | None:
        image = np.ascontiguousarray(image, dtype=np.uint8)
        usable = int(budget_bytes) - self.HEADER.size
        box = roi_bbox(np.asarray(mask, bool)) if mask is not None else None
        if usable <= 0:
            return None
        if box is None:  # no ROI: plain J2K in the same container
            full = self.j2k.encode(image, usable)
            if full is None:
                return None
            return self.HEADER.pack(0, 0, 0, 0, len(full)) + full
        r0, r1, c0, c1 = box
        mask = np.asarray(mask, bool)
        best, best_cost = None, math.inf
        for frac in self.SPLITS:
            crop_budget = int(usable * frac)
            crop = b""
            if crop_budget > 0:
                crop = self.j2k.encode(np.ascontiguousarray(image[r0:r1, c0:c1]), crop_budget) or b""
                if not crop:
                    continue
            full = self.j2k.encode(image, usable - len(crop))
            if full is None:
                continue
            box_sent = (r0, r1, c0, c1) if crop else (0, 0, 0, 0)  # zero box: no crop follows
            data = self.HEADER.pack(*box_sent, len(full)) + full + crop
            cost = self._objective(image, self.decode(data, image.shape), mask)
            if cost < best_cost:
                best, best_cost = data, cost
        from scipy.ndimage import gaussian_filter

        soft = gaussian_filter(mask.astype(np.float64), 2.0)  # feathered mask: no hard seam
        for sigma in self.BLUR_SIGMAS:
            smooth = gaussian_filter(image.astype(np.float64), sigma)
            pre = np.clip(np.round(soft * image + (1 - soft) * smooth), 0, 255).astype(np.uint8)
            full = self.j2k.encode(pre, usable)
            if full is None:
                continue
            data = self.HEADER.pack(0, 0, 0, 0, len(full)) + full
            cost = self._objective(image, self.decode(data, image.shape), mask)
            if cost < best_cost:
                best, best_cost = data, cost
        return best

    def decode(self, data: bytes, shape) -> np.ndarray:
        r0, r1, c0, c1, n_full = self.HEADER.unpack(data[:self.HEADER.size])
        body = data[self.HEADER.size:]
        out = self.j2k.decode(body[:n_full], shape).copy()
        if r1 > r0 and c1 > c0:  # the crop stream runs to the end (padding after it is ignored)
            out[r0:r1, c0:c1] = self.j2k.decode(body[n_full:], (r1 - r0, c1 - c0))
        return out


SOURCE_CODECS = {"j2k": J2kCodec, "hevc": HeifCodec, "j2k-roi": RoiJ2kCodec}


def get_source_codec(name: str):
    if name not in SOURCE_CODECS:
        raise InputError(f"unknown source codec {name!r}; known: {sorted(SOURCE_CODECS)}")
    return SOURCE_CODECS[name]()
