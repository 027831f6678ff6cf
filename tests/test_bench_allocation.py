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
        assert r["n_images"] == 2 and r["train"]["rate_block"] == 2
        blocks = r["inference"]["rate_block"]
        assert all(b >= 2 for b in (blocks if isinstance(blocks, list) else [blocks]))
        assert r["roi_grid_cells_differ"] == 0.0        # both paths: a cell is ROI if any pixel is
        # training never exceeds its target (no remainder); inference meets its payload exactly
        assert r["as_trained"]["total_train"] <= round(r["cbr"] * 256 * 256)
        assert r["with_inference_payload"]["total_train"] <= r["with_inference_payload"]["total_inference"]
        # same weight, payload and cell size: the inference adds its remainder on top
        ctl = r["with_inference_block"]
        assert ctl["total_train"] <= ctl["total_inference"]
        assert 0 <= ctl["level_maps_equal"] <= r["n_images"]
        for v in ("as_trained", "with_inference_roi_weight", "with_inference_payload", "as_trained_train_mode"):
            assert 0.0 <= r[v]["positions_differ"] <= 1.0 and r[v]["mean_abs_diff"] >= 0.0
    # per image: with the inference's weight, payload and cell size the training path gives the
    # inference's level map wherever the encoder's side-info fixed point settled, and then the
    # two k-maps differ by exactly the remainder (+1 on as many positions)
    from gnuradio.medjscc.codec import load_codec

    codec = load_codec("medjscc")
    settled = 0
    for i in range(2):
        img = np.asarray(Image.open(tmp_path / "images" / f"a{i}.png"))
        mask = np.asarray(Image.open(tmp_path / "masks" / f"a{i}.png")) > 0
        path = bench.TrainingPath(codec, img, mask, 10.0)
        for cbr in (1 / 16, 1 / 64):
            enc = codec.encode(img, mask, snr_db=10.0, cbr=cbr)
            k_inf, k_levels, block, remainder = bench.inference_kmap(codec, enc, img.shape)
            assert int(k_inf.sum()) == enc.symbols.size and int(k_levels.sum()) + remainder == enc.symbols.size
            k_train = path.kmap(enc.symbols.size, codec.cfg.roi_rate_weight, block)
            if (k_train == k_levels).all():
                settled += 1
                d = k_inf - k_train
                assert set(np.unique(d).tolist()) <= {0, 1} and int(d.sum()) == remainder
    assert settled >= 1, "no image settled: nothing compared"
