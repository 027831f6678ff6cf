"""QA: closed SNR loop in one flowgraph. The channel steps from 20 to 5 dB mid-run; the TX CAU
(via snr_feedback -> jscc_tx) and the RX CAU (jscc_rx fed by snr_feedback) use the new SNR
within 2 frames."""
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import gr, gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._phyadapt import make_params  # noqa: E402
from gnuradio.medjscc.blocks.channel_preset import channel_preset  # noqa: E402
from gnuradio.medjscc.blocks.jscc_rx import jscc_rx  # noqa: E402
from gnuradio.medjscc.blocks.jscc_tx import jscc_tx  # noqa: E402
from gnuradio.medjscc.blocks.ofdm_analog_rx import ofdm_analog_rx  # noqa: E402
from gnuradio.medjscc.blocks.ofdm_analog_tx import ofdm_analog_tx  # noqa: E402
from gnuradio.medjscc.blocks.snr_feedback import snr_feedback  # noqa: E402
from qa_helpers import channel_stepper, connect_stepped_loop, shared_codec, synthetic_image  # noqa: E402

N_IMAGES, STEP_AT = 10, 5          # 64x64 images: one OFDM frame each


class qa_closed_loop(gr_unittest.TestCase):
    def test_snr_step_is_followed_within_two_frames(self):
        import tempfile

        from PIL import Image
        codec = shared_codec()
        params = make_params({})
        with tempfile.TemporaryDirectory() as d:
            path = f"{d}/x.png"
            Image.fromarray(synthetic_image(64)).save(path)
            tb = gr.top_block()
            tx = jscc_tx(image_path=path, model=codec, image_size=64, snr_db=10.0, repeat=N_IMAGES,
                         wait_for_feedback=True, feedback_timeout_s=60.0, params=params)
            otx = ofdm_analog_tx(params=params)
            chan = channel_preset("awgn", 20.0, params=params, seed=4)
            orx = ofdm_analog_rx(params=params)
            step = channel_stepper(chan, STEP_AT - 1, 5.0)
            fb = snr_feedback(alpha=0.3, jump_db=3.0)
            rx = jscc_rx(model=codec, image_size=64, snr_source="feedback", params=params, timeout_s=60.0)
            connect_stepped_loop(tb, tx, otx, chan, orx, rx, step, fb)
            tb.msg_connect(fb, "snr", rx, "snr")
            tb.run()   # jscc_tx ends the run after N_IMAGES (stop-and-wait on the feedback)
        self.assertTrue(step.stepped)
        tx_snr = [h["snr_db"] for h in tx.history]
        self.assertEqual(len(tx_snr), N_IMAGES)
        est = {r["image_id"]: r["snr_est_db"] for r in rx.results}
        dec = {r["image_id"]: r["decode_snr_db"] for r in rx.results}
        self.assertEqual(sorted(est), list(range(N_IMAGES)))
        # the channel really stepped between frames STEP_AT-1 and STEP_AT
        for i in range(STEP_AT):
            self.assertAlmostEqual(est[i], 20.0, delta=1.5)
        for i in range(STEP_AT, N_IMAGES):
            self.assertAlmostEqual(est[i], 5.0, delta=1.5)
        # TX CAU: before the step it follows 20 dB, and at most 2 frames after it it uses ~5 dB
        for i in range(1, STEP_AT + 1):
            self.assertAlmostEqual(tx_snr[i], 20.0, delta=1.5)
        for i in range(STEP_AT + 2, N_IMAGES):
            self.assertAlmostEqual(tx_snr[i], 5.0, delta=1.5, msg=f"TX CAU frame {i}: {tx_snr}")
        # RX CAU (decoder fed by the feedback port): new SNR within 2 frames of the step
        for i in range(STEP_AT + 2, N_IMAGES):
            self.assertAlmostEqual(dec[i], 5.0, delta=1.5, msg=f"RX CAU frame {i}: {dec}")
        self.assertLess(abs(tx_snr[STEP_AT + 1] - 5.0), 1.5)   # in fact after one frame


if __name__ == "__main__":
    gr_unittest.run(qa_closed_loop)
