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
KINDS = ("hardware", "impairment", "reference")
FADING = ("none", "rayleigh", "rician")
TAP_KEYS = ("delay", "gain_db", "phase_deg")


@dataclass(frozen=True)
class Tap:
    delay: int            # samples
    gain_db: float = 0.0
    phase_deg: float = 0.0


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

    @property
    def fdts(self) -> float:
        """Normalised maximum Doppler fD*Ts of gr-channels' fading models."""
        return self.doppler_hz / self.sample_rate_hz

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


def _taps(where: str, value) -> tuple[Tap, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: taps must be a non-empty list of {{delay, gain_db, phase_deg}}")
    out = []
    for i, t in enumerate(value):
        w = f"{where}: taps[{i}]"
        if not isinstance(t, dict):
            raise InputError(f"{w} must be a mapping with keys {', '.join(TAP_KEYS)}")
        unknown = sorted(set(t) - set(TAP_KEYS))
        if unknown:
            raise InputError(f"{w}: unknown key {unknown[0]!r} (known keys: {', '.join(TAP_KEYS)})")
        if "delay" not in t or isinstance(t["delay"], bool) or not isinstance(t["delay"], int) or t["delay"] < 0:
            raise InputError(f"{w}: delay must be a non-negative integer number of samples, got {t.get('delay')!r}")
        out.append(Tap(int(t["delay"]), _num(w, "gain_db", t.get("gain_db", 0.0), -60.0, 20.0),
                       _num(w, "phase_deg", t.get("phase_deg", 0.0), -360.0, 360.0)))
    if len({t.delay for t in out}) != len(out):
        raise InputError(f"{where}: taps have repeated delays")
    return tuple(out)


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
    p = RadioProfile(**kw)
    if p.fading != "none" and p.doppler_hz <= 0:
        raise InputError(f"{where}: fading {p.fading} needs doppler_hz > 0")
    if p.fading == "none" and (p.doppler_hz or p.rician_k):
        raise InputError(f"{where}: doppler_hz / rician_k given but fading is none")
    if p.fading != "rician" and p.rician_k:
        raise InputError(f"{where}: rician_k needs fading: rician")
    if p.fdts >= 0.5:
        raise InputError(f"{where}: doppler_hz must be below half the sample rate")
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
