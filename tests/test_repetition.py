"""Repeated strong symbols (codec.repetition): stream layout, combining, side info, the codec and
the OFDM framing that must put the two copies in different frames."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from gnuradio.medjscc.codec import repetition, sideinfo
from gnuradio.medjscc.errors import InputError, MedJSCCError


@pytest.mark.parametrize("n", [1, 7, 100, 3901])
@pytest.mark.parametrize("code", [0, 1, 51, 128, 255])
def test_spread_then_combine_gives_the_symbols_back(n, code):
    x = (np.arange(n) + 1j * np.arange(n)[::-1]).astype(np.complex64)
    sent = repetition.spread(x, code)
    k = repetition.repeat_count(n, code)
    assert sent.size == n + k == repetition.sent_count(n, code)
    assert repetition.unique_count(sent.size, code) == n
    # each repeated symbol is followed by its copy; the rest keep their order
    np.testing.assert_array_equal(sent[0:2 * k:2], x[:k])
    np.testing.assert_array_equal(sent[1:2 * k:2], x[:k])
    np.testing.assert_array_equal(sent[2 * k:], x[k:])
    out, lost, inv, copies = repetition.combine(sent, code)
    np.testing.assert_allclose(out, x)
    assert not lost.any() and inv is None
    assert copies[:k].tolist() == [2] * k and (copies[k:] == 1).all()


def test_unique_budget_is_the_largest_stream_that_fits():
    for code in (13, 51, 200):
        for budget in range(1, 400):
            n = repetition.unique_budget(budget, code)
            assert repetition.sent_count(n, code) <= budget < repetition.sent_count(n + 1, code)


def test_a_stream_length_no_unique_count_gives_is_an_input_error():
    # code 128: n unique -> n + n // 2 sent; 3 unique send 4 and 4 send 6, so 5 is impossible
    with pytest.raises(InputError, match="repeat code 128"):
        repetition.unique_count(5, 128)


def test_code_for_fraction_rejects_out_of_range_values():
    assert repetition.code_for_fraction(0) == 0
    assert repetition.code_for_fraction(0.2) == 51
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(MedJSCCError, match="repeat fraction"):
            repetition.code_for_fraction(bad)


def test_an_erased_copy_is_filled_by_the_other_and_only_both_lost_is_lost():
    x = np.arange(1, 11).astype(np.complex64)
    code = 128                                   # 10 unique -> the first 5 twice
    sent = repetition.spread(x, code)
    er = np.zeros(sent.size, bool)
    er[0] = True                                 # symbol 0: original lost, copy arrives
    er[2] = er[3] = True                         # symbol 1: both copies lost
    er[10] = True                                # symbol 5 (sent once) lost
    out, lost, _, copies = repetition.combine(np.where(er, 0, sent), code, er)
    assert lost.tolist() == [False, True, False, False, False, True, False, False, False, False]
    assert out[0] == x[0] and out[1] == 0 and out[5] == 0
    assert copies[:3].tolist() == [1, 0, 2]


def test_mmse_estimates_are_combined_by_maximum_ratio_and_rescaled():
    x = np.array([1 + 1j, -2.0, 0.5j, 3.0], np.complex64)
    code = 128                                   # 4 unique -> the first 2 twice: stream of 6
    sent = repetition.spread(x, code)
    v = np.array([0.1, 0.3, 1.0, 0.5, 0.2, 0.4])   # each copy's 1/SNR
    mmse = sent / (1 + v)                        # noiseless MMSE estimates, as the OFDM RX gives
    out, lost, inv, _ = repetition.combine(mmse, code, None, v)
    v_comb = np.array([1 / (1 / 0.1 + 1 / 0.3), 1 / (1 / 1.0 + 1 / 0.5), 0.2, 0.4])
    np.testing.assert_allclose(inv, v_comb, rtol=1e-9)
    np.testing.assert_allclose(out, x / (1 + v_comb), rtol=1e-5)
    # a lost copy (inf) contributes nothing; both lost -> inf and 0
    v2 = v.copy()
    v2[0] = np.inf
    out2, lost2, inv2, _ = repetition.combine(np.where(np.isinf(v2), 0, mmse), code, None, v2)
    np.testing.assert_allclose(inv2[0], 0.3)
    np.testing.assert_allclose(out2[0], x[0] / 1.3, rtol=1e-5)
    v2[1] = np.inf
    out3, lost3, inv3, _ = repetition.combine(np.where(np.isinf(v2), 0, mmse), code, None, v2)
    assert lost3[0] and np.isinf(inv3[0]) and out3[0] == 0


@pytest.mark.parametrize("power", [None, 40000])
def test_side_info_carries_the_repeat_code_beside_the_power_code(power):
    rate = np.array([[1, 2], [3, 0]])
    mask = b"\x81\x02"
    plain = sideinfo.pack(rate, 16, mask, 2, power)
    rep = sideinfo.pack(rate, 16, mask, 2, power, repeat_code=51)
    assert len(rep) == len(plain) + 1
    assert sideinfo.repeat_code_of(plain) == 0 and sideinfo.repeat_code_of(rep) == 51
    assert sideinfo.power_code_of(rep) == power
    for blob in (plain, rep):
        r, m = sideinfo.unpack(blob, (2, 2), 16)
        np.testing.assert_array_equal(r, rate)
        assert m == mask
    with pytest.raises(MedJSCCError, match="truncated"):
        sideinfo.repeat_code_of(rep[:1] if power is None else rep[:3])


def test_the_ofdm_interleaver_puts_the_two_copies_in_different_frames():
    from gnuradio.medjscc.phy import OfdmParams, frame_image

    params = OfdmParams().validate()
    # 1/16 and 1/32 of a 256x256 image and others; 1600 unique: one full frame + a short one
    # were the frames not split evenly
    for n_unique, code in ((3900, 51), (3000, 26), (2000, 128), (1600, 51), (1617, 51), (5000, 51)):
        stream = repetition.spread(np.arange(n_unique, dtype=np.complex64), code)
        stream = stream + 1j * np.arange(stream.size)          # tag every stream position
        k = repetition.repeat_count(n_unique, code)
        frame_of = np.empty(stream.size, np.int64)
        frames = frame_image(0, stream, b"", params)
        assert len(frames) >= 2
        for f, (_, payload) in enumerate(frames):
            frame_of[np.round(payload.imag).astype(int)] = f
        assert (frame_of[0:2 * k:2] != frame_of[1:2 * k:2]).all()


@pytest.fixture(scope="module")
def shipped():
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.api import shipped_models_dir

    if not (shipped_models_dir() / "medjscc.pt").exists():
        pytest.skip("shipped weights missing")
    return load_codec("medjscc")


def _drr(n):
    from gnuradio.medjscc import demo

    images, masks, _ = demo._load_images(n, 0)
    return images, masks


def test_codec_pays_the_copies_out_of_the_same_cbr_and_decodes_them(shipped):
    from gnuradio.medjscc import metrics

    (img,), (m,) = _drr(1)
    plain = shipped.encode(img, m, snr_db=20, cbr=1 / 16)
    rep = shipped.encode(img, m, snr_db=20, cbr=1 / 16, repeat_strong=0.2)
    assert sideinfo.repeat_code_of(rep.side_info) == 51
    assert rep.cbr_total <= 1 / 16 + 1e-9 and rep.cbr_total > 1 / 16 - 0.001
    n = repetition.unique_count(rep.symbols.size, 51)
    k = rep.symbols.size - n
    assert k == repetition.repeat_count(n, 51) and n < plain.symbols.size
    # the copies replace unique symbols: the stream is as long as before, less the repeat byte
    assert plain.symbols.size - 24 <= rep.symbols.size <= plain.symbols.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = shipped.decode(rep.symbols, rep.side_info, rep.shape, snr_db=25)
    assert metrics.roi_psnr(img, out, m) > 30
    with pytest.raises(InputError):          # a stream of the wrong length is refused
        shipped.decode(rep.symbols[:-400], rep.side_info, rep.shape, snr_db=25)


def test_repeating_strong_symbols_keeps_more_of_the_image_when_a_frame_is_lost(shipped):
    """A third of the stream erased at random (one of three frames), 20 dB: the copies keep the
    strong components, so ROI-PSNR is clearly higher than without repetition at the same cbr."""
    from gnuradio.medjscc import metrics
    from gnuradio.medjscc.blocks.jscc_rx import erasure_snr_db
    from gnuradio.medjscc.codec.api import Codec
    from gnuradio.medjscc.snr import complex_awgn

    images, masks = _drr(3)
    got = {}
    for frac in (0.0, 0.2):
        rng = np.random.default_rng(4)
        vals = []
        for img, m in zip(images, masks):
            enc = shipped.encode(img, m, snr_db=20, cbr=1 / 16, repeat_strong=frac)
            y = enc.symbols + complex_awgn(enc.symbols.size, 20.0, rng)
            er = np.zeros(y.size, bool)
            er[rng.permutation(y.size)[: y.size // 3]] = True
            snr = erasure_snr_db(20.0, float(Codec.unique_erased(enc.side_info, er).mean()))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = shipped.decode(y.astype(np.complex64), enc.side_info, enc.shape, snr_db=snr, erased=er)
            vals.append(metrics.roi_psnr(img, out, m))
        got[frac] = float(np.mean(vals))
    assert got[0.2] > got[0.0] + 2.0, got


def test_receiver_erasure_rule_counts_a_symbol_lost_only_when_both_copies_are():
    from gnuradio.medjscc.codec.api import Codec

    side = sideinfo.pack(None, 16, None, 2, None, repeat_code=128)
    er = np.zeros(6, bool)                       # 4 unique, the first 2 sent twice
    er[[0, 4]] = True                            # a copy of symbol 0, and symbol 2 (sent once)
    np.testing.assert_array_equal(Codec.unique_erased(side, er), [False, False, True, False])
    plain = sideinfo.pack(None, 16, None, 2, None)
    np.testing.assert_array_equal(Codec.unique_erased(plain, er), er)


def test_codec_repeat_strong_is_validated_in_the_config():
    from gnuradio.medjscc.config import LinkConfig

    cfg = LinkConfig()
    cfg.codec.repeat_strong = 1.5
    with pytest.raises(MedJSCCError, match="codec.repeat_strong"):
        cfg.validate()


def test_sweep_rep_methods_repeat_and_the_plain_ones_do_not():
    """``medjscc-rep``: the medjscc weights with 20 % of the strong symbols twice, its own codec
    object (the plain method's codec keeps sending every symbol once)."""
    from gnuradio.medjscc.evaluation import methods

    rep = methods.neural_model("medjscc-rep", random_init=True).codec
    plain = methods.neural_model("medjscc", random_init=True).codec
    assert rep is not plain and rep.repeat_strong == 0.2 and plain.repeat_strong == 0.0
    rng = np.random.default_rng(2)
    img = (rng.random((128, 128)) * 255).astype(np.uint8)
    mask = np.zeros((128, 128), bool)
    mask[32:96, 32:96] = True
    rows, _ = methods.run_point("medjscc-rep", img, mask, "x", [20.0], 1 / 16, "awgn", "symbol", 0, 0,
                                random_codecs=True)
    assert rows[0]["method"] == "medjscc-rep" and rows[0]["decode_ok"]
    assert rows[0]["cbr_total"] <= 1 / 16 + 1e-9
    enc = rep.encode(img, mask, snr_db=20, cbr=1 / 16)
    assert sideinfo.repeat_code_of(enc.side_info) == 51


def test_every_rep_method_is_a_shipped_model_sending_its_strong_symbols_twice():
    from gnuradio.medjscc.codec.api import shipped_models_dir
    from gnuradio.medjscc.evaluation import methods

    for name, (base, share) in methods.REPEAT_VARIANTS.items():
        assert name == f"{base}-rep" and base in methods.NEURAL and name in methods.NEURAL, name
        assert (shipped_models_dir() / f"{base}.pt").is_file(), base
        assert methods.neural_model(name).codec.repeat_strong == share == 0.2
