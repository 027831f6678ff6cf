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

Every radio profile of ``hw_configs/radio_profiles.yaml`` (``radio_profiles.py``; e.g.
``b200_pair_2g4``, ``cfo_1p5``, ``clean``) is a preset too. Its chain, gr-channels blocks where
they exist:

    x amplitude -> DAC (clip I and Q at +-1, counts) -> PA (distortion_3_gen) -> x 1/amplitude
    -> iqbal_gen (TX) -> phase_noise_gen -> fading_model / selective_fading_model
    -> channel_model (static taps, CFO, clock offset) -> + DC offset -> awgn_adder

The DAC clips before the PA because that is where a USRP saturates: on the digital I/Q samples,
the PA then compresses the analog signal. Scaling back by 1/amplitude keeps the SNR convention
relative to the *nominal* TX RMS, so clipping/compression losses show up as distortion, not as
a changed noise level. ``cfo`` / ``timing_offset_ppm`` add to the profile's own values.
"""
from __future__ import annotations

import math

import numpy as np
from gnuradio import channels, gr

from ..errors import InputError
from ._msgtools import quiet_gr_logs
from .radio_profiles import RadioProfile, get_radio_profile, load_radio_profiles

LEGACY_PRESETS = ("awgn", "multipath", "rayleigh", "rayleigh_fast")


def preset_names() -> tuple[str, ...]:
    """The built-in presets followed by every radio profile name (raises InputError on a bad YAML)."""
    return LEGACY_PRESETS + tuple(n for n in load_radio_profiles() if n not in LEGACY_PRESETS)


def _names_at_import() -> tuple[str, ...]:
    # PRESETS is what callers such as loopback.build_loopback validate against; a broken profile
    # file must not break importing the block, the constructor reports it instead.
    try:
        return preset_names()
    except InputError:
        return LEGACY_PRESETS


PRESETS = _names_at_import()


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


class burst_dropper(gr.sync_block):
    """Loses whole bursts: each burst that ``ofdm_analog_tx`` marks with a ``frame`` tag (its
    ``samples`` count) is replaced by zeros with probability ``p`` (seeded), as a radio link loses
    a frame (a deep fade at the preamble, an overflow, interference). ``frames_seen`` and
    ``frames_dropped`` count what it did."""

    def __init__(self, p: float, seed: int = 0):
        gr.sync_block.__init__(self, name="medjscc_burst_dropper", in_sig=[np.complex64],
                               out_sig=[np.complex64])
        self.p = float(p)
        self._rng = np.random.default_rng([int(seed), 0xD809])
        self._drop_until = -1       # absolute index: zeros up to (excluding) this sample
        self.frames_seen = 0
        self.frames_dropped = 0

    def work(self, input_items, output_items):
        import pmt

        x, y = input_items[0], output_items[0]
        n = len(x)
        start = self.nitems_read(0)
        y[:] = x
        if self._drop_until > start:     # a burst dropped in an earlier call continues here
            y[: min(n, self._drop_until - start)] = 0
        for tag in self.get_tags_in_window(0, 0, n, pmt.intern("frame")):
            self.frames_seen += 1
            if self._rng.random() < self.p:
                self.frames_dropped += 1
                length = pmt.dict_ref(tag.value, pmt.intern("samples"), pmt.from_long(0))
                self._drop_until = max(self._drop_until, int(tag.offset) + int(pmt.to_long(length)))
                y[int(tag.offset) - start: min(n, self._drop_until - start)] = 0
        return n


class dac_clip(gr.sync_block):
    """DAC model: clips I and Q separately at +-``full_scale`` (as UHD saturates) and measures.

    Counts over the non-zero samples only (the guard zeros between bursts are not signal):
    ``clip_fraction`` = I/Q values beyond full scale / all I/Q values, ``papr_db`` = peak power /
    mean power of the input. ``clip=False`` only measures (ideal linear TX).
    """

    def __init__(self, full_scale: float = 1.0, clip: bool = True):
        gr.sync_block.__init__(self, name="medjscc_dac_clip", in_sig=[np.complex64],
                               out_sig=[np.complex64])
        self.full_scale = float(full_scale)
        self.clip = bool(clip)
        self.reset_stats()

    def reset_stats(self):
        self.n_samples = 0      # non-zero samples seen
        self.n_clipped = 0      # I or Q values beyond full scale
        self.energy = 0.0
        self.peak = 0.0

    def work(self, input_items, output_items):
        x, y = input_items[0], output_items[0]
        n = len(x)
        p = x.real * x.real + x.imag * x.imag
        nz = int(np.count_nonzero(p))
        if nz:
            self.n_samples += nz
            self.energy += float(np.sum(p, dtype=np.float64))
            self.peak = max(self.peak, float(p.max()))
        if self.clip:
            v = x.view(np.float32)
            # zeros never exceed full scale, so counting over all values = over the non-zero ones
            self.n_clipped += int(np.count_nonzero(np.abs(v) > self.full_scale))
            np.clip(v, -self.full_scale, self.full_scale, out=y.view(np.float32))
        else:
            y[:] = x
        return n

    def clip_fraction(self) -> float:
        return self.n_clipped / (2.0 * self.n_samples) if self.n_samples else float("nan")

    def papr_db(self) -> float:
        if not self.n_samples or self.energy <= 0:
            return float("nan")
        return 10.0 * math.log10(self.peak / (self.energy / self.n_samples))


def profile_taps(profile: RadioProfile) -> np.ndarray:
    """Static FIR taps of a profile's delay profile, unit energy (``[1]`` without taps)."""
    if not profile.taps:
        return np.array([1.0 + 0j])
    h = np.zeros(max(t.delay for t in profile.taps) + 1, np.complex128)
    for t in profile.taps:
        h[t.delay] = 10.0 ** (t.gain_db / 20.0) * np.exp(1j * np.deg2rad(t.phase_deg))
    return h / np.sqrt(np.sum(np.abs(h) ** 2))


def phase_noise_mag(deg_rms: float, alpha: float) -> float:
    """``phase_noise_gen`` noise_mag giving ``deg_rms``: its white Gaussian phase (std noise_mag)
    goes through a one-pole IIR y += alpha*(x - y), whose output std is sqrt(alpha/(2-alpha))
    times the input's (checked by measurement in tests/qa_channel_preset.py)."""
    return math.radians(deg_rms) / math.sqrt(alpha / (2.0 - alpha))


class channel_preset(gr.hier_block2):
    """Complex stream in -> complex stream out: fading/multipath, CFO, timing offset and AWGN.

    Args:
        preset: ``awgn`` | ``multipath`` | ``rayleigh`` | ``rayleigh_fast`` | a radio profile name
            (``hw_configs/radio_profiles.yaml``: ``clean``, ``b200_pair_2g4``, ``cfo_1p5``, ...) or
            a ``RadioProfile`` object.
        snr_db: Es/N0 on the data subcarriers (project convention).
        cfo: carrier frequency offset in subcarrier spacings (added to a profile's own).
        timing_offset_ppm: sample clock offset in ppm (0 = none; added to a profile's own).
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
        if isinstance(preset, RadioProfile):   # a profile object (tests, custom profiles)
            self.profile, preset = preset, preset.name
        elif preset in LEGACY_PRESETS:
            self.profile = None
        else:
            try:
                self.profile = get_radio_profile(preset)
            except InputError as e:
                raise InputError(f"channel_preset preset must be one of {LEGACY_PRESETS} or a radio "
                                 f"profile: {e}") from None
        self.preset = preset
        self._fft_len = int(getattr(params, "fft_len", fft_len))
        self._n_occupied = int(getattr(params, "n_occupied", n_occupied))
        self._params = params
        self._snr_db = float(snr_db)
        self._cfo = float(cfo)
        self._ppm = float(timing_offset_ppm)
        prof = self.profile
        self._cfo0 = prof.cfo_subcarriers if prof else 0.0
        self._ppm0 = prof.sro_ppm if prof else 0.0
        if prof is not None:
            taps = profile_taps(prof) if prof.fading == "none" else np.array([1.0 + 0j])
        else:
            taps = multipath_taps() if preset == "multipath" else np.array([1.0 + 0j])
        # channel_model does the multipath, CFO and clock offset; the AWGN is added outside it
        # because its internal noise source runs ahead by a whole buffer (~32k samples = several
        # frames at the old level after an SNR change).
        self.model = channels.channel_model(
            noise_voltage=0.0, frequency_offset=(self._cfo0 + self._cfo) / self._fft_len,
            epsilon=1.0 + (self._ppm0 + self._ppm) * 1e-6, taps=[complex(t) for t in taps],
            noise_seed=int(seed), block_tags=False)  # let frame/eos tags through
        self.noise = awgn_adder(noise_voltage_for_snr(snr_db, params, self._fft_len, self._n_occupied),
                                int(seed) + 12345)
        self.dac = None
        self.dropper = None
        self.fading = None
        self._post = []
        if prof is not None:
            chain = self._profile_chain(prof, int(seed))
        elif preset in FADING_FDTS:
            self.fading = channels.fading_model(8, FADING_FDTS[preset], False, 4.0, int(seed) + 1)
            chain = [self.fading]
        else:
            chain = []
        self._chain = chain   # Python references to every block in the graph
        self.connect(self, *chain, self.model, *self._post, self.noise, self)
        if big_buffers:
            # big buffers -> big chunks for the Python receiver downstream (its cost is per call)
            with quiet_gr_logs():
                self.model.set_min_output_buffer(BIG_BUFFER)
                self.noise.set_min_output_buffer(BIG_BUFFER)

    def _profile_chain(self, p: RadioProfile, seed: int) -> list:
        """Blocks before channel_model for radio profile ``p``; sets self._post (after it)."""
        from gnuradio import blocks

        chain = []
        self.dropper = None
        if p.frame_loss:
            self.dropper = burst_dropper(p.frame_loss, seed)
            chain.append(self.dropper)
        if p.tx_amplitude is not None:
            chain.append(blocks.multiply_const_cc(complex(p.tx_amplitude)))
        self.dac = dac_clip(1.0, clip=p.tx_amplitude is not None)
        chain.append(self.dac)
        if p.pa_beta:
            chain.append(channels.distortion_3_gen(p.pa_beta))
        if p.tx_amplitude is not None:
            chain.append(blocks.multiply_const_cc(complex(1.0 / p.tx_amplitude)))
        if p.iq_gain_db or p.iq_phase_deg:
            chain.append(channels.iqbal_gen(p.iq_gain_db, p.iq_phase_deg, 0))   # mode 0 = TX
        if p.phase_noise_deg_rms:
            # its noise source has a fixed seed (42) inside gr-channels: the same draw every run
            chain.append(channels.phase_noise_gen(phase_noise_mag(p.phase_noise_deg_rms, p.phase_noise_alpha),
                                                  p.phase_noise_alpha))
        if p.fading != "none":
            los, k = p.fading == "rician", p.rician_k
            if p.taps:
                h = profile_taps(p)
                delays = [float(t.delay) for t in p.taps]
                mags = [float(abs(h[t.delay])) for t in p.taps]
                self.fading = channels.selective_fading_model(8, p.fdts, los, k, seed + 1, delays, mags,
                                                              int(max(delays)) + 1)
            else:
                self.fading = channels.fading_model(8, p.fdts, los, k, seed + 1)
            chain.append(self.fading)
        self._post = []
        if p.dc_offset_dbc is not None:
            # LO leakage at the receiver: a constant at DC, relative to the unit-power signal
            dc = 10.0 ** (p.dc_offset_dbc / 20.0) * np.exp(1j * np.pi / 4)
            self._post.append(blocks.add_const_cc(complex(dc)))
        return chain

    def frames_dropped(self) -> int:
        """Bursts this channel lost on purpose (profiles with ``frame_loss``; 0 otherwise)."""
        return self.dropper.frames_dropped if self.dropper is not None else 0

    # --- measurements of the TX signal at the DAC (radio profiles; NaN for the built-in presets) ---
    def clip_fraction(self) -> float:
        """Fraction of I/Q values of the non-zero TX samples that hit the DAC full scale."""
        return self.dac.clip_fraction() if self.dac is not None else float("nan")

    def papr_db(self) -> float:
        """Peak-to-average power ratio (dB) of the non-zero TX samples entering the DAC."""
        return self.dac.papr_db() if self.dac is not None else float("nan")

    # --- setters (GRC callbacks; also used by the closed-loop test to step the SNR) ---
    def set_snr_db(self, snr_db: float):
        self._snr_db = float(snr_db)
        self.noise.set_voltage(noise_voltage_for_snr(snr_db, self._params, self._fft_len, self._n_occupied))

    def snr_db(self) -> float:
        return self._snr_db

    def set_cfo(self, cfo: float):
        """CFO in subcarrier spacings, on top of the profile's own."""
        self._cfo = float(cfo)
        self.model.set_frequency_offset((self._cfo0 + self._cfo) / self._fft_len)

    def set_timing_offset_ppm(self, ppm: float):
        """Sample clock offset in ppm, on top of the profile's own."""
        self._ppm = float(ppm)
        self.model.set_timing_offset(1.0 + (self._ppm0 + self._ppm) * 1e-6)

    def noise_voltage(self) -> float:
        """Total complex noise RMS per sample (channel_model's own getter reports it / sqrt(2))."""
        return noise_voltage_for_snr(self._snr_db, self._params, self._fft_len, self._n_occupied)
