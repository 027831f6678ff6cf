"""The faster paths behind ``medjscc sweep --task nodule`` (issue #15: 3 SNRs x 2 methods under
3 minutes) give the reference computation's numbers: the observer's vectorised bootstrap, the
codec's reuse of its CBR-independent network outputs, the memo of the ROI grid code, task rows
without image metrics, and the envelope's task figures attached to its points."""
import math

import numpy as np
import pytest

from gnuradio.medjscc.evaluation import observer as obs
from gnuradio.medjscc.evaluation import task as task_mod


def _reference_evaluate(v1, v0, n_boot=obs.N_BOOT, seed=0):
    """The observer's figures as first written: one auc_empirical per bootstrap replicate."""
    t1, t0 = obs.cross_validated_scores(v1, v0)
    rng = np.random.default_rng(seed)
    n = len(t1)
    boots = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        boots[b] = obs.auc_empirical(t1[idx], t0[idx])
    lo, hi = np.quantile(boots, [(1 - obs.CI) / 2, 1 - (1 - obs.CI) / 2])
    return obs.auc_empirical(t1, t0), float(lo), float(hi), obs.dprime(t1, t0)


@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_bootstrap_equals_the_per_replicate_ranks(ties):
    rng = np.random.default_rng(3)
    for n in (4, 7, 30):
        t1, t0 = rng.normal(0.8, 1, n), rng.normal(0, 1, n)
        if ties:   # grey (failed) images give tied scores: the 0.5 terms must match the mid-ranks
            t1, t0 = np.round(t1), np.round(t0)
        idx = rng.integers(0, n, (200, n))
        fast = obs.bootstrap_aucs(t1, t0, idx)
        slow = np.array([obs.auc_empirical(t1[i], t0[i]) for i in idx])
        assert np.array_equal(fast, slow)   # bit for bit, not approximately


def test_evaluate_equals_the_reference_loop():
    rng = np.random.default_rng(11)
    n = 12
    v0 = rng.normal(0, 1, (n, obs.N_CHANNELS))
    v1 = v0 + rng.normal(0.6, 1, (n, obs.N_CHANNELS))
    res = obs.evaluate(v1, v0, n_boot=300)
    assert (res.auc, res.auc_lo, res.auc_hi, res.dprime) == _reference_evaluate(v1, v0, n_boot=300)
    grey = np.zeros((n, obs.N_CHANNELS))   # every image the same: all scores tie
    res = obs.evaluate(grey, grey.copy(), n_boot=50)
    assert (res.auc, res.auc_lo, res.auc_hi) == (0.5, 0.5, 0.5)


def test_codec_reusing_its_analysis_encodes_the_same_symbols(random_codecs):
    from gnuradio.medjscc.evaluation import methods as meth

    codec = meth.neural_codec("medjscc", random_init=True)
    assert codec.reuse_analysis   # the sweep's cached codecs reuse it
    y, x = np.mgrid[0:64, 0:80] / 64.0
    images = [np.clip(120 + 70 * np.sin(5 * x + k) * np.cos(3 * y), 0, 255).astype(np.uint8) for k in range(2)]
    mask = (x - .6) ** 2 + (y - .5) ** 2 < .1
    # the retry pattern of the symbol link: same image and SNR, several CBRs; then another image
    calls = [(0, 5.0, 1 / 16), (0, 5.0, 0.055), (0, 5.0, 0.05), (1, 5.0, 0.05), (1, 0.0, 0.05), (0, 0.0, 1 / 16)]
    fast = []
    for i, snr, cbr in calls:
        fast.append(codec.encode(images[i], mask, snr_db=snr, cbr=cbr))
    codec.reuse_analysis = False
    try:
        for (i, snr, cbr), a in zip(calls, fast):
            b = codec.encode(images[i], mask, snr_db=snr, cbr=cbr)
            assert a.side_info == b.side_info and a.symbols.tobytes() == b.symbols.tobytes()
            assert a.cbr_total == b.cbr_total
    finally:
        codec.reuse_analysis = True


def test_roi_grid_code_memo_is_the_coder_output():
    from gnuradio.medjscc.roi import sideinfo

    rng = np.random.default_rng(0)
    for shape in ((16, 16), (12, 20), (1, 5)):
        g = rng.random(shape) < 0.4
        first = sideinfo.encode_mask(g)
        assert sideinfo.encode_mask(g.copy()) == first == sideinfo._encode_mask(g)
        assert np.array_equal(sideinfo.decode_mask(first, shape), g)
    # same packed bytes, other shape: another code
    a, b = np.ones((2, 8), bool), np.ones((4, 4), bool)
    a[0, 0] = b[0, 0] = False
    assert sideinfo.decode_mask(sideinfo.encode_mask(b), (4, 4)).shape == (4, 4)
    assert sideinfo.encode_mask(a) == sideinfo._encode_mask(a) and sideinfo.encode_mask(b) == sideinfo._encode_mask(b)


def test_rows_without_metrics_carry_the_same_images():
    from gnuradio.medjscc.evaluation import methods as meth

    y, x = np.mgrid[0:64, 0:64] / 64.0
    img = np.clip(120 + 60 * np.sin(6 * x) * np.cos(4 * y), 0, 255).astype(np.uint8)
    mask = (x - .5) ** 2 + (y - .5) ** 2 < .1
    args = ("j2k-capacity", img, mask, "a", [0.0, 10.0], 0.25, "awgn", "symbol", 0, 0)
    rows, recons = meth.run_point(*args, keep_recon_snrs=[0.0, 10.0])
    rows2, recons2 = meth.run_point(*args, keep_recon_snrs=[0.0, 10.0], metrics=False)
    assert recons.keys() == recons2.keys()
    assert all(np.array_equal(recons[k], recons2[k]) for k in recons)
    for a, b in zip(rows, rows2):
        assert {k: v for k, v in a.items() if k not in ("psnr", "roi_psnr", "ms_ssim")} == \
               {k: v for k, v in b.items() if k not in ("psnr", "roi_psnr", "ms_ssim")}
        assert math.isfinite(a["psnr"]) and math.isnan(b["psnr"]) and math.isnan(b["ms_ssim"])


def test_envelope_points_get_their_task_figures():
    """digital-envelope rows are labelled <mcs>+<codec>; its point holds them split: the task rows
    still reach the point (per-MCS digital methods keep matching per MCS)."""
    rows = []
    for method, label in (("digital-envelope", "qpsk-0.295+j2k-roi"), ("j2k-ldpc", "qpsk-r1/2"),
                          ("j2k-ldpc", "bpsk-r1/4")):
        for pair in range(6):
            for signal in (0, 1):
                rows.append(dict(method=method, mcs=label, snr_db=0.0, cbr=0.0625, channel="awgn", link="symbol",
                                 trial=0, pair=pair, signal=signal, dice_vs_original=0.9,
                                 v=np.full(obs.N_CHANNELS, float(signal) + 0.1 * pair)
                                 + (0.5 if label == "bpsk-r1/4" else 0.0) * signal))
    points = [dict(method="digital-envelope", mcs="qpsk-0.295", codec="j2k-roi", snr_db=0.0, cbr=0.0625,
                   channel="awgn", link="symbol"),
              dict(method="j2k-ldpc", mcs="qpsk-r1/2", snr_db=0.0, cbr=0.0625, channel="awgn", link="symbol")]
    per_mcs = [dict(points[1]), dict(points[1], mcs="bpsk-r1/4")]
    task_mod.attach(points, per_mcs, rows)
    for p in points + per_mcs:
        assert p["task_n_pairs"] == 6 and 0.0 <= p["task_auc"] <= 1.0 and p["dice_vs_original"] == pytest.approx(0.9)
    assert per_mcs[0]["task_dprime"] != per_mcs[1]["task_dprime"]   # each MCS its own rows
