"""QA: snr_feedback smoothing, step reset, CRC filtering and message output."""
import numpy as np
import pmt
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._pmtutil import make_pdu, to_pmt  # noqa: E402
from gnuradio.medjscc.blocks.snr_feedback import SnrSmoother, snr_feedback  # noqa: E402
from qa_helpers import run_message_block  # noqa: E402


def _rx_pdu(snr, seq=0, crc_ok=True):
    return make_pdu({"snr_db": snr, "seq": seq, "crc_ok": crc_ok}, np.zeros(4, np.complex64))


class qa_snr_feedback(gr_unittest.TestCase):
    def test_ema_matches_hand_computation(self):
        s = SnrSmoother(alpha=0.25, jump_db=0)
        vals = [10.0, 12.0, 8.0, 11.0]
        ema = None
        for v in vals:
            ema = v if ema is None else 0.75 * ema + 0.25 * v
            self.assertAlmostEqual(s.update(v), ema)

    def test_step_resets_average(self):
        s = SnrSmoother(alpha=0.1, jump_db=3.0)
        for _ in range(5):
            s.update(20.0)
        self.assertAlmostEqual(s.update(5.0), 5.0)   # 15 dB step > 3 dB -> restart
        self.assertAlmostEqual(s.update(6.0), 5.1)   # small change -> smoothed

    def test_rejects_bad_alpha(self):
        with self.assertRaises(ValueError):
            SnrSmoother(alpha=0.0)

    def test_block_publishes_smoothed_and_skips_crc_failures(self):
        blk = snr_feedback(alpha=0.5, jump_db=3.0)
        msgs = [_rx_pdu(10.0, 0), _rx_pdu(-20.0, 1, crc_ok=False), _rx_pdu(11.0, 2),
                pmt.from_double(12.0), to_pmt({"snr_db": 12.5}), pmt.intern("garbage")]
        out = run_message_block(blk, "rx", msgs, "snr", expected=4, settle=0.2)
        self.assertEqual(len(out), 4)
        self.assertEqual([round(o["raw_snr_db"], 3) for o in out], [10.0, 11.0, 12.0, 12.5])
        self.assertAlmostEqual(out[1]["snr_db"], 10.5)
        self.assertAlmostEqual(out[2]["snr_db"], 11.25)
        self.assertEqual(out[1]["seq"], 2)
        self.assertAlmostEqual(blk.snr_db(), out[-1]["snr_db"])

    def test_effective_estimate(self):
        """``effective`` smooths the PDUs' eff_snr_db where they state it, the mean SNR elsewhere."""
        blk = snr_feedback(alpha=1.0, jump_db=0, estimate="effective")
        msgs = [make_pdu({"snr_db": 10.0, "eff_snr_db": 6.5, "crc_ok": True}, np.zeros(4, np.complex64)),
                _rx_pdu(9.0)]
        out = run_message_block(blk, "rx", msgs, "snr", expected=2, settle=0.2)
        self.assertEqual([o["raw_snr_db"] for o in out], [6.5, 9.0])
        blk.set_estimate("snr")
        self.assertEqual(blk.estimate, "snr")
        from gnuradio.medjscc.errors import InputError

        with self.assertRaises(InputError):
            snr_feedback(estimate="median")

    def test_decimation(self):
        blk = snr_feedback(alpha=1.0, jump_db=0, decimation=2)
        out = run_message_block(blk, "rx", [_rx_pdu(v) for v in (1.0, 2.0, 3.0, 4.0)], "snr",
                                expected=2, settle=0.2)
        self.assertEqual([o["snr_db"] for o in out], [2.0, 4.0])


if __name__ == "__main__":
    gr_unittest.run(qa_snr_feedback)
