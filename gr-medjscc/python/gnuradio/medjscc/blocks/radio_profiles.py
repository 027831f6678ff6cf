"""Named radio impairment profiles (``hw_configs/radio_profiles.yaml``) as dataclasses.

    from gnuradio.medjscc.blocks.radio_profiles import load_radio_profiles, get_radio_profile
    p = get_radio_profile("b200_pair_2g4")      # RadioProfile(cfo_subcarriers=0.63, ...)

Pure Python + PyYAML (no GNU Radio): ``channel_preset`` turns a profile into gr-channels blocks.
This module is the only reader of the YAML file; every problem (unknown key, bad value, unknown
profile name) is one ``InputError`` line naming the file and the profile. Units are documented at
the top of the YAML file and on the ``RadioProfile`` fields.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

from ..errors import InputError

PROFILE_FILE = "radio_profiles.yaml"
KINDS = ("hardware", "impairment", "reference", "satellite")
FADING = ("none", "rayleigh", "rician")
TAP_KEYS = ("delay", "gain_db", "phase_deg")
# satellite dynamics (blocks/sat_channel.py): the slow received-power profile of a profile
GAIN_PROFILES = ("none", "leo_pass", "rain_fade", "lms")
LMS_KEYS = ("name", "los_db", "los_std_db", "mp_db", "mean_s")


@dataclass(frozen=True)
class Tap:
    delay: int            # samples
    gain_db: float = 0.0
    phase_deg: float = 0.0


@dataclass(frozen=True)
class LmsState:
    """One state of the land-mobile-satellite Markov chain, a Loo triplet (dB relative to the
    unobstructed line of sight) and its mean duration (exponential holding time)."""
    name: str
    los_db: float         # Loo alpha: mean of the LOS amplitude, dB
    los_std_db: float     # Loo psi: standard deviation of the LOS amplitude, dB
    mp_db: float          # Loo MP: diffuse multipath power, dB
    mean_s: float         # mean time in the state, s


@dataclass(frozen=True)
class RadioProfile:
    """One impairment profile; absent impairments are ideal (0 / None / ``none``)."""

    name: str
    kind: str
    description: str
    source: str
    center_freq_hz: float | None = None
    sample_rate_hz: float = 1.0e6          # the rate doppler_hz refers to
    tx_amplitude: float | None = None      # RMS vs DAC full scale; None = ideal linear TX
    pa_beta: float = 0.0                   # distortion_3_gen: y = x + beta |x|^2 x (full-scale units)
    cfo_subcarriers: float = 0.0           # subcarrier spacings
    sro_ppm: float = 0.0                   # ppm
    phase_noise_deg_rms: float = 0.0       # degrees rms
    phase_noise_alpha: float = 0.1         # phase_noise_gen IIR coefficient
    iq_gain_db: float = 0.0                # dB (iqbal_gen magnitude)
    iq_phase_deg: float = 0.0              # degrees (iqbal_gen phase)
    dc_offset_dbc: float | None = None     # dB relative to the mean signal power; None = none
    fading: str = "none"                   # none | rayleigh | rician
    doppler_hz: float = 0.0                # Hz, maximum Doppler
    rician_k: float = 0.0                  # linear
    taps: tuple[Tap, ...] = field(default_factory=tuple)
    frame_loss: float = 0.0                # probability that a whole burst (frame) is lost
    # satellite dynamics (documented in the YAML header; built by blocks/sat_channel.py)
    doppler_offset_hz: float = 0.0         # static (residual) Doppler, Hz
    doppler_sweep_hz: float = 0.0          # residual Doppler swings +- this around the offset, Hz
    doppler_rate_hz_s: float = 0.0         # |d f / d t| of that sweep, Hz/s
    gain_profile: str = "none"             # none | leo_pass | rain_fade | lms
    altitude_km: float = 600.0             # leo_pass: circular orbit altitude
    min_elevation_deg: float = 10.0        # leo_pass: the pass runs between this elevation and 90 deg
    rician_k_db_horizon: float | None = None   # leo_pass: K (dB) at min_elevation_deg
    rician_k_db_zenith: float | None = None    # leo_pass: K (dB) at 90 deg (linear in elevation between)
    fade_depth_db: float = 0.0             # rain_fade: deepest fade, dB
    fade_rate_db_s: float = 0.0            # rain_fade: fade slope, dB/s
    fade_start_s: float = 0.0              # rain_fade: clear sky before the fade begins, s
    lms_states: tuple[LmsState, ...] = field(default_factory=tuple)
    lms_transitions: tuple[tuple[float, ...], ...] = field(default_factory=tuple)  # row: next state
    lms_corr_s: float = 0.5                # lms: correlation time of the LOS shadowing within a state

    @property
    def fdts(self) -> float:
        """Normalised maximum Doppler fD*Ts of gr-channels' fading models."""
        return self.doppler_hz / self.sample_rate_hz

    @property
    def is_satellite(self) -> bool:
        """Has time-varying dynamics (a gain profile or a Doppler sweep)."""
        return self.gain_profile != "none" or (self.doppler_sweep_hz > 0 and self.doppler_rate_hz_s > 0)

    @property
    def is_ideal_tx(self) -> bool:
        return self.tx_amplitude is None and self.pa_beta == 0.0


_FIELDS = {f.name for f in fields(RadioProfile)} - {"name"}
_REQUIRED = ("kind", "description", "source")


def profiles_path() -> Path:
    from .. import paths

    try:
        return paths.hw_configs_dir() / PROFILE_FILE
    except FileNotFoundError as e:
        raise InputError(str(e)) from None


def _num(where: str, key: str, value, lo=-math.inf, hi=math.inf, lo_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: {key} must be a finite number, got {value!r}")
    v = float(value)
    if v < lo or v > hi or (lo_open and v == lo):
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise InputError(f"{where}: {key} must be {bound} and <= {hi}, got {value!r}")
    return v


def _check_entry(where: str, entry, keys, required=()) -> None:
    """One list entry of a profile (a tap, an LMS state): a mapping of known keys, none missing."""
    if not isinstance(entry, dict):
        raise InputError(f"{where} must be a mapping with keys {', '.join(keys)}")
    unknown = sorted(set(entry) - set(keys))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(keys)})")
    missing = [k for k in required if k not in entry]
    if missing:
        raise InputError(f"{where}: missing {missing[0]!r} (keys: {', '.join(keys)})")


def _taps(where: str, value) -> tuple[Tap, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: taps must be a non-empty list of {{delay, gain_db, phase_deg}}")
    out = []
    for i, t in enumerate(value):
        w = f"{where}: taps[{i}]"
        _check_entry(w, t, TAP_KEYS)
        if "delay" not in t or isinstance(t["delay"], bool) or not isinstance(t["delay"], int) or t["delay"] < 0:
            raise InputError(f"{w}: delay must be a non-negative integer number of samples, got {t.get('delay')!r}")
        out.append(Tap(int(t["delay"]), _num(w, "gain_db", t.get("gain_db", 0.0), -60.0, 20.0),
                       _num(w, "phase_deg", t.get("phase_deg", 0.0), -360.0, 360.0)))
    if len({t.delay for t in out}) != len(out):
        raise InputError(f"{where}: taps have repeated delays")
    return tuple(out)


def _lms(where: str, states, transitions) -> tuple[tuple[LmsState, ...], tuple[tuple[float, ...], ...]]:
    if not isinstance(states, list) or len(states) < 2:
        raise InputError(f"{where}: lms_states must be a list of at least 2 states {{{', '.join(LMS_KEYS)}}}")
    out = []
    for i, st in enumerate(states):
        w = f"{where}: lms_states[{i}]"
        _check_entry(w, st, LMS_KEYS, required=LMS_KEYS)
        out.append(LmsState(str(st["name"]), _num(w, "los_db", st["los_db"], -60.0, 10.0),
                            _num(w, "los_std_db", st["los_std_db"], 0.0, 20.0),
                            _num(w, "mp_db", st["mp_db"], -60.0, 10.0),
                            _num(w, "mean_s", st["mean_s"], 0.0, 1e5, lo_open=True)))
    n = len(out)
    if (not isinstance(transitions, list) or len(transitions) != n
            or any(not isinstance(r, list) or len(r) != n for r in transitions)):
        raise InputError(f"{where}: lms_transitions must be a {n}x{n} list of rows (one per state)")
    rows = []
    for i, r in enumerate(transitions):
        row = tuple(_num(f"{where}: lms_transitions[{i}]", "probability", v, 0.0, 1.0) for v in r)
        if row[i] != 0.0 or abs(sum(row) - 1.0) > 1e-6:
            raise InputError(f"{where}: lms_transitions[{i}] must have 0 on the diagonal (the holding time "
                             f"is mean_s) and sum to 1, got {list(row)}")
        rows.append(row)
    return tuple(out), tuple(rows)


def parse_profile(name: str, data, where: str = "radio profile") -> RadioProfile:
    """Validate one profile mapping (``where`` names the file in messages)."""
    where = f"{where} {name!r}"
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a mapping of keys to values")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(_FIELDS))})")
    missing = [k for k in _REQUIRED if not data.get(k)]
    if missing:
        raise InputError(f"{where}: missing {missing[0]!r}")
    kw = {"name": name}
    for k in ("description", "source"):
        if not isinstance(data[k], str):
            raise InputError(f"{where}: {k} must be text")
        kw[k] = data[k]
    if data["kind"] not in KINDS:
        raise InputError(f"{where}: kind must be one of {', '.join(KINDS)}, got {data['kind']!r}")
    kw["kind"] = data["kind"]
    ranges = {  # key: (lo, hi, lo_open)
        "center_freq_hz": (1e6, 100e9, False), "sample_rate_hz": (0.0, 1e9, True),
        "tx_amplitude": (0.0, 4.0, True), "pa_beta": (-10.0, 10.0, False),
        "cfo_subcarriers": (-16.0, 16.0, False), "sro_ppm": (-1000.0, 1000.0, False),
        "phase_noise_deg_rms": (0.0, 90.0, False), "phase_noise_alpha": (0.0, 1.0, True),
        "iq_gain_db": (-10.0, 10.0, False), "iq_phase_deg": (-45.0, 45.0, False),
        "dc_offset_dbc": (-200.0, 20.0, False), "doppler_hz": (0.0, 1e6, False),
        "rician_k": (0.0, 1e3, False), "frame_loss": (0.0, 0.9, False),
        "doppler_offset_hz": (-1e6, 1e6, False), "doppler_sweep_hz": (0.0, 1e6, False),
        "doppler_rate_hz_s": (0.0, 1e7, False), "altitude_km": (100.0, 50000.0, False),
        "min_elevation_deg": (0.0, 80.0, False), "rician_k_db_horizon": (-30.0, 40.0, False),
        "rician_k_db_zenith": (-30.0, 40.0, False), "fade_depth_db": (0.0, 60.0, False),
        "fade_rate_db_s": (0.0, 100.0, False), "fade_start_s": (0.0, 1e5, False),
        "lms_corr_s": (0.0, 1e4, True),
    }
    for k, (lo, hi, lo_open) in ranges.items():
        if k in data and data[k] is not None:
            kw[k] = _num(where, k, data[k], lo, hi, lo_open)
    fading = data.get("fading", "none")
    if fading not in FADING:
        raise InputError(f"{where}: fading must be one of {', '.join(FADING)}, got {fading!r}")
    kw["fading"] = fading
    if "taps" in data:
        kw["taps"] = _taps(where, data["taps"])
    gp = data.get("gain_profile", "none")
    if gp not in GAIN_PROFILES:
        raise InputError(f"{where}: gain_profile must be one of {', '.join(GAIN_PROFILES)}, got {gp!r}")
    kw["gain_profile"] = gp
    if ("lms_states" in data) != ("lms_transitions" in data) or (gp == "lms") != ("lms_states" in data):
        raise InputError(f"{where}: gain_profile lms needs lms_states and lms_transitions (and they need it)")
    if "lms_states" in data:
        kw["lms_states"], kw["lms_transitions"] = _lms(where, data["lms_states"], data["lms_transitions"])
    p = RadioProfile(**kw)
    if p.fading != "none" and p.doppler_hz <= 0:
        raise InputError(f"{where}: fading {p.fading} needs doppler_hz > 0")
    if p.fading == "none" and (p.doppler_hz or p.rician_k):
        raise InputError(f"{where}: doppler_hz / rician_k given but fading is none")
    if p.fading != "rician" and p.rician_k:
        raise InputError(f"{where}: rician_k needs fading: rician")
    if p.fdts >= 0.5:
        raise InputError(f"{where}: doppler_hz must be below half the sample rate")
    if (p.rician_k_db_horizon is None) != (p.rician_k_db_zenith is None):
        raise InputError(f"{where}: give both rician_k_db_horizon and rician_k_db_zenith")
    if p.rician_k_db_horizon is not None and (p.gain_profile != "leo_pass" or p.fading != "rician"):
        raise InputError(f"{where}: rician_k_db_horizon/zenith need gain_profile leo_pass and fading: rician")
    if p.gain_profile == "lms" and (p.fading != "rician" or p.taps):
        raise InputError(f"{where}: gain_profile lms needs flat fading: rician (its K and power follow the Loo state)")
    if p.gain_profile == "rain_fade" and not (p.fade_depth_db > 0 and p.fade_rate_db_s > 0):
        raise InputError(f"{where}: gain_profile rain_fade needs fade_depth_db > 0 and fade_rate_db_s > 0")
    if (p.doppler_sweep_hz > 0) != (p.doppler_rate_hz_s > 0):
        raise InputError(f"{where}: a Doppler sweep needs both doppler_sweep_hz > 0 and doppler_rate_hz_s > 0")
    if p.pa_beta and p.tx_amplitude is None:
        raise InputError(f"{where}: pa_beta needs tx_amplitude (the PA works in full-scale units)")
    return p


def parse_profiles(doc, where: str) -> dict[str, RadioProfile]:
    if not isinstance(doc, dict) or set(doc) != {"profiles"} or not isinstance(doc["profiles"], dict):
        raise InputError(f"{where} must hold one top-level mapping 'profiles: {{name: {{...}}}}'")
    out = {}
    for name, data in doc["profiles"].items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(f"{where}: profile name {name!r} must be a plain identifier")
        out[name] = parse_profile(name, data, where)
    if not out:
        raise InputError(f"{where} has no profiles")
    return out


@lru_cache(maxsize=8)
def _load(path_str: str, mtime: float) -> dict[str, RadioProfile]:
    import yaml

    path = Path(path_str)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise InputError(f"radio profiles {path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "syntax error"
        raise InputError(f"radio profiles {path} is not valid YAML: {first}") from None
    return parse_profiles(doc, f"radio profiles {path}")


def load_radio_profiles(path: str | Path | None = None) -> dict[str, RadioProfile]:
    """All profiles of ``path`` (default: the shipped ``hw_configs/radio_profiles.yaml``), in file order."""
    p = Path(path) if path is not None else profiles_path()
    if not p.is_file():
        raise InputError(f"radio profiles file not found: {p}")
    return dict(_load(str(p.resolve()), p.stat().st_mtime))


def radio_profile_names() -> tuple[str, ...]:
    return tuple(load_radio_profiles())


def get_radio_profile(name: str) -> RadioProfile:
    profiles = load_radio_profiles()
    if name not in profiles:
        raise InputError(f"unknown radio profile {name!r} (known: {', '.join(profiles)})")
    return profiles[name]
