"""bench/hda_signal_transfer.py: one validation pair at one SNR -> a JSON line with the nodule's
signal-transfer loss of both receivers; bad input is one line."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "hda_signal_transfer.py"


def test_signal_transfer_bench_prints_a_record_per_snr():
    r = subprocess.run([sys.executable, str(BENCH), "--json", "--pairs", "1", "--snr", "15"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    (rec,) = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert rec["snr_db"] == 15.0 and rec["pairs"] == 1 and rec["split"] == "val"
    for k in ("llse", "refined"):   # at 15 dB the nodule gets through nearly whole
        assert 0.0 <= rec[k]["signal_transfer"] < 0.2 and rec[k]["roi_psnr"] > 38.0, rec


def test_signal_transfer_bench_bad_input_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(BENCH), "--pairs", "0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--pairs" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, str(BENCH), "--pairs", "1", "--refiner", str(tmp_path / "none.pt")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "none.pt" in r.stderr and "Traceback" not in r.stderr
