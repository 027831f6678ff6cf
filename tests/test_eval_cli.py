"""``medjscc eval`` command line on a tiny temporary split (shipped weights)."""
import json

import numpy as np
import pytest
from PIL import Image

from gnuradio.medjscc.cli import main
from gnuradio.medjscc.codec.api import shipped_models_dir
from test_roi import phantom


@pytest.fixture
def tiny_set(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / "val" / sub).mkdir(parents=True)
    for k in range(2):
        img, lungs = phantom(256, seed=k)   # 256 px: several allocation cells
        Image.fromarray(img).save(tmp_path / "val" / "images" / f"p{k}.png")
        Image.fromarray(lungs.astype(np.uint8) * 255).save(tmp_path / "val" / "masks" / f"p{k}.png")
    return tmp_path


def _rows(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.skipif(not (shipped_models_dir() / "medjscc.pt").exists(), reason="medjscc weights not shipped")
def test_eval_json_and_allocation_overrides(tiny_set, capsys):
    base = ["eval", "--model", "medjscc", "--data", str(tiny_set), "--split", "val", "--snr", "10,20",
            "--cbr", "1/16", "--threads", "1", "--json"]
    assert main(base) == 0
    rows = _rows(capsys)
    assert [r["snr_db"] for r in rows] == [10.0, 20.0]
    assert all(abs(r["cbr_total"] - 1 / 16) <= 0.02 / 16 and r["n_images"] == 2 for r in rows)
    # a different allocation changes the encoder's choice (and so the result), not the CBR
    assert main(base + ["--alloc-roi-weight", "20", "--alloc-score-power", "0"]) == 0
    other = _rows(capsys)
    assert all(abs(r["cbr_total"] - 1 / 16) <= 0.02 / 16 for r in other)
    assert any(abs(a["psnr"] - b["psnr"]) > 1e-6 for a, b in zip(rows, other))
    assert main(base + ["--alloc-score", "energy"]) == 0
    energy = _rows(capsys)
    assert all(abs(r["cbr_total"] - 1 / 16) <= 0.02 / 16 for r in energy)
    assert any(abs(a["psnr"] - b["psnr"]) > 1e-6 for a, b in zip(rows, energy))
    assert main(base + ["--alloc-score-power", "-1"]) == 1
    assert "--alloc-score-power" in capsys.readouterr().err
    assert main(base + ["--alloc-roi-weight", "0"]) == 1
    assert "--alloc-roi-weight" in capsys.readouterr().err


@pytest.mark.skipif(not (shipped_models_dir() / "ntscc.pt").exists(), reason="ntscc weights not shipped")
def test_rate_spread_bench(tiny_set, capsys):
    import importlib.util
    from pathlib import Path

    from gnuradio.medjscc.errors import MedJSCCError

    path = Path(__file__).resolve().parents[1] / "bench" / "rate_spread.py"
    spec = importlib.util.spec_from_file_location("rate_spread", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--model", "ntscc", "--data", str(tiny_set), "--split", "val", "--json"])
    row = _rows(capsys)[0]
    assert row["n_images"] == 2 and row["bits_cv_min"] > 0 and row["bits_cv_min"] <= row["bits_cv_mean"] <= row["bits_cv_max"]
    # the row states what the codec's public rate map gives for these images (computed here again)
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.datasets import load_pairs

    codec = load_codec("ntscc")
    maps = [codec.rate_map(p["image"], p["mask"], 10.0) for p in load_pairs(str(tiny_set), "val", 20)]
    assert len(maps) == 2
    assert row["bits_cv_mean"] == pytest.approx(np.mean([m.std() / m.mean() for m in maps]), rel=1e-6)
    assert row["fraction_below_half_mean"] == pytest.approx(np.mean([(m < 0.5 * m.mean()).mean() for m in maps]),
                                                            abs=1e-9)
    with pytest.raises(MedJSCCError, match="no entropy model"):
        bench.main(["--model", "adjscc", "--data", str(tiny_set), "--split", "val"])
