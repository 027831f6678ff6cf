"""``--link ofdm``: the sweep's symbols go through the numpy OFDM PHY (``gnuradio.medjscc.phy``).

Per image and SNR: ``phy.frame_image`` splits the symbols (and the JSCC side info, carried in the
CRC-protected headers) into frames, ``OfdmTransmitter`` modulates them, ``apply_iq_channel``
applies the preset (awgn, multipath: the PHY's 3-tap channel, rayleigh: one block-fading gain per
frame) with the SNR calibrated on the data subcarriers, and a fresh ``OfdmReceiver`` synchronises,
estimates the channel and equalises. Frames whose header fails are lost: their symbols are
erased (LLR 0 for the digital baselines, zeros + ``erased`` for the JSCC decoders). Digital
baselines use the ZF equaliser with its per-symbol noise variance for the LLRs; JSCC decoders
get the MMSE output, like the symbol link's analog path. The channel draws come from the same
(image, SNR, trial) seed for every method.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, MedJSCCError

_PRESET = {"awgn": "awgn", "multipath": "multipath", "rayleigh": "rayleigh"}
_LEAD, _GAP = 200, 64   # noise-only samples before the burst and between frames


class OfdmLink:
    name = "ofdm"

    def __init__(self, kind: str):
        try:
            from .. import phy
        except ImportError as e:
            raise MedJSCCError(f"--link ofdm needs gnuradio.medjscc.phy ({e})") from None
        if kind not in _PRESET:
            raise InputError(f"unknown channel {kind!r} for the OFDM link; choose one of {', '.join(_PRESET)}")
        self.phy = phy
        self.kind = kind
        self.params = phy.OfdmParams()
        self.tx = phy.OfdmTransmitter(self.params)

    def _send(self, symbols, side_info, snr_db, seed_words, equalizer):
        phy = self.phy
        symbols = np.asarray(symbols, np.complex64).reshape(-1)
        frames = phy.frame_image(0, symbols, side_info or b"", self.params)
        rng = np.random.default_rng(np.random.SeedSequence(list(seed_words) + [0x0FD]))
        gap = np.zeros(_GAP, np.complex64)
        # the TX knows the SNR it encodes for: under header_mcs=auto it picks the header from it
        fmt = self.params.tx_header_format(snr_db)
        bursts = [self.tx.modulate(h, p, fmt) for h, p in frames]
        if self.kind == "rayleigh":  # block fading: one gain per frame
            parts = [phy.apply_iq_channel(np.concatenate([b, gap]), "rayleigh", snr_db, rng=rng,
                                          params=self.params, delay=_LEAD if i == 0 else 0)
                     for i, b in enumerate(bursts)]
            iq = np.concatenate(parts)
        else:
            iq = phy.apply_iq_channel(np.concatenate([np.concatenate([b, gap]) for b in bursts]),
                                      _PRESET[self.kind], snr_db, rng=rng, params=self.params, delay=_LEAD)
        rx = phy.OfdmReceiver(self.params, equalizer=equalizer)
        asm = phy.ImageAssembler(self.params)
        for f in list(rx.process(iq)) + list(rx.flush()):
            asm.add(f)
        return asm.assemble(0, n_symbols=symbols.size)

    def total_symbols(self, n_payload: int, side_info_bytes: int, snr_db=None) -> int:
        """Complex samples on air for one image (``phy.overhead_symbols``: preambles, headers,
        pilots, cyclic prefix, guard carriers, padding); the noise-only gaps between bursts are not
        counted, as in the GNU Radio loopback's ``cbr_air``. ``snr_db``: the SNR the TX sends at
        (it picks the header format under ``header_mcs=auto``); None: the longest header (a budget
        that holds at any SNR)."""
        fmt = None if snr_db is None else self.params.tx_header_format(snr_db)
        return int(self.phy.overhead_symbols(n_payload, side_info_bytes, self.params, header_format=fmt)["total"])

    def payload_for_air(self, air_samples: int, side_info_bytes: int, snr_db=None) -> int | None:
        """Most payload symbols an image with ``side_info_bytes`` of side info can send within
        ``air_samples`` samples on air (None when not even an empty burst fits). Bisection on
        ``total_symbols``, which never decreases with the payload; air >= payload bounds it."""
        def fits(n):
            try:
                return self.total_symbols(n, side_info_bytes, snr_db) <= air_samples
            except MedJSCCError:   # more frames than the header can number: too long
                return False

        lo, hi = 0, int(air_samples) + 1
        if not fits(lo):
            return None
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
        return lo

    def capacity(self, snr_db: float) -> float:
        """Bits per data-subcarrier symbol: the PHY's fixed multipath channel gives
        mean_k log2(1 + |H_k|^2 SNR) (|H_k|^2 normalised to mean 1 on the data carriers, as the
        SNR calibration does); block Rayleigh gives the ergodic capacity; AWGN log2(1 + SNR)."""
        from . import channel as chan

        if self.kind != "multipath":
            return chan.capacity_bits_per_symbol(self.kind, snr_db)
        p = self.params
        freq = np.fft.fft(self.phy.multipath_taps(), p.fft_len)[np.asarray(p.data_carrier_idx) % p.fft_len]
        gain = np.abs(freq) ** 2 / np.mean(np.abs(freq) ** 2)
        return float(np.mean(np.log2(1.0 + gain * 10 ** (snr_db / 10))))

    def digital(self, symbols, snr_db, seed_words):
        a = self._send(symbols, b"", snr_db, seed_words, "zf")
        erased = np.asarray(a.erased, bool)
        nv = a.noise_var
        if nv is None:
            from .. import snr as snr_mod

            nv = np.full(a.symbols.size, snr_mod.noise_variance(snr_db), np.float32)
        nv = np.where(erased | ~np.isfinite(nv), 1.0, np.maximum(nv, 1e-9)).astype(np.float64)
        return a.symbols, None, nv, erased

    def analog(self, tx, snr_db, seed_words, equalizer: str = "mmse"):
        """-> (equalised symbols, side_info | None, erased, per-symbol 1/SNR_i | None). JSCC
        decoders take the MMSE output; the hybrid codec (digital base inside) the ZF one."""
        a = self._send(tx.symbols, tx.side_info, snr_db, seed_words, equalizer)
        return a.symbols.astype(np.complex64), a.side_info, np.asarray(a.erased, bool), a.noise_var
