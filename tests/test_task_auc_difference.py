"""Paired AUC differences between two methods on the same nodule pairs (observer.paired_difference,
task.compare, bench/task_auc_difference.py)."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gnuradio.medjscc.errors import InputError
from gnuradio.medjscc.evaluation import observer, task

BENCH = Path(__file__).resolve().parents[1] / "bench" / "task_auc_difference.py"


def test_paired_difference_of_identical_and_of_better_scores():
    rng = np.random.default_rng(0)
    t1, t0 = rng.normal(0.5, 1, 60), rng.normal(0, 1, 60)
    same = observer.paired_difference((t1, t0), (t1, t0), n_boot=200)
    assert same["diff"] == 0.0 and same["diff_lo"] == 0.0 == same["diff_hi"] and same["p_not_above"] == 1.0
    better = observer.paired_difference((t1 + 2.0, t0), (t1, t0), n_boot=200)
    assert better["diff"] > 0.2 and better["diff_lo"] > 0.0 and better["p_not_above"] == 0.0
    assert better["auc_a"] == pytest.approx(observer.auc_empirical(t1 + 2.0, t0))
    with pytest.raises(InputError, match="same pairs"):
        observer.paired_difference((t1, t0), (t1[:-1], t0[:-1]))


def _rows(n_pairs=16, seed=1):
    """Task rows of a method whose channel responses carry the nodule and one that lost it."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_pairs):
        anatomy = rng.normal(0, 1, 6)
        for method, gain in (("sharp", 1.5), ("blurred", 0.0)):
            for s in (0, 1):
                v = anatomy + s * gain + rng.normal(0, 0.3, 6)
                rows.append(dict(method=method, mcs="", snr_db=5.0, cbr=0.0625, channel="awgn", link="symbol",
                                 trial=0, image=f"nod_{p}_{s}", pair=p, signal=s, decode_ok=True, model_sha256="",
                                 dice_vs_original=1.0, v=v))
    return rows


def test_compare_pairs_the_methods_per_point():
    out = task.compare(_rows(), "sharp", "blurred")
    (key, d), = out.items()
    assert key == (5.0, 0.0625, "awgn", "symbol") and d["n_pairs"] == 16
    assert d["diff"] > 0.3 and d["diff_lo"] > 0.0
    assert task.compare(_rows(), "sharp", "absent") == {}
    with pytest.raises(InputError, match="per MCS"):
        task.compare(_rows(), "j2k-ldpc", "sharp")


def test_bench_reads_sweep_folders(tmp_path):
    cols = ["method", "mcs", "snr_db", "cbr", "channel", "link", "trial", "image", "pair", "signal", "decode_ok",
            "model_sha256", "dice_vs_original"] + task.channel_columns()
    with (tmp_path / task.TASK_CSV).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in _rows():
            w.writerow([r[c] for c in cols[:13]] + [f"{x:.6f}" for x in r["v"]])
    r = subprocess.run([sys.executable, str(BENCH), "--runs", str(tmp_path), str(tmp_path), "--a", "sharp", "--b",
                        "blurred", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (rec,) = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert rec["n_pairs"] == 16 and rec["diff"] > 0.3   # the folder given twice is read once
    empty = tmp_path / "empty"
    empty.mkdir()
    r = subprocess.run([sys.executable, str(BENCH), "--runs", str(empty), "--a", "x", "--b", "y"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "task_nodule.csv" in r.stderr and "Traceback" not in r.stderr
