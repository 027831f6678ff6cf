"""Shared helpers for the GNU Radio block QA tests (qa_*.py). Not a test module itself."""
from __future__ import annotations

import functools
import time

import numpy as np


def _codec_state(codec):
    """What a test could change on a codec that changes what it encodes (allocation what-ifs)."""
    import dataclasses

    return codec.allocation_score, dataclasses.asdict(codec.cfg)


@functools.lru_cache(maxsize=1)
def _load_shared_codec():
    from gnuradio.medjscc.codec import build_codec, load_codec
    from gnuradio.medjscc.codec.api import shipped_models_dir

    weights = shipped_models_dir() / "medjscc.pt"
    if weights.is_file():
        codec = load_codec("medjscc")   # a checksum or format error fails the test run, loudly
    else:
        import warnings

        warnings.warn(f"{weights} not shipped: QA tests use a random-init codec (plumbing only)")
        codec = build_codec("medjscc")
    return codec, _codec_state(codec)


def shared_codec():
    """The shipped Med-JSCC codec, loaded once per test process (a random-init model only when the
    weights file is absent, never in place of a damaged one).

    It is shared: a test must not change it (``allocation_score``, ``cfg``); every call checks that
    no earlier test did, so such a leak fails where it happens to be noticed instead of silently
    changing other tests' numbers. A test that needs a variant loads its own codec.
    """
    codec, state = _load_shared_codec()
    if _codec_state(codec) != state:
        raise AssertionError("a test changed the shared codec (allocation_score or cfg); "
                             "load a codec of its own for that")
    return codec


def synthetic_image(size: int = 256, seed: int = 0) -> np.ndarray:
    """A smooth synthetic radiograph-like image (deterministic)."""
    y, x = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(seed)
    img = 120 + 80 * np.sin(3 * x + seed) * np.cos(2 * y) + 10 * rng.standard_normal((size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


HANG_S = 120.0   # deadline of the QA waits: only a real hang reaches it (timing is measured in bench/)


def wait_until(predicate, timeout: float = HANG_S, what: str = "condition"):
    """Poll ``predicate()`` until it is true; an AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f} s (hang?)")
        time.sleep(0.01)


def run_message_block(block, in_port: str, messages, out_port: str, expected: int | None = None,
                      timeout: float = HANG_S, settle: float = 0.0, until=None):
    """Run ``block`` alone: post ``messages`` to ``in_port``, collect ``out_port``; returns items.

    Waits for ``expected`` output messages, or (``until``) for ``until(items)`` to be true: an
    event, never a fixed time, so a loaded machine is only slower. ``timeout`` is a hang guard and
    fails loudly. ``settle`` only gives unwanted extra outputs a chance to show up.
    """
    from gnuradio import gr

    from gnuradio.medjscc.blocks._msgtools import pdu_collector, post

    if (expected is None) == (until is None):
        raise ValueError("run_message_block: give exactly one of expected and until")
    tb = gr.top_block()
    col = pdu_collector()
    tb.msg_connect(block, out_port, col, "in")
    tb.start()
    try:
        for m in messages:
            post(block, in_port, m)
        if until is None:
            if not col.wait_for(expected, timeout):
                raise AssertionError(f"{len(col.items)} of {expected} messages on {out_port!r} "
                                     f"within {timeout:.0f} s (hang?)")
        else:
            wait_until(lambda: until(col.items), timeout, f"condition on {out_port!r}")
        if settle:
            time.sleep(settle)
    finally:
        tb.stop()
        tb.wait()
    return col.items


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (``netaddr.free_loopback_port``: random, below the ephemeral
    range, so concurrent test runs keep apart)."""
    from gnuradio.medjscc.netaddr import free_loopback_port

    return free_loopback_port()


@functools.lru_cache(maxsize=1)
def _stepper_class():
    import pmt
    from gnuradio import gr

    class channel_stepper(gr.basic_block):
        def __init__(self, channel, after_image, new_snr_db):
            gr.basic_block.__init__(self, name="channel_stepper", in_sig=None, out_sig=None)
            self.channel, self.step_after, self.new_snr = channel, after_image, new_snr_db
            self.stepped = False
            self.message_port_register_in(pmt.intern("in"))
            self.message_port_register_out(pmt.intern("out"))
            self.set_msg_handler(pmt.intern("in"), self.handle)

        def handle(self, msg):
            iid = pmt.dict_ref(pmt.car(msg), pmt.intern("image_id"), pmt.PMT_NIL)
            if not self.stepped and pmt.is_integer(iid) and pmt.to_long(iid) == self.step_after:
                self.channel.set_snr_db(self.new_snr)
                self.stepped = True
            self.message_port_pub(pmt.intern("out"), msg)

    return channel_stepper


def channel_stepper(channel, after_image: int, new_snr_db: float):
    """A message block between the OFDM RX and the SNR feedback: passes the RX PDUs on and, when a
    frame of image ``after_image`` arrives, sets ``channel``'s SNR to ``new_snr_db`` (before that
    frame's feedback leaves, so the step lands exactly between images). ``stepped`` says it did."""
    return _stepper_class()(channel, after_image, new_snr_db)


def connect_stepped_loop(tb, tx, otx, chan, orx, rx, step, fb):
    """The closed SNR loop of qa_closed_loop / qa_hybrid_air: jscc_tx -> OFDM TX -> channel -> OFDM RX
    -> jscc_rx, and the RX PDUs through ``channel_stepper`` ``step`` into ``snr_feedback`` ``fb``,
    whose SNR goes back to jscc_tx."""
    tb.msg_connect(tx, "frames", otx, "pdus")
    tb.connect(otx, chan, orx)
    tb.msg_connect(orx, "pdus", rx, "pdus")
    tb.msg_connect(orx, "pdus", step, "in")
    tb.msg_connect(step, "out", fb, "rx")
    tb.msg_connect(fb, "snr", tx, "snr")
