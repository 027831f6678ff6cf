"""Adaptive arithmetic coding engine shared by every side-info coder (rate map, ROI mask).

A 32-bit Witten-Neal-Cleary coder with pending (underflow) bits. Models stay with the callers:
the encoder narrows the interval to ``[lo, hi)`` out of ``total`` counts; the decoder finds the
count ``target(total)`` falls on, then ``consume``s the same interval. The decoder reads zeros
past the end of its bits, which is what lets the encoders' flushes be short.
"""
from __future__ import annotations

PRECISION = 32
_TOP = (1 << PRECISION) - 1
_HALF = 1 << (PRECISION - 1)
_QUARTER = 1 << (PRECISION - 2)


class ArithmeticEncoder:
    def __init__(self):
        self.bits: list[int] = []
        self._low, self._high, self._pending = 0, _TOP, 0

    def _emit(self, bit: int):
        self.bits.append(bit)
        self.bits.extend([1 - bit] * self._pending)
        self._pending = 0

    def encode(self, lo: int, hi: int, total: int):
        """Code the symbol that owns counts ``[lo, hi)`` of ``total``."""
        span = self._high - self._low + 1
        self._high = self._low + span * hi // total - 1
        self._low = self._low + span * lo // total
        while True:
            if self._high < _HALF:
                self._emit(0)
            elif self._low >= _HALF:
                self._emit(1)
                self._low -= _HALF
                self._high -= _HALF
            elif self._low >= _QUARTER and self._high < _HALF + _QUARTER:
                self._pending += 1
                self._low -= _QUARTER
                self._high -= _QUARTER
            else:
                break
            self._low, self._high = 2 * self._low, 2 * self._high + 1

    def finish(self) -> list[int]:
        """Classic two-bit flush: any continuation (padding, further fields) decodes correctly."""
        self._pending += 1
        self._emit(0 if self._low < _QUARTER else 1)
        return self.bits

    def finish_shortest(self) -> list[int]:
        """Shortest flush for a decoder that pads with zeros: the fewest bits ``x`` such that
        ``x`` followed by zeros lies in the final interval; trailing zeros are then dropped."""
        low, high = self._low, self._high
        for n_bits in range(1, PRECISION + 1):
            shift = PRECISION - n_bits
            x = -(-low >> shift)  # ceil(low / 2^shift)
            if ((x + 1) << shift) - 1 <= high:
                for i in range(n_bits - 1, -1, -1):
                    self._emit((x >> i) & 1)
                break
        while self.bits and self.bits[-1] == 0:
            self.bits.pop()
        return self.bits


class ArithmeticDecoder:
    def __init__(self, bits):
        self._bits = list(bits)
        self.position = 0
        self._low, self._high, self._value = 0, _TOP, 0
        for _ in range(PRECISION):
            self._value = (self._value << 1) | self._next_bit()

    def _next_bit(self) -> int:
        b = self._bits[self.position] if self.position < len(self._bits) else 0
        self.position += 1
        return b

    def target(self, total: int) -> int:
        """The count (in ``[0, total)`` for a valid stream) the next symbol's interval holds."""
        span = self._high - self._low + 1
        return ((self._value - self._low + 1) * total - 1) // span

    def consume(self, lo: int, hi: int, total: int):
        """Remove the decoded symbol's interval ``[lo, hi)`` (same arithmetic as the encoder)."""
        span = self._high - self._low + 1
        self._high = self._low + span * hi // total - 1
        self._low = self._low + span * lo // total
        while True:
            if self._high < _HALF:
                pass
            elif self._low >= _HALF:
                self._low -= _HALF
                self._high -= _HALF
                self._value -= _HALF
            elif self._low >= _QUARTER and self._high < _HALF + _QUARTER:
                self._low -= _QUARTER
                self._high -= _QUARTER
                self._value -= _QUARTER
            else:
                break
            self._low, self._high = 2 * self._low, 2 * self._high + 1
            self._value = (self._value << 1) | self._next_bit()
