"""QA: USRP hardware configs (schema, unknown keys) and the clear error without a radio."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gnuradio

from gnuradio.medjscc.blocks.hw import SHIPPED, load_hw_config  # noqa: E402
from gnuradio.medjscc.errors import HardwareError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _usrp_present() -> bool:
    try:
        from gnuradio import uhd
        return len(list(uhd.uhd_python.find_devices(uhd.device_addr_t("")))) > 0
    except Exception:
        return False


def _cli(*args, timeout=60):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "gnuradio.medjscc", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_validate(name):
    hw = load_hw_config(name)
    assert hw["device"] == name
    assert isinstance(hw["center_freq_hz"], float) and hw["center_freq_hz"] > 1e8
    assert isinstance(hw["sample_rate_hz"], float) and hw["sample_rate_hz"] >= 1e6
    assert {"args", "tx_gain_db", "rx_gain_db", "tx_antenna", "rx_antenna", "clock_source",
            "time_source"} <= set(hw)


def test_schema_file_is_valid_json_schema():
    import json

    import jsonschema
    schema = json.loads((ROOT / "hw_configs" / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)


def test_unknown_key_and_bad_values(tmp_path):
    base = (ROOT / "hw_configs" / "b200.yaml").read_text()
    bad = tmp_path / "typo.yaml"
    bad.write_text(base + "rx_gian_db: 30\n")
    with pytest.raises(HardwareError, match=r"unknown key 'rx_gian_db'.*typo.yaml|typo.yaml.*unknown key 'rx_gian_db'"):
        load_hw_config(bad)
    neg = tmp_path / "neg.yaml"
    neg.write_text(base.replace("sample_rate_hz: 1.0e+6", "sample_rate_hz: -5"))
    with pytest.raises(HardwareError, match="sample_rate_hz"):
        load_hw_config(neg)
    with pytest.raises(HardwareError, match="not found"):
        load_hw_config(tmp_path / "missing.yaml")


@pytest.mark.skipif(_usrp_present(), reason="a USRP is attached: the no-radio error cannot be tested")
def test_cli_without_usrp_gives_one_line_hardware_error(tmp_path):
    img = tmp_path / "x.png"
    from PIL import Image
    import numpy as np
    Image.fromarray(np.full((32, 32), 100, np.uint8)).save(img)
    for args in (["tx", "--hw", "b200", str(img)], ["rx", "--hw", str(ROOT / "hw_configs" / "n210.yaml")]):
        proc = _cli(*args)
        assert proc.returncode == 1, proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("medjscc")]
        assert len(lines) == 1 and "no USRP found" in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_cli_unknown_hw_key_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "hw_configs" / "x310.yaml").read_text() + "antena: RX2\n")
    proc = _cli("rx", "--hw", str(bad))
    assert proc.returncode == 1
    assert "unknown key 'antena'" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.hardware
@pytest.mark.skipif(not _usrp_present(), reason="no USRP attached")
def test_usrp_opens_with_b200_config():
    from gnuradio.medjscc.blocks.hw import usrp_source
    hw = load_hw_config("b200")
    src = usrp_source(hw)
    # the radio runs the configured settings (UHD may round the rate and tune to the nearest LO step)
    assert src.get_samp_rate() == pytest.approx(hw["sample_rate_hz"], rel=0.01)
    assert src.get_center_freq(0) == pytest.approx(hw["center_freq_hz"], abs=10e3)
    assert src.get_antenna(0) == hw["rx_antenna"]
