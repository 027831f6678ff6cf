"""bench/frame_loss.py: one image, one SNR -> a JSON line whose one-frame-lost figure is worse."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "frame_loss.py"


def test_frame_loss_bench_prints_a_record_per_snr():
    r = subprocess.run([sys.executable, str(BENCH), "--json", "--images", "1", "--snr", "20"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (rec,) = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert rec["model"] == "medjscc" and rec["snr_db"] == 20.0 and rec["images"] == 1
    assert rec["frames_per_image"] >= 2 and rec["side_info_ok"] == 1.0   # any one frame may go
    assert 30 < rec["roi_psnr_all"] and rec["roi_psnr_one_lost"] < rec["roi_psnr_all"] - 1


def test_frame_loss_bench_bad_model_is_one_line():
    r = subprocess.run([sys.executable, str(BENCH), "--model", "nosuchmodel", "--images", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "frame_loss:" in r.stderr and "Traceback" not in r.stderr
