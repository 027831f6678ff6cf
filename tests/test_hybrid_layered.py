"""The hybrid's two-layer base (issue #13, no cliff when the TX over-estimates the SNR): the first
JPEG2000 quality layer in a frame at a more robust MCS, the finer layer at the base MCS; losing
the finer layer shows the first instead of a grey image."""
import json
from dataclasses import replace

import numpy as np
import pytest

from gnuradio.medjscc.codec import hybrid
from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.evaluation import source
from gnuradio.medjscc.metrics import psnr

N_TOTAL = 4096


@pytest.fixture(scope="module")
def drr():
    from gnuradio.medjscc.demo import _load_images

    images, masks, _ = _load_images(1, 0)
    return images[0], masks[0]


def test_j2k_layers_first_is_the_one_layer_stream(drr):
    image, _ = drr
    j = source.J2kCodec()
    first, second = j.encode_layers(image, 150, 400)
    assert first == j.encode(image, 150) and 0 < len(second) <= 400
    alone = j.decode_layers(first, None, image.shape)
    both = j.decode_layers(first, second + bytes(9), image.shape)   # link padding after the second layer
    assert np.array_equal(alone, j.decode(first, image.shape))
    assert psnr(image, both) > psnr(image, alone) + 2.0
    assert j.encode_layers(image, 150, 0) == (first, b"")
    assert j.encode_layers(image, 5, 400) is None


def _layered_split(snr_db, share=0.5):
    return replace(hybrid.split_rule(snr_db, cbr=N_TOTAL / 65536), codec="j2k", robust_share=share)


def _send(image, mask, told, true, split, base_crc=False, spoil=None, seed=2):
    tx = hybrid.encode(image, mask, told, N_TOTAL, split, base_crc=base_crc)
    y, h, n0 = hybrid.transmit_awgn(tx.symbols, true, np.random.default_rng(seed))
    if spoil is not None:
        y = spoil(y.copy(), tx.layout)
    crc = {} if base_crc else dict(crc_side=tx.side_bits, crc_base=tx.base_bits, crc_robust=tx.robust_bits)
    return tx, *hybrid.decode(y, h, n0, image.shape, told, N_TOTAL, split, base_crc=base_crc, **crc)


def test_layout_puts_the_first_layer_at_a_more_robust_mcs():
    lay = hybrid.layout(N_TOTAL, 10.0, _layered_split(10.0))
    assert lay.layered and lay.robust_mcs.efficiency < lay.mcs.efficiency
    assert lay.n_side + lay.n_robust + lay.n_base + lay.n_analog == N_TOTAL
    assert lay.label.startswith(f"{lay.robust_mcs.name}/{lay.mcs.name}+j2k")
    flat = hybrid.layout(N_TOTAL, 10.0, replace(_layered_split(10.0), robust_share=0.0))
    assert not flat.layered and flat.n_base == lay.n_base + lay.n_robust and flat.n_analog == lay.n_analog
    with pytest.raises(MedJSCCError, match="two-layer base needs codec"):
        hybrid.layout(N_TOTAL, 10.0, replace(_layered_split(10.0), codec="j2k-roi"))
    with pytest.raises(MedJSCCError, match="robust_share"):
        hybrid.layout(N_TOTAL, 10.0, _layered_split(10.0, share=1.0))


@pytest.mark.parametrize("base_crc", [False, True])
def test_overestimated_snr_loses_the_finer_layer_not_the_image(drr, base_crc):
    image, mask = drr
    split = _layered_split(10.0)
    _, right, info = _send(image, mask, 10.0, 10.0, split, base_crc)
    assert info["base_ok"] and info["base_layers"] == 2 and psnr(image, right) > 35.0
    _, told_high, info = _send(image, mask, 10.0, 7.0, split, base_crc)
    assert info["base_ok"] and info["base_layers"] == 1
    flat = replace(split, robust_share=0.0)
    _, cliff, info_flat = _send(image, mask, 10.0, 7.0, flat, base_crc)
    assert info_flat["base_ok"] is False
    assert psnr(image, told_high) > 24.0 and psnr(image, told_high) > psnr(image, cliff) + 10.0


def test_low_snr_first_layer_takes_the_share_it_needs():
    """Near the bottom of the MCS table half of the base cannot carry a first layer at the robust
    MCS: the first layer takes more of it (up to ROBUST_MAX_SHARE), or the lowest MCS where the
    rule has none 4 dB lower; where even that is not ROBUST_MIN_GAIN_DB more robust, one layer."""
    from gnuradio.medjscc.evaluation import envelope, linkadapt

    th = dict(envelope.load_rule().thresholds)
    for told in (0.0, -2.0):
        lay = hybrid.layout(N_TOTAL, told, _layered_split(told))
        share = lay.n_robust / (lay.n_robust + lay.n_base)
        assert lay.layered and 0.5 < share <= hybrid.ROBUST_MAX_SHARE + 1e-3, (told, share)
        assert linkadapt.plan(lay.robust_mcs, lay.n_robust).payload_bytes >= hybrid.FIRST_LAYER_MIN_BYTES
        assert th[lay.mcs.name] - th[lay.robust_mcs.name] >= hybrid.ROBUST_MIN_GAIN_DB
    bottom = hybrid.layout(N_TOTAL, -5.0, _layered_split(-5.0))
    assert bottom.mcs is not None and not bottom.layered


def test_told_3_db_too_much_near_the_bottom_keeps_the_first_layer(drr):
    image, mask = drr
    split = _layered_split(-2.0)
    _, shown, info = _send(image, mask, -2.0, -5.0, split)
    assert info["base_ok"] and info["base_layers"] == 1
    _, cliff, info_flat = _send(image, mask, -2.0, -5.0, replace(split, robust_share=0.0))
    assert info_flat["base_ok"] is False and psnr(image, shown) > psnr(image, cliff) + 8.0


def test_lost_first_layer_frame_is_reported(drr):
    image, mask = drr

    def kill_robust(y, lay):
        y[lay.n_side: lay.n_side + lay.n_robust] = 0.0
        return y

    _, rec, info = _send(image, mask, 10.0, 10.0, _layered_split(10.0), base_crc=True, spoil=kill_robust)
    assert info["base_ok"] is False and info["base_layers"] == 0


def test_split_json_keeps_the_layers():
    sp = hybrid.Split(0.3, 16, "j2k", None, 0.5, rx_mask=True, robust_share=0.4, robust_backoff_db=3.5)
    assert hybrid.split_from_json(json.loads(json.dumps(hybrid.split_to_json(sp)))) == sp
    assert "robust_share" not in hybrid.split_to_json(replace(sp, robust_share=0.0))


# ----------------------------------------------------------------------------- on the air
def test_air_codec_hybrid_layered_shows_the_first_layer_when_told_too_much(drr):
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.hybrid_codec import SIDE_TAG_LAYERED
    from gnuradio.medjscc.snr import complex_awgn

    image, mask = drr
    codec = load_codec("hybrid-layered")
    enc = codec.encode(image, mask, snr_db=10.0, cbr=1 / 16)
    assert enc.side_info[0] == SIDE_TAG_LAYERED and enc.cbr_total == pytest.approx(1 / 16)
    got = {}
    for true in (10.0, 7.0):
        y = enc.symbols.astype(np.complex128) + complex_awgn(enc.symbols.shape, true, np.random.default_rng(4))
        rec, info = codec.decode_with_info(y, enc.side_info, image.shape, snr_db=true)
        got[true] = (psnr(image, rec), info)
    assert got[10.0][1]["shown"] == "hybrid" and got[10.0][1]["base_layers"] == 2
    assert got[7.0][1]["shown"] == "first_layer" and got[7.0][1]["base_layers"] == 1
    assert got[7.0][0] > 24.0 and got[10.0][0] > got[7.0][0] + 3.0


def test_any_hybrid_receiver_lays_out_either_frame(drr):
    """The side info's tag says the base's layout: the RX model only picks the receiver."""
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.hybrid_codec import read_side_info

    image, mask = drr
    one, two = load_codec("hybrid_softcast"), load_codec("hybrid_layered")
    for tx in (one, two):
        enc = tx.encode(image, mask, snr_db=10.0, cbr=1 / 16)
        assert read_side_info(enc.side_info) == (10.0, tx is two)
        shown = {}
        for rx in (one, two, load_codec("medjscc_hda")):
            rec, info = rx.decode_with_info(enc.symbols, enc.side_info, image.shape, snr_db=30.0)
            shown[rx.name] = (info["shown"], info.get("base_layers"), psnr(image, rec) > 35.0)
        want = ("hybrid", 2 if tx is two else None, True)
        assert all(v == want for v in shown.values()), (tx.name, shown)


def test_receiver_verdict_for_a_first_layer_image():
    from gnuradio.medjscc.blocks.jscc_rx import _note_sections, ack_message

    result = dict(image_id=3, nonce=7)
    complete = _note_sections(result, dict(side_ok=True, base_ok=True, shown="first_layer", base_layers=1,
                                           label="x", refined=False))
    assert not complete and result["decoded"] and result["base_layers"] == 1 and "finer base layer" in result["error"]
    assert ack_message(result) == dict(image_id=3, nonce=7, decoded=True, base_ok=False)
    full = dict(image_id=4, nonce=7)
    assert _note_sections(full, dict(side_ok=True, base_ok=True, shown="hybrid", base_layers=2, label="x"))
    assert ack_message(full)["base_ok"] is True


def test_sweep_method_on_both_links(drr):
    from gnuradio.medjscc.evaluation import methods

    image, mask = drr
    rows, _ = methods.run_point("hybrid-layered", image, mask, "t", [10.0], 1 / 16, "awgn", "symbol", 0, 0)
    assert rows[0]["decode_ok"] and "/" in rows[0]["mcs"]
    rows, _ = methods.run_point("hybrid-layered", image, mask, "t", [10.0], 1 / 16, "awgn", "ofdm", 0, 0)
    assert rows[0]["decode_ok"] and "/" in rows[0]["mcs"] and rows[0]["cbr_air"] > rows[0]["cbr_total"]


def test_one_model_sends_either_layout_on_request(drr):
    """``encode(layered=...)`` overrides the model's layout (jscc_tx's ``layered_until_feedback``):
    hybrid_softcast asked for two layers sends exactly hybrid_layered's frame, and back."""
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.hybrid_codec import SIDE_TAG, SIDE_TAG_LAYERED

    image, mask = drr
    one, two = load_codec("hybrid_softcast"), load_codec("hybrid_layered")
    as_two = one.encode(image, mask, snr_db=10.0, cbr=1 / 16, layered=True)
    native_two = two.encode(image, mask, snr_db=10.0, cbr=1 / 16)
    assert as_two.side_info == native_two.side_info and as_two.side_info[0] == SIDE_TAG_LAYERED
    assert np.array_equal(as_two.symbols, native_two.symbols)
    as_one = two.encode(image, mask, snr_db=10.0, cbr=1 / 16, layered=False)
    native_one = one.encode(image, mask, snr_db=10.0, cbr=1 / 16)
    assert as_one.side_info[0] == SIDE_TAG and np.array_equal(as_one.symbols, native_one.symbols)
    assert not np.array_equal(as_one.symbols, as_two.symbols)
    _, info = one.decode_with_info(as_two.symbols, as_two.side_info, image.shape, snr_db=30.0)
    assert info["shown"] == "hybrid" and info["base_layers"] == 2


def test_encode_frames_passes_the_layout_through(drr):
    from gnuradio.medjscc.blocks._phyadapt import make_params
    from gnuradio.medjscc.blocks.jscc_tx import encode_frames
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.codec.hybrid_codec import SIDE_TAG, SIDE_TAG_LAYERED

    image, mask = drr
    codec, params = load_codec("hybrid_softcast"), make_params({})
    tags = [encode_frames(codec, image, mask, 10.0, 1 / 16, 0, params, layered=lay)[0].side_info[0]
            for lay in (None, True, False)]
    assert tags == [SIDE_TAG, SIDE_TAG_LAYERED, SIDE_TAG]
