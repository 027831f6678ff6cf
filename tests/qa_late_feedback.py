"""QA (issue #18): the SNR feedback path really is late when told to be -- snr_feedback publishes
delay_ms after the frame (in a running flowgraph, in order, with its delay in the message), and
jscc_tx's CAU uses an SNR message only feedback_delay_ms after it arrived."""
import time

import numpy as np
import pmt
import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio import gr  # noqa: E402

from gnuradio.medjscc.blocks._pmtutil import make_pdu, to_pmt  # noqa: E402
from gnuradio.medjscc.blocks.jscc_tx import jscc_tx  # noqa: E402
from gnuradio.medjscc.blocks.snr_feedback import snr_feedback  # noqa: E402
from gnuradio.medjscc.errors import InputError  # noqa: E402
from qa_helpers import HANG_S, free_port, shared_codec  # noqa: E402


class _arrivals(gr.basic_block):
    def __init__(self):
        gr.basic_block.__init__(self, name="arrivals", in_sig=None, out_sig=None)
        self.got = []
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self.handle)

    def handle(self, msg):
        self.got.append((time.monotonic(), pmt.to_python(msg)))


def _publish_times(delay_ms, n=3, zmq=False):
    tb = gr.top_block()
    fb = snr_feedback(alpha=1.0, jump_db=0.0, delay_ms=delay_ms)
    sink = _arrivals()
    if zmq:    # the feedback path of medjscc rx -> tx: PUB in the receiver, SUB in the transmitter
        from gnuradio import zeromq

        addr = f"tcp://127.0.0.1:{free_port()}"
        pub, sub = zeromq.pub_msg_sink(addr, 100, True), zeromq.sub_msg_source(addr, 100, False)
        tb.msg_connect(fb, "snr", pub, "in")
        tb.msg_connect(sub, "out", sink, "in")
    else:
        tb.msg_connect(fb, "snr", sink, "in")
    tb.start()
    sent = []
    try:
        if zmq:   # PUB drops what it sends before SUB is connected: warm up until one arrives
            deadline = time.monotonic() + HANG_S
            while not sink.got:
                assert time.monotonic() < deadline, "ZMQ feedback path never connected (hang)"
                fb.to_basic_block()._post(pmt.intern("rx"), make_pdu(
                    {"snr_db": 0.0, "seq": -1, "crc_ok": True}, np.zeros(2, np.complex64)))
                time.sleep(0.05 + delay_ms / 1000)
            time.sleep(delay_ms / 1000 + 0.1)
            sink.got.clear()
        for k in range(n):
            sent.append(time.monotonic())
            fb.to_basic_block()._post(pmt.intern("rx"), make_pdu(
                {"snr_db": 5.0 + k, "seq": k, "crc_ok": True, "start_sample": 1000 * k}, np.zeros(2, np.complex64)))
            time.sleep(0.02)
        end = time.monotonic() + HANG_S      # a hang guard only: load may slow delivery, never speed it
        while len([g for g in sink.got if g[1]["seq"] >= 0]) < n and time.monotonic() < end:
            time.sleep(0.005)
    finally:
        tb.stop()
        tb.wait()
    return sent, [g for g in sink.got if g[1]["seq"] >= 0]


def test_snr_feedback_delay_actually_delays_in_order():
    sent, got = _publish_times(200.0)
    assert [g[1]["seq"] for g in got] == [0, 1, 2]
    lags = [g[0] - s for s, g in zip(sent, got)]
    # a lower bound only: a loaded machine can make messages later, never earlier
    assert min(lags) >= 0.195, lags
    assert got[0][1]["delay_ms"] == 200.0 and got[2][1]["start_sample"] == 2000
    sent0, got0 = _publish_times(0.0)
    assert [g[1]["seq"] for g in got0] == [0, 1, 2] and all(g[1]["delay_ms"] == 0.0 for g in got0)
    with pytest.raises(InputError, match="delay_ms must be a number >= 0"):
        snr_feedback(delay_ms=-5)


def test_snr_feedback_delay_across_zmq():
    sent, got = _publish_times(200.0, zmq=True)
    assert [g[1]["seq"] for g in got] == [0, 1, 2]
    lags = [g[0] - s for s, g in zip(sent, got)]
    assert min(lags) >= 0.195, lags
    assert got[0][1]["delay_ms"] == 200.0


def test_jscc_tx_cau_uses_a_message_only_after_its_delay():
    now = [0.0]
    tx = jscc_tx(model=shared_codec(), image_size=64, snr_db=10.0, feedback_delay_ms=30.0,
                 clock=lambda: now[0])
    tx._handle_snr(to_pmt({"snr_db": 3.0, "delay_ms": 0.0}))
    assert tx.feedback_count == 1
    now[0] = 0.029
    assert tx.snr_db() == 10.0
    now[0] = 0.030
    assert tx.snr_db() == 3.0
    frames = tx.send_image(np.full((64, 64), 100, np.uint8))
    assert frames and tx.history[-1]["snr_db"] == 3.0 and tx.history[-1]["feedback_age_s"] == pytest.approx(0.030)
    # no feedback at all: the design SNR whatever arrives
    fixed = jscc_tx(model=shared_codec(), image_size=64, snr_db=7.0, feedback_policy="fixed")
    fixed._handle_snr(to_pmt({"snr_db": 20.0}))
    assert fixed.snr_db() == 7.0
    # margin on the newest estimate; the upstream delay counts in its age
    m = jscc_tx(model=shared_codec(), image_size=64, snr_db=7.0, feedback_policy="margin",
                feedback_margin_db=2.0, clock=lambda: 5.0)
    m._handle_snr(to_pmt({"snr_db": 12.0, "delay_ms": 550.0}))
    assert m.snr_db() == 10.0 and m.policy.last_age_s == pytest.approx(0.55)
