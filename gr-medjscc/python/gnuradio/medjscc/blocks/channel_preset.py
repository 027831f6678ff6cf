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

Satellite profiles (``leo_pass``, ``geo_link``, ``lms_shadowed``: a ``gain_profile`` or a residual
Doppler sweep) take the fading stage's place with a ``sat_channel`` hier block (``sat_channel.py``:
scatter fading + time-varying line of sight and gain + Doppler sweep); their static Doppler is
channel_model's frequency offset. ``time_scale`` speeds up their slow dynamics (pass, rain fade,
shadowing states) relative to the samples.

``switchable=True`` (GRC) builds the stages of every preset, the unused ones at their neutral
setting (exact identities: gain 1, beta 0, 0 dB / 0 deg, zero phase noise, a switch that routes
the samples past the fading blocks), so ``set_preset(name)`` switches preset while the flowgraph
runs (GRC chooser) by setters alone. Without it only the given preset's stages are built.
"""
from __future__ import annotations

import collections
import math
import threading

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


class _PathPlan:
    """Which path (0 = no fading, i = fading block i) each stretch of samples took, in order:
    ``_route`` appends, ``_merge`` drains. Shared by the two; ``path`` is where new samples go."""

    def __init__(self, path: int = 0):
        self.lock = threading.Lock()
        self.path = int(path)
        self.segments = collections.deque([[self.path, 0]])    # [path, samples not yet merged]

    def routed(self, path: int, n: int):
        if self.segments[-1][0] != path:
            self.segments.append([path, 0])
        self.segments[-1][1] += n

    def head(self) -> list:
        while len(self.segments) > 1 and self.segments[0][1] == 0:
            self.segments.popleft()
        return self.segments[0]


def _copy_tags(blk, src_port, dst_port, n, dedupe=False):
    """Tags of the next ``n`` items of input ``src_port`` onto the next ``n`` of output ``dst_port``;
    ``dedupe``: one copy of tags repeated at the same offset with the same key and value."""
    import pmt

    r0, w0 = blk.nitems_read(src_port), blk.nitems_written(dst_port)
    seen = set()
    for t in blk.get_tags_in_range(src_port, r0, r0 + n):
        if dedupe:
            ident = (t.offset, pmt.serialize_str(t.key), pmt.serialize_str(t.value))
            if ident in seen:
                continue
            seen.add(ident)
        blk.add_item_tag(dst_port, w0 + t.offset - r0, t.key, t.value, t.srcid)


class _route(gr.basic_block):
    """1 -> n_paths: every sample goes to the current path only, so the fading blocks of the other
    presets get nothing to do (gr-channels' selective fading model alone runs < 1 Msps)."""

    def __init__(self, n_paths: int, plan: _PathPlan):
        gr.basic_block.__init__(self, name="medjscc_fading_route", in_sig=[np.complex64],
                                out_sig=[np.complex64] * n_paths)
        self._plan = plan
        self.set_tag_propagation_policy(gr.TPP_DONT)     # copied by hand to the path taken

    def forecast(self, noutput_items, ninputs):
        return [noutput_items]

    def general_work(self, input_items, output_items):
        with self._plan.lock:
            k = self._plan.path
        n = min(len(input_items[0]), len(output_items[k]))
        if n <= 0:
            return 0
        output_items[k][:n] = input_items[0][:n]
        _copy_tags(self, 0, k, n)
        with self._plan.lock:
            self._plan.routed(k, n)
        self.consume(0, n)
        self.produce(k, n)
        return int(gr.WORK_CALLED_PRODUCE)


class _merge(gr.basic_block):
    """n_paths -> 1: the paths' samples back in the order ``_route`` sent them (a path switch takes
    effect once the samples already on the old path are out: none lost, none reordered)."""

    def __init__(self, n_paths: int, plan: _PathPlan):
        gr.basic_block.__init__(self, name="medjscc_fading_merge", in_sig=[np.complex64] * n_paths,
                                out_sig=[np.complex64])
        self._plan = plan
        self.set_tag_propagation_policy(gr.TPP_DONT)

    def forecast(self, noutput_items, ninputs):
        need = [0] * ninputs
        with self._plan.lock:
            path, left = self._plan.head()
        need[path] = max(1, min(noutput_items, left))
        return need

    def general_work(self, input_items, output_items):
        with self._plan.lock:
            seg = self._plan.head()
            path, left = seg
        n = min(len(input_items[path]), left, len(output_items[0]))
        if n <= 0:
            return 0
        output_items[0][:n] = input_items[path][:n]
        # gr-channels' iqbal_gen and distortion_3_gen (hier blocks) pass each tag three times
        _copy_tags(self, path, 0, n, dedupe=True)
        with self._plan.lock:
            seg[1] -= n
        self.consume(path, n)
        return n


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


def _resolve(preset):
    """(profile or None, name) of a preset name or RadioProfile; one InputError line listing the
    valid names otherwise."""
    if isinstance(preset, RadioProfile):
        return preset, preset.name
    if isinstance(preset, str) and preset in LEGACY_PRESETS:
        return None, preset
    profiles = load_radio_profiles()
    if isinstance(preset, str) and preset in profiles:
        return profiles[preset], preset
    valid = LEGACY_PRESETS + tuple(n for n in profiles if n not in LEGACY_PRESETS)
    raise InputError(f"channel_preset: unknown preset {preset!r}; valid presets: {', '.join(valid)}")


def _fading_spec(profile, name):
    """``(key, fDTs, K)`` of a preset's fading stage, None without fading. Presets with the same
    key share one gr-channels block: fDTs and K have setters, LOS and the taps are fixed when the
    block is made."""
    if profile is None:
        return ((("flat", False, (), ()), FADING_FDTS[name], 4.0) if name in FADING_FDTS else None)
    if profile.is_satellite:          # its own sat_channel block (fading + dynamics)
        return ("sat", profile.name, (), ()), 0.0, 0.0
    if profile.fading == "none":
        return None
    los = profile.fading == "rician"
    if profile.taps:
        h = profile_taps(profile)
        delays = tuple(float(t.delay) for t in profile.taps)
        mags = tuple(float(abs(h[t.delay])) for t in profile.taps)
        return ("selective", los, delays, mags), profile.fdts, profile.rician_k
    return ("flat", los, (), ()), profile.fdts, profile.rician_k


def _static_taps(profile, name) -> np.ndarray:
    """channel_model taps: the static multipath of a preset (fading presets fade their own taps)."""
    if profile is not None:
        return profile_taps(profile) if profile.fading == "none" else np.array([1.0 + 0j])
    return multipath_taps() if name == "multipath" else np.array([1.0 + 0j])


# stages before channel_model (besides fading), in signal order; "amplitude" is the pair x amp, x 1/amp
STAGES = ("frame_loss", "amplitude", "dac", "pa", "iq", "phase_noise", "dc")


def _stages(profile) -> set:
    """The optional stages a preset uses (the built-in presets: none; fading is separate)."""
    p = profile
    if p is None:
        return set()
    used = {"dac"}                  # every radio profile measures clipping / PAPR at the DAC
    used |= {s for s, on in (("frame_loss", p.frame_loss), ("amplitude", p.tx_amplitude is not None),
                             ("pa", p.pa_beta), ("iq", p.iq_gain_db or p.iq_phase_deg),
                             ("phase_noise", p.phase_noise_deg_rms), ("dc", p.dc_offset_dbc is not None)) if on}
    return used


class channel_preset(gr.hier_block2):
    """Complex stream in -> complex stream out: fading/multipath, CFO, timing offset and AWGN.

    ``switchable=True`` (GRC's default) builds every stage any preset uses, at its neutral setting
    when the current preset does not use it (gain 1, beta 0, no IQ imbalance, zero phase noise, a
    switch that routes the samples past the fading blocks), so ``set_preset`` changes the preset
    while the flowgraph runs by setters alone: no lock()/reconnect, which would stop and restart
    every block of the flowgraph (the JSCC receiver flushes a half-received image at stop) and
    drop the samples in flight. ``switchable=False`` builds only the stages of the given preset
    (the fastest chain; ``set_preset`` then reaches only presets that need no other stage).

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
        switchable: build the stages of every preset so that ``set_preset`` reaches all of them.
        time_scale: satellite profiles' slow dynamics (pass, rain fade, shadowing) run this many
            times faster than the samples (1 = real time; the Doppler rates are not scaled).
    """

    def __init__(self, preset: str = "awgn", snr_db: float = 20.0, cfo: float = 0.0,
                 timing_offset_ppm: float = 0.0, fft_len: int = 64, n_occupied: int = 52,
                 seed: int = 0, params=None, big_buffers: bool = True, switchable: bool = False,
                 time_scale: float = 1.0):
        gr.hier_block2.__init__(self, "medjscc_channel_preset",
                                gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        from gnuradio import blocks

        profile, name = _resolve(preset)
        self._lock = threading.Lock()
        self._fft_len = int(getattr(params, "fft_len", fft_len))
        self._n_occupied = int(getattr(params, "n_occupied", n_occupied))
        self._params = params
        self._snr_db = float(snr_db)
        self._cfo = float(cfo)
        self._ppm = float(timing_offset_ppm)
        self._cfo0 = self._ppm0 = 0.0
        self.switchable = bool(switchable)
        if not (math.isfinite(float(time_scale)) and float(time_scale) > 0):
            raise InputError(f"channel_preset: time_scale must be > 0, got {time_scale!r}")
        self.time_scale = float(time_scale)
        seed = int(seed)
        # the presets this channel can take: the given one first (its fading block is made with
        # its own fDTs/K, as a block made for it alone would be)
        reach = [(profile, name)]
        if self.switchable:
            reach += [(None, n) for n in LEGACY_PRESETS]
            try:
                reach += [(p, n) for n, p in load_radio_profiles().items()]
            except InputError:
                pass        # a broken profile file: the built-in presets still switch
        used = set().union(*(_stages(p) for p, _ in reach))
        self._stage_set = used
        # TX side, in signal order, at neutral settings (_apply sets the preset's)
        self.dropper = burst_dropper(0.0, seed) if "frame_loss" in used else None
        amp = "amplitude" in used
        self._amp_in = blocks.multiply_const_cc(1.0) if amp else None    # x TX amplitude (full-scale units)
        self.dac = dac_clip(1.0, clip=False) if "dac" in used else None
        self._pa = channels.distortion_3_gen(0.0) if "pa" in used else None
        self._amp_out = blocks.multiply_const_cc(1.0) if amp else None   # x 1/amplitude
        self._iq = channels.iqbal_gen(0.0, 0.0, 0) if "iq" in used else None   # mode 0 = TX
        # its noise source has a fixed seed (42) inside gr-channels: the same draw every run
        self._phase_noise = channels.phase_noise_gen(0.0, 0.1) if "phase_noise" in used else None
        # fading: one block per fading structure (fDTs and K have setters; LOS and taps do not)
        self._fading = {}
        paths = []                       # None = no fading, else a fading key
        for p, n in reach:
            spec = _fading_spec(p, n)
            key = spec[0] if spec is not None else None
            if key not in paths:
                paths.append(key)
            if spec is None or key in self._fading:
                continue
            kind, los, delays, mags = key
            fdts, k = spec[1], spec[2]
            if kind == "sat":
                from .sat_channel import sat_channel

                self._fading[key] = sat_channel(p, seed, self.time_scale)
            elif kind == "flat":
                self._fading[key] = channels.fading_model(8, fdts, los, k, seed + 1)
            else:
                self._fading[key] = channels.selective_fading_model(8, fdts, los, k, seed + 1, list(delays),
                                                                    list(mags), int(max(delays)) + 1)
        self._paths = paths
        self.fading = None
        # channel_model does the multipath, CFO and clock offset; the AWGN is added outside it
        # because its internal noise source runs ahead by a whole buffer (~32k samples = several
        # frames at the old level after an SNR change).
        self.model = channels.channel_model(
            noise_voltage=0.0, frequency_offset=self._cfo / self._fft_len,
            epsilon=1.0 + self._ppm * 1e-6, taps=[1.0 + 0j],
            noise_seed=seed, block_tags=False)  # let frame/eos tags through
        self._dc = blocks.add_const_cc(0j) if "dc" in used else None   # RX DC offset (LO leakage)
        self.noise = awgn_adder(noise_voltage_for_snr(snr_db, params, self._fft_len, self._n_occupied),
                                seed + 12345)
        tx = [b for b in (self.dropper, self._amp_in, self.dac, self._pa, self._amp_out, self._iq,
                          self._phase_noise) if b is not None]
        post = [b for b in (self.model, self._dc, self.noise) if b is not None]
        self._plan = self._route = self._merge = None
        if len(paths) > 1:
            # the switch: only the current path gets samples (blocks.selector or a 0/1 gain and
            # a sum would run every fading block all the time; selector's index cannot even be
            # set before the flowgraph starts)
            self._plan = _PathPlan(0)
            self._route = _route(len(paths), self._plan)
            self._merge = _merge(len(paths), self._plan)
            self.connect(self, *tx, self._route)
            for i, key in enumerate(paths):
                if key is None:
                    self.connect((self._route, i), (self._merge, i))
                else:
                    self.connect((self._route, i), self._fading[key], (self._merge, i))
            self.connect(self._merge, *post, self)
            mid = [self._route, *self._fading.values(), self._merge]
        else:
            mid = list(self._fading.values())           # one fading block or none
            self.connect(self, *tx, *mid, *post, self)
        self._blocks = tx + mid + post     # Python references to every block in the graph
        self._apply(profile, name)
        if big_buffers:
            # big buffers -> big chunks for the Python receiver downstream (its cost is per call)
            with quiet_gr_logs():
                self.model.set_min_output_buffer(BIG_BUFFER)
                self.noise.set_min_output_buffer(BIG_BUFFER)

    def _apply(self, p, name):
        """Set every stage for preset ``name`` (profile ``p``, None for the built-in presets)."""
        spec = _fading_spec(p, name)
        key = spec[0] if spec is not None else None
        missing = sorted(_stages(p) - self._stage_set) + ([] if key in self._paths else ["fading"])
        if missing:
            raise InputError(f"channel_preset: preset {name!r} needs stages this channel was built without "
                             f"({', '.join(missing)}); build it with switchable=True (GRC: 'Switchable "
                             f"at run time') to change to any preset while running")
        amp = p.tx_amplitude if p is not None else None
        with self._lock:
            if self.dropper is not None:
                self.dropper.p = float(p.frame_loss) if p is not None else 0.0
            if self._amp_in is not None:
                self._amp_in.set_k(complex(amp if amp is not None else 1.0))
                self._amp_out.set_k(complex(1.0 / amp if amp is not None else 1.0))
            if self.dac is not None:
                self.dac.clip = amp is not None
                self.dac.reset_stats()       # the DAC figures describe the current preset
            if self._pa is not None:
                self._pa.set_beta(float(p.pa_beta) if p is not None else 0.0)
            if self._iq is not None:
                self._iq.set_magnitude(float(p.iq_gain_db) if p is not None else 0.0)
                self._iq.set_phase(float(p.iq_phase_deg) if p is not None else 0.0)
            if self._phase_noise is not None:
                pn = p is not None and p.phase_noise_deg_rms > 0
                self._phase_noise.set_alpha(float(p.phase_noise_alpha) if p is not None else 0.1)
                self._phase_noise.set_noise_mag(phase_noise_mag(p.phase_noise_deg_rms, p.phase_noise_alpha)
                                                if pn else 0.0)
            self.fading = None
            if spec is not None and key[0] == "sat":
                self.fading = self._fading[key]          # fixed by its profile (sat_channel)
            elif spec is not None:
                self.fading = self._fading[key]
                self.fading.set_fDTs(float(spec[1]))
                self.fading.set_K(float(spec[2]))
            if self._plan is not None:
                with self._plan.lock:
                    self._plan.path = self._paths.index(key)
            self.model.set_taps([complex(t) for t in _static_taps(p, name)])
            self._cfo0 = (p.cfo_subcarriers + p.doppler_offset_hz * self._fft_len / p.sample_rate_hz
                          if p is not None else 0.0)
            self._ppm0 = p.sro_ppm if p is not None else 0.0
            self.model.set_frequency_offset((self._cfo0 + self._cfo) / self._fft_len)
            self.model.set_timing_offset(1.0 + (self._ppm0 + self._ppm) * 1e-6)
            if self._dc is not None:
                # LO leakage at the receiver: a constant at DC, relative to the unit-power signal
                dc = (10.0 ** (p.dc_offset_dbc / 20.0) * np.exp(1j * np.pi / 4)
                      if p is not None and p.dc_offset_dbc is not None else 0.0)
                self._dc.set_k(complex(dc))
            self.profile, self.preset = p, name

    def set_preset(self, preset):
        """Switch to another preset (name or RadioProfile) while running (GRC callback): every
        stage is re-set; SNR, CFO and clock offset parameters are kept (CFO and clock offset add to
        the new profile's own). An unknown name raises InputError listing the valid ones and
        leaves the channel as it was."""
        profile, name = _resolve(preset)
        self._apply(profile, name)

    def set_time_scale(self, time_scale: float):
        """Speed of the satellite profiles' slow dynamics (GRC callback); their pass time goes on
        from where it is."""
        if not (math.isfinite(float(time_scale)) and float(time_scale) > 0):
            raise InputError(f"channel_preset: time_scale must be > 0, got {time_scale!r}")
        self.time_scale = float(time_scale)
        for key, blk in self._fading.items():
            if key[0] == "sat":
                blk.combine.set_time_scale(self.time_scale)

    def sat_gain_trace(self) -> list:
        """(pass time s, received power gain dB) samples of the current satellite preset's
        dynamics so far ([] for other presets)."""
        blk = self.fading
        return list(blk.combine.trace) if blk is not None and hasattr(blk, "combine") else []

    def frames_dropped(self) -> int:
        """Bursts this channel lost on purpose (profiles with ``frame_loss``; 0 otherwise)."""
        return self.dropper.frames_dropped if self.dropper is not None else 0

    # --- measurements of the TX signal at the DAC (radio profiles; NaN for the built-in presets) ---
    def clip_fraction(self) -> float:
        """Fraction of I/Q values of the non-zero TX samples that hit the DAC full scale."""
        return self.dac.clip_fraction() if self.profile is not None else float("nan")

    def papr_db(self) -> float:
        """Peak-to-average power ratio (dB) of the non-zero TX samples entering the DAC."""
        return self.dac.papr_db() if self.profile is not None else float("nan")

    # --- setters (GRC callbacks; also used by the closed-loop test to step the SNR) ---
    def set_snr_db(self, snr_db: float):
        self._snr_db = float(snr_db)
        self.noise.set_voltage(noise_voltage_for_snr(snr_db, self._params, self._fft_len, self._n_occupied))

    def snr_db(self) -> float:
        return self._snr_db

    def set_cfo(self, cfo: float):
        """CFO in subcarrier spacings, on top of the profile's own."""
        with self._lock:
            self._cfo = float(cfo)
            self.model.set_frequency_offset((self._cfo0 + self._cfo) / self._fft_len)

    def set_timing_offset_ppm(self, ppm: float):
        """Sample clock offset in ppm, on top of the profile's own."""
        with self._lock:
            self._ppm = float(ppm)
            self.model.set_timing_offset(1.0 + (self._ppm0 + self._ppm) * 1e-6)

    def noise_voltage(self) -> float:
        """Total complex noise RMS per sample (channel_model's own getter reports it / sqrt(2))."""
        return noise_voltage_for_snr(self._snr_db, self._params, self._fft_len, self._n_occupied)
