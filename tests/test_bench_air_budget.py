"""bench/air_budget.py: every layout gets a record; the accounting matches the frames sent."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "air_budget.py"


@pytest.mark.slow
def test_air_budget_bench_rows():
    r = subprocess.run([sys.executable, str(BENCH), "--json", "--images", "1", "--frames", "2", "--snr", "10"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {d["layout"]: d for d in (json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{"))}
    assert "default" in rows and len(rows) >= 4
    for d in rows.values():
        assert d["cbr_air"] > d["cbr_total"] > 0 and d["air_over_total"] == pytest.approx(d["cbr_air"] / d["cbr_total"])
        assert 0 <= d["header_ok"]["10"] <= 1
    # fewer frames per image cost less on air
    assert rows["1 frame per image"]["cbr_air"] < rows["default"]["cbr_air"]
