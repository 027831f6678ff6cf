"""Hybrid digital-analog codec, training-free stage (issue #13 part 2): codec/hybrid.py and the
``hybrid-softcast`` sweep method."""
import json
import math

import numpy as np
import pytest

from gnuradio.medjscc.codec import hybrid
from gnuradio.medjscc.evaluation import channel as chan
from gnuradio.medjscc.evaluation import envelope, linkadapt, methods
from gnuradio.medjscc.metrics import psnr

N_TOTAL = 4096   # CBR 1/16 of a 256x256 DRR


@pytest.fixture(scope="module")
def drr():
    """First test-split DRR and its lung mask (rendered on demand like the demo does)."""
    from gnuradio.medjscc.demo import _load_images

    images, masks, names = _load_images(1, 0)
    return images[0], masks[0], names[0]


def _run(image, mask, snr_db, split=None, seed=0, tx_snr=None, n_total=N_TOTAL, spoil=None):
    """Encode at ``tx_snr`` (default: the true SNR), send over seeded AWGN at ``snr_db``, decode."""
    tx_snr = snr_db if tx_snr is None else tx_snr
    tx = hybrid.encode(image, mask, tx_snr, n_total, split)
    y, h, n0 = hybrid.transmit_awgn(tx.symbols, snr_db, np.random.default_rng(seed))
    if spoil is not None:
        y = spoil(y, tx.layout)
    recon, info = hybrid.decode(y, h, n0, image.shape, tx_snr, n_total, split, crc_side=tx.side_bits,
                                crc_base=tx.base_bits)
    return tx, recon, info


def _ideal(image, mask, tx):
    """Base + the residual's sent DCT coefficients exactly (no channel noise): what the layers
    carry at best."""
    lay = tx.layout
    base = np.full(image.shape, hybrid.GREY)
    if lay.has_base:
        data = hybrid._base_stream(image, mask, lay.codec, lay.base_stream_bytes)
        base = hybrid._source(lay.codec).decode(data, image.shape).astype(float)
    c = hybrid._dct2(image.astype(float) - base).ravel()
    sel, _ = hybrid.selection(image.shape, lay.n_bands, hybrid.dequantise_variances(tx.codes), 2 * lay.n_analog)
    keep = np.zeros_like(c)
    keep[sel] = c[sel]
    return np.clip(np.round(base + hybrid._idct2(keep.reshape(image.shape))), 0, 255)


SIDE = hybrid.Split(0.4, 16, "j2k-roi")
PRIOR = hybrid.Split(0.4, 16, "j2k", tuple([30] * 10 + [25, 20, 15, 10, 6, 3]))


@pytest.mark.parametrize("split", [SIDE, PRIOR], ids=["side-frame", "prior"])
def test_round_trip_at_high_snr_is_near_base_plus_residual(drr, split):
    image, mask, _ = drr
    tx, recon, info = _run(image, mask, 35.0, split)
    assert info["side_ok"] and info["base_ok"] and tx.layout.has_base
    ideal = _ideal(image, mask, tx)
    lay = tx.layout
    base_only = hybrid._source(lay.codec).decode(hybrid._base_stream(image, mask, lay.codec, lay.base_stream_bytes),
                                                 image.shape)
    # the refinement adds a lot over the base and lands within 1 dB of its noiseless ceiling
    assert psnr(image, ideal, mask) > psnr(image, base_only, mask) + 3.0
    assert psnr(image, recon, mask) > psnr(image, ideal, mask) - 1.0


@pytest.mark.parametrize("snr_db", [-10.0, -5.0, 0.0, 7.5, 20.0, 30.0])
@pytest.mark.parametrize("split", [None, SIDE, PRIOR, hybrid.Split(0.0, 6, "j2k"), hybrid.Split(0.75, 6, "j2k")],
                         ids=["fitted", "side", "prior", "analog", "big-base"])
def test_layer_symbol_counts_add_up_to_the_budget(drr, snr_db, split):
    image, mask, _ = drr
    tx = hybrid.encode(image, mask, snr_db, N_TOTAL, split)
    lay = tx.layout
    assert lay.n_side + lay.n_base + lay.n_analog == N_TOTAL == tx.symbols.size
    if lay.n_side:   # the side frame: exactly its plan's symbols, carrying the flag and every band code
        p = linkadapt.plan(lay.side_mcs, lay.n_side)
        assert p.n_sym == lay.n_side and p.payload_bytes >= hybrid.side_bytes(lay.n_bands)
        assert tx.side_bits.size == p.info_bits
    else:
        assert lay.prior and tx.side_bits.size == 0
    if lay.has_base:
        assert linkadapt.plan(lay.mcs, lay.n_base).payload_bytes >= tx.base_bytes >= hybrid.MIN_BASE_BYTES // 2
    # analog symbols at unit mean power, to within the scale byte's step below
    power = np.mean(np.abs(tx.symbols[lay.n_side + lay.n_base:]) ** 2)
    assert 10 ** (-hybrid.SCALE_STEP_DB / 10) - 1e-9 <= power <= 1 + 1e-9
    assert np.all(np.isfinite(tx.symbols))


def test_below_the_lowest_mcs_it_is_pure_analog_without_a_cliff(drr):
    image, mask, _ = drr
    rule = envelope.load_rule()
    lowest = min(t for _, t in rule.thresholds) + rule.margin_db
    # whatever share a split asks for, below the lowest MCS there is no base layer
    big = hybrid.Split(0.95, 16, "j2k", PRIOR.prior_codes)
    assert hybrid.layout(N_TOTAL, lowest + 0.5, big).has_base
    for split in (SIDE, PRIOR, big):
        assert not hybrid.layout(N_TOTAL, lowest - 0.5, split).has_base
    # a prior fitted for a base's residual is not used without that base: the pure-analog prior is
    lay = hybrid.layout(N_TOTAL, lowest - 0.5, PRIOR)
    assert lay.prior_codes == hybrid.analog_prior_codes() != PRIOR.prior_codes and lay.bg_weight == 1.0
    grid = [-12.5, -10.0, -7.5, -5.0, -2.5, 0.0, 2.5, 5.0]
    scores = []
    for s in grid:
        tx, recon, info = _run(image, mask, s)
        if s < lowest:
            assert not tx.layout.has_base and tx.layout.n_analog == N_TOTAL - tx.layout.n_side
        assert info["side_ok"]
        scores.append(psnr(image, recon, mask))
    assert scores[0] > 15.0                      # far above a grey image at -12.5 dB
    assert psnr(image, np.full(image.shape, 128, np.uint8), mask) < 12.0
    drops = -np.diff(scores)
    assert drops.max() < 3.5, dict(zip(grid, np.round(scores, 2)))   # no cliff per 2.5 dB


def test_base_failure_is_reported_and_the_analog_layer_still_shows(drr):
    image, mask, _ = drr

    def erase_base(y, lay):   # the base frame's symbols lost: its LDPC decode cannot match the CRC
        y = y.copy()
        y[lay.n_side:lay.n_side + lay.n_base] = 0
        return y

    for split in (SIDE, PRIOR):
        tx, recon, info = _run(image, mask, 10.0, split, spoil=erase_base)
        assert tx.layout.has_base and info["side_ok"] and info["base_ok"] is False
        assert recon.std() > 5.0 and not np.all(recon == 128)      # analog over a zero base, not grey
        _, good, info_ok = _run(image, mask, 10.0, split)
        assert info_ok["base_ok"] and psnr(image, good, mask) > psnr(image, recon, mask) + 10
    # the sweep says so: decode_ok False on that image
    link = methods.SymbolLink("awgn")

    class Spoiled:
        name = "symbol"

        def digital(self, x, snr_db, seed_words):
            y, h, n0, e = link.digital(x, snr_db, seed_words)
            lay = hybrid.layout(N_TOTAL, snr_db, SIDE)
            return erase_base(y, lay), h, n0, e

    _, ok, _, label, info = hybrid.sweep_point(image, mask, 10.0, N_TOTAL, Spoiled(), [0, 1, 2, 0], SIDE)
    assert not ok and info["base_ok"] is False
    assert label == hybrid.layout(N_TOTAL, 10.0, SIDE).label


def test_side_frame_loss_is_reported(drr):
    image, mask, _ = drr

    def erase_side(y, lay):
        y = y.copy()
        y[:lay.n_side] = 0
        return y

    _, recon, info = _run(image, mask, 10.0, SIDE, spoil=erase_side)
    assert info["side_ok"] is False and info["base_ok"] is True   # the base alone is still shown
    assert recon.std() > 5.0


def test_deterministic_with_a_seed(drr):
    image, mask, name = drr
    link = methods.SymbolLink("awgn")
    a = hybrid.sweep_point(image, mask, 5.0, N_TOTAL, link, chan.channel_seed(0, name, 5.0, 0))
    b = hybrid.sweep_point(image, mask, 5.0, N_TOTAL, link, chan.channel_seed(0, name, 5.0, 0))
    c = hybrid.sweep_point(image, mask, 5.0, N_TOTAL, link, chan.channel_seed(1, name, 5.0, 0))
    assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
    assert not np.array_equal(a[0], c[0])


def test_power_allocation_is_the_constrained_llse_optimum():
    lam = np.array([100.0, 10.0, 1.0, 0.01])
    cnt = np.array([4, 8, 16, 32])
    s2 = 0.05
    p = hybrid.power_allocation(lam, cnt, 20.0, s2)
    assert np.isclose((cnt * p).sum(), 20.0) and p[-1] == 0 and (p[:3] > 0).all()

    def dist(q):
        return (cnt * lam * s2 / (q + s2)).sum()

    rng = np.random.default_rng(0)
    for _ in range(200):   # any other split of the same power is no better
        q = p * np.exp(rng.normal(0, 0.2, p.size))
        q = np.where(lam > 0, q, 0)
        q *= 20.0 / (cnt * q).sum()
        assert dist(q) >= dist(p) - 1e-9


def test_split_rule_file_is_fitted_on_validation():
    data = json.loads(hybrid.split_file().read_text())
    assert data["fit"]["split"] == "val" and "test" not in data["fit"]["data"]
    for snr, v in data["split"].items():
        sp = hybrid.split_from_json(v)
        assert 0 <= sp.base_share < 1 and hybrid.split_rule(float(snr)) == sp


def test_fit_merge_adds_rows_and_refuses_other_fits():
    """bench/fit_hybrid_split.py --merge: rows of another run join the file in SNR order; a fit on
    other images (or priors) is refused."""
    import importlib.util
    from pathlib import Path

    from gnuradio.medjscc.errors import InputError

    path = Path(__file__).resolve().parents[1] / "bench" / "fit_hybrid_split.py"
    spec = importlib.util.spec_from_file_location("fit_hybrid_split", path)
    fit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit)

    def run(snrs, images=6, prior=(1, 2)):
        return {"split": {f"{s:g}": {"base_share": s / 100} for s in snrs}, "analog_prior": list(prior),
                "fit": {"split": "val", "data": "d", "images": images, "prior_images": 8, "cbr": 0.0625,
                        "seed": 1, "psnr_slack_db": 1.0, "snr_db": list(snrs), "seconds": 10.0,
                        "command": f"fit {snrs}", "mean_roi_psnr_psnr_decode_rate": {f"{s:g}": {} for s in snrs}}}

    merged = fit.merge_fits(run([0.0, 5.0, 10.0]), run([2.5, 7.5]))
    assert list(merged["split"]) == ["0", "2.5", "5", "7.5", "10"]
    assert merged["fit"]["snr_db"] == [0.0, 2.5, 5.0, 7.5, 10.0] and merged["fit"]["seconds"] == 20.0
    assert merged["fit"]["merged_commands"] == ["fit [2.5, 7.5]"] and merged["fit"]["command"] == "fit [0.0, 5.0, 10.0]"
    with pytest.raises(InputError, match="images"):
        fit.merge_fits(run([0.0]), run([2.5], images=4))
    with pytest.raises(InputError, match="prior"):
        fit.merge_fits(run([0.0]), run([2.5], prior=(3, 4)))


def test_sweep_method_rows_and_json(drr):
    image, mask, name = drr
    rows, _ = methods.run_point("hybrid-softcast", image, mask, name, [0.0, 15.0], 1 / 16, "awgn", "symbol", 0, 0)
    assert [r["snr_db"] for r in rows] == [0.0, 15.0]
    for r in rows:
        assert r["cbr_total"] == N_TOTAL / image.size and math.isnan(r["cbr_air"])
        assert r["mcs"].count("+") == 2
    from gnuradio.medjscc.evaluation import sweep

    points, _ = sweep.aggregate([dict(r, model_sha256="") for r in rows])
    for pt in points:   # the montage finds the recon file by the full row label
        assert pt["recon_tag"] == next(r["mcs"] for r in rows if r["snr_db"] == pt["snr_db"])
        line = json.loads(sweep.json_line(pt))
        assert line["method"] == "hybrid-softcast" and "base_share" in line and "base_ok" in line
        assert 0 <= line["base_share"] < 1


def test_roi_weight_moves_the_analog_layer_into_the_roi(drr):
    """bg_weight < 1: the residual outside the lung mask is sent attenuated, so the ROI gets the
    power: better ROI-PSNR, and the background lands nearer the base alone."""
    image, mask, _ = drr
    plain = hybrid.Split(0.3, 16, "j2k", None, 1.0)
    roi = hybrid.Split(0.3, 16, "j2k", None, 0.3)
    _, rec_plain, info_plain = _run(image, mask, 10.0, plain, seed=3)
    tx, rec_roi, info_roi = _run(image, mask, 10.0, roi, seed=3)
    assert info_plain["base_ok"] and info_roi["base_ok"] and tx.layout.label.count("-bg0.3") == 1
    assert psnr(image, rec_roi, mask) > psnr(image, rec_plain, mask) + 0.5
    assert psnr(image, rec_roi, ~mask) < psnr(image, rec_plain, ~mask)


def test_base_backoff_picks_a_more_robust_mcs():
    a = hybrid.layout(N_TOTAL, 10.0, hybrid.Split(0.5, 16, "j2k"))
    b = hybrid.layout(N_TOTAL, 10.0, hybrid.Split(0.5, 16, "j2k", base_backoff_db=2.0))
    assert a.mcs == envelope.load_rule().pick(10.0) and b.mcs == envelope.load_rule().pick(8.0)
    assert b.mcs.efficiency < a.mcs.efficiency and a.n_base == b.n_base


def test_fading_link_equalises_the_analog_layer(drr):
    """On i.i.d. Rayleigh fading the RX derotates each symbol by its known gain and weighs it by
    |h| in the LLSE (no base here: the AWGN-fitted MCS rule is not meant for fading)."""
    image, mask, name = drr
    split = hybrid.Split(0.0, 16, "j2k")
    link = methods.SymbolLink("rayleigh")
    recon, ok, _, _, info = hybrid.sweep_point(image, mask, 25.0, N_TOTAL, link, chan.channel_seed(0, name, 25.0, 0),
                                               split)
    assert ok and info["side_ok"] and not info["has_base"]
    assert psnr(image, recon, mask) > 35.0


def test_a_base_that_cannot_fit_a_prior_split_fails_the_image_not_the_sweep(drr, monkeypatch):
    image, mask, name = drr
    monkeypatch.setattr(hybrid, "_base_stream", lambda *a, **k: None)
    with pytest.raises(hybrid.BaseDoesNotFit):
        hybrid.encode(image, mask, 10.0, N_TOTAL, PRIOR)
    recon, ok, nbytes, label, info = hybrid.sweep_point(image, mask, 10.0, N_TOTAL, methods.SymbolLink("awgn"),
                                                        [0, 1, 2, 0], PRIOR)
    assert not ok and nbytes == 0 and info["base_ok"] is False and np.all(recon == 128)
    # a side-frame split says "no base" in its flag instead and sends the image as pure analog
    tx = hybrid.encode(image, mask, 10.0, N_TOTAL, SIDE)
    assert not tx.layout.has_base and tx.layout.n_analog == N_TOTAL - tx.layout.n_side
    recon, ok, _, _, info = hybrid.sweep_point(image, mask, 10.0, N_TOTAL, methods.SymbolLink("awgn"),
                                               [0, 1, 2, 0], SIDE)
    assert ok and info["has_base"] is False and psnr(image, recon, mask) > 25.0
