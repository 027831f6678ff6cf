"""Radio impairment profiles: the shipped YAML loads and validates, mistakes are one clear line."""
import math
from pathlib import Path

import pytest
import yaml

from gnuradio.medjscc.blocks.radio_profiles import (RadioProfile, get_radio_profile,
                                                    load_radio_profiles, parse_profile)
from gnuradio.medjscc.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hw_configs" / "radio_profiles.yaml"
HARDWARE = ("b200_pair_2g4", "n210_wbx", "x310_shared_ref", "link_5g8")


def test_every_shipped_profile_loads_with_units_applied():
    profiles = load_radio_profiles()
    assert load_radio_profiles(SHIPPED) == profiles
    assert "clean" in profiles and set(HARDWARE) <= set(profiles)
    for name, p in profiles.items():
        assert isinstance(p, RadioProfile) and p.name == name
        assert p.description and p.source
        if p.kind == "hardware":
            assert p.tx_amplitude is not None and p.center_freq_hz > 1e8
    clean = profiles["clean"]
    assert (clean.tx_amplitude, clean.cfo_subcarriers, clean.fading, clean.taps) == (None, 0.0, "none", ())
    b200 = profiles["b200_pair_2g4"]
    # 4 ppm apart at 2.45 GHz in 15.625 kHz subcarriers (1 Msps / 64)
    assert b200.cfo_subcarriers == pytest.approx(4e-6 * 2.45e9 / (1e6 / 64), abs=0.01)
    assert (b200.sro_ppm, b200.tx_amplitude) == (4.0, 0.25)
    assert profiles["link_5g8"].cfo_subcarriers > 2 * profiles["b200_pair_2g4"].cfo_subcarriers
    assert profiles["x310_shared_ref"].cfo_subcarriers < 0.01
    assert profiles["rayleigh_100hz"].fdts == pytest.approx(1e-4)
    assert profiles["rician_k3_100hz"].rician_k == 3.0
    assert [t.delay for t in profiles["multipath_3tap"].taps] == [0, 3, 8]
    assert get_radio_profile("cfo_1p5").cfo_subcarriers == 1.5


def _write(tmp_path, profile: dict, name="p") -> Path:
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump({"profiles": {name: profile}}))
    return path


BASE = {"kind": "impairment", "description": "d", "source": "s"}


@pytest.mark.parametrize("extra, message", [
    ({"cfo_subcarrier": 1.0}, r"'p': unknown key 'cfo_subcarrier' \(known keys: .*cfo_subcarriers"),
    ({"tx_amplitude": 0}, "'p': tx_amplitude must be > 0.0"),
    ({"sro_ppm": "50ppm"}, "'p': sro_ppm must be a finite number, got '50ppm'"),
    ({"kind": "radio"}, "'p': kind must be one of hardware, impairment, reference"),
    ({"fading": "rayleigh"}, "'p': fading rayleigh needs doppler_hz > 0"),
    ({"rician_k": 3.0, "fading": "rayleigh", "doppler_hz": 10}, "rician_k needs fading: rician"),
    ({"pa_beta": -0.3}, "pa_beta needs tx_amplitude"),
    ({"taps": [{"delay": 1.5}]}, r"taps\[0\]: delay must be a non-negative integer"),
    ({"taps": [{"delay": 0, "gain": 1}]}, r"taps\[0\]: unknown key 'gain'"),
])
def test_bad_profiles_are_one_clear_line(tmp_path, extra, message):
    path = _write(tmp_path, BASE | extra)
    with pytest.raises(InputError, match=message) as e:
        load_radio_profiles(path)
    assert "\n" not in str(e.value) and str(path.resolve()) in str(e.value)


def test_missing_fields_file_and_unknown_name(tmp_path):
    with pytest.raises(InputError, match="missing 'source'"):
        parse_profile("p", {"kind": "impairment", "description": "d"})
    with pytest.raises(InputError, match="not found"):
        load_radio_profiles(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles: [1, 2]\n")
    with pytest.raises(InputError, match="one top-level mapping"):
        load_radio_profiles(bad)
    with pytest.raises(InputError, match=r"unknown radio profile 'b201'.*b200_pair_2g4"):
        get_radio_profile("b201")


def test_valid_custom_profile_round_trip(tmp_path):
    path = _write(tmp_path, BASE | {"fading": "rician", "rician_k": 2, "doppler_hz": 50,
                                    "sample_rate_hz": 2e6, "taps": [{"delay": 0}, {"delay": 2, "gain_db": -3}]})
    p = load_radio_profiles(path)["p"]
    assert p.fdts == pytest.approx(25e-6) and p.rician_k == 2.0 and p.taps[1].gain_db == -3.0
    assert math.isfinite(p.fdts) and p.is_ideal_tx
