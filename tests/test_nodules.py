"""Simulated lung nodules (data.nodules): geometry against the projector, pairs, determinism, CLI."""
import json

import numpy as np
import pytest

from gnuradio.medjscc.data import drr
from gnuradio.medjscc.data import nodules as nd
from gnuradio.medjscc.errors import InputError


@pytest.fixture(scope="module")
def volume():
    return drr.load_volume()


def test_line_integral_matches_voxelised_nodule_through_the_projector(volume):
    """The analytic line integral agrees with the same nodule written into the CT voxels and
    projected by drr.project (same rays, same place, same amount of attenuation)."""
    size = 64
    rngs = nd.pair_rngs(3, "test", 0)
    params = drr.sample_params(rngs[0], "test")
    spec = nd.NoduleSpec(diameter_mm=(12.0, 15.0), solid_fraction=1.0)
    nod = nd.draw_nodule(volume, spec, rngs[1])
    li = nd.line_integral(drr.ray_geometry(volume, params, size), nod)
    nz, ny, nx = volume.channels.shape[1:]
    v = volume.voxel_mm
    zz, yy, xx = np.meshgrid(*((np.arange(m) + 0.5 - m / 2) * v for m in (nz, ny, nx)), indexing="ij")
    rel = np.stack([xx, yy, zz], -1) - np.asarray(nod.centre_mm)
    q = rel @ np.linalg.inv(np.asarray(nod.axes) * np.asarray(nod.semi_axes_mm)[None]).T
    added = drr.MU_WATER * nod.contrast_hu / 1000 * np.clip(1 - (q ** 2).sum(-1), 0, None) ** nod.nu
    with_nod = drr.Volume(channels=volume.channels.copy(), voxel_mm=v, digest="test")
    with_nod.channels[0] += added.astype(np.float32)
    diff = drr.project(with_nod, params, size)[0] - drr.project(volume, params, size)[0]
    assert np.unravel_index(diff.argmax(), diff.shape) == np.unravel_index(li.argmax(), li.shape)
    assert np.corrcoef(diff.ravel(), li.ravel())[0, 1] > 0.97
    assert li.sum() == pytest.approx(diff.sum(), rel=0.1)
    row, col, _ = nd.project_point(drr.ray_geometry(volume, params, size), params, size, nod.centre_mm)
    assert (round(row), round(col)) == np.unravel_index(li.argmax(), li.shape)


def test_pair_differs_only_by_the_nodule_and_is_deterministic(volume):
    size = 96
    spec = nd.NoduleSpec(diameter_mm=(14.0, 15.0), solid_hu=3000.0, ground_glass_hu=3000.0)
    a = nd.render_pair(volume, nd.pair_params(0, "test", 1), size, nd.pair_rngs(0, "test", 1), spec)
    b = nd.render_pair(volume, nd.pair_params(0, "test", 1), size, nd.pair_rngs(0, "test", 1), spec)
    assert np.array_equal(a["present"], b["present"]) and np.array_equal(a["absent"], b["absent"])
    n = a["nodule"]
    r, c = n.centre_px
    assert a["mask"][int(round(r)), int(round(c))]
    assert 14.0 <= n.diameter_mm <= 15.0 and n.radius_px > 0
    yy, xx = np.mgrid[:size, :size]
    disk = (yy - r) ** 2 + (xx - c) ** 2 <= n.radius_px ** 2
    ring = ((yy - r) ** 2 + (xx - c) ** 2 > (3 * n.radius_px) ** 2) & a["mask"]
    d = a["present"].astype(float) - a["absent"].astype(float)
    # brighter where the nodule is (bone white display), noise-only elsewhere
    se = d[ring].std() / np.sqrt(disk.sum())     # standard error of a disk mean of noise only
    assert d[disk].mean() > 5 * se and abs(d[ring].mean()) < 1.0
    other = nd.render_pair(volume, nd.pair_params(1, "test", 1), size, nd.pair_rngs(1, "test", 1), spec)
    assert not np.array_equal(other["absent"], a["absent"])
    assert drr.split_of_yaw(nd.pair_params(0, "test", 1).yaw_deg) == "test"


def test_set_is_a_superset_and_records_the_nodules(tmp_path):
    spec = nd.NoduleSpec()
    big = nd.generate_nodule_set(tmp_path / "big", {"test": 2, "val": 1}, size=48, seed=5, spec=spec,
                                 workers=1, progress=False)
    small = nd.ensure_nodule_set(1, split="test", size=48, seed=5, root=tmp_path / "small")
    name = nd.pair_name("test", 0, True)
    for sub in ("images", "masks"):
        assert (big / "test" / sub / f"{name}.png").read_bytes() == (small / "test" / sub / f"{name}.png").read_bytes()
    meta = json.loads((big / "nodules.json").read_text())
    assert meta["counts"] == {"train": 0, "val": 1, "test": 2} and len(meta["pairs"]) == 3
    p = nd.load_pairs(big, "test")[0]
    assert set(p["nodule"]) >= {"kind", "contrast_hu", "diameter_mm", "centre_px", "radius_px", "centre_mm"}
    assert p["nodule"]["contrast_hu"] in (spec.solid_hu, spec.ground_glass_hu)
    assert "HU" in meta["units"]["contrast_hu"]
    # a complete set is reused, not rendered again
    mtime = (small / "nodules.json").stat().st_mtime_ns
    assert nd.ensure_nodule_set(1, split="test", size=48, seed=5, root=tmp_path / "small") == small
    assert (small / "nodules.json").stat().st_mtime_ns == mtime
    with pytest.raises(InputError):
        nd.load_pairs(big, "train")


def test_spec_and_cli_errors(tmp_path, capsys):
    from gnuradio.medjscc import cli

    with pytest.raises(InputError):
        nd.NoduleSpec(diameter_mm=(10.0, 5.0)).validate()
    with pytest.raises(InputError):
        nd.NoduleSpec(solid_hu=-5.0).validate()
    assert cli.main(["data", "drr", "--nodules", "--out", str(tmp_path / "n"), "--count", "3", "--size", "48",
                     "--nodule-diameter", "6:8", "--nodule-hu", "900,300", "--workers", "1"]) == 0
    meta = json.loads((tmp_path / "n" / "nodules.json").read_text())
    assert meta["spec"]["diameter_mm"] == [6.0, 8.0] and meta["spec"]["ground_glass_hu"] == 300.0
    assert all(6.0 <= p["nodule"]["diameter_mm"] <= 8.0 for p in meta["pairs"])
    assert len(list((tmp_path / "n" / "test" / "images").glob("*.png"))) == 2
    assert cli.main(["data", "drr", "--nodules", "--out", str(tmp_path / "m"), "--nodule-hu", "x"]) == 1
    assert "--nodule-hu" in capsys.readouterr().err
