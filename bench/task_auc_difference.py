"""Is one method's nodule AUC really above another's? The paired difference AUC(a) - AUC(b) with a
95 % paired-bootstrap interval, from the task rows of ``medjscc sweep --task nodule`` runs (issue
#15: the per-method intervals overlap even where a difference is consistent, because both methods
see the same views, whose anatomy moves both AUCs together).

The two methods may come from different runs (``--runs``, their ``task_nodule.csv`` read
together), as long as the runs used the same pairs and channel draws (the sweep's defaults do).
One JSON object per (SNR, CBR, channel, link) where both methods have rows:
``auc_a``, ``auc_b``, ``diff``, ``diff_lo``, ``diff_hi`` and ``p_not_above`` (the share of bootstrap
replicates with a difference <= 0).

    python bench/task_auc_difference.py --runs out/sweep_task --a hybrid-softcast-task --b hybrid-softcast --json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=True, help="sweep output folders with task_nodule.csv")
    ap.add_argument("--a", required=True, help="method a (the difference is a - b)")
    ap.add_argument("--b", required=True, help="method b")
    ap.add_argument("--json", action="store_true", help="one JSON object per point")
    args = ap.parse_args(argv)

    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.evaluation import task

    rows = []
    for run in args.runs:
        got = task.read_task_rows(Path(run))
        if not got:
            raise InputError(f"{run} holds no {task.TASK_CSV}: run `medjscc sweep --task nodule --out {run}` first")
        rows += got
    # a point measured in two runs must not count twice
    seen, unique = set(), []
    for r in rows:
        k = (r["method"], r["mcs"], r["snr_db"], r["cbr"], r["channel"], r["link"], r["trial"], r["pair"], r["signal"])
        if k not in seen:
            seen.add(k)
            unique.append(r)
    res = task.compare(unique, args.a, args.b)
    if not res:
        raise InputError(f"no SNR/CBR point where both {args.a} and {args.b} have task rows in {', '.join(args.runs)}")
    for (snr, cbr, channel, link), d in res.items():
        rec = dict(bench="task_auc_difference", a=args.a, b=args.b, snr_db=snr, cbr=cbr, channel=channel, link=link,
                   **{k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()})
        if args.json:
            print(json.dumps(rec))
        else:
            print(f"{snr:6.1f} dB  CBR {cbr:.4g}  {args.a} {d['auc_a']:.3f} - {args.b} {d['auc_b']:.3f} = "
                  f"{d['diff']:+.3f} [{d['diff_lo']:+.3f}, {d['diff_hi']:+.3f}]  P(diff <= 0) {d['p_not_above']:.3f}")
    return 0


if __name__ == "__main__":
    from bench_cli import run

    run(main, "task_auc_difference")
