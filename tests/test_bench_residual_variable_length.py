"""bench/residual_variable_length.py: the tiled transforms are exact, uniform length is uniform,
variable length is not, and one SNR gives one JSON line with every variant."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "bench" / "residual_variable_length.py"


def _bench():
    spec = importlib.util.spec_from_file_location("residual_variable_length", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tile_transform_round_trip_and_energy():
    b = _bench()
    x = np.random.default_rng(0).normal(size=(64, 96))
    c = b.tile_dct(x, 32)
    assert np.allclose(b.tile_idct(c, x.shape, 32), x)
    assert np.isclose((c ** 2).sum(), (x ** 2).sum())          # orthonormal
    unit = b.tile_units(x.shape, 32, 8)
    assert unit.shape == c.shape and unit.max() == 6 * 8 - 1


def test_uniform_length_is_equal_per_tile_and_variable_follows_the_energy():
    b = _bench()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 64))
    x[:32, :32] *= 10.0                                          # one loud tile
    c, unit = b.tile_dct(x, 32), b.tile_units(x.shape, 32, 8)
    lam = b.unit_variances(c, unit)
    uni = b.select_uniform(lam, unit, 400, 8)
    var = b.select_variable(lam, unit, 400)
    per_u = np.bincount(unit[uni] // 8, minlength=4)
    per_v = np.bincount(unit[var] // 8, minlength=4)
    assert per_u.tolist() == [100, 100, 100, 100]
    assert per_v.sum() == 400 and per_v[0] > 200                 # the loud tile takes most
    noise = np.zeros(400)
    err = {k: np.mean((b.tile_idct(b.send_llse(c, unit, lam, s, 200, 30.0, noise), x.shape, 32) - x) ** 2)
           for k, s in (("uniform", uni), ("variable", var))}
    assert err["variable"] < err["uniform"]


def test_bench_prints_a_record_per_snr():
    r = subprocess.run([sys.executable, str(BENCH), "--json", "--images", "1", "--snr", "10", "--tiles", "64"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (rec,) = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert rec["snr_db"] == 10.0 and rec["images"] == 1 and rec["n_analog"] > 0
    for k in ("full_frame", "tiles64_uniform", "tiles64_variable", "tiles64_variable_separable",
              "tiles64_variable_separable_charged"):
        assert 25.0 < rec[k]["roi_psnr"] < 60.0, k
    assert rec["tiles64_uniform"]["max_per_tile"] - rec["tiles64_uniform"]["min_per_tile"] <= 1
    assert rec["tiles64_variable"]["max_per_tile"] > rec["tiles64_variable"]["min_per_tile"] + 1
    assert rec["oracle_side_bits"]["tiles64"] == 16 * 16 * 6


def test_bench_refuses_the_test_split_and_bad_tiles():
    r = subprocess.run([sys.executable, str(BENCH), "--split", "test", "--images", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "validation" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, str(BENCH), "--images", "1", "--snr", "10", "--tiles", "48"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "does not divide" in r.stderr and "Traceback" not in r.stderr
