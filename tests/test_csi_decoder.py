"""CSI-aware decoding (issue #11, item 5): per-symbol reliabilities from the receiver to the decoder."""
import math

import numpy as np
import pytest
import torch

from gnuradio.medjscc.codec import api
from gnuradio.medjscc.codec.channel import csi_link_channel
from gnuradio.medjscc.codec.models import ModelConfig
from gnuradio.medjscc.errors import InputError
from gnuradio.medjscc.phy.ofdm import RxFrame

SMALL = dict(channels=[8, 8, 16], latent_channels=32, hyper_channels=16, k_max=16,
             levels=[0, 1, 2, 4, 8, 16], linear_path=True, rate_scale=32.0)


def _pair():
    """A model without CSI and the same weights in a CSI model (its CSI layers start silent)."""
    base = api.build_codec(ModelConfig(**SMALL), seed=3)
    csi = api.build_codec(ModelConfig(**SMALL, csi_input=True), seed=4)
    own = csi.model.state_dict()
    own.update(base.model.state_dict())
    csi.model.load_state_dict(own)
    return base, csi


def _image(seed=0, size=64):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    img = 128 + 60 * np.sin(x / 7.0) * np.cos(y / 5.0) + rng.normal(0, 5, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_csi_layers_start_silent_so_a_warm_start_decodes_as_its_source():
    base, csi = _pair()
    img = _image()
    enc = base.encode(img, snr_db=10.0, cbr=1 / 16)
    enc_csi = csi.encode(img, snr_db=10.0, cbr=1 / 16)
    np.testing.assert_array_equal(enc.symbols, enc_csi.symbols)     # the encoder is untouched
    rng = np.random.default_rng(1)
    rx = enc.symbols + 0.1 * (rng.standard_normal(enc.symbols.size) + 1j * rng.standard_normal(enc.symbols.size))
    inv = rng.uniform(0.01, 3.0, rx.size)
    ref = base.decode(rx, enc.side_info, img.shape, snr_db=10.0)
    # with per-symbol CSI the symbols are taken as they come (MMSE estimates) ...
    np.testing.assert_array_equal(csi.decode(rx, enc.side_info, img.shape, snr_db=10.0, inv_snr=inv), ref)
    # ... without it they are AWGN symbols, shrunk to the MMSE estimate y / (1 + N0) first
    ref_awgn = base.decode((rx / 1.1).astype(np.complex64), enc.side_info, img.shape, snr_db=10.0)
    np.testing.assert_array_equal(csi.decode(rx, enc.side_info, img.shape, snr_db=10.0), ref_awgn)
    assert not np.array_equal(ref, ref_awgn)


def test_csi_decoder_uses_the_reliabilities_once_its_layers_are_trained():
    _, csi = _pair()
    with torch.no_grad():
        csi.model.fd_lin_gate.weight.normal_(0, 0.2)   # gain on each symbol from the reliabilities
    img = _image(2)
    enc = csi.encode(img, snr_db=10.0, cbr=1 / 16)
    inv_good = np.full(enc.symbols.size, 0.1)
    inv_bad = inv_good.copy()
    inv_bad[::2] = np.inf                      # half the symbols marked lost
    a = csi.decode(enc.symbols, enc.side_info, img.shape, snr_db=10.0, inv_snr=inv_good)
    b = csi.decode(enc.symbols, enc.side_info, img.shape, snr_db=10.0, inv_snr=inv_bad)
    assert np.abs(a.astype(int) - b.astype(int)).max() > 0


def test_decode_rejects_inv_snr_of_the_wrong_size_or_sign():
    _, csi = _pair()
    img = _image()
    enc = csi.encode(img, snr_db=10.0, cbr=1 / 16)
    with pytest.raises(InputError, match="inv_snr shape"):
        csi.decode(enc.symbols, enc.side_info, img.shape, inv_snr=np.ones(enc.symbols.size - 1))
    bad = np.ones(enc.symbols.size)
    bad[3] = -1
    with pytest.raises(InputError, match="inv_snr must be"):
        csi.decode(enc.symbols, enc.side_info, img.shape, inv_snr=bad)


def test_csi_link_channel_awgn_states_the_channel_snr_and_marks_lost_symbols():
    torch.manual_seed(0)
    z = torch.complex(torch.randn(6, 4000), torch.randn(6, 4000)) / math.sqrt(2)
    g = torch.Generator().manual_seed(5)
    y, inv, snr_rx = csi_link_channel(z, torch.full((6,), 10.0), erasure_fraction=0.0,
                                      mix=(("awgn", 1.0),), generator=g)
    assert torch.allclose(inv, torch.full_like(inv, 0.1))
    assert torch.allclose(snr_rx, torch.full((6,), 10.0), atol=1e-4)
    # MMSE of unit-gain AWGN: y = (x + n) / (1 + N0)
    assert abs(float((y * (1.1) - z).abs().pow(2).mean()) - 0.1) < 0.01
    y, inv, snr_rx = csi_link_channel(z, torch.full((6,), 10.0), erasure_fraction=1.0,
                                      erasure_share=(0.3, 0.3), mix=(("awgn", 1.0),), generator=g)
    lost = torch.isinf(inv)
    assert 0.25 < float(lost.float().mean()) < 0.35
    assert bool((y[lost] == 0).all()) and bool((y[~lost] != 0).all())
    # lost symbols count as error 1: mse = 0.7/11 + 0.3 -> stated SNR about 4.6 dB
    expect = 10 * math.log10(1 / (0.7 / 11 + 0.3) - 1)
    assert torch.allclose(snr_rx, torch.full((6,), expect), atol=0.4)


def test_csi_link_channel_rayleigh_gains_are_per_symbol():
    z = torch.ones(2, 20000, dtype=torch.complex64)
    g = torch.Generator().manual_seed(7)
    _, inv, snr_rx = csi_link_channel(z, torch.full((2,), 20.0), erasure_fraction=0.0,
                                      mix=(("rayleigh", 1.0),), generator=g)
    gains = 0.01 / inv
    assert abs(float(gains.mean()) - 1.0) < 0.05           # E|h|^2 = 1
    assert abs(float((gains < 0.1).float().mean()) - (1 - math.exp(-0.1))) < 0.01   # exponential
    assert bool((snr_rx < 20.0).all())                        # fades cost the stated SNR


def test_rxframe_inv_snr_is_the_same_for_either_equaliser():
    rng = np.random.default_rng(0)
    g = rng.exponential(1.0, 100)
    n0 = 0.05
    kw = dict(header=None, crc_ok=True, payload=np.zeros(100, np.complex64), snr_db=10.0, cfo=0.0,
              chan_taps=np.zeros(1, np.complex64), start_sample=0)
    zf = RxFrame(noise_var=(n0 / g).astype(np.float32), equalizer="zf", **kw)
    er = np.zeros(100, bool)
    er[90:] = True
    mmse = RxFrame(noise_var=(n0 / (g + n0)).astype(np.float32), equalizer="mmse", erased=er, **kw)
    np.testing.assert_allclose(zf.inv_snr(), n0 / g, rtol=1e-5)
    np.testing.assert_allclose(mmse.inv_snr()[:90], n0 / g[:90], rtol=1e-4)
    assert np.isinf(mmse.inv_snr()[90:]).all()


class _Recorder:
    """A codec stand-in that records what the receiver hands its decoder."""

    def __init__(self, codec, csi=True):
        self._codec, self.calls = codec, []
        self.cfg = codec.cfg.__class__(**{**codec.cfg.__dict__, "csi_input": csi})

    def __getattr__(self, name):
        return getattr(self._codec, name)

    def decode(self, symbols, side_info, shape, **kw):
        self.calls.append((np.array(symbols), kw))
        return np.zeros(shape, np.uint8)


@pytest.mark.parametrize("equalizer", ["mmse", "zf"])
def test_receiver_hands_each_symbols_inv_snr_to_the_decoder_in_codec_order(equalizer):
    from gnuradio.medjscc.blocks.jscc_rx import JsccReceiverCore
    from gnuradio.medjscc.blocks.jscc_tx import encode_frames
    from gnuradio.medjscc.phy import OfdmParams

    base, _ = _pair()
    params = OfdmParams().validate()
    img = _image(3, 64)
    enc, frames = encode_frames(base, img, None, 10.0, 1 / 16, 9, params, nonce=3)
    rec = _Recorder(base)
    core = JsccReceiverCore(rec, params, shape=img.shape, cbr=1 / 16)
    # per frame: a made-up 1/SNR_i for each of its symbols, as ofdm_analog_rx states it
    invs = [np.linspace(0.01 + k, 0.5 + k, p.size).astype(np.float32) for k, (_, p) in enumerate(frames)]
    out = []
    for (meta, pay), inv in zip(frames, invs):
        out += core.add_frame(dict(meta, snr_db=10.0, crc_ok=True, inv_snr=inv, equalizer=equalizer), pay)
    out += core.flush()
    assert len(rec.calls) == 1
    symbols, kw = rec.calls[0]
    from gnuradio.medjscc.phy.framing import deinterleave

    from gnuradio.medjscc.phy.framing import balanced_per

    per = balanced_per(enc.symbols.size, core.assembler.per)       # the TX splits frames evenly
    expect_inv = deinterleave(np.concatenate(invs), per, np.inf)[: enc.symbols.size]
    np.testing.assert_allclose(kw["inv_snr"], expect_inv, rtol=1e-6)
    # frames carry the interleaved symbols; the decoder gets them in codec order
    expect = enc.symbols if equalizer == "mmse" else enc.symbols / (1 + expect_inv)
    np.testing.assert_allclose(symbols, expect, rtol=1e-5, atol=1e-6)
