"""The sweep's OFDM link charges the header the TX really sends at each SNR (header_mcs auto)."""
import pytest

from gnuradio.medjscc.evaluation import methods as meth
from gnuradio.medjscc.evaluation.ofdm_link import OfdmLink


def test_air_accounting_and_budget_follow_the_header_format():
    link = OfdmLink("awgn")
    p = link.params
    assert p.header_mcs == "auto"
    n, side = 3896, 26
    hi_snr = p.dense_header_snr_db + 5.0          # where the TX sends dense headers
    low, high = link.total_symbols(n, side, 0.0), link.total_symbols(n, side, hi_snr)
    frames = -(-n // p.max_payload_len)
    saved = (p.header_symbols("robust") - p.header_symbols("dense")) * p.symbol_len
    assert low == link.total_symbols(n, side) and low - high == frames * saved
    air = meth.n_symbols(0.1836, (256, 256))
    # more payload fits the same air where the TX sends dense headers
    assert meth.air_payload(0.1836, (256, 256), link, side, hi_snr) > meth.air_payload(0.1836, (256, 256), link, side, 0.0)
    assert link.total_symbols(meth.air_payload(0.1836, (256, 256), link, side, hi_snr), side, hi_snr) <= air
    assert meth.symbol_budget(0.1836, (256, 256), link, "air", hi_snr) > meth.symbol_budget(0.1836, (256, 256), link, "air")
    assert meth.air_cbr(link, n, side, 65536, hi_snr) == pytest.approx(high / 65536)
