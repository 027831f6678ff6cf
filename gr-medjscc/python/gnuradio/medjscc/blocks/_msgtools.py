"""Small message-port helpers: collect PDUs into Python lists, post messages into blocks."""
from __future__ import annotations

import threading
import time

import pmt
from gnuradio import gr

from ._pmtutil import split_pdu, to_python


class pdu_collector(gr.basic_block):
    """Message sink that stores every message (as ``(meta, data)`` for PDUs, else Python)."""

    def __init__(self, port: str = "in", keep: int = 0, meta_only: bool = False):
        gr.basic_block.__init__(self, name="medjscc_pdu_collector", in_sig=None, out_sig=None)
        self.items: list = []
        self._keep = int(keep)
        self._meta_only = bool(meta_only)
        self.last_time = None
        self._cond = threading.Condition()
        self.message_port_register_in(pmt.intern(port))
        self.set_msg_handler(pmt.intern(port), self._handle)

    def _handle(self, msg):
        try:
            item = split_pdu(msg) if (pmt.is_pair(msg) and not pmt.is_dict(msg)) else to_python(msg)
        except Exception:
            item = msg
        if self._meta_only and isinstance(item, tuple):
            item = item[0]
        with self._cond:
            self.last_time = time.monotonic()
            self.items.append(item)
            if self._keep and len(self.items) > self._keep:
                del self.items[0]
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until ``count`` messages arrived or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.items) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


class quiet_gr_logs:
    """Silence GNU Radio's INFO chatter (e.g. "set_min_output_buffer on block ...") for a moment."""

    def __enter__(self):
        self._log = gr.logging()
        self._old = self._log.default_level()
        self._log.set_default_level(gr.log_levels.warn)

    def __exit__(self, *exc):
        self._log.set_default_level(self._old)
        return False


def post(block, port: str, msg):
    """Deliver ``msg`` to ``block``'s input message port (as if a connected block sent it)."""
    target = block.to_basic_block() if hasattr(block, "to_basic_block") else block
    target._post(pmt.intern(port), msg)
