"""Task-based figure of merit of a sweep (``medjscc sweep --task nodule``).

Every method sends the signal-present and signal-absent images of ``task_pairs`` test-split nodule
pairs (``data.nodules``; rendered on first use, cached) through the same channel draws as any
sweep image (``channel_seed`` of the image name). For every received image (a failed digital
decode counts as the mid-grey image the receiver shows) the worker stores the channelized
Hotelling observer's channel responses at the known nodule position in ``task_nodule.csv`` (one
row per method, MCS, SNR, CBR, trial, image). Aggregation trains and tests the observer per
(method, MCS, SNR, CBR, channel, link) by 2-fold cross-validation over views and adds
``task_auc``, ``task_auc_lo``, ``task_auc_hi`` (95% bootstrap), ``task_dprime`` and
``task_n_pairs`` to each point (digital envelopes: the MCS the envelope picked). The same
observer on the original images gives ``summary.json``'s ``task.reference``.

``dice_vs_original`` (per row, then mean with a 95% bootstrap interval over pairs per point):
Dice between the lung mask the project's ROI segmenter finds in the received image and the one it
finds in the original image (``lung_mask``: backend ``auto`` with ``coarse`` fusion = the coarse
U-Net's lung regions, ~20 ms per 256 px image on one core; the LiteMedSAM refinement costs ~1-3 s
per image, too slow for every received image of a sweep). A grey (failed) image has no lung: the
segmenter's whole-image fallback scores ~0.4 against a real lung mask.

``task_nodule.json`` records what defines the rows (observer, nodule spec, seed, size, split);
a folder whose rows were made with other settings is refused.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import observer as obs

TASKS = ("nodule",)
DEFAULT_PAIRS = 80   # the calibration's pair count (bench/nodule_calibration.py)
TASK_CSV = "task_nodule.csv"
TASK_JSON = "task_nodule.json"
BASE_COLUMNS = ["method", "mcs", "snr_db", "cbr", "channel", "link", "trial", "image", "pair", "signal",
                "decode_ok", "model_sha256", "dice_vs_original"]
DICE_BACKEND, DICE_FUSION = "auto", "coarse"   # see the module docstring


def channel_columns() -> list[str]:
    return [f"ch{i}" for i in range(obs.N_CHANNELS)]


def columns() -> list[str]:
    return BASE_COLUMNS + channel_columns()


def check_task(task, pairs: int) -> None:
    if task is None:
        return
    if task not in TASKS:
        raise InputError(f"unknown --task {task!r}; choose one of {', '.join(TASKS)}")
    if pairs < 2 * obs.FOLDS:
        raise InputError(f"--task-pairs must be at least {2 * obs.FOLDS} (observer trained and tested on "
                         f"separate views), got {pairs}")


def task_split(split: str) -> str:
    from ..data import drr

    return split if split in drr.SPLITS else "test"


def settings(split: str, seed: int = 0) -> dict:
    from ..data import drr
    from ..data.nodules import NODULE_VERSION, NoduleSpec

    return {"task": "nodule", "observer": obs.observer_tag(), "nodule_spec": asdict(NoduleSpec().validate()),
            "nodule_version": NODULE_VERSION, "nodule_seed": int(seed), "size": drr.DEFAULT_SIZE,
            "split": task_split(split), "dice_segmenter": dice_segmenter_tag()}


def dice_segmenter_tag() -> str:
    """What defines ``dice_vs_original``: backend, fusion and the coarse weights' SHA-256."""
    from ..checksums import file_sha256
    from ..roi.coarse import default_path

    path = default_path()
    sha = file_sha256(path)[:12] if path.is_file() else "missing"
    return f"roi-{DICE_BACKEND}-{DICE_FUSION}-{sha}"


_SEGMENTER: list = []   # per process: built on first use (loads the ROI weights once)
_ORIGINAL_LUNGS: dict = {}   # per process: (folder, image name) -> lung mask of the original


def lung_mask(image: np.ndarray) -> np.ndarray:
    """Lung mask (bool HxW) of ``image`` by the sweep's Dice segmenter. Its documented fallback
    (whole image, for a blank image or no lung found) is what a received grey image gets; the
    fallback's warning is silenced here, a failed decode at low SNR is expected."""
    import logging
    import warnings

    from ..roi.imageutil import RoiFallbackWarning

    if not _SEGMENTER:
        from ..roi import get_segmenter

        _SEGMENTER.append(get_segmenter(DICE_BACKEND, threads=1, fusion=DICE_FUSION))
    quiet = logging.getLogger("gnuradio.medjscc.roi")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RoiFallbackWarning)
            return np.asarray(_SEGMENTER[0].segment(np.asarray(image)), bool)
    finally:
        quiet.setLevel(level)


def dice_vs_original(received: np.ndarray, original: np.ndarray, original_mask: np.ndarray | None = None) -> float:
    """Dice(lung mask of the received image, lung mask of the original); pass ``original_mask``
    (``lung_mask(original)``) to segment the original once for many received images."""
    from ..roi.imageutil import dice

    received, original = np.asarray(received), np.asarray(original)
    if received.shape != original.shape:
        raise InputError(f"received image {received.shape} and original {original.shape} differ in shape")
    ref = lung_mask(original) if original_mask is None else np.asarray(original_mask, bool)
    return dice(lung_mask(received), ref)


def prepare(out: Path, split: str) -> dict:
    """Write or check ``task_nodule.json``; returns the settings."""
    st = json.loads(json.dumps(settings(split)))
    path = out / TASK_JSON
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{path} is not valid JSON; remove it or use another --out") from None
        diff = [k for k in st if old.get(k) != st[k]]
        if diff:
            raise InputError(f"--out {out} holds nodule-task rows made with other settings ({', '.join(diff)}); "
                             f"use another --out folder")
    else:
        path.write_text(json.dumps(st, indent=2) + "\n")
    csv_path = out / TASK_CSV
    if csv_path.is_file():
        with csv_path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if header and header != columns():
            raise InputError(f"{csv_path} has other columns than this version writes; use another --out folder")
    return st


def nodule_root(pairs: int, split: str) -> Path:
    from ..data.nodules import ensure_nodule_set

    return ensure_nodule_set(pairs, split=task_split(split), progress=True)


def envelope_mcs(per_mcs_points: list[dict]) -> dict:
    """{(method, snr_db, cbr): mcs} of the digital envelopes among the sweep's aggregated points."""
    return {(p["method"], round(p["snr_db"], 6), round(p["cbr"], 9)): p["mcs"] for p in per_mcs_points
            if p.get("mcs")}


def build_tasks(spec, out: Path, root: Path, done: set, mcs_for: dict | None = None) -> list[dict]:
    """One task per (method, cbr, trial, image) with the SNRs (digital: the envelope's MCS at each
    SNR, from ``mcs_for``; only that MCS is sent, the task needs no other) still missing."""
    from ..data.nodules import load_pairs
    from . import methods as meth

    pairs = load_pairs(root, task_split(spec.split), limit=spec.task_pairs)
    mcs_for = mcs_for or {}
    tasks = []
    for m in spec.methods:
        for cbr in spec.cbrs:
            snr_mcs = [(s, mcs_for.get((m, round(float(s), 6), round(float(cbr), 9)), "") if m in meth.DIGITAL else "")
                       for s in spec.snrs]
            snr_mcs = [(s, mcs) for s, mcs in snr_mcs if mcs or m not in meth.DIGITAL]
            for trial in range(spec.trials):
                for p in pairs:
                    for signal in (1, 0):
                        name = p["present"] if signal else p["absent"]
                        todo = [(s, mcs) for s, mcs in snr_mcs if _key(m, s, cbr, trial, name, mcs) not in done]
                        if todo:
                            tasks.append(dict(kind="nodule", method=m, cbr=float(cbr), trial=trial,
                                              snrs=[s for s, _ in todo], mcs=[mcs for _, mcs in todo],
                                              root=str(root / task_split(spec.split)), name=name, pair=p["pair"],
                                              signal=signal, centre_px=p["nodule"]["centre_px"],
                                              radius_px=p["nodule"]["radius_px"], channel=spec.channel,
                                              link=spec.link, seed=spec.seed,
                                              random_codecs=bool(spec.random_codecs)))
    return tasks


def _key(method, snr_db, cbr, trial, image, mcs=""):
    return (method, round(float(snr_db), 6), round(float(cbr), 9), int(trial), str(image), str(mcs or ""))


def run_nodule_task(task: dict):
    """Worker: one nodule image through one method at its SNRs -> (task rows, {}, image name)."""
    from ..data.folder import read_image, read_mask
    from . import methods as meth

    root = Path(task["root"])
    image = read_image(root / "images" / f"{task['name']}.png")
    mask = read_mask(root / "masks" / f"{task['name']}.png") > 0
    if task["method"] in meth.DIGITAL:
        from . import channel as chan

        # only the envelope's MCS, with the same link and channel draw as run_point would use
        link = meth.get_link(task["link"], task["channel"])
        rows, recons = [], {}
        for snr_db, mcs in zip(task["snrs"], task["mcs"]):
            seed_words = chan.channel_seed(task["seed"], task["name"], snr_db, task["trial"])
            recon, ok, _, _ = meth.digital_mcs(image, mask, meth.DIGITAL[task["method"]], meth.parse_mcs(mcs),
                                               snr_db, task["cbr"], link, seed_words)
            rows.append(dict(method=task["method"], mcs=mcs, snr_db=float(snr_db), cbr=float(task["cbr"]),
                             channel=task["channel"], link=task["link"], trial=int(task["trial"]),
                             image=task["name"], decode_ok=bool(ok), model_sha256=""))
            recons[(float(snr_db), mcs)] = recon
    else:
        rows, recons = meth.run_point(task["method"], image, mask, task["name"], task["snrs"], task["cbr"],
                                      task["channel"], task["link"], task["trial"], task["seed"],
                                      keep_recon_snrs=task["snrs"],
                                      random_codecs=bool(task.get("random_codecs", False)),
                                      metrics=False)   # task rows hold no PSNR/MS-SSIM
    out = []
    # every method sends the same originals: segment each once per worker process
    key = (str(root), task["name"])
    if key not in _ORIGINAL_LUNGS:
        if len(_ORIGINAL_LUNGS) > 4096:
            _ORIGINAL_LUNGS.clear()
        _ORIGINAL_LUNGS[key] = lung_mask(image)
    original_lungs = _ORIGINAL_LUNGS[key]
    for r in rows:
        recon = recons[(float(r["snr_db"]), r["mcs"])]
        v = obs.channel_responses(recon, task["centre_px"], task["radius_px"])
        row = {k: r[k] for k in ("method", "mcs", "snr_db", "cbr", "channel", "link", "trial", "image",
                                 "decode_ok", "model_sha256")}
        row.update(pair=task["pair"], signal=task["signal"],
                   dice_vs_original=f"{dice_vs_original(recon, image, original_lungs):.6g}")
        row.update({c: f"{x:.6g}" for c, x in zip(channel_columns(), v)})
        out.append(row)
    return out, {}, task["name"]


def read_task_rows(out: Path) -> list[dict]:
    path = Path(out) / TASK_CSV
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            r = dict(r)
            r["snr_db"], r["cbr"] = float(r["snr_db"]), float(r["cbr"])
            r["trial"], r["pair"], r["signal"] = int(r["trial"]), int(r["pair"]), int(r["signal"])
            r["dice_vs_original"] = float(r["dice_vs_original"])
            r["v"] = np.array([float(r[c]) for c in channel_columns()])
            rows.append(r)
    return rows


def done_keys(out: Path) -> set:
    return {_key(r["method"], r["snr_db"], r["cbr"], r["trial"], r["image"], r["mcs"]) for r in read_task_rows(out)}


def _result(cases: dict):
    """cases: {(pair, trial): {signal: v}} -> ObserverResult or None (too few complete pairs)."""
    keys = sorted(k for k, c in cases.items() if 0 in c and 1 in c)
    if len(keys) < 2 * obs.FOLDS:
        return None
    v1 = np.stack([cases[k][1] for k in keys])
    v0 = np.stack([cases[k][0] for k in keys])
    return obs.evaluate(v1, v0, groups=[k[0] for k in keys])


def mean_ci(values_by_case: dict, n_boot: int = obs.N_BOOT, ci: float = obs.CI, seed: int = 0) -> dict:
    """Mean of per-image values and its percentile bootstrap interval, resampling cases (a pair's
    two images stay together, as in the observer's bootstrap). values_by_case: {case: [values]}."""
    cases = [np.asarray(v, float) for _, v in sorted(values_by_case.items()) if len(v)]
    if not cases:
        return {}
    sums = np.array([c.sum() for c in cases])
    counts = np.array([c.size for c in cases], float)
    mean = float(sums.sum() / counts.sum())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(cases), (n_boot, len(cases)))
    boots = sums[idx].sum(1) / counts[idx].sum(1)
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha])
    # the percentile interval of a mean always holds it; quantile interpolation can miss by an ulp
    return {"dice_vs_original": mean, "dice_vs_original_lo": float(min(lo, mean)),
            "dice_vs_original_hi": float(max(hi, mean))}


def _group_key(method: str, mcs, snr_db, cbr, channel, link) -> tuple:
    """Task rows of a per-MCS digital method are grouped per MCS; every other method sends one
    thing per SNR whose label (e.g. the envelope's ``<mcs>+<codec>``, split into ``mcs`` and
    ``codec`` in its point) is not part of the key."""
    from . import methods as meth

    return (method, (mcs or "") if method in meth.DIGITAL else "", round(snr_db, 6), round(cbr, 9), channel, link)


def group_results(rows: list[dict]) -> dict:
    """{(method, mcs, snr_db, cbr, channel, link): task dict} from task rows (``_group_key``)."""
    groups: dict = {}
    dice_groups: dict = {}
    for r in rows:
        key = _group_key(r["method"], r["mcs"], r["snr_db"], r["cbr"], r["channel"], r["link"])
        groups.setdefault(key, {}).setdefault((r["pair"], r["trial"]), {})[r["signal"]] = r["v"]
        if math.isfinite(r.get("dice_vs_original", math.nan)):
            dice_groups.setdefault(key, {}).setdefault((r["pair"], r["trial"]), []).append(r["dice_vs_original"])
    out = {}
    for key, cases in groups.items():
        res = _result(cases)
        if res is not None:
            out[key] = res.as_dict()
        if key in dice_groups:
            out.setdefault(key, {}).update(mean_ci(dice_groups[key]))
    return out


def compare(rows: list[dict], method_a: str, method_b: str) -> dict:
    """Paired AUC differences ``method_a - method_b`` (``observer.paired_difference``) per (SNR,
    CBR, channel, link) where both have task rows, over the pairs both have whole; each method's
    scores cross-validated as the sweep's own figures are. {(snr_db, cbr, channel, link): dict}."""
    from . import methods as meth

    for m in (method_a, method_b):
        if m in meth.DIGITAL:   # one row set per MCS: no single figure to compare
            raise InputError(f"compare: {m} reports one AUC per MCS; compare digital-envelope instead")
    cases: dict = {}
    for r in rows:
        if r["method"] in (method_a, method_b):
            key = (round(r["snr_db"], 6), round(r["cbr"], 9), r["channel"], r["link"])
            cases.setdefault(key, {}).setdefault(r["method"], {}).setdefault((r["pair"], r["trial"]), {})[r["signal"]] = r["v"]
    out = {}
    for key, by in sorted(cases.items()):
        if method_a not in by or method_b not in by:
            continue
        both = sorted(k for k in set(by[method_a]) & set(by[method_b])
                      if all(s in by[m][k] for m in (method_a, method_b) for s in (0, 1)))
        if len(both) < 2 * obs.FOLDS:
            continue
        groups = [k[0] for k in both]
        scores = [obs.cross_validated_scores(np.stack([by[m][k][1] for k in both]),
                                             np.stack([by[m][k][0] for k in both]), groups=groups)
                  for m in (method_a, method_b)]
        out[key] = obs.paired_difference(scores[0], scores[1])
    return out


def reference(root: Path, split: str, pairs: int) -> dict:
    """The observer on the original (untransmitted) images of the pair set."""
    from ..data.folder import read_image
    from ..data.nodules import load_pairs

    ps = load_pairs(root, task_split(split), limit=pairs)
    d = Path(root) / task_split(split) / "images"
    res = obs.evaluate_images([read_image(d / f"{p['present']}.png") for p in ps],
                              [read_image(d / f"{p['absent']}.png") for p in ps],
                              [p["nodule"] for p in ps])
    return res.as_dict()


def attach(points: list[dict], per_mcs: list[dict], rows: list[dict]) -> None:
    """Add the task figures to the sweep's points (envelopes: their MCS) and per-MCS entries."""
    results = group_results(rows)
    for p in list(points) + list(per_mcs or []):
        key = _group_key(p["method"], p.get("mcs"), p["snr_db"], p["cbr"], p["channel"], p["link"])
        if key in results:
            p.update(results[key])


TASK_KEYS = ("task_auc", "task_auc_lo", "task_auc_hi", "task_dprime", "task_n_pairs", "dice_vs_original",
             "dice_vs_original_lo", "dice_vs_original_hi")


def finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
