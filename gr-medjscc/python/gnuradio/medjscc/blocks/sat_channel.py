"""Satellite link dynamics for ``channel_preset``: LEO pass, GEO rain fade, land-mobile shadowing.

A radio profile with ``gain_profile`` (``leo_pass`` | ``rain_fade`` | ``lms``) or a residual
Doppler sweep (``doppler_sweep_hz`` / ``doppler_rate_hz_s``) becomes one ``sat_channel`` hier
block, the profile's path in ``channel_preset`` (in place of a gr-channels fading block):

    x --+------------------------------------------+
        |                                          +-> sat_combine: y = a(t) x + s(t) f -> x exp(j 2 pi int fD(t) dt)
        +-> channels.fading_model (Rayleigh, fDTs) -+    (a: line of sight, s: scatter)     (sig_source_f TRI ->
                                                                                             frequency_modulator_fc)

The line of sight ``a(t)`` and the scatter ``s(t)`` amplitudes come from ``SatDynamics`` (pure
Python, testable without GNU Radio), evaluated per sample-time (interpolated on a fixed time
grid, so a seed gives the same channel whatever the work() chunking):

* ``leo_pass``: an overhead pass of a circular orbit (``altitude_km``) from ``min_elevation_deg``
  to 90 deg and back (Earth rotation ignored). Free-space path loss ``20 log10 d(t)`` (slant
  range d) normalised to a 0 dB *time average in dB over the pass*, so ``snr_db`` is the pass
  average; Rician K linear in elevation between ``rician_k_db_horizon`` and ``..._zenith`` (dB):
  ``a = g sqrt(K/(K+1))``, ``s = g sqrt(1/(K+1))``.
* ``rain_fade``: clear sky for ``fade_start_s``, then the power falls at ``fade_rate_db_s`` down to
  ``-fade_depth_db`` and recovers at the same rate (periodic); ``snr_db`` is the clear-sky SNR.
* ``lms``: the Loo model per state of a Markov chain (Fontan et al. 2001): LOS amplitude
  lognormal (mean ``los_db``, std ``los_std_db``, correlation time ``lms_corr_s``), diffuse
  Rayleigh multipath of power ``mp_db``, all relative to the unobstructed LOS (``snr_db``);
  exponential state durations (mean ``mean_s``), next state drawn from ``lms_transitions``.

``time_scale`` (channel_preset argument, default 1 = real time) runs these slow dynamics faster
than the samples so that a short simulation sees a whole pass or fade; the fading Doppler and the
residual Doppler sweep stay at their physical rates. The pass clock counts the samples that went
through the preset (a switched-away preset keeps its place).
"""
from __future__ import annotations

import math
import threading

import numpy as np
from gnuradio import gr

from .radio_profiles import RadioProfile

EARTH_RADIUS_KM = 6371.0
MU_KM3_S2 = 398600.4418            # Earth's gravitational parameter


class LeoPass:
    """Geometry of an overhead pass of a circular orbit (spherical Earth, no Earth rotation)."""

    def __init__(self, altitude_km: float, min_elevation_deg: float):
        self.r = EARTH_RADIUS_KM + float(altitude_km)
        self.min_elev = math.radians(float(min_elevation_deg))
        # Earth-central angle between the terminal and the sub-satellite point at min elevation
        self.theta_max = math.acos(EARTH_RADIUS_KM * math.cos(self.min_elev) / self.r) - self.min_elev
        self.omega = math.sqrt(MU_KM3_S2 / self.r ** 3)          # rad/s
        self.duration_s = 2.0 * self.theta_max / self.omega

    def _theta(self, t):
        return -self.theta_max + self.omega * np.mod(np.asarray(t, float), self.duration_s)

    def range_km(self, t):
        th = self._theta(t)
        return np.sqrt(self.r ** 2 + EARTH_RADIUS_KM ** 2 - 2 * self.r * EARTH_RADIUS_KM * np.cos(th))

    def elevation_deg(self, t):
        th = self._theta(t)
        return np.degrees(np.arctan2(self.r * np.cos(th) - EARTH_RADIUS_KM, self.r * np.abs(np.sin(th))))


class SatDynamics:
    """Line-of-sight and scatter amplitudes ``(a, s)`` of a satellite profile at pass time ``t``
    (seconds, non-decreasing between calls for ``lms``). ``gain_db(t)`` = 10 log10(a^2 + s^2)."""

    GRID_S = 0.01       # lms: the shadowing process is drawn on this grid (of lms_corr_s / 20 if finer)

    def __init__(self, profile: RadioProfile, seed: int = 0):
        p = self.profile = profile
        self.kind = p.gain_profile
        self.has_scatter = p.fading != "none"
        self._k_lin = float(p.rician_k) if p.fading == "rician" else 0.0   # fixed K (non-LEO)
        if self.kind == "leo_pass":
            self.leo = LeoPass(p.altitude_km, p.min_elevation_deg)
            tt = np.linspace(0.0, self.leo.duration_s, 4001)
            # 0 dB mean (in dB) over the pass: snr_db is the pass-average SNR
            self._pl_ref_db = float(np.mean(-20.0 * np.log10(self.leo.range_km(tt))))
            self.period_s = self.leo.duration_s
        elif self.kind == "rain_fade":
            self.period_s = p.fade_start_s + 2.0 * p.fade_depth_db / p.fade_rate_db_s
        elif self.kind == "lms":
            self._rng = np.random.default_rng([int(seed), 0x1A5])
            self._grid = min(self.GRID_S, p.lms_corr_s / 20.0)
            self._rho = math.exp(-self._grid / p.lms_corr_s)     # AR(1) = sampled Ornstein-Uhlenbeck
            n_states = len(p.lms_states)
            # start in the state with the largest stationary share of time (deterministic start)
            self._state = int(np.argmax(self._stationary_share()))
            self._state_end = self._rng.exponential(p.lms_states[self._state].mean_s)
            self._n = float(self._rng.standard_normal())
            self._k_grid = 0                                   # grid points drawn so far
            self._vals: list[tuple[float, float]] = []         # (a, s) per grid point, recent ones
            self._first = 0                                    # grid index of _vals[0]
            self.states_visited = [self._state]
            self._n_states = n_states
            self.period_s = None
        else:
            self.period_s = None

    def _stationary_share(self) -> np.ndarray:
        """Long-run share of time per LMS state (embedded chain stationary law x mean durations)."""
        p = self.profile
        P = np.array(p.lms_transitions, float)
        w, v = np.linalg.eig(P.T)
        pi = np.abs(np.real(v[:, np.argmin(np.abs(w - 1.0))]))
        share = pi * np.array([s.mean_s for s in p.lms_states])
        return share / share.sum()

    # --- per kind ---
    def elevation_deg(self, t):
        return self.leo.elevation_deg(t) if self.kind == "leo_pass" else None

    def _leo(self, t):
        p = self.profile
        g_db = -20.0 * np.log10(self.leo.range_km(t)) - self._pl_ref_db
        if p.rician_k_db_horizon is not None:
            frac = (self.leo.elevation_deg(t) - p.min_elevation_deg) / (90.0 - p.min_elevation_deg)
            k = 10.0 ** ((p.rician_k_db_horizon + (p.rician_k_db_zenith - p.rician_k_db_horizon)
                          * np.clip(frac, 0.0, 1.0)) / 10.0)
        else:
            k = np.full_like(g_db, self._k_lin)
        return g_db, k

    def _rain(self, t):
        p = self.profile
        tc = np.mod(np.asarray(t, float), self.period_s) - p.fade_start_s
        half = p.fade_depth_db / p.fade_rate_db_s
        down = np.where(tc <= half, tc, 2 * half - tc) * p.fade_rate_db_s
        return -np.clip(down, 0.0, p.fade_depth_db)

    def _lms_point(self) -> tuple[float, float]:
        """Draw the next grid point of the Loo/Markov process."""
        p = self.profile
        t = self._k_grid * self._grid
        while t >= self._state_end:      # state change(s): exponential holding, then P row
            self._state = int(self._rng.choice(self._n_states, p=p.lms_transitions[self._state]))
            self._state_end += self._rng.exponential(p.lms_states[self._state].mean_s)
            self.states_visited.append(self._state)
        self._n = self._rho * self._n + math.sqrt(1.0 - self._rho ** 2) * float(self._rng.standard_normal())
        st = p.lms_states[self._state]
        a = 10.0 ** ((st.los_db + st.los_std_db * self._n) / 20.0)
        self._k_grid += 1
        return a, 10.0 ** (st.mp_db / 20.0)

    def _lms(self, t):
        t = np.asarray(t, float)
        idx = t / self._grid
        hi = int(math.floor(float(idx.max()))) + 1
        while self._first + len(self._vals) <= hi:
            self._vals.append(self._lms_point())
        lo = int(math.floor(float(idx.min())))
        if lo < self._first:
            raise ValueError("SatDynamics(lms): time went backwards past the kept history")
        vals = np.array(self._vals, float)
        i0 = np.floor(idx).astype(int) - self._first
        frac = idx - np.floor(idx)
        a = vals[i0, 0] * (1 - frac) + vals[i0 + 1, 0] * frac
        s = vals[i0, 1] * (1 - frac) + vals[i0 + 1, 1] * frac
        drop = lo - self._first - 2          # keep a little history, forget the rest
        if drop > 1000:
            del self._vals[:drop]
            self._first += drop
        return a, s

    def amplitudes(self, t):
        """``(a, s)`` arrays of the LOS and scatter amplitude at times ``t`` (s)."""
        t = np.atleast_1d(np.asarray(t, float))
        if self.kind == "lms":
            return self._lms(t)
        if self.kind == "leo_pass":
            g_db, k = self._leo(t)
        elif self.kind == "rain_fade":
            g_db, k = self._rain(t), np.full(t.shape, self._k_lin)
        else:
            g_db, k = np.zeros(t.shape), np.full(t.shape, self._k_lin)
        g = 10.0 ** (g_db / 20.0)
        if not self.has_scatter:
            return g, np.zeros_like(g)
        return g * np.sqrt(k / (k + 1.0)), g * np.sqrt(1.0 / (k + 1.0))

    def gain_db(self, t):
        a, s = self.amplitudes(t)
        return 10.0 * np.log10(a ** 2 + s ** 2)


class sat_combine(gr.sync_block):
    """``y = a(t) x + s(t) f`` (inputs: x, and f = x through a unit-power Rayleigh fading block;
    only x without scatter). ``a``, ``s`` from ``SatDynamics`` at the pass time of each sample
    (``nitems_read / sample_rate * time_scale``), evaluated every ``STEP`` samples and linearly
    interpolated. ``trace``: (pass time s, gain dB) once per ``TRACE_EVERY`` samples (last 20000)."""

    STEP = 256
    TRACE_EVERY = 4096

    def __init__(self, dynamics: SatDynamics, sample_rate: float, time_scale: float = 1.0):
        n_in = 2 if dynamics.has_scatter else 1
        gr.sync_block.__init__(self, name="medjscc_sat_combine", in_sig=[np.complex64] * n_in,
                               out_sig=[np.complex64])
        self.dyn = dynamics
        self.sample_rate = float(sample_rate)
        self.time_scale = float(time_scale)
        self._t0 = 0.0                  # pass time = _t0 + n / sample_rate * time_scale
        self._lock = threading.Lock()
        self.trace: list[tuple[float, float]] = []

    def set_time_scale(self, time_scale: float):
        """New speed of the slow dynamics; the pass time goes on from where it is (no jump)."""
        with self._lock:
            n = self.nitems_read(0)
            now = self._t0 + n / self.sample_rate * self.time_scale
            self.time_scale = float(time_scale)
            self._t0 = now - n / self.sample_rate * self.time_scale

    def set_pass_time(self, t: float):
        """Jump the dynamics to pass time ``t`` (s) from the next sample on (e.g. start a run
        just before a rain fade)."""
        with self._lock:
            self._t0 = float(t) - self.nitems_read(0) / self.sample_rate * self.time_scale

    def pass_time(self, n: int | None = None) -> float:
        """Pass time (s) at absolute input sample ``n`` (default: the next sample)."""
        n = self.nitems_read(0) if n is None else n
        return self._t0 + n / self.sample_rate * self.time_scale

    def work(self, input_items, output_items):
        x, y = input_items[0], output_items[0]
        n = len(x)
        n0 = self.nitems_read(0)
        # amplitudes on a grid of STEP samples (absolute indices: chunking does not matter)
        g0 = (n0 // self.STEP) * self.STEP
        grid = np.arange(g0, n0 + n + self.STEP, self.STEP)
        with self._lock:
            t0, ts = self._t0, self.time_scale
            a_g, s_g = self.dyn.amplitudes(t0 + grid / self.sample_rate * ts)
        pos = np.arange(n0, n0 + n, dtype=float)
        a = np.interp(pos, grid, a_g).astype(np.float32)
        np.multiply(x, a, out=y)
        if len(input_items) > 1:
            s = np.interp(pos, grid, s_g).astype(np.float32)
            y += input_items[1] * s
        first = -(-n0 // self.TRACE_EVERY) * self.TRACE_EVERY
        for k in range(first, n0 + n, self.TRACE_EVERY):
            i = int(np.searchsorted(grid, k))
            gdb = 10.0 * math.log10(max(float(a_g[min(i, len(a_g) - 1)]) ** 2
                                        + float(s_g[min(i, len(s_g) - 1)]) ** 2, 1e-30))
            self.trace.append((t0 + k / self.sample_rate * ts, gdb))
        if len(self.trace) > 20000:
            del self.trace[:-20000]
        return n


class sat_channel(gr.hier_block2):
    """A satellite profile's dynamics (see the module doc): scatter fading, line of sight and
    slow gain, residual Doppler sweep. The static part of the Doppler (``doppler_offset_hz``) is
    left to ``channel_model``'s frequency offset, as every other profile's CFO."""

    def __init__(self, profile: RadioProfile, seed: int = 0, time_scale: float = 1.0):
        gr.hier_block2.__init__(self, "medjscc_sat_channel", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        from gnuradio import analog, blocks, channels

        fs = float(profile.sample_rate_hz)
        self.profile = profile
        self.dynamics = SatDynamics(profile, seed)
        self.combine = sat_combine(self.dynamics, fs, time_scale)
        self._blocks = [self.combine]
        self.fading = None
        if self.dynamics.has_scatter:
            # unit-power Rayleigh scatter; the LOS is added by sat_combine (K and power vary in time)
            self.fading = channels.fading_model(8, profile.fdts, False, 0.0, int(seed) + 1)
            self.connect(self, (self.combine, 0))
            self.connect(self, self.fading, (self.combine, 1))
            self._blocks.append(self.fading)
        else:
            self.connect(self, self.combine)
        last = self.combine
        self.sweep = None
        if profile.doppler_sweep_hz > 0:
            # residual Doppler: a triangle between +-sweep at |df/dt| = rate (starts at +sweep,
            # falling); frequency_modulator_fc integrates it into the phasor exp(j 2 pi int f dt)
            a = profile.doppler_sweep_hz
            self.sweep_period_s = 4.0 * a / profile.doppler_rate_hz_s
            self.sweep_src = analog.sig_source_f(fs, analog.GR_TRI_WAVE, 1.0 / self.sweep_period_s, 2 * a, -a)
            self.fm = analog.frequency_modulator_fc(2 * math.pi / fs)
            self.sweep = blocks.multiply_cc()
            self.connect(self.sweep_src, self.fm, (self.sweep, 1))
            self.connect(self.combine, (self.sweep, 0))
            self._blocks += [self.sweep_src, self.fm, self.sweep]
            last = self.sweep
        self.connect(last, self)

    def pass_time(self) -> float:
        return self.combine.pass_time()


def static_doppler_subcarriers(profile: RadioProfile, fft_len: int) -> float:
    """``doppler_offset_hz`` in subcarrier spacings (fs / fft_len) of the profile's sample rate."""
    return profile.doppler_offset_hz * fft_len / profile.sample_rate_hz


__all__ = ["LeoPass", "SatDynamics", "sat_combine", "sat_channel", "static_doppler_subcarriers"]
