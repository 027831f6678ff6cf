"""QA: the satellite presets build from gr-channels/analog blocks and do what the YAML says on a
tone: residual Doppler sweep (LEO), static Doppler (GEO), received power following the pass /
the rain fade, and a switchable channel reaching them and coming back."""
from dataclasses import replace

import numpy as np
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import blocks, gr  # noqa: E402

from gnuradio.medjscc.blocks.channel_preset import channel_preset  # noqa: E402
from gnuradio.medjscc.blocks.radio_profiles import get_radio_profile  # noqa: E402
from gnuradio.medjscc.blocks.sat_channel import SatDynamics  # noqa: E402

FS = 1e6


def _run(ch, n):
    tb = gr.top_block()
    src = blocks.vector_source_c(np.ones(n, np.complex64))
    snk = blocks.vector_sink_c()
    tb.connect(src, ch, snk)
    tb.run()
    return np.array(snk.data(), np.complex64)


def _freq_hz(y, step=2000):
    """Mean instantaneous frequency per block of ``step`` samples."""
    ph = np.unwrap(np.angle(y))
    return np.diff(ph[::step]) / (2 * np.pi * step) * FS


def test_leo_pass_sweeps_doppler_and_follows_the_pass_gain():
    p = get_radio_profile("leo_pass")
    n = 600_000
    ts = SatDynamics(p).period_s / (n / FS)          # one whole pass in 0.6 s of samples
    ch = channel_preset("leo_pass", 300.0, time_scale=ts, seed=2)
    y = _run(ch, n)
    assert len(y) > n - 100
    f = _freq_hz(y)
    # starts at +sweep and falls at the documented rate (Rician scatter adds a little jitter)
    assert f[:5].mean() == pytest.approx(p.doppler_sweep_hz, abs=30)
    slope = np.polyfit(np.arange(len(f)) * 2000 / FS, f, 1)[0]
    assert slope == pytest.approx(-p.doppler_rate_hz_s, rel=0.1)
    trace = ch.sat_gain_trace()
    assert trace and trace[-1][0] == pytest.approx(ts * n / FS, rel=0.02)
    # the pass's received power, without the scatter (it does not average out over a few ms):
    # every sample at the geometry's gain
    los_only = replace(p, fading="none", rician_k_db_horizon=None, rician_k_db_zenith=None)
    y = _run(channel_preset(los_only, 300.0, time_scale=ts, seed=2), n)
    g = 10 * np.log10(np.abs(y[100:-100]) ** 2)
    want = SatDynamics(los_only).gain_db(np.arange(100, len(y) - 100) / FS * ts)
    np.testing.assert_allclose(g[::101], want[::101], atol=0.05)
    assert g.max() - g.min() == pytest.approx(10.2, abs=0.2)


def test_geo_link_static_doppler_and_rain_ramp():
    p = get_radio_profile("geo_link")
    n = 400_000
    ts = SatDynamics(p).period_s / (n / FS)
    ch = channel_preset("geo_link", 300.0, time_scale=ts, seed=2)
    y = _run(ch, n)
    f = _freq_hz(y[1000:])
    np.testing.assert_allclose(f, p.doppler_offset_hz, atol=5)
    g = 10 * np.log10(np.abs(y[1000:n - 1000]) ** 2)
    t = (np.arange(1000, n - 1000)) / FS * ts
    np.testing.assert_allclose(g[::997], SatDynamics(p).gain_db(t[::997]), atol=0.1)
    assert g.min() == pytest.approx(-p.fade_depth_db, abs=0.1)


def test_switchable_channel_reaches_the_satellite_presets_and_returns():
    ch = channel_preset("awgn", 300.0, switchable=True, seed=1)
    ch.set_preset("geo_link")
    assert ch.preset == "geo_link" and ch.fading is not None
    y = _run(ch, 50_000)
    np.testing.assert_allclose(_freq_hz(y[1000:]), 12000.0, atol=5)
    ch2 = channel_preset("awgn", 300.0, switchable=True, seed=1)
    ch2.set_preset("lms_shadowed")
    ch2.set_preset("awgn")
    y2 = _run(ch2, 50_000)
    np.testing.assert_allclose(np.abs(y2[100:-100]), 1.0, atol=1e-3)   # neutral again


def test_time_scale_must_be_positive():
    from gnuradio.medjscc.errors import InputError

    with pytest.raises(InputError, match="time_scale must be > 0"):
        channel_preset("leo_pass", 10.0, time_scale=0)
