"""The digital envelope's SNR -> MCS rule is fitted per CBR on the validation split (issue #13:
CBR 1/32 and 1/8 reported beside 1/16): the sweep uses the rule file fitted at the nearest CBR."""
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
    _, _, _, label = envelope.envelope_point(img, mask, s, methods.n_symbols(1 / 32, img.shape), link, chan.channel_seed(0, "synthetic", s, 0))
    mcs, codec = envelope.split_label(label)
    assert mcs == r32.pick(s).name != r16.pick(s).name and codec == r32.codec(mcs)
