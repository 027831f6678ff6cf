"""Speed of ``medjscc sweep --task nodule`` (issue #15 target: 3 SNRs x 2 methods under 3 minutes).

Runs exactly the issue's sweep through the CLI in a fresh interpreter (default: Med-JSCC and the
digital envelope, SNR 0, 5, 10 dB, CBR 1/16, every test image, the task's default 80 nodule
pairs, the default worker count, plots on) into a temporary folder, and prints one JSON object:
``wall_s`` (the command's wall time), ``cpu_s`` (user + system seconds of the command and every
process it started, sampled from /proc: what the machine had to do, independent of how busy the
other tenants kept the cores), the sweep's own ``stage_seconds`` (summary.json: setup, images,
task_images, task_reference, task_observer; ``plots_and_exit_s`` = the rest), ``images``,
``pairs``, ``snrs``, ``methods``, the 1-minute load average before and after, and
``meets_target`` (wall_s < 180). Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/task_sweep_speed.py
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 180.0
ROOT = Path(__file__).resolve().parents[1]


def _children() -> dict:
    """{pid: ppid} of every process (Linux /proc)."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[int(d)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime
    except (OSError, IndexError, ValueError):
        return -1.0


def _tree(root: int) -> list[int]:
    parents = _children()
    tree, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parents.items() if pp in frontier]
        tree += frontier
    return tree


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="medjscc,digital-envelope")
    ap.add_argument("--snr", default="0,5,10")
    ap.add_argument("--cbr", default="1/16")
    ap.add_argument("--limit", type=int, default=None, help="first N test images (default: all, as the sweep)")
    ap.add_argument("--task-pairs", type=int, default=None, help="nodule pairs (default: the sweep's)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--keep", default=None, help="write the sweep here and keep it (default: a temporary folder)")
    args = ap.parse_args(argv)

    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="task_sweep_speed_")) / "sweep"
    if out.exists():
        print(f"error: --keep {out} exists; a resumed sweep would time nothing", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "gnuradio.medjscc", "sweep", "--methods", args.methods, f"--snr={args.snr}",
           "--cbr", args.cbr, "--task", "nodule", "--json", "--out", str(out)]
    cmd += ["--limit", str(args.limit)] if args.limit else []
    cmd += ["--task-pairs", str(args.task_pairs)] if args.task_pairs else []
    cmd += ["--workers", str(args.workers)] if args.workers else []
    cmd += ["--no-plots"] if args.no_plots else []
    load0 = os.getloadavg()[0]
    cpu: dict = {}
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        while proc.poll() is None:   # the workers are grandchildren (forkserver): sample the tree
            for pid in _tree(proc.pid):
                c = _cpu_seconds(pid)
                if c >= 0:
                    cpu[pid] = max(cpu.get(pid, 0.0), c)
            time.sleep(0.5)
        wall = time.perf_counter() - t0
        lines = proc.stdout.read().splitlines()
        if proc.returncode:
            print(json.dumps({"bench": "task_sweep_speed", "error": f"sweep exited {proc.returncode}",
                              "command": " ".join(cmd[1:])}))
            return 1
        summary = json.loads((out / "summary.json").read_text())
    finally:
        if not args.keep:
            shutil.rmtree(out.parent, ignore_errors=True)
    points = [json.loads(x) for x in lines if x.startswith("{")]
    stages = summary["last_run"].get("stage_seconds", {})
    record = {
        "bench": "task_sweep_speed",
        "command": "python " + " ".join(cmd[1:]).replace(str(out), "<tmp>"),
        "wall_s": round(wall, 2),
        "cpu_s": round(sum(cpu.values()), 1),
        "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
        "plots_and_exit_s": round(wall - sum(stages.values()), 2),
        "images": max(p["n"] for p in points),
        "pairs": summary["task"]["pairs"],
        "snrs": summary["last_run"]["snr_db"],
        "methods": summary["last_run"]["methods"],
        "workers": args.workers or min(os.cpu_count() or 1, 8),
        "load1_before": round(load0, 2), "load1_after": round(os.getloadavg()[0], 2),
        "target_s": TARGET_S, "meets_target": wall < TARGET_S,
        "task_auc": {f"{p['method']}@{p['snr_db']:g}": p.get("task_auc") for p in points},
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
