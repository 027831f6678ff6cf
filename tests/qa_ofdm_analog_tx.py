"""QA: ofdm_analog_tx turns frame PDUs into IQ bursts (length, tags, bad PDUs, eos)."""
import numpy as np
import pmt
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import blocks, gr, gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._msgtools import post  # noqa: E402
from gnuradio.medjscc.blocks._pmtutil import make_pdu  # noqa: E402
from gnuradio.medjscc.blocks.ofdm_analog_tx import EOS_TAIL, ofdm_analog_tx  # noqa: E402


def frame_pdu(seq, n, image_id=0, count=3, seed=0, chunk=b"\x01\x02"):
    rng = np.random.default_rng(seed + seq)
    pay = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
    meta = {"seq": seq, "image_id": image_id, "frame_count": count, "payload_len": n,
            "side_info_chunk": chunk, "side_info_total": len(chunk)}
    return make_pdu(meta, pay), pay


def run_tx(tx, messages):
    tb = gr.top_block()
    snk = blocks.vector_sink_c()
    tb.connect(tx, snk)
    for m in messages:
        post(tx, "pdus", m)
    post(tx, "pdus", pmt.intern("eos"))
    tb.run()   # ends by itself thanks to eos
    return np.array(snk.data(), np.complex64), snk.tags()


class qa_ofdm_analog_tx(gr_unittest.TestCase):
    def test_burst_lengths_power_and_tags(self):
        tx = ofdm_analog_tx(guard=100, burst_tags=True)
        p = tx.params
        lens = [p.max_payload_len, 700, 1]
        iq, tags = run_tx(tx, [frame_pdu(i, n)[0] for i, n in enumerate(lens)])
        expected = 100 + sum(p.frame_len(n) + 100 for n in lens) + EOS_TAIL   # + the eos tail
        self.assertEqual(len(iq), expected)
        self.assertEqual(iq[-1], 0)
        self.assertEqual(tx.frames_sent, 3)
        first = slice(100 + p.preamble_len, 100 + p.frame_len(lens[0]))
        self.assertAlmostEqual(float(np.mean(np.abs(iq[first]) ** 2)), 1.0, delta=0.15)
        keys = [pmt.symbol_to_string(t.key) for t in tags]
        self.assertEqual(keys.count("tx_sob"), 3)
        self.assertEqual(keys.count("tx_eob"), 3)
        self.assertEqual(keys.count("frame"), 3)
        eos = [t.offset for t in tags if pmt.symbol_to_string(t.key) == "eos"]
        self.assertEqual(eos, [len(iq) - EOS_TAIL])
        sob = sorted(t.offset for t in tags if pmt.symbol_to_string(t.key) == "tx_sob")
        eob = sorted(t.offset for t in tags if pmt.symbol_to_string(t.key) == "tx_eob")
        self.assertEqual(sob[0], 0)
        self.assertEqual(eob[-1], len(iq) - EOS_TAIL - 1)

    def test_bad_pdus_are_dropped_and_stream_continues(self):
        tx = ofdm_analog_tx(guard=0)
        p = tx.params
        good, _ = frame_pdu(0, 96)
        missing_field = make_pdu({"seq": 1}, np.ones(96, np.complex64))
        wrong_len = make_pdu({"seq": 2, "image_id": 0, "frame_count": 3, "payload_len": 50,
                              "side_info_chunk": b""}, np.ones(96, np.complex64))
        not_complex = make_pdu({"seq": 2}, np.ones(96, np.float32))
        too_long = frame_pdu(1, p.max_payload_len + 1)[0]
        iq, _ = run_tx(tx, [missing_field, wrong_len, not_complex, pmt.PMT_NIL, too_long, good])
        self.assertEqual(tx.frames_dropped, 5)
        self.assertEqual(tx.frames_sent, 1)
        self.assertEqual(len(iq), p.frame_len(96) + EOS_TAIL)

    def test_amplitude_setter(self):
        tx = ofdm_analog_tx(guard=0, amplitude=0.5)
        iq, _ = run_tx(tx, [frame_pdu(0, 480)[0]])
        self.assertAlmostEqual(float(np.mean(np.abs(iq) ** 2)), 0.25, delta=0.05)


if __name__ == "__main__":
    gr_unittest.run(qa_ofdm_analog_tx)
