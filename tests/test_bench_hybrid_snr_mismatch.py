"""bench/hybrid_snr_mismatch.py (issue #13's no-cliff target when the TX is told an SNR 3 dB too
high): one image at one SNR -> the hybrid's base fails, and the pure-analog model's side info
survives once its MCS keeps a 4 dB margin."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "hybrid_snr_mismatch.py"


def test_told_three_db_too_high():
    r = subprocess.run([sys.executable, str(BENCH), "--json", "--images", "1", "--snr", "10", "--offset", "3",
                        "--side-margin", "4", "--no-refiner"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout[r.stdout.index("{\n"):])
    assert out["offset_db"] == 3.0 and out["side_margin_override_db"] == 4.0 and out["images"] == 1
    pts = out["points"]
    assert set(pts) == {"hybrid-softcast", "digital-envelope", "medjscc"}
    assert pts["hybrid-softcast"]["10"]["decode_rate"] == 0.0 and pts["digital-envelope"]["10"]["decode_rate"] == 0.0
    assert pts["medjscc"]["10"]["decode_rate"] == 1.0 and pts["medjscc"]["10"]["roi_psnr"] > 30.0
