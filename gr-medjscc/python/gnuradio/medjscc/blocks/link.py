"""Two-ended link runs behind ``medjscc tx`` / ``medjscc rx``: USRP, ZMQ or SigMF replay.

TX: JSCC TX -> OFDM analog TX -> USRP sink (burst tags) or ZMQ PUSH (IQ + tags); SNR feedback
arrives over ZMQ SUB. RX: USRP source, ZMQ PULL or a SigMF recording -> [simulated channel] ->
[SigMF recorder] -> OFDM analog RX -> JSCC RX; SNR feedback is published over ZMQ PUB.
Every run is bounded (image count, duration, idle timeout): a peer that vanishes ends the run
with what arrived instead of hanging.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from gnuradio import gr

from ..config import LinkConfig
from ..errors import InputError, MedJSCCError
from ..netaddr import check_zmq_address
from ._codecadapt import get_codec, read_image, read_mask
from ._msgtools import pdu_collector, quiet_gr_logs
from ._phyadapt import make_params
from ._pmtutil import snr_from_message
from .channel_preset import channel_preset
from .jscc_rx import jscc_rx
from .jscc_tx import jscc_tx
from .ofdm_analog_rx import ofdm_analog_rx
from .ofdm_analog_tx import EOS_TAIL, ofdm_analog_tx
from .snr_feedback import snr_feedback

log = logging.getLogger(__name__)
DEFAULT_IQ_ADDRESS = "tcp://127.0.0.1:5555"
DEFAULT_SNR_ADDRESS = "tcp://127.0.0.1:5556"


class _msg_counter(pdu_collector):
    """Counts the SNR messages it gets (keeps only the last); the receiver's verdicts on the same
    socket are not SNR feedback."""

    def __init__(self):
        pdu_collector.__init__(self, keep=1)
        self.count = 0

    def _handle(self, msg):
        if snr_from_message(msg) is None:
            return
        self.count += 1
        pdu_collector._handle(self, msg)


# OfdmParams fields a receiver must share with the transmitter to read its frames: a recording
# states them, so a replay reads it whatever the receiver's defaults are now (e.g. the side-info
# chunk grew from 14 to 32 bytes)
RECORDED_FRAME_FORMAT = ("fft_len", "cp_len", "n_data_carriers", "n_pilot_carriers", "symbols_per_frame",
                         "n_short_reps", "n_long", "header_side_info_bytes", "side_info_parity", "interleave",
                         "header_repeat", "header_mcs", "seed")


def _stop(tb, timeout_s: float = 10.0) -> bool:
    """Stop and wait at most ``timeout_s``; False (and an error line) when the graph did not stop."""
    tb.stop()
    done = threading.Event()
    threading.Thread(target=lambda: (tb.wait(), done.set()), daemon=True).start()
    if not done.wait(timeout_s):
        log.error("flowgraph did not stop within %.0f s", timeout_s)
        return False
    return True


def run_tx(images, cfg: LinkConfig | None = None, *, hw: dict | None = None,
           iq_address: str | None = None, snr_address: str | None = None, repeat: int = 1,
           interval_s: float = 0.0, wait_for_feedback: bool = False,
           feedback_timeout_s: float = 10.0, timeout_s: float = 120.0,
           codec=None, allow_random: bool = False, mask_path: str = "", linger_s: float = 0.5,
           feedback_policy: str = "instant", feedback_margin_db: float = 0.0,
           feedback_delay_ms: float = 0.0, csi_mapping: bool = False,
           layered_until_feedback: bool = False, layered_max_age_s: float = 0.0,
           max_retransmissions: int = 0) -> dict:
    """Send image files; returns dict(images_sent, frames_sent, completed (all frames left this
    process), feedback_received, receiver_heard (True/False from the SNR feedback; None without
    ``snr_address``: unknown), cau_snr_db list, csi_tags list, layered list (two-layer base per
    image), errors). ``feedback_policy`` / ``feedback_margin_db`` /
    ``feedback_delay_ms``: how the CAU uses late SNR feedback (``jscc_tx``, ``snr_feedback_policy``).
    ``csi_mapping``: map the strong codec symbols onto the carriers the receiver's feedback ranks
    strongest (``phy.csi``; ``run_rx`` learns the rankings it feeds back).
    ``layered_until_feedback``: a hybrid model's images encoded for the design SNR (before the
    first feedback, or from feedback older than ``layered_max_age_s`` > 0) send a two-layer base
    (``jscc_tx``). ``max_retransmissions`` > 0: frames a ``run_rx(retransmit_hold_s > 0)`` names
    as lost in its verdicts (on ``snr_address``) are sent again, at most that many times per image;
    the run waits up to ``feedback_timeout_s`` for the last images' verdicts. The result adds
    ``retransmissions`` (per image)."""
    from gnuradio import zeromq

    cfg = (cfg or LinkConfig()).validate()
    if not images:
        raise MedJSCCError("no image given to send")
    if int(max_retransmissions) < 0:
        raise InputError(f"--max-retransmissions must be >= 0, got {max_retransmissions}")
    if hw is None and not iq_address:
        raise MedJSCCError("choose an output: --hw FILE (USRP) or --zmq ADDRESS")
    for path in list(images) + ([mask_path] if mask_path else []):
        if not Path(path).is_file():   # fail before loading the codec or opening the radio
            raise InputError(f"image file not found: {path}")
    if mask_path:    # a mask of another size than an image is an InputError naming both, here too
        for path in images:
            read_mask(mask_path, read_image(path)[0].shape, path)
    if iq_address:   # the PUSH sink binds, the SNR SUB connects
        check_zmq_address(iq_address, bind=True, what="--zmq")
    if snr_address:
        check_zmq_address(snr_address, bind=False, what="--snr-address")
    params = make_params(cfg.ofdm)
    blocks = {"tb": gr.top_block("medjscc_tx")}
    tb = blocks["tb"]
    if hw is not None:
        from .hw import usrp_sink

        blocks["sink"] = usrp_sink(hw)   # HardwareError without a radio, before any encoding
    else:
        blocks["sink"] = zeromq.push_sink(gr.sizeof_gr_complex, 1, iq_address, 100, True, -1)
    codec = get_codec(codec if codec is not None else cfg.codec.model, device=cfg.codec.device,
                      allow_random=allow_random)
    blocks["jscc_tx"] = tx = jscc_tx(image_path=";".join(str(i) for i in images), mask_path=mask_path,
                                     model=codec, cbr=cfg.codec.cbr, snr_db=cfg.codec.snr_db,
                                     repeat_strong=cfg.codec.repeat_strong,
                                     image_size=cfg.image_size, repeat=repeat, interval_s=interval_s,
                                     wait_for_feedback=wait_for_feedback,
                                     feedback_timeout_s=feedback_timeout_s, params=params,
                                     feedback_policy=feedback_policy, feedback_margin_db=feedback_margin_db,
                                     feedback_delay_ms=feedback_delay_ms, csi_mapping=csi_mapping,
                                     layered_until_feedback=layered_until_feedback,
                                     layered_max_age_s=layered_max_age_s,
                                     max_retransmissions=max_retransmissions)
    amplitude = float(hw.get("tx_amplitude", 0.25)) if hw else 1.0
    guard = int(hw.get("burst_guard_samples", 256)) if hw else 256
    blocks["ofdm_tx"] = otx = ofdm_analog_tx(params=params, amplitude=amplitude, guard=guard,
                                             burst_tags=hw is not None)
    tb.msg_connect(tx, "frames", otx, "pdus")
    tb.connect(otx, blocks["sink"])
    if snr_address:
        blocks["snr_sub"] = zeromq.sub_msg_source(snr_address, 100, False)
        tb.msg_connect(blocks["snr_sub"], "out", tx, "snr")
        tb.msg_connect(blocks["snr_sub"], "out", tx, "ack")   # the receiver's verdicts ride along (olla)
        # jscc_tx stops handling messages once it has sent everything (it marks itself done):
        # feedback for the last images, or for all of a short unpaced run, is counted here
        blocks["fb_count"] = _msg_counter()
        tb.msg_connect(blocks["snr_sub"], "out", blocks["fb_count"], "in")
    with quiet_gr_logs():   # hier-block buffer settings are applied (and logged) at start
        tb.start()
    deadline = time.monotonic() + timeout_s
    completed = False
    while time.monotonic() < deadline:
        thread_done = tx._thread is None or not tx._thread.is_alive()
        if thread_done and otx.queued_samples() == 0 and otx.frames_sent + otx.frames_dropped >= \
                sum(h["frames"] for h in tx.history):
            completed = True
            break
        time.sleep(0.05)
    fb_count = blocks.get("fb_count")
    if snr_address and completed and fb_count.count == 0:
        # a receiver answers every image with its SNR estimate: give the last one time to arrive
        end = time.monotonic() + max(feedback_timeout_s, 1.0)
        while fb_count.count == 0 and time.monotonic() < end:
            time.sleep(0.05)
    time.sleep(linger_s if completed else 0)   # let the sink flush the last burst
    _stop(tb)
    # "sent" is what left this process; whether anybody received it only the feedback can say
    feedback = max(tx.feedback_count, fb_count.count if fb_count is not None else 0)
    heard = (feedback > 0) if snr_address else None
    if heard is False:
        log.warning("no SNR feedback arrived on %s: nobody may have received the images", snr_address)
    return {"images_sent": len(tx.history), "frames_sent": otx.frames_sent, "completed": completed,
            "feedback_received": feedback, "receiver_heard": heard,
            "cau_snr_db": [h["snr_db"] for h in tx.history], "csi_tags": [h["csi_tag"] for h in tx.history],
            "layered": [h["layered"] for h in tx.history],
            "retransmissions": [int(h.get("retransmissions", 0)) for h in tx.history], "errors": list(tx.errors)}


def run_rx(cfg: LinkConfig | None = None, *, hw: dict | None = None, iq_address: str | None = None,
           replay: str | Path | None = None, snr_address: str | None = None,
           record_dir: str | Path | None = None, out_dir: str | Path = "", reference: str = "",
           reference_mask: str = "", n_images: int = 0, duration_s: float = 60.0,
           idle_timeout_s: float = 5.0, channel: str | None = None, snr_db: float | None = None,
           codec=None, allow_random: bool = False, on_result=None, keep_identifiers: bool = False,
           record_hw_identity: bool = False, max_pending_images: int = 32,
           stop_timeout_s: float = 10.0, feedback_delay_ms: float = 0.0, carrier_ranking: bool = True,
           retransmit_hold_s: float = 0.0) -> dict:
    """Receive until ``n_images`` results, ``duration_s`` elapsed or ``idle_timeout_s`` without
    frames or results while nothing waits for the decoder (a decoder that falls behind keeps the
    run going; the idle clock starts at the last frame or the last result, whichever is later).

    Nothing is lost silently: when more than ``max_pending_images`` ended images wait for the
    decoder the oldest is reported with status ``dropped``; at stop the waiting images are decoded
    for at most ``stop_timeout_s``, the rest reported ``dropped``.

    DICOM outputs (``out_dir`` with a DICOM ``reference``) are de-identified unless
    ``keep_identifiers``; a recording leaves the radio's serial/address out unless
    ``record_hw_identity``.

    ``retransmit_hold_s`` > 0: an image whose frames did not all come keeps them this long; the
    verdicts name the lost ones to a ``run_tx(max_retransmissions > 0)``, and the frames it sends
    again complete the image, which is decoded and reported again (``attempt`` 2, ...).

    Returns dict(results=[...] (the last 1000), frames_ok, frames_bad, recording=meta path or
    None, reason, images_total (every result), images_decoded (images, each counted once),
    images_dropped, images_completed_by_retransmission, stopped_cleanly).
    """
    from gnuradio import blocks as gr_blocks
    from gnuradio import zeromq

    cfg = (cfg or LinkConfig()).validate()
    sources = [s for s in (hw, iq_address, replay) if s]
    if len(sources) != 1:
        raise MedJSCCError("choose exactly one input: --hw FILE (USRP), --zmq ADDRESS or --replay FILE.sigmf-meta")
    if int(max_pending_images) < 0 or not float(stop_timeout_s) >= 0:
        raise InputError(f"--max-pending and --stop-timeout must be >= 0, got {max_pending_images}, "
                         f"{stop_timeout_s}")
    if not float(retransmit_hold_s) >= 0:
        raise InputError(f"--retransmit-hold must be >= 0 seconds, got {retransmit_hold_s}")
    if iq_address:   # the PULL source connects, the SNR PUB binds
        check_zmq_address(iq_address, bind=False, what="--zmq")
    if snr_address:
        check_zmq_address(snr_address, bind=True, what="--snr-address")
    if reference and reference_mask:   # its size checked before the radio opens (jscc_rx checks too)
        read_mask(reference_mask, read_image(reference)[0].shape, reference)
    params = make_params(cfg.ofdm)
    b = {"tb": gr.top_block("medjscc_rx")}
    tb = b["tb"]
    sample_rate, center_freq, rec_hw = 1e6, 0.0, None
    if hw is not None:
        from .hw import usrp_source

        b["src"] = usrp_source(hw)
        sample_rate, center_freq, rec_hw = hw["sample_rate_hz"], hw["center_freq_hz"], hw
    elif iq_address:
        b["src"] = zeromq.pull_source(gr.sizeof_gr_complex, 1, iq_address, 100, True, -1)
    else:
        from .sigmf_io import read_recording

        samples, info = read_recording(replay)
        if info.get("ofdm"):   # the recording's frame format wins over the configured one
            params = make_params(cfg.ofdm, **info["ofdm"])
        # tag the last sample "eos": the receiver decodes its last batch and flushes a frame the
        # recording cut short; a zero tail, as ofdm_analog_tx sends, carries the tag through a
        # --sim-channel that drops the last few samples
        import numpy as np
        import pmt

        eos = [gr.tag_utils.python_to_tag((max(len(samples) - 1, 0), pmt.intern("eos"), pmt.PMT_T,
                                           pmt.PMT_NIL))]
        samples = np.concatenate([samples, np.zeros(EOS_TAIL, np.complex64)])
        b["src"] = gr_blocks.vector_source_c(samples, False, 1, eos)
        sample_rate = info.get("sample_rate") or sample_rate
        center_freq = info.get("center_freq") or 0.0
        rec_hw = info.get("hw_config")
    codec = get_codec(codec if codec is not None else cfg.codec.model, device=cfg.codec.device,
                      allow_random=allow_random)
    chain = [b["src"]]
    if channel:
        b["channel"] = channel_preset(channel, cfg.channel.snr_db if snr_db is None else snr_db,
                                      cfo=cfg.channel.cfo, seed=cfg.channel.seed, params=params)
        chain.append(b["channel"])
    b["ofdm_rx"] = orx = ofdm_analog_rx(params=params, equalizer=cfg.ofdm.equalizer,
                                        min_batch=cfg.ofdm.min_batch, max_latency_ms=cfg.ofdm.max_latency_ms)
    b["jscc_rx"] = jrx = jscc_rx(model=codec, image_size=cfg.image_size, cbr=cfg.codec.cbr,
                                 out_dir=str(out_dir or ""), reference_path=reference,
                                 reference_mask_path=reference_mask, params=params, timeout_s=1.0,
                                 keep_identifiers=keep_identifiers,   # DICOM out: de-identified unless asked
                                 max_pending_images=max_pending_images, stop_timeout_s=stop_timeout_s,
                                 retransmit_hold_s=retransmit_hold_s)
    # carrier_ranking: the SNR feedback also carries a carrier ranking on static selective
    # channels (phy.csi), for a transmitter run with csi_mapping
    b["feedback"] = fb = snr_feedback(delay_ms=feedback_delay_ms, csi=carrier_ranking)   # a late feedback path (satellite RTT)
    # frame metadata: every frame when recording (annotations), else only the recent ones
    b["frames"] = frames = pdu_collector(meta_only=True, keep=0 if record_dir else 1000)
    tb.connect(*chain, orx)
    data_path = None
    if record_dir:
        rd = Path(record_dir)
        rd.mkdir(parents=True, exist_ok=True)
        data_path = rd / time.strftime("medjscc_rx_%Y%m%dT%H%M%S.sigmf-data")
        b["recorder"] = gr_blocks.file_sink(gr.sizeof_gr_complex, str(data_path), False)
        tb.connect(chain[-1], b["recorder"])
    tb.msg_connect(orx, "pdus", jrx, "pdus")
    tb.msg_connect(orx, "pdus", fb, "rx")
    tb.msg_connect(fb, "snr", jrx, "snr")   # the carrier rankings it feeds back (a csi_mapping TX)
    tb.msg_connect(orx, "pdus", frames, "in")
    if snr_address:
        b["snr_pub"] = zeromq.pub_msg_sink(snr_address, 100, True)
        tb.msg_connect(fb, "snr", b["snr_pub"], "in")
        tb.msg_connect(jrx, "ack", b["snr_pub"], "in")   # verdicts for a transmitter's outer loop
    finished = threading.Event()
    with quiet_gr_logs():   # hier-block buffer settings are applied (and logged) at start
        tb.start()
    threading.Thread(target=lambda: (tb.wait(), finished.set()), daemon=True).start()
    t0 = time.monotonic()
    reason, reported = "duration", 0
    while True:
        time.sleep(0.05)
        if on_result is not None:
            new, reported = jrx.results_since(reported)
            for r in new:
                on_result(r)
        # images counted once (a retransmission's second result is not a new image); an image
        # that waits for its lost frames keeps the run going until they come or its hold ends
        if n_images and jrx.images_total >= n_images and jrx.core.held_images == 0:
            reason = "images"
            break
        if finished.is_set():
            reason = "end of input"
            break
        now = time.monotonic()
        if now - t0 > duration_s:
            break
        # idle = nothing arrived and nothing came out of the decoder for a while, and nothing waits
        # for it: demodulated frames alone would stop a receiver whose decoder is behind
        last = max((t for t in (frames.last_time, jrx.last_result_time) if t is not None), default=None)
        if last is not None and now - last > idle_timeout_s and jrx.backlog() == 0:
            reason = "idle"
            break
    # jscc_rx decodes what is pending at stop (bounded by stop_timeout_s) within tb.wait()
    stopped = _stop(tb, stop_timeout_s + 10.0)
    if on_result is not None:
        for r in jrx.results_since(reported)[0]:
            on_result(r)
    meta_path = None
    if data_path is not None:
        from .sigmf_io import write_recording

        ann = []
        for m in frames.items:
            if isinstance(m, dict) and "start_sample" in m:
                n = int(m.get("payload_len", params.max_payload_len))
                ann.append(dict(m, start=m["start_sample"], length=params.frame_len(n)))
        ofdm = {k: getattr(params, k) for k in RECORDED_FRAME_FORMAT}
        meta_path = write_recording(data_path, sample_rate, center_freq, rec_hw, ann, ofdm,
                                    hw_identity=record_hw_identity)
    return {"results": list(jrx.results), "frames_ok": orx.frames_ok, "frames_bad": orx.frames_bad,
            "recording": str(meta_path) if meta_path else None, "reason": reason,
            "images_total": jrx.results_total, "images_decoded": jrx.images_decoded,
            "images_dropped": jrx.images_dropped,
            "images_completed_by_retransmission": jrx.core.images_completed_by_retransmission,
            "stopped_cleanly": stopped}
