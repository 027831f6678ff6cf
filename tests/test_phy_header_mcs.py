"""Header code formats: robust (BPSK r1/3), dense (QPSK r1/2) and auto (TX picks from its SNR, RX
reads both)."""
import numpy as np
import pytest

from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.phy import FrameHeader, OfdmParams, OfdmReceiver, OfdmTransmitter, apply_iq_channel
from gnuradio.medjscc.phy.framing import overhead_symbols


def _frame(rng, image_id, n=480):
    x = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
    hdr = FrameHeader(seq=0, image_id=image_id, frame_count=1, payload_len=n,
                      side_info_chunk=bytes(rng.integers(0, 256, 14, dtype=np.uint8)), side_info_total=12, nonce=77)
    return hdr, x


def _receive(p, iq):
    rx = OfdmReceiver(p)
    return [f for f in list(rx.process(iq)) + list(rx.flush())]


def test_dense_header_is_a_third_of_the_robust_one_and_frame_len_follows():
    p = OfdmParams(header_mcs="auto")
    # 13 + 32 + 4 header bytes: 392 bits + 6 tail, x3 on BPSK / x2 on QPSK, 48 carriers
    assert p.header_symbols("robust") == 25 and p.header_symbols("dense") == 9
    assert p.n_header_symbols == 25                      # what a receiver must see first
    assert OfdmParams(header_mcs="dense").n_header_symbols == 9
    tx = OfdmTransmitter(p)
    hdr, x = _frame(np.random.default_rng(0), 1)
    for fmt in ("robust", "dense"):
        assert tx.modulate(hdr, x, fmt).size == p.frame_len(x.size, fmt)
    o_r = overhead_symbols(4000, 25, p, header_format="robust")
    o_d = overhead_symbols(4000, 25, p, header_format="dense")
    assert o_r["total"] - o_d["total"] == o_r["frames"] * 16 * p.symbol_len


def test_auto_receiver_reads_a_stream_mixing_both_formats():
    p = OfdmParams(header_mcs="auto")
    tx = OfdmTransmitter(p)
    rng = np.random.default_rng(1)
    sent, pieces = [], [np.zeros(300, np.complex64)]
    for k, fmt in enumerate(["dense", "robust", "robust", "dense", "dense", "robust"]):
        hdr, x = _frame(rng, k)
        sent.append((hdr, x, fmt))
        pieces += [tx.modulate(hdr, x, fmt), np.zeros(int(rng.integers(50, 400)), np.complex64)]
    y = apply_iq_channel(np.concatenate(pieces), "awgn", 15.0, rng=rng, params=p, tail=300)
    frames = [f for f in _receive(p, y) if f.crc_ok]
    assert [f.header.image_id for f in frames] == list(range(len(sent)))
    for f, (hdr, x, fmt) in zip(frames, sent):
        assert f.header == hdr and f.header_format == fmt
        assert 10 * np.log10(1 / np.mean(np.abs(f.payload - x) ** 2)) > 12.0   # payload where the header says


def test_receivers_read_only_their_formats():
    rng = np.random.default_rng(2)
    hdr, x = _frame(rng, 5)
    dense_iq = OfdmTransmitter(OfdmParams(header_mcs="dense")).modulate(hdr, x)
    y = apply_iq_channel(dense_iq, "awgn", 20.0, rng=rng, params=OfdmParams(), delay=200, tail=300)
    assert not any(f.crc_ok for f in _receive(OfdmParams(header_mcs="robust"), y))   # detected, not read
    got = [f for f in _receive(OfdmParams(header_mcs="dense"), y) if f.crc_ok]
    assert len(got) == 1 and got[0].header == hdr and got[0].header_format == "dense"


def test_dense_header_needs_more_snr_than_the_robust_one():
    # the trade the format choice is about: at 0 dB the robust header decodes, the dense one not
    p = OfdmParams(header_mcs="auto")
    tx = OfdmTransmitter(p)
    ok = {"robust": 0, "dense": 0}
    for t in range(12):
        rng = np.random.default_rng([3, t])
        hdr, x = _frame(rng, t)
        for fmt in ok:
            y = apply_iq_channel(tx.modulate(hdr, x, fmt), "awgn", 0.0, rng=rng, params=p, delay=300, tail=300)
            ok[fmt] += any(f.crc_ok and f.header == hdr for f in _receive(p, y))
    assert ok["robust"] >= 11 and ok["dense"] <= 3


def test_tx_header_format_rule_and_validation():
    p = OfdmParams(header_mcs="auto", dense_header_snr_db=8.0)
    assert p.tx_header_format(None) == "robust"
    assert p.tx_header_format(7.9) == "robust" and p.tx_header_format(8.0) == "dense"
    assert p.tx_header_format(float("nan")) == "robust"
    assert OfdmParams(header_mcs="dense").tx_header_format(-5) == "dense"
    assert OfdmParams(header_mcs="robust").tx_header_format(30) == "robust"
    d = OfdmParams()                                      # the default: auto, dense from 25 dB
    assert d.header_mcs == "auto" and d.tx_header_format(24.9) == "robust" and d.tx_header_format(25) == "dense"
    with pytest.raises(MedJSCCError, match="header_mcs"):
        OfdmParams(header_mcs="qpsk").validate()
    with pytest.raises(MedJSCCError, match="dense_header_snr_db"):
        OfdmParams(header_mcs="auto", dense_header_snr_db=float("inf")).validate()
    with pytest.raises(MedJSCCError, match="header_format"):
        OfdmTransmitter(p).modulate(*_frame(np.random.default_rng(0), 1), header_format="bpsk")


def test_frame_modulator_picks_the_format_from_the_encoders_snr():
    pytest.importorskip("gnuradio.gr")
    from gnuradio.medjscc.blocks._phyadapt import make_params
    from gnuradio.medjscc.blocks.ofdm_analog_tx import FrameModulator

    p = make_params({"header_mcs": "auto", "dense_header_snr_db": 6.0})
    mod = FrameModulator(p, guard=0)
    meta = {"seq": 0, "image_id": 3, "frame_count": 1, "payload_len": 96, "side_info_chunk": b"\x01\x02"}
    pay = np.ones(96, np.complex64)
    assert mod.modulate(dict(meta, tx_snr_db=10.0), pay).size == p.frame_len(96, "dense")
    assert mod.modulate(dict(meta, tx_snr_db=3.0), pay).size == p.frame_len(96, "robust")
    assert mod.modulate(dict(meta), pay).size == p.frame_len(96, "robust")      # SNR unknown: robust


def test_a_cut_dense_frame_is_still_read_at_the_end_of_a_stream():
    # the stream ends before a robust header would: the dense frame is decoded (truncated) at
    # flush, not dropped for want of the longer format's samples
    p = OfdmParams(header_mcs="auto")
    tx = OfdmTransmitter(p)
    rng = np.random.default_rng(4)
    hdr, x = _frame(rng, 9, n=960)
    iq = tx.modulate(hdr, x, "dense")
    keep = p.preamble_len + p.header_symbols("dense") * p.symbol_len + 8 * p.symbol_len
    assert keep < p.preamble_len + p.header_symbols("robust") * p.symbol_len
    y = apply_iq_channel(np.concatenate([np.zeros(300, np.complex64), iq[:keep]]), "awgn", 20.0, rng=rng,
                         params=p, tail=0)
    (f,) = [f for f in _receive(p, y) if f.crc_ok]
    assert f.header == hdr and f.truncated and 0 < np.mean(f.erased) < 1


def test_short_header_reference_is_not_read_as_sampling_drift():
    # without SRO the drift fit must stay quiet: the channel estimate of a 6-symbol dense header
    # is noisier, and its constant per-carrier phase error is counted in the fit's variance
    p = OfdmParams(header_mcs="auto")
    tx = OfdmTransmitter(p)
    ramps = {"robust": 0, "dense": 0}
    for t in range(60):
        rng = np.random.default_rng([t, 9])
        hdr, x = _frame(rng, t, n=1536)
        for fmt in ramps:
            y = apply_iq_channel(tx.modulate(hdr, x, fmt), "awgn", 20.0, delay=300, tail=300, rng=rng, params=p)
            (f,) = [f for f in _receive(p, y) if f.crc_ok]
            ramps[fmt] += f.sro != 0
    # measured 0 / 1 of 60 (without the reference term: 8 / 4, above the 2-sigma gate's ~5 %)
    assert ramps["robust"] <= 3 and ramps["dense"] <= 3
