"""Shared pytest fixtures. Keep torch to 2 threads: CI has 2 cores."""
import os

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


def _have_gnuradio() -> bool:
    try:
        from gnuradio import gr  # noqa: F401
        return True
    except Exception:
        return False


HAVE_GNURADIO = _have_gnuradio()


def pytest_collection_modifyitems(config, items):
    skip_gr = pytest.mark.skip(reason="GNU Radio Python bindings not importable")
    for item in items:
        if "gnuradio" in item.keywords and not HAVE_GNURADIO:
            item.add_marker(skip_gr)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    """A smooth 256x256 8-bit test image on disk (for CLI / flowgraph tests)."""
    from PIL import Image

    y, x = np.mgrid[0:256, 0:256] / 256
    path = tmp_path_factory.mktemp("img") / "xray.png"
    Image.fromarray((120 + 80 * np.sin(3 * x) * np.cos(2 * y)).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def random_codecs():
    """Sweeps of untrained codecs, asked for through the API (``SweepSpec(random_codecs=True)``);
    the per-process model cache is emptied before and after so no other test sees them."""
    from gnuradio.medjscc.evaluation import methods

    methods._NEURAL_CACHE.clear()
    yield dict(random_codecs=True)
    methods._NEURAL_CACHE.clear()
