"""The shared arithmetic coder round-trips any symbol sequence under any count model."""
from hypothesis import given, settings
from hypothesis import strategies as st

from gnuradio.medjscc.arithcoder import ArithmeticDecoder, ArithmeticEncoder


def _intervals(counts, s):
    lo = sum(counts[:s])
    return lo, lo + counts[s], sum(counts)


def _decode(bits, counts, n):
    dec = ArithmeticDecoder(bits)
    out = []
    for _ in range(n):
        total = sum(counts)
        t = dec.target(total)
        s, acc = 0, 0
        while acc + counts[s] <= t:
            acc += counts[s]
            s += 1
        dec.consume(acc, acc + counts[s], total)
        out.append(s)
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=2, max_size=8).flatmap(
    lambda counts: st.tuples(st.just(counts), st.lists(st.integers(0, len(counts) - 1), max_size=300))))
def test_roundtrip_both_flushes(case):
    counts, symbols = case
    for flush in ("finish", "finish_shortest"):
        enc = ArithmeticEncoder()
        for s in symbols:
            enc.encode(*_intervals(counts, s))
        bits = getattr(enc, flush)()
        assert _decode(bits, counts, len(symbols)) == symbols


def test_skewed_model_compresses():
    counts = [999, 1]
    enc = ArithmeticEncoder()
    for _ in range(1000):
        enc.encode(*_intervals(counts, 0))
    assert len(enc.finish_shortest()) < 10   # ~1000 * log2(1000/999) = 1.4 bits
