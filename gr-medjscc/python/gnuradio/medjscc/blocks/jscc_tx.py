"""JSCC TX: X-ray image -> Med-JSCC encoder (ROI, rate allocation, CAU) -> frames as PDUs.

Images come from ``image_path`` (one or more files separated by ``;``, PNG/JPEG/TIFF/DICOM, sent
``repeat`` times) or as PDUs on port ``image`` (uint8 pixels, metadata ``height``, ``width`` and
optionally ``mask``: uint8 0/1 of the same size, as produced by ``roi_segmenter``). The encoder's
channel adaptive unit (CAU) uses the latest SNR received on port ``snr`` (a number, a dict with
``snr_db`` -- e.g. from ``snr_feedback`` -- or a PDU whose metadata has it), starting at ``snr_db``.

Each image becomes ``phy.framing.frame_image`` frames (symbols interleaved over the frames, side
info erasure-coded over the headers), published on ``frames`` as complex64 payload PDUs with
metadata: ``seq, image_id, frame_count, payload_len, side_info_chunk, side_info_total, nonce,
n_symbols`` (the header fields that go over the air; ``nonce`` is drawn per block instance) plus ``tx_snr_db, cbr_total, cbr_payload, height, width,
source`` for local monitoring. After the last file transmission (finite ``repeat``) the block
sends ``eos`` downstream and finishes, so headless flowgraphs end on their own.

Late feedback (satellite links): ``feedback_delay_ms`` holds every SNR message that long before
the CAU may use it, and ``feedback_policy`` (``instant`` | ``margin`` | ``predict`` | ``floor`` | ``fixed`` | ``olla``, with
``feedback_margin_db``) says how the CAU turns the old estimates into an encoding SNR; see
``snr_feedback_policy``. ``olla`` also learns a back-off from the receiver's verdicts: connect
``jscc_rx``'s ``ack`` output to port ``ack`` (a dict with ``decoded`` and, from the hybrid codec,
``base_ok``; an image counts as good when it decoded and its base did not fail; a verdict naming
another transmission's ``nonce`` is ignored). Across processes the receiver publishes its verdicts
on the SNR feedback socket (``link.run_rx``), and ``run_tx`` hands them to ``ack``. ``instant`` without delay is the plain closed loop; ``fixed`` ignores the
feedback and encodes for ``snr_db`` (the design SNR). ``history`` records the SNR used per image.

Carrier mapping (``csi_mapping``): with it on, a ``carrier_rank`` and ``csi_tag`` in the SNR
messages (``snr_feedback`` issues them on a static selective channel, ``phy.csi``) make the next
images put the strong codec symbols on the strong subcarriers; ``csi_tag`` 0 returns to the fixed
interleaver. The receiver must hear the same feedback (connect ``snr_feedback`` to ``jscc_rx``'s
``snr`` too), or it cannot undo the mapping and reports the image as failed. ``history`` records
the tag per image.

Two-layer base until feedback (``layered_until_feedback``, hybrid models): an image encoded for
the design SNR ``snr_db`` (no usable SNR estimate yet, or policy ``fixed``) sends its JPEG2000
base in two layers, the first at a more robust MCS (``hybrid_layered``'s layout); images encoded
for a fed-back SNR use the model's own layout. The design SNR is a guess, and a hybrid told more
than the channel delivers loses its whole base; once the receiver has measured the link, the
one-layer base is worth its 0.1-2.8 dB. ``history`` records ``layered`` per image: two layers
asked for (at the bottom of the MCS table, about -5 dB, no first layer fits and one goes).
``layered_max_age_s`` > 0: an estimate older than that (the receiver went quiet: a long gap, a
lost feedback path) is a guess again, and the images encoded from it go with two layers too.

Pacing: ``interval_s`` between images; ``wait_for_feedback`` sends the next image only after an
SNR message arrived for the previous one (stop-and-wait closed loop, ``feedback_timeout_s``). A
message that names its image (``image_id``, as ``snr_feedback`` does) must be about the image just
sent or a newer one: the late feedback of an earlier image's second frame does not release the
next image with a stale SNR. A message without ``image_id`` releases it as before.
"""
from __future__ import annotations

import collections
import logging
import math
import secrets
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from ..config import CodecConfig
from ..errors import InputError, MedJSCCError
from ._codecadapt import fit_image, get_codec, read_image, read_mask
from ._phyadapt import make_params
from ._pmtutil import make_pdu, snr_from_message, split_pdu

log = logging.getLogger(__name__)
DEFAULT_REPEAT_STRONG = CodecConfig.repeat_strong
IMAGE_ID_MODULO = 65536  # header image_id field wraps; receivers only compare neighbours


def new_nonce() -> int:
    """A transmission session's nonce: random, so a restarted transmitter never reuses one."""
    return secrets.randbelow(65536)


def encode_frames(codec, image: np.ndarray, mask, snr_db: float, cbr: float, image_id: int, params,
                  nonce: int = 0, repeat_strong: float = 0.0, carrier_rank=None, csi_tag: int = 0,
                  layered: bool | None = None):
    """Encode one image and cut it into frames: returns (EncodedImage, [(meta, payload)]).
    ``repeat_strong``: share of the strongest codec symbols sent twice (``codec.repetition``);
    ``carrier_rank`` / ``csi_tag``: a fed-back carrier mapping (``phy.csi``; None: fixed);
    ``layered``: a hybrid codec's base in two layers or one (None: as the model sends it)."""
    from ..phy import framing
    from ._phyadapt import meta_from_header

    # Med-JSCC codecs (codec.api.Codec) can repeat their strong symbols; a stand-in may not
    kw = {"repeat_strong": float(repeat_strong)} if repeat_strong and hasattr(codec, "repeat_strong") else {}
    if layered is not None:
        kw["layered"] = bool(layered)
    enc = codec.encode(image, mask, snr_db=float(snr_db), cbr=float(cbr), **kw)
    frames = framing.frame_image(int(image_id), np.asarray(enc.symbols, np.complex64),
                                 enc.side_info, params, nonce=int(nonce), carrier_rank=carrier_rank,
                                 csi_tag=int(csi_tag))
    out = []
    for header, payload in frames:
        meta = meta_from_header(header)
        meta.update({"tx_snr_db": float(snr_db), "cbr_total": float(enc.cbr_total),
                     "cbr_payload": float(enc.cbr_payload), "height": int(image.shape[0]),
                     "width": int(image.shape[1])})
        out.append((meta, np.asarray(payload, np.complex64)))
    return enc, out


class jscc_tx(gr.basic_block):
    """Message ports: in ``image``, in ``snr``; out ``frames``, out ``sent_image`` (the image as
    encoded: u8 pixels, metadata image_id/height/width and the encoded ``mask`` when there is one,
    for displays and references).

    Args:
        image_path: file(s) to send (``;``-separated); empty = only images arriving on ``image``.
        mask_path: ROI mask for the file image(s) (any non-zero pixel is ROI), of the same size as
            each image (another size is an error naming both); empty = ``roi_backend``.
        roi_backend: ``none`` or a ``roi.get_segmenter`` backend (``auto``, ``litemedsam``, ...).
        model: codec name (``medjscc``...) or weights path; or a Codec object (Python API).
        cbr: target total channel bandwidth ratio.
        repeat_strong: share of the codec's strongest symbols sent twice, in different frames and
            on different subcarriers, out of the same cbr (0 = off): a lost or faded frame no
            longer takes the strong components with it. The receiver reads it from the side info.
        snr_db: CAU SNR until feedback arrives.
        image_size: codec input size (images are resized to image_size x image_size).
        repeat: how many times the file images are sent (0 = forever).
        interval_s: pause between images.
        wait_for_feedback, feedback_timeout_s: stop-and-wait pacing on ``snr`` messages.
        fft_len ... symbols_per_frame / params: OFDM layout used for framing.
        allow_random_weights: use random codec weights if the model cannot load (smoke tests).
        feedback_policy: ``instant`` | ``margin`` | ``predict`` | ``floor`` | ``fixed`` (or a FeedbackPolicy).
        feedback_margin_db: dB subtracted by ``margin`` / ``predict``.
        feedback_delay_ms: hold each SNR message this long before the CAU uses it.
        clock: (Python API) seconds for the feedback times; default ``time.monotonic``.
        meas_time: (Python API) ``f(message dict) -> seconds on clock`` when an estimate was
            measured, or None (then: arrival minus the ``delay_ms`` the message reports).
        csi_mapping: use the carrier ranking fed back on ``snr`` (off: the fixed interleaver).
        layered_until_feedback: hybrid models send a two-layer base while they encode for the
            design SNR (before the first usable SNR estimate; always with policy ``fixed``).
        layered_max_age_s: with ``layered_until_feedback``, also while the newest usable estimate
            is older than this (seconds on ``clock``; 0: an estimate never goes stale).
        max_retransmissions: > 0: when the receiver's verdict on ``ack`` names frames of an image
            that never arrived (``jscc_rx`` retransmit_hold_s > 0: it keeps the others), those
            frames are sent again, at most this many times per image, and the receiver decodes the
            completed image again (a hybrid whose base a lost frame took gets it back; an analog
            image loses its erasures). The last ``RESEND_MEMORY`` images are kept for it. A
            retransmission without a verdict for ``RETRANSMIT_TIMEOUT_S`` was lost too and goes
            again on the next SNR message (or while ``await_verdicts`` waits). 0 = off.
    """

    RESEND_MEMORY = 16   # images whose frames are kept for a retransmission
    # a retransmission without a verdict this long was lost too (the receiver, holding the image,
    # has nothing new to say): the next SNR message, or ``await_verdicts``, sends it again. Above
    # jscc_rx's 1 s image timeout
    RETRANSMIT_TIMEOUT_S = 2.0

    def __init__(self, image_path: str = "", mask_path: str = "", roi_backend: str = "none",
                 model="medjscc", cbr: float = 1.0 / 16, snr_db: float = 10.0, image_size: int = 256,
                 repeat: int = 1, interval_s: float = 0.0, wait_for_feedback: bool = False,
                 feedback_timeout_s: float = 1.0, fft_len: int = 64, cp_len: int = 16,
                 n_data_carriers: int = 48, n_pilot_carriers: int = 4, symbols_per_frame: int = 32,
                 params=None, allow_random_weights: bool = False, device: str = "cpu",
                 feedback_policy="instant", feedback_margin_db: float = 0.0,
                 feedback_delay_ms: float = 0.0, clock=None, meas_time=None,
                 repeat_strong: float = DEFAULT_REPEAT_STRONG, csi_mapping: bool = False,
                 layered_until_feedback: bool = False, layered_max_age_s: float = 0.0,
                 max_retransmissions: int = 0):
        gr.basic_block.__init__(self, name="medjscc_jscc_tx", in_sig=None, out_sig=None)
        self.params = params if params is not None else make_params(dict(
            fft_len=fft_len, cp_len=cp_len, n_data_carriers=n_data_carriers,
            n_pilot_carriers=n_pilot_carriers, symbols_per_frame=symbols_per_frame))
        self._device = device
        self.codec = get_codec(model, device=device, allow_random=allow_random_weights)
        self.image_paths = [p.strip() for p in str(image_path or "").split(";") if p.strip()]
        self.mask_path = str(mask_path or "")
        self.roi_backend = str(roi_backend or "none")
        self._segmenter = None
        self.image_size = int(image_size)
        self.repeat = int(repeat)
        self.interval_s = float(interval_s)
        self.wait_for_feedback = bool(wait_for_feedback)
        self.feedback_timeout_s = float(feedback_timeout_s)
        self._lock = threading.Lock()
        self._snr_db = float(snr_db)
        from .snr_feedback_policy import make_policy

        self._clock = clock if clock is not None else time.monotonic
        self._meas_time = meas_time
        self.policy = make_policy(feedback_policy, float(snr_db), feedback_margin_db, feedback_delay_ms)
        self.set_cbr(cbr)
        self.set_repeat_strong(repeat_strong)
        self.csi_mapping = bool(csi_mapping)
        self.layered_until_feedback = bool(layered_until_feedback)
        self.set_layered_max_age_s(layered_max_age_s)
        self._resend: collections.OrderedDict = collections.OrderedDict()   # image_id -> frames, tries
        self.retransmissions = 0   # images sent again (each time counts)
        self.frames_retransmitted = 0
        self.acks_received = 0     # verdicts about this transmission on port ack
        self._finished = False
        self.set_max_retransmissions(max_retransmissions)
        self._warned_not_hybrid = False
        self._csi = (0, None)      # the latest (csi_tag, carrier_rank) fed back
        self._feedback = threading.Event()
        self._awaited_image = None  # stop-and-wait: feedback about this image_id (or newer) releases the next
        self._stop = threading.Event()
        self._thread = None
        self._next_image_id = 0
        self.nonce = new_nonce()   # this transmission session (frames carry it)
        self.feedback_count = 0    # SNR messages received on port snr
        self.history: list[dict] = []  # one entry per sent image: image_id, snr_db, frames, time
        self.errors: list[str] = []
        for port in ("image", "snr", "ack"):
            self.message_port_register_in(pmt.intern(port))
        self.message_port_register_out(pmt.intern("frames"))
        self.message_port_register_out(pmt.intern("sent_image"))
        self.set_msg_handler(pmt.intern("image"), self._handle_image)
        self.set_msg_handler(pmt.intern("snr"), self._handle_snr)
        self.set_msg_handler(pmt.intern("ack"), self._handle_ack)

    # --- setters / getters (GRC callbacks) ---
    def set_snr_db(self, snr_db: float):
        """The design SNR (``fixed``; every policy before feedback): used from the next image on
        until a newer SNR message is usable."""
        with self._lock:
            self._snr_db = float(snr_db)
            self.policy.design_snr_db = float(snr_db)
            with self.policy._lock:
                self.policy._pending.clear()
                self.policy._usable.clear()

    def snr_db(self) -> float:
        """The SNR the CAU would encode the next image for."""
        with self._lock:
            return self.policy.choose(self._clock())

    def set_feedback_policy(self, policy: str):
        from .snr_feedback_policy import POLICIES

        if policy not in POLICIES:
            raise InputError(f"jscc_tx: feedback_policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.policy.policy = policy

    def set_feedback_margin_db(self, margin_db: float):
        self.policy.margin_db = float(margin_db)

    def set_feedback_delay_ms(self, delay_ms: float):
        self.policy.delay_s = max(0.0, float(delay_ms)) / 1000.0

    def set_repeat_strong(self, repeat_strong: float):
        from ..codec.repetition import code_for_fraction

        try:
            code_for_fraction(repeat_strong)
        except MedJSCCError as e:
            raise ValueError(f"jscc_tx repeat_strong: {e}") from None
        self._repeat_strong = float(repeat_strong)

    def set_cbr(self, cbr: float):
        if not (0 < float(cbr) <= 1):
            raise ValueError(f"jscc_tx cbr must be in (0, 1], got {cbr}")
        self._cbr = float(cbr)

    def set_model(self, model):
        """Switch the codec while running (GRC callback): the next image is encoded with it. Loads
        first, so a bad name raises here and the running model stays."""
        codec = get_codec(model, device=self._device)
        with self._lock:
            self.codec = codec

    def set_csi_mapping(self, on: bool):
        """Use the fed-back carrier ranking from the next image on (off: the fixed interleaver)."""
        self.csi_mapping = bool(on)

    def set_max_retransmissions(self, n: int):
        """Frames the receiver names as missing are sent again at most ``n`` times per image (0: off)."""
        n = int(n)
        if n < 0:
            raise InputError(f"jscc_tx: max_retransmissions must be >= 0, got {n}")
        with self._lock:
            self.max_retransmissions = n
            if n == 0:
                self._resend.clear()

    def set_layered_until_feedback(self, on: bool):
        """Hybrid models: a two-layer base for images encoded for the design SNR (from the next image on)."""
        self.layered_until_feedback = bool(on)

    def set_layered_max_age_s(self, age_s: float):
        """An SNR estimate older than this counts as no feedback for ``layered_until_feedback`` (0: never)."""
        age_s = float(age_s)
        if not (math.isfinite(age_s) and age_s >= 0):
            raise InputError(f"layered_max_age_s must be a finite number >= 0, got {age_s!r}")
        self.layered_max_age_s = age_s

    def _fresh_feedback(self) -> bool:
        """Whether ``policy.choose`` just used a fed-back estimate young enough to trust."""
        if not self.policy.last_from_feedback:
            return False
        age = self.policy.last_age_s
        return self.layered_max_age_s <= 0 or age is None or age <= self.layered_max_age_s

    def _layered_for_design_snr(self, codec) -> bool | None:
        """True where this image should go with a two-layer base (``layered_until_feedback``),
        else None (the model's own layout). Call after ``policy.choose``."""
        if not self.layered_until_feedback or self._fresh_feedback():
            return None
        from ..codec.hybrid_codec import HybridCodec

        if isinstance(codec, HybridCodec):
            return True
        if not self._warned_not_hybrid:   # the option has no meaning for a pure-analog codec
            self._warned_not_hybrid = True
            log.warning("jscc_tx: layered_until_feedback applies to hybrid models only; %s sends as it is",
                        getattr(codec, "name", type(codec).__name__))
        return None

    def set_interval_s(self, interval_s: float):
        self.interval_s = max(0.0, float(interval_s))

    # --- message handlers ---
    def _handle_snr(self, msg):
        value = snr_from_message(msg)
        if value is not None:
            self.feedback_count += 1    # evidence that a receiver hears us
            info = {}
            if pmt.is_dict(msg):
                try:
                    info = pmt.to_python(msg)
                except Exception:   # an odd value in the dict: the SNR alone still counts
                    info = {}
            self._note_csi(info)
            now = self._clock()
            t_meas = self._meas_time(info) if self._meas_time is not None else None
            upstream = float(info.get("delay_ms", 0.0) or 0.0) / 1000.0
            self.policy.observe(value, now, t_meas, upstream)
            if self._is_current(info.get("image_id")):
                self._feedback.set()
            if self._resend:   # a live link's feedback is this block's clock when nothing paces it
                self._retry_lost_retransmissions(time.monotonic())

    def _handle_ack(self, msg):
        """A receiver's verdict on an image (``jscc_rx`` metrics): good when it decoded and, for
        the hybrid codec, its base did not fail. Other messages are ignored."""
        try:
            info = pmt.to_python(msg) if pmt.is_dict(msg) else None
        except Exception:
            info = None
        if not isinstance(info, dict) or "decoded" not in info:
            return
        if info.get("nonce") is not None and int(info["nonce"]) != self.nonce:
            return   # about another transmission (a restarted or second transmitter)
        ok = bool(info["decoded"]) and info.get("base_ok") is not False
        try:
            attempt = int(info.get("attempt", 1))
        except (TypeError, ValueError):
            attempt = 1
        if attempt <= 1:   # a retransmission's verdict says nothing new about the MCS
            self.policy.acknowledge(ok)
        with self._lock:
            try:
                entry = self._resend.get(int(info.get("image_id")))
            except (TypeError, ValueError):
                entry = None
            if entry is not None:
                entry["awaiting"] = False
        if info.get("frames_missing") and info.get("image_id") is not None:
            # frames that never arrived, named by a receiver that keeps the rest (also under a
            # partly decoded analog image: the frames sent again complete it)
            self._retransmit(info["image_id"], info["frames_missing"])
        self.acks_received += 1

    def _retransmit(self, image_id, missing) -> int:
        """Send again the frames of ``image_id`` that the receiver never got; -> frames sent."""
        try:
            image_id = int(image_id)
            seqs = sorted({int(s) for s in (missing or ())})
        except (TypeError, ValueError):
            return 0
        with self._lock:
            entry = self._resend.get(image_id)
            if (entry is None or not seqs or self._finished or entry["tries"] >= self.max_retransmissions):
                return 0
            frames = [f for f in entry["frames"] if int(f[0]["seq"]) in seqs]
            if not frames:
                return 0
            entry.update(tries=entry["tries"] + 1, missing=seqs, awaiting=True, sent=time.monotonic())
            self.retransmissions += 1
            self.frames_retransmitted += len(frames)
            for h in reversed(self.history):
                if h["image_id"] == image_id:
                    h["retransmissions"] = entry["tries"]
                    break
        for meta, payload in frames:
            self.message_port_pub(pmt.intern("frames"), make_pdu(dict(meta, retransmission=entry["tries"]), payload))
        return len(frames)

    def _note_csi(self, info: dict):
        from ..phy.csi import csi_from_message

        try:
            csi = csi_from_message(info, self.params.n_data_carriers)
        except MedJSCCError as e:
            self.errors.append(f"bad carrier ranking in feedback: {e}")
            log.warning("jscc_tx: ignored feedback carrier ranking: %s", e)
            return
        if csi is not None:
            with self._lock:
                self._csi = csi

    def await_verdicts(self, timeout_s: float) -> bool:
        """Wait until the receiver's verdict on every image kept for retransmission (and on every
        retransmission) came back on ``ack`` (True), or ``timeout_s`` passed (False: those still
        awaited are given up). A retransmission with no verdict for ``RETRANSMIT_TIMEOUT_S`` was
        lost again and is sent again, within ``max_retransmissions``."""
        deadline = time.monotonic() + float(timeout_s)
        while True:
            with self._lock:
                waiting = [(i, e) for i, e in self._resend.items() if e["awaiting"]]
            if not waiting:
                return True
            now = time.monotonic()
            if now >= deadline or self._stop.is_set():
                with self._lock:
                    for _, e in waiting:
                        e["awaiting"] = False
                return False
            self._retry_lost_retransmissions(now)
            time.sleep(0.005)

    def _retry_lost_retransmissions(self, now: float) -> None:
        """Send again each retransmission that got no verdict for ``RETRANSMIT_TIMEOUT_S``, or give
        its image up when no tries are left (the image stays as the receiver has it)."""
        with self._lock:
            late = [(i, e) for i, e in self._resend.items()
                    if e["awaiting"] and e["tries"] > 0 and now - e["sent"] > self.RETRANSMIT_TIMEOUT_S]
        for image_id, e in late:
            if not self._retransmit(image_id, e["missing"]):
                with self._lock:
                    e["awaiting"] = False

    def await_feedback(self, timeout_s: float) -> bool:
        """Wait until feedback about the last image sent (or a newer one) arrived; False on timeout."""
        return self._feedback.wait(timeout_s)

    def _is_current(self, image_id) -> bool:
        """Feedback about the awaited image or a newer one (16-bit wrap), or about no image."""
        awaited = self._awaited_image
        if awaited is None or image_id is None:
            return True
        try:
            diff = (int(image_id) - int(awaited)) % IMAGE_ID_MODULO
        except (TypeError, ValueError):
            return True
        return diff < IMAGE_ID_MODULO // 2

    def _handle_image(self, msg):
        try:
            meta, data = split_pdu(msg)
            if "height" in meta and "width" in meta:
                h, w = int(meta["height"]), int(meta["width"])
            else:  # a square image may omit its size (as roi_segmenter allows)
                h = w = int(round(np.sqrt(0 if data is None else data.size)))
            if data is None or data.size != h * w:
                raise ValueError(f"image PDU has {0 if data is None else data.size} pixels, "
                                 f"expected height*width = {h * w}")
            image = np.asarray(data, np.uint8).reshape(h, w)
            mask = meta.get("mask")
            if mask is not None:
                mask = np.asarray(mask)
                if mask.size != h * w:   # never reshaped or stretched onto another image size
                    raise ValueError(f"mask has {mask.size} pixels but its image is {w}x{h} (width x height)")
                mask = mask.reshape(h, w).astype(bool)
        except Exception as e:
            self.errors.append(f"bad image PDU: {e}")
            log.warning("jscc_tx: dropped image PDU: %s", e)
            return
        self.send_image(image, mask, source=str(meta.get("name", "pdu")))

    # --- sending ---
    def _mask_for(self, image: np.ndarray, path_mask):
        if path_mask is not None:
            return path_mask
        if self.roi_backend in ("", "none"):
            return None
        if self._segmenter is None:
            from ..roi import get_segmenter

            self._segmenter = get_segmenter(self.roi_backend)
        return self._segmenter.segment(image)

    def send_image(self, image: np.ndarray, mask=None, source: str = "") -> list:
        """Encode ``image`` with the current CAU SNR and publish its frames. Returns the frames."""
        image = np.asarray(image, np.uint8)
        shape = (self.image_size, self.image_size) if self.image_size > 0 else image.shape
        if mask is not None:
            mask = np.asarray(mask, bool)
            if mask.shape != image.shape:   # never stretched onto the image: wrong anatomy
                raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but its image {source or '(image)'} "
                                 f"is {image.shape[1]}x{image.shape[0]} (width x height)")
            if mask.shape != shape:         # fitted exactly as its image is
                mask = fit_image(mask.astype(np.uint8) * 255, shape) >= 128
        image = fit_image(image, shape)
        mask = self._mask_for(image, mask)
        with self._lock:
            snr_db, cbr, codec = self.policy.choose(self._clock()), self._cbr, self.codec
            age = self.policy.last_age_s
            layered = self._layered_for_design_snr(codec)
            image_id = self._next_image_id
            self._next_image_id = (image_id + 1) % IMAGE_ID_MODULO
            csi_tag, rank = self._csi if self.csi_mapping else (0, None)
        _, frames = encode_frames(codec, image, mask, snr_db, cbr, image_id, self.params, self.nonce,
                                  self._repeat_strong, carrier_rank=rank, csi_tag=csi_tag, layered=layered)
        self.history.append({"image_id": image_id, "snr_db": snr_db, "frames": len(frames), "csi_tag": csi_tag,
                             "layered": bool(layered) if layered is not None else bool(getattr(codec, "layered", False)),
                             "time": time.monotonic(), "source": source,
                             "policy": self.policy.policy, "feedback_age_s": age,
                             "olla_offset_db": self.policy.olla_offset_db})
        self._awaited_image = image_id
        self._feedback.clear()
        sent = {"image_id": image_id, "height": image.shape[0], "width": image.shape[1], "source": source}
        if mask is not None:   # the ROI as encoded, fitted with its image (displays draw it)
            sent["mask"] = np.asarray(mask, np.uint8).reshape(-1)
        self.message_port_pub(pmt.intern("sent_image"), make_pdu(sent, image.reshape(-1)))
        for meta, _ in frames:
            meta["source"] = source
        if self.max_retransmissions > 0:   # kept before they leave: a verdict may come back at once
            with self._lock:
                self._resend[image_id] = {"frames": frames, "tries": 0, "awaiting": True,
                                          "sent": time.monotonic(), "missing": []}
                while len(self._resend) > self.RESEND_MEMORY:
                    self._resend.popitem(last=False)
        for meta, payload in frames:
            self.message_port_pub(pmt.intern("frames"), make_pdu(meta, payload))
        return frames

    def _run_files(self):
        try:
            items = []
            for p in self.image_paths:
                img, _ = read_image(p)
                shape = (self.image_size, self.image_size) if self.image_size > 0 else img.shape
                # the mask must have its image's size (an InputError naming both otherwise)
                mask = read_mask(self.mask_path, shape, p, img.shape) if self.mask_path else None
                img = fit_image(img, shape)
                items.append((img, mask, p))
            n = 0
            while not self._stop.is_set() and (self.repeat <= 0 or n < self.repeat):
                for img, mask, p in items:
                    if self._stop.is_set():
                        break
                    self.send_image(img, mask, source=p)
                    if self.wait_for_feedback:
                        self._feedback.wait(self.feedback_timeout_s)
                    if self.interval_s > 0:
                        self._stop.wait(self.interval_s)
                n += 1
            if self.max_retransmissions > 0:   # the last images' lost frames go before the end
                self.await_verdicts(self.feedback_timeout_s)
        except Exception as e:  # report and finish; a bad file must not hang the flowgraph
            self.errors.append(str(e))
            log.error("jscc_tx: %s", e)
        if not self._stop.is_set():
            self.finish()

    def finish(self):
        """Send ``eos`` downstream and mark this message-only block done (ends headless runs)."""
        with self._lock:
            self._finished = True   # no retransmission after the end of the stream
        self.message_port_pub(pmt.intern("frames"), pmt.intern("eos"))
        self.to_basic_block()._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(1)))

    def start(self):
        self._stop.clear()
        if self.image_paths:
            self._thread = threading.Thread(target=self._run_files, name="jscc_tx", daemon=True)
            self._thread.start()
        return True

    def stop(self):
        self._stop.set()
        self._feedback.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return True
