"""dice_vs_original (issue #15): lung masks of the received vs the original image, per row and
aggregated per point with a bootstrap interval."""
import math

import numpy as np
import pytest

from gnuradio.medjscc.errors import InputError
from gnuradio.medjscc.evaluation import task as task_mod


@pytest.fixture(scope="module")
def drr():
    """Two test-split DRRs (the default set when generated, else rendered as the demo does)."""
    from gnuradio.medjscc.demo import _load_images

    images, masks, _ = _load_images(2, 0)
    return images, masks


def test_identical_image_scores_one_and_the_mask_is_the_lungs(drr):
    images, masks = drr
    for img, gt in zip(images, masks):
        assert task_mod.dice_vs_original(img, img.copy()) == 1.0
        # the segmenter finds the lungs, not some arbitrary region that would also match itself
        from gnuradio.medjscc.roi.imageutil import dice

        assert dice(task_mod.lung_mask(img), gt > 0) > 0.9


def test_grey_image_scores_low_and_noise_degrades(drr):
    images, _ = drr
    img = images[0]
    ref = task_mod.lung_mask(img)
    grey = np.full_like(img, 128)              # what the receiver shows for a failed decode
    d_grey = task_mod.dice_vs_original(grey, img, ref)
    assert d_grey < 0.6
    rng = np.random.default_rng(0)
    mild = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(img + rng.normal(0, 120, img.shape), 0, 255).astype(np.uint8)
    d_mild = task_mod.dice_vs_original(mild, img, ref)
    d_heavy = task_mod.dice_vs_original(heavy, img, ref)
    assert d_mild > 0.95
    assert d_heavy < d_mild
    # another patient's lungs match less than this patient's mildly noisy image
    assert task_mod.dice_vs_original(images[1], img, ref) < d_mild


def test_shapes_must_match(drr):
    images, _ = drr
    with pytest.raises(InputError, match="shape"):
        task_mod.dice_vs_original(images[0][:100], images[0])


def test_mean_ci_over_pairs():
    # identical values: a zero-width interval at the value
    r = task_mod.mean_ci({(i, 0): [0.8, 0.8] for i in range(10)})
    assert r["dice_vs_original"] == pytest.approx(0.8)
    assert r["dice_vs_original_lo"] == pytest.approx(0.8) and r["dice_vs_original_hi"] == pytest.approx(0.8)
    # spread values: the mean of every image, an interval that holds it and narrows with more cases
    vals = {(i, 0): [0.5 + 0.04 * (i % 10), 0.9] for i in range(20)}
    r = task_mod.mean_ci(vals)
    assert r["dice_vs_original"] == pytest.approx(np.mean([v for vs in vals.values() for v in vs]))
    assert r["dice_vs_original_lo"] < r["dice_vs_original"] < r["dice_vs_original_hi"]
    big = task_mod.mean_ci({(i, 0): [0.5 + 0.04 * (i % 10), 0.9] for i in range(200)})
    assert (big["dice_vs_original_hi"] - big["dice_vs_original_lo"]) < (r["dice_vs_original_hi"] - r["dice_vs_original_lo"])
    assert task_mod.mean_ci({}) == {}


def test_group_results_aggregates_dice_per_point():
    rows = []
    for snr, d in ((0.0, 0.4), (10.0, 0.97)):
        for pair in range(4):
            for signal in (0, 1):
                rows.append(dict(method="j2k-capacity", mcs="", snr_db=snr, cbr=0.0625, channel="awgn", link="symbol",
                                 trial=0, pair=pair, signal=signal, v=np.full(6, float(signal + pair)),
                                 dice_vs_original=d))
    rows.append(dict(rows[0], pair=9, dice_vs_original=math.nan))   # a row without Dice does not count
    res = task_mod.group_results(rows)
    lo = res[("j2k-capacity", "", 0.0, 0.0625, "awgn", "symbol")]
    hi = res[("j2k-capacity", "", 10.0, 0.0625, "awgn", "symbol")]
    assert lo["dice_vs_original"] == pytest.approx(0.4) and hi["dice_vs_original"] == pytest.approx(0.97)
    assert "task_auc" in hi


def test_settings_name_the_dice_segmenter():
    tag = task_mod.settings("test")["dice_segmenter"]
    assert tag.startswith("roi-auto-coarse-") and tag != "roi-auto-coarse-missing"


def test_task_plot_has_a_dice_panel(tmp_path):
    """The task figure gains a Dice panel when points carry dice_vs_original (one method without it:
    no bars for it, no crash)."""
    from PIL import Image

    from gnuradio.medjscc.evaluation.plots import make_task_plots

    pts = []
    for m in ("medjscc", "j2k-ldpc"):
        for s in (-5.0, 0.0, 5.0):
            p = dict(method=m, snr_db=s, cbr=0.0625, channel="awgn", link="symbol", roi_psnr=30 + s,
                     task_auc=0.6, task_auc_lo=0.5, task_auc_hi=0.7)
            if m == "medjscc":
                p.update(dice_vs_original=0.97, dice_vs_original_lo=0.96, dice_vs_original_hi=0.98)
            pts.append(p)
    with_dice = make_task_plots(tmp_path / "a", pts)
    without = make_task_plots(tmp_path / "b", [{k: v for k, v in p.items() if not k.startswith("dice")} for p in pts])
    png = [Image.open(next(p for p in ps if p.suffix == ".png")) for ps in (with_dice, without)]
    assert png[0].size[0] > 1.3 * png[1].size[0]   # a third panel


def test_report_checks_the_envelope_target_at_both_cbrs(tmp_path):
    from gnuradio.medjscc.evaluation.report import task_section

    pts = []
    for cbr, med_auc in ((1 / 16, 0.80), (1 / 32, 0.60)):
        for m, auc in (("medjscc", med_auc), ("j2k-ldpc", 0.70)):
            for s in (0.0, 5.0):
                pts.append(dict(method=m, snr_db=s, cbr=cbr, channel="awgn", link="symbol", task_auc=auc,
                                task_auc_lo=auc - .05, task_auc_hi=auc + .05, task_dprime=1.0,
                                dice_vs_original=0.97, dice_vs_original_lo=0.96, dice_vs_original_hi=0.98,
                                **({"mcs": "qpsk-r1/2"} if m != "medjscc" else {})))
    summary = {"points": pts, "task": {"reference": {"task_auc": 0.9, "task_auc_lo": 0.86, "task_auc_hi": 0.94,
                                                     "task_dprime": 1.8}, "dice_segmenter": "roi-auto-coarse-x"}}
    text = "\n".join(task_section(summary, tmp_path))
    lines = [ln for ln in text.splitlines() if "envelope AUC" in ln]
    assert len(lines) == 2, text
    assert "CBR 1/32" not in lines[0] and lines[0].endswith("met (point estimates; see the intervals)")
    assert "not met" not in lines[0]
    assert "at CBR 1/32" in lines[1] and "not met" in lines[1]
    assert "Dice 0.970 [0.960, 0.980]" in text
