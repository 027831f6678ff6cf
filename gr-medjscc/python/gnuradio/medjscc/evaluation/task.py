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
                "decode_ok", "model_sha256"]


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
            "split": task_split(split)}


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
                                              link=spec.link, seed=spec.seed))
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
                                      keep_recon_snrs=task["snrs"])
    out = []
    for r in rows:
        recon = recons[(float(r["snr_db"]), r["mcs"])]
        v = obs.channel_responses(recon, task["centre_px"], task["radius_px"])
        row = {k: r[k] for k in ("method", "mcs", "snr_db", "cbr", "channel", "link", "trial", "image",
                                 "decode_ok", "model_sha256")}
        row.update(pair=task["pair"], signal=task["signal"])
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


def group_results(rows: list[dict]) -> dict:
    """{(method, mcs, snr_db, cbr, channel, link): task dict} from task rows."""
    groups: dict = {}
    for r in rows:
        key = (r["method"], r["mcs"], round(r["snr_db"], 6), round(r["cbr"], 9), r["channel"], r["link"])
        groups.setdefault(key, {}).setdefault((r["pair"], r["trial"]), {})[r["signal"]] = r["v"]
    out = {}
    for key, cases in groups.items():
        res = _result(cases)
        if res is not None:
            out[key] = res.as_dict()
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
        key = (p["method"], p.get("mcs") or "", round(p["snr_db"], 6), round(p["cbr"], 9), p["channel"], p["link"])
        if key in results:
            p.update(results[key])


TASK_KEYS = ("task_auc", "task_auc_lo", "task_auc_hi", "task_dprime", "task_n_pairs")


def finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
