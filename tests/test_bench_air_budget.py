"""bench/air_budget.py: every layout gets a record; the accounting matches the frames sent."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "air_budget.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("air_budget", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH.parent))
    return mod


def test_side_lost_probability_closed_form():
    ab = _bench_module()
    q = 0.1
    assert ab.side_lost_probability(1, 1, q) == pytest.approx(q)                  # the only frame
    assert ab.side_lost_probability(2, 1, q) == pytest.approx(q ** 2)             # both copies
    assert ab.side_lost_probability(2, 2, q) == pytest.approx(1 - (1 - q) ** 2)   # either chunk
    assert ab.side_lost_probability(3, 2, q) == pytest.approx(3 * q ** 2 * (1 - q) + q ** 3)
    assert ab.side_lost_probability(3, 1, q) == pytest.approx(q ** 3)
    assert ab.side_lost_probability(4, 3, 0.0) == 0.0


@pytest.mark.parametrize("frames,side", [(1, "whole"), (2, "whole"), (3, "whole"), (2, "split"), (3, "split")])
def test_sized_layouts_take_the_frames_they_name(frames, side):
    from gnuradio.medjscc.phy import OfdmParams
    from gnuradio.medjscc.phy.framing import frame_plan

    ab = _bench_module()
    n_sym, side_bytes = 3896, 27
    kw = ab.resolve_layout({**ab.LEAN, "cp_len": 8, "frames_per_image": frames, "side_info": side},
                           n_sym, side_bytes)
    plan = frame_plan(n_sym, side_bytes, OfdmParams(**kw).validate())
    assert plan.frames == plan.payload_frames == frames
    survives = plan.frames - plan.side_chunks
    assert survives == (frames - 1 if side == "whole" else min(1, frames - 1))
    # the closed form's premise, on the real framing: every set of lost frames up to `survives`
    # keeps the side info, every larger one loses it
    import itertools

    import numpy as np

    from gnuradio.medjscc.phy import ImageAssembler, frame_image

    params = OfdmParams(**kw).validate()
    rng = np.random.default_rng(frames)
    side_info = bytes(rng.integers(0, 256, side_bytes, dtype=np.uint8))
    sent = frame_image(7, np.ones(n_sym, np.complex64), side_info, params, nonce=3)
    for n_lost in range(frames + 1):
        for lost in itertools.combinations(range(frames), n_lost):
            asm = ImageAssembler(params)
            for i, (hdr, pay) in enumerate(sent):
                if i not in lost:
                    asm.add(hdr, pay)
            got = asm.assemble((3, 7), n_symbols=n_sym)
            assert (got.side_info == side_info) == (n_lost <= survives), (lost, got.side_info_status)


@pytest.mark.slow
def test_air_budget_bench_rows():
    r = subprocess.run([sys.executable, str(BENCH), "--json", "--images", "1", "--frames", "2", "--snr", "10",
                        "--payload", "--payload-layouts", "default", "--payload-frames", "2", "--payload-snr", "20"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    rows = {d["layout"]: d for d in lines if d.get("check") != "payload"}
    assert "default" in rows and len(rows) >= 4
    for d in rows.values():
        assert d["cbr_air"] > d["cbr_total"] > 0 and d["air_over_total"] == pytest.approx(d["cbr_air"] / d["cbr_total"])
        assert 0 <= d["header_ok"]["10"] <= 1
        assert d["images_lost_per_60"] == pytest.approx(60 * d["side_lost_p"])
        assert d["all_60_ok_p"] == pytest.approx((1 - d["side_lost_p"]) ** 60)     # one image: no spread
        # an image that survives no lost frame is lost with at least one lost frame; one that
        # survives one loses its side info only when two or more frames go
        if d["lost_frames_survived"] == 0:
            assert d["side_lost_p"] >= d["frame_loss"] - 1e-12
        else:
            assert d["side_lost_p"] < d["frame_loss"]
    # fewer frames per image cost less on air
    assert rows["1 frame per image"]["cbr_air"] < rows["default"]["cbr_air"]
    assert rows["1 frame per image"]["frames"] == 1
    pay = {d["channel"]: d for d in lines if d.get("check") == "payload"}
    assert set(pay) == {"awgn", "multipath_3tap", "rayleigh_100hz"}
    assert pay["awgn"]["frames_ok"] == 1 and 15 < pay["awgn"]["effective_snr_db"] < 21
