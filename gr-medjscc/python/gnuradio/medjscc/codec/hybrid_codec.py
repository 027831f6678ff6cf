"""The hybrid digital-analog codec on the air (issue #13 part 3): ``hybrid.encode`` / ``hybrid.decode``
behind the codec interface the JSCC blocks use, so ``jscc_tx`` / ``jscc_rx``, the CLI, the
flowgraphs, the loopback and the benches take ``model="hybrid_softcast"`` (training-free
receiver), ``model="medjscc_hda"`` (with the learned refiner, ``codec/hda.py``) or
``model="hybrid_layered"`` (``hybrid_softcast`` whose base is two JPEG2000 quality layers, the
first at a more robust MCS: ``hybrid.layered``; an over-estimated SNR loses the finer layer,
shown ``first_layer``, instead of the base).

The frame's payload symbols are the hybrid frame as the sweep measures it, ``[side | base |
analog]``: the side and base sections are QAM symbols of rate-matched LDPC codewords, decoded at
the RX from soft LLRs; the analog section is the LLSE-decoded DCT residual. Differences on air:

* The SNR the TX laid the frame out for (the fed-back SNR: it picks the base MCS and the split)
  is quantised to ``SNR_STEP_DB`` and sent in the codec side info of the frame headers (2 bytes,
  CRC-protected and erasure-coded over the headers by ``phy.framing``), charged in ``cbr_total``
  at ``SIDE_INFO_BITS_PER_SYMBOL`` as every codec's side info is. The RX lays the frame out from
  it, so the two ends never disagree on the split even when they hear different feedback.
* The base payload carries a CRC-16 (``hybrid.BASE_CRC_BYTES``): there are no sent bits to
  compare with. The hybrid's own side frame (band variances) is checked by its LDPC syndrome.
* Per-symbol noise: the OFDM RX states ``1/SNR_i`` for each equalised (unbiased) symbol; the
  decoder scales symbol i by ``sqrt(N0 / (1/SNR_i))`` (a known real gain over noise of variance N0,
  the mean 1/SNR_i), so faded subcarriers weigh less in the LLRs and the LLSE. Erased symbols
  (lost frames) get gain 0.

``decode_with_info`` says what decoded: the side frame, the base frame (None without a base), and
``shown``: ``hybrid`` (everything), ``first_layer`` (``hybrid_layered``: the finer base layer
lost, the first layer and the analog residual), ``base_only`` (side frame lost: the JPEG2000 base alone),
``analog_over_grey`` (base lost: the residual over grey, not an image anyone should count as
decoded) or ``nothing`` (both lost: grey).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError, MedJSCCError
from . import hybrid
from .encoded import EncodedImage
from .sideinfo import SIDE_INFO_BITS_PER_SYMBOL

# model name -> refiner weights (None: the training-free receiver). Hyphens are accepted too
# (the sweep's method names: hybrid-softcast, medjscc-hda).
HYBRID_MODELS = {"hybrid_softcast": None, "medjscc_hda": "hda_refiner", "hybrid_layered": None}
LAYERED_MODELS = ("hybrid_layered",)   # the base in two layers (hybrid.layered)
# First side-info byte: codec side info keeps its version in the top 3 bits (``sideinfo``,
# versions 1-4); 7 marks the hybrid, so a Med-JSCC RX and a hybrid RX each refuse the other's frames.
# The low bits say the base's layout (one layer, or two: ``hybrid_layered``), so any hybrid RX lays
# out either frame.
SIDE_TAG = 0xE1
SIDE_TAG_LAYERED = 0xE2
# what ``shown`` may say of an image that counts as decoded (a real image, whole or in part)
DECODED_SHOWN = ("hybrid", "first_layer", "base_only")
SNR_STEP_DB = 0.25
SNR_CODE_MIN_DB = -30.0      # code 0; code 255 = 33.75 dB
SIDE_INFO_LEN = 2            # [tag, design SNR code]


class HybridSideInfoError(MedJSCCError):
    """The side info is not a hybrid frame's (another model at the TX) or is missing."""


def hybrid_model_name(model) -> str | None:
    """The canonical hybrid model name for ``model`` (a name), or None if it is not one."""
    if not isinstance(model, str):
        return None
    key = model.strip().lower().replace("-", "_")
    return key if key in HYBRID_MODELS else None


def snr_code(snr_db: float) -> int:
    if not math.isfinite(float(snr_db)):
        raise InputError(f"hybrid: the design SNR must be finite, got {snr_db}")
    return int(np.clip(round((float(snr_db) - SNR_CODE_MIN_DB) / SNR_STEP_DB), 0, 255))


def snr_from_code(code: int) -> float:
    return SNR_CODE_MIN_DB + int(code) * SNR_STEP_DB


def pack_side_info(snr_db: float, tag: int = SIDE_TAG) -> bytes:
    return bytes([tag, snr_code(snr_db)])


def read_side_info(side_info) -> tuple[float, bool]:
    """-> (the design SNR (dB) the TX laid the frame out for, whether its base is in two layers)."""
    if side_info is None:
        raise HybridSideInfoError("hybrid: no side info (lost or failed its CRC): the frame layout is unknown")
    side = bytes(side_info)
    if len(side) != SIDE_INFO_LEN or side[0] not in (SIDE_TAG, SIDE_TAG_LAYERED):
        raise HybridSideInfoError(
            f"hybrid: the side info ({len(side)} bytes, first 0x{side[0] if side else 0:02x}) is not a hybrid "
            f"frame's: is the transmitter using another model?")
    return snr_from_code(side[1]), side[0] == SIDE_TAG_LAYERED


def unpack_side_info(side_info) -> float:
    """-> the design SNR (dB) the TX laid the frame out for."""
    return read_side_info(side_info)[0]


def receiver_gains(n: int, snr_db: float, inv_snr=None, erased=None) -> tuple[np.ndarray, float]:
    """Per-symbol real gains and the reference noise variance (see module doc): ``(g, n0)``."""
    if inv_snr is None:
        inv = np.full(n, 10.0 ** (-float(snr_db) / 10.0))
    else:
        inv = np.asarray(inv_snr, np.float64).reshape(-1)
        if inv.size != n:
            raise InputError(f"hybrid: {inv.size} noise values for {n} symbols")
        inv = inv.copy()
    if erased is not None:
        er = np.asarray(erased, bool).reshape(-1)
        if er.size == n:
            inv[er] = np.inf
    live = np.isfinite(inv)
    inv = np.where(live, np.maximum(inv, 1e-6), np.inf)
    if not live.any():
        return np.zeros(n), 1.0
    n0 = float(np.mean(inv[live]))
    return np.where(live, np.sqrt(n0 / np.where(live, inv, 1.0)), 0.0), n0


class HybridCodec:
    """``encode(image, mask, snr_db, cbr) -> EncodedImage``; ``decode(symbols, side_info, shape,
    snr_db, erased, inv_snr) -> uint8 image`` (``decode_with_info`` adds what decoded)."""

    needs_side_info = True        # jscc_rx: without it the layout is unknown
    wants_unbiased_symbols = True  # jscc_rx: undo an MMSE equaliser's shrinking (LLRs and LLSE expect x + n)

    def __init__(self, name: str = "hybrid_softcast", refiner=None):
        canon = hybrid_model_name(name)
        if canon is None:
            raise InputError(f"unknown hybrid model {name!r}; known: {', '.join(HYBRID_MODELS)}")
        self.name = canon
        self.refiner = refiner
        self.model_sha256 = getattr(refiner, "sha256", None)
        self.layered = canon in LAYERED_MODELS
        self.side_tag = SIDE_TAG_LAYERED if self.layered else SIDE_TAG

    def split(self, design_snr: float, n_total: int, shape, layered: bool | None = None) -> "hybrid.Split":
        """The split both ends lay the frame out with (fitted at the CBR nearest the frame's);
        ``layered``: the base in two layers (None: as this model sends it)."""
        split = hybrid.split_rule(float(design_snr), cbr=int(n_total) / (int(shape[0]) * int(shape[1])))
        return hybrid.layered(split) if (self.layered if layered is None else layered) else split

    @classmethod
    def load(cls, name: str = "hybrid_softcast", device: str = "cpu") -> "HybridCodec":
        canon = hybrid_model_name(name)
        if canon is None:
            raise InputError(f"unknown hybrid model {name!r}; known: {', '.join(HYBRID_MODELS)}")
        refiner = None
        if HYBRID_MODELS[canon]:   # (the refiner runs on the CPU: one 256x256 image per frame)
            from .hda import load_refiner

            refiner = load_refiner(HYBRID_MODELS[canon])
        return cls(canon, refiner)

    # -- sizes
    def payload_symbols(self, shape, cbr: float, side_info=b"") -> int:
        n_pix = int(shape[0]) * int(shape[1])
        # every hybrid side info has SIDE_INFO_LEN bytes: a receiver that lost it still sizes the frame
        side_sym = 8 * len(side_info or b"\0" * SIDE_INFO_LEN) / SIDE_INFO_BITS_PER_SYMBOL
        n = int(math.floor(float(cbr) * n_pix - side_sym))
        if n < 1:
            raise MedJSCCError(f"cbr {cbr:g} leaves no symbol for a {shape[0]}x{shape[1]} image after the "
                               f"{side_sym:.0f} side-info symbols; use a larger cbr")
        return n

    # -- TX
    def encode(self, image: np.ndarray, mask=None, snr_db: float = 10.0, cbr: float = 1 / 16,
               layered: bool | None = None) -> EncodedImage:
        """``layered``: send the base in two layers (True), in one (False), or as this model does
        (None). The side info says which, so any hybrid receiver decodes either."""
        image = np.asarray(image)
        if image.ndim != 2 or image.dtype != np.uint8:
            raise InputError(f"hybrid: a 2-D uint8 image is expected, got {image.dtype} {image.shape}")
        if mask is not None and np.asarray(mask).shape != image.shape:
            raise InputError(f"hybrid: mask {np.asarray(mask).shape} does not match the image {image.shape}")
        layered = self.layered if layered is None else bool(layered)
        side = pack_side_info(snr_db, SIDE_TAG_LAYERED if layered else SIDE_TAG)
        design_snr = unpack_side_info(side)   # both ends use the quantised value
        n_total = self.payload_symbols(image.shape, cbr, side)
        tx = hybrid.encode(image, mask, design_snr, n_total, self.split(design_snr, n_total, image.shape, layered),
                           base_crc=True)
        n_pix = image.size
        side_bits = 8 * len(side)
        return EncodedImage(symbols=tx.symbols.astype(np.complex64), side_info=side, shape=image.shape,
                            n_payload_symbols=n_total, side_info_bits=side_bits, cbr_payload=n_total / n_pix,
                            cbr_total=(n_total + side_bits / SIDE_INFO_BITS_PER_SYMBOL) / n_pix,
                            snr_db=design_snr, source_bytes=int(tx.base_bytes))

    # -- RX
    def decode_with_info(self, symbols, side_info, shape, snr_db: float = 10.0, erased=None, inv_snr=None):
        """-> (uint8 image, info). ``snr_db``: the RX's SNR estimate, used only when ``inv_snr``
        (per-symbol 1/SNR) is not given."""
        # the side info says the layout: any hybrid model receives one- and two-layer frames
        design_snr, layered = read_side_info(side_info)
        shape = tuple(int(s) for s in shape)
        y = np.asarray(symbols, np.complex128).reshape(-1)
        g, n0 = receiver_gains(y.size, snr_db, inv_snr, erased)
        y = np.where(g > 0, y, 0) * g
        image, info = hybrid.decode(y, g, n0, shape, design_snr, y.size, self.split(design_snr, y.size, shape, layered),
                                    refiner=self.refiner, base_crc=True)
        side_ok, base_ok = bool(info["side_ok"]), info["base_ok"]
        if side_ok and base_ok and info.get("base_layers") == 1:
            info["shown"] = "first_layer"
        elif side_ok:
            info["shown"] = "hybrid" if base_ok is not False else "analog_over_grey"
        else:
            info["shown"] = "base_only" if base_ok else "nothing"
        info["design_snr_db"] = design_snr
        return image, info

    def decode(self, symbols, side_info, shape, snr_db: float = 10.0, erased=None, inv_snr=None) -> np.ndarray:
        return self.decode_with_info(symbols, side_info, shape, snr_db, erased, inv_snr)[0]
