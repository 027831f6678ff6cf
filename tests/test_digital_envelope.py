"""The fair digital envelope (issue #13): rate-matched MCS family, measured thresholds, the SNR ->
MCS rule fitted on validation images, and the ``digital-envelope`` sweep method."""
import json

import numpy as np
import pytest

from gnuradio.medjscc import snr as snr_mod
from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.evaluation import envelope, linkadapt, methods, qam


def _frames(mcs, n_sym, snr_db, n_frames, seed=0):
    p = linkadapt.plan(mcs, n_sym)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n_frames, p.info_bits)).astype(np.uint8)
    x = p.encode(bits)
    y = x + (snr_mod.complex_awgn(x.shape, snr_db, rng) if snr_db is not None else 0)
    n0 = snr_mod.noise_variance(snr_db if snr_db is not None else 60.0)
    llr = qam.demodulate_llr(y.reshape(-1), mcs.modulation, n0).reshape(n_frames, -1)
    return p, bits, p.decode(llr, bits)


@pytest.mark.parametrize("name", ["qpsk-0.070", "qpsk-0.560", "16qam-0.850", "256qam-0.895"])
@pytest.mark.parametrize("n_sym", [1000, 4096])
def test_rate_matching_fills_every_symbol_at_the_mcs_rate(name, n_sym):
    mcs = linkadapt.parse(name)
    p = linkadapt.plan(mcs, n_sym)
    assert p.tx_cw.size == p.coded_bits == n_sym * mcs.bits_per_symbol       # no symbol left idle
    assert p.info_bits == int(p.coded_bits * mcs.rate) // 8 * 8               # at the MCS's rate
    assert p.k_i.sum() == p.info_bits and p.k_i.max() - p.k_i.min() <= 1
    assert p.n_cw * p.code.k >= p.info_bits > (p.n_cw - 1) * p.code.k
    # every sent information bit of every codeword is transmitted at least once
    sent = set(zip(p.tx_cw.tolist(), p.tx_pos.tolist()))
    for i in range(p.n_cw):
        assert all((i, int(c)) in sent for c in p.code.info_cols[:p.k_i[i]])


@pytest.mark.parametrize("name", ["qpsk-0.090", "16qam-0.610", "256qam-0.895"])
def test_noiseless_round_trip(name):
    _, bits, (rx, ok) = _frames(linkadapt.parse(name), 1200, None, 2)
    assert ok.all() and np.array_equal(rx, bits)


def test_soft_combining_reaches_minus_5_db():
    """At -5.5 dB the repeated low-rate MCS decodes every frame while the rate-1/2-like one fails
    them all (were repeated LLRs overwritten instead of added, the low rate would fail too)."""
    _, _, (_, ok_low) = _frames(linkadapt.parse("qpsk-0.070"), 4096, -5.5, 6)
    _, _, (_, ok_high) = _frames(linkadapt.parse("qpsk-0.460"), 4096, -5.5, 3)
    assert ok_low.all() and not ok_high.any()


def test_decode_refuses_a_wrong_word():
    p, bits, _ = _frames(linkadapt.parse("qpsk-0.295"), 800, None, 1)
    x = p.encode(bits)
    llr = qam.demodulate_llr(x.reshape(-1), "qpsk", 1e-3)[None]
    other = bits.copy()
    other[0, 0] ^= 1
    assert not p.decode(llr, other)[1][0] and p.decode(llr, bits)[1][0]


def test_pick_rule():
    table = {"qpsk-0.070": -7.0, "qpsk-0.145": -4.0, "16qam-0.530": 6.0}
    assert linkadapt.pick(-3.0, 0.5, table).name == "qpsk-0.145"
    assert linkadapt.pick(-3.6, 0.5, table).name == "qpsk-0.070"
    assert linkadapt.pick(7.0, 1.5, table).name == "qpsk-0.145"
    assert linkadapt.pick(-20.0, 0.0, table).name == "qpsk-0.070"  # nothing fits: the most robust


def test_measured_thresholds_cover_minus_5_to_25_db_in_2_db_steps():
    th = linkadapt.thresholds()
    assert set(th) <= {m.name for m in linkadapt.FAMILY}
    vals = sorted(th.values())
    assert vals[0] <= -5.0, vals[0]
    assert vals[-1] >= 23.0, vals[-1]   # the next 2 dB step reaches 25 dB
    assert max(np.diff(vals)) <= 2.0, np.diff(vals)
    # thresholds grow with efficiency within a modulation (a measurement that went wrong would not)
    for mod in ("qpsk", "16qam", "64qam", "256qam"):
        ms = sorted((m for m in linkadapt.FAMILY if m.modulation == mod and m.name in th), key=lambda m: m.rate)
        assert all(th[a.name] < th[b.name] for a, b in zip(ms, ms[1:])), mod
def test_rule_was_fitted_on_validation_images():
    rule = json.loads(linkadapt.RULE_FILE.read_text())
    assert rule["fit"]["split"] == "val" and "test" not in rule["fit"]["data"]
    assert 0.0 <= rule["margin_db"] <= 6.0
    assert set(rule["codec"].values()) <= set(envelope.CODECS)


def test_send_frame_payload_padding_and_failure():
    link = methods.get_link("symbol", "awgn")
    mcs = linkadapt.parse("qpsk-0.185")
    payload = bytes(range(40))
    rx = envelope.send_frame(payload, mcs, 1024, link, 20.0, [1, 2, 3, 4])
    assert rx[:40] == payload and len(rx) == linkadapt.plan(mcs, 1024).payload_bytes
    assert envelope.send_frame(payload, mcs, 1024, link, -12.0, [1, 2, 3, 4]) is None
    with pytest.raises(MedJSCCError, match="does not fit"):
        envelope.send_frame(bytes(1000), mcs, 1024, link, 20.0, [1, 2, 3, 4])


def test_envelope_rows_name_mcs_and_codec_and_count_every_symbol(tmp_path):
    from PIL import Image

    from gnuradio.medjscc.evaluation.sweep import SweepSpec, json_line, run_sweep

    root = tmp_path / "imgs"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    y, x = np.mgrid[0:128, 0:128] / 128
    img = np.clip(120 + 70 * np.sin(6 * x) * np.cos(4 * y), 0, 255).astype(np.uint8)
    mask = (x - .5) ** 2 + (y - .5) ** 2 < .1
    Image.fromarray(img).save(root / "images" / "a.png")
    Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / "a.png")
    spec = SweepSpec(methods=["digital-envelope"], snrs=[-5.0, 20.0], cbrs=[1 / 16], data=str(root))
    res = run_sweep(spec, tmp_path / "out", workers=1, progress=False, plots=False)
    rule = envelope.load_rule()
    by_snr = {p["snr_db"]: p for p in res.points}
    for s, p in by_snr.items():
        obj = json.loads(json_line(p))
        assert obj["mcs"] == rule.pick(s).name and obj["codec"] == rule.codec(obj["mcs"])
        assert p["cbr_total"] == pytest.approx(methods.n_symbols(1 / 16, img.shape) / img.size)
    assert by_snr[20.0]["decode_rate"] == 1.0 and by_snr[20.0]["roi_psnr"] > by_snr[-5.0]["roi_psnr"]


def test_neural_side_info_crosses_the_noisy_symbol_link():
    """The side info is a digital frame on the same channel: counted in cbr_total (the analog
    payload shrinks so that both fit floor(cbr*H*W)), and a lost side-info frame loses the image."""
    y, x = np.mgrid[0:256, 0:256] / 256
    img = np.clip(120 + 70 * np.sin(6 * x) * np.cos(4 * y), 0, 255).astype(np.uint8)
    mask = (x - .5) ** 2 + (y - .5) ** 2 < .1
    rows, _ = methods.run_point("medjscc", img, mask, "synthetic", [-14.0, 20.0], 1 / 16, "awgn", "symbol", 0, 0,
                                random_codecs=True)
    low, high = rows
    budget = methods.n_symbols(1 / 16, img.shape) / img.size
    assert high["decode_ok"] and budget - 0.002 <= high["cbr_total"] <= budget + 1e-12
    assert not low["decode_ok"] and low["cbr_total"] <= budget + 1e-12
    # the side-info frame's symbols, not the codec's 1 bit a symbol, are what is counted
    side = methods.neural_model("medjscc", True).codec.encode(img, mask, snr_db=20.0, cbr=1 / 16).side_info
    assert envelope.side_info_symbols(len(side), envelope.side_info_mcs(20.0)) < 8 * len(side)
    assert envelope.side_info_symbols(len(side), envelope.side_info_mcs(-5.0)) > 8 * len(side)


def test_side_info_frame_that_leaves_no_room_fails_the_image_not_the_sweep():
    img = np.full((48, 48), 100, np.uint8)
    img[10:30, 12:40] = 180
    mask = img > 150
    rows, _ = methods.run_point("medjscc", img, mask, "tiny", [-5.0], 1 / 16, "awgn", "symbol", 0, 0,
                                random_codecs=True)
    assert not rows[0]["decode_ok"] and rows[0]["cbr_total"] == methods.n_symbols(1 / 16, img.shape) / img.size
