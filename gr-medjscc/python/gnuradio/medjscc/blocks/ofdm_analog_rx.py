"""OFDM analog RX: complex baseband IQ stream -> one PDU per received frame.

Wraps the streaming phy core receiver (``gnuradio.medjscc.phy.OfdmReceiver``): robust
preamble sync, CFO estimation/correction, denoised channel estimate with per-symbol pilot phase
tracking, ZF or MMSE equalisation (no hard decisions on the analog payload) and a per-frame SNR
estimate. Each frame is published on port ``pdus`` as complex64 payload symbols with metadata

    crc_ok, snr_db, cfo, noise_var, chan_taps, start_sample
    seq, image_id, frame_count, payload_len, side_info_chunk   (only when crc_ok)

Frames whose header failed its CRC are still published (``crc_ok`` False, no header fields) so
that link statistics can count them; ``jscc_rx`` and ``snr_feedback`` ignore them. The equaliser
is switched at run time with ``set_equalizer("zf"|"mmse")`` or a message on ``ctrl``: the symbol
``zf``/``mmse`` or a dict ``{equalizer: ...}``. Input is processed in big chunks; any exception
from the core on garbage input is logged and that chunk skipped (the receiver state is reset).
A stream tag ``eos`` (end of a finite stream) makes the receiver flush: a frame cut short is
still published, its missing payload symbols flagged in ``erased``.
"""
from __future__ import annotations

import logging
import threading

import numpy as np
import pmt
from gnuradio import gr

from ._pmtutil import make_pdu
from ._phyadapt import make_params, meta_from_rxframe, phy

log = logging.getLogger(__name__)
EQUALIZERS = ("zf", "mmse")
EOS_TAG = pmt.intern("eos")


class ofdm_analog_rx(gr.sync_block):
    """Complex IQ stream in -> message ``pdus`` out.

    Args:
        fft_len, cp_len, n_data_carriers, n_pilot_carriers, symbols_per_frame: OFDM layout
            (must match the transmitter).
        pilot_carriers, n_short_reps, n_long: pilot positions and sync words (as the TX).
        detect_threshold: normalised preamble-correlation threshold (CFAR statistic, 0..1).
        equalizer: ``mmse`` or ``zf`` (switchable at run time).
        params: a ready ``phy.OfdmParams`` (overrides the layout arguments).
    """

    def __init__(self, fft_len: int = 64, cp_len: int = 16, n_data_carriers: int = 48,
                 n_pilot_carriers: int = 4, symbols_per_frame: int = 32, pilot_carriers=(),
                 n_short_reps: int = 8, n_long: int = 2, detect_threshold: float = 0.2,
                 equalizer: str = "mmse", params=None):
        gr.sync_block.__init__(self, name="medjscc_ofdm_analog_rx", in_sig=[np.complex64],
                               out_sig=None)
        if params is None:
            params = make_params(dict(fft_len=fft_len, cp_len=cp_len, n_data_carriers=n_data_carriers,
                                      n_pilot_carriers=n_pilot_carriers,
                                      symbols_per_frame=symbols_per_frame,
                                      pilot_carriers=tuple(pilot_carriers) or None,
                                      n_short_reps=n_short_reps, n_long=n_long,
                                      detect_threshold=detect_threshold))
        self.params = params
        self._lock = threading.Lock()
        self._equalizer = self._check_eq(equalizer)
        self._receiver = self._new_receiver()
        self.frames_ok = 0
        self.frames_bad = 0
        self.chunks_failed = 0
        self.message_port_register_out(pmt.intern("pdus"))
        self.message_port_register_in(pmt.intern("ctrl"))
        self.set_msg_handler(pmt.intern("ctrl"), self._handle_ctrl)

    @staticmethod
    def _check_eq(eq):
        eq = str(eq).lower()
        if eq not in EQUALIZERS:
            raise ValueError(f"ofdm_analog_rx equalizer must be zf or mmse, got {eq!r}")
        return eq

    def _new_receiver(self):
        OfdmReceiver = phy("OfdmReceiver")
        return OfdmReceiver(self.params, equalizer=self._equalizer)

    def set_equalizer(self, equalizer: str):
        eq = self._check_eq(equalizer)
        with self._lock:
            self._equalizer = eq
            rx = self._receiver
            if hasattr(rx, "set_equalizer"):
                rx.set_equalizer(eq)
            elif hasattr(rx, "equalizer"):
                rx.equalizer = eq
            else:  # core without a setter: a fresh receiver (loses at most the frame in flight)
                self._receiver = self._new_receiver()

    def equalizer(self) -> str:
        return self._equalizer

    def _handle_ctrl(self, msg):
        try:
            if pmt.is_symbol(msg):
                self.set_equalizer(pmt.symbol_to_string(msg))
            elif pmt.is_dict(msg) or (pmt.is_pair(msg) and pmt.is_dict(pmt.car(msg))):
                d = msg if pmt.is_dict(msg) else pmt.car(msg)
                v = pmt.dict_ref(d, pmt.intern("equalizer"), pmt.PMT_NIL)
                if pmt.is_symbol(v):
                    self.set_equalizer(pmt.symbol_to_string(v))
        except ValueError as e:
            log.warning("ofdm_analog_rx: ignored ctrl message: %s", e)

    def publish(self, frames):
        for fr in frames:
            meta = meta_from_rxframe(fr)
            meta["equalizer"] = self._equalizer
            if meta["crc_ok"]:
                self.frames_ok += 1
            else:
                self.frames_bad += 1
            payload = getattr(fr, "payload", None)
            if payload is None:
                payload = np.zeros(0, np.complex64)
            self.message_port_pub(pmt.intern("pdus"), make_pdu(meta, np.asarray(payload, np.complex64)))

    def work(self, input_items, output_items):
        iq = input_items[0]
        n = len(iq)
        # an "eos" tag (end of a finite stream: ofdm_analog_tx, a replay) flushes the frame in
        # progress -- a stop() flush would come after downstream blocks have finished
        eos = self.get_tags_in_window(0, 0, n, EOS_TAG)
        with self._lock:
            try:
                frames = self._receiver.process(np.array(iq, dtype=np.complex64, copy=True))
                if eos:
                    frames += self._receiver.flush()
            except Exception as e:  # garbage IQ must not kill the flowgraph
                self.chunks_failed += 1
                log.warning("ofdm_analog_rx: receiver failed on a chunk (%s); resetting", e)
                self._receiver = self._new_receiver()
                frames = []
        self.publish(frames)
        return n
