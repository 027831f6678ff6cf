"""Sweep engine behind ``medjscc sweep``: tasks, backends (process pool / Ray), resumable
tidy CSV, aggregation with the digital MCS envelope, summary.json.

A task is one (method, cbr, image, trial) with the SNRs still missing for it; it returns one row
per SNR (per MCS for the digital methods). Every random draw comes from
``channel.channel_seed(seed, image, snr, trial)``, so the numbers do not depend on the backend,
the number of workers or the order tasks finish in.

Out folder layout: ``sweep.json`` (settings that define the experiment; a folder with other
settings is refused), ``results.csv`` (appended as tasks finish; rows already there are skipped
on a re-run; rows of neural methods carry the ``model_sha256`` of their weights, and a folder
whose rows were made with other weights than those loaded now is refused), ``summary.json``, ``recon/`` (reconstructions of the first image, trial 0, at the
montage SNRs) and ``plots/``. With ``--task nodule`` also ``task_nodule.json`` / ``task_nodule.csv``
(the diagnostic task: evaluation/task.py) and ``task_*`` keys in every point.
"""
from __future__ import annotations

import csv
import json
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError, MedJSCCError
from . import methods as meth
# re-exported: callers name sweep outputs through the sweep module too
from .outputs import MONTAGE_COLUMNS, cbr_label, montage_snrs, recon_path, recon_tag  # noqa: F401

CSV_COLUMNS = ["method", "mcs", "snr_db", "cbr", "channel", "link", "trial", "image", "psnr", "roi_psnr",
               "ms_ssim", "cbr_total", "cbr_air", "decode_ok", "source_bytes", "model_sha256"]
AGG_KEYS = ["method", "snr_db", "cbr", "channel", "link", "psnr", "roi_psnr", "ms_ssim", "decode_rate", "n"]
SETTINGS_VERSION = 3   # 2: results.csv gained model_sha256; 3: cbr_air and the budget (older folders are refused, not mixed)
RAY_START_TIMEOUT_S = 60.0


@dataclass
class SweepSpec:
    methods: list
    snrs: list
    cbrs: list
    channel: str = "awgn"
    link: str = "symbol"
    trials: int = 1
    limit: int | None = None
    seed: int = 0
    data: str | None = None     # image folder (images/ [+ masks/]) or DRR root holding <split>/
    split: str = "test"
    task: str | None = None     # "nodule": CHO detection AUC on nodule pairs (evaluation/task.py)
    task_pairs: int = 80        # nodule pairs (signal-present + -absent view) of the task
    budget: str = "codec"       # what cbr fixes: each method's own CBR, or its samples on air (methods.BUDGETS)
    # untrained neural codecs (plumbing tests only, never a result): recorded in sweep.json
    # (random_init_codecs) and in every neural row (model_sha256 = methods.RANDOM_INIT_SHA)
    random_codecs: bool = False

    def validate(self) -> "SweepSpec":
        if not self.methods:
            raise InputError("--methods is empty")
        for m in self.methods:
            meth.check_method(m)
        if len(set(self.methods)) != len(self.methods):
            raise InputError(f"--methods lists a method twice: {self.methods}")
        if not self.snrs:
            raise InputError("--snr gives no SNR values")
        if not self.cbrs:
            raise InputError("--cbr gives no CBR values")
        for c in self.cbrs:
            # an air budget may exceed 1 sample per pixel: a small image pays whole bursts
            if not (0 < c <= 1) and not (self.budget == "air" and 0 < c < math.inf):
                raise InputError(f"--cbr {c} is outside (0, 1]")
        from .channel import CHANNELS

        if self.channel not in CHANNELS:
            raise InputError(f"unknown --channel {self.channel!r}; choose one of {', '.join(CHANNELS)}")
        if self.link not in meth.LINKS:
            raise InputError(f"unknown --link {self.link!r}; choose one of {', '.join(meth.LINKS)}")
        if self.trials < 1:
            raise InputError(f"--trials must be at least 1, got {self.trials}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be at least 1, got {self.limit}")
        meth.check_budget(self.budget)
        if self.budget == "air" and self.link != "ofdm":
            raise InputError("--budget air needs --link ofdm (the symbol link has no framing: air = codec CBR)")
        if self.budget == "air" and self.task:
            raise InputError("--task with --budget air is not supported yet; use --budget codec")
        from .task import check_task

        check_task(self.task, self.task_pairs)
        return self


# ----------------------------------------------------------------------------- data
def resolve_data_root(data: str | None, split: str) -> Path:
    """Folder with images/ (and masks/) for the sweep."""
    if data is None:
        from ..data import ensure_drr_dataset

        root = Path(ensure_drr_dataset()) / split
    else:
        d = Path(data)
        if not d.is_dir():
            raise InputError(f"--data folder not found: {d}")
        root = d if (d / "images").is_dir() else d / split
    if not (root / "images").is_dir():
        raise InputError(f"no images/ folder in {root} (expected {root}/images and {root}/masks)")
    return root.resolve()


# Per-process cache of opened image folders (a worker runs many tasks on the same folder). The
# key is everything that defines the dataset; entries are only read (ds[i]) after creation.
_DATASETS: dict = {}


def _dataset(root: str, limit):
    key = (root, limit)
    if key not in _DATASETS:
        from ..data import ImageFolderDataset

        _DATASETS[key] = ImageFolderDataset(root, size=None, resize="none", limit=limit)
    return _DATASETS[key]


# ----------------------------------------------------------------------------- one task
def run_task(task: dict):
    """Worker entry point (process pool or Ray). Returns (rows, recons, image_name)."""
    try:
        import torch

        torch.set_num_threads(1)  # same arithmetic on every backend
    except ImportError:
        pass
    if task.get("kind") == "nodule":   # task image: rows of channel responses (evaluation/task.py)
        from .task import run_nodule_task

        return run_nodule_task(task)
    ds = _dataset(task["root"], task["limit"])
    item = ds[task["index"]]
    rows, recons = meth.run_point(task["method"], item["image"], item["mask"], item["name"], task["snrs"],
                                  task["cbr"], task["channel"], task["link"], task["trial"], task["seed"],
                                  keep_recon_snrs=task["keep_recon_snrs"], budget=task.get("budget", "codec"),
                                  random_codecs=bool(task.get("random_codecs", False)))
    return rows, {f"{s}|{m}": img for (s, m), img in recons.items()}, item["name"]


# ----------------------------------------------------------------------------- settings / resume
def settings_of(spec: SweepSpec, root: Path) -> dict:
    return {"version": SETTINGS_VERSION, "channel": spec.channel, "link": spec.link, "seed": spec.seed,
            "budget": spec.budget, "data": str(root), "random_init_codecs": bool(spec.random_codecs)}


def prepare_out(out: Path, settings: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sfile = out / "sweep.json"
    if sfile.is_file():
        try:
            old = json.loads(sfile.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{sfile} is not valid JSON; remove it or use another --out") from None
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if diff:
            desc = ", ".join(f"{k}: {a!r} there vs {b!r} now" for k, (a, b) in diff.items())
            raise InputError(f"--out {out} holds results of a sweep with other settings ({desc}); "
                             f"use another --out folder")
    elif (out / "results.csv").is_file():
        raise InputError(f"--out {out} has a results.csv without sweep.json; use another --out folder")
    else:
        sfile.write_text(json.dumps(settings, indent=2) + "\n")


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            rows.append(parse_row(r))
    return rows


def parse_row(r: dict) -> dict:
    out = dict(r)
    for k in ("snr_db", "cbr", "psnr", "roi_psnr", "ms_ssim", "cbr_total", "cbr_air"):
        out[k] = float(r[k]) if r.get(k) not in ("", None) else math.nan
    out["trial"] = int(r["trial"])
    out["source_bytes"] = int(r["source_bytes"] or 0)
    out["decode_ok"] = str(r["decode_ok"]).lower() in ("true", "1")
    out["model_sha256"] = r.get("model_sha256") or ""
    return out


def check_weights(existing: list[dict], methods: list, csv_path: Path, random_codecs: bool = False) -> None:
    """Refuse to resume onto neural rows made with other weights than those loaded now."""
    for m in methods:
        if m not in meth.NEURAL:
            continue
        old = {r["model_sha256"] for r in existing if r["method"] == m}
        if not old:
            continue
        now = meth.neural_model(m, random_codecs).sha256
        other = sorted(old - {now})
        if other:
            raise InputError(f"{csv_path} holds {m} rows made with other weights (model_sha256 "
                             f"{', '.join(o[:12] or 'missing' for o in other)} there vs {now[:12]} now); "
                             f"use another --out folder")


def _point_key(method, snr_db, cbr, trial, image):
    return (method, round(float(snr_db), 6), round(float(cbr), 9), int(trial), str(image))


# ----------------------------------------------------------------------------- aggregation
def _nanmean(values):
    a = np.asarray([v for v in values], dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def aggregate(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """-> (points, per_mcs). ``points`` has one entry per (method, snr, cbr, channel, link): the
    neural/capacity mean, or for digital methods the envelope (best mean ROI-PSNR over MCS;
    PSNR when there is no ROI) naming its ``mcs``. ``per_mcs`` lists every digital MCS."""
    groups: dict = {}
    for r in rows:
        key = (r["method"], r["mcs"], round(r["snr_db"], 6), round(r["cbr"], 9), r["channel"], r["link"])
        groups.setdefault(key, []).append(r)
    per_group = {}
    for key, rs in groups.items():
        method, mcs, snr_db, cbr, ch, lk = key
        per_group[key] = {
            "method": method, "snr_db": snr_db, "cbr": cbr, "channel": ch, "link": lk,
            "psnr": _nanmean(r["psnr"] for r in rs), "roi_psnr": _nanmean(r["roi_psnr"] for r in rs),
            "ms_ssim": _nanmean(r["ms_ssim"] for r in rs),
            "decode_rate": float(np.mean([bool(r["decode_ok"]) for r in rs])), "n": len(rs),
            "cbr_total": _nanmean(r["cbr_total"] for r in rs),
            "cbr_air": _nanmean(r.get("cbr_air", math.nan) for r in rs), "mcs": mcs,
            # a digital MCS whose budget holds not one source byte was never tried: not a failed decode
            "infeasible": bool(method in meth.DIGITAL and all(int(r.get("source_bytes") or 0) == 0 for r in rs)),
        }
        shas = sorted({r.get("model_sha256", "") for r in rs} - {""})
        if shas:
            per_group[key]["model_sha256"] = ",".join(shas)
    points, per_mcs = [], []
    envelopes: dict = {}
    for key, agg in sorted(per_group.items(), key=lambda kv: (kv[0][0], kv[0][3], kv[0][2], kv[0][1])):
        method = key[0]
        if method in meth.DIGITAL:
            per_mcs.append(agg)
            ekey = (method,) + key[2:]
            score = agg["roi_psnr"] if math.isfinite(agg["roi_psnr"]) else agg["psnr"]
            try:  # ties (e.g. every MCS failed): name the most robust MCS
                mcs_obj = meth.parse_mcs(agg["mcs"])
                robustness = -float(Fraction(mcs_obj.rate)) * mcs_obj.bits_per_symbol
            except MedJSCCError:
                robustness = 0.0
            rank = (score, agg["decode_rate"], robustness)
            best = envelopes.get(ekey)
            if best is None or rank > best[0]:
                envelopes[ekey] = (rank, agg)
        else:
            a = dict(agg)
            picked = a.pop("mcs")
            if picked and method in meth.ENVELOPE + meth.HYBRID:
                a["recon_tag"] = picked   # the full row label names the montage's recon file
            if method in meth.ENVELOPE and picked:   # the rule's pick: "<mcs>+<codec>" (envelope.py)
                a["mcs"], _, a["codec"] = picked.partition("+")
            elif method in meth.HYBRID and picked:   # "<base mcs>+<codec>+b<share>" (codec/hybrid.py)
                a["mcs"], a["codec"], share = picked.split("+")
                a["base_share"] = float(share.lstrip("b"))
                # images whose side frame and base decoded (None: no base at this SNR)
                a["base_ok"] = None if a["mcs"] == "none" else a["decode_rate"]
            points.append(a)
    for _, agg in envelopes.values():
        points.append(dict(agg))
    points.sort(key=lambda a: (a["method"], a["cbr"], a["snr_db"]))
    return points, per_mcs


def json_line(point: dict) -> str:
    obj = {k: point[k] for k in AGG_KEYS}
    if point.get("mcs"):
        obj["mcs"] = point["mcs"]
    if point.get("codec"):
        obj["codec"] = point["codec"]
    for k in ("base_share", "base_ok"):   # hybrid-softcast
        if k in point:
            obj[k] = point[k]
    obj["cbr_total"] = point.get("cbr_total")
    obj["cbr_air"] = point.get("cbr_air")   # NaN -> null: the symbol link has no framing
    if point.get("budget"):
        obj["budget"] = point["budget"]
    if point.get("model_sha256"):
        obj["model_sha256"] = point["model_sha256"]
    from .task import TASK_KEYS

    for k in TASK_KEYS:
        if k in point:
            obj[k] = point[k]
    return json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in obj.items()})


# ----------------------------------------------------------------------------- backends
def _probe_address(address: str, timeout: float = 3.0) -> None:
    """Fail fast (one clear line) when a Ray address does not answer."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address {address!r} must look like HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise MedJSCCError(f"Ray address {address} does not answer ({e.strerror or e}); "
                           f"start a cluster there with 'ray start --head' or drop --address") from None


def _ray_init(address: str | None, workers: int):
    """Start (or join) Ray with a bounded wait. ray.init must run on the main thread (in a helper
    thread its GCS connection dies), so the bound is a SIGALRM timer there."""
    import signal

    import ray

    if ray.is_initialized():
        return ray
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address:
        _probe_address(address)
        kwargs["address"] = address
        # a remote cluster's workers do not inherit our environment: pass what the tasks read
        env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MEDJSCC_MODELS_DIR", "MEDJSCC_DATA_DIR")
               if k in os.environ}
        if env:
            kwargs["runtime_env"] = {"env_vars": env}
    else:
        kwargs["num_cpus"] = workers  # a local instance's workers inherit this process's environment

    class _Timeout(Exception):
        pass

    def on_alarm(signum, frame):
        raise _Timeout()

    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGALRM, on_alarm) if main else None
    if main:
        signal.setitimer(signal.ITIMER_REAL, RAY_START_TIMEOUT_S)
    try:
        ray.init(**kwargs)
    except _Timeout:
        raise MedJSCCError(f"Ray did not start within {RAY_START_TIMEOUT_S:.0f} s"
                           + (f" (address {address})" if address else "") + "; use --backend local") from None
    except Exception as e:  # noqa: BLE001 - one clear line for the CLI
        raise MedJSCCError(f"Ray failed to start{' at ' + address if address else ''}: {e}") from None
    finally:
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return ray


def _run_to_csv(tasks, csv_path: Path, columns, execution, progress_label, on_done=None) -> None:
    """Run ``tasks`` (``_execute(tasks, *execution)``), appending their rows to ``csv_path`` as they
    finish (a header first for a new file; flushed per task, so an interrupted sweep resumes),
    with a progress bar labelled ``progress_label`` (falsy: none); ``on_done(rows, recons, name)``
    per finished task."""
    new_file = not csv_path.is_file()
    bar = None
    if progress_label and tasks:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=progress_label, unit="task", leave=False)
    try:
        with csv_path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            if new_file:
                writer.writeheader()
            for rows, recons, image_name in _execute(tasks, *execution):
                for r in rows:
                    writer.writerow({k: r[k] for k in columns})
                f.flush()
                if on_done is not None:
                    on_done(rows, recons, image_name)
                if bar:
                    bar.update(1)
    finally:
        if bar:
            bar.close()


class LocalPool:
    """The local backend's process pool, started on first use and kept for every phase of one
    sweep (main images, then --task images): each worker imports torch and loads the weights and
    the segmenter once per sweep, not once per phase."""

    def __init__(self, workers: int):
        self.workers, self._pool = workers, None

    def get(self):
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # forkserver: workers start clean even if this process already initialised torch/OpenMP
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("forkserver"))
        return self._pool

    def warm(self, spec: "SweepSpec") -> None:
        """Start every worker now with what its first task would load (fire and forget)."""
        pool = self.get()
        for _ in range(self.workers):
            pool.submit(_warm_worker, [m for m in spec.methods if m in meth.NEURAL], bool(spec.random_codecs),
                        bool(spec.task))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _warm_worker(neural: list, random_codecs: bool, task: bool) -> None:
    """Worker: import torch, load the neural codecs and (--task) the Dice segmenter. Errors are
    left to the tasks, which report them."""
    try:
        import torch

        torch.set_num_threads(1)
        for m in neural:
            meth.neural_model(m, random_codecs)
        if task:
            import numpy as np

            from .task import lung_mask

            lung_mask(np.zeros((16, 16), np.uint8))
    except Exception:  # noqa: BLE001 - a warm-up never fails the sweep
        pass


def _execute(tasks, backend: str, address: str | None, workers: int, pool: LocalPool | None = None):
    """Yield task results as they finish (``pool``: a LocalPool kept across calls)."""
    if backend == "local":
        if workers <= 1 or len(tasks) <= 1:
            for t in tasks:
                yield run_task(t)
            return
        from concurrent.futures import as_completed

        own = pool is None
        pool = LocalPool(workers) if own else pool
        try:
            futures = [pool.get().submit(run_task, t) for t in tasks]
            for f in as_completed(futures):
                yield f.result()
        finally:
            if own:
                pool.close()
        return
    if backend == "ray":
        ray = _ray_init(address, workers)
        remote = ray.remote(num_cpus=1)(run_task)
        pending = [remote.remote(t) for t in tasks]
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            if not address:
                ray.shutdown()
        return
    raise InputError(f"unknown --backend {backend!r}; choose local or ray")


# ----------------------------------------------------------------------------- checks
def check_reachable(spec: SweepSpec, first_image: np.ndarray, first_mask) -> None:
    """Refuse CBRs no requested method can reach; name neural methods that cannot reach one."""
    shape = first_image.shape
    link = meth.get_link(spec.link, spec.channel)
    for cbr in spec.cbrs:
        reachable = []
        try:
            n_sym = meth.symbol_budget(cbr, shape, link, spec.budget)
        except MedJSCCError as e:
            raise InputError(f"--cbr {cbr:g}: {e}") from None
        for m in spec.methods:
            if m in meth.NEURAL:
                codec = meth.neural_codec(m, spec.random_codecs)
                try:
                    meth.neural_encode(codec, first_image, first_mask, max(spec.snrs), cbr, link, spec.budget)
                except MedJSCCError as e:
                    raise InputError(f"method {m} cannot reach --cbr {cbr:g}"
                                     f"{' on air' if spec.budget == 'air' else ''}: {e}") from None
                reachable.append(m)
            elif m in meth.DIGITAL:
                budget = 0
                for mcs in meth.MCS_TABLE:
                    code = meth.choose_code(mcs.rate, n_sym * mcs.bits_per_symbol)
                    if code is not None:
                        budget = max(budget, (n_sym * mcs.bits_per_symbol // code.n) * code.k // 8)
                if budget and meth._source(meth.DIGITAL[m]).encode(first_image, budget, first_mask) is not None:
                    reachable.append(m)
            elif m in meth.HYBRID:
                from ..codec.hybrid import layout, split_rule

                if m in meth.SYMBOL_LINK_ONLY and spec.link != "symbol":
                    raise InputError(f"method {m} runs on --link symbol only (the air codec sends the shipped split)")
                try:
                    for s in spec.snrs:
                        # the split the run will use: the one fitted at this CBR, as hybrid.send picks it
                        c = n_sym / first_image.size
                        lay = layout(n_sym, s, meth.hybrid_split(m, s, c) or split_rule(s, cbr=c))
                        lay.band_weights(first_image.shape)   # a task-weighted layout reads its spectrum file
                except MedJSCCError as e:
                    raise InputError(f"method {m} cannot reach --cbr {cbr:g}: {e}") from None
                if m in meth.HYBRID_REFINER:   # missing or corrupt weights: say so before any work
                    try:
                        meth.hybrid_refiner(meth.HYBRID_REFINER[m])
                    except MedJSCCError as e:
                        raise InputError(f"method {m}: {e}") from None
                reachable.append(m)
            elif m in meth.ENVELOPE:
                from .linkadapt import FAMILY, plan

                if plan(min(FAMILY, key=lambda x: x.efficiency), n_sym) is not None:
                    reachable.append(m)
            else:
                from .channel import capacity_bits_per_symbol

                budget = int(n_sym * capacity_bits_per_symbol(spec.channel, max(spec.snrs)) / 8)
                if budget and meth._source(meth.CAPACITY[m]).encode(first_image, budget, first_mask) is not None:
                    reachable.append(m)
        if not reachable:
            raise InputError(f"--cbr {cbr:g} ({n_sym} symbols for a {shape[1]}x{shape[0]} image) is too small "
                             f"for every method in {','.join(spec.methods)}; use a larger --cbr")


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    out: Path
    points: list = field(default_factory=list)       # aggregates of this invocation's grid
    all_points: list = field(default_factory=list)   # aggregates of everything in results.csv
    per_mcs: list = field(default_factory=list)
    n_tasks_run: int = 0
    n_rows_new: int = 0
    seconds: float = 0.0
    task: dict | None = None                          # --task: settings + reference (original images)
    stage_seconds: dict = field(default_factory=dict)  # wall time per stage (bench/task_sweep_speed.py)


def run_sweep(spec: SweepSpec, out, backend: str = "local", address: str | None = None,
              workers: int | None = None, progress: bool = True, plots: bool = True) -> SweepResult:
    t0 = time.time()
    spec.validate()
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    pool = LocalPool(workers) if backend == "local" and workers > 1 else None   # one pool for every phase
    if pool is not None:   # the workers import torch and load the weights while this process checks the inputs
        pool.warm(spec)
    try:
        return _run_sweep(spec, out, backend, address, workers, progress, plots, pool, t0)
    finally:
        if pool is not None:
            pool.close()


def _run_sweep(spec: SweepSpec, out, backend, address, workers, progress, plots, pool, t0) -> SweepResult:
    if backend not in ("local", "ray"):
        raise InputError(f"unknown --backend {backend!r}; choose local or ray")
    if address and backend != "ray":
        raise InputError("--address only applies to --backend ray")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise MedJSCCError("--backend ray needs the 'ray' package (pinned in requirements/base.txt)") from None
        if address:
            _probe_address(address)
    if spec.link == "ofdm":
        meth.get_link("ofdm", spec.channel)  # clear error now if the PHY is missing
    root = resolve_data_root(spec.data, spec.split)
    ds = _dataset(str(root), spec.limit)
    if len(ds) == 0:
        raise InputError(f"no images in {root}")
    for m in spec.methods:
        if m in meth.NEURAL:
            meth.neural_codec(m, spec.random_codecs)  # weights present? (clear error for that method)
    first = ds[0]
    check_reachable(spec, first["image"], first["mask"])

    out = Path(out)
    prepare_out(out, settings_of(spec, root))
    csv_path = out / "results.csv"
    existing = read_rows(csv_path)
    if csv_path.is_file():
        with csv_path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if header and header != CSV_COLUMNS:
            raise InputError(f"{csv_path} has other columns than this version writes; use another --out folder")
    check_weights(existing, spec.methods, csv_path, spec.random_codecs)
    done = {_point_key(r["method"], r["snr_db"], r["cbr"], r["trial"], r["image"]) for r in existing}
    names = [p.stem for p in ds.files]
    montage = montage_snrs(spec.snrs)
    tasks = []
    for m in spec.methods:
        for cbr in spec.cbrs:
            for trial in range(spec.trials):
                for idx, name in enumerate(names):
                    todo = [s for s in spec.snrs if _point_key(m, s, cbr, trial, name) not in done]
                    if todo:
                        tasks.append(dict(method=m, cbr=float(cbr), index=idx, trial=trial, snrs=todo,
                                          root=str(root), limit=spec.limit, channel=spec.channel,
                                          link=spec.link, seed=spec.seed, budget=spec.budget,
                                          random_codecs=spec.random_codecs,
                                          keep_recon_snrs=montage if (idx == 0 and trial == 0) else []))
    # biggest tasks first keeps the pool busy at the end
    tasks.sort(key=lambda t: (t["method"] not in meth.DIGITAL, -len(t["snrs"])))
    result = SweepResult(out=out, n_tasks_run=len(tasks))
    def on_done(rows, recons, image_name):
        result.n_rows_new += len(rows)
        if recons:
            save_recons(out, rows[0]["method"], rows[0]["cbr"], image_name, recons)

    stage = result.stage_seconds
    stage["setup"] = time.time() - t0
    t1 = time.time()
    _run_to_csv(tasks, csv_path, CSV_COLUMNS, (backend, address, workers, pool), progress and "sweep", on_done)
    stage["images"] = time.time() - t1
    all_rows = read_rows(csv_path)
    result.all_points, result.per_mcs = aggregate(all_rows)
    for p in result.all_points + result.per_mcs:   # sweep.json holds one budget per folder
        p["budget"] = spec.budget
    task_info = None
    if spec.task:   # after the main images: digital methods send the task images at their envelope's MCS
        task_info = _run_task_phase(spec, out, backend, address, workers, progress, result, pool)
    if task_info is not None:
        from . import task as task_mod

        t1 = time.time()
        task_mod.attach(result.all_points, result.per_mcs, task_mod.read_task_rows(out))
        result.task = task_info
        stage["task_observer"] = time.time() - t1
    wanted = {(m, round(float(s), 6), round(float(c), 9)) for m in spec.methods for s in spec.snrs for c in spec.cbrs}
    result.points = [p for p in result.all_points if (p["method"], p["snr_db"], p["cbr"]) in wanted]
    write_summary(out, spec, result)
    if plots:
        from . import plots as plot_mod

        t1 = time.time()
        plot_mod.make_all(out, result.all_points, result.per_mcs, task=result.task)
        stage["plots"] = time.time() - t1
    result.seconds = time.time() - t0
    return result


def _run_task_phase(spec: SweepSpec, out: Path, backend, address, workers, progress, result, pool=None) -> dict:
    """--task nodule: every method on the nodule pairs -> task_nodule.csv; returns the task's
    settings with the observer on the original images (``reference``)."""
    from . import task as task_mod

    settings = task_mod.prepare(out, spec.split)
    root = task_mod.nodule_root(spec.task_pairs, spec.split)
    csv_path = out / task_mod.TASK_CSV
    existing = task_mod.read_task_rows(out)
    check_weights([{"method": r["method"], "model_sha256": r.get("model_sha256", "")} for r in existing],
                  spec.methods, csv_path, spec.random_codecs)
    done = {task_mod._key(r["method"], r["snr_db"], r["cbr"], r["trial"], r["image"], r["mcs"]) for r in existing}
    envelope = [p for p in result.all_points if p["method"] in meth.DIGITAL]
    tasks = task_mod.build_tasks(spec, out, root, done, task_mod.envelope_mcs(envelope))
    tasks.sort(key=lambda t: (t["method"] not in meth.DIGITAL, -len(t["snrs"])))
    result.n_tasks_run += len(tasks)
    t1 = time.time()
    _run_to_csv(tasks, csv_path, task_mod.columns(), (backend, address, workers, pool),
                progress and "sweep --task nodule")
    result.stage_seconds["task_images"] = time.time() - t1
    t1 = time.time()
    reference = task_mod.reference(root, spec.split, spec.task_pairs)
    result.stage_seconds["task_reference"] = time.time() - t1
    return dict(settings, pairs=spec.task_pairs, nodule_set=str(root), reference=reference)


def save_recons(out: Path, method: str, cbr: float, image_name: str, recons: dict) -> None:
    from PIL import Image

    d = out / "recon" / image_name
    d.mkdir(parents=True, exist_ok=True)
    for key, img in recons.items():
        snr_s, mcs = key.split("|")
        Image.fromarray(np.asarray(img, np.uint8), "L").save(d / f"{recon_tag(method, mcs, float(snr_s), cbr)}.png")


def json_safe(obj):
    """``obj`` with every non-finite float as None (strict JSON), through dicts and lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def write_summary(out: Path, spec: SweepSpec, result: SweepResult) -> None:
    settings = json.loads((out / "sweep.json").read_text())
    summary = {
        "settings": settings,
        "last_run": {"methods": spec.methods, "snr_db": spec.snrs, "cbr": spec.cbrs, "trials": spec.trials,
                     "limit": spec.limit,
                     # wall seconds of this run's stages so far (plots come after the summary)
                     "stage_seconds": {k: round(v, 3) for k, v in result.stage_seconds.items()}},
        "metric_notes": {
            "envelope": "digital methods: best MCS per (SNR, CBR) on mean ROI-PSNR; per-MCS values in per_mcs",
            "failed_images": "a digital image whose LDPC decoding failed counts as mid-grey (128); "
                             "decode_rate = fraction of images decoded",
            "snr": "Es/N0 per complex symbol, unit power (snr.py)",
            "cbr": "settings.budget 'codec': cbr is each method's own CBR; 'air': cbr is the samples on air per "
                   "pixel each method may use, its codec CBR solved on the link's framing",
            "cbr_total": "the method's symbols per pixel: analog symbols + side info (neural), QAM symbols (digital)",
            "cbr_air": "OFDM link: every complex sample of the image's bursts per pixel (preambles, headers, "
                       "pilots, cyclic prefix, guard carriers, padding); null on the symbol link (no framing)",
        },
        "points": result.all_points,
        "per_mcs": result.per_mcs,
    }
    if result.task is not None:
        summary["task"] = result.task
        summary["metric_notes"]["task"] = (
            "task_auc: channelized Hotelling observer (Laguerre-Gauss channels) detecting a simulated lung "
            "nodule at its known position in the received images of signal-present/-absent pairs, "
            "2-fold cross-validated over views, empirical AUC with 95% bootstrap interval "
            "(task_auc_lo/hi), task_dprime of the same scores; digital envelopes use the MCS the "
            "envelope picked; task.reference = the same observer on the original images; dice_vs_original: "
            "Dice of the lung mask the ROI segmenter (task.dice_segmenter) finds in each received task image "
            "vs the one it finds in the original, mean with 95% bootstrap interval over pairs (_lo/_hi)")
    (out / "summary.json").write_text(json.dumps(json_safe(summary), indent=1) + "\n")
