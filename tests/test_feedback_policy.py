"""Late SNR feedback (issue #18): the CAU's policies on old estimates, by their arithmetic."""
import pytest

from gnuradio.medjscc.blocks.snr_feedback_policy import FeedbackPolicy, make_policy, predict_linear
from gnuradio.medjscc.errors import InputError


def test_delay_holds_each_estimate_until_it_is_due():
    p = FeedbackPolicy("instant", design_snr_db=10.0, delay_s=0.030)
    assert p.choose(0.0) == 10.0                       # nothing yet: the design SNR
    p.observe(4.0, now=0.0)
    p.observe(6.0, now=0.010)
    assert p.choose(0.029) == 10.0                     # the first is due at 30 ms
    assert p.choose(0.030) == 4.0
    assert p.choose(0.039) == 4.0 and p.choose(0.040) == 6.0
    assert p.last_age_s == pytest.approx(0.030)        # measured at arrival (no upstream delay)


def test_margin_and_fixed():
    m = FeedbackPolicy("margin", design_snr_db=10.0, margin_db=2.5)
    m.observe(8.0, now=1.0)
    assert m.choose(1.0) == pytest.approx(5.5)
    f = FeedbackPolicy("fixed", design_snr_db=7.0)
    f.observe(20.0, now=0.0)
    assert f.choose(5.0) == 7.0


def test_predict_extrapolates_a_ramp_to_now_from_measurement_times():
    # the SNR falls 1 dB per 10 ms; every estimate reached the CAU 30 ms after it was measured
    p = FeedbackPolicy("predict", design_snr_db=10.0, history=4, max_slope_db_s=1000, max_extrap_db=10)
    for k in range(6):
        p.observe(10.0 - k, now=0.030 + 0.010 * k, upstream_delay_s=0.030)   # measured at 10k ms
    # at now = 80 ms the last usable estimate (5 dB) is 30 ms old; the line says 2 dB now
    assert p.choose(0.080) == pytest.approx(2.0, abs=1e-9)
    inst = FeedbackPolicy("instant")
    for k in range(6):
        inst.observe(10.0 - k, now=0.030 + 0.010 * k, upstream_delay_s=0.030)
    assert inst.choose(0.080) == 5.0                   # what instant feedback would encode for


def test_predict_is_clipped_and_needs_two_points():
    pts = [(0.0, 10.0), (1.0, 0.0)]                    # -10 dB/s
    assert predict_linear(pts, 2.0) == pytest.approx(-10.0)
    assert predict_linear(pts, 2.0, max_slope_db_s=2.0) == pytest.approx(2.0)   # through the mean: 5 - 2 * 1.5
    assert predict_linear(pts, 2.0, max_extrap_db=3.0) == pytest.approx(-3.0)
    p = FeedbackPolicy("predict", margin_db=1.0)
    p.observe(8.0, now=0.0)
    assert p.choose(0.0) == 7.0                        # one point: margin only


def test_bad_policy_is_one_clear_line():
    with pytest.raises(InputError, match="feedback policy must be one of instant, margin, predict, floor, fixed"):
        make_policy("late", 10.0)
    with pytest.raises(InputError, match="delay_s must be in"):
        FeedbackPolicy("instant", delay_s=-1)


def test_floor_only_raises_the_encoding_snr_above_the_design():
    p = FeedbackPolicy("floor", design_snr_db=10.0, margin_db=1.0)
    p.observe(4.0, now=0.0)
    assert p.choose(0.0) == 10.0                       # a dip: stay at the design
    p.observe(15.0, now=0.1)
    assert p.choose(0.1) == 14.0                       # clearly better: newest - margin


def test_olla_learns_the_back_off_that_makes_a_tenth_of_the_images_fail():
    """Outer-loop link adaptation: a failed image adds 1 dB of back-off, a good one takes 1/9 dB
    away. A channel on which images fail whenever the encoding SNR is above 6 dB, fed back 9 dB
    (the estimate overstates what the codec's digital part sees): the back-off climbs to ~3 dB and
    then about a tenth of the images fail."""
    p = FeedbackPolicy("olla", design_snr_db=9.0, olla_step_db=1.0, olla_target=0.1)
    fails = []
    for k in range(400):
        p.observe(9.0, now=float(k))
        snr = p.choose(float(k))
        ok = snr <= 6.0
        fails.append(not ok)
        p.acknowledge(ok)
    assert sum(fails[:5]) >= 3                          # it starts 3 dB too high
    assert 0.05 <= sum(fails[200:]) / 200 <= 0.15      # then settles near the target share
    assert 2.5 <= p.olla_offset_db <= 4.0 and p.acks[0] + p.acks[1] == 400
    other = FeedbackPolicy("margin", design_snr_db=9.0, margin_db=1.0)
    other.observe(9.0, now=0.0)
    other.acknowledge(False)                            # counted, but only olla encodes with it
    assert other.choose(0.0) == 8.0 and other.acks == [0, 1]
    with pytest.raises(InputError):
        FeedbackPolicy("olla", olla_target=0.9)
