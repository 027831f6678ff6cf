"""Data sets: DRR generator (determinism, view-angle split, lung-mask plausibility) and image
folders (PNG/JPEG/TIFF/16-bit/DICOM, size policy, one-line errors naming the file)."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from gnuradio.medjscc.data import drr
from gnuradio.medjscc.data.folder import ImageFolderDataset, fit_to_size, read_image, read_mask
from gnuradio.medjscc.errors import InputError

os.environ.setdefault("OMP_NUM_THREADS", "1")


# ------------------------------------------------------------------------------------ DRR
@pytest.fixture(scope="module")
def volume():
    return drr.load_volume()


def _tree_bytes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".png"):
                p = os.path.join(dirpath, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
    return out


def test_drr_same_seed_gives_identical_pngs(tmp_path):
    a = drr.generate_dataset(tmp_path / "a", count=3, size=48, seed=7, workers=1, progress=False)
    b = drr.generate_dataset(tmp_path / "b", count=3, size=48, seed=7, workers=2, progress=False)
    c = drr.generate_dataset(tmp_path / "c", count=3, size=48, seed=8, workers=1, progress=False)
    ta, tb, tc = _tree_bytes(a), _tree_bytes(b), _tree_bytes(c)
    assert len(ta) == 6                      # 3 images + 3 masks, one per split
    assert ta == tb                          # byte-identical, whatever the worker count
    assert ta.keys() == tc.keys() and ta != tc
    meta = json.loads((a / "meta.json").read_text())
    assert meta["seed"] == 7 and meta["counts"] == {"train": 1, "val": 1, "test": 1}
    assert json.loads((b / "meta.json").read_text())["images"] == meta["images"]


def test_drr_split_is_by_disjoint_view_angle_bands():
    bands = [set(b) for b in drr.SPLIT_BANDS.values()]
    assert set.union(*bands) == set(range(12)) and sum(map(len, bands)) == 12   # a partition
    plan = drr.image_plan(drr.split_counts(None), seed=0)
    counts = {s: sum(item["split"] == s for item in plan) for s in drr.SPLITS}
    assert counts == {"train": 480, "val": 40, "test": 80}
    yaws = {s: np.array([it["params"]["yaw_deg"] for it in plan if it["split"] == s]) for s in drr.SPLITS}
    for split, values in yaws.items():
        assert all(drr.split_of_yaw(v) == split for v in values)
        assert values.min() >= drr.YAW_RANGE[0] and values.max() <= drr.YAW_RANGE[1]

    def band(v):
        return np.floor((v - drr.YAW_RANGE[0]) / drr.BAND_DEG).astype(int)

    train_bands = set(band(yaws["train"]))
    assert not train_bands & set(band(yaws["test"]))
    assert not train_bands & set(band(yaws["val"]))
    # every test band is actually used, so the test views cover their own (unseen) angles
    assert len(set(band(yaws["test"]))) == len(drr.SPLIT_BANDS["test"])
    # other parameters vary too
    for key in ("tilt_deg", "atten_scale", "gamma", "photons"):
        assert np.std([it["params"][key] for it in plan]) > 0


def test_drr_meta_records_split_rule(tmp_path):
    out = drr.generate_dataset(tmp_path, count=3, size=32, seed=1, workers=1, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["split_rule"]["by"] == "yaw_deg"
    for item in meta["images"]:
        lo_hi = meta["split_rule"]["bands"][item["split"]]
        assert any(lo <= item["params"]["yaw_deg"] < hi for lo, hi in lo_hi)
        assert (out / item["split"] / "images" / f"{item['name']}.png").is_file()


@pytest.mark.parametrize("split,index", [("train", 0), ("val", 1), ("test", 2), ("test", 3)])
def test_drr_lung_mask_is_plausible(volume, split, index):
    rng = np.random.default_rng([11, index])
    params = drr.sample_params(rng, split)
    res = drr.render(volume, params, size=96, rng=rng)
    image, mask, body = res["image"], res["mask"], res["body"]
    assert image.dtype == np.uint8 and image.shape == (96, 96)
    assert mask.dtype == np.bool_ and mask.shape == (96, 96)
    frac = mask.mean()
    assert 0.12 < frac < 0.45, frac
    assert not (mask & ~body).any()                 # lungs inside the body
    # two lungs: lung on both sides of the midline, a gap (mediastinum) between them
    cols = mask.any(axis=0)
    assert cols[:40].any() and cols[56:].any()
    # radiograph display: lungs darker than the rest of the body, air outside darkest
    assert image[mask].mean() + 15 < image[body & ~mask].mean()
    if (~body).any():
        assert image[~body].mean() < image[mask].mean()
    # superior-inferior orientation: lungs in the upper part of the image
    rows = np.nonzero(mask.any(axis=1))[0]
    assert rows.mean() < 96 * 0.55


def test_drr_params_change_the_image(volume):
    base = drr.DrrParams()
    a = drr.render(volume, base, size=48, rng=np.random.default_rng(0))["image"]
    rotated = drr.DrrParams(yaw_deg=12.0)
    b = drr.render(volume, rotated, size=48, rng=np.random.default_rng(0))["image"]
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 2


def test_load_split_reads_generated_set(tmp_path):
    drr.generate_dataset(tmp_path, count=4, size=40, seed=2, workers=1, progress=False)
    ds = drr.load_split("train", root=tmp_path)
    assert len(ds) == 2
    item = ds[0]
    assert item["image"].shape == (40, 40) and item["mask"].dtype == np.bool_
    assert item["name"].startswith("drr_train_")
    assert len(drr.load_split("train", root=tmp_path, limit=1)) == 1
    with pytest.raises(InputError, match="split"):
        drr.load_split("holdout", root=tmp_path)


def test_split_counts_and_bad_args(tmp_path):
    assert drr.split_counts(None) == {"train": 480, "val": 40, "test": 80}
    assert sum(drr.split_counts(100).values()) == 100
    with pytest.raises(InputError, match="count"):
        drr.split_counts(2)
    with pytest.raises(InputError, match="size"):
        drr.generate_dataset(tmp_path, count=3, size=8, workers=1, progress=False)


def test_cli_data_drr_and_info(tmp_path, capsys):
    from gnuradio.medjscc import cli

    assert cli.main(["data", "drr", "--out", str(tmp_path / "d"), "--count", "3", "--size", "32",
                     "--seed", "4", "--workers", "1"]) == 0
    assert (tmp_path / "d" / "test" / "masks").is_dir()
    assert cli.main(["data", "info", str(tmp_path / "d" / "train")]) == 0
    assert "1 images, 1 with masks" in capsys.readouterr().out
    assert cli.main(["data", "info", str(tmp_path / "nowhere")]) == 1
    assert "nowhere" in capsys.readouterr().err


# ----------------------------------------------------------------------------- folders
def _gradient(h, w, dtype=np.uint8, hi=255):
    y, x = np.mgrid[0:h, 0:w]
    return ((x + y) / (h + w - 2) * hi).astype(dtype)


@pytest.fixture
def chest_folder(tmp_path):
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "masks" / "left").mkdir(parents=True)
    (root / "masks" / "right").mkdir(parents=True)
    g = _gradient(60, 80)
    Image.fromarray(g).save(root / "images" / "a.png")
    Image.fromarray(g).save(root / "images" / "b.jpg", quality=95)
    Image.fromarray(g).save(root / "images" / "c.tif")
    Image.fromarray(np.stack([g, g, g], -1)).save(root / "images" / "d.png")       # RGB
    g16 = _gradient(60, 80, np.uint16, 4095)                                        # 12-bit in 16
    Image.fromarray(g16).save(root / "images" / "e.png")
    left = np.zeros((60, 80), np.uint8)
    left[10:50, 5:35] = 255
    right = np.zeros((60, 80), np.uint8)
    right[10:50, 45:75] = 1                                                         # 0/1 mask
    Image.fromarray(left).save(root / "masks" / "left" / "a.png")
    Image.fromarray(right).save(root / "masks" / "right" / "a.png")
    Image.fromarray(left).save(root / "masks" / "c_mask.png")                       # Shenzhen name
    return root


def test_folder_reads_formats_and_merges_masks(chest_folder):
    ds = ImageFolderDataset(chest_folder, resize="none")
    assert [ds[i]["name"] for i in range(len(ds))] == ["a", "b", "c", "d", "e"]
    ref = _gradient(60, 80)
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].dtype == np.uint8 and item["image"].shape == (60, 80)
        assert item["source_path"].startswith(str(chest_folder))
        tol = 4 if item["name"] == "b" else 1            # JPEG is lossy
        assert np.abs(item["image"].astype(int) - ref).max() <= tol, item["name"]
    a = ds[0]["mask"]
    assert a.dtype == np.bool_ and a.sum() == 2 * 40 * 30     # left OR right lung
    assert ds[1]["mask"] is None
    assert ds[2]["mask"].sum() == 40 * 30
    assert read_image(chest_folder / "images" / "e.png").max() == 255   # 16-bit: min-max


def test_folder_size_policies(chest_folder):
    padded = ImageFolderDataset(chest_folder, size=64, resize="pad")[0]
    assert padded["image"].shape == (64, 64) and padded["mask"].shape == (64, 64)
    # 60x80 -> 48x64 then 8 black rows above and below
    assert (padded["image"][:8] == 0).all() and (padded["image"][-8:] == 0).all()
    assert not padded["mask"][:8].any()
    assert padded["mask"].mean() == pytest.approx(2 * 40 * 30 / (60 * 80) * 48 / 64, abs=0.03)
    stretched = ImageFolderDataset(chest_folder, size=32, resize="resize")[0]
    assert stretched["image"].shape == (32, 32)
    assert stretched["mask"].mean() == pytest.approx(2 * 40 * 30 / (60 * 80), abs=0.05)
    big = fit_to_size(np.zeros((10, 20), np.uint8), None, 100, "pad")[0]
    assert big.shape == (100, 100)
    with pytest.raises(InputError, match="resize"):
        ImageFolderDataset(chest_folder, resize="crop")
    assert len(ImageFolderDataset(chest_folder, limit=2)) == 2


def test_dicom_ct_and_mr_windowing():
    import pydicom
    from pydicom.data import get_testdata_file

    ct_path = get_testdata_file("CT_small.dcm")
    ct = read_image(ct_path)                      # no window: modality LUT then min-max
    assert ct.dtype == np.uint8 and ct.shape == (128, 128) and ct.min() == 0 and ct.max() == 255
    raw = pydicom.dcmread(ct_path).pixel_array.astype(float)
    assert np.corrcoef(raw.ravel(), ct.ravel())[0, 1] > 0.99

    mr_path = get_testdata_file("MR_small.dcm")
    ds = pydicom.dcmread(mr_path)
    mr = read_image(mr_path)
    c, w = float(ds.WindowCenter), float(ds.WindowWidth)
    expected = np.clip((ds.pixel_array - (c - 0.5)) / (w - 1) + 0.5, 0, 1) * 255
    assert np.abs(mr.astype(float) - expected).max() <= 1.0


def test_dicom_monochrome1_is_inverted(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    normal = read_image(get_testdata_file("CT_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    inverted = read_image(path)
    assert np.array_equal(inverted, 255 - normal)


def test_dicom_voi_lut_sequence(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    del ds.WindowCenter, ds.WindowWidth
    item = Dataset()
    # 8-bit output LUT over input values 0..4095: a ramp that saturates at 2048
    item.add_new(0x00283002, "US", [4096, 0, 8])                           # LUT Descriptor
    item.add_new(0x00283006, "US", [min(255, v // 8) for v in range(4096)])  # LUT Data
    ds.VOILUTSequence = Sequence([item])
    path = tmp_path / "voi.dcm"
    ds.save_as(path)
    img = read_image(path)
    expected = np.minimum(255, ds.pixel_array.astype(int) // 8)
    assert np.abs(img.astype(int) - expected).max() <= 1


def test_dicom_in_folder_without_extension_check(tmp_path):
    import shutil

    from pydicom.data import get_testdata_file

    (tmp_path / "images").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "images" / "ct.dcm")
    item = ImageFolderDataset(tmp_path, size=64)[0]
    assert item["image"].shape == (64, 64) and item["mask"] is None


# ------------------------------------------------------------------------------ errors
def test_error_missing_and_unreadable_image(tmp_path):
    with pytest.raises(InputError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(InputError, match="broken.png"):
        read_image(bad)
    (tmp_path / "images").mkdir()
    bad.rename(tmp_path / "images" / "broken.png")
    ds = ImageFolderDataset(tmp_path)
    with pytest.raises(InputError, match="broken.png"):
        ds[0]


def test_error_malformed_dicom(tmp_path):
    from pydicom.data import get_testdata_file

    with pytest.raises(InputError, match="malformed DICOM.*MR_truncated.dcm"):
        read_image(get_testdata_file("MR_truncated.dcm"))
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 128 + b"DICM" + b"\x01\x02garbage")
    with pytest.raises(InputError, match="junk.dcm"):
        read_image(junk)


def test_error_folder_layout(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ImageFolderDataset(tmp_path / "missing")
    with pytest.raises(InputError, match="no images/ sub-folder"):
        ImageFolderDataset(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no images"):
        ImageFolderDataset(tmp_path)


def test_error_mask_size_mismatch_names_both_files(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(_gradient(32, 32)).save(tmp_path / "images" / "x1.png")
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(tmp_path / "masks" / "x1.png")
    ds = ImageFolderDataset(tmp_path)
    with pytest.raises(InputError) as err:
        ds[0]
    msg = str(err.value)
    assert "masks/x1.png" in msg and "images/x1.png" in msg and "\n" not in msg


def test_read_mask_thresholds_above_zero(tmp_path):
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 1
    Image.fromarray(m).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").sum() == 4
    with pytest.raises(InputError, match="gone.png"):
        read_mask(tmp_path / "gone.png")


def test_ensure_drr_dataset_generates_once_then_reuses(tmp_path):
    root = drr.ensure_drr_dataset(tmp_path / "drr", count=3)
    meta = root / "meta.json"
    first = meta.stat().st_mtime_ns
    png = next((root / "test" / "images").glob("*.png"))
    assert read_image(png).shape == (drr.DEFAULT_SIZE, drr.DEFAULT_SIZE)
    assert drr.ensure_drr_dataset(root, count=3) == root
    assert meta.stat().st_mtime_ns == first                  # reused, not regenerated
    assert not list(root.rglob("*.tmp*"))                    # atomic writes left nothing behind
