"""bench/zmq_soak.py: a few images through two processes on loopback -> every one accounted for."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gnuradio   # two processes that load torch: ~10 s on 2 cores (not "slow")

BENCH = Path(__file__).resolve().parents[1] / "bench" / "zmq_soak.py"


def test_zmq_soak_accounts_for_every_image():
    r = subprocess.run([sys.executable, str(BENCH), "--json", "--images", "3", "--random-weights",
                        "--timeout", "240"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    (rec,) = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert rec["images_sent"] == 3 and rec["tx_completed"] is True
    # a short unpaced run ends sending before any feedback is back: it must still be heard
    assert rec["tx_receiver_heard"] is True
    # every image sent has exactly one result, and on a quiet loopback all three decode
    assert rec["images_decoded"] + rec["images_dropped"] + rec["images_failed"] + rec["images_lost"] == 3
    assert (rec["images_decoded"], rec["images_lost"]) == (3, 0), rec
    assert rec["rx_reason"] == "images" and rec["rx_stopped_cleanly"] is True and not rec["timed_out"]
    assert 0 < rec["rx_rss_start_mb"] <= rec["rx_rss_peak_mb"] and rec["rx_rss_end_mb"] > 0


def test_zmq_soak_bad_arguments_are_one_line():
    r = subprocess.run([sys.executable, str(BENCH), "--images", "0"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "zmq_soak:" in r.stderr and "Traceback" not in r.stderr
