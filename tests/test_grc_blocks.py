"""GRC block files at the standard of well-kept OOT modules: role categories, file browsers for
file inputs, choices for models/presets/equalisers, and asserts that catch bad values in GRC
(before run time)."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
YMLS = sorted((ROOT / "gr-medjscc" / "grc").glob("medjscc_*.block.yml"))
STRING_DTYPES = ("string", "file_open", "file_save", "dir_select")


def _doc(name):
    return yaml.safe_load((ROOT / "gr-medjscc" / "grc" / f"medjscc_{name}.block.yml").read_text())


def _eval_asserts(doc, **overrides):
    """Each assert evaluated the way GRC does: ${param} -> the parameter's Python value."""
    values = {}
    for p in doc["parameters"]:
        raw = str(overrides.get(p["id"], p.get("default", "")))
        values[p["id"]] = raw if p["dtype"] in STRING_DTYPES else eval(raw or "None", {})  # noqa: S307
    results = []
    for a in doc.get("asserts", []):
        expr = re.fullmatch(r"\$\{(.*)\}", a.strip(), re.S).group(1)
        results.append(bool(eval(expr, {}, values)))   # noqa: S307 - our own block files
    return results


@pytest.mark.parametrize("yml", YMLS, ids=lambda p: p.stem)
def test_block_has_role_category_asserts_and_file_browsers(yml):
    d = yaml.safe_load(yml.read_text())
    assert d["category"].split("/")[1] in ("Codec", "PHY", "Channel", "ROI", "Instrumentation")
    assert d.get("asserts"), "every block checks its parameters in GRC"
    for p in d["parameters"]:
        if p["id"].endswith("_path") or p["id"] == "checkpoint":
            assert p["dtype"] in ("file_open", "file_save"), p["id"]
        if p["id"].endswith("_dir"):
            assert p["dtype"] == "dir_select", p["id"]
        if p["id"] in ("model", "preset", "equalizer", "backend", "kind", "snr_source"):
            assert p.get("options"), f"{p['id']}: a choice, not free text"


@pytest.mark.parametrize("yml", YMLS, ids=lambda p: p.stem)
def test_asserts_pass_with_defaults(yml):
    d = yaml.safe_load(yml.read_text())
    assert all(_eval_asserts(d)), d["id"]


def test_asserts_reject_bad_values():
    assert not all(_eval_asserts(_doc("channel_preset"), preset="awgnn"))
    assert all(_eval_asserts(_doc("channel_preset"), preset="b200_pair_2g4"))
    assert not all(_eval_asserts(_doc("jscc_rx"), cbr="0"))
    assert not all(_eval_asserts(_doc("jscc_rx"), timeout_s="0"))
    assert not all(_eval_asserts(_doc("jscc_tx"), repeat="-1"))
    assert not all(_eval_asserts(_doc("ofdm_analog_rx"), pilot_smooth="0"))


def test_model_choices_are_the_shipped_codecs():
    from gnuradio.medjscc.codec.hybrid_codec import HYBRID_MODELS

    # every shipped codec, and the hybrid codec's two receivers (no weights file of their own name)
    shipped = {p.stem for p in (ROOT / "models").glob("*.pt") if not p.stem.startswith(("roi_", "hda_"))}
    shipped |= set(HYBRID_MODELS)
    for name in ("jscc_tx", "jscc_rx"):
        model = next(p for p in _doc(name)["parameters"] if p["id"] == "model")
        assert set(model["options"]) == shipped, name
        assert model["dtype"] == "string"          # editable: a .pt path is allowed too
        assert len(model["option_labels"]) == len(model["options"])
