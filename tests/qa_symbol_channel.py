"""QA: symbol_channel noise follows the SNR convention; Rayleigh and frame erasures."""
import numpy as np
import pmt
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._pmtutil import make_pdu  # noqa: E402
from gnuradio.medjscc.blocks.symbol_channel import apply_symbol_channel, symbol_channel  # noqa: E402
from qa_helpers import run_message_block  # noqa: E402


def _frames(n, length=2000, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = ((rng.standard_normal(length) + 1j * rng.standard_normal(length)) / np.sqrt(2)).astype(np.complex64)
        out.append((i, x))
    return out


class qa_symbol_channel(gr_unittest.TestCase):
    def test_awgn_noise_variance_matches_convention(self):
        frames = _frames(5)
        blk = symbol_channel("awgn", snr_db=7.0, seed=1)
        out = run_message_block(blk, "in", [make_pdu({"seq": i}, x) for i, x in frames], "out", 5)
        self.assertEqual(len(out), 5)
        err = np.concatenate([d - frames[m["seq"]][1] for m, d in out])
        self.assertAlmostEqual(float(np.mean(np.abs(err) ** 2)), 10 ** -0.7, delta=0.01)
        self.assertAlmostEqual(float(np.var(err.real)), 10 ** -0.7 / 2, delta=0.006)
        for m, _ in out:
            self.assertEqual(m["snr_db"], 7.0)
            self.assertEqual(m["channel"], "awgn")

    def test_erasures_drop_whole_frames(self):
        frames = _frames(200, length=16)
        blk = symbol_channel("erasure", snr_db=20.0, erasure_prob=0.5, seed=3)
        # done when every frame came out or was dropped (an event, not a timeout)
        out = run_message_block(blk, "in", [make_pdu({"seq": i}, x) for i, x in frames], "out",
                                until=lambda items: len(items) + blk.n_dropped >= 200)
        self.assertEqual(blk.n_in, 200)
        self.assertEqual(len(out) + blk.n_dropped, 200)
        self.assertGreater(blk.n_dropped, 70)
        self.assertLess(blk.n_dropped, 130)

    def test_rayleigh_block_fading_effective_snr(self):
        rng = np.random.default_rng(5)
        x = np.ones(100_000, np.complex64)
        effs, errs = [], []
        for _ in range(200):
            y, eff = apply_symbol_channel(x[:500], "rayleigh", 10.0, rng, "block")
            effs.append(eff)
            errs.append(np.mean(np.abs(y - x[:500]) ** 2))
        # per frame: post-ZF noise = N0/|h|^2  <=>  effective SNR = snr + 10log10|h|^2
        for eff, e in zip(effs, errs):
            self.assertAlmostEqual(10 * np.log10(1 / e), eff, delta=1.0)
        # |h|^2 ~ Exp(1): E[10log10|h|^2] = -2.51 dB
        self.assertAlmostEqual(float(np.mean(effs)) - 10.0, -2.51, delta=0.8)

    def test_bad_input_is_dropped(self):
        blk = symbol_channel("awgn", snr_db=10.0)
        msgs = [pmt.intern("junk"), make_pdu({}, np.zeros(3, np.float32)),
                make_pdu({"seq": 1}, np.ones(8, np.complex64))]
        out = run_message_block(blk, "in", msgs, "out", 1, settle=0.2)
        self.assertEqual(len(out), 1)
        with self.assertRaises(ValueError):
            symbol_channel("nonsense")
        with self.assertRaises(ValueError):
            blk.set_erasure_prob(1.0)


if __name__ == "__main__":
    gr_unittest.run(qa_symbol_channel)
