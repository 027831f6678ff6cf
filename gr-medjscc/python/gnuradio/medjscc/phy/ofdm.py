"""Analog OFDM transmitter and streaming receiver (pure numpy).

Frame layout (sample counts for the defaults fft_len=64, cp_len=16)::

    short preamble   n_short_reps x (fft_len/2)          256   coarse timing + CFO (|cfo| < 1)
    long preamble    2*cp_len CP + n_long x fft_len       160   fine timing, fine CFO, channel, SNR
    header           n_header_symbols x (fft_len+cp_len)        BPSK, K=7 r=1/3 code + CRC32
    payload          ceil(payload_len/48) x (fft_len+cp_len)    analog complex symbols

Every header/payload symbol carries pilots (polarity sequence indexed from the first header
symbol). See ``params`` for the FFT scaling that keeps Es/N0 on the data subcarriers equal to the
project SNR.

Receiver outline: normalised cross-correlation with one short period, summed non-coherently over
the ``n_short_reps`` periods and divided by the window energy (a CFAR statistic, independent of
the signal and noise levels) -> coarse peak -> coarse CFO from the phase between adjacent
period correlations -> fine timing by correlating the CFO-corrected signal with the long
symbols -> fine CFO from the long-symbol repetition -> channel estimate (LS on occupied
carriers, projected on the first ``chan_est_taps`` taps = DFT-window denoising) -> noise
variance from the preamble residuals (long symbols around the fit, empty odd carriers and
repetition differences of the short symbols) -> header decode -> pilot phase tracking
(residual-CFO slope + moving average) -> ZF/MMSE equalisation. No hard decisions on the payload.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import signal as sps

from ..errors import MedJSCCError
from .header import FrameHeader
from .params import OfdmParams, sequences


# ============================================================================ transmitter
class OfdmTransmitter:
    def __init__(self, params: OfdmParams | None = None):
        self.params = (params or OfdmParams()).validate()
        self.seq = sequences(self.params)
        p = self.params
        short = np.tile(self.seq.short_time, p.n_short_reps)
        long_ = np.concatenate([self.seq.long_time[-p.long_cp:], np.tile(self.seq.long_time, p.n_long)])
        self.preamble = np.concatenate([short, long_]).astype(np.complex64)
        self._data_bins = p.bins(p.data_carrier_idx)
        self._pilot_bins = p.bins(p.pilot_carrier_idx)

    def _ofdm_symbols(self, data_grid: np.ndarray, first_symbol: int) -> np.ndarray:
        p = self.params
        n = data_grid.shape[0]
        X = np.zeros((n, p.fft_len), np.complex128)
        X[:, self._data_bins] = data_grid
        X[:, self._pilot_bins] = self.seq.pilots(n, first_symbol)
        x = np.fft.ifft(X, axis=1) * p.tx_scale
        return np.concatenate([x[:, -p.cp_len:], x], axis=1).reshape(-1)

    def modulate(self, header: FrameHeader, payload) -> np.ndarray:
        """One frame of complex64 IQ. ``payload`` length must equal ``header.payload_len``."""
        p = self.params
        payload = np.asarray(payload, np.complex64).reshape(-1)
        if payload.size != header.payload_len:
            raise MedJSCCError(f"payload has {payload.size} symbols but header.payload_len is "
                               f"{header.payload_len}")
        if not np.all(np.isfinite(payload)):
            raise MedJSCCError("payload contains NaN/inf symbols")
        bits = header.to_bits(p)
        hdr = self._ofdm_symbols((1.0 - 2.0 * bits).reshape(-1, p.n_data_carriers), 0)
        n_pay = p.n_payload_symbols(payload.size)
        grid = np.zeros(n_pay * p.n_data_carriers, np.complex128)
        grid[: payload.size] = payload
        pay = self._ofdm_symbols(grid.reshape(n_pay, p.n_data_carriers), p.n_header_symbols)
        return np.concatenate([self.preamble, hdr, pay]).astype(np.complex64)


# ============================================================================ receiver
_MAX_ABS = 1e12

@dataclass
class RxFrame:
    header: FrameHeader | None
    crc_ok: bool
    payload: np.ndarray              # complex64 equalised symbols (header.payload_len), empty if no header
    snr_db: float                    # data-subcarrier Es/N0 estimate (project convention)
    cfo: float                       # subcarrier-spacing units
    chan_taps: np.ndarray            # complex64 impulse response (timing backoff included)
    noise_var: np.ndarray            # float32 per payload symbol: E|payload - x|^2 for the equaliser
    start_sample: int                # absolute index of the frame start (short preamble)
    n0: float = 0.0                  # per-subcarrier noise variance before equalisation
    noise_var_carriers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    erased: np.ndarray | None = None # True where payload symbols were cut off (truncated frame)
    equalizer: str = "mmse"

    @property
    def seq(self):
        return None if self.header is None else self.header.seq

    @property
    def image_id(self):
        return None if self.header is None else self.header.image_id

    @property
    def truncated(self) -> bool:
        return self.erased is not None and bool(np.any(self.erased))


@dataclass
class _Sync:
    start: int          # frame start in buffer coordinates (short preamble begins)
    long_start: int     # first long-symbol window (includes backoff)
    cfo: float


class OfdmReceiver:
    """Streaming receiver: ``process(iq)`` returns the frames completed so far; samples of a frame
    not yet complete are kept for the next call. ``flush()`` decodes what is left (truncated)."""

    def __init__(self, params: OfdmParams | None = None, equalizer: str | None = None):
        self.params = (params or OfdmParams()).validate()
        p = self.params
        self.seq = sequences(p)
        self.set_equalizer(equalizer or p.equalizer)
        occ = p.occupied_carriers
        self._occ_bins = p.bins(occ)
        self._data_pos = np.nonzero(np.isin(occ, p.data_carrier_idx))[0]
        self._pilot_pos = np.nonzero(np.isin(occ, p.pilot_carrier_idx))[0]
        # DFT-window denoising: LS fit of `taps` time taps to the occupied-carrier estimate
        A = np.exp(-2j * np.pi * np.outer(self._occ_bins, np.arange(p.taps)) / p.fft_len)
        self._taps_pinv = np.linalg.pinv(A)
        self._proj = A @ self._taps_pinv
        self._short_tmpl = np.conj(self.seq.short_time[::-1]).astype(np.complex64)
        self._short_energy = float(np.sum(np.abs(self.seq.short_time) ** 2))
        self._long_tmpl = np.conj(np.tile(self.seq.long_time, p.n_long))
        self._even_pos = np.nonzero(occ % 2 == 0)[0]
        self._odd_pos = np.nonzero(occ % 2 == 1)[0]
        self.reset()

    # ------------------------------------------------------------------ public controls
    def set_equalizer(self, name: str) -> None:
        if name not in ("zf", "mmse"):
            raise MedJSCCError(f"equalizer must be 'zf' or 'mmse', got {name!r}")
        self.equalizer = name

    def reset(self) -> None:
        self._tail = np.zeros(0, np.complex64)
        self._base = 0           # absolute index of _tail[0]
        self._search_from = 0    # relative to _tail[0]
        self.samples_seen = 0

    # ------------------------------------------------------------------ streaming
    def process(self, iq) -> list[RxFrame]:
        iq = np.asarray(iq)
        if iq.dtype != np.complex64:
            iq = iq.astype(np.complex64, copy=False) if np.iscomplexobj(iq) else iq.astype(np.float32).astype(np.complex64)
        iq = iq.reshape(-1)
        if not np.all(np.isfinite(iq)):
            iq = np.nan_to_num(iq, nan=0.0, posinf=0.0, neginf=0.0)
        if iq.size and float(np.max(np.abs(iq.view(np.float32)))) > _MAX_ABS:
            # keep squared correlations inside float32 range (garbage/overloaded input)
            iq = np.clip(iq.real, -_MAX_ABS, _MAX_ABS) + 1j * np.clip(iq.imag, -_MAX_ABS, _MAX_ABS)
            iq = iq.astype(np.complex64)
        self.samples_seen += iq.size
        buf = np.concatenate([self._tail, iq]) if self._tail.size else iq
        return self._run(buf, flush=False)

    def flush(self) -> list[RxFrame]:
        """Decode frames left in the buffer (payload cut short -> erased), then reset the stream."""
        frames = self._run(self._tail, flush=True) if self._tail.size else []
        base = self._base + self._tail.size
        self.reset()
        self._base = base
        return frames

    # ------------------------------------------------------------------ detection statistic
    def _metric(self, buf: np.ndarray):
        p = self.params
        P, R = p.short_period, p.n_short_reps
        W = R * P
        c = sps.oaconvolve(buf, self._short_tmpl, mode="valid") if buf.size >= P else np.zeros(0, np.complex64)
        n = buf.size - W + 1
        if n <= 0:
            return c, np.zeros(0, np.float32)
        a = c.real * c.real + c.imag * c.imag
        M = a[:n].copy()
        for r in range(1, R):
            M += a[r * P: r * P + n]
        e = np.concatenate([[0.0], np.cumsum(buf.real.astype(np.float64) ** 2 + buf.imag.astype(np.float64) ** 2)])
        E = e[W:] - e[:-W]
        m = M / (self._short_energy * np.maximum(E, 1e-20))
        return c, m.astype(np.float32)

    # ------------------------------------------------------------------ main loop
    def _run(self, buf: np.ndarray, flush: bool) -> list[RxFrame]:
        p = self.params
        P, R = p.short_period, p.n_short_reps
        L = buf.size
        frames: list[RxFrame] = []
        c, m = self._metric(buf)
        thr = p.detect_threshold
        pos = self._search_from
        keep_from = None
        # samples needed after a coarse peak for preamble + header (+ fine-timing slack)
        hdr_need = p.preamble_len + p.n_header_symbols * p.symbol_len + 2 * P
        above = np.flatnonzero(m > thr)
        while True:
            k = np.searchsorted(above, pos)
            if k >= above.size:
                break
            idx = int(above[k])
            hi = idx + R * P
            if hi >= m.size and not flush:
                keep_from = idx
                break
            n_hat = idx + int(np.argmax(m[idx: hi + 1]))
            if n_hat + hdr_need > L:
                if flush:
                    break
                keep_from = idx
                break
            sync = self._sync(buf, c, n_hat)
            if sync is None:
                pos = n_hat + P
                continue
            frame, hdr_end, pay_end = self._demod(buf, sync, m, flush)
            if frame is None:            # payload incomplete: wait for more samples
                keep_from = min(idx, sync.start)
                break
            frame.start_sample = self._base + sync.start + p.backoff
            frames.append(frame)
            pos = hdr_end
        if keep_from is None:
            keep_from = max(0, min(pos, L - R * P))
        keep_from = max(0, min(keep_from, L))
        self._search_from = max(0, pos - keep_from) if keep_from <= pos else 0
        self._tail = buf[keep_from:].copy()
        self._base += keep_from
        return frames

    # ------------------------------------------------------------------ synchronisation
    def _sync(self, buf, c, n_hat) -> _Sync | None:
        p = self.params
        P, R, N = p.short_period, p.n_short_reps, p.fft_len
        seg = c[n_hat + P * np.arange(R)]
        z = np.sum(seg[1:] * np.conj(seg[:-1]))
        cfo_c = float(np.angle(z)) * N / (2 * math.pi * P)
        expected = n_hat + R * P + p.long_cp
        lo = max(0, expected - P - 8)
        hi = expected + P + 8
        T = self._long_tmpl.size
        if hi + T > buf.size:
            return None
        n = np.arange(lo, hi + T)
        x = buf[lo: hi + T] * np.exp(-2j * np.pi * cfo_c * (n - expected) / N)
        win = np.lib.stride_tricks.sliding_window_view(x, T)
        corr = win @ self._long_tmpl
        energy = np.einsum("ij,ij->i", win.real, win.real) + np.einsum("ij,ij->i", win.imag, win.imag)
        score = np.abs(corr) ** 2 / (np.sum(np.abs(self._long_tmpl) ** 2) * np.maximum(energy, 1e-20))
        best = int(np.argmax(score))
        if score[best] < 0.6 * p.detect_threshold:
            return None
        long_start = lo + best - p.backoff
        if long_start < lo:
            return None
        # fine CFO from the repetition of the long symbol
        y = x[long_start - lo: long_start - lo + p.n_long * N].reshape(p.n_long, N)
        z2 = np.sum(y[1:] * np.conj(y[:-1]))
        cfo = cfo_c + float(np.angle(z2)) / (2 * math.pi)
        start = long_start - p.long_cp - R * P
        if start < 0:
            return None
        return _Sync(start=start, long_start=long_start, cfo=cfo)

    def _fft_windows(self, buf, starts, sync):
        """FFT (RX scaling) of fft_len-sample windows at ``starts`` after CFO correction."""
        p = self.params
        N = p.fft_len
        idx = np.asarray(starts)[:, None] + np.arange(N)[None, :]
        rot = np.exp(-2j * np.pi * sync.cfo * (idx - sync.long_start) / N)
        return np.fft.fft(buf[idx] * rot, axis=1) * p.rx_scale

    # ------------------------------------------------------------------ estimation + demod
    def _preamble_training(self, buf, sync):
        """LS channel rows from the long symbols + noise energy/dof from the short symbols."""
        p = self.params
        N, P, R = p.fft_len, p.short_period, p.n_short_reps
        Y = self._fft_windows(buf, sync.long_start + N * np.arange(p.n_long), sync)[:, self._occ_bins]
        rows = Y / self.seq.long_freq[None, :]
        resid, dof = 0.0, 0
        # short preamble: odd carriers are empty, even ones repeat in every fft_len block
        n_blocks = ((R - 1) * P) // N
        if n_blocks >= 1:
            Ys = self._fft_windows(buf, sync.start + P + N * np.arange(n_blocks), sync)[:, self._occ_bins]
            resid += float(np.sum(np.abs(Ys[:, self._odd_pos]) ** 2))
            dof += n_blocks * self._odd_pos.size
            if n_blocks >= 2:
                ev = Ys[:, self._even_pos]
                resid += float(np.sum(np.abs(ev - ev.mean(axis=0)) ** 2))
                dof += (n_blocks - 1) * self._even_pos.size
        return rows, resid, dof

    def _fit(self, rows, resid, dof):
        """DFT-window (tap-limited LS) channel fit over LS rows; noise from all residuals."""
        p = self.params
        mean = rows.mean(axis=0)
        H_fit = self._proj @ mean
        taps = self._taps_pinv @ mean
        resid = resid + float(np.sum(np.abs(rows - H_fit[None, :]) ** 2))
        dof = dof + rows.shape[0] * p.n_occupied - p.taps
        n0 = resid / max(dof, 1)
        n0 = max(n0, 1e-12 * float(np.mean(np.abs(H_fit) ** 2)) + 1e-30)
        Hdata = H_fit[self._data_pos]
        sig = float(np.mean(np.abs(Hdata) ** 2)) - n0 * p.taps / (rows.shape[0] * p.n_occupied)
        snr_db = 10 * math.log10(max(sig, 1e-30) / n0)
        return H_fit, taps, n0, snr_db

    def _track(self, Y, H_fit, first_symbol):
        """Per-symbol complex pilot gain, smoothed: residual-CFO slope + moving average."""
        p = self.params
        Hp = H_fit[self._pilot_pos][None, :] * self.seq.pilots(Y.shape[0], first_symbol)
        Yp = Y[:, p.bins(p.pilot_carrier_idx)]
        g = np.sum(np.conj(Hp) * Yp, axis=1) / max(float(np.sum(np.abs(Hp[0]) ** 2)), 1e-30)
        n = g.size
        W = min(p.pilot_smooth, n)
        if W > 1:
            slope = float(np.angle(np.sum(g[1:] * np.conj(g[:-1])))) if n > 1 else 0.0
            ramp = np.exp(1j * slope * np.arange(n))
            gd = g / ramp
            kernel = np.ones(W)
            num = np.convolve(gd, kernel, mode="same")
            den = np.convolve(np.ones(n), kernel, mode="same")
            g = num / den * ramp
        if not p.pilot_amplitude:
            g = np.exp(1j * np.angle(g))
        return g

    def _equalise(self, Yd, Hd, n0):
        if self.equalizer == "zf":
            return Yd / np.where(np.abs(Hd) > 1e-12, Hd, 1e-12)
        return np.conj(Hd) * Yd / (np.abs(Hd) ** 2 + n0)

    def _demod(self, buf, sync, m, flush):
        p = self.params
        N, S = p.fft_len, p.symbol_len
        L = buf.size
        rows, s_resid, s_dof = self._preamble_training(buf, sync)
        H_fit, taps, n0, snr_db = self._fit(rows, s_resid, s_dof)
        data_bins = p.bins(p.data_carrier_idx)
        Hdata = H_fit[self._data_pos]
        first = sync.long_start + p.n_long * N + p.cp_len      # first header FFT window
        n_hdr = p.n_header_symbols
        hdr_end = sync.start + p.preamble_len + n_hdr * S
        Yh = self._fft_windows(buf, first + S * np.arange(n_hdr), sync)
        gh = self._track(Yh, H_fit, 0)
        Hd = gh[:, None] * Hdata[None, :]
        llr = 4.0 * np.real(np.conj(Hd) * Yh[:, data_bins]) / n0
        header = FrameHeader.from_bits(llr.reshape(-1), p)
        common = dict(snr_db=snr_db, cfo=sync.cfo, chan_taps=taps.astype(np.complex64),
                      start_sample=0, n0=n0, equalizer=self.equalizer)
        if header is None:
            return (RxFrame(None, False, np.zeros(0, np.complex64), noise_var=np.zeros(0, np.float32), **common),
                    hdr_end, hdr_end)
        # the CRC-checked header is known data: re-encode it and use it as extra training
        Xh = np.zeros((n_hdr, p.n_occupied))
        Xh[:, self._data_pos] = (1.0 - 2.0 * header.to_bits(p)).reshape(n_hdr, p.n_data_carriers)
        Xh[:, self._pilot_pos] = self.seq.pilots(n_hdr, 0)
        hrows = Yh[:, self._occ_bins] / gh[:, None] * Xh
        H_fit, taps, n0, snr_db = self._fit(np.concatenate([rows, hrows]), s_resid, s_dof)
        Hdata = H_fit[self._data_pos]
        common.update(snr_db=snr_db, chan_taps=taps.astype(np.complex64), n0=n0)
        n_pay = p.n_payload_symbols(header.payload_len)
        pay_end = hdr_end + n_pay * S
        win_starts = first + S * np.arange(n_hdr + n_pay)
        available = win_starts + N <= L
        if not np.all(available) and not flush:
            return None, hdr_end, pay_end
        # a new preamble inside this payload means the frame was cut off there
        cut = pay_end
        lo_m, hi_m = hdr_end, min(pay_end - p.short_len, m.size)
        if hi_m > lo_m:
            cand = np.flatnonzero(m[lo_m:hi_m] > p.detect_threshold)
            if cand.size:
                j = lo_m + int(cand[0])
                hi = min(j + p.n_short_reps * p.short_period, m.size - 1)
                j = j + int(np.argmax(m[j: hi + 1]))
                cc = sps.oaconvolve(buf[: min(L, j + p.preamble_len + 2 * p.short_period)], self._short_tmpl, mode="valid")
                other = self._sync(buf, cc, j) if j + p.short_len <= cc.size else None
                if other is not None:
                    cut = other.start
        valid = available & (win_starts + N <= cut)
        valid[:n_hdr] = True
        n_ok = int(np.sum(valid[n_hdr:]))
        Y = self._fft_windows(buf, win_starts[: n_hdr + n_ok], sync)
        g = self._track(Y, H_fit, 0)
        Hd = g[n_hdr:, None] * Hdata[None, :]
        eq = self._equalise(Y[n_hdr:, data_bins], Hd, n0)
        h2 = np.abs(Hdata) ** 2
        nv_car = n0 / np.maximum(h2, 1e-30) if self.equalizer == "zf" else n0 / (h2 + n0)
        payload = np.zeros(n_pay * p.n_data_carriers, np.complex64)
        payload[: eq.size] = eq.reshape(-1)
        erased = np.ones(n_pay * p.n_data_carriers, bool)
        erased[: eq.size] = False
        noise_var = np.tile(nv_car, n_pay).astype(np.float32)
        noise_var[erased] = np.inf
        plen = header.payload_len
        frame = RxFrame(header, True, payload[:plen], noise_var=noise_var[:plen],
                        noise_var_carriers=nv_car.astype(np.float32), erased=erased[:plen], **common)
        return frame, hdr_end, pay_end
