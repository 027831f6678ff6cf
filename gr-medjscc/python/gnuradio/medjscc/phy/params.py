"""OFDM parameters and the fixed sequences (preamble, pilots) derived from them.

FFT scaling (the project's SNR convention holds on the data subcarriers):

* TX: ``x = ifft(X) * N / sqrt(N_occ)`` (N = fft_len, N_occ = occupied carriers). With unit-power
  values on every occupied carrier the time signal has unit average power per sample.
* RX: ``Y = fft(y) * sqrt(N_occ) / N`` -- the exact inverse, so a clean channel gives ``Y = X``.
* White time-domain noise of variance ``s2`` per sample then has variance ``s2 * N_occ / N`` per
  subcarrier. Noise with per-sample variance ``N0 * N / N_occ`` therefore gives Es/N0 = 1/N0 on
  the (unit-power) data subcarriers: :func:`time_noise_variance` does this conversion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from ..errors import MedJSCCError

# 802.11a pilot positions for the 64/52 layout
_WIFI_PILOTS = (-21, -7, 7, 21)


@dataclass(frozen=True)
class HeaderFormat:
    """How a header's coded bits ride the data carriers: ``outputs`` of the K=7 mother code
    (133, 171, 165 octal) are sent; (0, 1) is the rate-1/2 code of 802.11 (133, 171)."""
    name: str
    bits_per_carrier: int       # 1 = BPSK, 2 = Gray QPSK (I, Q)
    outputs: tuple


HEADER_FORMATS = {
    # works down to about -3 dB (more with header_repeat): every frame can be read where the
    # analog payload still says something
    "robust": HeaderFormat("robust", 1, (0, 1, 2)),
    # a third of the symbols; needs about 6 dB more SNR (QPSK: 3 dB, rate 1/2: ~3 dB)
    "dense": HeaderFormat("dense", 2, (0, 1)),
}
HEADER_MCS = ("robust", "dense", "auto")


@dataclass
class OfdmParams:
    fft_len: int = 64
    cp_len: int = 16
    n_data_carriers: int = 48
    n_pilot_carriers: int = 4
    symbols_per_frame: int = 32          # max payload OFDM symbols per frame
    equalizer: str = "mmse"              # zf | mmse
    pilot_carriers: tuple | None = None  # signed carrier indices; None -> 802.11a-like / spread
    n_short_reps: int = 8                # repetitions of the half-length sync symbol
    n_long: int = 4                      # copies of the long training symbol (4: SNR estimate RMS 1.2 dB at -5 dB, 2: 2.0)
    header_side_info_bytes: int = 32     # side-info chunk per header: a side info of up to 30 bytes (+ CRC) rides whole in every header
    side_info_parity: int = 1            # frames that may be lost without losing the side info
    interleave: bool = True              # spread each image's symbols over all frames and carriers
    tx_clip_ratio: float = 0.0           # TX clip-and-filter at this peak/RMS amplitude ratio (0 = off)
    header_repeat: int = 1               # coded header sent this many times (soft-combined; >1 below -3 dB)
    header_mcs: str = "auto"             # robust (BPSK r1/3) | dense (QPSK r1/2, ~3x fewer symbols) | auto (TX: dense from dense_header_snr_db up; RX: both)
    dense_header_snr_db: float = 25.0    # auto: dense from this SNR up (dense needs ~4 dB in AWGN, but its shorter training costs ~0.1 dB payload SNR: 0.3 dB ROI-PSNR and 3-deg phase noise 0.5 -> 0.6 dB at 20 dB; 12 saves 20 % air from 12 dB)
    chan_est_taps: int | None = None     # DFT-window length; None -> cp_len
    timing_backoff: int | None = None    # samples taken inside the CP; None -> cp_len // 4
    detect_threshold: float = 0.17       # normalised preamble correlation (0..1)
    pilot_smooth: int = 9                # symbols in the pilot-phase smoothing window (1 = none)
    pilot_amplitude: bool = True         # track pilot amplitude too (fading: Rician K=3 100 Hz, 20 dB: +12 dB ROI-PSNR; costs 0.1-0.6 dB when static)
    max_cfo_subcarriers: int = 4         # RX CFO search range +-subcarrier spacings (4: +-25 ppm at 2.45 GHz, 1 Msps, N=64); 0 = |cfo| < 1 only
    seed: int = 0x5EED                   # seed of the fixed pilot-polarity sequence

    # ---------------------------------------------------------------- validation
    def validate(self) -> "OfdmParams":
        def bad(msg):
            raise MedJSCCError(f"OfdmParams: {msg}")

        if not isinstance(self.fft_len, int) or self.fft_len < 16 or self.fft_len & (self.fft_len - 1):
            bad(f"fft_len must be a power of two >= 16, got {self.fft_len}")
        if not (0 < self.cp_len < self.fft_len):
            bad(f"cp_len must be in (0, fft_len), got {self.cp_len}")
        n_occ = self.n_data_carriers + self.n_pilot_carriers
        if self.n_data_carriers < 1 or self.n_pilot_carriers < 1:
            bad("need at least one data and one pilot carrier")
        if n_occ % 2 or n_occ > self.fft_len - 4:
            bad(f"n_data_carriers + n_pilot_carriers must be even and <= fft_len - 4 "
                f"(DC null + guard bands), got {n_occ}")
        if self.pilot_carriers is not None:
            occ = set(self.occupied_carriers.tolist())
            if len(self.pilot_carriers) != self.n_pilot_carriers or not set(self.pilot_carriers) <= occ:
                bad(f"pilot_carriers must be {self.n_pilot_carriers} distinct occupied carriers "
                    f"in [-{n_occ // 2}, {n_occ // 2}] without 0, got {self.pilot_carriers}")
        if not (1 <= self.symbols_per_frame <= 4095):
            bad(f"symbols_per_frame must be in [1, 4095], got {self.symbols_per_frame}")
        if self.symbols_per_frame * self.n_data_carriers > 65535:
            bad("symbols_per_frame * n_data_carriers must be <= 65535 (16-bit payload_len)")
        if self.equalizer not in ("zf", "mmse"):
            bad(f"equalizer must be zf or mmse, got {self.equalizer!r}")
        if not (2 <= self.n_short_reps <= 64):
            bad(f"n_short_reps must be in [2, 64], got {self.n_short_reps}")
        if not (2 <= self.n_long <= 16):
            bad(f"n_long must be in [2, 16], got {self.n_long}")
        if not (0 <= self.header_side_info_bytes <= 255):
            bad(f"header_side_info_bytes must be in [0, 255], got {self.header_side_info_bytes}")
        if self.tx_clip_ratio and not (1.0 <= self.tx_clip_ratio <= 8.0):
            bad(f"tx_clip_ratio must be 0 (off) or in [1, 8] (peak/RMS amplitude), got {self.tx_clip_ratio}")
        if not (0 <= self.side_info_parity <= 16):
            bad(f"side_info_parity must be in [0, 16], got {self.side_info_parity}")
        if self.header_mcs not in HEADER_MCS:
            bad(f"header_mcs must be one of {', '.join(HEADER_MCS)}, got {self.header_mcs!r}")
        if not (isinstance(self.dense_header_snr_db, (int, float)) and math.isfinite(self.dense_header_snr_db)
                and -10.0 <= self.dense_header_snr_db <= 40.0):
            bad(f"dense_header_snr_db must be a number in [-10, 40] dB, got {self.dense_header_snr_db!r}")
        if not (1 <= self.header_repeat <= 8):
            bad(f"header_repeat must be in [1, 8], got {self.header_repeat}")
        if not (1 <= self.taps <= self.cp_len):
            bad(f"chan_est_taps must be in [1, cp_len], got {self.chan_est_taps}")
        if not (0 <= self.backoff < self.cp_len):
            bad(f"timing_backoff must be in [0, cp_len), got {self.timing_backoff}")
        if not (0.02 < self.detect_threshold < 1):
            bad(f"detect_threshold must be in (0.02, 1), got {self.detect_threshold}")
        if self.pilot_smooth < 1:
            bad(f"pilot_smooth must be >= 1, got {self.pilot_smooth}")
        if (not isinstance(self.max_cfo_subcarriers, (int, np.integer)) or isinstance(self.max_cfo_subcarriers, bool)
                or not (0 <= self.max_cfo_subcarriers <= self.fft_len // 4)):
            bad(f"max_cfo_subcarriers must be an integer in [0, fft_len/4 = {self.fft_len // 4}], "
                f"got {self.max_cfo_subcarriers!r}")
        return self

    @classmethod
    def from_config(cls, ofdm_cfg, **overrides) -> "OfdmParams":
        """Build from ``config.OfdmConfig`` (same field names); unknown fields are ignored."""
        names = {f.name for f in fields(cls)}
        kw = {f.name: getattr(ofdm_cfg, f.name) for f in fields(ofdm_cfg) if f.name in names}
        kw.update(overrides)
        return cls(**kw).validate()

    # ---------------------------------------------------------------- derived layout
    @property
    def n_occupied(self) -> int:
        return self.n_data_carriers + self.n_pilot_carriers

    @property
    def taps(self) -> int:
        return self.cp_len if self.chan_est_taps is None else int(self.chan_est_taps)

    @property
    def backoff(self) -> int:
        return self.cp_len // 4 if self.timing_backoff is None else int(self.timing_backoff)

    @property
    def occupied_carriers(self) -> np.ndarray:
        h = self.n_occupied // 2
        return np.concatenate([np.arange(-h, 0), np.arange(1, h + 1)])

    @property
    def pilot_carrier_idx(self) -> np.ndarray:
        if self.pilot_carriers is not None:
            return np.array(sorted(self.pilot_carriers))
        occ = self.occupied_carriers
        if self.n_occupied == 52 and self.n_pilot_carriers == 4:
            return np.array(_WIFI_PILOTS)
        pos = np.round((np.arange(self.n_pilot_carriers) + 0.5) * self.n_occupied / self.n_pilot_carriers - 0.5)
        return occ[pos.astype(int)]

    @property
    def data_carrier_idx(self) -> np.ndarray:
        occ = self.occupied_carriers
        return occ[~np.isin(occ, self.pilot_carrier_idx)]

    def bins(self, carriers) -> np.ndarray:
        """Signed carrier indices -> FFT bin indices."""
        return np.asarray(carriers) % self.fft_len

    @property
    def symbol_len(self) -> int:
        return self.fft_len + self.cp_len

    @property
    def short_period(self) -> int:
        return self.fft_len // 2

    @property
    def short_len(self) -> int:
        return self.n_short_reps * self.short_period

    @property
    def long_cp(self) -> int:
        return 2 * self.cp_len

    @property
    def long_len(self) -> int:
        return self.long_cp + self.n_long * self.fft_len

    @property
    def preamble_len(self) -> int:
        return self.short_len + self.long_len

    @property
    def max_payload_len(self) -> int:
        return self.symbols_per_frame * self.n_data_carriers

    @property
    def header_bytes(self) -> int:
        # fixed fields (header.FIELD_BYTES = 13), side-info chunk (padded), CRC32
        return 13 + self.header_side_info_bytes + 4

    @property
    def header_coded_bits(self) -> int:
        """Coded bits of the mother code (K=7, rate 1/3): the Viterbi decoder's input length."""
        from .fec import coded_length

        return coded_length(8 * self.header_bytes)

    def header_sent_bits(self, fmt: str = "robust") -> int:
        """Coded bits a header of format ``fmt`` sends once (rate 1/2 drops the third output)."""
        return self.header_coded_bits * len(HEADER_FORMATS[fmt].outputs) // 3

    def header_symbols(self, fmt: str = "robust") -> int:
        """OFDM symbols of a header of format ``fmt`` (with ``header_repeat``)."""
        f = HEADER_FORMATS[fmt]
        return -(-self.header_sent_bits(fmt) * self.header_repeat // (self.n_data_carriers * f.bits_per_carrier))

    @property
    def header_formats(self) -> tuple:
        """Header formats a receiver tries (the CRC tells which one was sent)."""
        return ("robust", "dense") if self.header_mcs == "auto" else (self.header_mcs,)

    def tx_header_format(self, snr_db: float | None = None) -> str:
        """The header format a transmitter sends at ``snr_db`` (its design or fed-back SNR; None:
        unknown, the robust one under ``auto``)."""
        if self.header_mcs != "auto":
            return self.header_mcs
        ok = snr_db is not None and math.isfinite(float(snr_db)) and float(snr_db) >= self.dense_header_snr_db
        return "dense" if ok else "robust"

    @property
    def n_header_symbols(self) -> int:
        """Header OFDM symbols of this configuration's longest header format (what a receiver
        must see before it can decode every format)."""
        return max(self.header_symbols(f) for f in self.header_formats)

    def n_payload_symbols(self, payload_len: int) -> int:
        return -(-int(payload_len) // self.n_data_carriers)

    def frame_len(self, payload_len: int, header_format: str | None = None) -> int:
        """Samples of one frame carrying ``payload_len`` complex payload symbols, with a header of
        ``header_format`` (None: the longest this configuration sends)."""
        nh = self.n_header_symbols if header_format is None else self.header_symbols(header_format)
        return self.preamble_len + (nh + self.n_payload_symbols(payload_len)) * self.symbol_len

    @property
    def max_frame_len(self) -> int:
        return self.frame_len(self.max_payload_len)

    # ---------------------------------------------------------------- scaling
    @property
    def tx_scale(self) -> float:
        return self.fft_len / math.sqrt(self.n_occupied)

    @property
    def rx_scale(self) -> float:
        return math.sqrt(self.n_occupied) / self.fft_len

    def time_noise_variance(self, snr_db: float) -> float:
        """Per-sample complex noise variance giving Es/N0 = ``snr_db`` on the data subcarriers."""
        return 10.0 ** (-float(snr_db) / 10.0) * self.fft_len / self.n_occupied


def _zc(length: int, root: int) -> np.ndarray:
    n = np.arange(length)
    return np.exp(-1j * math.pi * root * n * (n + (length % 2)) / length)


@dataclass
class Sequences:
    """Known sequences of a parameter set (frequency values on signed carriers + time templates)."""
    params: OfdmParams
    short_freq: np.ndarray = field(init=False)   # on occupied carriers (zeros on odd ones)
    long_freq: np.ndarray = field(init=False)    # on occupied carriers
    short_time: np.ndarray = field(init=False)   # one period (fft_len // 2 samples)
    long_time: np.ndarray = field(init=False)    # one symbol (fft_len samples)
    pilot_base: np.ndarray = field(init=False)
    pilot_polarity: np.ndarray = field(init=False)

    def __post_init__(self):
        p = self.params
        occ = p.occupied_carriers
        n_occ = p.n_occupied
        # long symbol: constant-modulus Zadoff-Chu values on all occupied carriers
        self.long_freq = _zc(n_occ + 1, 25 if n_occ + 1 > 25 else 1)[:n_occ].astype(np.complex128)
        # short symbol: only even carriers -> period fft_len/2; boosted to keep unit power
        even = (occ % 2) == 0
        zc = _zc(int(even.sum()) + 3, 7)[: int(even.sum())]
        self.short_freq = np.zeros(n_occ, complex)
        self.short_freq[even] = zc * math.sqrt(n_occ / even.sum())
        self.short_time = self.to_time(self.short_freq)[: p.short_period]
        self.long_time = self.to_time(self.long_freq)
        n_pil = p.n_pilot_carriers
        self.pilot_base = np.where(np.arange(n_pil) == n_pil - 1, -1.0, 1.0) if n_pil > 1 else np.ones(1)
        self.pilot_polarity = np.random.default_rng(p.seed).choice([-1.0, 1.0], 127)

    def to_time(self, occ_values: np.ndarray) -> np.ndarray:
        p = self.params
        X = np.zeros(p.fft_len, complex)
        X[p.bins(p.occupied_carriers)] = occ_values
        return np.fft.ifft(X) * p.tx_scale

    def pilots(self, n_symbols: int, first: int = 0) -> np.ndarray:
        """(n_symbols, n_pilot) pilot values for OFDM symbols first..first+n-1 after the preamble."""
        idx = (first + np.arange(n_symbols)) % self.pilot_polarity.size
        return self.pilot_polarity[idx, None] * self.pilot_base[None, :]


_SEQ_CACHE: dict = {}


def sequences(params: OfdmParams) -> Sequences:
    key = tuple(getattr(params, f.name) for f in fields(params))
    s = _SEQ_CACHE.get(key)
    if s is None:
        s = _SEQ_CACHE[key] = Sequences(params)
    return s
