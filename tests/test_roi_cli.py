"""``medjscc roi`` / ``roi-eval`` / ``roi-train`` command lines on small temporary data."""
import json

import numpy as np
import pytest
from PIL import Image

from gnuradio.medjscc.cli import main
from test_roi import phantom


@pytest.fixture
def tiny_set(tmp_path):
    """A 3-image 'test' split of phantoms with masks (layout of the DRR set)."""
    for sub in ("images", "masks"):
        (tmp_path / "test" / sub).mkdir(parents=True)
    for k in range(3):
        img, lungs = phantom(128, seed=k)
        Image.fromarray(img).save(tmp_path / "test" / "images" / f"p{k}.png")
        Image.fromarray(lungs.astype(np.uint8) * 255).save(tmp_path / "test" / "masks" / f"p{k}.png")
    return tmp_path


def test_roi_oracle_writes_mask_and_overlay(tiny_set, tmp_path, capsys):
    src = tiny_set / "test" / "images" / "p0.png"
    out, ov = tmp_path / "o" / "mask.png", tmp_path / "o" / "overlay.png"
    assert main(["roi", str(src), "--backend", "oracle", "--out", str(out), "--overlay", str(ov), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    mask = np.array(Image.open(out)) > 0
    np.testing.assert_array_equal(mask, phantom(128, seed=0)[1])
    assert np.array(Image.open(ov)).shape == (128, 128, 3)
    assert summary["grid"] == [8, 8] and 0 < summary["side_info_bits"] <= 256


def test_roi_bad_inputs_are_one_line_errors(tiny_set, tmp_path, capsys):
    src = tiny_set / "test" / "images" / "p0.png"
    rc = main(["roi", str(src), "--backend", "litemedsam", "--box", "500,500,600,600", "--out", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    assert rc == 1 and "outside the 128x128 image" in err and len(err.strip().splitlines()) == 1
    rc = main(["roi", str(src), "--backend", "litemedsam", "--box", "1,2,3", "--out", str(tmp_path / "m.png")])
    assert rc == 1 and "--box" in capsys.readouterr().err
    rc = main(["roi", str(tmp_path / "missing.png"), "--out", str(tmp_path / "m.png")])
    assert rc == 1 and "missing.png" in capsys.readouterr().err
    rc = main(["roi", str(src), "--backend", "sam2", "--sam2-checkpoint", str(tmp_path / "MedSAM2.pt"),
               "--out", str(tmp_path / "m.png")])
    assert rc == 1 and "MedSAM2.pt not found" in capsys.readouterr().err


def test_roi_eval_json(tiny_set, capsys):
    assert main(["roi-eval", "--backends", "oracle,auto", "--auto-fusion", "coarse", "--data", str(tiny_set),
                 "--split", "test", "--json", "--threads", "1"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [r["backend"] for r in lines] == ["oracle", "auto"]
    for r in lines:
        assert {"backend", "dice_mean", "dice_min", "iou_mean", "seconds_per_image", "n_images"} <= set(r)
        assert r["n_images"] == 3 and 0 <= r["dice_min"] <= r["dice_mean"] <= 1
    assert lines[0]["dice_mean"] == 1.0
