"""Scoped torch CPU thread count.

``torch.set_num_threads`` is process-wide: a library call that sets it leaks into everything
after it (other blocks, other tests). ``torch_threads(n)`` sets it for a ``with`` body and puts
back what was there. It is still process-wide while the body runs; torch is imported lazily.
"""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def torch_threads(threads: int | None):
    """Run the body with ``threads`` torch CPU threads (None or 0: leave the count alone)."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
