"""The digital envelope's SNR -> MCS rule and the hybrid's split are fitted per CBR on the validation
split (issue #13: CBR 1/32 and 1/8 reported beside 1/16): each uses the file fitted at the nearest CBR."""
import json

import numpy as np
import pytest

from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.evaluation import channel as chan
from gnuradio.medjscc.evaluation import envelope, linkadapt, methods


def test_every_shipped_rule_is_fitted_on_validation_at_its_own_cbr():
    files = envelope.fitted_rule_files()
    cbrs = [c for c, _ in files]
    assert len(set(cbrs)) == len(cbrs) and {1 / 32, 1 / 16, 1 / 8} <= set(cbrs)
    for cbr, path in files:
        data = json.loads(path.read_text())
        assert data["fit"]["split"] == "val" and "test" not in data["fit"]["data"]
        assert data["fit"]["frame_symbols"] == methods.n_symbols(cbr, (256, 256))


def test_rule_file_is_the_nearest_fitted_cbr():
    assert envelope.rule_file() == linkadapt.RULE_FILE
    assert envelope.rule_file(1 / 16) == linkadapt.RULE_FILE
    by_cbr = dict(envelope.fitted_rule_files())
    assert envelope.rule_file(1 / 32) == by_cbr[1 / 32] != linkadapt.RULE_FILE
    assert envelope.rule_file(0.13) == by_cbr[1 / 8]
    assert envelope.rule_file(1 / 1000) == by_cbr[min(by_cbr)]
    with pytest.raises(MedJSCCError):
        envelope.rule_file(0.0)
    assert envelope.load_rule(1 / 16) == envelope.load_rule()


def test_envelope_point_uses_the_rule_of_its_cbr():
    """A 256x256 image at 2048 symbols (CBR 1/32) picks by the 1/32 rule's margin."""
    r32, r16 = envelope.load_rule(1 / 32), envelope.load_rule(1 / 16)
    # an SNR where the two margins pick different MCSs (if the fits ever agree, there is none)
    snrs = [s for s in np.arange(-6.0, 26.0, 0.25) if r32.pick(s) != r16.pick(s)]
    if r32.margin_db == r16.margin_db:
        pytest.skip("the 1/32 and 1/16 fits chose the same margin")
    assert snrs
    y, x = np.mgrid[0:256, 0:256] / 256
    img = np.clip(120 + 70 * np.sin(6 * x) * np.cos(4 * y), 0, 255).astype(np.uint8)
    mask = (x - .5) ** 2 + (y - .5) ** 2 < .1
    link = methods.get_link("symbol", "awgn")
    s = float(snrs[0])
    n32 = methods.n_symbols(1 / 32, img.shape)
    _, _, _, label = envelope.envelope_point(img, mask, s, n32, link, chan.channel_seed(0, "synthetic", s, 0))
    mcs, codec = envelope.split_label(label)
    assert mcs == r32.pick(s).name != r16.pick(s).name and codec == r32.codec(mcs)


# ----------------------------------------------------------------------------- hybrid split per CBR
def test_every_shipped_split_is_fitted_on_validation_at_its_own_cbr():
    from gnuradio.medjscc.codec import hybrid

    files = hybrid.fitted_split_files()
    cbrs = [c for c, _ in files]
    assert len(set(cbrs)) == len(cbrs) and {1 / 32, 1 / 16, 1 / 8} <= set(cbrs)
    for cbr, path in files:
        data = json.loads(path.read_text())
        assert data["fit"]["split"] == "val" and "test" not in data["fit"]["data"]
        assert data["fit"]["cbr"] == cbr
        for key in ("split", "split_tx_mask", "split_nomask"):   # every table at every fitted SNR
            assert sorted(map(float, data[key])) == sorted(data["fit"]["snr_db"]), (path.name, key)
        for snr, v in data["split"].items():
            assert hybrid.split_rule(float(snr), cbr=cbr) == hybrid.split_from_json(v)
    assert hybrid.split_file() == hybrid.split_file(1 / 16) == dict(files)[1 / 16]
    assert hybrid.split_file(1 / 32) == dict(files)[1 / 32] != hybrid.split_file()
    assert hybrid.split_file(1 / 8) == hybrid.split_file(0.13) == dict(files)[1 / 8] != hybrid.split_file()
    with pytest.raises(MedJSCCError):
        hybrid.split_file(-1.0)


def test_hybrid_frame_uses_the_split_of_its_cbr_at_both_ends():
    """2048 symbols of a 256x256 image (CBR 1/32): encoder, decoder and the sweep's row all take the
    1/32 split (its prior differs from the 1/16 one), and the decoder reads the frame back."""
    from gnuradio.medjscc.codec import hybrid
    from gnuradio.medjscc.metrics import psnr

    n, snr = methods.n_symbols(1 / 32, (256, 256)), 10.0
    sp32, sp16 = hybrid.split_rule(snr, cbr=1 / 32), hybrid.split_rule(snr)
    assert sp32 != sp16
    y, x = np.mgrid[0:256, 0:256] / 256
    img = np.clip(120 + 70 * np.sin(6 * x) * np.cos(4 * y), 0, 255).astype(np.uint8)
    mask = (x - .5) ** 2 + (y - .5) ** 2 < .1
    tx = hybrid.encode(img, mask, snr, n)
    assert tx.layout == hybrid.layout(n, snr, sp32) != hybrid.layout(n, snr, sp16)
    rx, h, n0 = hybrid.transmit_awgn(tx.symbols, 30.0, np.random.default_rng(0))
    recon, info = hybrid.decode(rx, h, n0, img.shape, snr, n, crc_side=tx.side_bits, crc_base=tx.base_bits)
    assert info["base_ok"] is not False and info["side_ok"] and psnr(img, recon) > 30.0
    link = methods.SymbolLink("awgn")
    _, _, _, label, _ = hybrid.sweep_point(img, mask, snr, n, link, chan.channel_seed(0, "synthetic", snr, 0))
    assert label == hybrid.layout(n, snr, sp32).label
