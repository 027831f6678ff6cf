"""bench/csi_oracle.py: perfect-CSI channels cost a decoder less with CSI than without."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "csi_oracle.py"


def _run(*args):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600)


def test_csi_oracle_rows_and_the_csi_decoder_loses_less_to_fading():
    r = _run("--json", "--images", "1", "--snr", "20", "--channels", "awgn,rayleigh",
             "--model", "medjscc,medjscc_csi")
    assert r.returncode == 0, r.stderr[-2000:]
    recs = {(d["model"], d["channel"]): d for d in map(json.loads, r.stdout.splitlines())}
    assert set(recs) == {(m, c) for m in ("medjscc", "medjscc_csi") for c in ("awgn", "rayleigh")}
    for m in ("medjscc", "medjscc_csi"):
        assert recs[(m, "awgn")]["vs_awgn_db"] == 0.0
        assert recs[(m, "rayleigh")]["roi_psnr"] < recs[(m, "awgn")]["roi_psnr"]   # fading costs
    # the CSI decoder weighs each symbol by its gain: it loses clearly less to Rayleigh
    assert recs[("medjscc_csi", "rayleigh")]["vs_awgn_db"] > recs[("medjscc", "rayleigh")]["vs_awgn_db"] + 1.0


def test_csi_oracle_bad_model_or_channel_is_one_line():
    r = _run("--model", "nosuchmodel", "--images", "1", "--snr", "10")
    assert r.returncode == 2 and "csi_oracle:" in r.stderr and "Traceback" not in r.stderr
    r = _run("--channels", "awgn,nosuch", "--images", "1")
    assert r.returncode == 2 and "unknown channel" in r.stderr and "Traceback" not in r.stderr


def test_csi_at_the_transmitter_row_loses_less_than_random_carriers():
    """multipath_3tap_sorted deals the stream (strong first) to the carriers by strength: with
    the strong components on the strong carriers the decoder loses clearly less than with each
    symbol on a random carrier; --repeat-strong is passed to the codec."""
    r = _run("--json", "--images", "1", "--snr", "10", "--channels", "awgn,multipath_3tap,multipath_3tap_sorted",
             "--model", "medjscc_csi", "--repeat-strong", "0.2")
    assert r.returncode == 0, r.stderr[-2000:]
    recs = {d["channel"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert all(d["repeat_strong"] == 0.2 for d in recs.values())
    assert recs["multipath_3tap_sorted"]["roi_psnr"] > recs["multipath_3tap"]["roi_psnr"] + 0.3   # 8 images: +0.56 dB
