"""Hostile input to the receive side: random headers (valid CRC), chunks and PDUs never crash it
and never make it allocate more than the configuration allows (hypothesis)."""
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.phy import FrameHeader, ImageAssembler, OfdmParams
from gnuradio.medjscc.phy import framing

P = OfdmParams()
TRIED = {"headers": 0, "assembler": 0, "erasure": 0}


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=P.header_bytes - 4, max_size=P.header_bytes - 4))
def test_any_crc_valid_header_parses_to_bounded_fields_or_none(body):
    TRIED["headers"] += 1
    h = FrameHeader.from_bytes(_with_crc(body), P)
    if h is not None:
        assert 0 <= h.seq < h.frame_count <= framing.MAX_FRAMES
        assert h.payload_len <= P.max_payload_len
        assert h.n_symbols <= h.frame_count * P.max_payload_len
        assert len(h.side_info_chunk) <= P.header_side_info_bytes


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=P.header_bytes - 4, max_size=P.header_bytes - 4), min_size=1, max_size=12))
def test_assembler_survives_hostile_frames_with_bounded_memory(bodies):
    TRIED["assembler"] += 1
    asm = ImageAssembler(P)
    for body in bodies:
        h = FrameHeader.from_bytes(_with_crc(body), P)
        if h is not None:
            asm.add(h, np.zeros(h.payload_len, np.complex64))
    for key in asm.keys():
        out = asm.assemble(key)
        # what the assembler allocates is bounded by the header format and the layout
        assert out.symbols.size <= framing.MAX_FRAMES * P.max_payload_len
        assert out.side_info_status in ("ok", "none", "missing", "corrupt")
        if out.side_info_status != "ok":
            assert out.side_info is None


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(0, 4), st.data())
def test_erasure_decode_of_garbage_chunks_never_crashes(k, extra, data):
    TRIED["erasure"] += 1
    n = k + extra
    chunks = {i: data.draw(st.binary(min_size=0, max_size=20)) for i in
              data.draw(st.sets(st.integers(0, n - 1), min_size=0, max_size=n))}
    out = framing.erasure_decode(chunks, k, 9)
    assert out is None if len(chunks) < k else len(out) == 9 * k


def test_fuzz_counts():
    """The fuzz tests above really ran (hypothesis counted its cases)."""
    if not all(TRIED.values()):
        pytest.skip("run together with the fuzz tests above")
    assert TRIED["headers"] >= 100 and TRIED["assembler"] >= 50 and TRIED["erasure"] >= 50, TRIED


def test_make_params_rejects_unknown_keys():
    from gnuradio.medjscc.blocks._phyadapt import make_params

    with pytest.raises(MedJSCCError, match="unknown OFDM parameter 'symbol_per_frame'"):
        make_params({"symbol_per_frame": 2})
    assert make_params({"symbols_per_frame": 2, "min_batch": 0}).symbols_per_frame == 2


def test_random_weights_only_for_a_missing_file(tmp_path):
    """allow_random (smoke tests) stands in for weights that are not there, never for a file that
    fails its checksum."""
    import shutil
    from pathlib import Path

    pytest.importorskip("gnuradio.gr")
    from gnuradio.medjscc.blocks._codecadapt import get_codec
    from gnuradio.medjscc.codec.api import shipped_models_dir

    src = Path(shipped_models_dir()) / "deepjscc.pt"
    bad = tmp_path / "deepjscc.pt"
    shutil.copy(src, bad)
    shutil.copy(src.with_name("deepjscc.pt.sha256"), tmp_path / "deepjscc.pt.sha256")
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(MedJSCCError, match="checksum"):
        get_codec(str(bad), allow_random=True)
    codec = get_codec(str(tmp_path / "absent.pt"), allow_random=True)
    assert hasattr(codec, "decode")
