"""bench/late_feedback.py end to end (issue #18): with a design SNR far off, the instant loop
corrects it, a 550 ms delay (longer than the whole run's air time) leaves every image at the
design SNR, like no feedback at all."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "late_feedback.py"


@pytest.mark.gnuradio
def test_late_feedback_bench_rows_and_the_delay_end_to_end():
    r = subprocess.run([sys.executable, str(BENCH), "--json", "--images", "4", "--snr", "12",
                        "--design-snr", "25", "--delays", "550", "--policies", "instant"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert [(x["policy"], x["delay_ms"]) for x in rows] == [("fixed", 0.0), ("fixed_repeat", 0.0), ("instant", 0.0),
                                                          ("instant", 550.0)]
    fixed, _, inst, late = rows
    assert fixed["cau_err_db"] > 8                      # 25 dB design on a ~12 dB channel
    assert abs(inst["cau_err_db"]) < fixed["cau_err_db"] - 5   # the loop corrects it from image 2 on
    assert late["cau_err_db"] == pytest.approx(fixed["cau_err_db"], abs=1.0)   # feedback never usable
    assert all(x["frames_decoded"] == x["frames_sent"] for x in rows)
    assert late["below_fixed"] is not None and inst["d_vs_instant_db"] == 0.0


def test_late_feedback_bench_bad_policy_is_one_line():
    r = subprocess.run([sys.executable, str(BENCH), "--policies", "late"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "late_feedback:" in r.stderr and "Traceback" not in r.stderr
