"""bench/allocation_consistency.py: training vs inference k-maps, with its control holding."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[1] / "bench" / "allocation_consistency.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("allocation_consistency", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_allocation_bench_rows_and_control(bench, tmp_path, capsys):
    pytest.importorskip("torch")
    from gnuradio.medjscc.codec.api import shipped_models_dir

    if not (shipped_models_dir() / "medjscc.pt").is_file():
        pytest.skip("medjscc weights not shipped")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    y, x = np.mgrid[0:256, 0:256] / 256
    for i in range(2):
        img = np.clip(110 + 70 * np.sin(6 * x + i) * np.cos(4 * y) + 40 * np.exp(-((x - .4) ** 2) / .01), 0, 255)
        Image.fromarray(img.astype(np.uint8)).save(tmp_path / "images" / f"a{i}.png")
        roi = ((x - .3 - .1 * i) ** 2 + (y - .5) ** 2 < .03).astype(np.uint8)
        Image.fromarray(roi).save(tmp_path / "masks" / f"a{i}.png")
    bench.main(["--json", "--data", str(tmp_path), "--split", "none", "--limit", "2", "--cbr", "1/16,1/64"])
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert [r["cbr"] for r in rows] == [1 / 16, 1 / 64]
    for r in rows:
        assert r["n_images"] == 2
        assert r["roi_grid_cells_differ"] == 0.0        # both paths: a cell is ROI if any pixel is
        # one plan: with the same ROI weight the training path allocates what the decoder is given
        same = r["same_roi_weight"]
        assert same["positions_differ"] == 0.0 and same["images_identical"] == 2
        assert same["total_train"] == same["total_inference"]
        for v in ("as_trained", "as_trained_train_mode"):
            assert 0.0 <= r[v]["positions_differ"] <= 1.0 and r[v]["mean_abs_diff"] >= 0.0
    # the comparison can fail: another ROI weight moves symbols between ROI and background cells
    from gnuradio.medjscc.codec import load_codec

    codec = load_codec("medjscc")
    img = np.asarray(Image.open(tmp_path / "images" / "a0.png"))
    mask = np.asarray(Image.open(tmp_path / "masks" / "a0.png")) > 0
    path = bench.TrainingPath(codec, img, mask, 10.0)
    enc = codec.encode(img, mask, snr_db=10.0, cbr=1 / 16)
    k_inf = bench.inference_kmap(codec, enc, img.shape)[0]
    assert (path.kmap(img.size / 16, codec.cfg.roi_rate_weight) == k_inf).all()
    assert (path.kmap(img.size / 16, 8.0) != k_inf).any()
