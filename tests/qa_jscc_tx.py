"""QA: jscc_tx encodes file/PDU images into frame PDUs, follows SNR messages, survives bad input."""
import time

import numpy as np
import pmt
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import gr, gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._msgtools import pdu_collector, post  # noqa: E402
from gnuradio.medjscc.blocks._pmtutil import make_pdu, to_pmt  # noqa: E402
from gnuradio.medjscc.blocks.jscc_tx import jscc_tx  # noqa: E402
from gnuradio.medjscc.errors import InputError  # noqa: E402
from qa_helpers import HANG_S, shared_codec, synthetic_image  # noqa: E402


class qa_jscc_tx(gr_unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.codec = shared_codec()

    def _run_files(self, tx, expect_frames):
        tb = gr.top_block()
        col = pdu_collector()
        tb.msg_connect(tx, "frames", col, "in")
        tb.run()   # file mode: the block sends eos and finishes by itself
        return col.items

    def test_file_image_to_frames(self):
        import tempfile

        from PIL import Image
        with tempfile.TemporaryDirectory() as d:
            path = f"{d}/x.png"
            Image.fromarray(synthetic_image(256)).save(path)
            tx = jscc_tx(image_path=path, model=self.codec, cbr=1 / 16, snr_db=7.0, repeat=2)
            items = self._run_files(tx, None)
        self.assertEqual(items[-1], "eos")
        frames = items[:-1]
        p = tx.params
        from gnuradio.medjscc.blocks.jscc_tx import DEFAULT_REPEAT_STRONG
        enc = self.codec.encode(synthetic_image(256), None, snr_db=7.0, cbr=1 / 16,
                                repeat_strong=DEFAULT_REPEAT_STRONG)
        from gnuradio.medjscc.phy.framing import frame_plan
        per_image = frame_plan(enc.symbols.size, len(enc.side_info), p).frames
        self.assertEqual(len(frames), 2 * per_image)
        self.assertEqual([h["image_id"] for h in tx.history], [0, 1])
        meta0, pay0 = frames[0]
        for key in ("seq", "image_id", "frame_count", "payload_len", "side_info_chunk",
                    "side_info_total", "nonce", "n_symbols", "tx_snr_db", "cbr_total"):
            self.assertIn(key, meta0)
        self.assertEqual(meta0["tx_snr_db"], 7.0)
        self.assertEqual({m["nonce"] for m, _ in frames}, {tx.nonce})   # one session
        self.assertEqual(meta0["n_symbols"], enc.symbols.size)
        # what the frames carry is the deterministic encoder's output, rebuilt by the assembler
        from gnuradio.medjscc.blocks._phyadapt import header_from_meta
        from gnuradio.medjscc.phy import ImageAssembler
        asm = ImageAssembler(p)
        for m, d in frames:
            if m["image_id"] == 0:
                asm.add(header_from_meta(m), d)
        out = asm.assemble(0)
        np.testing.assert_allclose(out.symbols, enc.symbols, atol=1e-5)
        self.assertEqual(out.side_info, enc.side_info)

    def test_image_pdu_and_snr_message(self):
        tx = jscc_tx(model=self.codec, image_size=64, snr_db=10.0)
        tb = gr.top_block()
        col = pdu_collector()
        tb.msg_connect(tx, "frames", col, "in")
        img = synthetic_image(64, seed=3)
        tb.start()
        try:
            post(tx, "image", make_pdu({"height": 64, "width": 64}, img.reshape(-1)))
            self.assertTrue(col.wait_for(1, HANG_S))   # hang guards: a loaded machine is only slower
            post(tx, "snr", to_pmt({"snr_db": 3.0, "raw_snr_db": 2.0}))
            # ports are served in no fixed order: wait until the SNR is taken before the next image
            deadline = time.monotonic() + HANG_S
            while tx.snr_db() != 3.0 and time.monotonic() < deadline:
                time.sleep(0.01)
            post(tx, "image", make_pdu({"height": 64, "width": 64,
                                        "mask": np.ones(64 * 64, np.uint8)}, img.reshape(-1)))
            self.assertTrue(col.wait_for(2, HANG_S))
            # bad inputs: wrong size, not a PDU, garbage SNR
            post(tx, "image", make_pdu({"height": 64, "width": 65}, img.reshape(-1)))
            post(tx, "image", pmt.intern("nope"))
            post(tx, "snr", pmt.intern("nope"))
            post(tx, "image", make_pdu({"height": 64, "width": 64}, img.reshape(-1)))
            self.assertTrue(col.wait_for(3, HANG_S))
        finally:
            tb.stop()
            tb.wait()
        self.assertEqual([h["snr_db"] for h in tx.history], [10.0, 3.0, 3.0])
        self.assertEqual(len(tx.errors), 2)
        self.assertEqual(tx.snr_db(), 3.0)

    def test_ack_port_feeds_the_outer_loop(self):
        """jscc_rx's metrics on port ack: a failed image (or a hybrid image whose base failed)
        raises the olla back-off, a decoded one lowers it; other messages are ignored."""
        tx = jscc_tx(model=self.codec, image_size=64, snr_db=10.0, feedback_policy="olla")
        tb = gr.top_block()
        col = pdu_collector()
        tb.msg_connect(tx, "frames", col, "in")
        tb.start()
        try:
            post(tx, "snr", to_pmt({"snr_db": 9.0}))
            for m in ({"decoded": False}, {"decoded": True, "base_ok": False}, {"decoded": True, "base_ok": "none"},
                      {"status": "decoded"}, {"decoded": False, "nonce": (tx.nonce + 1) % 65536}):
                post(tx, "ack", to_pmt(m))
            post(tx, "ack", pmt.intern("nope"))
            deadline = time.monotonic() + HANG_S
            while sum(tx.policy.acks) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)
        finally:
            tb.stop()
            tb.wait()
        self.assertEqual(tx.policy.acks, [1, 2])
        self.assertAlmostEqual(tx.policy.olla_offset_db, 2.0 - 1.0 / 9.0)
        self.assertAlmostEqual(tx.snr_db(), 9.0 - (2.0 - 1.0 / 9.0))

    def test_missing_file_is_reported_not_hung(self):
        tx = jscc_tx(image_path="/nonexistent/img.png", model=self.codec)
        items = self._run_files(tx, None)
        self.assertEqual(items, ["eos"])
        self.assertIn("not found", tx.errors[0])


if __name__ == "__main__":
    gr_unittest.run(qa_jscc_tx)


def test_layered_until_feedback_protects_only_the_design_snr_images():
    """A hybrid sends a two-layer base while it encodes for the design SNR, its own layout once a
    fed-back SNR is used; policy ``fixed`` never uses feedback; other codecs are left alone."""
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.demo import _load_images

    images, masks, _ = _load_images(1, 0)
    image, mask = images[0], masks[0]
    hybrid = load_codec("hybrid_softcast")
    tx = jscc_tx(model=hybrid, snr_db=10.0, layered_until_feedback=True)
    tx.send_image(image, mask)
    tx._handle_snr(to_pmt({"snr_db": 12.0}))
    tx.send_image(image, mask)
    tx.set_layered_until_feedback(False)
    tx._handle_snr(to_pmt({"snr_db": 12.0}))
    tx.send_image(image, mask)
    assert [(h["snr_db"], h["layered"]) for h in tx.history] == [(10.0, True), (12.0, False), (12.0, False)]

    fixed = jscc_tx(model=hybrid, snr_db=10.0, feedback_policy="fixed", layered_until_feedback=True)
    fixed._handle_snr(to_pmt({"snr_db": 12.0}))
    fixed.send_image(image, mask)
    assert [(h["snr_db"], h["layered"]) for h in fixed.history] == [(10.0, True)]

    plain = jscc_tx(model=hybrid, snr_db=10.0)   # off by default: the model's own layout
    plain.send_image(image, mask)
    assert plain.history[0]["layered"] is False

    analog = jscc_tx(model=shared_codec(), snr_db=10.0, layered_until_feedback=True)
    analog.send_image(image, mask)
    assert analog.history[0]["layered"] is False and analog._warned_not_hybrid


def test_stale_feedback_brings_the_two_layer_base_back():
    """With ``layered_max_age_s`` an estimate older than that is a guess again: two layers until a
    fresh one arrives; 0 (the default) never goes stale; a bad age is refused."""
    from gnuradio.medjscc.codec import load_codec
    from gnuradio.medjscc.demo import _load_images

    images, masks, _ = _load_images(1, 0)
    image, mask = images[0], masks[0]
    hybrid = load_codec("hybrid_softcast")
    now = [100.0]
    tx = jscc_tx(model=hybrid, snr_db=10.0, layered_until_feedback=True, layered_max_age_s=5.0,
                 clock=lambda: now[0])
    tx._handle_snr(to_pmt({"snr_db": 12.0}))
    tx.send_image(image, mask)        # fresh: the model's own layout
    now[0] += 6.0
    tx.send_image(image, mask)        # 6 s without feedback: two layers, still at the last SNR
    tx._handle_snr(to_pmt({"snr_db": 14.0}))
    tx.send_image(image, mask)        # fresh again
    assert [(h["snr_db"], h["layered"]) for h in tx.history] == [(12.0, False), (12.0, True), (14.0, False)]
    assert tx.history[1]["feedback_age_s"] == pytest.approx(6.0)

    never = jscc_tx(model=hybrid, snr_db=10.0, layered_until_feedback=True, clock=lambda: now[0])
    never._handle_snr(to_pmt({"snr_db": 12.0}))
    now[0] += 3600.0
    never.send_image(image, mask)
    assert never.history[0]["layered"] is False
    for bad in (-1.0, float("nan")):
        with pytest.raises(InputError, match="layered_max_age_s"):
            tx.set_layered_max_age_s(bad)
