"""bench/hybrid_split_per_image.py and bench/hybrid_mask_frontier.py: their per-image oracles pick
each image's best candidate, a candidate that cannot be sent is never picked, and each bench
prints one JSON record per SNR."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_per_image_share_oracle_takes_each_images_best():
    b = _load("hybrid_split_per_image")
    roi = np.array([[30.0, 32.0, 31.0],
                    [35.0, 33.0, 34.0]])
    r = b.per_image_oracle(roi, [0.0, 0.3, 0.6])
    assert r["mean_per_share"] == {"0": 32.5, "0.3": 32.5, "0.6": 32.5}
    assert r["best_fixed_share"] == 0.0                  # ties: the first
    assert r["oracle_roi_psnr"] == 33.5
    assert r["oracle_minus_best_fixed_db"] == 1.0
    assert r["oracle_share_counts"] == {"0": 1, "0.3": 1, "0.6": 0}


def test_per_image_share_oracle_never_picks_a_share_that_could_not_be_sent():
    b = _load("hybrid_split_per_image")
    roi = np.array([[np.nan, 20.0], [40.0, 21.0]])
    r = b.per_image_oracle(roi, [0.0, 0.5])
    assert r["mean_per_share"]["0"] is None and r["best_fixed_share"] == 0.5
    assert r["oracle_roi_psnr"] == 30.0
    with pytest.raises(ValueError):
        b.per_image_oracle(roi, [0.0])


def test_mask_frontier_respects_the_slack_and_the_oracle_trades_per_image():
    b = _load("hybrid_mask_frontier")
    m = {("j2k", 1.0): [(40.0, 38.0), (40.0, 38.0)],
         ("j2k", 0.5): [(42.0, 37.5), (41.0, 37.5)],      # +1.5 ROI for 0.5 PSNR
         ("j2k", 0.3): [(43.0, 36.0), (44.0, 37.9)]}      # +3.5 ROI for 1.05 PSNR: over 1 dB
    r = b.frontier(m, 1.0, [1.0])
    assert r["variants"]["j2k/w0.5"] == dict(roi_gain_db=1.5, psnr_loss_db=0.5)
    assert r["best_fixed_within_slack"]["variant"] == "j2k/w0.5"
    # per image with mu = 1: image 0 takes w0.5 (2 - 0.5 > 3 - 2), image 1 takes w0.3 (4 - 0.1)
    assert r["per_image_oracle"]["1"] == dict(roi_gain_db=3.0, psnr_loss_db=0.3)


@pytest.mark.parametrize("cmd, key", [
    (["hybrid_split_per_image.py", "--images", "1", "--prior-images", "1", "--snr", "10", "--shares", "0.3,0.45"],
     "oracle_minus_best_fixed_db"),
    (["hybrid_split_per_image.py", "--images", "1", "--prior-images", "1", "--snr", "10", "--shares", "0.3",
      "--refiner"], "receiver"),
    (["hybrid_mask_frontier.py", "--images", "1", "--snr", "10", "--weights", "1,0.5", "--codecs", "j2k"],
     "best_fixed_within_slack"),
])
def test_bench_prints_a_record_per_snr(cmd, key):
    r = subprocess.run([sys.executable, str(BENCH / cmd[0]), "--json", *cmd[1:]], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (rec,) = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert rec["snr_db"] == 10.0 and rec["images"] == 1 and key in rec
    if "variants" in rec:
        v = rec["variants"]["j2k/w0.5"]
        assert rec["reference_roi_psnr"] > 30.0 and v["roi_gain_db"] > 0.0
        assert 0.0 < rec["analog_coefficient_share"] < 0.2 and 0.0 < v["roi_mse_unsent"] < v["roi_mse"]
    else:
        assert rec["oracle_minus_best_fixed_db"] >= 0.0 and rec["shipped_roi_psnr"] > 30.0
        assert rec["receiver"] == ("medjscc-hda" if "--refiner" in cmd else "hybrid-softcast")


def test_bad_options_are_one_line_and_exit_2():
    r = subprocess.run([sys.executable, str(BENCH / "hybrid_mask_frontier.py"), "--weights", "1.5"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--weights" in r.stderr and "Traceback" not in r.stderr
