"""medjscc sweep: schema, envelope, resume, seeds across methods/backends, bad input."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from gnuradio.medjscc.errors import InputError, MedJSCCError
from gnuradio.medjscc.evaluation import channel as chan
from gnuradio.medjscc.evaluation import methods as methods_mod
from gnuradio.medjscc.evaluation import sweep
from gnuradio.medjscc.evaluation.sweep import SweepSpec, aggregate, run_sweep


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three small synthetic radiograph-like images with two-lobe masks."""
    from PIL import Image

    root = tmp_path_factory.mktemp("evimgs")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    size = 96
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(3):
        r = np.random.default_rng(i)
        img = 120 + 70 * np.sin(6 * x + i) * np.cos(4 * y) + 40 * np.exp(-((x - .5) ** 2 + (y - .4) ** 2) / .02)
        img = np.clip(img + r.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
        mask = ((x - .3) ** 2 / .03 + (y - .5) ** 2 / .1 < 1) | ((x - .7) ** 2 / .03 + (y - .5) ** 2 / .1 < 1)
        Image.fromarray(img).save(root / "images" / f"img{i}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / f"img{i}.png")
    return root


def _spec(images, **kw):
    base = dict(methods=["j2k-ldpc", "j2k-capacity"], snrs=[0.0, 10.0], cbrs=[0.125], data=str(images), limit=2)
    base.update(kw)
    return SweepSpec(**base)


def test_channel_draws_shared_across_lengths():
    seed = chan.channel_seed(0, "img0", 5.0, 0)
    for kind in chan.CHANNELS:
        y_short, h_short, _ = chan.transmit(np.ones(100), kind, 5.0, seed)
        y_long, h_long, _ = chan.transmit(np.ones(4000), kind, 5.0, seed)
        assert np.allclose(y_short, y_long[:100])
    other = chan.transmit(np.ones(100), "awgn", 5.0, chan.channel_seed(0, "img1", 5.0, 0))[0]
    assert not np.allclose(other, y_short)
    # SNR convention: noise power N0 = 10^(-snr/10)
    y, _, n0 = chan.transmit(np.zeros(200_000), "awgn", 3.0, seed)
    assert np.mean(np.abs(y) ** 2) == pytest.approx(10 ** -0.3, rel=0.02) and n0 == pytest.approx(10 ** -0.3)
    _, h, _ = chan.transmit(np.zeros(200_000), "rayleigh", 3.0, seed)
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, rel=0.02)


def test_envelope_picks_best_mcs_on_mean_roi_psnr():
    rows = []
    for img in ("a", "b"):
        for mcs, roi, ok in (("bpsk-r1/2", 25.0, True), ("qpsk-r3/4", 31.0, True), ("16qam-r3/4", 12.0, False)):
            rows.append(dict(method="j2k-ldpc", mcs=mcs, snr_db=5.0, cbr=0.0625, channel="awgn", link="symbol",
                             trial=0, image=img, psnr=roi - 1, roi_psnr=roi + (img == "a"), ms_ssim=0.9,
                             cbr_total=0.06, decode_ok=ok, source_bytes=100))
    rows.append(dict(rows[0], method="j2k-capacity", mcs="", roi_psnr=40.0))
    points, per_mcs = aggregate(rows)
    env = next(p for p in points if p["method"] == "j2k-ldpc")
    assert env["mcs"] == "qpsk-r3/4" and env["roi_psnr"] == pytest.approx(31.5) and env["n"] == 2
    assert len(per_mcs) == 3
    assert next(p for p in per_mcs if p["mcs"] == "16qam-r3/4")["decode_rate"] == 0.0
    cap = next(p for p in points if p["method"] == "j2k-capacity")
    assert "mcs" not in cap and cap["roi_psnr"] == 40.0
    # all MCS failed: the envelope names the most robust one
    failed = [dict(r, snr_db=-10.0, roi_psnr=10.0, psnr=9.0, decode_ok=False) for r in rows if r["method"] == "j2k-ldpc"]
    env_fail = next(p for p in aggregate(failed)[0] if p["method"] == "j2k-ldpc")
    assert env_fail["mcs"] == "bpsk-r1/2" and env_fail["decode_rate"] == 0.0
    line = json.loads(sweep.json_line(env))
    assert {"method", "snr_db", "cbr", "channel", "link", "psnr", "roi_psnr", "ms_ssim", "decode_rate", "n",
            "mcs"} <= set(line)


def test_sweep_schema_resume_and_refusals(images, tmp_path):
    out = tmp_path / "run"
    res = run_sweep(_spec(images), out, workers=1, progress=False)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert list(rows[0]) == sweep.CSV_COLUMNS
    from gnuradio.medjscc.evaluation.methods import MCS_TABLE

    assert len(rows) == 2 * 2 * (len(MCS_TABLE) + 1)  # images x SNRs x (MCS rows + capacity row)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["channel"] == "awgn" and summary["points"]
    assert {(p["method"], p["snr_db"]) for p in res.points} == {(m, s) for m in ("j2k-ldpc", "j2k-capacity")
                                                                 for s in (0.0, 10.0)}
    for p in res.points:
        assert p["n"] == 2
    hi = next(p for p in res.points if p["method"] == "j2k-ldpc" and p["snr_db"] == 10.0)
    lo = next(p for p in res.points if p["method"] == "j2k-ldpc" and p["snr_db"] == 0.0)
    assert hi["roi_psnr"] > lo["roi_psnr"] and hi["decode_rate"] == 1.0
    for stem in ("roi_psnr_vs_snr_cbr1_8", "psnr_vs_snr_cbr1_8", "ms_ssim_vs_snr_cbr1_8", "montage_cbr1_8"):
        assert (out / "plots" / f"{stem}.png").is_file() and (out / "plots" / f"{stem}.pdf").is_file()
    # digital failures at low SNR are counted and shown as grey, not dropped
    failed = [r for r in rows if r["method"] == "j2k-ldpc" and r["decode_ok"] == "False"]
    assert failed and all(float(r["psnr"]) < 20 for r in failed)

    # report: tables + figure links
    from gnuradio.medjscc.evaluation.report import write_report

    readme = write_report(out).read_text()
    assert "| SNR (dB) | j2k-ldpc | j2k-capacity |" in readme or "| SNR (dB) | j2k-capacity | j2k-ldpc |" in readme
    assert "plots/roi_psnr_vs_snr_cbr1_8.png" in readme and "every MCS" in readme

    # resume: nothing new to do, rows untouched
    before = (out / "results.csv").read_text()
    res2 = run_sweep(_spec(images), out, workers=1, progress=False, plots=False)
    assert res2.n_tasks_run == 0 and (out / "results.csv").read_text() == before
    # extending the grid runs only the new SNR
    res3 = run_sweep(_spec(images, snrs=[0.0, 5.0, 10.0]), out, workers=1, progress=False, plots=False)
    assert res3.n_rows_new == 2 * (len(MCS_TABLE) + 1)
    # other settings in the same folder: refused, never mixed
    with pytest.raises(InputError, match="other settings.*channel"):
        run_sweep(_spec(images, channel="rayleigh"), out, workers=1, progress=False)
    with pytest.raises(InputError, match="other settings.*seed"):
        run_sweep(_spec(images, seed=7), out, workers=1, progress=False)


def test_same_channel_noise_for_every_method_and_worker_count(images, tmp_path):
    a = run_sweep(_spec(images, methods=["j2k-capacity", "j2k-ldpc"], snrs=[4.0]), tmp_path / "a",
                  workers=1, progress=False, plots=False)
    b = run_sweep(_spec(images, methods=["j2k-ldpc"], snrs=[4.0]), tmp_path / "b", workers=2,
                  progress=False, plots=False)
    assert len(sweep.read_rows(tmp_path / "b" / "results.csv")) == 2 * len(methods_mod.MCS_TABLE)
    key = lambda r: (r["method"], r["mcs"], r["image"], r["snr_db"])  # noqa: E731
    ra = {key(r): r for r in sweep.read_rows(tmp_path / "a" / "results.csv")}
    rb = {key(r): r for r in sweep.read_rows(tmp_path / "b" / "results.csv")}
    assert rb and all(ra[k]["psnr"] == rb[k]["psnr"] and ra[k]["decode_ok"] == rb[k]["decode_ok"] for k in rb)
    del a, b


@pytest.mark.parametrize("kw,match", [
    (dict(methods=["j2k-ldpc", "laser-jscc"]), "unknown method 'laser-jscc'"),
    (dict(channel="laser"), "unknown --channel 'laser'"),
    (dict(link="fiber"), "unknown --link 'fiber'"),
    (dict(snrs=[]), "no SNR"),
    (dict(cbrs=[2.0]), "outside"),
    (dict(cbrs=[0.0005]), "too small for every method"),
    (dict(trials=0), "trials"),
])
def test_bad_input_is_one_clear_error(images, tmp_path, kw, match):
    with pytest.raises(InputError, match=match):
        run_sweep(_spec(images, **kw), tmp_path / "bad", workers=1, progress=False)
    assert not (tmp_path / "bad" / "results.csv").exists()


def test_cli_empty_snr_range_and_json(images, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "gnuradio.medjscc", "sweep", *args], capture_output=True,
                              text=True, timeout=300)

    r = cli("--snr", "10:0:5", "--data", str(images), "--out", str(tmp_path / "x"))
    assert r.returncode == 1 and "--snr '10:0:5'" in r.stderr and "empty range" in r.stderr
    r = cli("--methods", "j2k-capacity,hevc-capacity", "--snr", "0,5", "--cbr", "1/8", "--data", str(images),
            "--limit", "1", "--out", str(tmp_path / "j"), "--json", "--workers", "1", "--no-plots")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    assert len(lines) == 4
    for obj in lines:
        assert {"method", "snr_db", "cbr", "channel", "link", "psnr", "roi_psnr", "ms_ssim", "decode_rate",
                "n"} <= set(obj)
        assert obj["n"] == 1 and obj["cbr"] == 0.125


def _free_port():
    from qa_helpers import free_port   # below the ephemeral range: see there

    return free_port()


def test_unreachable_ray_address_fails_fast(images, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from gnuradio.medjscc.evaluation import sweep

    # "fast" = the address probe (bounded connect) refuses it before Ray is ever started; checked
    # by construction, not by a wall-clock bound (that failed on a machine at load ~11)
    def no_ray(*a, **kw):
        raise AssertionError("ray.init reached with an address that does not answer")

    monkeypatch.setattr(sweep, "_ray_init", no_ray)
    with pytest.raises(MedJSCCError, match="does not answer"):
        run_sweep(_spec(images), tmp_path / "r", backend="ray", address=f"127.0.0.1:{_free_port()}",
                  progress=False)
    with pytest.raises(InputError, match="unknown --backend 'mpi'"):
        run_sweep(_spec(images), tmp_path / "r", backend="mpi", progress=False)
    with pytest.raises(InputError, match="--address only applies"):
        run_sweep(_spec(images), tmp_path / "r", backend="local", address="127.0.0.1:1", progress=False)


@pytest.mark.slow
def test_ray_and_local_backends_give_identical_numbers(images, tmp_path):
    pytest.importorskip("ray")
    spec = dict(methods=["j2k-ldpc", "j2k-capacity"], snrs=[2.0, 8.0])
    run_sweep(_spec(images, **spec), tmp_path / "local", backend="local", workers=2, progress=False, plots=False)
    try:
        run_sweep(_spec(images, **spec), tmp_path / "ray", backend="ray", workers=2, progress=False, plots=False)
    except MedJSCCError as e:
        if "did not start" in str(e):
            pytest.skip(f"Ray could not start on this machine: {e}")
        raise
    key = lambda r: (r["method"], r["mcs"], r["image"], r["snr_db"], r["trial"])  # noqa: E731
    local = {key(r): r for r in sweep.read_rows(tmp_path / "local" / "results.csv")}
    ray_rows = {key(r): r for r in sweep.read_rows(tmp_path / "ray" / "results.csv")}
    assert local.keys() == ray_rows.keys()
    for k in local:
        for col in ("psnr", "roi_psnr", "ms_ssim", "decode_ok", "source_bytes", "cbr_total"):
            assert local[k][col] == ray_rows[k][col], (k, col)


def test_report_target_checks_use_measured_margins():
    from gnuradio.medjscc.evaluation.report import target_checks

    def pt(method, snr, roi):
        return dict(method=method, snr_db=snr, cbr=1 / 16, channel="awgn", link="symbol", roi_psnr=roi)

    pts = [pt("medjscc", 0, 30.0), pt("medjscc", 10, 36.0), pt("j2k-ldpc", 0, 27.0), pt("j2k-ldpc", 10, 35.0),
           pt("j2k-capacity", 0, 31.0)]
    lines = "\n".join(target_checks(pts))
    assert "+3.00" in lines and "+1.00" in lines
    assert ">= +2 dB at SNR <= 10 dB: not met" in lines and ">= 0 from 0 to 20 dB: met" in lines
    assert "capacity bound at SNR <= 5 dB (0 dB: -1.00) -> not met" in lines
    assert "not evaluated" in target_checks([pt("j2k-ldpc", 0, 27.0)])[0]


def test_report_refuses_missing_folder(tmp_path):
    from gnuradio.medjscc.evaluation.report import write_report

    with pytest.raises(InputError, match="not found"):
        write_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="run 'medjscc sweep"):
        write_report(tmp_path / "empty")


def test_hybrid_reachability_uses_the_split_fitted_at_the_swept_cbr(monkeypatch):
    """At a budget too small for a 1/16 split's side frame (28 symbols at 20 dB) the 1/32 split
    (no side frame) still sends: the check must judge with the split the run uses, not 1/16's."""
    import numpy as np

    from gnuradio.medjscc.codec.hybrid import layout, split_rule
    from gnuradio.medjscc.errors import MedJSCCError
    from gnuradio.medjscc.evaluation.sweep import SweepSpec, check_reachable

    from gnuradio.medjscc.codec import hybrid

    # the shipped 1/16 split at 20 dB needs no side frame any more: stand in one that does
    real = hybrid._load_split_table
    monkeypatch.setattr(hybrid, "_load_split_table", lambda path, key="split": (
        ((0.0, hybrid.Split(0.15, 16, "j2k")),) if path == str(hybrid.split_file()) else real(path, key)))
    image = np.full((256, 256), 100, np.uint8)
    n_sym, snr = 24, 20.0
    with pytest.raises(MedJSCCError, match="side frame"):
        layout(n_sym, snr, split_rule(snr))                    # what the check used to ask
    layout(n_sym, snr, split_rule(snr, cbr=n_sym / image.size))   # what the run uses
    check_reachable(SweepSpec(methods=["hybrid-softcast"], snrs=[snr], cbrs=[n_sym / image.size]), image, None)
