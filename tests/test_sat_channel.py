"""Satellite presets (issue #18): the profiles' documented numbers, the pure dynamics (pass
geometry, rain fade, Loo/Markov shadowing) and the YAML validation of the satellite keys."""
import math

import numpy as np
import pytest
import yaml

from gnuradio.medjscc.blocks.radio_profiles import get_radio_profile, parse_profile
from gnuradio.medjscc.blocks.sat_channel import LeoPass, SatDynamics
from gnuradio.medjscc.errors import InputError


def test_leo_geometry_matches_the_documented_figures():
    leo = LeoPass(600.0, 10.0)
    t = np.linspace(0, leo.duration_s, 2001)
    d, el = leo.range_km(t), leo.elevation_deg(t)
    assert d.min() == pytest.approx(600.0, abs=0.5)               # zenith mid-pass
    assert el[0] == pytest.approx(10.0, abs=1e-6) and el[1000] == pytest.approx(90.0, abs=1e-6)
    assert 20 * math.log10(d.max() / d.min()) == pytest.approx(10.2, abs=0.1)
    assert 480 < leo.duration_s < 540                               # ~8.5 min above 10 deg


def test_leo_pass_gain_averages_0db_and_k_grows_with_elevation():
    p = get_radio_profile("leo_pass")
    dyn = SatDynamics(p)
    t = np.linspace(0, dyn.period_s, 5001)
    g = dyn.gain_db(t)
    assert np.mean(g) == pytest.approx(0.0, abs=0.05)              # snr_db = pass average
    assert g.max() - g.min() == pytest.approx(10.2, abs=0.2)
    a, s = dyn.amplitudes(t)
    k_db = 10 * np.log10(a ** 2 / s ** 2)
    assert k_db[0] == pytest.approx(7.0, abs=0.01) and k_db[2500] == pytest.approx(17.0, abs=0.01)
    assert np.all(np.diff(k_db[:2500]) >= -1e-9)                    # rising to zenith


def test_rain_fade_is_a_ramp_at_the_given_slope():
    p = get_radio_profile("geo_link")
    dyn = SatDynamics(p)
    assert dyn.period_s == pytest.approx(30 + 2 * 6.0 / 0.1)
    g = dyn.gain_db(np.array([0.0, 29.9, 40.0, 60.0, 90.0, 120.0, 150.0 + 40.0]))
    np.testing.assert_allclose(g, [0, 0, -1.0, -3.0, -6.0, -3.0, -1.0], atol=1e-9)


def test_lms_visits_its_states_with_their_loo_levels():
    p = get_radio_profile("lms_shadowed")
    dyn = SatDynamics(p, seed=3)
    t = np.arange(0, 600.0, 0.05)
    g = np.concatenate([dyn.gain_db(t[i:i + 500]) for i in range(0, len(t), 500)])
    assert set(dyn.states_visited) == {0, 1, 2}
    # time share of the deep-shadow level (< -10 dB) near its stationary share
    share = dyn._stationary_share()
    assert np.mean(g < -10) == pytest.approx(share[2], abs=0.08)
    assert np.median(g) == pytest.approx(0.0, abs=1.0)             # mostly line of sight
    # the same seed gives the same channel whatever the chunking
    dyn2 = SatDynamics(p, seed=3)
    g2 = np.concatenate([dyn2.gain_db(t[i:i + 37]) for i in range(0, len(t), 37)])
    np.testing.assert_allclose(g, g2, atol=1e-9)


def test_doppler_maps_onto_the_subcarrier_grid():
    leo, geo = get_radio_profile("leo_pass"), get_radio_profile("geo_link")
    spacing = 1e6 / 64
    assert leo.doppler_sweep_hz / spacing < 4 and geo.doppler_offset_hz / spacing < 4   # CFO search +-4
    assert 100 <= leo.doppler_rate_hz_s <= 1000 and 1000 <= leo.doppler_sweep_hz <= 10000


BASE = {"kind": "satellite", "description": "d", "source": "s"}
LMS = {"gain_profile": "lms", "fading": "rician", "doppler_hz": 10,
       "lms_states": [{"name": "a", "los_db": 0, "los_std_db": 1, "mp_db": -10, "mean_s": 1},
                      {"name": "b", "los_db": -9, "los_std_db": 1, "mp_db": -15, "mean_s": 1}],
       "lms_transitions": [[0, 1], [1, 0]]}


@pytest.mark.parametrize("extra, message", [
    ({"gain_profile": "meo"}, "gain_profile must be one of none, leo_pass, rain_fade, lms"),
    ({"doppler_sweep_hz": 3000}, "needs both doppler_sweep_hz > 0 and doppler_rate_hz_s > 0"),
    ({"gain_profile": "rain_fade", "fade_depth_db": 3}, "rain_fade needs fade_depth_db > 0 and fade_rate_db_s > 0"),
    ({"rician_k_db_horizon": 5}, "give both rician_k_db_horizon and rician_k_db_zenith"),
    ({"gain_profile": "lms"}, "gain_profile lms needs lms_states"),
    (dict(LMS, lms_transitions=[[0.5, 0.5], [1, 0]]), r"lms_transitions\[0\] must have 0 on the diagonal"),
    (dict(LMS, lms_transitions=[[0, 1]]), "must be a 2x2 list"),
    (dict(LMS, lms_states=[{"name": "a"}, {"name": "b"}]), r"lms_states\[0\]: missing 'los_db'"),
    (dict(LMS, fading="rayleigh"), "gain_profile lms needs flat fading: rician"),
])
def test_bad_satellite_keys_are_one_clear_line(extra, message):
    with pytest.raises(InputError, match=message):
        parse_profile("p", {**BASE, **extra})


def test_a_valid_lms_profile_parses():
    p = parse_profile("p", yaml.safe_load(yaml.safe_dump({**BASE, **LMS})))
    assert [s.name for s in p.lms_states] == ["a", "b"] and p.is_satellite
