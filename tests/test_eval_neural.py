"""Neural methods and the OFDM link inside the sweep (untrained codecs: plumbing, not quality)."""
import numpy as np
import pytest

from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.evaluation import methods, sweep
from gnuradio.medjscc.evaluation.sweep import SweepSpec, run_sweep

codec_mod = pytest.importorskip("gnuradio.medjscc.codec")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("nimgs")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    r = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64] / 64
    for i in range(2):
        img = np.clip(120 + 60 * np.sin(5 * x + i) * np.cos(3 * y) + r.normal(0, 3, x.shape), 0, 255).astype(np.uint8)
        mask = (x - .5) ** 2 + (y - .5) ** 2 < .08
        Image.fromarray(img).save(root / "images" / f"n{i}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"n{i}.png")
    return root


def test_missing_weights_is_a_clear_error_for_that_method(monkeypatch, tmp_path, images):
    monkeypatch.setenv("MEDJSCC_MODELS_DIR", str(tmp_path))
    methods._NEURAL_CACHE.clear()
    spec = SweepSpec(methods=["j2k-capacity", "ntscc"], snrs=[5.0], cbrs=[1 / 8], data=str(images))
    with pytest.raises(MedJSCCError, match="ntscc"):
        run_sweep(spec, tmp_path / "o", workers=1, progress=False, plots=False)
    methods._NEURAL_CACHE.clear()


@pytest.mark.parametrize("link", ["symbol", "ofdm"])
def test_neural_method_runs_through_the_sweep(random_codecs, images, tmp_path, link):
    spec = SweepSpec(methods=["medjscc", "j2k-capacity"], snrs=[0.0, 10.0], cbrs=[1 / 8], data=str(images),
                     link=link, **random_codecs)
    res = run_sweep(spec, tmp_path / link, workers=1, progress=False, plots=False)
    rows = sweep.read_rows(tmp_path / link / "results.csv")
    neural = [r for r in rows if r["method"] == "medjscc"]
    assert len(neural) == 4 and all(np.isfinite(r["psnr"]) for r in neural)
    assert all(r["mcs"] == "" for r in neural)
    assert all(r["model_sha256"] == methods.RANDOM_INIT_SHA for r in neural)   # untrained: said so per row
    if link == "symbol":
        assert all(abs(r["cbr_total"] - 1 / 8) < 0.01 for r in neural)
    else:  # the codec's CBR is the same; the OFDM preambles, headers, pilots, CP count in cbr_air
        assert all(abs(r["cbr_total"] - 1 / 8) < 0.01 < r["cbr_air"] - r["cbr_total"] for r in neural)
    assert (tmp_path / link / "sweep.json").read_text().count('"random_init_codecs": true') == 1
    assert {p["method"] for p in res.points} == {"medjscc", "j2k-capacity"}


def test_neural_sees_the_same_noise_as_a_rerun(random_codecs, images, tmp_path):
    spec = dict(methods=["deepjscc"], snrs=[3.0], cbrs=[1 / 8], data=str(images), limit=1, channel="rayleigh",
                **random_codecs)
    run_sweep(SweepSpec(**spec), tmp_path / "a", workers=1, progress=False, plots=False)
    run_sweep(SweepSpec(**spec), tmp_path / "b", workers=1, progress=False, plots=False)
    a = sweep.read_rows(tmp_path / "a" / "results.csv")
    b = sweep.read_rows(tmp_path / "b" / "results.csv")
    assert [r["psnr"] for r in a] == [r["psnr"] for r in b]


def test_rows_carry_the_weights_hash_and_resume_refuses_other_weights(images, tmp_path, monkeypatch):
    """Every neural row (CSV and JSON line) names the weights it was made with; a re-run onto a
    folder whose rows came from other weights is refused instead of mixing the two."""
    import json
    import shutil

    from gnuradio.medjscc.checksums import write_sha256
    from gnuradio.medjscc.codec.api import shipped_models_dir
    from gnuradio.medjscc.errors import InputError

    src = shipped_models_dir() / "deepjscc.pt"
    if not src.is_file():
        pytest.skip("deepjscc weights not shipped")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(src, models / "deepjscc.pt")
    write_sha256(models / "deepjscc.pt")
    monkeypatch.setenv("MEDJSCC_MODELS_DIR", str(models))
    methods._NEURAL_CACHE.clear()
    try:
        sha = (models / "deepjscc.pt.sha256").read_text().split()[0]
        spec = dict(methods=["deepjscc", "j2k-capacity"], snrs=[5.0], cbrs=[1 / 8], data=str(images), limit=1)
        out = tmp_path / "o"
        res = run_sweep(SweepSpec(**spec), out, workers=1, progress=False, plots=False)
        rows = sweep.read_rows(out / "results.csv")
        assert {r["model_sha256"] for r in rows if r["method"] == "deepjscc"} == {sha}
        assert {r["model_sha256"] for r in rows if r["method"] == "j2k-capacity"} == {""}
        line = json.loads(sweep.json_line(next(p for p in res.points if p["method"] == "deepjscc")))
        assert line["model_sha256"] == sha
        # same weights: the resume has nothing to do
        assert run_sweep(SweepSpec(**spec), out, workers=1, progress=False, plots=False).n_tasks_run == 0
        # other weights under the same name (one byte appended, checksum rewritten): refused
        with (models / "deepjscc.pt").open("ab") as f:
            f.write(b"\0")
        write_sha256(models / "deepjscc.pt")
        methods._NEURAL_CACHE.clear()
        before = (out / "results.csv").read_text()
        with pytest.raises(InputError, match="deepjscc rows made with other weights"):
            run_sweep(SweepSpec(**spec), out, workers=1, progress=False, plots=False)
        assert (out / "results.csv").read_text() == before
    finally:
        methods._NEURAL_CACHE.clear()


def test_random_codecs_only_on_request(images, tmp_path, monkeypatch):
    """Untrained codecs come only from the explicit argument: the old environment switch does
    nothing any more, and a folder of random-codec rows is not resumed with the real weights."""
    from gnuradio.medjscc.codec.api import shipped_models_dir
    from gnuradio.medjscc.errors import InputError

    if not (shipped_models_dir() / "deepjscc.pt").is_file():
        pytest.skip("deepjscc weights not shipped")
    monkeypatch.setenv("MEDJSCC_EVAL_RANDOM_CODECS", "1")
    methods._NEURAL_CACHE.clear()
    try:
        assert methods.neural_model("deepjscc").sha256 != methods.RANDOM_INIT_SHA
        assert methods.neural_model("deepjscc", random_init=True).sha256 == methods.RANDOM_INIT_SHA
        spec = dict(methods=["deepjscc"], snrs=[5.0], cbrs=[1 / 8], data=str(images), limit=1)
        run_sweep(SweepSpec(**spec, random_codecs=True), tmp_path / "o", workers=1, progress=False, plots=False)
        with pytest.raises(InputError, match="random_init_codecs: True there vs False now"):
            run_sweep(SweepSpec(**spec), tmp_path / "o", workers=1, progress=False, plots=False)
        run_sweep(SweepSpec(**spec), tmp_path / "real", workers=1, progress=False, plots=False)
        assert '"random_init_codecs": false' in (tmp_path / "real" / "sweep.json").read_text()
        rows = sweep.read_rows(tmp_path / "real" / "results.csv")
        assert rows and all(r["model_sha256"] not in ("", methods.RANDOM_INIT_SHA) for r in rows)
    finally:
        methods._NEURAL_CACHE.clear()
