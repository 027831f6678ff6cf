"""The shipped flowgraphs read well in GNU Radio Companion: no block covers another, the signal
flows left to right, each runs as opened (sample image + its ROI mask as defaults).

Block sizes are estimated from what GRC draws (no display needed): a title line, one line per
parameter shown on the block (GRC truncates "Label: value" to about max(29, len(label) + 5)
characters) and the port labels sticking out on both sides. The estimate errs on the large side
(7 px per character, 20 px per line; GRC 3.10 draws about 6.3 px and 17 px).
"""
import ast
import re
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FLOWGRAPHS = sorted((ROOT / "flowgraphs").glob("*.grc"))
BLOCK_DIRS = [ROOT / "gr-medjscc" / "grc", Path("/usr/share/gnuradio/grc/blocks")]
CHAR_W, LINE_H, PAD = 7, 20, 30


@lru_cache(maxsize=None)
def _yml_index():
    """block id -> .block.yml path (file names do not always match ids: variable_qtgui_range)."""
    index = {}
    for d in BLOCK_DIRS:
        for f in sorted(d.glob("*.block.yml")) if d.is_dir() else []:
            m = re.search(r"^id:\s*(\S+)", f.read_text(errors="replace"), re.M)
            if m:
                index.setdefault(m.group(1), f)
    return index


@lru_cache(maxsize=None)
def _block_def(block_id):
    # GRC strips a trailing "_" of yml ids that are Python keywords: "import_" is "import" in .grc
    path = _yml_index().get(block_id) or _yml_index().get(block_id + "_")
    if path is None:
        pytest.skip(f"GRC definition of {block_id} not installed")
    return yaml.safe_load(path.read_text())


def _value(s):
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError):
        return s


def _hidden(hide, values):
    hide = str(hide or "none").strip()
    m = re.fullmatch(r"\$\{(.*)\}", hide, re.S)
    if m:
        try:
            hide = str(eval(m.group(1), {}, dict(values)))   # noqa: S307 - our own block files
        except Exception:
            return False            # cannot tell: count it as shown (larger estimate)
    return hide in ("part", "all")


def block_rect(block):
    """(x0, y0, x1, y1) GRC canvas rectangle of one .grc block entry, ports included."""
    d = _block_def(block["id"])
    params = {str(k): str(v) for k, v in block.get("parameters", {}).items()}
    values = {p["id"]: _value(params.get(p["id"], str(p.get("default", ""))))
              for p in d.get("parameters", [])}
    labels = [p.get("label", p["id"]) for p in d.get("parameters", [])
              if not _hidden(p.get("hide"), values)]
    if block["id"] in ("variable", "parameter", "options") or d.get("value"):
        labels.append("ID")              # GRC shows the ID of variables and parameters
    chars = max([len(d.get("label", block["id"])) + 2] + [max(29, len(lab) + 5) for lab in labels])
    width = chars * CHAR_W + PAD

    def ports(kind):
        out = []
        for p in d.get(kind, []):
            mult = str(p.get("multiplicity", "1"))
            n = _value(params.get(mult.strip("${} "), mult)) if "$" in mult else _value(mult)
            out += [str(p.get("label", p.get("id", "in")))] * (n if isinstance(n, int) else 1)
        return out

    ins, outs = ports("inputs"), ports("outputs")
    left = max([len(p) * CHAR_W + 20 for p in ins], default=0)
    right = max([len(p) * CHAR_W + 20 for p in outs], default=0)
    height = max(PAD + LINE_H * (1 + len(labels)), 28 * max(len(ins), len(outs)) + 20)
    x, y = block["states"]["coordinate"]
    return x - left, y, x + width + right, y + height


def _load(path):
    doc = yaml.safe_load(path.read_text())
    # .grc entries: "name" = the instance, "id" = the block type
    return doc, [doc["options"] | {"name": "options", "id": "options"}] + doc["blocks"]


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("path", FLOWGRAPHS, ids=lambda p: p.stem)
def test_no_block_overlaps_another(path):
    _, blocks = _load(path)
    rects = {b["name"]: block_rect(b) for b in blocks}
    clashes = [(a, b) for i, a in enumerate(rects) for b in list(rects)[i + 1:] if _overlap(rects[a], rects[b])]
    assert not clashes, f"{path.name}: overlapping blocks {clashes}"
    assert all(r[0] >= 0 and r[1] >= 0 for r in rects.values()), "blocks off the canvas"


@pytest.mark.parametrize("path", FLOWGRAPHS, ids=lambda p: p.stem)
def test_signal_flows_left_to_right(path):
    """Every stream and message connection goes rightwards, except feedback (SNR, the ZMQ return
    path), which is drawn back on purpose."""
    doc, blocks = _load(path)
    pos = {b["name"]: b["states"]["coordinate"] for b in blocks}
    backward = [(s, sp, d, dp) for s, sp, d, dp in doc["connections"]
                if pos[d][0] <= pos[s][0] and sp not in ("snr", "out")]
    assert not backward, f"{path.name}: connections drawn right to left: {backward}"


def test_estimate_is_not_trivially_small():
    """The estimator must see the parameters GRC shows (else the overlap test proves nothing)."""
    doc, blocks = _load(ROOT / "flowgraphs" / "loopback_sim.grc")
    tx = next(b for b in blocks if b["name"] == "tx")
    x0, y0, x1, y1 = block_rect(tx)
    assert y1 - y0 >= PAD + LINE_H * 8 and x1 - x0 >= 250


@pytest.mark.parametrize("path", FLOWGRAPHS, ids=lambda p: p.stem)
def test_runs_as_opened_with_the_shipped_sample(path):
    """No empty image: the image parameter falls back to the shipped sample and its mask, which
    exist, and the receiver gets the mask as ROI-PSNR reference."""
    from gnuradio.medjscc import paths

    doc, blocks = _load(path)
    assert Path(paths.sample_image()).is_file() and Path(paths.sample_mask()).is_file()
    variables = {b["name"]: b["parameters"]["value"] for b in blocks if b["id"] == "variable"}
    checked = 0
    for b in blocks:
        for key, var in {"medjscc_jscc_tx": (("image_path", "image_file"), ("mask_path", "mask_file")),
                         "medjscc_jscc_rx": (("reference_path", "image_file"),
                                             ("reference_mask_path", "mask_file"))}.get(b["id"], ()):
            assert b["parameters"][key] == var, (path.name, b["name"], key)
            assert "medjscc_paths.sample_" in variables[var], (path.name, var)
            checked += 1
    assert checked >= 2, path.name
