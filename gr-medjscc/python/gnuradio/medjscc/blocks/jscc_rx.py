"""JSCC RX: received frames -> image assembly (lost frames = erasures) -> Med-JSCC decoder.

Input ``pdus``: frame PDUs from ``ofdm_analog_rx`` (or ``symbol_channel``): complex64 payload and
header metadata ``seq, image_id, frame_count, payload_len, side_info_chunk, side_info_total,
nonce, n_symbols``, plus ``snr_db`` (per-frame estimate) and optionally ``erased`` (cut-off
symbols). PDUs without a valid header (``crc_ok`` false) are dropped.

An image is decoded when all its frames are in, when a frame of a newer image (or of another
transmission) arrives (the missing frames become erasures), after ``timeout_s`` without new
frames, or at stop. Decoding SNR (``snr_source``): ``frames`` = mean of the image's per-frame
post-equaliser SNRs (``eff_snr_db`` where the receiver states it, else ``snr_db``; averaged over
the noise variance), ``feedback`` = latest value on port ``snr`` (e.g.
``snr_feedback``), ``fixed`` = ``snr_db``. The side info is rebuilt from any enough frames
(``phy.framing``); when it cannot be, or fails its CRC, a model that needs it does not decode
and the result says so (``status``), and a decoder error is reported as ``failed`` -- the block
never raises into the scheduler.

Outputs: ``image`` (PDU, uint8 pixels row-major, metadata image_id, height, width, path) and
``metrics`` (dict: image_id, nonce, status, decoded, frames_ok, frames_total, snr_est_db,
decode_snr_db, side_info_ok, side_info_status, erased_fraction, psnr / roi_psnr / ms_ssim when a reference image (and mask) is known, path). With ``out_dir`` set,
each image is written as PNG (and as DICOM when the reference file is DICOM).
"""
from __future__ import annotations

import collections
import logging
import math
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from ..errors import MedJSCCError
from ._codecadapt import fit_image, get_codec, read_image, read_mask, write_outputs
from ._phyadapt import header_from_meta, make_params
from ._pmtutil import complex_pdu, make_pdu, snr_from_message, to_pmt

log = logging.getLogger(__name__)
SNR_SOURCES = ("frames", "feedback", "fixed")
# posted by jscc_rx's timer to its own "pdus" port: timeouts are checked behind the queued frames
_EXPIRE_TICK = pmt.intern("medjscc_jscc_rx_expire_tick")


def mean_snr_db(values) -> float:
    """Mean of dB values taken over linear SNR (what an average noise variance corresponds to)."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return float("nan")
    return 10.0 * math.log10(float(np.mean([10.0 ** (-v / 10.0) for v in vals])) ** -1)


def expected_symbols(codec, side_info, shape, cbr, frame_count, per) -> int | None:
    """Payload length of an image whose last frame was lost (None if it cannot be known).

    The encoder fills the CBR budget both ends agree on: payload = cbr * pixels minus the side
    info's share (``Codec._payload_budget``; a public codec helper is preferred when present).
    """
    try:
        target_total = cbr * shape[0] * shape[1]
        if hasattr(codec, "payload_symbols"):
            n = int(codec.payload_symbols(shape, cbr, side_info))
        elif side_info is None and getattr(codec.cfg, "variable_length", False):
            return None
        else:
            n = int(codec._payload_budget(target_total, side_info or b"", shape))
    except Exception:
        return None
    lo, hi = (frame_count - 1) * per + 1, frame_count * per
    return n if lo <= n <= hi else None


# what happened to an image, in the result line, the JSON and the GRC message
STATUS_DECODED = "decoded"                 # every frame and the side info arrived
STATUS_PARTIAL = "decoded_partial"         # decoded with some frames lost (their symbols erased)
STATUS_SIDE_MISSING = "side_info_missing"  # too few frames to rebuild the side info the model needs
STATUS_SIDE_CORRUPT = "side_info_corrupt"  # the rebuilt side info failed its CRC
STATUS_FAILED = "failed"                   # the decoder raised (message in ``error``)
STATUS_DROPPED = "dropped"                 # never decoded: the decoder fell behind or the receiver stopped
DECODED_STATUSES = (STATUS_DECODED, STATUS_PARTIAL)


def erasure_snr_db(snr_db: float, erased_share: float) -> float:
    """SNR of an AWGN channel with the same mean error as symbols at ``snr_db`` of which
    ``erased_share`` were lost and filled with zeros (each lost symbol: error 1, its power). The
    decoder, told this SNR, smooths what the lost frames took away; told the channel SNR it
    trusts the zeros (measured on 12 test DRRs with one of 3 frames lost: +2.3 dB ROI-PSNR at 20 dB,
    +0.1 dB at 10 dB)."""
    if not erased_share > 0 or not math.isfinite(snr_db):
        return snr_db
    s = 10.0 ** (snr_db / 10.0)
    mse = (1.0 - erased_share) / (1.0 + s) + erased_share
    return 10.0 * math.log10(max(1.0 / mse - 1.0, 1e-3))


def _repeats_symbols(side_info) -> bool:
    """The side info states repeated strong symbols (``codec.repetition``)."""
    from ..codec.sideinfo import repeat_code_of

    try:
        return bool(side_info) and repeat_code_of(side_info) > 0
    except MedJSCCError:
        return False


def _newer(a: int, b: int) -> bool:
    """image_id ``a`` came after ``b`` (16-bit wrap-around)."""
    return 0 < (a - b) % 65536 < 32768


def needs_side_info(codec) -> bool:
    if getattr(codec, "needs_side_info", False):   # the hybrid: its layout is in the side info
        return True
    cfg = getattr(codec, "cfg", None)
    return bool(getattr(cfg, "variable_length", False) or getattr(cfg, "linear_path", False))


def ack_message(result: dict) -> dict:
    """The verdict on one image for the transmitter (``jscc_tx`` port ``ack``): its outer loop, and
    its retransmissions: ``attempt`` from the second transmission of an image on (absent: the
    first) and, where frames never came, ``frames_missing`` (their sequence numbers)."""
    msg = {"image_id": int(result["image_id"]), "nonce": int(result["nonce"]), "decoded": bool(result.get("decoded"))}
    if int(result.get("attempt", 1)) > 1:
        msg["attempt"] = int(result["attempt"])
    if result.get("frames_missing") and result.get("frames_held"):   # only frames that can still complete it
        msg["frames_missing"] = [int(s) for s in result["frames_missing"]]
    if isinstance(result.get("base_ok"), bool):
        # a two-layer base that lost its finer layer was sent at too high an MCS: the outer loop
        # must back off as for a lost base, though the first layer is shown
        msg["base_ok"] = result["base_ok"] and result.get("base_layers") != 1
    return msg


def _note_sections(result: dict, info: dict) -> bool:
    """Put a hybrid frame's section outcome in ``result`` (``side_frame_ok``, ``base_ok``,
    ``shown``, ``layout``, ``refined``); -> whether every section decoded. Decoded are a full
    frame, the base layer alone (side frame lost: a real JPEG2000 image) and a two-layer base's
    first layer with the analog residual (its finer layer lost: ``first_layer``). A lost base leaves
    the analog residual over grey (about 10-16 dB ROI-PSNR on DRRs): shown, but status ``failed``
    and not decoded, as when nothing decoded at all."""
    base_ok = info.get("base_ok")
    shown = str(info.get("shown", ""))
    result.update(side_frame_ok=bool(info.get("side_ok")), base_ok="none" if base_ok is None else bool(base_ok),
                  shown=shown, layout=str(info.get("label", "")), refined=bool(info.get("refined")))
    if info.get("design_snr_db") is not None:
        result["design_snr_db"] = float(info["design_snr_db"])
    if info.get("base_layers") is not None:
        result["base_layers"] = int(info["base_layers"])
    result["error"] = {"analog_over_grey": "hybrid: the base frame failed: only the analog residual, over grey",
                       "base_only": "hybrid: the side frame failed: the base layer alone",
                       "first_layer": "hybrid: the finer base layer failed: its first layer and the analog residual",
                       "nothing": "hybrid: the side frame and the base frame both failed: nothing decoded",
                       }.get(shown, "")
    from ..codec.hybrid_codec import DECODED_SHOWN

    result["decoded"] = shown in DECODED_SHOWN
    return shown == "hybrid"


class JsccReceiverCore:
    """Frame gathering and decoding without GNU Radio (used by ``jscc_rx`` and the loopback).

    Images are keyed by (nonce, image_id): a restarted transmitter draws a new nonce, so its frames
    never merge with an older transmission's. An image is finished when all its frames are in,
    when a frame of a newer image of the same transmission (or of another transmission) arrives,
    after a timeout, or at flush. Each result's ``status`` says what happened (``decoded``,
    ``decoded_partial``, ``side_info_missing``, ``side_info_corrupt``, ``failed``) and ``decoded``
    is true only for the first two: an image the decoder could not produce is never counted.
    """

    DONE_MEMORY_S = 5.0   # late duplicates of a finished image are dropped this long
    MAX_HELD = 16         # images whose frames are kept for a retransmission, at most

    def __init__(self, codec, params, shape=(256, 256), cbr: float = 1 / 16,
                 snr_source: str = "frames", snr_db: float = 10.0, reference=None, reference_mask=None,
                 retransmit_hold_s: float = 0.0):
        from ..phy.framing import ImageAssembler

        if snr_source not in SNR_SOURCES:
            raise ValueError(f"jscc_rx snr_source must be one of {SNR_SOURCES}, got {snr_source!r}")
        if not float(retransmit_hold_s) >= 0:
            raise ValueError(f"jscc_rx retransmit_hold_s must be >= 0, got {retransmit_hold_s!r}")
        # an image that ended with frames missing keeps its frames this long: frames the TX sends
        # again (``jscc_tx`` max_retransmissions) fill the gaps and the image is decoded again
        self.retransmit_hold_s = float(retransmit_hold_s)
        self._held: collections.OrderedDict = collections.OrderedDict()   # key -> {until, st, attempt}
        self._attempt: dict[tuple[int, int], int] = {}                  # key -> transmission (1, 2, ...)
        self.images_completed_by_retransmission = 0
        self.codec = codec
        self.params = params
        self.shape = tuple(int(s) for s in shape)
        self.cbr = float(cbr)
        self.snr_source = snr_source
        self.fixed_snr_db = float(snr_db)
        self.feedback_snr_db = None
        self.reference = reference
        self.reference_mask = reference_mask
        self.assembler = ImageAssembler(params)
        self._pending: dict[tuple[int, int], dict] = {}   # (nonce, image_id) -> {snrs, last, first}
        self._done: dict[tuple[int, int], float] = {}     # recently finished keys -> time
        self.frames_dropped = 0
        # jscc_rx with a decode thread sets this: an image that ends is handed back as a job
        # (``take``) for ``decode_job`` instead of being decoded in the caller
        self.defer = False

    def note_csi(self, info: dict) -> None:
        """Learn a carrier ranking the receiver's feedback issued (``snr_feedback``'s dict), so
        images sent with its tag can be de-interleaved."""
        from ..phy.csi import csi_from_message

        try:
            csi = csi_from_message(info, self.params.n_data_carriers)
        except MedJSCCError as e:
            log.warning("jscc_rx: ignored feedback carrier ranking: %s", e)
            return
        if csi is not None and csi[0]:
            self.assembler.carrier_ranks[csi[0]] = csi[1]

    def _end(self, key):
        return self.take(key) if self.defer else self.finish(key)

    def add_frame(self, meta: dict, payload) -> list[dict]:
        """Add one frame; returns the results of images finished by it (possibly several)."""
        finished = []
        if not meta.get("crc_ok", True):
            self.frames_dropped += 1
            return finished
        try:
            header = header_from_meta(meta)
        except Exception:
            self.frames_dropped += 1
            return finished
        key = (int(header.nonce), int(header.image_id))
        now = time.monotonic()
        for k in [k for k, t in self._done.items() if now - t >= self.DONE_MEMORY_S]:
            del self._done[k]
        self._release_held(now)
        if key in self._held and key not in self._pending and header.seq in self._missing(key):
            # a frame the image lacked, sent again: gather it into the frames kept, decode again
            held = self._held.pop(key)
            self._done.pop(key, None)
            self._pending[key] = held["st"]
            self._attempt[key] = held["attempt"] + 1
        if key in self._done and key not in self._pending:
            self.frames_dropped += 1  # late duplicate of an image already decoded
            return finished
        erased = meta.get("erased")
        if erased is not None:
            erased = np.asarray(erased).astype(bool)
            if erased.size != header.payload_len:
                erased = None
        inv_snr = meta.get("inv_snr")   # per symbol 1/SNR_i (ofdm_analog_rx), for CSI-aware decoders
        if inv_snr is not None:
            inv_snr = np.asarray(inv_snr, np.float32)
            if inv_snr.size != header.payload_len:
                inv_snr = None
        if not self.assembler.add(header, np.asarray(payload, np.complex64), inv_snr, erased):
            self.frames_dropped += 1
            return finished
        st = self._pending.setdefault(key, {"snrs": [], "eff": [], "first": now})
        st["last"] = now
        st.setdefault("equalizer", meta.get("equalizer"))
        if meta.get("snr_db") is not None:
            st["snrs"].append(float(meta["snr_db"]))
            # the decoder gets the post-equaliser SNR where the receiver states it (selective channels)
            st["eff"].append(float(meta.get("eff_snr_db", meta["snr_db"])))
        # images that this frame shows to be over: older ids of the same transmission (frames
        # arrive in order) and every image of another transmission (the sender restarted)
        for other in [k for k in self._pending if k != key]:
            if other[0] != key[0] or _newer(key[1], other[1]):
                finished.append(self._end(other))
        if self.assembler.is_complete(key):
            finished.append(self._end(key))
        return finished

    def expire(self, timeout_s: float, now: float | None = None) -> list[dict]:
        """End the images without a new frame for more than ``timeout_s`` before ``now``."""
        now = time.monotonic() if now is None else now
        self._release_held(now)
        return [self._end(k) for k, st in list(self._pending.items()) if now - st["last"] > timeout_s]

    def _missing(self, key) -> set:
        return set(self.assembler.missing_frames(key))

    def _release_held(self, now: float) -> None:
        """Forget the frames of held images whose retransmission did not come in time (and the
        oldest beyond ``MAX_HELD``)."""
        for k in [k for k, h in self._held.items() if now >= h["until"]]:
            self._forget(k)
        while len(self._held) > self.MAX_HELD:
            self._forget(next(iter(self._held)))

    def _forget(self, key) -> None:
        self._held.pop(key, None)
        self._attempt.pop(key, None)
        self.assembler.discard(key)

    @property
    def held_images(self) -> int:
        """Images whose frames wait for a retransmission."""
        return len(self._held)

    def flush(self) -> list[dict]:
        return [self._end(k) for k in list(self._pending)]

    def decode_snr(self, snr_est_db: float) -> float:
        if self.snr_source == "feedback" and self.feedback_snr_db is not None:
            return self.feedback_snr_db
        if self.snr_source == "frames" and math.isfinite(snr_est_db):
            return snr_est_db
        return self.fixed_snr_db

    def finish(self, key) -> dict:
        """End an image and decode it now."""
        return self.decode_job(self.take(key))

    def take(self, key) -> dict:
        """End an image's gathering: its frames assembled (cheap; the decoding SNR is fixed now,
        e.g. the feedback value at this moment), ready for ``decode_job`` or ``drop_job``."""
        from ..phy.framing import SIDE_OK

        if not isinstance(key, tuple):    # an image_id: its newest transmission
            key = next((k for k in reversed(list(self._pending)) if k[1] == int(key)), (0, int(key)))
        st = self._pending.pop(key, {"snrs": [], "eff": []})
        now = time.monotonic()
        self._done[key] = now
        snr_est = mean_snr_db(st["snrs"])
        decode_snr = self.decode_snr(mean_snr_db(st["eff"]))
        attempt = self._attempt.get(key, 1)
        result = {"image_id": int(key[1]), "nonce": int(key[0]), "snr_est_db": snr_est,
                  "decode_snr_db": float(decode_snr), "error": "", "status": STATUS_FAILED,
                  "decoded": False, "frames_ok": 0, "frames_total": 0, "side_info_ok": False,
                  "attempt": attempt}
        missing = self.assembler.missing_frames(key)
        if missing:
            result["frames_missing"] = missing
        elif attempt > 1:
            self.images_completed_by_retransmission += 1
        # the model that sizes the image also decodes it, even if set_model swaps it before the
        # decode thread gets to this image
        job = {"result": result, "asm": None, "codec": self.codec, "equalizer": st.get("equalizer")}
        try:
            count = self.assembler.frame_count(key)
            n_sym = None
            if count and not self.assembler.is_complete(key):
                # frames of a transmitter that does not state the image size: size a fixed-budget image
                probe = self.assembler.assemble(key)
                n_sym = expected_symbols(job["codec"], probe.side_info, self.shape, self.cbr, count,
                                         self.assembler.per)
            asm = self.assembler.assemble(key, n_sym)
            result.update(frames_ok=int(asm.frames_received), frames_total=int(asm.frame_count),
                          side_info_ok=asm.side_info_status == SIDE_OK,
                          side_info_status=asm.side_info_status, csi_tag=int(asm.csi_tag),
                          erased_fraction=float(np.mean(asm.erased)) if asm.erased.size else 1.0)
            job["asm"] = asm
        except Exception as e:  # garbled input: reported as failed, never a crash
            log.warning("jscc_rx: image %d could not be assembled: %s", key[1], e)
            result["error"] = str(e)
        finally:
            if self.retransmit_hold_s > 0 and missing and key[0] is not None:
                result["frames_held"] = True   # the missing frames, sent again, complete the image
                self._held[key] = {"until": now + self.retransmit_hold_s, "st": st, "attempt": attempt}
                self._held.move_to_end(key)
                self._release_held(now)
            else:
                self._forget(key)
        return job

    def drop_job(self, job, why: str) -> dict:
        """The result of an image that is not decoded (status ``dropped``, ``why`` in ``error``)."""
        result = job["result"]
        result.update(status=STATUS_DROPPED, decoded=False, error=why,
                      image=np.full(self.shape, 128, np.uint8))
        return result

    def decode_job(self, job) -> dict:
        """Decode an image ended by ``take`` (the expensive part; needs no receiver state but the codec)."""
        from ..phy.framing import SIDE_CORRUPT

        result, asm, key = job["result"], job["asm"], (job["result"]["nonce"], job["result"]["image_id"])
        codec = job.get("codec") or self.codec   # one model for the whole image (see take)
        decode_snr = result["decode_snr_db"]
        image = None
        try:
            if asm is None:
                pass   # assembly failed: reported by take
            elif not asm.mapping_known:
                result["error"] = (f"sent with carrier mapping csi_tag={asm.csi_tag}, which this receiver "
                                   "never fed back: connect snr_feedback's snr output to jscc_rx's snr input")
            elif asm.side_info_status not in ("ok", "none") and needs_side_info(codec):
                result["status"] = STATUS_SIDE_CORRUPT if asm.side_info_status == SIDE_CORRUPT \
                    else STATUS_SIDE_MISSING
                result["error"] = (f"side info {asm.side_info_status} ({asm.frames_received} of "
                                   f"{asm.frame_count} frames): the model cannot decode without it")
            else:
                if self.snr_source == "frames" and asm.erased.size:
                    unique_erased = getattr(codec, "unique_erased", lambda _s, e: e)(asm.side_info, asm.erased)
                    decode_snr = erasure_snr_db(decode_snr, float(np.mean(unique_erased)))
                    result["decode_snr_db"] = float(decode_snr)
                symbols = asm.symbols
                if (asm.noise_var is not None and job.get("equalizer") == "zf"
                        and (getattr(getattr(codec, "cfg", None), "csi_input", False)
                             or _repeats_symbols(asm.side_info))):
                    # a CSI decoder, and the combining of repeated symbols, take MMSE estimates:
                    # ZF symbols shrink by 1/(1 + 1/SNR_i)
                    symbols = (symbols / (1.0 + np.where(np.isfinite(asm.noise_var), asm.noise_var, 0.0))
                               ).astype(np.complex64)
                elif (asm.noise_var is not None and job.get("equalizer") == "mmse"
                        and getattr(codec, "wants_unbiased_symbols", False)):
                    # soft demapping and LLSE expect x + n: undo MMSE's shrinking by 1/(1 + 1/SNR_i)
                    symbols = (symbols * (1.0 + np.where(np.isfinite(asm.noise_var), asm.noise_var, 0.0))
                               ).astype(np.complex64)
                complete = asm.frames_received >= asm.frame_count and not asm.erased.any()
                if hasattr(codec, "decode_with_info"):   # the hybrid: it says which sections decoded
                    image, info = codec.decode_with_info(symbols, asm.side_info, self.shape, snr_db=decode_snr,
                                                         erased=asm.erased, inv_snr=asm.noise_var)
                    complete = _note_sections(result, info) and complete
                else:
                    image = codec.decode(symbols, asm.side_info, self.shape, snr_db=decode_snr,
                                         erased=asm.erased, inv_snr=asm.noise_var)
                    result["decoded"] = True
                if result["decoded"]:
                    result["status"] = STATUS_DECODED if complete else STATUS_PARTIAL
        except Exception as e:  # partial/garbled input: reported as failed, never a crash
            log.warning("jscc_rx: image %d could not be decoded: %s", key[1], e)
            result["error"] = str(e)
        if image is None:
            image = np.full(self.shape, 128, np.uint8)   # what a display shows; not counted as decoded
        result["image"] = image
        if self.reference is not None and result["decoded"]:
            from .. import metrics

            try:
                result.update(metrics.image_metrics(self.reference, image, self.reference_mask))
            except Exception as e:
                result["error"] = (result["error"] + f"; metrics: {e}").strip("; ")
        return result


class jscc_rx(gr.basic_block):
    """Message ports: in ``pdus``, in ``snr``; out ``image``, out ``metrics``, out ``ack`` (the
    verdict on each image for the transmitter's outer loop: ``{image_id, nonce, decoded}`` and,
    from the hybrid codec, ``base_ok``; nothing else, as it may cross the network).

    Args:
        model: codec name or weights path (or a Codec object from Python).
        image_size: decoded image size (square; must match the transmitter).
        cbr: target CBR of the transmitter (sizes a fixed-length image whose last frame was lost).
        snr_source: ``frames`` | ``feedback`` | ``fixed``; snr_db: the fixed/initial value.
        out_dir: folder for rx_<image_id>.png (empty = do not write files).
        reference_path, reference_mask_path: original image (and ROI mask) for PSNR / ROI-PSNR.
        timeout_s: decode an incomplete image after this long without new frames.
        fft_len ... symbols_per_frame / params: OFDM layout (frame size for assembly).
        keep_identifiers: a DICOM reference's patient/study identity goes into the DICOM output
            (off: the output is de-identified, PS3.15 Basic Profile).
        max_pending_images: > 0: images are decoded in a thread of their own (the message handler
            only gathers frames, so GNU Radio's unbounded message queue never fills up with
            undecoded frames), and when more than this many ended images wait for the decoder, the
            oldest waiting one is dropped: a result with status ``dropped``, counted in
            ``images_dropped`` (``medjscc rx``: 32). 0 = decode in the message handler, every image
            kept and published while the flowgraph runs (GRC and loopback flowgraphs end with their
            stream, and a message sink downstream stops with them).
        stop_timeout_s: at stop, waiting images are decoded for at most this long; those left are
            reported ``dropped``. 0 = decode them all.
        retransmit_hold_s: > 0: an image that ended with frames missing keeps its frames this
            long; the ack names the missing frames, and the ones a transmitter sends again
            (``jscc_tx`` max_retransmissions) complete the image, which is decoded and published
            again (``attempt`` 2, 3, ...). 0 = off.

    Results may leave out of image order when an image is dropped while an older one decodes.
    """

    def __init__(self, model="medjscc", image_size: int = 256, cbr: float = 1.0 / 16,
                 snr_source: str = "frames", snr_db: float = 10.0, out_dir: str = "",
                 reference_path: str = "", reference_mask_path: str = "", timeout_s: float = 1.0,
                 fft_len: int = 64, cp_len: int = 16, n_data_carriers: int = 48,
                 n_pilot_carriers: int = 4, symbols_per_frame: int = 32, params=None,
                 allow_random_weights: bool = False, device: str = "cpu", keep_results: int = 1000,
                 keep_identifiers: bool = False, max_pending_images: int = 0, stop_timeout_s: float = 0.0,
                 retransmit_hold_s: float = 0.0):
        gr.basic_block.__init__(self, name="medjscc_jscc_rx", in_sig=None, out_sig=None)
        self.params = params if params is not None else make_params(dict(
            fft_len=fft_len, cp_len=cp_len, n_data_carriers=n_data_carriers,
            n_pilot_carriers=n_pilot_carriers, symbols_per_frame=symbols_per_frame))
        shape = (int(image_size), int(image_size))
        reference, ref_mask, self._dicom_template = None, None, None
        if reference_path:
            reference, self._dicom_template = read_image(reference_path)
            if reference_mask_path:   # of the reference's own size (an InputError naming both)
                ref_mask = read_mask(reference_mask_path, shape, reference_path, reference.shape)
            reference = fit_image(reference, shape)
        self._device = device
        codec = get_codec(model, device=device, allow_random=allow_random_weights)
        self.core = JsccReceiverCore(codec, self.params, shape, cbr, snr_source, snr_db,
                                     reference, ref_mask, retransmit_hold_s=retransmit_hold_s)
        self.out_dir = str(out_dir or "")
        self.keep_identifiers = bool(keep_identifiers)
        self.timeout_s = float(timeout_s)
        self.results: list[dict] = []      # the last keep_results results
        self.results_total = 0              # every result ever produced (never capped)
        self._keep = int(keep_results)
        if int(max_pending_images) < 0 or not float(stop_timeout_s) >= 0:
            raise ValueError("jscc_rx max_pending_images and stop_timeout_s must be >= 0, got "
                             f"{max_pending_images!r}, {stop_timeout_s!r}")
        self.max_pending_images = int(max_pending_images)
        self.stop_timeout_s = float(stop_timeout_s)
        self.images_decoded = 0             # images with a decoded result (a retransmission's counted once)
        self.images_total = 0               # images ended: first results (retransmissions excluded)
        self._decoded_keys: collections.OrderedDict = collections.OrderedDict()   # recent decoded images
        self.images_dropped = 0             # results with status "dropped"
        self.last_result_time = None        # time.monotonic() of the latest result
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)   # decode queue changed / a decode ended
        self._jobs: collections.deque = collections.deque()   # ended images waiting for the decoder
        self._busy = 0                      # images being decoded now (0 or 1)
        self._quit = False
        self._worker = None
        self._stop = threading.Event()
        self._stopping = False   # stop() is running: no more verdicts on "ack"
        self._timer = None
        self._tick_out = False              # an expiry tick waits in the "pdus" queue
        for port in ("pdus", "snr"):
            self.message_port_register_in(pmt.intern(port))
        for port in ("image", "metrics", "ack"):
            self.message_port_register_out(pmt.intern(port))
        self.set_msg_handler(pmt.intern("pdus"), self._handle_pdu)
        self.set_msg_handler(pmt.intern("snr"), self._handle_snr)

    # --- setters (GRC callbacks) ---
    def set_snr_source(self, source: str):
        if source not in SNR_SOURCES:
            raise ValueError(f"jscc_rx snr_source must be one of {SNR_SOURCES}, got {source!r}")
        self.core.snr_source = source

    def set_retransmit_hold_s(self, hold_s: float):
        """How long an image with frames missing keeps them for a retransmission (0: off)."""
        if not float(hold_s) >= 0:
            raise ValueError(f"jscc_rx retransmit_hold_s must be >= 0, got {hold_s!r}")
        with self._lock:
            self.core.retransmit_hold_s = float(hold_s)

    def set_snr_db(self, snr_db: float):
        self.core.fixed_snr_db = float(snr_db)

    def set_timeout_s(self, timeout_s: float):
        self.timeout_s = float(timeout_s)

    def set_model(self, model):
        """Switch the codec while running (GRC callback): the next image decodes with it. Loads
        first, so a bad name raises here and the running model stays."""
        self.core.codec = get_codec(model, device=self._device)

    # --- handlers ---
    def _handle_snr(self, msg):
        v = snr_from_message(msg)
        if v is not None:
            self.core.feedback_snr_db = v
        if pmt.is_dict(msg) and pmt.dict_has_key(msg, pmt.intern("csi_tag")):
            self.core.note_csi(pmt.to_python(msg))

    def _handle_pdu(self, msg):
        if pmt.is_pair(msg) and pmt.eq(pmt.car(msg), _EXPIRE_TICK):
            # every frame queued before the tick was posted is in now: an image still without a
            # new frame since then had none for real (not merely one waiting behind a busy handler)
            with self._lock:
                self._tick_out = False
                self._queue(self.core.expire(self.timeout_s, now=pmt.to_double(pmt.cdr(msg))))
            return
        pdu = complex_pdu(msg)
        if pdu is None:
            return
        meta, data = pdu
        with self._lock:   # gather (and, without a decode thread, decode) and publish under one lock
            self._queue(self.core.add_frame(meta, data))

    def _queue(self, jobs):
        """Hand ended images to the decode thread, dropping the oldest waiting ones beyond
        ``max_pending_images``; without a running decode thread (the block is not started, e.g.
        driven from Python) decode them here. Call with ``self._lock`` held."""
        if not jobs:
            return
        if not self.core.defer:   # the core decoded them already (block not started)
            self._emit(jobs)
            return
        if self._worker is None or not self._worker.is_alive() or self._quit:
            self._emit([self.core.decode_job(j) for j in jobs])
            return
        self._jobs.extend(jobs)
        while self.max_pending_images and len(self._jobs) > self.max_pending_images:
            self._emit([self.core.drop_job(
                self._jobs.popleft(), f"dropped: the decoder fell behind ({self.max_pending_images} "
                "images were waiting)")])
        self._work.notify_all()

    def backlog(self) -> int:
        """Ended images not yet published: waiting for the decoder or being decoded."""
        with self._lock:
            return len(self._jobs) + self._busy

    def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until every ended image is decoded and published (True) or ``timeout_s`` passed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._work:
            while self._jobs or self._busy:
                if self._worker is None or not self._worker.is_alive():
                    self._emit([self.core.decode_job(j) for j in self._jobs])
                    self._jobs.clear()
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._work.wait(0.1 if left is None else min(left, 0.1))
        return True

    def _decode_loop(self):
        while True:
            with self._work:
                while not self._jobs and not self._quit:
                    self._work.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._busy = 1
            try:   # decoded outside the lock: frames keep being gathered meanwhile
                result = self.core.decode_job(job)
            except Exception as e:   # decode_job reports its own errors; this is a last guard
                result = self.core.drop_job(job, f"decode thread error: {e}")
            with self._work:
                self._busy = 0
                self._emit([result])
                self._work.notify_all()

    def results_since(self, seen: int) -> tuple[list[dict], int]:
        """(results after the first ``seen`` ever produced, the count produced so far). Only the last
        ``keep_results`` are retained, so a reader that fell further behind gets those."""
        with self._lock:
            new = self.results_total - int(seen)
            return (list(self.results[-new:]) if new > 0 else []), self.results_total

    def _emit(self, results):
        """Publish finished images (call with ``self._lock`` held)."""
        for r in results:
            if self.out_dir and r.get("status") != STATUS_DROPPED:
                try:
                    paths = write_outputs(r["image"], self.out_dir, f"rx_{r['image_id']:05d}",
                                          self._dicom_template, keep_identifiers=self.keep_identifiers,
                                          cbr=self.core.cbr)
                    r["path"] = str(paths[0])
                except Exception as e:
                    r["error"] = (r.get("error", "") + f"; write: {e}").strip("; ")
            # publish before counting: a caller that stops the flowgraph once it sees the count
            # (link.run_rx) never stops it under a publish still in progress
            img = r["image"]
            self.message_port_pub(pmt.intern("image"), make_pdu(
                {"image_id": r["image_id"], "height": img.shape[0], "width": img.shape[1],
                 "path": r.get("path", ""), "status": r.get("status", ""),
                 "decoded": bool(r.get("decoded", False))}, img.reshape(-1)))
            # a dropped image was never judged; verdicts found while stopping reach no transmitter
            # in time, and the ZMQ sink they may go to is stopping too
            if r.get("status") != STATUS_DROPPED and not self._stopping:
                self.message_port_pub(pmt.intern("ack"), to_pmt(ack_message(r)))
            self.message_port_pub(pmt.intern("metrics"), to_pmt(
                {k: v for k, v in r.items() if k != "image"}))
            self.results.append(r)
            self.results_total += 1
            self.images_total += int(r.get("attempt", 1)) == 1
            key = (r.get("nonce"), r.get("image_id"))
            if r.get("decoded") and key not in self._decoded_keys:   # an image counts once
                self.images_decoded += 1
                self._decoded_keys[key] = True
                if len(self._decoded_keys) > 4 * JsccReceiverCore.MAX_HELD:
                    self._decoded_keys.popitem(last=False)
            self.images_dropped += r.get("status") == STATUS_DROPPED
            self.last_result_time = time.monotonic()
            if len(self.results) > self._keep:
                del self.results[0]

    def _expiry_loop(self):
        # timeouts are checked in the message handler, behind the frames already queued: a loaded
        # host (or a decode in the handler) that lets frames wait in GNU Radio's queue longer than
        # timeout_s must not cut their image in two. One tick at a time, stamped when posted.
        while not self._stop.wait(min(0.1, max(self.timeout_s / 4, 0.01))):
            if not self._tick_out:
                self._tick_out = True
                self.to_basic_block()._post(pmt.intern("pdus"), pmt.cons(
                    _EXPIRE_TICK, pmt.from_double(time.monotonic())))

    def flush(self, timeout_s: float | None = None) -> list[dict]:
        """End every image still gathering frames and decode everything waiting (also done at
        stop); returns the results this produced (up to ``timeout_s`` seconds of decoding)."""
        with self._lock:
            seen = self.results_total
            self._queue(self.core.flush())
        self.drain(timeout_s)
        return self.results_since(seen)[0]

    def start(self):
        self._stopping = False
        self._stop.clear()
        self._tick_out = False
        threaded = self.max_pending_images > 0
        with self._lock:
            self._quit = False
            self.core.defer = threaded
        if threaded:
            self._worker = threading.Thread(target=self._decode_loop, name="jscc_rx_decode", daemon=True)
            self._worker.start()
        self._timer = threading.Thread(target=self._expiry_loop, name="jscc_rx_timeout", daemon=True)
        self._timer.start()
        return True

    def stop(self):
        """Decode what is pending (at most ``stop_timeout_s``), report the rest ``dropped``, end
        the threads. Runs in the block's scheduler thread: tb.wait() returns after it."""
        self._stopping = True
        self._stop.set()
        if self._timer is not None:
            self._timer.join(timeout=2)
        self.flush(self.stop_timeout_s or None)
        with self._work:
            left = list(self._jobs)
            self._jobs.clear()
            self._emit([self.core.drop_job(j, "dropped: the receiver stopped before decoding it")
                        for j in left])
            self._quit = True
            self._work.notify_all()
        if self._worker is not None:
            self._worker.join()   # at most the one decode in progress
        with self._lock:
            self.core.defer = False
        return True
