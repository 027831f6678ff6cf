"""OFDM analog TX: PDUs of analog payload symbols -> complex baseband IQ stream.

Each input PDU (port ``pdus``) carries one frame: complex64 payload symbols and metadata with the
header fields ``seq, image_id, frame_count, payload_len, side_info_chunk`` (as emitted by
``jscc_tx``). The phy core (``gnuradio.medjscc.phy.OfdmTransmitter``) builds the frame: preamble
for sync/CFO, a BPSK header OFDM symbol protected by CRC32 and a robust code, then the payload on
the data subcarriers with pilots, no quantisation of the analog symbols.

The stream carries only frames (plus ``guard`` zero samples after each, so channel filters and the
receiver's sync window are flushed, and once before the first frame); with nothing queued the block idles without spinning. Tags:
``tx_sob``/``tx_eob`` around each burst when ``burst_tags`` is on (for ``uhd.usrp_sink``), and a
``frame`` tag with the frame's seq/image_id at its first sample. A PDU that cannot be framed
(missing header field, wrong type) is dropped and counted, never raised into the scheduler.
"""
from __future__ import annotations

import collections
import logging
import threading

import numpy as np
import pmt
from gnuradio import gr

from ..config import OfdmConfig
from ._msgtools import quiet_gr_logs
from ._pmtutil import split_pdu, to_pmt
from ._phyadapt import header_from_meta, make_params, phy

log = logging.getLogger(__name__)
_D = OfdmConfig     # layout defaults: one source for the blocks, the CLI and YAML
EOS = pmt.intern("eos")
# zero samples from the eos tag to the end of the stream: a channel model swallows the last few
# samples of a finite stream (GNU Radio's channel_model resampler holds back 8), and a tag on them
EOS_TAIL = 64


class FrameModulator:
    """Pure-numpy part: metadata + payload -> IQ of one burst (frame followed by guard zeros).

    ``amplitude`` is the RMS level of the IQ (the phy core makes unit-RMS frames). The modulator
    keeps the peak statistics a radio front end cares about: the highest peak/RMS of any frame
    (``papr_db``) and the fraction of I and Q values beyond ``full_scale`` (what a DAC clips: UHD
    saturates I and Q separately at +-1 when it converts fc32 to sc16)."""

    def __init__(self, params, guard: int = 256, amplitude: float = 1.0, full_scale: float = 1.0):
        OfdmTransmitter = phy("OfdmTransmitter")
        self.params = params
        self.tx = OfdmTransmitter(params)
        self.guard = int(guard)
        self.amplitude = float(amplitude)
        self.full_scale = float(full_scale)
        self.peak_to_rms = 0.0        # highest frame peak/RMS amplitude ratio so far
        self.values = 0               # I and Q values sent (guard zeros excluded)
        self.clipped = 0              # of which beyond full scale

    def header_format(self, meta: dict) -> str:
        """The header format this frame gets: ``header_mcs``, or under ``auto`` the one the
        encoder's SNR (``tx_snr_db`` in the metadata, set by jscc_tx) allows."""
        snr = meta.get("tx_snr_db")
        try:
            snr = None if snr is None else float(snr)
        except (TypeError, ValueError):
            snr = None
        return self.params.tx_header_format(snr)

    def modulate(self, meta: dict, payload: np.ndarray) -> np.ndarray:
        header = header_from_meta(meta)
        iq = np.asarray(self.tx.modulate(header, np.asarray(payload, dtype=np.complex64), self.header_format(meta)),
                        dtype=np.complex64)
        if self.amplitude != 1.0:
            iq = iq * np.float32(self.amplitude)
        mag2 = iq.real * iq.real + iq.imag * iq.imag
        self.peak_to_rms = max(self.peak_to_rms, float(np.sqrt(mag2.max() / max(mag2.mean(), 1e-30))))
        self.values += 2 * iq.size
        self.clipped += int(np.count_nonzero(np.abs(iq.view(np.float32)) > self.full_scale))
        if self.guard:
            iq = np.concatenate([iq, np.zeros(self.guard, np.complex64)])
        return iq

    @property
    def papr_db(self) -> float:
        return 20.0 * np.log10(self.peak_to_rms) if self.peak_to_rms > 0 else float("nan")

    @property
    def clip_fraction(self) -> float:
        return self.clipped / self.values if self.values else 0.0


class ofdm_analog_tx(gr.basic_block):
    """Message ``pdus`` in -> complex IQ stream out.

    Args:
        fft_len, cp_len, n_data_carriers, n_pilot_carriers, symbols_per_frame: OFDM layout
            (passed to ``phy.OfdmParams``; must match the receiver).
        pilot_carriers: signed pilot subcarrier indices (empty = 802.11a-like default).
        n_short_reps, n_long: sync words: repetitions of the short (half-symbol) preamble and
            copies of the long training symbol (longer = more robust sync, more overhead).
        guard: zero samples appended after every frame.
        amplitude: RMS level of the IQ (1.0 in simulation; a USRP DAC clips I and Q at +-1, so
            leave room for the peaks: ``papr_db()`` and ``clip_fraction()`` report them).
        full_scale: I/Q magnitude counted as clipped by ``clip_fraction()`` (the DAC's +-1).
        burst_tags: add ``tx_sob``/``tx_eob`` stream tags around each frame burst.
        header_mcs: header code: ``robust`` (BPSK rate 1/3, to about -3 dB), ``dense`` (QPSK
            rate 1/2: a third of the header symbols, from about 4 dB) or ``auto`` (dense when the
            frame's ``tx_snr_db`` is at least ``dense_header_snr_db``). The receiver needs the same
            ``header_mcs`` (``auto`` reads both).
        params: a ready ``phy.OfdmParams`` (overrides the layout arguments).

    Send the symbol ``eos`` to ``pdus`` to end the stream once the queued frames are out (used by
    headless runs to finish deterministically); the stream then ends with ``EOS_TAIL`` zero samples,
    the first tagged ``eos``, on which ``ofdm_analog_rx`` flushes its batch and a frame still in
    progress (the zeros after the tag carry it through channel blocks that drop trailing samples).
    """

    def __init__(self, fft_len: int = _D.fft_len, cp_len: int = _D.cp_len,
                 n_data_carriers: int = _D.n_data_carriers, n_pilot_carriers: int = _D.n_pilot_carriers,
                 symbols_per_frame: int = _D.symbols_per_frame, pilot_carriers=(),
                 n_short_reps: int = _D.n_short_reps, n_long: int = _D.n_long, guard: int = 256,
                 amplitude: float = 1.0, burst_tags: bool = False, params=None,
                 tx_clip_ratio: float = _D.tx_clip_ratio, full_scale: float = 1.0,
                 header_mcs: str = _D.header_mcs, dense_header_snr_db: float = _D.dense_header_snr_db):
        gr.basic_block.__init__(self, name="medjscc_ofdm_analog_tx", in_sig=None,
                                out_sig=[np.complex64])
        if params is None:
            params = make_params(dict(fft_len=fft_len, cp_len=cp_len, n_data_carriers=n_data_carriers,
                                      n_pilot_carriers=n_pilot_carriers,
                                      symbols_per_frame=symbols_per_frame,
                                      pilot_carriers=tuple(pilot_carriers) or None,
                                      n_short_reps=n_short_reps, n_long=n_long,
                                      tx_clip_ratio=tx_clip_ratio, header_mcs=header_mcs,
                                      dense_header_snr_db=dense_header_snr_db))
        self.params = params
        self.modulator = FrameModulator(params, guard, amplitude, full_scale)
        self.burst_tags = bool(burst_tags)
        self._queue: collections.deque = collections.deque()  # (iq, meta)
        self._current = None
        self._pos = 0
        self._eos = False
        self._lead_in_sent = False
        self._lock = threading.Lock()
        self.frames_sent = 0
        self.frames_dropped = 0
        self.message_port_register_in(pmt.intern("pdus"))
        self.set_msg_handler(pmt.intern("pdus"), self._handle)
        with quiet_gr_logs():
            self.set_min_output_buffer(65536)   # whole frames per call: fewer Python round trips

    def set_amplitude(self, amplitude: float):
        self.modulator.amplitude = float(amplitude)

    def papr_db(self) -> float:
        """Highest peak/RMS (dB) of the frames sent so far."""
        return self.modulator.papr_db

    def clip_fraction(self) -> float:
        """Fraction of the I and Q values sent so far beyond ``full_scale`` (what a DAC clips)."""
        return self.modulator.clip_fraction

    def set_burst_tags(self, on: bool):
        self.burst_tags = bool(on)

    def queued_samples(self) -> int:
        with self._lock:
            n = sum(len(iq) for iq, _ in self._queue)
            if self._current is not None:
                n += len(self._current[0]) - self._pos
        return n

    def _handle(self, msg):
        if pmt.is_symbol(msg) and pmt.eq(msg, EOS):
            # trailing zeros, the first tagged "eos": the receiver flushes its last frames
            with self._lock:
                self._queue.append((np.zeros(EOS_TAIL, np.complex64), {"_eos": True}))
            return
        try:
            meta, data = split_pdu(msg)
            if data is None or not np.iscomplexobj(data):
                raise ValueError("PDU payload is not a complex vector")
            iq = self.modulator.modulate(meta, data)
        except Exception as e:  # bad PDU: drop it, keep the flowgraph alive
            self.frames_dropped += 1
            log.warning("ofdm_analog_tx: dropped a PDU: %s", e)
            return
        with self._lock:
            if not self._lead_in_sent and self.modulator.guard:
                # the receiver's sync window needs some signal-free samples before the first preamble
                iq = np.concatenate([np.zeros(self.modulator.guard, np.complex64), iq])
                self._lead_in_sent = True
            self._queue.append((iq, meta))

    def general_work(self, input_items, output_items):
        out = output_items[0]
        produced = 0
        with self._lock:
            while produced < len(out):
                if self._current is None:
                    if not self._queue:
                        break
                    self._current = self._queue.popleft()
                    self._pos = 0
                iq, meta = self._current
                start = self.nitems_written(0) + produced
                if self._pos == 0 and meta.get("_eos"):
                    self.add_item_tag(0, start, EOS, pmt.PMT_T)
                elif self._pos == 0:
                    if self.burst_tags:
                        self.add_item_tag(0, start, pmt.intern("tx_sob"), pmt.PMT_T)
                    self.add_item_tag(0, start, pmt.intern("frame"), to_pmt(
                        {"seq": int(meta.get("seq", -1)), "image_id": int(meta.get("image_id", -1)),
                         "samples": len(iq)}))
                n = min(len(out) - produced, len(iq) - self._pos)
                out[produced:produced + n] = iq[self._pos:self._pos + n]
                produced += n
                self._pos += n
                if self._pos >= len(iq):
                    self._current = None
                    if meta.get("_eos"):
                        self._eos = True
                        continue
                    if self.burst_tags:
                        self.add_item_tag(0, self.nitems_written(0) + produced - 1,
                                          pmt.intern("tx_eob"), pmt.PMT_T)
                    self.frames_sent += 1
            idle = self._current is None and not self._queue
        if produced == 0 and idle and self._eos:
            return -1  # WORK_DONE
        return produced
