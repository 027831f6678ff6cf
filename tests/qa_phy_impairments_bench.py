"""bench/phy_impairments.py: a tiny run prints one valid JSON record per (profile, SNR)."""
import importlib.util
import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.gnuradio

KEYS = {"profile", "snr_db", "frames_sent", "frames_decoded", "images_decoded", "roi_psnr",
        "roi_psnr_clean", "psnr", "snr_est_db", "papr_db", "clip_fraction", "wall_s"}


def _bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "phy_impairments.py"
    spec = importlib.util.spec_from_file_location("phy_impairments", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tiny_bench_run_prints_json_records(capsys):
    bench = _bench()
    assert bench.main(["--json", "--images", "1", "--snr", "20", "--profiles", "clip_1p0"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [r["profile"] for r in rows] == ["clean", "clip_1p0"]   # the reference always runs first
    for r in rows:
        assert KEYS <= set(r), KEYS - set(r)
        assert r["snr_db"] == 20.0 and r["frames_sent"] >= 1
        assert 0 <= r["frames_decoded"] <= r["frames_sent"] and r["images_decoded"] in (0, 1)
        assert r["papr_db"] > 3.0 and r["wall_s"] >= 0
    clean, clip = rows
    assert clean["roi_psnr_clean"] == clean["roi_psnr"] == clip["roi_psnr_clean"]
    assert clean["images_decoded"] == 1 and clean["frames_decoded"] == clean["frames_sent"]
    assert abs(clean["snr_est_db"] - 20.0) < 1.5
    assert clean["clip_fraction"] == 0.0 and clip["clip_fraction"] > 0.01
    # same images and SNR: the PAPR is measured before the clip, so it barely moves
    assert clean["papr_db"] == pytest.approx(clip["papr_db"], abs=0.3)
    assert math.isfinite(clean["roi_psnr"]) and clean["roi_psnr"] > 25


def test_unknown_profile_is_one_line(capsys):
    assert _bench().main(["--json", "--profiles", "b201"]) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'b201'" in err and err.count("\n") == 1


def test_several_seeds_end_with_one_summary_per_row(capsys):
    bench = _bench()
    assert bench.main(["--json", "--images", "1", "--snr", "20", "--profiles", "clip_1p0", "--seeds", "3,4"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    runs, summary = rows[:4], rows[4:]
    assert [(r["seed"], r["profile"]) for r in runs] == [(3, "clean"), (3, "clip_1p0"), (4, "clean"), (4, "clip_1p0")]
    assert [(r["seed"], r["profile"]) for r in summary] == [("all", "clean"), ("all", "clip_1p0")]
    clip = summary[1]
    change = [r["roi_psnr"] - r["roi_psnr_clean"] for r in runs if r["profile"] == "clip_1p0"]
    assert clip["seeds"] == [3, 4] and clip["roi_change_db"] == pytest.approx(sum(change) / 2)
    assert clip["roi_change_min_db"] == pytest.approx(min(change)) and clip["roi_change_max_db"] == pytest.approx(max(change))
    assert clip["roi_change_db"] < 0 and summary[0]["roi_change_db"] == 0.0
    assert clip["frames_sent"] == sum(r["frames_sent"] for r in runs if r["profile"] == "clip_1p0")


def test_snr_loop_lets_the_hybrid_base_follow_the_effective_snr(capsys):
    """On the static 3-tap multipath at 8 dB the mean SNR overstates what the LDPC base sees: told
    the nominal SNR the hybrid loses its base on every image; with the effective SNR fed back
    (stop-and-wait) every image after the first decodes with its base."""
    bench = _bench()
    common = ["--json", "--images", "3", "--snr", "8", "--profiles", "multipath_3tap", "--model", "hybrid_softcast"]
    assert bench.main(common) == 0
    told = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()][1]
    assert bench.main(common + ["--snr-loop", "--feedback-estimate", "effective"]) == 0
    loop = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()][1]
    assert told["profile"] == loop["profile"] == "multipath_3tap"
    assert told["images_decoded"] == 0, told
    assert loop["images_decoded"] >= 2 and loop["tx_snr_db"] < 8.0 - 1.0, loop
    assert loop["roi_psnr"] > told["roi_psnr"] + 10.0


def test_two_layer_frames_count_the_images_shown_from_the_first_layer(capsys):
    """Told the nominal 15 dB on the 3-tap multipath, hybrid_layered's finer layer is lost and its
    first layer shown: counted apart, among the decoded images (README "The hybrid codec on the air")."""
    bench = _bench()
    assert bench.main(["--json", "--images", "2", "--snr", "15", "--profiles", "multipath_3tap",
                       "--model", "hybrid_layered"]) == 0
    clean, mp = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert mp["images_decoded"] == 2 and mp["images_first_layer"] == 2, mp
    assert clean["images_first_layer"] == 0 and clean["images_decoded"] == 2, clean


def test_outer_loop_learns_the_margin_the_mean_snr_hides(capsys):
    """The same multipath, fed back the mean SNR (which overstates it for the LDPC base): with a
    fixed margin of 0 most images lose their base; the outer loop (jscc_rx verdicts -> jscc_tx ack)
    learns a back-off of a few dB after a few failures, and the later images decode."""
    bench = _bench()
    common = ["--json", "--images", "10", "--snr", "8", "--profiles", "multipath_3tap", "--model", "hybrid_softcast",
              "--snr-loop", "--feedback-estimate", "snr"]
    assert bench.main(common) == 0
    fixed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()][1]
    assert bench.main(common + ["--feedback-policy", "olla"]) == 0
    olla = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()][1]
    assert fixed["images_decoded"] <= 3, fixed
    assert olla["images_decoded"] >= fixed["images_decoded"] + 3, (fixed, olla)
    assert 2.0 <= olla["olla_offset_db"] <= 6.0 and olla["tx_snr_db"] < fixed["tx_snr_db"] - 1.0
