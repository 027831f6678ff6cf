"""QA: channel_preset sets the noise so Es/N0 on the OFDM data subcarriers equals the SNR."""
import numpy as np
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import blocks, gr, gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._phyadapt import make_params, phy  # noqa: E402
from gnuradio.medjscc.blocks.channel_preset import channel_preset, noise_voltage_for_snr  # noqa: E402
from gnuradio.medjscc.blocks.ofdm_analog_tx import FrameModulator  # noqa: E402


def _tx_iq(params, n_frames=6, seed=0):
    rng = np.random.default_rng(seed)
    mod = FrameModulator(params, guard=256)
    n = params.max_payload_len
    iq = [np.zeros(256, np.complex64)]
    for i in range(n_frames):
        pay = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
        iq.append(mod.modulate({"seq": i, "image_id": 0, "frame_count": n_frames, "payload_len": n,
                                "side_info_chunk": b""}, pay))
    return np.concatenate(iq)


def _run(x, ch):
    tb = gr.top_block()
    src = blocks.vector_source_c(x.tolist())
    snk = blocks.vector_sink_c()
    tb.connect(src, ch, snk)
    tb.run()
    return np.array(snk.data(), np.complex64)


def _data_subcarrier_snr(x, y, p):
    """Es/N0 on the data subcarriers from the clean TX signal and the channel output."""
    # channel_model's resampler drops a few leading samples: align on the clean signal
    lags = [abs(np.vdot(x[d:5000 + d], y[:5000])) for d in range(8)]
    d = int(np.argmax(lags))
    n = min(len(x) - d, len(y))
    noise = y[:n] - x[d:d + n]
    # cut the noise into FFT windows and apply the receiver's scaling
    m = (n // p.fft_len) * p.fft_len
    W = np.fft.fft(noise[:m].reshape(-1, p.fft_len), axis=1) * p.rx_scale
    n0_data = float(np.mean(np.abs(W[:, p.bins(p.data_carrier_idx)]) ** 2))
    return 10 * np.log10(1.0 / n0_data)   # data symbols have unit power


class qa_channel_preset(gr_unittest.TestCase):
    def setUp(self):
        self.params = make_params({})

    def test_noise_on_data_subcarriers_matches_snr(self):
        p = self.params
        x = _tx_iq(p)
        for snr in (0.0, 10.0, 20.0):
            y = _run(x, channel_preset("awgn", snr, params=p, seed=7))
            measured = _data_subcarrier_snr(x, y, p)
            self.assertAlmostEqual(measured, snr, delta=0.15, msg=f"at {snr} dB")
            # and the naive calibration would be off by 10log10(64/52)
            self.assertAlmostEqual(noise_voltage_for_snr(snr, p) ** 2,
                                   10 ** (-snr / 10) * p.fft_len / p.n_occupied)

    def test_tx_data_subcarriers_have_unit_power(self):
        p = self.params
        x = _tx_iq(p, n_frames=1)
        tx = phy("OfdmTransmitter")(p)
        start = 256 + tx.preamble.size + p.n_header_symbols * p.symbol_len
        sym = x[start:start + 10 * p.symbol_len].reshape(10, p.symbol_len)[:, p.cp_len:]
        X = np.fft.fft(sym, axis=1) * p.rx_scale
        self.assertAlmostEqual(float(np.mean(np.abs(X[:, p.bins(p.data_carrier_idx)]) ** 2)), 1.0, delta=0.15)

    def test_receiver_estimate_and_cfo_through_preset(self):
        p = self.params
        x = _tx_iq(p)
        y = _run(x, channel_preset("multipath", 12.0, cfo=0.2, params=p, seed=3))
        rx = phy("OfdmReceiver")(p)
        frames = [f for f in rx.process(y) + rx.flush() if f.crc_ok]
        self.assertGreaterEqual(len(frames), 5)
        self.assertAlmostEqual(float(np.mean([f.cfo for f in frames])), 0.2, delta=0.02)
        self.assertAlmostEqual(float(np.mean([f.snr_db for f in frames])), 12.0, delta=1.5)

    def test_setters_and_bad_preset(self):
        p = self.params
        ch = channel_preset("awgn", 30.0, params=p)
        ch.set_snr_db(5.0)   # run-time step (used by the closed-loop test)
        self.assertEqual(ch.snr_db(), 5.0)
        x = _tx_iq(p, n_frames=2)
        self.assertAlmostEqual(_data_subcarrier_snr(x, _run(x, ch), p), 5.0, delta=0.2)
        channel_preset("rayleigh_fast", 10.0, params=p).set_cfo(0.1)
        with self.assertRaises(ValueError):
            channel_preset("moon_bounce")


if __name__ == "__main__":
    gr_unittest.run(qa_channel_preset)
