"""The hybrid codec on the air (issue #13 part 3): codec/hybrid_codec.py behind the codec interface,
and jscc_rx's frame gathering with it (no GNU Radio scheduler; the flowgraph runs in qa_hybrid_air.py)."""
import numpy as np
import pytest

from gnuradio.medjscc.codec import hybrid, load_codec
from gnuradio.medjscc.codec.hybrid_codec import (SIDE_TAG, HybridCodec, HybridSideInfoError, pack_side_info,
                                                 receiver_gains, snr_from_code, unpack_side_info)
from gnuradio.medjscc.errors import InputError, MedJSCCError
from gnuradio.medjscc.metrics import image_metrics
from gnuradio.medjscc.snr import complex_awgn


@pytest.fixture(scope="module")
def drr():
    from gnuradio.medjscc.demo import _load_images

    images, masks, _ = _load_images(1, 0)
    return images[0], masks[0]


@pytest.fixture(scope="module")
def codec():
    return load_codec("hybrid-softcast")


def _awgn(enc, snr_db, seed=0):
    rng = np.random.default_rng(seed)
    return enc.symbols.astype(np.complex128) + complex_awgn(enc.symbols.shape, snr_db, rng)


def test_names_load_the_hybrid_and_its_refiner():
    plain = load_codec("hybrid_softcast")
    learned = load_codec("medjscc-hda")
    assert isinstance(plain, HybridCodec) and plain.refiner is None and plain.name == "hybrid_softcast"
    assert isinstance(learned, HybridCodec) and learned.refiner is not None and len(learned.model_sha256) == 64
    with pytest.raises(InputError, match="unknown hybrid model"):
        HybridCodec("hybrid_jpeg")


def test_side_info_carries_the_design_snr_and_is_charged(codec, drr):
    image, mask = drr
    enc = codec.encode(image, mask, snr_db=7.3, cbr=1 / 16)
    assert enc.side_info[0] == SIDE_TAG and len(enc.side_info) == 2
    assert enc.snr_db == pytest.approx(7.25) and unpack_side_info(enc.side_info) == enc.snr_db
    # the side info's 16 bits at 1 bit per symbol are part of the budget, which is filled exactly
    assert enc.symbols.size == 4096 - 16 and enc.cbr_total == pytest.approx(1 / 16)
    assert enc.symbols.dtype == np.complex64
    assert snr_from_code(0) == -30.0 and unpack_side_info(pack_side_info(99)) == 33.75   # clamped


def test_wrong_or_missing_side_info_is_refused(codec, drr):
    image, _ = drr
    y = np.zeros(4080, np.complex64)
    with pytest.raises(HybridSideInfoError, match="lost or failed"):
        codec.decode(y, None, image.shape)
    with pytest.raises(HybridSideInfoError, match="another model"):
        codec.decode(y, bytes([0x20, 5, 1]), image.shape)   # a Med-JSCC side info (version 1)
    with pytest.raises(InputError):
        codec.encode(image.astype(np.float32), None, 10.0, 1 / 16)
    with pytest.raises(InputError, match="mask"):
        codec.encode(image, np.ones((8, 8), bool), 10.0, 1 / 16)
    with pytest.raises(MedJSCCError, match="larger cbr"):
        codec.encode(image, None, 10.0, 10 / image.size)


@pytest.mark.parametrize("snr_db", [0.0, 12.0])
def test_air_decode_matches_the_sweeps_receiver(codec, drr, snr_db):
    """The codec adds only a CRC-16 to the base: same quality as hybrid.decode on the same draw."""
    image, mask = drr
    enc = codec.encode(image, mask, snr_db, 1 / 16)
    noise = complex_awgn(enc.symbols.shape, snr_db, np.random.default_rng(0))
    out, info = codec.decode_with_info(enc.symbols + noise, enc.side_info, image.shape, snr_db=snr_db)
    assert info["shown"] == "hybrid" and info["base_ok"] is True
    ref_tx = hybrid.encode(image, mask, snr_db, enc.symbols.size)
    ref, _ = hybrid.decode(ref_tx.symbols + noise, None, 10 ** (-snr_db / 10), image.shape, snr_db, enc.symbols.size,
                           crc_side=ref_tx.side_bits, crc_base=ref_tx.base_bits)
    got, want = image_metrics(image, out, mask)["roi_psnr"], image_metrics(image, ref, mask)["roi_psnr"]
    assert abs(got - want) < 0.4, (got, want)
    assert got > {0.0: 30.0, 12.0: 40.0}[snr_db]


def test_per_symbol_noise_weighs_the_faded_symbols(codec, drr):
    """Every other symbol at 20 dB, the rest at -5 dB, the frame laid out for the mean noise (-2 dB):
    weighting each symbol by its stated 1/SNR beats treating all alike at the mean noise (measured
    +1.1 dB), and a constant 1/SNR is the scalar receiver exactly."""
    image, mask = drr
    inv = np.where(np.arange(4080) % 2, 10 ** (-20 / 10), 10 ** (5 / 10))
    mean_snr = -10 * np.log10(inv.mean())
    enc = codec.encode(image, mask, mean_snr, 1 / 16)
    rng = np.random.default_rng(3)
    y = enc.symbols + (rng.standard_normal(inv.size) + 1j * rng.standard_normal(inv.size)) * np.sqrt(inv / 2)
    weighted = codec.decode(y, enc.side_info, image.shape, inv_snr=inv)
    flat = codec.decode(y, enc.side_info, image.shape, inv_snr=np.full(inv.size, inv.mean()))
    scalar = codec.decode(y, enc.side_info, image.shape, snr_db=mean_snr)
    assert np.array_equal(flat, scalar)
    m_w, m_f = image_metrics(image, weighted, mask)["roi_psnr"], image_metrics(image, flat, mask)["roi_psnr"]
    assert m_w > m_f + 0.5, (m_w, m_f)


def test_receiver_gains():
    g, n0 = receiver_gains(4, 10.0, np.array([0.1, 0.4, np.inf, 0.1]), erased=np.array([0, 0, 0, 1], bool))
    assert n0 == pytest.approx(0.25)
    assert g == pytest.approx([np.sqrt(2.5), np.sqrt(0.625), 0.0, 0.0])
    g, n0 = receiver_gains(3, 10.0)
    assert n0 == pytest.approx(0.1) and np.all(g == 1.0)
    g, _ = receiver_gains(2, 10.0, np.array([np.inf, np.inf]))
    assert np.all(g == 0)


def test_base_crc_rejects_a_corrupted_base():
    body = bytes(range(40))
    bits = hybrid._base_bits(body, 8 * 60, True)
    block = np.packbits(bits).tobytes()
    assert hybrid._check_base_crc(block)[:40] == body
    spoilt = bytearray(block)
    spoilt[10] ^= 0x04
    assert hybrid._check_base_crc(bytes(spoilt)) is None


def test_lost_sections_are_reported_never_counted(codec, drr):
    image, mask = drr
    enc = codec.encode(image, mask, 12.0, 1 / 16)
    lay = hybrid.layout(enc.symbols.size, 12.0, hybrid.split_rule(12.0, cbr=enc.symbols.size / image.size))
    assert lay.has_base
    y = _awgn(enc, 12.0)
    erased = np.zeros(y.size, bool)
    erased[lay.n_side: lay.n_side + lay.n_base] = True           # the base section lost
    out, info = codec.decode_with_info(y, enc.side_info, image.shape, snr_db=12.0, erased=erased)
    assert info["base_ok"] is False and info["shown"] == "analog_over_grey"
    everything = np.ones(y.size, bool)
    out, info = codec.decode_with_info(y, enc.side_info, image.shape, snr_db=12.0, erased=everything)
    assert info["shown"] in ("nothing", "analog_over_grey") and info["base_ok"] is False
    assert np.all(np.abs(out.astype(int) - 128) <= 1)


def _frames(codec, image, mask, snr_db, image_id=1):
    from gnuradio.medjscc.blocks.jscc_tx import encode_frames
    from gnuradio.medjscc.phy import OfdmParams

    params = OfdmParams().validate()
    enc, frames = encode_frames(codec, image, mask, snr_db, 1 / 16, image_id, params, nonce=5)
    return params, enc, frames


@pytest.mark.parametrize("equalizer", ["zf", "mmse"])
def test_receiver_core_decodes_hybrid_frames(codec, drr, equalizer):
    """Frames as ofdm_analog_rx hands them over (MMSE shrinks each symbol by 1/(1 + 1/SNR_i)):
    jscc_rx undoes the shrinking and the result says which sections decoded."""
    from gnuradio.medjscc.blocks.jscc_rx import STATUS_DECODED, JsccReceiverCore

    image, mask = drr
    params, enc, frames = _frames(codec, image, mask, 10.0)
    core = JsccReceiverCore(codec, params, shape=image.shape, cbr=1 / 16)
    rng = np.random.default_rng(1)
    out = []
    for k, (meta, pay) in enumerate(frames):
        inv = np.full(pay.size, 10 ** (-(10.0 + k) / 10), np.float32)   # frames at 10, 11, 12 dB
        y = pay + (rng.standard_normal(pay.size) + 1j * rng.standard_normal(pay.size)) * np.sqrt(inv / 2)
        if equalizer == "mmse":
            y = y / (1 + inv)
        out += core.add_frame(dict(meta, snr_db=10.0 + k, crc_ok=True, inv_snr=inv, equalizer=equalizer),
                              y.astype(np.complex64))
    out += core.flush()
    (r,) = out
    assert r["status"] == STATUS_DECODED and r["decoded"] and r["shown"] == "hybrid" and r["base_ok"] is True
    assert r["design_snr_db"] == 10.0 and r["layout"]
    assert image_metrics(image, r["image"], mask)["roi_psnr"] > 40.0


def test_receiver_core_lost_frame_fails_the_base(codec, drr):
    """One of three frames lost: the base's codewords lose a third of their bits (interleaved), the
    CRC-checked base fails and the image is not counted as decoded; the side info (erasure-coded
    over the headers) still lays the frame out."""
    from gnuradio.medjscc.blocks.jscc_rx import STATUS_FAILED, JsccReceiverCore

    image, mask = drr
    params, enc, frames = _frames(codec, image, mask, 20.0)
    assert len(frames) >= 3
    core = JsccReceiverCore(codec, params, shape=image.shape, cbr=1 / 16)
    out = []
    for meta, pay in frames[1:]:
        out += core.add_frame(dict(meta, snr_db=20.0, crc_ok=True, equalizer="zf"), pay)
    out += core.flush()
    (r,) = out
    assert r["side_info_ok"] and r["frames_ok"] == len(frames) - 1
    assert r["base_ok"] is False and not r["decoded"] and r["status"] == STATUS_FAILED
    assert r["shown"] in ("analog_over_grey", "nothing") and "base frame" in r["error"]


def test_receiver_core_refuses_medjscc_frames_for_the_hybrid(drr):
    """A hybrid RX fed a Med-JSCC TX's frames (models differ): failed, with the reason."""
    from gnuradio.medjscc.blocks.jscc_rx import JsccReceiverCore

    image, mask = drr
    params, enc, frames = _frames(load_codec("medjscc"), image, mask, 10.0)
    core = JsccReceiverCore(load_codec("hybrid_softcast"), params, shape=image.shape, cbr=1 / 16)
    out = []
    for meta, pay in frames:
        out += core.add_frame(dict(meta, snr_db=10.0, crc_ok=True), pay)
    out += core.flush()
    (r,) = out
    assert not r["decoded"] and "another model" in r["error"]


def test_sweep_runs_the_hybrid_on_the_ofdm_link(drr):
    """``medjscc sweep --link ofdm``: the hybrid methods send the air frame through the numpy OFDM PHY
    (same seeds as every other method); rows count the side info and state the air CBR."""
    import math

    from gnuradio.medjscc.evaluation import methods

    image, mask = drr
    rows, _ = methods.run_point("hybrid-softcast", image, mask, "x", [12.0], 1 / 16, "awgn", "ofdm", 0, 0)
    sym, _ = methods.run_point("hybrid-softcast", image, mask, "x", [12.0], 1 / 16, "awgn", "symbol", 0, 0)
    (r,), (s,) = rows, sym
    assert r["link"] == "ofdm" and r["decode_ok"] and r["cbr_total"] == pytest.approx(1 / 16)
    assert math.isfinite(r["cbr_air"]) and r["cbr_air"] > 3 * r["cbr_total"]   # preambles, pilots, CP
    assert r["mcs"].split("+")[0] == s["mcs"].split("+")[0] and r["source_bytes"] > 0
    assert r["roi_psnr"] > s["roi_psnr"] - 1.5, (r["roi_psnr"], s["roi_psnr"])


def test_ack_message_carries_the_verdict_only():
    """What jscc_rx publishes for a transmitter's outer loop (it may cross the network)."""
    from gnuradio.medjscc.blocks.jscc_rx import ack_message

    full = {"image_id": 7, "nonce": 3, "decoded": True, "base_ok": False, "path": "/x/rx_00007.png",
            "error": "hybrid: the base frame failed", "psnr": 12.0, "shown": "analog_over_grey"}
    assert ack_message(full) == {"image_id": 7, "nonce": 3, "decoded": True, "base_ok": False}
    assert ack_message({"image_id": 1, "nonce": 2, "decoded": False, "base_ok": "none"}) == \
        {"image_id": 1, "nonce": 2, "decoded": False}
