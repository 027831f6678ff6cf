"""notebooks/05_leo_pass.ipynb (issue #18) runs end to end on 3 images and prints its table."""
import json
import sys
from pathlib import Path

import pytest

NB = Path(__file__).resolve().parents[1] / "notebooks" / "05_leo_pass.ipynb"
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


@pytest.mark.gnuradio
def test_leo_pass_notebook_runs(monkeypatch, tmp_path):
    spec = tmp_path / "jupyter" / "kernels" / "medjscc-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "medjscc test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MEDJSCC_NB_IMAGES", "3")
    monkeypatch.setenv("MEDJSCC_NB_SCENARIO_IMAGES", "2")
    nb = nbformat.read(NB, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="medjscc-test", timeout=600,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")
    assert "3 images" in text and "floor      30 ms" in text and "instant     0 ms" in text
    assert "2 images over the pass" in text and "digital-envelope" in text and "medjscc" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_saved_leo_pass_notebook_has_its_outputs_and_no_machine_paths():
    nb = nbformat.read(NB, as_version=4)
    raw = NB.read_text()
    assert "/work/" not in raw and "/tmp/" not in raw and "/home/" not in raw
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
