"""QA: ofdm_analog_rx recovers frames with metadata; equaliser switch; garbage/truncated IQ."""
import time

import numpy as np
import pmt
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import blocks, gr, gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._msgtools import pdu_collector, post  # noqa: E402
from gnuradio.medjscc.blocks.channel_preset import channel_preset  # noqa: E402
from gnuradio.medjscc.blocks.ofdm_analog_rx import ofdm_analog_rx  # noqa: E402
from gnuradio.medjscc.blocks.ofdm_analog_tx import FrameModulator  # noqa: E402


def make_iq(params, n_frames, payload_len=None, seed=0):
    rng = np.random.default_rng(seed)
    mod = FrameModulator(params, guard=300)
    n = payload_len or params.max_payload_len
    sent, iq = [], [np.zeros(300, np.complex64)]
    for i in range(n_frames):
        pay = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
        sent.append(pay)
        iq.append(mod.modulate({"seq": i, "image_id": 7, "frame_count": n_frames, "payload_len": n,
                                "side_info_chunk": bytes([i, 1, 2])}, pay))
    return np.concatenate(iq), sent


def run_rx(rx, iq, channel=None, ctrl_at=None, eos=False):
    tb = gr.top_block()
    tags = [gr.tag_utils.python_to_tag((len(iq) - 1, pmt.intern("eos"), pmt.PMT_T, pmt.PMT_NIL))] if eos else []
    src = blocks.vector_source_c(iq.tolist(), False, 1, tags)
    col = pdu_collector()
    if channel is not None:
        tb.connect(src, channel, rx)
    else:
        tb.connect(src, rx)
    tb.msg_connect(rx, "pdus", col, "in")
    if ctrl_at is not None:
        post(rx, "ctrl", ctrl_at)
    tb.run()
    return col.items


class qa_ofdm_analog_rx(gr_unittest.TestCase):
    def test_frames_and_metadata_at_10db_with_cfo(self):
        rx = ofdm_analog_rx()
        p = rx.params
        iq, sent = make_iq(p, 8)
        out = run_rx(rx, iq, channel_preset("awgn", 10.0, cfo=0.15, params=p, seed=2))
        ok = [(m, d) for m, d in out if m["crc_ok"]]
        self.assertEqual(len(ok), 8)
        for m, d in ok:
            for key in ("snr_db", "cfo", "chan_taps", "seq", "image_id", "crc_ok", "frame_count",
                        "payload_len", "side_info_chunk", "noise_var"):
                self.assertIn(key, m)
            self.assertEqual(m["image_id"], 7)
            self.assertEqual(list(m["side_info_chunk"]), [m["seq"], 1, 2])
            self.assertAlmostEqual(m["cfo"], 0.15, delta=0.02)
            self.assertAlmostEqual(m["snr_db"], 10.0, delta=1.0)
            eff = 10 * np.log10(1 / np.mean(np.abs(d - sent[m["seq"]]) ** 2))
            self.assertGreater(eff, 8.0)   # analog payload: no hard decisions, small loss
        self.assertEqual(sorted(m["seq"] for m, _ in ok), list(range(8)))

    def test_equalizer_switch_by_message_and_setter(self):
        rx = ofdm_analog_rx(equalizer="mmse")
        iq, _ = make_iq(rx.params, 2)
        out = run_rx(rx, iq, ctrl_at=pmt.intern("zf"))
        self.assertTrue(out and all(m["equalizer"] == "zf" for m, _ in out))
        rx.set_equalizer("mmse")
        self.assertEqual(rx.equalizer(), "mmse")
        with self.assertRaises(ValueError):
            rx.set_equalizer("dfe")

    def test_corrupt_header_is_flagged_not_trusted(self):
        rx = ofdm_analog_rx()
        p = rx.params
        iq, _ = make_iq(p, 3)
        rng = np.random.default_rng(4)
        # wipe the header OFDM symbol(s) of the middle frame with strong noise
        start = 300 + p.frame_len(p.max_payload_len) + 300 + p.preamble_len
        n = p.n_header_symbols * p.symbol_len
        iq = iq.copy()
        iq[start:start + n] = (3 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))).astype(np.complex64)
        out = run_rx(rx, iq)
        ok = sorted(m["seq"] for m, _ in out if m["crc_ok"])
        self.assertEqual(ok, [0, 2])
        bad = [m for m, _ in out if not m["crc_ok"]]
        self.assertEqual(len(bad), 1)
        self.assertNotIn("seq", bad[0])          # no header field from a failed CRC
        self.assertEqual(rx.frames_bad, 1)

    def test_garbage_and_truncated_iq_never_crash(self):
        rx = ofdm_analog_rx()
        p = rx.params
        rng = np.random.default_rng(9)
        noise = ((rng.standard_normal(200_000) + 1j * rng.standard_normal(200_000)) * 0.7).astype(np.complex64)
        noise[1000:1010] = np.nan
        noise[5000:5010] = 1e30
        iq, _ = make_iq(p, 2)
        cut = iq[: 300 + p.frame_len(p.max_payload_len) + p.frame_len(p.max_payload_len) // 2]
        t0 = time.monotonic()
        out = run_rx(rx, np.concatenate([noise, cut]))
        self.assertLess(time.monotonic() - t0, 30)
        ok = [m for m, _ in out if m["crc_ok"]]
        self.assertEqual(len(ok), 1)             # the complete frame; no false frame from noise
        self.assertEqual(ok[0]["seq"], 0)
        # with an end-of-stream tag the cut frame is flushed: published, its tail marked erased
        rx2 = ofdm_analog_rx()
        out2 = run_rx(rx2, cut, eos=True)
        ok2 = [(m, d) for m, d in out2 if m["crc_ok"]]
        self.assertEqual([m["seq"] for m, _ in ok2], [0, 1])
        m1, d1 = ok2[1]
        self.assertEqual(d1.size, p.max_payload_len)
        erased = np.asarray(m1["erased"]).astype(bool)
        got = p.frame_len(p.max_payload_len) // 2 - p.preamble_len - p.n_header_symbols * p.symbol_len
        kept_symbols = int(np.sum(~erased)) // p.n_data_carriers
        self.assertTrue(1 <= kept_symbols <= got // p.symbol_len, kept_symbols)
        self.assertTrue(erased.any() and not erased[0])
        self.assertTrue(np.all(np.diff(erased.astype(int)) >= 0))   # the cut-off tail only


if __name__ == "__main__":
    gr_unittest.run(qa_ofdm_analog_rx)
