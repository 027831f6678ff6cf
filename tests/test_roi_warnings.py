"""A segmenter fallback inside a GNU Radio handler is logged, not warned, without touching the
process-wide warning filters (issue #16: catch_warnings in worker threads)."""
import threading
import warnings

import pytest

from gnuradio.medjscc.roi.imageutil import RoiFallbackWarning, fallback_warnings_logged_only, warn_fallback


def test_fallback_is_quiet_only_inside_the_context_and_only_in_its_thread(caplog):
    filters_before = list(warnings.filters)
    with pytest.warns(RoiFallbackWarning):
        warn_fallback("outside")
    inside_other_thread = []

    def other():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warn_fallback("other thread")
        inside_other_thread.extend(caught)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fallback_warnings_logged_only():
            warn_fallback("quiet")
            t = threading.Thread(target=other)
            t.start()
            t.join()
        warn_fallback("after")
    assert [str(w.message) for w in caught] == ["after"]          # quiet inside, loud again after
    assert [str(w.message) for w in inside_other_thread] == ["other thread"]   # other threads unaffected
    assert "quiet" in caplog.text                                   # still logged
    assert list(warnings.filters) == filters_before
