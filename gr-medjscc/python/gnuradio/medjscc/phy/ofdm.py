"""Analog OFDM transmitter and streaming receiver (pure numpy).

Frame layout (sample counts for the defaults fft_len=64, cp_len=16)::

    short preamble   n_short_reps x (fft_len/2)          256   coarse timing + CFO (mod 2 subcarriers)
    long preamble    2*cp_len CP + n_long x fft_len       288   fine timing, fine CFO, channel, SNR
    header           header_symbols(fmt) x (fft_len+cp_len)     K=7 code + CRC32: robust = BPSK r=1/3,
                                                                 dense = QPSK r=1/2 (a third of the symbols)
    payload          ceil(payload_len/48) x (fft_len+cp_len)    analog complex symbols

Every header/payload symbol carries pilots (polarity sequence indexed from the first header
symbol). See ``params`` for the FFT scaling that keeps Es/N0 on the data subcarriers equal to the
project SNR.

Receiver outline: normalised cross-correlation with one short period, summed non-coherently over
the ``n_short_reps`` periods and divided by the window energy (a CFAR statistic, independent of
the signal and noise levels; near hits of a CFO-invariant Schmidl-Cox gate it is repeated for
CFO hypotheses, so oscillator offsets up to ``max_cfo_subcarriers`` are detected) -> coarse peak
-> coarse CFO from the phase between adjacent period correlations (modulo 2 subcarriers) ->
integer CFO + fine timing: long-symbol correlation per hypothesis, checked against the short
preamble at the implied start (the Zadoff-Chu time/frequency ridge) -> fine CFO from the
long-symbol repetition -> channel estimate (LS on occupied
carriers, projected on the first ``chan_est_taps`` taps = DFT-window denoising) -> noise
variance from the preamble residuals (long symbols around the fit, empty odd carriers and
repetition differences of the short symbols) -> header decode -> pilot phase tracking
(residual-CFO slope + moving average; amplitude too with ``pilot_amplitude``) and sampling-rate
offset tracking (pilot phase slope across carriers growing with the symbol index) -> ZF/MMSE
equalisation -> payload pilot SNR. No hard decisions on the payload.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sfft

from ..errors import MedJSCCError
from . import fec
from .header import FrameHeader, _slot_map, default_format, header_scrambler, slot_values
from .params import HEADER_FORMATS, OfdmParams, sequences


# CRC-aided list Viterbi for headers whose best path fails the CRC: 8 candidates recover most of
# them at -3 dB (bench/phy_sync.py --header-list 1,8). It costs 4-20 ms per header, so only for
# frames whose preamble SNR estimate is where a format can still be read (robust: about -3 dB,
# dense about 6 dB more; the estimate's RMS error is ~1.3 dB there): below, a dead link must not
# push the receiver behind real time.
HEADER_LIST_SIZE = 8
LIST_DECODE_MIN_SNR_DB = {"robust": -5.5, "dense": 0.5}


def _sliding_energy(x: np.ndarray, P: int) -> np.ndarray:
    """sum_{k<P} |x[n+k]|^2 for every n (float32). Prefix sums restart every P samples, so one
    huge sample only disturbs its own neighbourhood (a global cumsum would lose all precision
    after it)."""
    nb = -(-x.size // P) + 1
    grid = np.zeros(nb * P, np.float32)
    re, im = x.real, x.imag
    np.multiply(re, re, out=grid[: x.size])
    grid[: x.size] += im * im
    grid = grid.reshape(nb, P)
    cs = np.cumsum(grid, axis=1)
    pre = cs - grid                                   # exclusive prefix sums within each block
    out = (cs[:-1, -1:] - pre[:-1]) + pre[1:]         # tail of block q + head of block q+1
    return out.reshape(-1)[: max(x.size - P + 1, 0)]


def _window_sum(v: np.ndarray, W: int) -> np.ndarray:
    """sum_{k<W} v[n+k] for n <= v.size - W, any dtype; prefix sums restart every W entries (as in
    ``_sliding_energy``: one huge value only disturbs its own neighbourhood)."""
    nb = -(-v.size // W) + 1
    grid = np.zeros(nb * W, v.dtype)
    grid[: v.size] = v
    grid = grid.reshape(nb, W)
    cs = np.cumsum(grid, axis=1)
    pre = cs - grid
    out = (cs[:-1, -1:] - pre[:-1]) + pre[1:]
    return out.reshape(-1)[: max(v.size - W + 1, 0)]


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

    CLIP_ITERATIONS = 2   # clip-and-filter passes (each regrows a little peak; two are the usual)

    def _ofdm_symbols(self, data_grid: np.ndarray, first_symbol: int, clip: bool = False) -> np.ndarray:
        p = self.params
        n = data_grid.shape[0]
        X = np.zeros((n, p.fft_len), np.complex128)
        X[:, self._data_bins] = data_grid
        X[:, self._pilot_bins] = self.seq.pilots(n, first_symbol)
        x = np.fft.ifft(X, axis=1) * p.tx_scale
        if clip and p.tx_clip_ratio:
            x = self._clip_and_filter(x)
        return np.concatenate([x[:, -p.cp_len:], x], axis=1).reshape(-1)

    def _clip_and_filter(self, x: np.ndarray) -> np.ndarray:
        """Peak control: limit |x| to ``tx_clip_ratio`` x the nominal RMS (1), then remove what the
        clipping spread outside the occupied band. The pilots keep their share of the in-band
        clipping noise (not restored), so the receiver's pilot-based ``payload_snr_db`` shows it."""
        p = self.params
        limit = float(p.tx_clip_ratio)
        keep = np.zeros(p.fft_len, bool)
        keep[p.bins(p.occupied_carriers)] = True
        for _ in range(self.CLIP_ITERATIONS):
            mag = np.abs(x)
            over = mag > limit
            if not over.any():
                break
            x = np.where(over, x * (limit / np.maximum(mag, 1e-30)), x)
            X = np.fft.fft(x, axis=1)
            X[:, ~keep] = 0
            x = np.fft.ifft(X, axis=1)
        return x

    def modulate(self, header: FrameHeader, payload, header_format: str | None = None) -> np.ndarray:
        """One frame of complex64 IQ. ``payload`` length must equal ``header.payload_len``.
        ``header_format``: robust | dense (None: ``header.default_format``; ``params.tx_header_format``
        picks one from an SNR). A receiver configured with ``header_mcs=auto`` reads both."""
        p = self.params
        fmt = header_format or default_format(p)
        if fmt not in HEADER_FORMATS:
            raise MedJSCCError(f"header_format must be one of {', '.join(HEADER_FORMATS)}, got {header_format!r}")
        payload = np.asarray(payload, np.complex64).reshape(-1)
        if payload.size != header.payload_len:
            raise MedJSCCError(f"payload has {payload.size} symbols but header.payload_len is "
                               f"{header.payload_len}")
        if not np.all(np.isfinite(payload)):
            raise MedJSCCError("payload contains NaN/inf symbols")
        bits = header.to_bits(p, fmt)
        hdr = self._ofdm_symbols(slot_values(bits, fmt).reshape(-1, p.n_data_carriers), 0)
        n_pay = p.n_payload_symbols(payload.size)
        grid = np.zeros(n_pay * p.n_data_carriers, np.complex128)
        grid[: payload.size] = payload
        # only the payload is clipped: the header doubles as training for the receiver's estimates
        pay = self._ofdm_symbols(grid.reshape(n_pay, p.n_data_carriers), p.header_symbols(fmt), clip=True)
        return np.concatenate([self.preamble, hdr, pay]).astype(np.complex64)


# ============================================================================ receiver
_MAX_ABS = 1e12
_SNR_FLOOR = 1e-3          # estimates below -30 dB are reported as -30 dB

@dataclass
class RxFrame:
    """One detected frame.

    ``payload`` is ``header.payload_len`` equalised symbols (data carriers in order, symbol by
    symbol; zeros where ``erased``). ZF output is unbiased: payload = x + n with
    ``noise_var = N0/|H_k|^2``. MMSE output is shrunk: payload ~ b_k x + n with
    b_k = |H_k|^2/(|H_k|^2+N0) and ``noise_var`` = its MSE ``N0/(|H_k|^2+N0)``; dividing by b_k
    gives the ZF symbols. A codec trained on y = x + n should use ZF (or undo b_k) at low SNR.
    ``snr_db`` is the estimated data-subcarrier Es/N0 (mean over data carriers of |H_k|^2 / N0;
    preamble + header based; preamble + header power only when the header failed).
    ``payload_snr_db`` is measured on the payload symbols' pilots after equalisation and tracking
    (pilot power / pilot error power, decision-free): unlike ``snr_db`` it sees impairments of the
    payload itself (fast fading, phase noise, distortion of the data-bearing signal).
    """
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
    payload_snr_db: float | None = None  # pilot SNR of the payload symbols after tracking (None: no payload)
    sro: float = 0.0                 # sampling-rate offset estimate (fraction, e.g. 5e-5 = 50 ppm; 0: none seen)
    header_format: str | None = None # robust | dense: the header format that decoded (None: no header)

    @property
    def seq(self):
        return None if self.header is None else self.header.seq

    @property
    def image_id(self):
        return None if self.header is None else self.header.image_id

    @property
    def truncated(self) -> bool:
        return self.erased is not None and bool(np.any(self.erased))

    def inv_snr(self) -> np.ndarray:
        """Per payload symbol 1/SNR_i = N0/|H_k|^2 after equalisation, whatever the equaliser
        (MMSE's ``noise_var`` is its MSE N0/(|H|^2+N0) = u/(1+u) with u = N0/|H|^2); inf where
        the symbol was cut off. What a CSI-aware decoder weighs each symbol by."""
        nv = np.asarray(self.noise_var, np.float64)
        if self.equalizer == "mmse":
            inv = nv / np.maximum(1.0 - nv, 1e-12)
        else:
            inv = nv.copy()
        if self.erased is not None and np.size(self.erased) == inv.size:
            inv[np.asarray(self.erased, bool)] = np.inf
        return inv.astype(np.float32)


class OfdmReceiver:
    """Streaming receiver: ``process(iq)`` returns the frames completed so far; samples of a frame
    not yet complete are kept for the next call. ``drain()`` works on a partly filled batch now
    (``min_batch``; a frame still incomplete stays buffered); ``flush()`` decodes what is left
    (truncated) at the end of a stream."""

    def __init__(self, params: OfdmParams | None = None, equalizer: str | None = None, min_batch: int = 0,
                 header_list_size: int = HEADER_LIST_SIZE):
        """``min_batch``: collect at least this many new samples before working (0 = work on every
        call). Per-call numpy overhead dominates for small chunks (a GNU Radio work() call gives a
        few thousand samples): e.g. 65536 batches frames; ``drain()`` works on a partly filled
        batch (a latency bound on a slow or quiet stream); call ``flush()`` at end of stream.
        ``header_list_size``: candidates of the CRC-aided list Viterbi tried on a header whose best
        path fails its CRC (1 = plain Viterbi). A receiver setting: nothing on the air changes."""
        self.params = (params or OfdmParams()).validate()
        if int(min_batch) < 0:
            raise MedJSCCError(f"min_batch must be >= 0, got {min_batch}")
        if isinstance(header_list_size, bool) or int(header_list_size) != header_list_size or not 1 <= header_list_size <= 64:
            raise MedJSCCError(f"header_list_size must be an integer in [1, 64], got {header_list_size!r}")
        self.header_list_size = int(header_list_size)
        self.min_batch = int(min_batch)
        p = self.params
        self.seq = sequences(p)
        self.set_equalizer(equalizer or p.equalizer)
        occ = p.occupied_carriers
        self._occ_bins = p.bins(occ)
        self._data_pos = np.nonzero(np.isin(occ, p.data_carrier_idx))[0]
        self._pilot_pos = np.nonzero(np.isin(occ, p.pilot_carrier_idx))[0]
        # DFT-window denoising: LS fit of `taps` time taps to the occupied-carrier estimate
        A = np.exp(-2j * np.pi * np.outer(self._occ_bins, np.arange(p.taps)) / p.fft_len)
        self._taps_pinv = np.linalg.pinv(A).astype(np.complex64)
        self._proj = (A @ np.linalg.pinv(A)).astype(np.complex64)
        self._long_freq_inv = (1.0 / self.seq.long_freq).astype(np.complex64)
        self._short_tmpl = np.conj(self.seq.short_time[::-1]).astype(np.complex64)
        self._short_energy = float(np.sum(np.abs(self.seq.short_time) ** 2))
        self._short_fft = None
        self._long_tmpl = np.conj(np.tile(self.seq.long_time, p.n_long))
        self._long_tmpl64 = self._long_tmpl.astype(np.complex64)
        self._short_conj = np.conj(self.seq.short_time).astype(np.complex64)
        self._long_energy = float(np.sum(np.abs(self._long_tmpl) ** 2))
        self._data_bins = p.bins(p.data_carrier_idx)
        self._pilot_bins = p.bins(p.pilot_carrier_idx)
        # per header format: slot -> mother-code bit, scrambler, and its +-1 sign
        self._slot_map = {f: _slot_map(p, f) for f in p.header_formats}
        self._hdr_scrambler = {f: header_scrambler(p, f) for f in p.header_formats}
        self._hdr_sign = {f: (1.0 - 2.0 * s).astype(np.float32) for f, s in self._hdr_scrambler.items()}
        self._hdr_len = {f: p.header_symbols(f) for f in p.header_formats}
        self._even_pos = np.nonzero(occ % 2 == 0)[0]
        self._odd_pos = np.nonzero(occ % 2 == 1)[0]
        self._pilot_k = p.pilot_carrier_idx.astype(float)
        self._data_k = p.data_carrier_idx.astype(float)
        # timing reference of the header-aided channel estimate (mean of n_long long-symbol rows and
        # n_header header rows) in OFDM-symbol units from the first header symbol: SRO drift is 0 there
        long_pos = (np.arange(p.n_long) * p.fft_len - p.n_long * p.fft_len - p.cp_len) / p.symbol_len
        self._centroids = {nh: float((long_pos.sum() + np.arange(nh).sum()) / (p.n_long + nh))
                           for nh in self._hdr_len.values()}
        self._train_centroid = self._centroids[p.n_header_symbols]
        self._init_cfo_search()
        self.reset()

    def _init_cfo_search(self):
        """Large-CFO detection (|cfo| up to ``max_cfo_subcarriers``). The per-period correlation
        collapses when the CFO turns the phase by ~2 pi within one period (cfo ~2), so a gate finds
        preamble-like stretches with a CFO-invariant statistic (Schmidl-Cox: |sum r[n+P] r*[n]|,
        which also gives the CFO modulo 2 subcarriers, the short symbol having period N/2), and only
        there the correlation is repeated for the CFO hypotheses frac + 2j (j = -J..J)."""
        p = self.params
        P, R, N = p.short_period, p.n_short_reps, p.fft_len
        M = p.max_cfo_subcarriers
        self._cfo_j = np.arange(-((M + 1) // 2), (M + 1) // 2 + 1) if M else np.zeros(0, int)
        # gate window: W samples of lag-P products, entirely inside the preamble for P+1 start
        # positions (R >= 3), so it can be evaluated every D samples without missing the plateau
        self._gate_W = max(R - 2, 1) * P
        self._gate_D = 8 if R >= 3 and P % 8 == 0 else 1
        # noise: P(rho > t) ~ exp(-W t^2) per position (~6e-6 at W=192); a hit only costs time
        # (rho ~ SNR/(1+SNR) on a preamble: 0.45 at 0 dB, 0.29 at -3 dB: kept below that)
        self._gate_thr = min(0.5, math.sqrt(12.0 / self._gate_W))
        # a gate peak at n puts the preamble start in [n - P, n] (+- a few D of noise): examine
        # the start positions n - 2P .. n + P
        self._bank_back = 2 * P
        span = self._bank_span = 3 * P + 1
        self._bank_len = span + R * P - 1                      # samples of one bank segment
        F = 1 << int(math.ceil(math.log2(self._bank_len + P)))
        k = np.arange(P)
        tmpl = self.seq.short_time[None, :] * np.exp(2j * np.pi * 2 * self._cfo_j[:, None] * k / N)
        self._bank_fft = np.conj(np.fft.fft(tmpl, F, axis=1)).astype(np.complex64) if M else None
        self._bank_F = F
        # long-symbol correlation for the CFO hypotheses cfo_c + 2a, a = -M..M (see _sync)
        self._amb = 2.0 * np.arange(-M, M + 1) if M else np.zeros(1)
        T = p.n_long * N
        self._long_span = 2 * P + 17
        FL = 1 << int(math.ceil(math.log2(self._long_span + T - 1)))
        kl = np.arange(T)
        lt = np.tile(self.seq.long_time, p.n_long)[None, :] * np.exp(1j * np.pi * self._amb[:, None] * kl / N * 2)
        self._long_bank_fft = np.conj(np.fft.fft(lt, FL, axis=1)).astype(np.complex64)
        st = self.seq.short_time[None, :] * np.exp(2j * np.pi * self._amb[:, None] * np.arange(P) / N)
        self._short_region = self._long_span + 4 + R * P        # short-preamble samples checked per candidate
        FS = 1 << int(math.ceil(math.log2(self._short_region)))
        self._short_bank_fft = np.conj(np.fft.fft(st, FS, axis=1)).astype(np.complex64)
        self._n_amb = min(M + 2, self._amb.size)               # hypotheses with |cfo| <= M + 1

    # ------------------------------------------------------------------ public controls
    def set_equalizer(self, name: str) -> None:
        if name not in ("zf", "mmse"):
            raise MedJSCCError(f"equalizer must be 'zf' or 'mmse', got {name!r}")
        self.equalizer = name

    def set_pilot_tracking(self, amplitude: bool | None = None, smooth: int | None = None) -> None:
        """Change ``pilot_amplitude`` / ``pilot_smooth`` at run time (next decoded frame on)."""
        import dataclasses

        changes = {}
        if amplitude is not None:
            changes["pilot_amplitude"] = bool(amplitude)
        if smooth is not None:
            if isinstance(smooth, bool) or int(smooth) != smooth:
                raise MedJSCCError(f"pilot_smooth must be an integer >= 1, got {smooth!r}")
            changes["pilot_smooth"] = int(smooth)
        if changes:
            self.params = dataclasses.replace(self.params, **changes).validate()

    def reset(self) -> None:
        self._tail = np.zeros(0, np.complex64)
        self._base = 0           # absolute index of _tail[0]
        self._search_from = 0    # relative to _tail[0]
        self._wait_until = 0     # absolute sample count needed before the pending frame can finish
        self._unprocessed = 0    # samples appended since the last detection run
        self.samples_seen = 0
        self._last_format = self.params.header_formats[0]   # header format tried first

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
        self._unprocessed += iq.size
        if self._base + buf.size < self._wait_until or self._unprocessed < self.min_batch:
            # a detected frame is still incomplete: just collect samples (no recomputation)
            self._tail = buf if buf is not iq else buf.copy()
            return []
        self._unprocessed = 0
        return self._run(buf, flush=False)

    @property
    def pending_samples(self) -> int:
        """Samples received since the last detection run (what a ``min_batch`` batch holds)."""
        return self._unprocessed

    def drain(self) -> list[RxFrame]:
        """Work on the batch now, however few samples it holds (a latency bound on ``min_batch``).

        Unlike ``flush()`` this is no end of stream: a frame still incomplete stays buffered and
        is decoded whole once its samples have arrived."""
        if not self._unprocessed or self._base + self._tail.size < self._wait_until:
            # nothing new, or a detected frame still lacks samples: a run could not finish it
            return []
        self._unprocessed = 0
        return self._run(self._tail, flush=False)

    def flush(self) -> list[RxFrame]:
        """Decode frames left in the buffer (payload cut short -> erased), then reset the stream."""
        frames = self._run(self._tail, flush=True) if self._tail.size else []
        base = self._base + self._tail.size
        self.reset()
        self._base = base
        return frames

    # ------------------------------------------------------------------ detection statistic
    _OLS_BLOCK = 4096

    def _correlate_short(self, buf: np.ndarray) -> np.ndarray:
        """c[n] = sum_k buf[n+k] conj(s[k]) ('valid' part), by overlap-save FFT blocks (complex64)."""
        P = self._short_tmpl.size
        n_out = buf.size - P + 1
        if n_out <= 0:
            return np.zeros(0, np.complex64)
        B = self._OLS_BLOCK
        step = B - P + 1
        nb = -(-n_out // step)
        pad = np.zeros(nb * step + P - 1, np.complex64)
        pad[: buf.size] = buf
        blocks = np.lib.stride_tricks.sliding_window_view(pad, B)[::step][:nb]
        if self._short_fft is None:
            self._short_fft = sfft.fft(self._short_tmpl, B).astype(np.complex64)
        y = sfft.ifft(sfft.fft(blocks, axis=1) * self._short_fft, axis=1)
        return y[:, P - 1:].reshape(-1)[:n_out]

    def _metric(self, buf: np.ndarray, search_from: int = 0):
        """Detection statistic m[n] in [0, 1] for a short preamble starting at n -> (c, m, f):
        f is None (CFO 0 everywhere) or (positions, CFO hypotheses in subcarriers) where m[n]
        comes from a hypothesis: m is the larger of the CFO-0 statistic below and, near gate hits,
        that of the best hypothesis (``_cfo_bank``).

        Each of the R periods is a normalised cross-correlation |<r_seg, s>|^2 / (|s|^2 |r_seg|^2)
        (~1/P on noise or data, ~SNR/(1+SNR) on the preamble); m is their mean. Normalising each
        period by its own energy makes m independent of signal and noise levels (CFAR: the
        threshold is relative to the local noise floor) and avoids spurious peaks at burst edges
        where one loud period would dominate a window-energy normalisation.
        """
        p = self.params
        P, R = p.short_period, p.n_short_reps
        W = R * P
        c = self._correlate_short(buf)
        n = buf.size - W + 1
        if n <= 0:
            return c, np.zeros(0, np.float32), None
        seg_energy = _sliding_energy(buf, P)[: c.size]                       # aligned with c
        # floor: digital silence / rounding residue after loud bursts must not look like a preamble;
        # a median is not moved by spikes
        sub = seg_energy[::P]
        sub = sub[sub > 0]
        floor = np.float32(1e-6 * float(np.median(sub)) + 1e-30) if sub.size else np.float32(1e-30)
        q = (c.real * c.real + c.imag * c.imag) / (np.float32(self._short_energy * R)
                                                    * np.maximum(seg_energy, floor))
        m = q[:n].copy()
        for r in range(1, R):
            m += q[r * P: r * P + n]
        f = self._cfo_bank(buf, m, seg_energy, floor, search_from) if self._cfo_j.size else None
        return c, m, f

    def _cfo_gate(self, buf: np.ndarray, lo: int, seg_energy: np.ndarray, floor: float):
        """CFO-invariant gate -> (positions, cfo mod 2 in (-1, 1], rho) of one peak per cluster of
        hits at or after ``lo``: rho = |sum_W r[n+P] r*[n]| / sqrt(E_a E_b), evaluated every D
        (``seg_energy``: the P-sample window energies of ``_metric``, ``floor`` its floor)."""
        p = self.params
        P, N = p.short_period, p.fft_len
        W, D = self._gate_W, self._gate_D
        nb = (buf.size - P - W) // D + 1                    # positions n = jD with n + P + W <= size
        if nb < 1:
            return np.zeros(0, int), np.zeros(0), np.zeros(0)
        nu = nb + W // D - 1
        # per-D-block lag-P products (einsum: no full-rate temporaries), summed over W
        U = np.einsum("ij,ij->i", buf[P: P + nu * D].reshape(nu, D), buf[: nu * D].reshape(nu, D).conj())
        A = _window_sum(U, W // D)[:nb]
        # window energies from the P-sample ones: E_W(n) = sum_r E_P(n + rP); E_b(n) = E_W(n + P)
        eD = np.maximum(seg_energy[: (nb - 1) * D + W + 1: D], floor)   # E_P at n = jD, enough for + W
        ne = nb + P // D
        Ew = eD[:ne].copy()
        for r in range(1, W // P):
            Ew += eD[r * P // D: r * P // D + ne]
        a = np.abs(A)
        rho2 = (a / Ew[:nb]) * (a / Ew[P // D:])          # as two ratios: no float32 overflow on huge input
        j0 = max(lo, 0) // D
        hits = np.flatnonzero(rho2[j0:] > np.float32(self._gate_thr ** 2)) + j0
        if not hits.size:
            return hits, np.zeros(0), np.zeros(0)
        # one peak per cluster (a preamble gives a plateau of ~P/D hits)
        first = np.r_[0, np.flatnonzero(np.diff(hits) > (p.short_len // D)) + 1]
        rh = rho2[hits]
        cl = np.repeat(np.arange(first.size), np.diff(np.r_[first, hits.size]))
        top = np.flatnonzero(rh == np.maximum.reduceat(rh, first)[cl])
        peaks = hits[top[np.r_[True, np.diff(cl[top]) > 0]]]
        return peaks * D, np.angle(A[peaks]) * N / (2 * math.pi * P), np.sqrt(rho2[peaks])

    def _cfo_bank(self, buf, m, seg_energy, floor, search_from):
        """Near every gate hit whose CFO-0 statistic lost much (> 1.5 dB below the gate's rho),
        recompute m for the hypotheses cfo = frac + 2j and keep the best (in place in ``m``).
        -> None, or (positions, hypotheses) where a hypothesis beat the CFO-0 statistic."""
        p = self.params
        P, R, N = p.short_period, p.n_short_reps, p.fft_len
        pos, frac, rho = self._cfo_gate(buf, search_from - R * P, seg_energy, floor)
        if not pos.size:
            return None
        span = self._bank_span
        lo = np.clip(pos - self._bank_back, 0, None)
        inside = lo < m.size
        need = np.zeros(lo.size)
        if inside.any():
            a = lo[inside]
            b = np.minimum(a + span, m.size - 1)          # reduceat needs indices < size: m[-1] below
            need[inside] = np.maximum.reduceat(m, np.stack([a, np.maximum(b, a + 1)], axis=1).reshape(-1))[::2]
            need[inside] = np.where(a + span >= m.size, np.maximum(need[inside], m[-1]), need[inside])
        sel = np.flatnonzero((need < 0.7 * rho) & inside)
        if not sel.size:
            return None
        lo, frac = lo[sel], frac[sel]
        G, F, L = sel.size, self._bank_F, self._bank_len
        idx = lo[:, None] + np.arange(L)
        x = buf[np.minimum(idx, buf.size - 1)] * (idx < buf.size)
        x = x * np.exp((-2j * np.pi / N) * frac[:, None] * np.arange(L)).astype(np.complex64)
        X = sfft.fft(x, F, axis=1)
        c = sfft.ifft(X[:, None, :] * self._bank_fft[None], axis=2)[..., : L - P + 1]   # (G, J, L-P+1)
        e_idx = np.minimum(idx[:, : L - P + 1], seg_energy.size - 1)
        den = np.float32(self._short_energy * R) * np.maximum(seg_energy[e_idx], floor)
        q = (c.real * c.real + c.imag * c.imag) / den[:, None, :]
        mf = q[..., :span].copy()
        for r in range(1, R):
            mf += q[..., r * P: r * P + span]
        best = np.argmax(mf, axis=1)                                            # (G, span)
        mb = np.take_along_axis(mf, best[:, None, :], axis=1)[:, 0]
        fb = frac[:, None] + 2.0 * self._cfo_j[best]
        won_pos, won_f = [], []
        for g in range(G):
            a = int(lo[g])
            b = min(a + span, m.size)
            cur = m[a:b]
            win = np.flatnonzero(mb[g, : b - a] > cur)
            cur[win] = mb[g, win]
            won_pos.append(a + win)
            won_f.append(fb[g, win])
        pos = np.concatenate(won_pos)
        if not pos.size:
            return None
        order = np.argsort(pos, kind="stable")        # overlapping regions: the later write wins
        pos, fv = pos[order], np.concatenate(won_f)[order]
        last = np.r_[pos[1:] != pos[:-1], True]
        return pos[last], fv[last]

    # ------------------------------------------------------------------ main loop
    def _run(self, buf: np.ndarray, flush: bool) -> list[RxFrame]:
        """Find preambles sequentially (cheap), then synchronise, estimate and demodulate all
        frames of the buffer in batched numpy stages."""
        p = self.params
        P, R, S = p.short_period, p.n_short_reps, p.symbol_len
        L = buf.size
        c, m, fhyp = self._metric(buf, self._search_from)
        above = np.flatnonzero(m > p.detect_threshold)
        pos = self._search_from
        # samples a candidate needs before its header can be decoded: every format's header while
        # more samples may come; at the end of a stream the shortest (a cut frame with a dense
        # header is still read; windows past the end are clipped and fail the longer formats' CRC)
        n_hdr_need = min(self._hdr_len.values()) if flush else p.n_header_symbols
        hdr_need = p.preamble_len + n_hdr_need * S + 2 * P + 16
        cand_idx, cand_hat = [], []
        defer_from, need_len = None, 0
        while True:
            k = int(np.searchsorted(above, pos))
            if k >= above.size:
                break
            idx = int(above[k])
            hi = idx + R * P
            if hi >= m.size and not flush:
                defer_from, need_len = idx, hi + R * P
                break
            n_hat = idx + int(np.argmax(m[idx: min(hi, m.size - 1) + 1]))
            if n_hat + hdr_need > L:
                if not flush:
                    defer_from, need_len = idx, n_hat + hdr_need
                break
            cand_idx.append(idx)
            cand_hat.append(n_hat)
            pos = n_hat + p.short_len + P          # past this preamble's correlation plateau
        frames: list[RxFrame] = []
        if cand_hat:
            cand_hat = np.array(cand_hat)
            cand_f = np.zeros(cand_hat.size)
            if fhyp is not None:
                k = np.clip(np.searchsorted(fhyp[0], cand_hat), 0, fhyp[0].size - 1)
                hit = fhyp[0][k] == cand_hat
                cand_f[hit] = fhyp[1][k[hit]]
            frames, deferred, need = self._decode(buf, cand_f, np.array(cand_idx), cand_hat, defer_from, flush)
            if deferred is not None:
                defer_from = deferred
                need_len = max(need, need_len) if need <= L else need
        self._wait_until = 0
        if defer_from is not None and not flush:
            keep_from, search_from = defer_from, 0
            self._wait_until = self._base + need_len
        else:
            keep_from = max(0, min(pos, L - R * P + 1))
            search_from = pos - keep_from
        # safety net: never hold more than a couple of frames (nothing should need more)
        cap = 2 * p.max_frame_len + 4 * p.short_len
        if L - keep_from > cap:
            search_from = max(0, search_from - (L - cap - keep_from))
            keep_from = L - cap
        self._search_from = max(0, search_from)
        self._tail = buf[keep_from:].copy()
        self._base += keep_from
        return frames

    # ------------------------------------------------------------------ batched stages
    def _windows(self, buf, starts, cfo, ref, iq=None):
        """FFT (RX scaling) of fft_len-sample windows; starts (B, K), CFO corrected per frame
        (and DC offset / IQ imbalance, ``iq`` = (dc, beta) per frame, see ``_front_end``)."""
        p = self.params
        N = p.fft_len
        idx = starts[..., None] + np.arange(N)
        np.clip(idx, 0, buf.size - 1, out=idx)
        w = (-2 * np.pi / N) * cfo
        # exp(j w (start + n - ref)) = exp(j w (start - ref)) * exp(j w n): B*K + B*N exponentials
        x = buf[idx]
        if iq is not None:
            # the front end's imbalance acts on the received (CFO-rotated) samples: undo it first
            x = x - iq[0].astype(np.complex64)[:, None, None]
            x -= iq[1].astype(np.complex64)[:, None, None] * np.conj(x)
        x *= np.exp(1j * w[:, None] * (starts - ref[:, None])).astype(np.complex64)[..., None]
        x *= np.exp(1j * w[:, None] * np.arange(N)).astype(np.complex64)[:, None, :]
        return sfft.fft(x, axis=-1) * np.float32(p.rx_scale)

    def _sync(self, buf, cand_f, n_hat):
        """Coarse CFO, fine timing, fine CFO for candidates n_hat (B,) detected under CFO
        hypotheses cand_f (subcarriers). Returns dict of arrays."""
        p = self.params
        P, R, N = p.short_period, p.n_short_reps, p.fft_len
        # per-period correlations with the hypothesis removed: their phase steps give the residual
        # (|residual| < 1 subcarrier: one period turns it by pi * residual)
        k = np.arange(R * P)
        xs = buf[np.minimum(n_hat[:, None] + k, buf.size - 1)]
        nz = np.flatnonzero(cand_f)
        if nz.size:
            xs[nz] *= np.exp((-2j * np.pi / N) * cand_f[nz, None] * k).astype(np.complex64)
        seg = xs.reshape(-1, R, P) @ self._short_conj
        z = np.sum(seg[:, 1:] * np.conj(seg[:, :-1]), axis=1)
        cfo_c = cand_f + np.angle(z) * N / (2 * math.pi * P)
        expected = n_hat + R * P + p.long_cp
        lo = expected - P - 8
        T = self._long_tmpl.size
        span = self._long_span
        idx = lo[:, None] + np.arange(span + T - 1)
        np.clip(idx, 0, buf.size - 1, out=idx)
        rows = np.arange(n_hat.size)
        x = (buf[idx] * np.exp((-2j * np.pi / N) * cfo_c[:, None] * (idx - expected[:, None]))).astype(np.complex64)
        e = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(np.abs(x) ** 2, axis=1)], axis=1)
        energy = np.maximum(e[:, T:T + span] - e[:, :span], 1e-20)
        win = np.lib.stride_tricks.sliding_window_view(x, T, axis=1)           # (B, span, T)
        corr = win @ self._long_tmpl64
        score = (corr.real ** 2 + corr.imag ** 2) / (self._long_energy * energy)
        if p.max_cfo_subcarriers:
            # The short preamble leaves the CFO ambiguous modulo 2 subcarriers (period N/2), and
            # both training sequences are Zadoff-Chu: under a CFO wrong by 2a subcarriers each
            # still correlates well, at a shifted time (the ZC time/frequency ridge, <= 0.7 of the
            # true peak). Fast path: the long peak implies the detected start (+-2 samples) and
            # reaches 0.75 of the long preamble's CFO-invariant periodicity (signal share). The
            # ridge shifts of short and long sequences differ by >= 9 samples for 2a = +-2, +-4,
            # +-8 and the +-6 ridge has 0.34, so no wrong hypothesis passes both; anything else
            # gets the full hypothesis test (_resolve_integer_cfo), and so does every frame below
            # ~0 dB (periodicity < 0.5), where these estimates get too noisy to be trusted.
            b0 = np.argmax(score, axis=1)
            n0 = lo + b0 - p.long_cp - R * P
            y0 = x[rows[:, None], np.minimum(b0[:, None] + np.arange(T), x.shape[1] - 1)].reshape(-1, p.n_long, N)
            zz = np.abs(np.sum(y0[:, 1:] * np.conj(y0[:, :-1]), axis=(1, 2)))
            ee = 0.5 * np.sum(np.abs(y0[:, 1:]) ** 2 + np.abs(y0[:, :-1]) ** 2, axis=(1, 2))
            rho_l = zz / np.maximum(ee, 1e-30)
            fast = (np.abs(n0 - n_hat) <= 2) & (score[rows, b0] >= 0.75 * rho_l) & (rho_l >= 0.5)
            sub = np.flatnonzero(~fast)
            if sub.size:
                sc_s, cfo_s, x_s = self._resolve_integer_cfo(buf, x[sub], energy[sub], cfo_c[sub], lo[sub],
                                                             idx[sub], expected[sub])
                score[sub], cfo_c[sub], x[sub] = sc_s, cfo_s, x_s
        best = np.argmax(score, axis=1)
        ok = (score[rows, best] >= 0.6 * p.detect_threshold) & (best >= p.backoff)
        long_start = lo + best - p.backoff
        off = np.clip(best - p.backoff, 0, None)
        y = x[rows[:, None], off[:, None] + np.arange(p.n_long * N)].reshape(-1, p.n_long, N)
        z2 = np.sum(y[:, 1:] * np.conj(y[:, :-1]), axis=(1, 2))
        cfo = cfo_c + np.angle(z2) / (2 * math.pi)
        start = long_start - p.long_cp - R * P
        ok &= start + p.backoff >= 0
        return dict(ok=ok, start=start, long_start=long_start, cfo=cfo)

    def _resolve_integer_cfo(self, buf, x, energy, cfo_c, lo, idx, expected):
        """Full integer-CFO test for candidates whose fast check failed (see ``_sync``): each
        hypothesis cfo_c + 2a (|cfo| <= M + 1) is scored by its long-symbol peak plus the
        short-preamble statistic at the start that peak implies (+-2 samples of slack for
        multipath); only the true CFO makes both line up. -> (score (B, span), cfo_c, x)."""
        p = self.params
        P, R, N, M = p.short_period, p.n_short_reps, p.fft_len, p.max_cfo_subcarriers
        span = self._long_span
        rows = np.arange(cfo_c.size)
        a0 = np.clip(np.ceil((-M - 1 - cfo_c) / 2).astype(int) + M, 0, self._amb.size - self._n_amb)
        ai = a0[:, None] + np.arange(self._n_amb)                                # (B, A)
        hyp = cfo_c[:, None] + self._amb[ai]
        X = sfft.fft(x, self._long_bank_fft.shape[1], axis=1)
        corr = sfft.ifft(X[:, None, :] * self._long_bank_fft[ai], axis=2)[..., :span]       # (B, A, span)
        sc = (corr.real ** 2 + corr.imag ** 2) / (self._long_energy * energy)[:, None, :]
        b_a = np.argmax(sc, axis=2)                                              # (B, A)
        s_long = np.take_along_axis(sc, b_a[..., None], axis=2)[..., 0]
        # per-period correlations of the cfo_c-corrected short-preamble region with the templates
        # shifted by 2a (by FFT), read at the implied starts
        base0 = lo - p.long_cp - R * P - 2
        G = self._short_region
        ridx = np.clip(base0[:, None] + np.arange(G), 0, buf.size - 1)
        reg = (buf[ridx] * np.exp((-2j * np.pi / N) * cfo_c[:, None] * np.arange(G))).astype(np.complex64)
        cs_all = sfft.ifft(sfft.fft(reg, self._short_bank_fft.shape[1], axis=1)[:, None, :]
                           * self._short_bank_fft[ai], axis=2)                    # (B, A, F)
        e_reg = _sliding_energy(reg.reshape(-1), P)                              # rows joined: index per row
        q_pos = b_a[..., None, None] + np.arange(5)[:, None] + P * np.arange(R)   # (B, A, 5, R)
        qf = q_pos.reshape(rows.size, self._n_amb, -1)
        cs = np.take_along_axis(cs_all, qf, axis=2)
        en = e_reg[rows[:, None, None] * G + qf]
        ms = np.mean(((cs.real ** 2 + cs.imag ** 2) / (self._short_energy * np.maximum(en, 1e-30)))
                     .reshape(q_pos.shape), axis=-1)
        a_best = np.argmax(s_long + ms.max(axis=2), axis=1)
        x = x * np.exp((-2j * np.pi / N) * self._amb[ai[rows, a_best]][:, None]
                       * (idx - expected[:, None])).astype(np.complex64)
        return sc[rows, a_best], hyp[rows, a_best], x

    def _front_end(self, buf, start):
        """Receiver front-end DC offset and IQ imbalance per frame, blind, from the preamble and
        header samples (B frames starting at ``start`` + backoff) -> None or (dc, beta): the
        corrected signal is (y - dc) - beta conj(y - dc).

        DC: the sample mean (the signal has no DC carrier), kept only above 2.2 sigma of its own
        estimation noise (|y|^2 / n) and shrunk by it. IQ: y = mu s + nu conj(s) (+ CFO rotation,
        which |s|^2 does not see) gives E[y^2] / (2 E|y|^2) ~ nu / conj(mu) = beta for a proper
        (circular) signal; the preamble and header are not quite proper (|beta| up to 0.04 measured
        on clean multipath frames without CFO), so beta is used only above 0.06 (images above
        ~-24 dBc, e.g. 1 dB / 5 deg)."""
        p = self.params
        n = p.preamble_len + p.n_header_symbols * p.symbol_len
        idx = np.clip((start + p.backoff)[:, None] + np.arange(n), 0, buf.size - 1)
        y = buf[idx]
        yf = y.view(np.float32)
        pw = np.einsum("ij,ij->i", yf, yf).astype(np.float64) / n
        my = np.mean(y, axis=1, dtype=np.complex128)
        var = pw / n
        d2 = np.abs(my) ** 2
        dc = my * (d2 > 5 * var) * (1 - var / np.maximum(d2, 1e-300))
        # moments of z = y - dc from those of y (no second pass over the samples)
        m2 = np.einsum("ij,ij->i", y, y).astype(np.complex128) / n - 2 * dc * my + dc * dc
        pz = pw - 2 * np.real(np.conj(dc) * my) + np.abs(dc) ** 2
        beta = m2 / (2 * np.maximum(pz, 1e-300))
        beta = beta * (np.abs(beta) > 0.06)
        ok = np.isfinite(dc) & np.isfinite(beta)
        dc, beta = np.where(ok, dc, 0), np.where(ok, beta, 0)
        if not (np.any(dc) or np.any(beta)):
            return None
        return dc, beta

    def _training(self, buf, sy, iq=None):
        """LS channel rows from the long symbols (B, n_long, n_occ) + short-preamble noise energy."""
        p = self.params
        N, P, R = p.fft_len, p.short_period, p.n_short_reps
        cfo, ref = sy["cfo"], sy["long_start"]
        Y = self._windows(buf, ref[:, None] + N * np.arange(p.n_long), cfo, ref, iq)[..., self._occ_bins]
        rows = Y * self._long_freq_inv
        B = rows.shape[0]
        resid, dof = np.zeros(B), 0
        # short preamble: odd carriers are empty, even ones repeat in every fft_len block
        n_blocks = ((R - 1) * P) // N
        if n_blocks >= 1:
            Ys = self._windows(buf, (sy["start"] + P)[:, None] + N * np.arange(n_blocks), cfo, ref, iq)[..., self._occ_bins]
            resid += np.sum(np.abs(Ys[..., self._odd_pos]) ** 2, axis=(1, 2))
            dof += n_blocks * self._odd_pos.size
            if n_blocks >= 2:
                ev = Ys[..., self._even_pos]
                resid += np.sum(np.abs(ev - ev.mean(axis=1, keepdims=True)) ** 2, axis=(1, 2))
                dof += (n_blocks - 1) * self._even_pos.size
        return rows, resid, dof

    def _fit(self, rows, resid, dof):
        """DFT-window (tap-limited LS) channel fit over LS rows (B, r, n_occ); noise from residuals."""
        p = self.params
        mean = rows.mean(axis=1)
        H_fit = mean @ self._proj.T
        taps = mean @ self._taps_pinv.T
        resid = resid + np.sum(np.abs(rows - H_fit[:, None, :]) ** 2, axis=(1, 2))
        dof = dof + rows.shape[1] * p.n_occupied - p.taps
        n0 = resid / max(dof, 1)
        n0 = np.maximum(n0, 1e-12 * np.mean(np.abs(H_fit) ** 2, axis=1) + 1e-30)
        sig = np.mean(np.abs(H_fit[:, self._data_pos]) ** 2, axis=1) - n0 * p.taps / (rows.shape[1] * p.n_occupied)
        snr_db = 10 * np.log10(np.maximum(sig, _SNR_FLOOR * n0) / n0)
        return H_fit, taps, n0, snr_db

    def _track(self, Y, H_fit, mask, n0=None, centroid=None, n_rows=None):
        """Per-symbol complex pilot gains (B, n_sym), smoothed: residual-CFO slope + moving average
        over the valid symbols (mask). With ``n0`` (the payload pass) also the sampling-rate
        offset: -> (g, drift) where drift (B,) is the timing drift in samples per symbol, relative
        to the training centroid ``_train_centroid`` (see ``_sro_ramp``)."""
        p = self.params
        n = Y.shape[1]
        Hp = H_fit[:, None, self._pilot_pos] * self.seq.pilots(n, 0)[None]
        Yp = Y[..., self._pilot_bins]
        u = np.conj(Hp) * Yp
        hp2 = np.abs(Hp) ** 2
        g = np.sum(u, axis=2) / np.maximum(np.sum(hp2, axis=2), 1e-30)
        drift = None
        if n0 is not None:
            # SRO: the FFT window drifts by `drift` samples per symbol, turning carrier k by
            # 2 pi k drift (s - s_c) / N. Weighted LS fit of the pilot phases (common phase removed,
            # weights |H_p|^2 ~ inverse phase-noise variance), then positive-part shrinkage by its
            # variance N0 / (2 den), zero below 2 sigma: ~no cost without drift, nearly unbiased
            # once it is clear.
            centroid = self._train_centroid if centroid is None else centroid
            ds = (np.arange(n) - centroid)[None, :, None]
            kc = self._pilot_k - np.mean(self._pilot_k)
            phi = np.angle(u * np.conj(g)[..., None])
            wt = hp2 * mask[..., None]
            den = np.sum(wt * (kc * ds) ** 2, axis=(1, 2))
            slope = np.sum(wt * kc * ds * phi, axis=(1, 2)) / np.maximum(den, 1e-30)    # rad per carrier per symbol
            var = 0.5 * np.asarray(n0) / np.maximum(den, 1e-30)
            if n_rows:
                # H_fit's own error (n_rows training rows, DFT-window denoised) turns each pilot by a
                # constant phase, which the fit (anchored at the centroid, the payload after it)
                # reads as drift: counted, a short (dense) header no longer triggers false ramps
                ref_var = 0.5 * np.asarray(n0) * p.taps / (n_rows * p.n_occupied)          # |H|^2 x phase variance
                D = np.sum(mask * (np.arange(n) - centroid)[None, :], axis=1)               # (B,)
                var = var + ref_var * np.sum(kc ** 2 * hp2[:, 0, :], axis=1) * D ** 2 / np.maximum(den, 1e-30) ** 2
            # (below 2 sigma: 0, the usual case without SRO, and no ramp to apply)
            slope *= (slope ** 2 > 4 * var) * (1.0 - var / np.maximum(slope ** 2, 1e-30))
            drift = slope * p.fft_len / (2 * np.pi)
            ramp = self._sro_ramp(drift, n, self._pilot_k, centroid=centroid)
            if ramp is not None:
                Hp = Hp * ramp
                g = np.sum(np.conj(Hp) * Yp, axis=2) / np.maximum(np.sum(hp2, axis=2), 1e-30)
        g = g * mask
        W = min(p.pilot_smooth, n)
        if W > 1:
            pair = g[:, 1:] * np.conj(g[:, :-1])
            slope = np.angle(np.sum(pair, axis=1))
            ramp = np.exp(1j * slope[:, None] * np.arange(n))
            gd = g / ramp
            h = W // 2
            cs = np.concatenate([np.zeros((g.shape[0], 1)), np.cumsum(gd, axis=1)], axis=1)
            cm = np.concatenate([np.zeros((g.shape[0], 1)), np.cumsum(mask, axis=1)], axis=1)
            hi = np.minimum(np.arange(n) + h + 1, n)
            lo = np.maximum(np.arange(n) - h, 0)
            num = cs[:, hi] - cs[:, lo]
            den = np.maximum(cm[:, hi] - cm[:, lo], 1)
            g = num / den * ramp
        if not p.pilot_amplitude:
            g = np.exp(1j * np.angle(g))
        return g if n0 is None else (g, drift)

    def _sro_ramp(self, drift, n, k, first=0, centroid=None):
        """exp(j 2 pi k drift (s - s_c) / N) for symbols first <= s < n, signed carriers k ->
        (B, n - first, len(k)) complex64, or None when no frame drifts (the usual case)."""
        nz = np.flatnonzero(drift)
        if not nz.size:
            return None
        ds = (np.arange(first, n) - (self._train_centroid if centroid is None else centroid)).astype(np.float32)
        c = (2 * np.pi / self.params.fft_len) * drift[nz].astype(np.float32)
        out = np.ones((drift.size, n - first, k.size), np.complex64)
        out[nz] = np.exp(1j * (c[:, None, None] * ds[None, :, None] * k.astype(np.float32)[None, None, :]))
        return out

    def _decode_headers(self, Yh, gh, H_fit, n0, fmt="robust", list_size: int = 1, list_rows=None):
        """Soft demap (MRC-weighted LLRs: BPSK, or Gray QPSK I and Q) of the first
        ``header_symbols(fmt)`` symbols + batched Viterbi + CRC -> (info bits, headers|None).
        ``list_size`` > 1: CRC-aided list decoding of the failed rows where ``list_rows`` is True."""
        p = self.params
        nh = self._hdr_len[fmt]
        Yh, gh = Yh[:, :nh], gh[:, :nh]
        Hd = gh[:, :, None] * H_fit[:, None, self._data_pos]
        z = np.conj(Hd) * Yh[..., self._data_bins] / n0[:, None, None]
        if HEADER_FORMATS[fmt].bits_per_carrier == 1:
            llr = (4.0 * np.real(z)).reshape(Yh.shape[0], -1)
        else:   # unit-power QPSK: +-1/sqrt(2) per axis
            llr = (2.0 * math.sqrt(2.0) * np.stack([z.real, z.imag], axis=-1)).reshape(Yh.shape[0], -1)
        soft = np.zeros((Yh.shape[0], p.header_coded_bits))
        # descramble; repeated slots combine; outputs the format does not send stay 0
        np.add.at(soft, (slice(None), self._slot_map[fmt]), llr * self._hdr_sign[fmt])
        info_bits = fec.viterbi_decode_batch(soft, 8 * p.header_bytes)
        packed = np.packbits(info_bits, axis=1)
        hdrs = [FrameHeader.from_bytes(packed[i].tobytes(), p) for i in range(Yh.shape[0])]
        failed = [i for i, h in enumerate(hdrs) if h is None and (list_rows is None or list_rows[i])]
        if failed and list_size > 1:
            # CRC-aided list decoding: the next most likely codewords of the headers whose best
            # path failed the CRC (a CRC-32 keeps false accepts at L * 2^-32 per header)
            lists = fec.list_viterbi_decode_batch(soft[failed], 8 * p.header_bytes, list_size)
            packed_l = np.packbits(lists, axis=2)
            for j, i in enumerate(failed):
                for rank in range(1, lists.shape[0]):
                    h = FrameHeader.from_bytes(packed_l[rank, j].tobytes(), p)
                    if h is not None:
                        hdrs[i], info_bits[i] = h, lists[rank, j]
                        break
        return info_bits, hdrs

    def _header_rows(self, Yh, gh, info_bits, fmt="robust"):
        """LS channel rows from header symbols whose bits are known (re-encoded decoder output)."""
        p = self.params
        n_hdr = self._hdr_len[fmt]
        coded = fec.conv_encode(info_bits)[:, self._slot_map[fmt]] ^ self._hdr_scrambler[fmt]
        vals = slot_values(coded.reshape(-1), fmt).reshape(coded.shape[0], n_hdr, p.n_data_carriers)
        Xh = np.zeros((coded.shape[0], n_hdr, p.n_occupied), np.complex64)
        Xh[..., self._data_pos] = vals
        Xh[..., self._pilot_pos] = self.seq.pilots(n_hdr, 0)
        # rows = Y / X for unit-modulus X (QPSK included): Y conj(X)
        return Yh[:, :n_hdr][..., self._occ_bins] / gh[:, :n_hdr, None] * np.conj(Xh)

    def _decode(self, buf, cand_f, cand_idx, cand_hat, defer_from, flush):
        p = self.params
        N, S = p.fft_len, p.symbol_len
        n_hdr_max = p.n_header_symbols
        L = buf.size
        sy = self._sync(buf, cand_f, cand_hat)
        keep = np.flatnonzero(sy["ok"])
        if keep.size == 0:
            return [], None, 0
        sy = {k: v[keep] for k, v in sy.items()}
        cand_idx = cand_idx[keep]
        B = keep.size
        cfo, ref, start = sy["cfo"], sy["long_start"], sy["start"]
        iq = self._front_end(buf, start)
        rows, s_resid, s_dof = self._training(buf, sy, iq)
        H_fit, taps, n0, snr_db = self._fit(rows, s_resid, s_dof)
        first = ref + p.n_long * N + p.cp_len                       # first header FFT window
        Yh = self._windows(buf, first[:, None] + S * np.arange(n_hdr_max), cfo, ref, iq)
        headers = [None] * B
        info_bits = np.zeros((B, 8 * p.header_bytes), np.uint8)
        fmt_of = np.full(B, -1)                                     # index into p.header_formats
        gh_of = {fi: np.zeros((B, self._hdr_len[f]), np.complex128) for fi, f in enumerate(p.header_formats)}
        # every format the configuration allows is tried on the frames not yet decoded (the one
        # that decoded last first: a link keeps its format); the CRC tells which one was sent.
        # Decision-directed retries only for frames no format decoded, the last one list-decoded.
        order = sorted(range(len(p.header_formats)), key=lambda fi: p.header_formats[fi] != self._last_format)
        prev = {}
        for attempt in range(3):
            for fi in order:
                fmt = p.header_formats[fi]
                todo = np.flatnonzero(fmt_of < 0)
                if not todo.size:
                    break
                nh = self._hdr_len[fmt]
                if attempt == 0:
                    Hb, n0b = H_fit[todo], n0[todo]
                else:
                    # the Viterbi output is mostly right even when the CRC fails; re-encoded, it is
                    # nh symbols of extra training for a better channel/phase estimate
                    Hb, _, n0b, _ = self._fit(np.concatenate(
                        [rows[todo], self._header_rows(Yh[todo], gh_of[fi][todo], prev[fi][todo], fmt)], axis=1),
                        s_resid[todo], s_dof)
                gb = self._track(Yh[todo, :nh], Hb, np.ones((todo.size, nh)))
                # the list decoder last: on the best channel estimate, for what nothing else decoded
                bits, hdrs = self._decode_headers(Yh[todo], gb, Hb, n0b, fmt,
                                                  self.header_list_size if attempt == 2 else 1,
                                                  snr_db[todo] >= LIST_DECODE_MIN_SNR_DB.get(fmt, -math.inf))
                prev.setdefault(fi, np.zeros_like(info_bits))[todo] = bits
                gh_of[fi][todo] = gb
                for j, i in enumerate(todo):
                    if hdrs[j] is not None:
                        headers[i], info_bits[i], fmt_of[i] = hdrs[j], bits[j], fi
        if np.any(fmt_of >= 0):
            self._last_format = p.header_formats[int(fmt_of[fmt_of >= 0][-1])]
        good = fmt_of >= 0
        n_hdr = np.array([self._hdr_len[p.header_formats[f]] if f >= 0 else n_hdr_max for f in fmt_of])
        hdr_end = start + p.backoff + p.preamble_len + n_hdr * S
        # frame ends (payload) and cut points (next frame start)
        n_pay = np.array([p.n_payload_symbols(h.payload_len) if h is not None else 0 for h in headers])
        pay_end = hdr_end + n_pay * S
        next_start = np.append(start[1:] + p.backoff, np.iinfo(np.int64).max)
        if defer_from is not None:
            next_start[-1] = defer_from if flush else next_start[-1]
        deferred, need = None, 0
        n_emit = B
        if not flush:
            for i in range(B):
                if good[i] and (pay_end[i] > L or (defer_from is not None and pay_end[i] > defer_from
                                                    and next_start[i] > defer_from)):
                    # start may lie up to `backoff` samples before buf[0] (a stream that begins
                    # exactly at a preamble): keep from 0 then, a negative index would keep buf[-4:]
                    n_emit, deferred = i, max(0, int(min(cand_idx[i], start[i])))
                    need = int(pay_end[i])
                    break
        # header-aided re-estimation + payload demod for good frames, one batch per header format
        results = {}
        for fi, fmt in enumerate(p.header_formats):
            gidx = np.flatnonzero(good[:n_emit] & (fmt_of[:n_emit] == fi))
            if not gidx.size:
                continue
            results.update(self._demod_payloads(buf, gidx, fmt, Yh, gh_of[fi][gidx], info_bits, rows, s_resid, s_dof,
                                                first, cfo, ref, iq, n_pay, next_start, headers))
        frames = []
        for i in range(n_emit):
            common = dict(cfo=float(cfo[i]), start_sample=int(self._base + start[i] + p.backoff),
                          equalizer=self.equalizer)
            if i in results:
                pay, nv, er, nvc, s_db, nn0, tp, ps_db, sro = results[i]
                frames.append(RxFrame(headers[i], True, pay, snr_db=s_db, chan_taps=tp, noise_var=nv,
                                      n0=nn0, noise_var_carriers=nvc, erased=er, payload_snr_db=ps_db,
                                      sro=sro, header_format=p.header_formats[fmt_of[i]], **common))
            else:
                # no known header bits: average two unbiased signal-power estimates, the header
                # symbols' power minus N0 and the preamble fit |H_fit|^2 minus its noise share
                sig_hdr = float(np.mean(np.abs(Yh[i][:, self._data_bins]) ** 2)) - float(n0[i])
                sig_pre = 10 ** (float(snr_db[i]) / 10) * float(n0[i])
                sig = 0.5 * (sig_hdr + sig_pre)
                s_db = 10 * math.log10(max(sig, _SNR_FLOOR * float(n0[i])) / float(n0[i]))
                frames.append(RxFrame(None, False, np.zeros(0, np.complex64), snr_db=s_db,
                                      chan_taps=taps[i].astype(np.complex64),
                                      noise_var=np.zeros(0, np.float32), n0=float(n0[i]), **common))
        return frames, deferred, need

    def _demod_payloads(self, buf, gidx, fmt, Yh, gh, info_bits, rows, s_resid, s_dof, first, cfo, ref, iq,
                        n_pay, next_start, headers):
        """Header-aided channel re-estimate, pilot/SRO tracking and equalisation of the frames
        ``gidx`` (all with a ``fmt`` header; ``gh`` their header pilot gains) -> {frame: result}."""
        p = self.params
        N, S = p.fft_len, p.symbol_len
        n_dat = p.n_data_carriers
        L = buf.size
        n_hdr = self._hdr_len[fmt]
        centroid = self._centroids[n_hdr]
        results = {}
        G = gidx.size
        hrows = self._header_rows(Yh[gidx], gh, info_bits[gidx], fmt)
        H2, taps2, n02, snr2 = self._fit(np.concatenate([rows[gidx], hrows], axis=1), s_resid[gidx], s_dof)
        max_pay = int(n_pay[gidx].max())
        K = n_hdr + max_pay
        starts = first[gidx][:, None] + S * np.arange(K)
        cut = np.minimum(next_start[gidx], L)
        valid = (np.arange(K)[None, :] < (n_hdr + n_pay[gidx])[:, None]) & (starts + N <= cut[:, None])
        valid[:, :n_hdr] = True
        Y = self._windows(buf, starts, cfo[gidx], ref[gidx], None if iq is None else (iq[0][gidx], iq[1][gidx]))
        g, drift = self._track(Y, H2, valid.astype(float), n0=n02, centroid=centroid, n_rows=p.n_long + n_hdr)
        ramp = self._sro_ramp(drift, K, self._data_k, n_hdr, centroid=centroid)
        Hdat = H2[:, self._data_pos]
        Hd = g[:, n_hdr:, None] * Hdat[:, None, :]
        if ramp is not None:
            Hd *= ramp
        # decision-free payload quality: pilot error power after equalisation/tracking
        # (sees what the low-PAPR preamble cannot: clipping, fast fading, phase noise)
        vp = valid[:, n_hdr:]
        Hpm = g[:, n_hdr:, None] * H2[:, None, self._pilot_pos] * self.seq.pilots(K, 0)[None, n_hdr:]
        ramp_p = self._sro_ramp(drift, K, self._pilot_k, n_hdr, centroid=centroid)
        if ramp_p is not None:
            Hpm *= ramp_p
        perr = np.sum(np.abs(Y[:, n_hdr:][..., self._pilot_bins] - Hpm) ** 2, axis=2)
        psig = np.sum(np.abs(Hpm) ** 2, axis=2)
        n_v = np.sum(vp, axis=1)
        # the tracker fits 1 (phase) or 2 real parameters per ~pilot_smooth symbols of
        # 2 * n_pilot real observations: remove that share from the residual
        dof = (1 + bool(p.pilot_amplitude)) / (2.0 * p.n_pilot_carriers * np.clip(np.minimum(n_v, p.pilot_smooth), 1, None))
        perr = np.sum(perr * vp, axis=1) / (1 - dof)
        psig = np.sum(psig * vp, axis=1)
        pay_snr = np.where((n_v > 0) & (perr > 0), 10 * np.log10(np.maximum(psig, 1e-30) / np.maximum(perr, 1e-30)),
                           np.nan)
        Yd = Y[:, n_hdr:][..., self._data_bins]
        # per symbol and carrier: the tracked gain g (amplitude too, with pilot_amplitude) is part
        # of the channel the equaliser inverted, so it is part of the error it leaves
        hd2 = np.abs(Hd) ** 2                                             # (G, max_pay, n_dat)
        n0b = n02[:, None, None]
        if self.equalizer == "zf":
            eq = Yd / np.where(np.abs(Hd) > 1e-12, Hd, 1e-12)
            nv_sym = n0b / np.maximum(hd2, 1e-30)
        else:
            eq = np.conj(Hd) * Yd / (hd2 + n0b)
            nv_sym = n0b / (hd2 + n0b)
        vsym = valid[:, n_hdr:, None]
        nv_car = np.sum(nv_sym * vsym, axis=1) / np.maximum(np.sum(vsym, axis=1), 1)
        erf = np.repeat(~valid[:, n_hdr:], n_dat, axis=1)                 # (G, max_pay*n_dat)
        eqf = eq.reshape(G, -1).astype(np.complex64)
        eqf[erf] = 0
        nvf = nv_sym.reshape(G, -1).astype(np.float32)
        nvf[erf] = np.inf
        nvc32 = nv_car.astype(np.float32)
        taps2 = taps2.astype(np.complex64)
        for j, i in enumerate(gidx):
            plen = headers[i].payload_len
            results[i] = (eqf[j, :plen], nvf[j, :plen], erf[j, :plen], nvc32[j], float(snr2[j]),
                          float(n02[j]), taps2[j], float(pay_snr[j]) if np.isfinite(pay_snr[j]) else None,
                          float(drift[j]) / p.symbol_len)
        return results
