"""Channel presets over gr-channels with the project's SNR convention on the data subcarriers.

The AWGN (complex power ``noise_voltage**2`` per *time-domain sample*) is added after
``channel_model`` (multipath, CFO, clock offset) by ``awgn_adder``, which generates it with the
signal, so SNR changes act at once (channel_model's own noise source runs a buffer ahead). The phy core scales its IFFT so that unit-power values on all ``n_occupied`` carriers give unit
power per sample, and its FFT is the exact inverse (``Y = fft(y) * sqrt(n_occ) / N``). White
noise of per-sample variance ``s2`` thus lands on each subcarrier with variance
``s2 * n_occupied / fft_len``; to get Es/N0 = ``snr_db`` on the unit-power data subcarriers:

    noise_voltage**2 = 10**(-snr_db/10) * fft_len / n_occupied     (phy: time_noise_variance)

i.e. *not* simply ``10**(-snr_db/10)``: that would give ``10 log10(64/52)`` = 0.9 dB too much SNR.

Presets: ``awgn``; ``multipath`` (static 3-tap, unit energy, as ``phy.channels``); ``rayleigh`` (flat, slow: fDTs
1e-4) and ``rayleigh_fast`` (flat, fDTs 1e-2), both Clarke/Jakes from ``channels.fading_model``.
``cfo`` is in subcarrier spacings, ``timing_offset`` the sample-clock ratio error (ppm).
"""
from __future__ import annotations

import math

import numpy as np
from gnuradio import channels, gr

from ._msgtools import quiet_gr_logs

PRESETS = ("awgn", "multipath", "rayleigh", "rayleigh_fast")


def multipath_taps() -> np.ndarray:
    """The phy core's static 3-tap profile (unit energy) so both channel paths agree."""
    from ..phy.channels import multipath_taps as phy_taps

    return np.asarray(phy_taps(), np.complex128)
FADING_FDTS = {"rayleigh": 1e-4, "rayleigh_fast": 1e-2}


def noise_voltage_for_snr(snr_db: float, params=None, fft_len: int = 64, n_occupied: int = 52) -> float:
    """``channel_model`` noise voltage giving Es/N0 = ``snr_db`` on the data subcarriers.

    Uses ``params.time_noise_variance`` of the phy core when given; the same formula otherwise:
    per-sample variance ``N0 * fft_len / n_occupied``.
    """
    if params is not None and hasattr(params, "time_noise_variance"):
        return math.sqrt(float(params.time_noise_variance(snr_db)))
    return math.sqrt(10.0 ** (-float(snr_db) / 10.0) * fft_len / n_occupied)


BIG_BUFFER = 65536


class awgn_adder(gr.sync_block):
    """Adds complex white Gaussian noise of power ``voltage**2`` per sample (numpy, per chunk).

    Unlike a noise *source* feeding an adder, nothing is generated ahead of the signal, so a new
    voltage applies from the next chunk on (an SNR step is seen at once by the receiver).
    """

    def __init__(self, voltage: float, seed: int = 0):
        gr.sync_block.__init__(self, name="medjscc_awgn_adder", in_sig=[np.complex64],
                               out_sig=[np.complex64])
        self._rng = np.random.default_rng(int(seed))
        self.set_voltage(voltage)

    def set_voltage(self, voltage: float):
        self._sigma = np.float32(float(voltage) / math.sqrt(2.0))

    def voltage(self) -> float:
        return float(self._sigma) * math.sqrt(2.0)

    def work(self, input_items, output_items):
        x, y = input_items[0], output_items[0]
        n = len(x)
        if self._sigma > 0:
            w = self._rng.standard_normal(2 * n, dtype=np.float32).view(np.complex64)
            np.multiply(w, self._sigma, out=w)
            np.add(x, w, out=y)
        else:
            y[:] = x
        return n


class channel_preset(gr.hier_block2):
    """Complex stream in -> complex stream out: fading/multipath, CFO, timing offset and AWGN.

    Args:
        preset: ``awgn`` | ``multipath`` | ``rayleigh`` | ``rayleigh_fast``.
        snr_db: Es/N0 on the data subcarriers (project convention).
        cfo: carrier frequency offset in subcarrier spacings.
        timing_offset_ppm: sample clock offset in ppm (0 = none).
        fft_len: OFDM FFT size (to turn ``cfo`` into a normalised frequency).
        n_occupied: data + pilot subcarriers (noise calibration).
        seed: noise/fading seed.
        params: optional phy ``OfdmParams`` (overrides fft_len / n_occupied).
        big_buffers: 64k-sample output buffers (fewer, larger work calls downstream).
    """

    def __init__(self, preset: str = "awgn", snr_db: float = 20.0, cfo: float = 0.0,
                 timing_offset_ppm: float = 0.0, fft_len: int = 64, n_occupied: int = 52,
                 seed: int = 0, params=None, big_buffers: bool = True):
        gr.hier_block2.__init__(self, "medjscc_channel_preset",
                                gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        if preset not in PRESETS:
            raise ValueError(f"channel_preset preset must be one of {PRESETS}, got {preset!r}")
        self.preset = preset
        self._fft_len = int(getattr(params, "fft_len", fft_len))
        self._n_occupied = int(getattr(params, "n_occupied", n_occupied))
        self._params = params
        self._snr_db = float(snr_db)
        self._cfo = float(cfo)
        taps = multipath_taps() if preset == "multipath" else np.array([1.0 + 0j])
        # channel_model does the multipath, CFO and clock offset; the AWGN is added outside it
        # because its internal noise source runs ahead by a whole buffer (~32k samples = several
        # frames at the old level after an SNR change).
        self.model = channels.channel_model(
            noise_voltage=0.0, frequency_offset=self._cfo / self._fft_len,
            epsilon=1.0 + float(timing_offset_ppm) * 1e-6, taps=[complex(t) for t in taps],
            noise_seed=int(seed), block_tags=False)  # let frame/eos tags through
        self.noise = awgn_adder(noise_voltage_for_snr(snr_db, params, self._fft_len, self._n_occupied),
                                int(seed) + 12345)
        if preset in FADING_FDTS:
            self.fading = channels.fading_model(8, FADING_FDTS[preset], False, 4.0, int(seed) + 1)
            self.connect(self, self.fading, self.model, self.noise, self)
        else:
            self.fading = None
            self.connect(self, self.model, self.noise, self)
        if big_buffers:
            # big buffers -> big chunks for the Python receiver downstream (its cost is per call)
            with quiet_gr_logs():
                self.model.set_min_output_buffer(BIG_BUFFER)
                self.noise.set_min_output_buffer(BIG_BUFFER)

    # --- setters (GRC callbacks; also used by the closed-loop test to step the SNR) ---
    def set_snr_db(self, snr_db: float):
        self._snr_db = float(snr_db)
        self.noise.set_voltage(noise_voltage_for_snr(snr_db, self._params, self._fft_len, self._n_occupied))

    def snr_db(self) -> float:
        return self._snr_db

    def set_cfo(self, cfo: float):
        self._cfo = float(cfo)
        self.model.set_frequency_offset(self._cfo / self._fft_len)

    def set_timing_offset_ppm(self, ppm: float):
        self.model.set_timing_offset(1.0 + float(ppm) * 1e-6)

    def noise_voltage(self) -> float:
        """Total complex noise RMS per sample (channel_model's own getter reports it / sqrt(2))."""
        return noise_voltage_for_snr(self._snr_db, self._params, self._fft_len, self._n_occupied)
