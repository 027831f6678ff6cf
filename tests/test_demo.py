"""`make demo`'s job end to end on one image: montage, metrics.csv/json and sane numbers."""
import csv
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.gnuradio


def test_demo_one_image_over_ofdm(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "gnuradio.medjscc", "demo", "--out", str(out), "--images", "1",
                        "--snr", "5,20", "--roi", "oracle"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "montage.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [float(x["snr_db"]) for x in rows] == [5.0, 20.0]
    assert json.loads((out / "metrics.json").read_text())[0]["image"] == rows[0]["image"]
    for row in rows:
        assert row["frames_ok"] == row["frames_total"]
        assert abs(float(row["snr_est_db"]) - float(row["snr_db"])) < 1.5
        assert 20 < float(row["roi_psnr"]) < 60
        # on-air channel uses include OFDM overhead, so they exceed the codec's own total CBR
        assert float(row["cbr_air"]) > float(row["cbr_total"]) >= float(row["cbr_payload"])
    assert float(rows[1]["roi_psnr"]) >= float(rows[0]["roi_psnr"]) - 0.5
    assert "ROI-PSNR" in r.stdout
