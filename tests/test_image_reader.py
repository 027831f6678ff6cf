"""One image reader: eval/train (codec.datasets) and the JSCC blocks read through data.folder, with
one policy (DICOM included, masks non-zero = ROI, size mismatch / tiny / NaN images are errors)."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from gnuradio.medjscc.blocks._codecadapt import read_image as block_read_image
from gnuradio.medjscc.blocks._codecadapt import read_mask as block_read_mask
from gnuradio.medjscc.codec.datasets import load_pairs
from gnuradio.medjscc.errors import InputError


def _ramp(h, w):
    y, x = np.mgrid[0:h, 0:w]
    return ((x + y) * 255 // (h + w - 2)).astype(np.uint8)


@pytest.fixture
def mixed_folder(tmp_path):
    from pydicom.data import get_testdata_file

    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(_ramp(64, 64)).save(root / "images" / "a.png")
    shutil.copy(get_testdata_file("CT_small.dcm"), root / "images" / "b.dcm")
    m = np.zeros((64, 64), np.uint8)
    m[10:30, 10:40] = 1                                        # a 0/1 mask
    Image.fromarray(m).save(root / "masks" / "a.png")
    return root


def test_load_pairs_reads_dicom_and_01_masks(mixed_folder):
    pairs = load_pairs(mixed_folder, split=None)
    assert [p["name"] for p in pairs] == ["a", "b"]
    assert pairs[1]["image"].shape == (128, 128) and pairs[1]["image"].dtype == np.uint8
    assert pairs[0]["mask"].sum() == 20 * 30 and pairs[1]["mask"] is None
    # flat folder (no images/ sub-folder): DICOM too
    flat = load_pairs(mixed_folder / "images", split=None)
    assert [p["name"] for p in flat] == ["a", "b"]


def test_load_pairs_mask_of_another_size_names_both_files(mixed_folder):
    Image.fromarray(np.ones((32, 32), np.uint8)).save(mixed_folder / "masks" / "a.png")
    with pytest.raises(InputError) as e:
        load_pairs(mixed_folder, split=None)
    assert "masks/a.png" in str(e.value) and "images/a.png" in str(e.value)


def test_block_mask_policy(tmp_path):
    m = np.zeros((64, 64), np.uint8)
    m[8:24, 8:24] = 1
    Image.fromarray(m).save(tmp_path / "m.png")
    # 0/1 mask: ROI, not empty (it used to be thresholded at 127)
    assert block_read_mask(tmp_path / "m.png", (64, 64)).sum() == 16 * 16
    fitted = block_read_mask(tmp_path / "m.png", (128, 128), tmp_path / "img.png", (64, 64))
    assert fitted.shape == (128, 128) and abs(int(fitted.sum()) - 32 * 32) <= 2 * 32
    with pytest.raises(InputError) as e:
        block_read_mask(tmp_path / "m.png", (256, 256), tmp_path / "img.png", (100, 80))
    assert "m.png" in str(e.value) and "img.png" in str(e.value)


def test_tiny_and_non_finite_images_are_errors(tmp_path):
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tmp_path / "one.png")
    Image.fromarray(np.zeros((8, 300), np.uint8)).save(tmp_path / "thin.png")
    Image.fromarray(np.full((32, 32), np.nan, np.float32)).save(tmp_path / "nan.tif")
    part = np.ones((32, 32), np.float32)
    part[3, 4] = np.inf
    Image.fromarray(part).save(tmp_path / "inf.tif")
    for name, words in [("one.png", "1x1"), ("thin.png", "300x8"), ("nan.tif", "1024 NaN"),
                        ("inf.tif", "1 NaN/infinite")]:
        with pytest.raises(InputError) as e:
            block_read_image(tmp_path / name)   # the blocks (tx/rx) read through data.folder
        assert name in str(e.value) and words in str(e.value), str(e.value)
    fine = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    Image.fromarray(fine).save(tmp_path / "ok.tif")
    img, ds = block_read_image(tmp_path / "ok.tif")
    assert img.min() == 0 and img.max() == 255 and ds is None


def test_block_reader_returns_dicom_header(tmp_path):
    from pydicom.data import get_testdata_file

    img, ds = block_read_image(get_testdata_file("CT_small.dcm"))
    assert img.shape == (128, 128) and ds.Modality == "CT"


def test_eval_cli_does_not_skip_dicom(mixed_folder, capsys):
    from gnuradio.medjscc import cli

    rc = cli.main(["eval", "--data", str(mixed_folder), "--split", "none", "--snr", "10",
                   "--cbr", "1/16", "--threads", "1", "--json"])
    assert rc in (0, None)
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert rows and all(r["n_images"] == 2 for r in rows)


def test_blocks_pad_instead_of_stretching(tmp_path):
    from gnuradio.medjscc.blocks._codecadapt import fit_image

    img = np.full((64, 128), 200, np.uint8)                  # landscape: 2:1
    out = fit_image(img, (256, 256))
    assert out.shape == (256, 256)
    assert (out[:64] == 0).all() and (out[-64:] == 0).all()  # black bars above and below
    assert (out[64:192] == 200).all()                        # content kept at 2:1, not stretched
    m = np.zeros((64, 128), np.uint8)
    m[:, :64] = 1
    Image.fromarray(m).save(tmp_path / "m.png")
    fitted = block_read_mask(tmp_path / "m.png", (256, 256), tmp_path / "i.png", (64, 128))
    assert not fitted[:64].any() and fitted[64:192, :128].all() and not fitted[64:192, 128:].any()


def test_compressed_dicoms_decode_with_the_shipped_plugins():
    """JPEG-LS (pylibjpeg-libjpeg), JPEG baseline and JPEG 2000 (Pillow) DICOMs decode; a
    compressed file no plugin can decode names its transfer syntax and the plugins, not 'malformed'."""
    import pytest
    from pydicom.data import get_testdata_file

    from gnuradio.medjscc.data import read_image
    from gnuradio.medjscc.errors import InputError

    for name in ("MR_small_jpeg_ls_lossless.dcm", "SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm"):
        img = read_image(get_testdata_file(name))
        assert img.ndim == 2 and img.std() > 1, name          # a real picture, not a blank
    with pytest.raises(InputError, match="cannot decode the .* pixel data .*pylibjpeg"):
        read_image(get_testdata_file("JPEG-lossy.dcm"))     # a damaged 12-bit JPEG test file
