"""Symbol-level channel on PDUs: AWGN, Rayleigh fading or frame erasures (no OFDM, no sync).

For fast studies: ``jscc_tx`` frames go straight through this block into ``jscc_rx``. Noise
follows the project convention (``snr.py``): unit-power symbols, complex noise variance
``10**(-snr_db/10)``. Rayleigh fading assumes perfect channel knowledge at the receiver: the
output is ``y / h`` (zero-forcing), so the effective per-symbol SNR is ``snr_db + 20 log10|h|``;
``fading="block"`` draws one ``h`` per PDU (slow), ``"fast"`` one per symbol: the bare kind
``rayleigh`` is an alias of ``channel_models``' ``rayleigh_frame`` (block) or ``rayleigh_iid``
(fast). ``kind`` may also name any Rayleigh model of ``channel_models`` (``rayleigh_block256``,
...): its coherence then counts symbols from the start of each PDU and ``fading`` is not used.
``erasure_prob`` drops whole PDUs (a lost frame, erased at the receiver) for every kind.

Output metadata adds ``snr_db`` (the SNR the receiver would estimate: the true SNR for AWGN, the
frame's mean effective SNR for Rayleigh), ``channel`` and keeps all input keys.
"""
from __future__ import annotations

import math
import threading

import numpy as np
import pmt
from gnuradio import gr

from .. import channel_models as cm
from ..snr import noise_variance
from ._pmtutil import complex_pdu, make_pdu

# "erasure" is AWGN plus PDU drops; the others are channel_models names (multipath needs OFDM)
KINDS = ("erasure",) + tuple(n for n in cm.names("block") if n not in ("multipath", "rayleigh_fast"))


def _model(kind: str, fading: str) -> cm.ChannelModel:
    if kind == "erasure":
        return cm.MODELS["awgn"]
    if kind == "rayleigh" and fading == "fast":
        return cm.resolve("rayleigh_fast", "block")
    return cm.resolve(kind, "block")


def apply_symbol_channel(symbols: np.ndarray, kind: str, snr_db: float, rng: np.random.Generator,
                         fading: str = "block", return_gains: bool = False):
    """Return ``(received equalised symbols, effective SNR in dB)`` for one frame (PDU), and
    with ``return_gains`` the per-symbol gains (None without fading)."""
    if kind not in KINDS:
        raise ValueError(f"symbol_channel kind must be one of {KINDS}, got {kind!r}")
    x = np.asarray(symbols, dtype=np.complex64)
    n0 = noise_variance(snr_db)
    noise = (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size)) * math.sqrt(n0 / 2)
    # the frame is the PDU: rayleigh_frame has one gain per PDU
    h = cm.gains(_model(kind, fading), x.size, rng, frame_len=max(x.size, 1), layout="split")
    if h is None:
        y, eff = (x + noise).astype(np.complex64), float(snr_db)
    else:
        h = np.where(np.abs(h) < 1e-6, 1e-6, h)  # ZF on an exact null would divide by zero
        y = ((h * x + noise) / h).astype(np.complex64)
        eff = float(snr_db) + 10 * math.log10(max(float(np.mean(np.abs(h) ** 2)), 1e-12))
    return (y, eff, h) if return_gains else (y, eff)


class symbol_channel(gr.basic_block):
    """PDU in (``in``) -> PDU out (``out``); complex64 payload symbols.

    Args:
        kind: ``awgn`` | ``rayleigh`` | ``erasure`` (erasure = AWGN plus frame drops).
        snr_db: channel SNR (Es/N0 per complex symbol).
        erasure_prob: probability that a whole PDU is dropped.
        fading: ``block`` (one gain per PDU) or ``fast`` (one per symbol), Rayleigh only.
        seed: RNG seed (reproducible runs).
    """

    def __init__(self, kind: str = "awgn", snr_db: float = 10.0, erasure_prob: float = 0.0,
                 fading: str = "block", seed: int = 0):
        gr.basic_block.__init__(self, name="medjscc_symbol_channel", in_sig=None, out_sig=None)
        self._lock = threading.Lock()
        self.set_kind(kind)
        self.set_fading(fading)
        self.set_snr_db(snr_db)
        self.set_erasure_prob(erasure_prob)
        self._rng = np.random.default_rng(int(seed))
        self.n_in = 0
        self.n_dropped = 0
        self.message_port_register_in(pmt.intern("in"))
        self.message_port_register_out(pmt.intern("out"))
        self.set_msg_handler(pmt.intern("in"), self._handle)

    def set_kind(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"symbol_channel kind must be one of {KINDS}, got {kind!r}")
        self._kind = kind

    def set_fading(self, fading: str):
        if fading not in ("block", "fast"):
            raise ValueError(f"symbol_channel fading must be block or fast, got {fading!r}")
        self._fading = fading

    def set_snr_db(self, snr_db: float):
        self._snr_db = float(snr_db)

    def set_erasure_prob(self, p: float):
        if not (0.0 <= float(p) < 1.0):
            raise ValueError(f"symbol_channel erasure_prob must be in [0, 1), got {p}")
        self._erasure_prob = float(p)

    def _handle(self, msg):
        pdu = complex_pdu(msg)
        if pdu is None:
            return
        meta, data = pdu
        with self._lock:
            self.n_in += 1
            if self._erasure_prob > 0 and self._rng.random() < self._erasure_prob:
                self.n_dropped += 1
                return
            y, eff, h = apply_symbol_channel(data, self._kind, self._snr_db, self._rng, self._fading,
                                             return_gains=True)
        meta.update(snr_db=eff, channel=self._kind, crc_ok=True)
        if h is not None:   # ZF symbols with each one's 1/SNR_i: what a CSI-aware decoder weighs
            meta.update(equalizer="zf", inv_snr=(noise_variance(self._snr_db) /
                                                 np.maximum(np.abs(h) ** 2, 1e-12)).astype(np.float32))
        self.message_port_pub(pmt.intern("out"), make_pdu(meta, y))
