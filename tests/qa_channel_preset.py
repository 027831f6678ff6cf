"""QA: channel_preset sets the noise so Es/N0 on the OFDM data subcarriers equals the SNR."""
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import blocks, gr, gr_unittest  # noqa: E402

from gnuradio.medjscc.blocks._phyadapt import make_params, phy  # noqa: E402
from gnuradio.medjscc.blocks.channel_preset import (PRESETS, channel_preset,  # noqa: E402
                                                    noise_voltage_for_snr, preset_names)
from gnuradio.medjscc.blocks.radio_profiles import RadioProfile, load_radio_profiles  # noqa: E402
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


def _profile(**kw) -> RadioProfile:
    return RadioProfile(name="test", kind="impairment", description="t", source="t", **kw)


def _tone(n, cycles_per_sample=0.0, amplitude=1.0):
    return (amplitude * np.exp(2j * np.pi * cycles_per_sample * np.arange(n))).astype(np.complex64)


class qa_channel_preset_profiles(gr_unittest.TestCase):
    """Radio profiles as presets; gr-channels scaling conventions checked by measurement."""

    def setUp(self):
        self.params = make_params({})

    def test_every_profile_is_a_preset_and_passes_the_signal(self):
        p = self.params
        self.assertEqual(preset_names()[:4], ("awgn", "multipath", "rayleigh", "rayleigh_fast"))
        self.assertEqual(set(preset_names()[4:]), set(load_radio_profiles()))
        self.assertEqual(PRESETS, preset_names())   # what loopback.build_loopback validates against
        import yaml
        from pathlib import Path
        yml = Path(__file__).resolve().parents[1] / "gr-medjscc" / "grc" / "medjscc_channel_preset.block.yml"
        options = yaml.safe_load(yml.read_text())["parameters"][0]
        self.assertEqual(options["options"], list(preset_names()))   # GRC lists every profile
        self.assertEqual(len(options["option_labels"]), len(options["options"]))
        x = _tx_iq(p, n_frames=2)
        for name in load_radio_profiles():
            ch = channel_preset(name, 30.0, params=p, seed=1)
            y = _run(x, ch)
            self.assertGreater(y.size, 0.99 * x.size, name)
            self.assertTrue(np.all(np.isfinite(y)), name)
            power = float(np.mean(np.abs(y[np.abs(x[:y.size]) > 0]) ** 2))
            self.assertTrue(0.3 < power < 2.0, f"{name}: power {power}")
            self.assertTrue(np.isfinite(ch.papr_db()), name)

    def test_clean_profile_is_the_awgn_preset_sample_for_sample(self):
        p = self.params
        x = _tx_iq(p, n_frames=2)
        np.testing.assert_array_equal(_run(x, channel_preset("clean", 5.0, params=p, seed=3)),
                                      _run(x, channel_preset("awgn", 5.0, params=p, seed=3)))

    def test_clip_fraction_and_papr_are_measured_at_the_dac(self):
        p = self.params
        x = _tx_iq(p, n_frames=3)
        nz = x[np.abs(x) > 0]
        papr = 10 * np.log10(np.max(np.abs(nz) ** 2) / np.mean(np.abs(nz) ** 2))
        fractions = {}
        for amp in (1e-3, 0.25, 1.0):
            ch = channel_preset(_profile(tx_amplitude=amp), 100.0, params=p)
            y = _run(x, ch)
            v = (nz * np.float32(amp)).view(np.float32)
            fractions[amp] = ch.clip_fraction()
            self.assertAlmostEqual(ch.clip_fraction(), float(np.mean(np.abs(v) > 1.0)), places=6)
            self.assertAlmostEqual(ch.papr_db(), papr, places=3)
            # clipped per I/Q at full scale, then scaled back by 1/amplitude
            self.assertLessEqual(float(np.max(np.abs(y.view(np.float32)))), 1.0 / amp * 1.001 + 0.01)
        self.assertEqual(fractions[1e-3], 0.0)
        self.assertGreater(fractions[1.0], 0.01)
        self.assertGreater(fractions[1.0], fractions[0.25])
        ideal = channel_preset("cfo_1p5", 20.0, params=p)
        _run(x, ideal)
        self.assertEqual(ideal.clip_fraction(), 0.0)   # no DAC amplitude: measured, never clipped
        self.assertTrue(np.isnan(channel_preset("awgn", 20.0, params=p).clip_fraction()))

    def test_cfo_profile_rotates_a_tone_by_cfo_over_fft_len(self):
        p = self.params
        f0 = 3.0 / p.fft_len
        for preset, extra, expect in (("cfo_1p5", 0.0, 1.5), ("cfo_1p5", -0.5, 1.0), (_profile(cfo_subcarriers=0.63), 0.0, 0.63)):
            y = _run(_tone(20000, f0), channel_preset(preset, 200.0, cfo=extra, params=p))[200:-200]
            f = np.angle(np.vdot(y[:-1], y[1:])) / (2 * np.pi)     # mean phase step per sample
            self.assertAlmostEqual((f - f0) * p.fft_len, expect, delta=2e-3, msg=str(preset))
        ch = channel_preset("cfo_1p5", 200.0, params=p)
        ch.set_cfo(0.5)   # run-time setter adds to the profile's CFO
        y = _run(_tone(20000), ch)[200:-200]
        self.assertAlmostEqual(np.angle(np.vdot(y[:-1], y[1:])) / (2 * np.pi) * p.fft_len, 2.0, delta=2e-3)

    def test_iq_imbalance_phase_noise_pa_dc_conventions(self):
        p = self.params
        # iqbal_gen (TX mode): the I branch gets gain 10**(dB/20) and is rotated by the phase in
        # degrees, Q is untouched
        y = _run(np.array([1, 1j] * 2000, np.complex64), channel_preset("iq_1db_5deg", 300.0, params=p))
        i_out, q_out = y[1000:3000:2], y[1001:3000:2]
        if abs(i_out[0]) < abs(q_out[0]):   # channel_model delay may swap the parity
            i_out, q_out = q_out, i_out
        self.assertAlmostEqual(20 * np.log10(np.mean(np.abs(i_out))), 1.0, delta=0.02)
        self.assertAlmostEqual(np.degrees(np.angle(np.mean(i_out))), 5.0, delta=0.1)
        np.testing.assert_allclose(q_out, 1j, atol=1e-3)
        # phase_noise_gen: the profile's deg rms is what comes out
        y = _run(_tone(300000), channel_preset("phase_noise_3deg", 300.0, params=p))[1000:-100]
        self.assertAlmostEqual(float(np.degrees(np.std(np.angle(y)))), 3.0, delta=0.3)
        # distortion_3_gen after the DAC: y = x + beta |x|^2 x in full-scale units, scaled back
        y = _run(np.full(4000, 2.0, np.complex64), channel_preset("pa_cubic_0p25", 300.0, params=p))
        self.assertAlmostEqual(float(np.median(y.real)), 2.0 * (1 - 0.3 * (0.25 * 2.0) ** 2), delta=1e-3)
        # DC offset at -20 dBc relative to the unit-power signal
        y = _run(np.zeros(4000, np.complex64), channel_preset("dc_offset", 300.0, params=p))
        self.assertAlmostEqual(20 * np.log10(abs(np.mean(y[100:]))), -20.0, delta=0.01)

    def test_fading_profiles_keep_unit_power_and_rician_k(self):
        p = self.params
        n = 1_000_000
        for name, m4 in (("rayleigh_100hz", 2.0), ("rician_k3_100hz", (9 + 12 + 2) / 16)):
            y = _run(np.ones(n, np.complex64), channel_preset(name, 300.0, params=p, seed=1))[100:]
            pw = np.abs(y) ** 2
            self.assertAlmostEqual(float(pw.mean()), 1.0, delta=0.15, msg=name)
            # E|h|^4 / (E|h|^2)^2 = (K^2 + 4K + 2) / (K + 1)^2 identifies K
            self.assertAlmostEqual(float(np.mean(pw ** 2) / pw.mean() ** 2), m4, delta=0.2, msg=name)
        imp = np.zeros(400, np.complex64)
        imp[100] = 1
        h = _run(imp, channel_preset("multipath_3tap", 300.0, params=p))
        peaks = np.sort(np.argsort(np.abs(h))[-3:])
        self.assertEqual(list(peaks - peaks[0]), [0, 3, 8])
        self.assertAlmostEqual(float(np.sum(np.abs(h[peaks]) ** 2)), 1.0, delta=0.01)


class qa_channel_preset_switching(gr_unittest.TestCase):
    """set_preset (GRC callback of a preset chooser) changes the preset of a running channel."""

    def setUp(self):
        self.params = make_params({})

    def test_switched_preset_equals_a_channel_built_for_it(self):
        # every stage is set, nothing of the first preset stays: sample for sample the same output
        # as a channel made with the new preset (same seed)
        p = self.params
        x = _tx_iq(p, n_frames=2)
        for first, second in (("awgn", "b200_pair_2g4"), ("b200_pair_2g4", "awgn"),
                              ("rayleigh", "rician_k3_100hz"), ("rayleigh_3tap_100hz", "multipath"),
                              ("phase_noise_3deg", "rayleigh_fast"), ("clip_0p25", "pa_cubic_0p25"),
                              ("awgn", "rayleigh_3tap_100hz"), ("dc_offset", "iq_1db_5deg")):
            ch = channel_preset(first, 12.0, cfo=0.1, params=p, seed=5, switchable=True)
            ch.set_preset(second)
            self.assertEqual(ch.preset, second)
            # equal to float32 rounding: how the scheduler cuts the stream into work() calls moves
            # VOLK between aligned and unaligned kernels (seen once: 3 of 10960 samples 7e-8 apart);
            # a stage left over from the first preset would differ by orders of magnitude more
            np.testing.assert_allclose(_run(x, ch), _run(x, channel_preset(second, 12.0, cfo=0.1, params=p, seed=5)),
                                       rtol=0, atol=1e-6, err_msg=f"{first} -> {second}")

    def test_stream_tags_pass_once_through_a_switchable_channel(self):
        # frame tags (burst_dropper) and eos (flushes the OFDM receiver) arrive once, at their
        # offsets, whatever stages the channel holds (gr-channels' IQ and PA blocks triple them)
        import pmt

        x = np.ones(100_000, np.complex64)
        tags = [gr.tag_utils.python_to_tag((o, pmt.intern(k), pmt.from_long(o), pmt.intern("t")))
                for o, k in ((10, "frame"), (50_000, "frame"), (90_000, "eos"))]
        for preset in ("awgn", "b200_pair_2g4", "rayleigh_3tap_100hz"):
            tb = gr.top_block()
            src = blocks.vector_source_c(x.tolist(), False, 1, tags)
            ch = channel_preset(preset, 20.0, params=self.params, switchable=True)
            snk = blocks.vector_sink_c()
            tb.connect(src, ch, snk)
            tb.run()
            got = [(t.offset, pmt.symbol_to_string(t.key)) for t in snk.tags()]
            self.assertEqual(got, [(10, "frame"), (50_000, "frame"), (90_000, "eos")], preset)

    def test_unknown_preset_names_the_valid_ones_and_keeps_the_current(self):
        from gnuradio.medjscc.errors import InputError

        ch = channel_preset("cfo_1p5", 20.0, params=self.params)
        with self.assertRaises(InputError) as cm:
            ch.set_preset("awgnn")
        msg = str(cm.exception)
        self.assertIn("'awgnn'", msg)
        for name in preset_names():
            self.assertIn(name, msg)
        self.assertEqual(ch.preset, "cfo_1p5")
        with self.assertRaises(InputError):
            channel_preset("moon_bounce")

    def test_set_preset_while_running_follows_and_loses_no_sample(self):
        """A throttled tone runs through the channel; the preset goes awgn -> cfo_1p5 ->
        rayleigh_100hz -> awgn mid-run: the output follows (frequency, fading), nothing stalls, and
        exactly as many samples come out as from a channel left alone (the fading path switch
        drains the old path first)."""
        import time

        p = self.params
        period, tail = 700_000, 300_000
        n_in = 4 * period + 50_000

        def flowgraph(ch):
            tb = gr.top_block()
            src = blocks.vector_source_c(_tone(4096).tolist(), True)
            head = blocks.head(gr.sizeof_gr_complex, n_in)
            thr = blocks.throttle(gr.sizeof_gr_complex, 2.0e6)
            snk = blocks.vector_sink_c()
            tb.connect(src, head, thr, ch, snk)
            tb._keep = [src, head, thr, ch, snk]   # Python blocks must outlive the run
            return tb, snk

        # each period lasts until 700k samples are out: its last 300k left the channel after the
        # switch (the buffers between the channel's stages hold < 400k samples)
        ch = channel_preset("awgn", 200.0, params=p, switchable=True)
        tb, snk = flowgraph(ch)

        def wait_for(n):
            deadline = time.monotonic() + 120.0      # only a stalled flowgraph gets there
            while snk.nitems_read(0) < n and time.monotonic() < deadline:
                time.sleep(0.05)
            return snk.nitems_read(0)

        tb.start()
        marks = []
        try:
            for preset in ("cfo_1p5", "rayleigh_100hz", "awgn"):
                marks.append(wait_for((marks[-1] if marks else 0) + period))   # out before: old preset
                ch.set_preset(preset)
                self.assertGreaterEqual(marks[-1], len(marks) * period, f"stalled: {marks}")
        finally:
            done = threading.Event()
            threading.Thread(target=lambda: (tb.wait(), done.set()), daemon=True).start()
            finished = done.wait(120.0)
            if not finished:
                tb.stop()
        self.assertTrue(finished, f"the flowgraph did not finish after the switches: {marks}")
        y = np.array(snk.data(), np.complex64)
        ref_tb, ref_snk = flowgraph(channel_preset("awgn", 200.0, params=p, switchable=True))
        ref_tb.run()
        self.assertEqual(len(y), len(ref_snk.data()))

        def cfo(seg):
            return float(np.angle(np.vdot(seg[:-1], seg[1:])) / (2 * np.pi) * p.fft_len)

        def fading_depth(seg):
            return float(np.std(np.abs(seg)))

        before = y[1000:marks[0]]
        self.assertAlmostEqual(cfo(before), 0.0, delta=2e-3)
        self.assertLess(fading_depth(before), 0.01)
        self.assertAlmostEqual(cfo(y[marks[1] - tail:marks[1]]), 1.5, delta=2e-3)
        self.assertGreater(fading_depth(y[marks[2] - tail:marks[2]]), 0.1)     # Rayleigh: |h| varies
        self.assertAlmostEqual(cfo(y[-tail:]), 0.0, delta=2e-3)
        self.assertLess(fading_depth(y[-tail:]), 0.01)
        self.assertTrue(np.all(np.isfinite(y)))

if __name__ == "__main__":
    gr_unittest.run(qa_channel_preset)


class qa_burst_dropper(gr_unittest.TestCase):
    def test_frame_loss_profile_zeroes_whole_tagged_bursts(self):
        """Bursts from ofdm_analog_tx carry a ``frame`` tag with their length: the frame_loss
        profile zeroes whole bursts, about p of them, and the receiver loses exactly those."""
        import pmt

        from gnuradio.medjscc.blocks.ofdm_analog_rx import ofdm_analog_rx
        from gnuradio.medjscc.blocks.ofdm_analog_tx import ofdm_analog_tx
        from gnuradio.medjscc.blocks._msgtools import pdu_collector, post
        from gnuradio.medjscc.blocks._pmtutil import make_pdu

        n_frames = 60
        tx = ofdm_analog_tx()
        ch = channel_preset("frame_loss_10pct", 30.0, params=tx.params, seed=3)
        rx = ofdm_analog_rx(params=tx.params)
        col = pdu_collector()
        tb = gr.top_block()
        tb.connect(tx, ch, rx)
        tb.msg_connect(rx, "pdus", col, "in")
        n = tx.params.max_payload_len
        for i in range(n_frames):
            post(tx, "pdus", make_pdu({"seq": 0, "image_id": i, "frame_count": 1, "payload_len": n,
                                       "side_info_chunk": b""}, np.ones(n, np.complex64)))
        post(tx, "pdus", pmt.intern("eos"))
        tb.run()
        dropper = ch.dropper
        self.assertEqual(dropper.frames_seen, n_frames)
        self.assertEqual(ch.frames_dropped(), dropper.frames_dropped)
        self.assertTrue(1 <= dropper.frames_dropped <= 15, dropper.frames_dropped)   # ~6 expected
        expect = n_frames - dropper.frames_dropped
        col.wait_for(expect, 120.0)                # messages may still be in flight after run()
        got = sorted(m["image_id"] for m, _ in col.items if m.get("crc_ok"))
        self.assertEqual(len(got), expect)         # exactly the dropped ones are lost
        # and nothing else is touched: no neighbour frame fails its header
        self.assertEqual([m for m, _ in col.items if not m.get("crc_ok")], [])
        self.assertEqual(len(set(got)), len(got))
