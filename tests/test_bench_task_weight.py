"""bench/task_weight_pick.py and bench/fit_nodule_spectrum.py: validation / train pairs only, a
JSON line per point, bad input is one line."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(*args, timeout=900):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_pick_bench_prints_a_record_per_weight_and_snr():
    r = _run(BENCH / "task_weight_pick.py", "--json", "--pairs", "4", "--weights", "0,30", "--snr", "10")
    assert r.returncode == 0, r.stderr[-2000:]
    ref, *recs = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert ref["images"] == "original" and 0.0 <= ref["task_auc"] <= 1.0
    assert [(x["snr_db"], x["task_weight"]) for x in recs] == [(10.0, 0.0), (10.0, 30.0)]
    for x in recs:
        assert x["split"] == "val" and x["pairs"] == 4 and 0.0 <= x["task_auc"] <= 1.0 and x["decoded"] == 1.0
    assert "-t30" in recs[1]["layout"] and "-t" not in recs[0]["layout"]
    # weighting the error away from plain MSE cannot raise the PSNR the MSE allocation maximises
    assert recs[1]["psnr"] < recs[0]["psnr"]


def test_benches_bad_input_is_one_line(tmp_path):
    for args, needle in (((BENCH / "task_weight_pick.py", "--pairs", "2"), "--pairs"),
                         ((BENCH / "task_weight_pick.py", "--weights", "a,b"), "--weights"),
                         ((BENCH / "fit_nodule_spectrum.py", "--pairs", "0"), "--pairs")):
        r = _run(*args, timeout=300)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr[-1000:]


def test_fit_bench_writes_a_spectrum_the_codec_reads(tmp_path):
    out = tmp_path / "spec.json"
    r = _run(BENCH / "fit_nodule_spectrum.py", "--pairs", "6", "--out", out, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout.splitlines()[-1])
    data = json.loads(out.read_text())
    assert data["fit"]["split"] == "train" and data["pairs"] == 6 and len(data["observer_weights"]) > 1
    from gnuradio.medjscc.codec import detectability

    rho = detectability.band_detectability((256, 256), 16, str(out))
    assert summary["band_detectability_256"] == [round(float(x), 4) for x in rho] and rho.max() == 1.0


def test_pick_takes_the_smallest_weight_within_the_tolerance():
    import importlib.util

    spec = importlib.util.spec_from_file_location("task_weight_pick", BENCH / "task_weight_pick.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pts = [dict(snr_db=0.0, task_weight=w, task_auc=a) for w, a in ((0, 0.70), (10, 0.74), (30, 0.745), (100, 0.75))]
    pts += [dict(snr_db=5.0, task_weight=w, task_auc=a) for w, a in ((0, 0.80), (10, 0.79))]
    assert mod.pick_weights(pts, 0.01) == {"0": 10, "5": 0}
    assert mod.pick_weights(pts, 0.0) == {"0": 100, "5": 0}
