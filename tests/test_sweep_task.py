"""medjscc sweep --task nodule: task columns in every point, resume, failed decodes, report, plot."""
import csv
import json

import numpy as np
import pytest

from gnuradio.medjscc.errors import InputError
from gnuradio.medjscc.evaluation import task as task_mod
from gnuradio.medjscc.evaluation.sweep import SweepSpec, json_line, run_sweep

PAIRS = 6


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("taskimgs")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    y, x = np.mgrid[0:96, 0:96] / 96
    img = np.clip(120 + 60 * np.sin(6 * x) * np.cos(4 * y), 0, 255).astype(np.uint8)
    mask = (x - .5) ** 2 / .1 + (y - .5) ** 2 / .1 < 1
    Image.fromarray(img).save(root / "images" / "a.png")
    Image.fromarray((mask * 255).astype(np.uint8)).save(root / "masks" / "a.png")
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The on-demand nodule set lands next to MEDJSCC_DATA_DIR: render it once for the module."""
    d = tmp_path_factory.mktemp("taskdata")
    mp = pytest.MonkeyPatch()
    mp.setenv("MEDJSCC_DATA_DIR", str(d / "drr"))
    yield d
    mp.undo()


def _spec(images, **kw):
    base = dict(methods=["j2k-ldpc", "j2k-capacity"], snrs=[-10.0, 10.0], cbrs=[0.0625], data=str(images),
                task="nodule", task_pairs=PAIRS)
    base.update(kw)
    return SweepSpec(**base)


@pytest.mark.slow
def test_task_sweep_adds_auc_to_every_point_and_resumes(images, data_dir, tmp_path):
    out = tmp_path / "sw"
    res = run_sweep(_spec(images), out, workers=1, progress=False)
    rows = list(csv.DictReader((out / task_mod.TASK_CSV).open()))
    # every method x SNR x image of the pairs; the digital method only at its envelope's MCS
    assert len(rows) == 2 * 2 * 2 * PAIRS
    env = {(p["method"], p["snr_db"]): p for p in res.points}
    for p in res.points:
        for k in task_mod.TASK_KEYS:
            assert k in p and p[k] is not None, (p["method"], p["snr_db"], k)
        line = json.loads(json_line(p))
        assert line["task_auc"] == p["task_auc"] and line["task_n_pairs"] == PAIRS
        assert p["task_auc_lo"] <= p["task_auc"] <= p["task_auc_hi"]
    dig_rows = {r["mcs"] for r in rows if r["method"] == "j2k-ldpc" and float(r["snr_db"]) == 10.0}
    assert dig_rows == {env[("j2k-ldpc", 10.0)]["mcs"]}
    # -10 dB: every LDPC decode fails, the receiver shows grey for present and absent alike
    failed = env[("j2k-ldpc", -10.0)]
    assert failed["decode_rate"] == 0.0
    assert failed["task_auc"] == 0.5 and failed["task_auc_lo"] == 0.5 and failed["task_auc_hi"] == 0.5
    assert not any(r["decode_ok"] == "True" for r in rows if r["method"] == "j2k-ldpc" and float(r["snr_db"]) == -10.0)
    # dice_vs_original: the grey image's whole-image fallback vs the lungs; a clean 10 dB image keeps them
    assert failed["dice_vs_original"] < 0.6
    good = env[("j2k-capacity", 10.0)]
    assert good["dice_vs_original_lo"] <= good["dice_vs_original"] <= good["dice_vs_original_hi"]
    assert good["dice_vs_original"] > 0.9 > failed["dice_vs_original_hi"]
    assert all(0.0 <= float(r["dice_vs_original"]) <= 1.0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    ref = summary["task"]["reference"]
    assert 0.0 <= ref["task_auc"] <= 1.0 and ref["task_n_pairs"] == PAIRS
    assert summary["task"]["observer"] and "task" in summary["metric_notes"]
    assert (out / "plots" / "task_auc_vs_snr_cbr1_16.png").is_file()
    # resume: nothing new to send
    again = run_sweep(_spec(images), out, workers=1, progress=False, plots=False)
    assert again.n_tasks_run == 0
    assert len(list(csv.DictReader((out / task_mod.TASK_CSV).open()))) == len(rows)
    assert again.points[0]["task_auc"] == res.points[0]["task_auc"]
    from gnuradio.medjscc.evaluation.report import write_report

    text = write_report(out).read_text()
    assert "## Diagnostic task: nodule detection" in text and "Original images: AUC" in text
    assert "task_auc_vs_snr_cbr1_16.png" in text
    assert "; Dice " in text and "roi-auto-coarse-" in text
    assert summary["task"]["dice_segmenter"].startswith("roi-auto-coarse-")
    # rows made with another observer or nodule population are not mixed in
    st = json.loads((out / task_mod.TASK_JSON).read_text())
    st["observer"] = "cho-other"
    (out / task_mod.TASK_JSON).write_text(json.dumps(st))
    with pytest.raises(InputError, match="other settings"):
        run_sweep(_spec(images), out, workers=1, progress=False, plots=False)


def test_same_channel_draws_and_images_for_every_backend_order(images, data_dir, tmp_path):
    """The task rows do not depend on the number of workers (channel draws are per image name)."""
    a = run_sweep(_spec(images, methods=["j2k-capacity"], snrs=[5.0]), tmp_path / "a", workers=1,
                  progress=False, plots=False)
    b = run_sweep(_spec(images, methods=["j2k-capacity"], snrs=[5.0]), tmp_path / "b", workers=2,
                  progress=False, plots=False)
    assert a.points[0]["task_auc"] == b.points[0]["task_auc"]


def test_task_arguments_are_checked(images):
    with pytest.raises(InputError, match="--task"):
        _spec(images, task="tumour").validate()
    with pytest.raises(InputError, match="--task-pairs"):
        _spec(images, task_pairs=2).validate()
    SweepSpec(methods=["j2k-capacity"], snrs=[0.0], cbrs=[0.0625]).validate()   # no task: fine


def test_one_worker_pool_serves_both_phases(images, data_dir, tmp_path, monkeypatch):
    """The main images and the task images run in one process pool (workers start once)."""
    import concurrent.futures as cf

    started = []

    class Counting(cf.ProcessPoolExecutor):
        def __init__(self, *a, **kw):
            started.append(1)
            super().__init__(*a, **kw)

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Counting)
    res = run_sweep(_spec(images, methods=["j2k-capacity"], snrs=[5.0]), tmp_path / "p", workers=2,
                    progress=False, plots=False)
    assert len(started) == 1 and res.points[0]["task_n_pairs"] == PAIRS
    assert {"setup", "images", "task_images", "task_reference"} <= set(res.stage_seconds)
