"""How the transmitter's CAU picks its encoding SNR from SNR feedback that arrives late.

On a satellite link every fed-back SNR is old: ~30 ms round trip for LEO, ~550 ms for GEO. Each
estimate carries two times on the CAU's clock: ``t_meas`` (when the receiver measured it: the
arrival minus the delay the feedback path reports, or the frame's own air time in a simulation)
and ``t_avail`` (when the CAU may use it: arrival plus ``delay_s``, the delay this end adds).
``choose(now)`` sees only the estimates with ``t_avail <= now``:

* ``instant`` -- the newest usable estimate as it is (the closed loop without delay handling;
  with no delay this is exactly the old behaviour of ``jscc_tx``).
* ``margin``  -- the newest usable estimate minus ``margin_db``: encode for a channel a little
  worse than last seen, since an over-estimated SNR costs more than an under-estimated one.
* ``predict`` -- least-squares line through the last ``history`` usable estimates against their
  ``t_meas``, extrapolated to ``now + lead_s`` (when the image will be on air), minus
  ``margin_db``. The slope is clipped to +-``max_slope_db_s`` and the forecast to the range of
  the estimates used +- ``max_extrap_db``, so a few noisy points cannot throw it far.
* ``floor``   -- ``max(design_snr_db, newest - margin_db)``: the feedback may only raise the
  encoding SNR above the design (when the channel is clearly better), never lower it. An old
  estimate taken in a fading dip that has passed by the time the image is on air then costs
  nothing, while a long good stretch (a high pass) is still used. On the LEO pass of
  bench/late_feedback.py, encoding for an SNR several dB too low (a stale dip) lost 3-4 dB of
  ROI-PSNR on those images, more than encoding for one a few dB too high did.
* ``fixed``   -- no feedback: always ``design_snr_db`` (the link budget's design SNR).
* ``olla``    -- outer-loop link adaptation (as LTE's link adaptation runs on HARQ ACK/NACK): the
  newest estimate minus ``margin_db`` minus a learned back-off. ``acknowledge(ok)`` takes the
  receiver's verdict on each image (``jscc_rx``'s metrics on ``jscc_tx``'s ``ack`` port): a
  failed image raises the back-off by ``olla_step_db``, a good one lowers it by
  ``olla_step_db * olla_target / (1 - olla_target)``, so it settles where a share ``olla_target``
  of the images fail. It learns what the SNR estimate does not show: the hybrid codec's digital
  base on a channel worse than its mean SNR says (selective, clipped, fading), without knowing why.

Before the first usable estimate every policy encodes for ``design_snr_db``. Pure Python (no
GNU Radio): ``jscc_tx`` holds one; tests and benches drive it directly.
"""
from __future__ import annotations

import collections
import math
import threading

from ..errors import InputError

POLICIES = ("instant", "margin", "predict", "floor", "fixed", "olla")
OLLA_MAX_DB = 15.0   # the learned back-off stays within +-this


def _finite(name, value, lo=-math.inf, hi=math.inf) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"feedback policy: {name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise InputError(f"feedback policy: {name} must be in [{lo}, {hi}], got {value!r}")
    return v


class FeedbackPolicy:
    """See the module doc. ``delay_s``: hold every estimate this long after it arrives."""

    def __init__(self, policy: str = "instant", design_snr_db: float = 10.0, margin_db: float = 0.0,
                 delay_s: float = 0.0, history: int = 8, lead_s: float = 0.0,
                 max_slope_db_s: float = 20.0, max_extrap_db: float = 3.0, olla_step_db: float = 1.0,
                 olla_target: float = 0.1):
        if policy not in POLICIES:
            raise InputError(f"feedback policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.policy = policy
        self.design_snr_db = _finite("design_snr_db", design_snr_db, -50, 100)
        self.margin_db = _finite("margin_db", margin_db, -20, 40)
        self.delay_s = _finite("delay_s", delay_s, 0, 3600)
        self.history = int(_finite("history", history, 2, 1000))
        self.lead_s = _finite("lead_s", lead_s, 0, 3600)
        self.max_slope_db_s = _finite("max_slope_db_s", max_slope_db_s, 0, 1e6)
        self.max_extrap_db = _finite("max_extrap_db", max_extrap_db, 0, 100)
        self.olla_step_db = _finite("olla_step_db", olla_step_db, 0, 10)
        self.olla_target = _finite("olla_target", olla_target, 0.001, 0.5)
        self.olla_offset_db = 0.0   # the learned back-off (olla), from acknowledge()
        self.acks = [0, 0]          # images acknowledged (good, failed)
        self._lock = threading.Lock()
        self._pending: collections.deque = collections.deque()      # (t_avail, t_meas, snr), by t_avail
        self._usable: collections.deque = collections.deque(maxlen=self.history)   # (t_meas, snr)
        self.last_age_s: float | None = None      # age of the newest estimate used by choose()
        self.last_from_feedback = False           # whether choose() used an estimate (else the design SNR)

    def observe(self, snr_db: float, now: float, t_meas: float | None = None, upstream_delay_s: float = 0.0):
        """An estimate arrived at ``now``; measured at ``t_meas`` (default: ``now`` minus the
        delay the feedback path already added)."""
        snr_db = float(snr_db)
        if not math.isfinite(snr_db):
            return
        tm = float(t_meas) if t_meas is not None else float(now) - float(upstream_delay_s)
        with self._lock:
            t_avail = float(now) + self.delay_s
            # arrival order = availability order (same hold for every estimate)
            self._pending.append((t_avail, tm, snr_db))

    def acknowledge(self, ok: bool) -> float:
        """The receiver's verdict on one image (every policy counts it; ``olla`` encodes with it).
        -> the back-off now."""
        with self._lock:
            if ok:
                self.acks[0] += 1
                step = -self.olla_step_db * self.olla_target / (1.0 - self.olla_target)
            else:
                self.acks[1] += 1
                step = self.olla_step_db
            self.olla_offset_db = max(-OLLA_MAX_DB, min(OLLA_MAX_DB, self.olla_offset_db + step))
            return self.olla_offset_db

    def _release(self, now: float):
        while self._pending and self._pending[0][0] <= now:
            _, tm, snr = self._pending.popleft()
            self._usable.append((tm, snr))

    def usable(self, now: float) -> list[tuple[float, float]]:
        """(t_meas, snr_db) of the estimates usable at ``now``, oldest first (at most ``history``)."""
        with self._lock:
            self._release(now)
            return list(self._usable)

    def choose(self, now: float) -> float:
        """The encoding SNR (dB) for an image encoded at ``now``."""
        pts = self.usable(now)
        self.last_from_feedback = bool(pts) and self.policy != "fixed"
        if not self.last_from_feedback:
            self.last_age_s = None if not pts else now - pts[-1][0]
            return self.design_snr_db
        t_last, s_last = pts[-1]
        self.last_age_s = now - t_last
        if self.policy == "instant":
            return s_last
        if self.policy == "floor":
            return max(self.design_snr_db, s_last - self.margin_db)
        if self.policy == "olla":
            return s_last - self.margin_db - self.olla_offset_db
        if self.policy == "margin" or len(pts) < 2:
            return s_last - self.margin_db
        return predict_linear(pts, now + self.lead_s, self.max_slope_db_s, self.max_extrap_db) - self.margin_db


def predict_linear(pts, t: float, max_slope_db_s: float = math.inf, max_extrap_db: float = math.inf) -> float:
    """Least-squares line through ``pts`` = [(time, snr_db)], evaluated at ``t``; slope clipped to
    +-max_slope_db_s, result to [min - max_extrap_db, max + max_extrap_db] of the points."""
    n = len(pts)
    ts = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    tm, ym = sum(ts) / n, sum(ys) / n
    var = sum((x - tm) ** 2 for x in ts)
    slope = 0.0 if var <= 0 else sum((x - tm) * (y - ym) for x, y in zip(ts, ys)) / var
    slope = max(-max_slope_db_s, min(max_slope_db_s, slope))
    y = ym + slope * (t - tm)
    return max(min(ys) - max_extrap_db, min(max(ys) + max_extrap_db, y))


def make_policy(policy, design_snr_db: float, margin_db: float = 0.0, delay_ms: float = 0.0,
                **kw) -> FeedbackPolicy:
    """A FeedbackPolicy from a name (GRC / CLI parameters) or a ready FeedbackPolicy (Python API)."""
    if isinstance(policy, FeedbackPolicy):
        return policy
    return FeedbackPolicy(str(policy), design_snr_db, margin_db, float(delay_ms) / 1000.0, **kw)
