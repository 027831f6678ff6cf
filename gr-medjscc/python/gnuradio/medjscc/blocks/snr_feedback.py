"""SNR feedback: smooths the receiver's per-frame SNR estimates and publishes them.

Input ``rx`` takes the OFDM RX PDUs (metadata ``snr_db``), a dict with ``snr_db`` or a bare
number. Output ``snr`` publishes a dict ``{snr_db, raw_snr_db, count, seq}``: connect it to the
``snr`` inputs of ``jscc_tx`` and ``jscc_rx`` in one flowgraph, or to a gr-zeromq
``pub_msg_sink`` to feed a transmitter in another process. ``snr_pdu`` carries
``[smoothed, raw]`` as a float32 PDU for plotting (PDU to Tagged Stream -> QT time sink).

Smoothing is an exponential moving average (EMA). A step larger than ``jump_db`` restarts the
average at the new value so a sudden channel change is followed at once instead of after
~1/alpha frames; frames whose header CRC failed are ignored (their estimate is unreliable).

``delay_ms`` models a late feedback path (a satellite round trip: ~30 ms LEO, ~550 ms GEO): every
update is published that many wall-clock milliseconds after its frame arrived, in order, by a
helper thread (updates still waiting when the flowgraph stops are dropped). The published dict
then also carries ``delay_ms`` (so the transmitter's ``feedback_policy`` knows the estimate's age)
and the frame's ``start_sample`` when the receiver gave one.

``csi`` (on by default) also feeds back a **carrier ranking** on a static frequency-selective
channel (``phy.csi.CarrierRanker``, from the PDUs' ``carrier_snr_db``): the dict then carries
``csi_tag`` (0 = none, 1..15) and ``carrier_rank`` (data-carrier positions, strongest first). A
``jscc_tx`` with ``csi_mapping`` on sends its next images with that mapping, and the ``jscc_rx``
that gets the same messages undoes it (the frames' headers name the tag): connect ``snr`` to both.
On flat or time-varying channels no ranking is issued (``csi_tag`` 0).

``estimate`` says which per-frame figure is smoothed: ``snr`` (the preamble's mean |H_k|^2/N0,
``snr_db``) or ``effective`` (``eff_snr_db``: the SNR of the mean error the equaliser leaves, lower
on a frequency-selective channel, where deep carriers weigh in). A digital layer's MCS (the hybrid
codec's base) must be picked from the effective one: on the 3-tap multipath profile at 5 dB the
mean SNR overstates what LDPC codewords spread over all carriers see.
"""
from __future__ import annotations

import collections
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from ._pmtutil import make_pdu, snr_from_message, to_pmt

ESTIMATES = ("snr", "effective")


class SnrSmoother:
    """Pure-Python EMA with step reset (used by the block, testable without GNU Radio)."""

    def __init__(self, alpha: float = 0.3, jump_db: float = 3.0, initial_db: float | None = None):
        self.set_alpha(alpha)
        self.jump_db = float(jump_db)
        self.value = None if initial_db is None else float(initial_db)
        self.count = 0

    def set_alpha(self, alpha: float):
        if not (0.0 < float(alpha) <= 1.0):
            raise ValueError(f"snr_feedback alpha must be in (0, 1], got {alpha}")
        self.alpha = float(alpha)

    def update(self, snr_db: float) -> float:
        self.count += 1
        if self.value is None or (self.jump_db > 0 and abs(snr_db - self.value) > self.jump_db):
            self.value = float(snr_db)
        else:
            self.value = (1.0 - self.alpha) * self.value + self.alpha * float(snr_db)
        return self.value


class snr_feedback(gr.basic_block):
    """Smoothed SNR estimate published on message port ``snr``.

    Args:
        alpha: EMA weight of the newest estimate, (0, 1]. 1 = no smoothing.
        jump_db: restart the average when a new estimate differs by more than this (0 = never).
        decimation: publish every Nth update (1 = every frame).
        delay_ms: publish each update this many milliseconds late (0 = at once).
        csi: feed back a carrier ranking when the channel is static and selective.
        estimate: ``snr`` | ``effective``: the per-frame figure smoothed (module doc).
    """

    def __init__(self, alpha: float = 0.3, jump_db: float = 3.0, decimation: int = 1,
                 delay_ms: float = 0.0, csi: bool = True, estimate: str = "snr"):
        gr.basic_block.__init__(self, name="medjscc_snr_feedback", in_sig=None, out_sig=None)
        self._smoother = SnrSmoother(alpha, jump_db)
        self._lock = threading.Lock()
        self._decimation = max(1, int(decimation))
        self._delay_s = 0.0
        self.set_delay_ms(delay_ms)
        self.set_estimate(estimate)
        from ..phy.csi import CarrierRanker

        self.csi = bool(csi)
        self.ranker = CarrierRanker()
        self._withdraw = False     # csi turned off after a ranking went out: say tag 0 once
        self._queue: collections.deque = collections.deque()     # (due monotonic time, snr dict, pdu)
        self._wake = threading.Condition()
        self._running = False
        self._thread = None
        self.message_port_register_in(pmt.intern("rx"))
        self.message_port_register_out(pmt.intern("snr"))
        self.message_port_register_out(pmt.intern("snr_pdu"))
        self.set_msg_handler(pmt.intern("rx"), self._handle)

    # --- setters (GRC callbacks) ---
    def set_alpha(self, alpha: float):
        with self._lock:
            self._smoother.set_alpha(alpha)

    def set_jump_db(self, jump_db: float):
        with self._lock:
            self._smoother.jump_db = float(jump_db)

    def set_csi(self, csi: bool):
        """Off: publish ``csi_tag`` 0 from the next update (the transmitter returns to the fixed
        interleaver); on again: rank from scratch, the tags continuing where they stopped (a tag
        still in flight never names a new ranking)."""
        from ..phy.csi import CarrierRanker

        with self._lock:
            if bool(csi) == self.csi:
                return
            self._withdraw = not csi and bool(self.ranker.tag)
            self.csi = bool(csi)
            self.ranker = CarrierRanker(first_tag=self.ranker.next_tag)

    def set_estimate(self, estimate: str):
        from ..errors import InputError

        if estimate not in ESTIMATES:
            raise InputError(f"snr_feedback: estimate must be one of {', '.join(ESTIMATES)}, got {estimate!r}")
        self.estimate = estimate

    def set_decimation(self, decimation: int):
        self._decimation = max(1, int(decimation))

    def set_delay_ms(self, delay_ms: float):
        from ..errors import InputError

        try:
            d = float(delay_ms)
        except (TypeError, ValueError):
            d = float("nan")
        if not (0 <= d < float("inf")):
            raise InputError(f"snr_feedback: delay_ms must be a number >= 0, got {delay_ms!r}")
        self._delay_s = d / 1000.0

    def delay_ms(self) -> float:
        return self._delay_s * 1000.0

    def start(self):
        with self._wake:
            self._running = True
        self._thread = threading.Thread(target=self._deliver, name="snr_feedback_delay", daemon=True)
        self._thread.start()
        return True

    def stop(self):
        with self._wake:
            self._running = False
            self._queue.clear()
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
        return True

    def _deliver(self):
        """Publishes the delayed updates when due, oldest first."""
        while True:
            with self._wake:
                while self._running and not self._queue:
                    self._wake.wait()
                if not self._running:
                    return
                due, snr, pdu = self._queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                self._queue.popleft()
            self._publish(snr, pdu)

    def _publish(self, snr, pdu):
        self.message_port_pub(pmt.intern("snr"), to_pmt(snr))
        self.message_port_pub(pmt.intern("snr_pdu"), pdu)

    def snr_db(self) -> float | None:
        """Current smoothed SNR (None before the first estimate)."""
        return self._smoother.value

    def _handle(self, msg):
        raw = snr_from_message(msg)
        if raw is None:
            return
        seq = -1
        start = image_id = carrier_snr = None
        if pmt.is_pair(msg) and pmt.is_dict(pmt.car(msg)):
            meta = pmt.car(msg)
            crc = pmt.dict_ref(meta, pmt.intern("crc_ok"), pmt.PMT_T)
            if pmt.is_bool(crc) and not pmt.to_bool(crc):
                return
            s = pmt.dict_ref(meta, pmt.intern("seq"), pmt.PMT_NIL)
            seq = pmt.to_long(s) if pmt.is_integer(s) else -1
            iid = pmt.dict_ref(meta, pmt.intern("image_id"), pmt.PMT_NIL)
            image_id = pmt.to_long(iid) if pmt.is_integer(iid) else None
            st = pmt.dict_ref(meta, pmt.intern("start_sample"), pmt.PMT_NIL)
            start = pmt.to_uint64(st) if pmt.is_uint64(st) else (pmt.to_long(st) if pmt.is_integer(st) else None)
            if self.estimate == "effective":   # where the receiver states it (else the mean SNR)
                eff = pmt.dict_ref(meta, pmt.intern("eff_snr_db"), pmt.PMT_NIL)
                if pmt.is_number(eff) and not pmt.is_complex(eff):
                    raw = float(pmt.to_double(eff))
            cs = pmt.dict_ref(meta, pmt.intern("carrier_snr_db"), pmt.PMT_NIL)
            if pmt.is_f32vector(cs):
                carrier_snr = np.asarray(pmt.f32vector_elements(cs), np.float32)
        with self._lock:
            value = self._smoother.update(raw)
            count = self._smoother.count
            csi = None
            if self.csi:
                upd = self.ranker.update(carrier_snr) if carrier_snr is not None else None
                tag = self.ranker.tag if upd is None else upd.tag
                rank = self.ranker.rank if upd is None else upd.rank
                csi = {"csi_tag": int(tag)}
                if tag:
                    csi["carrier_rank"] = np.asarray(rank, np.int32)
            elif self._withdraw:
                csi, self._withdraw = {"csi_tag": 0}, False
        if count % self._decimation == 0:
            delay = self._delay_s
            snr = {"snr_db": value, "raw_snr_db": raw, "count": count, "seq": seq, "delay_ms": delay * 1000.0}
            if start is not None:
                snr["start_sample"] = int(start)
            if image_id is not None:   # lets a stop-and-wait TX tell late feedback of an older image
                snr["image_id"] = int(image_id)
            if csi is not None:
                snr.update(csi)
            # [smoothed, raw] as a float PDU: PDU to Tagged Stream -> QT time sink = SNR trace
            pdu = make_pdu({"count": count}, np.array([value, raw], np.float32))
            if delay <= 0:
                self._publish(snr, pdu)
                return
            with self._wake:
                if self._running:
                    self._queue.append((time.monotonic() + delay, snr, pdu))
                    self._wake.notify_all()
