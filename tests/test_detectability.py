"""The hybrid's task-weighted analog layer (issue #15): the error weighted towards the DCT bands the
nodule observer reads (codec/detectability.py), sweep method ``hybrid-softcast-task``."""
import json
from dataclasses import replace

import numpy as np
import pytest

from gnuradio.medjscc.codec import detectability, hybrid
from gnuradio.medjscc.errors import InputError, MedJSCCError
from gnuradio.medjscc.evaluation import methods
from gnuradio.medjscc.metrics import psnr

N_TOTAL = 4096   # CBR 1/16 of a 256x256 DRR
SHAPE = (256, 256)


@pytest.fixture(scope="module")
def drr():
    from gnuradio.medjscc.demo import _load_images

    images, masks, names = _load_images(1, 0)
    return images[0], masks[0], names[0]


def _send(image, mask, snr_db, split, seed=3, rx_split=None):
    tx = hybrid.encode(image, mask, snr_db, N_TOTAL, split)
    y, h, n0 = hybrid.transmit_awgn(tx.symbols, snr_db, np.random.default_rng(seed))
    recon, info = hybrid.decode(y, h, n0, image.shape, snr_db, N_TOTAL, rx_split or split,
                                crc_side=tx.side_bits, crc_base=tx.base_bits)
    return tx, recon, info


def test_shipped_profile_peaks_where_the_observer_reads():
    rho = detectability.band_detectability(SHAPE, hybrid.N_BANDS_DEFAULT)
    assert rho.shape == (hybrid.N_BANDS_DEFAULT,) and np.all(np.isfinite(rho)) and np.all(rho >= 0)
    assert rho.max() == pytest.approx(1.0)
    # nodules of 3-10 px: the template reads detail, not the DC band nor the finest corner band
    assert 6 <= int(np.argmax(rho)) <= hybrid.N_BANDS_DEFAULT - 2
    assert rho[0] < 0.01


def test_band_weights_and_bad_weights():
    assert detectability.band_weights(SHAPE, 16, 0.0) is None
    w = detectability.band_weights(SHAPE, 16, 30.0)
    assert np.all(w >= 1.0) and w.max() == pytest.approx(31.0)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="task weight"):
            detectability.band_weights(SHAPE, 16, bad)


def test_missing_or_broken_spectrum_file_names_the_bench(tmp_path):
    with pytest.raises(MedJSCCError, match="fit_nodule_spectrum"):
        detectability.band_detectability(SHAPE, 16, str(tmp_path / "none.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"observer_energy": [1.0, 2.0]}))
    with pytest.raises(MedJSCCError, match="refit"):
        detectability.band_detectability(SHAPE, 16, str(bad))


def test_weight_zero_is_the_mse_layer_bit_for_bit():
    rng = np.random.default_rng(1)
    residual = rng.normal(0, 10, SHAPE)
    a = hybrid.analog_layer(residual, 1500, 5.0, 16)
    b = hybrid.analog_layer(residual, 1500, 5.0, 16, weights=detectability.band_weights(SHAPE, 16, 0.0))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_weights_move_channel_uses_to_the_weighted_bands():
    lam = hybrid.dequantise_variances(np.array([40, 38, 36, 34, 32, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10]))
    w = np.ones(16)
    w[12] = 1e4
    _, plain = hybrid.selection(SHAPE, 16, lam, 3000)
    _, weighted = hybrid.selection(SHAPE, 16, hybrid.allocation_variances(lam, w), 3000)
    assert not np.any(plain == 12) and np.any(weighted == 12)
    counts = np.full(16, 100)
    g_plain = hybrid.analog_gains(lam, counts, 1500, 5.0)
    g_task = hybrid.analog_gains(lam, counts, 1500, 5.0, w)
    assert g_task[12] > g_plain[12] and g_task[0] < g_plain[0]


def test_task_weighted_frame_round_trip_needs_the_same_weights_at_the_rx(drr):
    image, mask, _ = drr
    split = replace(hybrid.split_rule(10.0, cbr=N_TOTAL / image.size), task_weight=30.0)
    tx, recon, info = _send(image, mask, 10.0, split)
    assert info["side_ok"] and info["base_ok"] and tx.layout.label.endswith(tx.layout.label.split("+")[-1])
    assert "-t30" in tx.layout.label
    good = psnr(image, recon)
    _, wrong, _ = _send(image, mask, 10.0, split, rx_split=replace(split, task_weight=0.0))
    assert good > 30.0 and good > psnr(image, wrong) + 3.0


def test_split_json_round_trip_keeps_the_weight():
    sp = hybrid.Split(0.3, 16, "j2k", None, 0.5, rx_mask=True, task_weight=12.5)
    assert hybrid.split_from_json(json.loads(json.dumps(hybrid.split_to_json(sp)))) == sp
    assert "task_weight" not in hybrid.split_to_json(replace(sp, task_weight=0.0))


def test_sweep_method_on_symbol_link_only(drr):
    image, mask, name = drr
    rows, _ = methods.run_point("hybrid-softcast-task", image, mask, name, [5.0], 1 / 16, "awgn", "symbol", 0, 0)
    w = detectability.weight_rule(5.0)
    assert len(rows) == 1 and rows[0]["decode_ok"] and (f"-t{w:g}" in rows[0]["mcs"]) == (w > 0)
    with pytest.raises(InputError, match="symbol"):
        methods.run_point("hybrid-softcast-task", image, mask, name, [5.0], 1 / 16, "awgn", "ofdm", 0, 0)


def test_fit_profiles_on_synthetic_pairs():
    rng = np.random.default_rng(0)
    present, absent, nodules = [], [], []
    yy, xx = np.mgrid[0:64, 0:64]
    for k in range(12):
        a = 100 + rng.normal(0, 5, (64, 64))
        c = (20 + k % 5 * 5, 18 + k % 4 * 6)
        blob = 30 * np.exp(-((yy - c[0]) ** 2 + (xx - c[1]) ** 2) / (2 * 2.0 ** 2))
        present.append(a + blob)
        absent.append(a)
        nodules.append({"centre_px": [float(c[0]), float(c[1])], "radius_px": 3.0})
    fit = detectability.fit_profiles(present, absent, nodules)
    t = np.asarray(fit["observer_energy"])
    s = np.asarray(fit["nodule_energy"])
    assert t.shape == s.shape == (detectability.BINS,) and np.all(t >= 0) and t.sum() > 0
    # a Gaussian blob's energy sits at low radius; white background: the template is the blob-matched
    # filter, also low-pass, so its upper half of the spectrum holds little of its energy
    half = detectability.BINS // 2
    assert s[:half].sum() > 10 * s[half:].sum() and t[:half].sum() > 3 * t[half:].sum()
    with pytest.raises(InputError, match="at least 2"):
        detectability.fit_profiles(present[:1], absent[:1], nodules[:1])


def test_weight_rule_steps_and_bad_tables(tmp_path):
    table = tmp_path / "w.json"
    table.write_text(json.dumps({"weights": {"-5": 1000, "0": 100, "10": 0}}))
    got = [detectability.weight_rule(s, table) for s in (-9.0, -5.0, -0.1, 0.0, 7.5, 10.0, 30.0)]
    assert got == [1000.0, 1000.0, 1000.0, 100.0, 100.0, 0.0, 0.0]
    table2 = tmp_path / "bad.json"
    table2.write_text(json.dumps({"weights": {"0": -1}}))
    with pytest.raises(MedJSCCError, match="task_weight_pick"):
        detectability.weight_rule(0.0, table2)
    with pytest.raises(MedJSCCError, match="task_weight_pick"):
        detectability.weight_rule(0.0, tmp_path / "missing.json")
    shipped = [detectability.weight_rule(s) for s in (-5.0, 0.0, 5.0, 10.0, 20.0)]
    assert all(w >= 0 for w in shipped)
