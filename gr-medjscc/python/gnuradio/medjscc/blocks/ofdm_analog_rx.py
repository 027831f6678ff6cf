"""OFDM analog RX: complex baseband IQ stream -> one PDU per received frame.

Wraps the streaming phy core receiver (``gnuradio.medjscc.phy.OfdmReceiver``): robust
preamble sync, CFO estimation/correction, denoised channel estimate with per-symbol pilot phase
tracking, ZF or MMSE equalisation (no hard decisions on the analog payload) and a per-frame SNR
estimate. Each frame is published on port ``pdus`` as complex64 payload symbols with metadata

    crc_ok, snr_db, cfo, noise_var, chan_taps, start_sample
    payload_snr_db   (pilot SNR measured on the payload symbols after tracking, when it has any)
    carrier_snr_db   (float32 per data carrier: SNR after equalisation, when crc_ok; what
                      ``snr_feedback(csi=True)`` ranks the carriers by, ``phy.csi``)
    seq, image_id, frame_count, payload_len, side_info_chunk   (only when crc_ok)

Frames whose header failed its CRC are still published (``crc_ok`` False, no header fields) so
that link statistics can count them; ``jscc_rx`` and ``snr_feedback`` ignore them. The equaliser
is switched at run time with ``set_equalizer("zf"|"mmse")`` or a message on ``ctrl``: the symbol
``zf``/``mmse`` or a dict ``{equalizer: ...}``. Any exception from the core on garbage input is
logged and that chunk skipped (the receiver state is reset). A stream tag ``eos`` (end of a finite
stream) makes the receiver flush: a frame cut short is still published, its missing payload
symbols flagged in ``erased``.

Batching: a work() call brings a few thousand samples and every detection/decoding run has a
fixed cost, so the receiver collects ``min_batch`` new samples and then decodes all their frames
in one vectorised run (0 = run on every call). ``max_latency_ms`` bounds the wait: samples that
have sat in a partly filled batch that long (wall clock since the first of them arrived) are
worked on anyway, by the next work() call or, when the stream has gone quiet (an idle
transmitter, a ZMQ source with no data: work() is then not called at all), by a watchdog thread.
Such a run never cuts a frame: one still incomplete stays buffered until its samples arrive. A
finite stream must end with the ``eos`` tag (``ofdm_analog_tx`` and the SigMF replay send it):
without it GNU Radio stops the downstream blocks together with the stream, so frames in the last
batch (< ``min_batch`` samples) would be lost; set ``min_batch`` 0 for such a source.
"""
from __future__ import annotations

import logging
import math
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from ..config import OfdmConfig, check_rx_batching
from ._pmtutil import make_pdu
from ._phyadapt import make_params, meta_from_rxframe, phy

log = logging.getLogger(__name__)
_D = OfdmConfig     # layout defaults: one source for the blocks, the CLI and YAML
EQUALIZERS = ("zf", "mmse")
EOS_TAG = pmt.intern("eos")
DEFAULT_MIN_BATCH = OfdmConfig.min_batch          # one default for the block, the CLI and YAML
DEFAULT_MAX_LATENCY_MS = OfdmConfig.max_latency_ms


class ofdm_analog_rx(gr.sync_block):
    """Complex IQ stream in -> message ``pdus`` out.

    Args:
        fft_len, cp_len, n_data_carriers, n_pilot_carriers, symbols_per_frame: OFDM layout
            (must match the transmitter).
        pilot_carriers, n_short_reps, n_long: pilot positions and sync words (as the TX).
        detect_threshold: normalised preamble-correlation threshold (CFAR statistic, 0..1).
        max_cfo_subcarriers: CFO search range in +- subcarrier spacings (4 = +-25 ppm at 2.45 GHz
            and 1 Msps with 64 carriers; 0 = |CFO| < 1 only, slightly cheaper).
        pilot_smooth: pilot tracking window in OFDM symbols (1 = each symbol on its own pilots);
            switchable at run time (``set_pilot_smooth``).
        pilot_amplitude: track the pilot amplitude as well as the phase (fast fading); switchable
            at run time (``set_pilot_amplitude``).
        equalizer: ``mmse`` or ``zf`` (switchable at run time).
        header_mcs: header formats to read, as the TX's ``header_mcs`` (``auto``: both; the CRC
            tells which arrived; each PDU's ``header_format`` says it).
        min_batch: new samples collected before a detection/decoding run (0 = every work() call).
        max_latency_ms: longest wall-clock wait of a sample in a partly filled batch (> 0; inf =
            no bound, only for streams that end with ``eos``).
        params: a ready ``phy.OfdmParams`` (overrides the layout arguments).
    """

    def __init__(self, fft_len: int = _D.fft_len, cp_len: int = _D.cp_len,
                 n_data_carriers: int = _D.n_data_carriers, n_pilot_carriers: int = _D.n_pilot_carriers,
                 symbols_per_frame: int = _D.symbols_per_frame, pilot_carriers=(),
                 n_short_reps: int = _D.n_short_reps, n_long: int = _D.n_long, detect_threshold: float = _D.detect_threshold,
                 equalizer: str = _D.equalizer, min_batch: int = DEFAULT_MIN_BATCH,
                 max_latency_ms: float = DEFAULT_MAX_LATENCY_MS, params=None,
                 max_cfo_subcarriers: int = _D.max_cfo_subcarriers, pilot_smooth: int = _D.pilot_smooth,
                 pilot_amplitude: bool = _D.pilot_amplitude, header_mcs: str = _D.header_mcs):
        gr.sync_block.__init__(self, name="medjscc_ofdm_analog_rx", in_sig=[np.complex64],
                               out_sig=None)
        if params is None:
            params = make_params(dict(fft_len=fft_len, cp_len=cp_len, n_data_carriers=n_data_carriers,
                                      n_pilot_carriers=n_pilot_carriers,
                                      symbols_per_frame=symbols_per_frame,
                                      pilot_carriers=tuple(pilot_carriers) or None,
                                      n_short_reps=n_short_reps, n_long=n_long,
                                      detect_threshold=detect_threshold,
                                      max_cfo_subcarriers=max_cfo_subcarriers, pilot_smooth=pilot_smooth,
                                      pilot_amplitude=bool(pilot_amplitude), header_mcs=header_mcs))
        self.params = params
        self.min_batch, self.max_latency_ms = check_rx_batching(min_batch, max_latency_ms, "ofdm_analog_rx ")
        self._lock = threading.Lock()      # receiver state: work(), ctrl messages, the watchdog
        self._equalizer = self._check_eq(equalizer)
        self._receiver = self._new_receiver()
        self._batch_since = None           # monotonic time the oldest sample of the batch came in
        self._watchdog = None
        self._stop_watchdog = threading.Event()
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
        return OfdmReceiver(self.params, equalizer=self._equalizer, min_batch=self.min_batch)

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

    def _set_tracking(self, **changes):
        import dataclasses

        with self._lock:
            try:
                params = dataclasses.replace(self.params, **changes)
                params = params.validate() if hasattr(params, "validate") else params
            except Exception as e:                 # MedJSCCError from validate
                raise ValueError(f"ofdm_analog_rx: {e}") from None
            self.params = params                   # a receiver rebuilt after a failure keeps it
            rx = self._receiver
            if hasattr(rx, "set_pilot_tracking"):
                rx.set_pilot_tracking(amplitude=changes.get("pilot_amplitude"), smooth=changes.get("pilot_smooth"))
            else:
                self._receiver = self._new_receiver()

    def set_pilot_amplitude(self, on: bool):
        """Track the pilot amplitude too (fast fading) from the next frame on."""
        self._set_tracking(pilot_amplitude=bool(on))

    def set_pilot_smooth(self, symbols: int):
        """Pilot tracking window in OFDM symbols (>= 1) from the next frame on."""
        if isinstance(symbols, bool) or int(symbols) != symbols or symbols < 1:
            raise ValueError(f"ofdm_analog_rx pilot_smooth must be an integer >= 1, got {symbols!r}")
        self._set_tracking(pilot_smooth=int(symbols))

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

    def _receive(self, step, *args):
        """One receiver call (lock held); garbage IQ must not kill the flowgraph."""
        try:
            return step(*args)
        except Exception as e:
            self.chunks_failed += 1
            log.warning("ofdm_analog_rx: receiver failed on a chunk (%s); resetting", e)
            self._receiver = self._new_receiver()
            return []

    def _update_batch_clock(self, now: float):
        """Lock held: start the latency clock when a batch starts filling, stop it once run."""
        if self._receiver.pending_samples == 0:
            self._batch_since = None
        elif self._batch_since is None:
            self._batch_since = now

    def _release_overdue(self, now: float):
        """Lock held: work on a batch whose oldest sample has waited max_latency_ms or longer."""
        if self._batch_since is None or (now - self._batch_since) * 1e3 < self.max_latency_ms:
            return []
        frames = self._receive(self._receiver.drain)
        self._update_batch_clock(now)
        return frames

    def work(self, input_items, output_items):
        iq = input_items[0]
        n = len(iq)
        # an "eos" tag (end of a finite stream: ofdm_analog_tx, a replay) flushes the batch and the
        # frame in progress at the tagged sample (padding may follow it) -- a stop() flush would
        # come after downstream blocks have finished
        first = self.nitems_read(0)
        eos_at = sorted({int(t.offset - first) for t in self.get_tags_in_window(0, 0, n, EOS_TAG)})
        chunk = np.array(iq, dtype=np.complex64, copy=True)
        with self._lock:
            now = time.monotonic()
            frames, start = [], 0
            for k in eos_at:
                frames += self._receive(self._receiver.process, chunk[start:k + 1])
                frames += self._receive(self._receiver.flush)
                start = k + 1
            if start < n:
                frames += self._receive(self._receiver.process, chunk[start:])
            self._update_batch_clock(now)
            frames += self._release_overdue(now)
            # published under the lock: the watchdog must not overtake earlier frames
            self.publish(frames)
        return n

    def _watch_latency(self):
        # a quiet stream calls no work(): release overdue batches from here; checking 4x per
        # latency bound keeps the overshoot within a quarter of it
        period = min(max(self.max_latency_ms / 4e3, 0.002), 0.25)
        while not self._stop_watchdog.wait(period):
            with self._lock:
                self.publish(self._release_overdue(time.monotonic()))

    def start(self):
        if self.min_batch and math.isfinite(self.max_latency_ms) and self._watchdog is None:
            self._stop_watchdog.clear()
            self._watchdog = threading.Thread(target=self._watch_latency, daemon=True,
                                              name="ofdm_analog_rx_latency")
            self._watchdog.start()
        return True

    def stop(self):
        self._stop_watchdog.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=2)
            self._watchdog = None
        return True
