"""USRP hardware configurations (hw_configs/*.yaml) and UHD blocks built from them.

``load_hw_config(path)`` validates a YAML file against ``hw_configs/schema.json`` (jsonschema) and
raises ``HardwareError`` with one clear line naming the file and the offending key. ``usrp_sink``
/ ``usrp_source`` open the radio and turn UHD's "no devices found" into ``HardwareError``.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import HardwareError

SHIPPED = ("b200", "b210", "n210", "x310")


def hw_configs_dir() -> Path:
    from .. import paths

    try:
        folder = paths.hw_configs_dir()
    except FileNotFoundError as e:
        raise HardwareError(str(e)) from None
    if not (folder / "schema.json").is_file():
        raise HardwareError(f"{folder} has no schema.json")
    return folder


def resolve_hw_path(name_or_path: str | Path) -> Path:
    """A path, or a shipped config name (``b200`` -> hw_configs/b200.yaml)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    if str(name_or_path) in SHIPPED:
        return hw_configs_dir() / f"{name_or_path}.yaml"
    raise HardwareError(f"hw config file not found: {p} (shipped: {', '.join(SHIPPED)})")


def load_hw_config(name_or_path: str | Path) -> dict:
    """Load and validate a hardware config; returns the dict (with ``_path`` added)."""
    import jsonschema
    import yaml

    path = resolve_hw_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise HardwareError(f"hw config {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise HardwareError(f"hw config {path} must be a mapping of keys to values")
    schema = json.loads((hw_configs_dir() / "schema.json").read_text())
    known = set(schema["properties"])
    unknown = sorted(set(data) - known)
    if unknown:
        raise HardwareError(f"hw config {path}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(known))})")
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as e:
        where = ".".join(str(x) for x in e.absolute_path) or "(top level)"
        raise HardwareError(f"hw config {path}: {where}: {e.message}") from None
    data["_path"] = str(path)
    return data


def _stream_args():
    from gnuradio import uhd

    return uhd.stream_args(cpu_format="fc32", channels=[0])


def _open(kind: str, hw: dict):
    from gnuradio import uhd

    try:
        if kind == "tx":
            dev = uhd.usrp_sink(hw["args"], _stream_args(), "")
        else:
            dev = uhd.usrp_source(hw["args"], _stream_args())
    except RuntimeError as e:
        msg = str(e).splitlines()[0] if str(e) else "UHD error"
        if "No devices found" in str(e):
            raise HardwareError(f"no USRP found for device args {hw['args']!r} (hw config "
                                f"{hw.get('_path', '?')}); connect the radio or fix 'args'") from None
        raise HardwareError(f"cannot open USRP {hw['args']!r}: {msg}") from None
    try:
        if hw.get(f"{kind}_subdev"):
            dev.set_subdev_spec(hw[f"{kind}_subdev"], 0)
        dev.set_clock_source(hw["clock_source"], 0)
        if hw["time_source"] != "none":
            dev.set_time_source(hw["time_source"], 0)
        dev.set_samp_rate(float(hw["sample_rate_hz"]))
        if hw.get("lo_offset_hz"):
            dev.set_center_freq(uhd.tune_request(float(hw["center_freq_hz"]), float(hw["lo_offset_hz"])), 0)
        else:
            dev.set_center_freq(float(hw["center_freq_hz"]), 0)
        dev.set_gain(float(hw[f"{kind}_gain_db"]), 0)
        dev.set_antenna(hw[f"{kind}_antenna"], 0)
        if hw.get("bandwidth_hz"):
            dev.set_bandwidth(float(hw["bandwidth_hz"]), 0)
    except RuntimeError as e:
        raise HardwareError(f"USRP {hw['args']!r} rejected the settings of {hw.get('_path', '?')}: "
                            f"{str(e).splitlines()[0]}") from None
    return dev


def usrp_sink(hw: dict):
    """``uhd.usrp_sink`` configured from ``hw`` (bursts via tx_sob/tx_eob tags)."""
    return _open("tx", hw)


def usrp_source(hw: dict):
    """``uhd.usrp_source`` configured from ``hw``."""
    return _open("rx", hw)
