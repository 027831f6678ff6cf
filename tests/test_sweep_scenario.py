"""``medjscc sweep --scenario leo_pass`` (issue #18 item 3): images over a LEO pass, Med-JSCC and the
digital envelope told the same late SNR feedback (evaluation/scenario.py)."""
import csv
import json
import math

import numpy as np
import pytest

from gnuradio.medjscc.errors import InputError
from gnuradio.medjscc.evaluation import scenario as sc


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("scimgs")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    size = 128
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(2):
        img = 120 + 70 * np.sin(6 * x + i) * np.cos(4 * y) + 40 * np.exp(-((x - .5) ** 2 + (y - .4) ** 2) / .02)
        img = np.clip(img, 0, 255).astype(np.uint8)
        mask = ((x - .3) ** 2 / .03 + (y - .5) ** 2 / .1 < 1) | ((x - .7) ** 2 / .03 + (y - .5) ** 2 / .1 < 1)
        Image.fromarray(img).save(root / "images" / f"img{i}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"img{i}.png")
    return root


def test_two_images_both_methods_same_snr_trace(images, tmp_path):
    spec = sc.ScenarioSpec(images=2, policies=["instant", "floor"], data=str(images), random_codecs=True,
                           image_interval_ms=20.0, delay_ms=0.0)
    res = sc.run_scenario(spec, tmp_path / "o", plots=True)
    assert len(res.rows) == 2 * 2 * 2
    with (tmp_path / "o" / "scenario.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and list(rows[0]) == sc.SCENARIO_COLUMNS
    assert (tmp_path / "o" / "plots" / "scenario_leo_pass.png").stat().st_size > 0
    summary = json.loads((tmp_path / "o" / "scenario_summary.json").read_text())
    assert summary["settings"]["random_init_codecs"] is True and len(summary["summary"]) == 4
    for k in range(2):
        for policy in spec.policies:
            pair = [r for r in res.rows if r["index"] == k and r["policy"] == policy]
            assert {r["method"] for r in pair} == {"medjscc", "digital-envelope"}
            # the same channel SNR and the same fed-back / used SNR for both methods
            assert pair[0]["snr_true_db"] == pair[1]["snr_true_db"]
            assert pair[0]["snr_used_db"] == pair[1]["snr_used_db"]
            assert (pair[0]["snr_fed_db"] == pair[1]["snr_fed_db"]
                    or (math.isnan(pair[0]["snr_fed_db"]) and math.isnan(pair[1]["snr_fed_db"])))
    env = [r for r in res.rows if r["method"] == "digital-envelope"]
    assert all("+" in r["mcs"] for r in env)
    neural = [r for r in res.rows if r["method"] == "medjscc"]
    assert all(r["model_sha256"] == "random-init" for r in neural)
    # two images spread over the pass: at a quarter and three quarters of it, the zenith between
    t = [r["pass_t_s"] for r in neural if r["policy"] == "instant"]
    period = res.settings["period_s"]
    assert t == pytest.approx([period / 4, 3 * period / 4])
    # instant feedback, no delay: image 1 is told the SNR measured at its slot start, not the design
    im1 = [r for r in neural if r["index"] == 1 and r["policy"] == "instant"][0]
    tl = sc.Timeline(sc.dynamics("leo_pass"), 10.0, 2, 0.02)
    t_meas = math.floor(0.02 / sc.FEEDBACK_EVERY_S) * sc.FEEDBACK_EVERY_S    # the newest frame's estimate
    assert im1["snr_used_db"] == pytest.approx(float(tl.snr_at(t_meas)[0]), abs=1e-9)
    assert im1["snr_used_db"] != pytest.approx(10.0, abs=0.5)


def test_feedback_delay_shifts_the_snr_the_cau_is_told():
    tl = sc.Timeline(sc.dynamics("leo_pass"), 10.0, 24, 0.02)
    now0 = sc.fed_back_trace("instant", tl, 0.0, 10.0)
    late = sc.fed_back_trace("instant", tl, 30.0, 10.0)
    grid = sc.FEEDBACK_EVERY_S
    for k in range(3, 24):
        start = tl.slot_start(k)
        # newest estimate usable 30 ms after it was measured: the grid point at or before start - 30 ms
        t_meas = math.floor((start - 0.030) / grid + 1e-9) * grid
        assert late[k][0] == pytest.approx(float(tl.snr_at(t_meas)[0]), abs=1e-9)
        assert late[k][1] >= 0.030 - 1e-9 and now0[k][1] < grid + 1e-9
        assert late[k][2] == late[k][0]      # instant: the estimate as it is
    diff = np.array([now0[k][2] - late[k][2] for k in range(3, 24)])
    # on the rising half of the pass the late estimate is lower, on the falling half higher
    assert diff[:6].min() > 0.2 and diff[-6:].max() < -0.2
    # before any estimate is usable, the design SNR
    assert late[0] == (None, None, 10.0)


def test_floor_never_encodes_below_the_design():
    tl = sc.Timeline(sc.dynamics("leo_pass"), 10.0, 24, 0.02)
    floor = sc.fed_back_trace("floor", tl, 30.0, 10.0)
    inst = sc.fed_back_trace("instant", tl, 30.0, 10.0)
    assert all(f[2] == max(10.0, i[2]) for f, i in zip(floor, inst))
    assert any(i[2] < 9.0 for i in inst) and any(i[2] > 11.0 for i in inst)


def test_pass_link_same_draws_and_rician_power():
    link = sc.PassLink(10.0, 10 ** 0.8)
    x = np.ones(6000, np.complex64)
    y1, h1, n0 = link._transmit(x, [1, 2, 3, 4])
    y2, h2, _ = link._transmit(x[:2000], [1, 2, 3, 4])
    assert np.array_equal(h1[:2000], h2) and np.allclose(y1[:2000], y2)    # a prefix of the same draws
    big = sc.PassLink(10.0, 10 ** 0.8)._transmit(np.ones(1536 * 400), [5])[1]
    assert np.mean(np.abs(big) ** 2) == pytest.approx(1.0, abs=0.08)
    # K = |LOS|^2 / scatter power: the LOS part is the mean gain
    k_est = abs(big.mean()) ** 2 / np.var(big)
    assert 10 * math.log10(k_est) == pytest.approx(8.0, abs=0.8)


def test_errors():
    with pytest.raises(InputError, match="scenario"):
        sc.ScenarioSpec(scenario="clean").validate()
    with pytest.raises(InputError, match="unknown --scenario"):
        sc.ScenarioSpec(scenario="nope").validate()
    with pytest.raises(InputError, match="methods"):
        sc.ScenarioSpec(methods=["j2k-ldpc"]).validate()
    with pytest.raises(InputError, match="feedback-policy"):
        sc.ScenarioSpec(policies=["late"]).validate()


def test_cli_scenario_json(images, tmp_path, capsys):
    from gnuradio.medjscc.cli import main

    rc = main(["sweep", "--scenario", "leo_pass", "--methods", "digital-envelope", "--images", "2", "--snr", "10",
               "--feedback-delay-ms", "30", "--feedback-policy", "floor", "--data", str(images),
               "--out", str(tmp_path / "c"), "--no-plots", "--json"])
    assert rc == 0
    lines = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    per_image = [d for d in lines if d.get("kind") != "summary"]
    assert len(per_image) == 2 and all(d["policy"] == "floor" and d["delay_ms"] == 30.0 for d in per_image)
    assert per_image[0]["snr_used_db"] == 10.0 and per_image[0]["snr_fed_db"] is None   # nothing usable yet
    assert lines[-1]["kind"] == "summary" and lines[-1]["n"] == 2
    rc = main(["sweep", "--scenario", "leo_pass", "--snr", "0:20:5", "--data", str(images),
               "--out", str(tmp_path / "d")])
    assert rc == 1 and "one --snr" in capsys.readouterr().err
