"""``medjscc report DIR``: DIR/README.md with the sweep's tables, target checks and figure links.

Reads ``summary.json`` (rebuilt from ``results.csv`` when absent, so a sweep interrupted before
its summary still reports). Numbers are printed as measured; nothing is filled in.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import InputError
from . import methods as meth
from .outputs import cbr_label
from .sweep import aggregate, read_rows


def _fmt(v, nd=2):
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def load_summary(results_dir: Path) -> dict:
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputError(f"results folder not found: {results_dir}")
    sfile = results_dir / "summary.json"
    if sfile.is_file():
        try:
            return json.loads(sfile.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{sfile} is not valid JSON; re-run the sweep") from None
    csv_path = results_dir / "results.csv"
    if not csv_path.is_file():
        raise InputError(f"no summary.json or results.csv in {results_dir}; run 'medjscc sweep --out {results_dir}' first")
    points, per_mcs = aggregate(read_rows(csv_path))
    from . import task as task_mod

    task_rows = task_mod.read_task_rows(results_dir)
    if task_rows:   # --task rows without a summary: figures without the original-image reference
        task_mod.attach(points, per_mcs, task_rows)
    settings = {}
    if (results_dir / "sweep.json").is_file():
        settings = json.loads((results_dir / "sweep.json").read_text())
    return {"settings": settings, "points": points, "per_mcs": per_mcs}



def _digital_pairs(at: dict, med: dict):
    """(digital method, its points by SNR, the SNRs it shares with Med-JSCC) for each digital
    envelope in ``at`` ((method, snr) -> point) that has SNRs in common with ``med``."""
    for dig in ("digital-envelope", "j2k-ldpc", "hevc-ldpc", "j2k-roi-ldpc"):
        env = {s: p for (m, s), p in at.items() if m == dig}
        common = sorted(set(env) & set(med))
        if common:
            yield dig, env, common

def target_checks(points: list[dict], cbr: float = 1 / 16) -> list[str]:
    """The issue's targets at total CBR 1/16 (AWGN), evaluated on whatever the sweep measured."""
    lines = []
    at = {(p["method"], p["snr_db"]): p for p in points if abs(p["cbr"] - cbr) < 1e-9 and p["channel"] == "awgn"}
    med = {s: p for (m, s), p in at.items() if m == "medjscc"}
    if not med:
        return ["- Med-JSCC was not in this sweep at CBR 1/16 on AWGN: targets not evaluated."]
    for dig, env, common in _digital_pairs(at, med):
        margins = {s: med[s]["roi_psnr"] - env[s]["roi_psnr"] for s in common}
        low = [s for s in common if s <= 10]
        ok2 = all(margins[s] >= 2.0 for s in low) if low else None
        span = [s for s in common if 0 <= s <= 20]
        ok0 = all(margins[s] >= 0.0 for s in span) if span else None
        detail = ", ".join(f"{s:g} dB: {margins[s]:+.2f}" for s in common)
        lines.append(f"- Med-JSCC ROI-PSNR minus {dig} envelope ({detail}) -> "
                     f">= +2 dB at SNR <= 10 dB: {'met' if ok2 else ('not met' if ok2 is False else 'n/a')}; "
                     f">= 0 from 0 to 20 dB: {'met' if ok0 else ('not met' if ok0 is False else 'n/a')}")
    cap = {s: p for (m, s), p in at.items() if m == "j2k-capacity"}
    common = sorted(s for s in set(cap) & set(med) if s <= 5)
    if common:
        margins = {s: med[s]["roi_psnr"] - cap[s]["roi_psnr"] for s in common}
        ok = all(v >= 0 for v in margins.values())
        detail = ", ".join(f"{s:g} dB: {v:+.2f}" for s, v in margins.items())
        lines.append(f"- Med-JSCC ROI-PSNR minus JPEG2000 capacity bound at SNR <= 5 dB ({detail}) -> "
                     f"{'met' if ok else 'not met'}")
    return lines or ["- no digital baseline at CBR 1/16 to compare with"]


def task_section(summary: dict, results_dir: Path, cbr: float = 1 / 16) -> list[str]:
    """``--task nodule``: AUC table per CBR and the issue's task targets (AWGN, CBR 1/16)."""
    points = [p for p in summary.get("points", []) if p.get("task_auc") is not None]
    if not points:
        return []
    task = summary.get("task") or {}
    ref = task.get("reference") or {}
    out = ["## Diagnostic task: nodule detection", "",
           "Channelized Hotelling observer (Laguerre-Gauss channels scaled to the nodule) detecting a "
           "simulated lung nodule at its known position in the *received* signal-present/-absent images "
           f"({task.get('pairs', '?')} test-split pairs, `{task.get('observer', '?')}`), trained and tested on "
           "separate views (2-fold cross-validation). Cells: AUC [95% bootstrap interval], d'; Dice "
           "[95% bootstrap interval] of the lung mask the ROI segmenter finds in the received image vs the one "
           f"it finds in the original (`{task.get('dice_segmenter', '?')}`; a grey failed decode scores ~0.4). "
           "Digital methods: the MCS their ROI-PSNR envelope picked.", ""]
    if ref:
        out += [f"Original images: AUC **{_fmt(ref['task_auc'], 3)}** [{_fmt(ref['task_auc_lo'], 3)}, "
                f"{_fmt(ref['task_auc_hi'], 3)}], d' {_fmt(ref['task_dprime'])}.", ""]
    for c in sorted({p["cbr"] for p in points}):
        pts = [p for p in points if p["cbr"] == c]
        ms = sorted({p["method"] for p in pts}, key=lambda m: (meth.METHODS.index(m) if m in meth.METHODS else 99, m))
        out += [f"### CBR {c:g}", "", "| SNR (dB) | " + " | ".join(ms) + " |", "|---|" + "---|" * len(ms)]
        for snr in sorted({p["snr_db"] for p in pts}):
            cells = []
            for m in ms:
                p = next((q for q in pts if q["method"] == m and q["snr_db"] == snr), None)
                cell = "" if p is None else (f"{_fmt(p['task_auc'], 3)} [{_fmt(p['task_auc_lo'], 3)}, "
                                             f"{_fmt(p['task_auc_hi'], 3)}], {_fmt(p['task_dprime'])}")
                if p is not None and p.get("dice_vs_original") is not None:
                    cell += (f"; Dice {_fmt(p['dice_vs_original'], 3)} [{_fmt(p.get('dice_vs_original_lo'), 3)}, "
                             f"{_fmt(p.get('dice_vs_original_hi'), 3)}]")
                cells.append(cell)
            out.append(f"| {snr:g} | " + " | ".join(cells) + " |")
        out.append("")
        stem = f"task_auc_vs_snr_cbr{cbr_label(c)}"
        if (results_dir / "plots" / f"{stem}.png").is_file():
            out += [f"![task AUC vs SNR](plots/{stem}.png) ([pdf](plots/{stem}.pdf))", ""]
    at = {(p["method"], p["snr_db"]): p for p in points if abs(p["cbr"] - cbr) < 1e-9 and p["channel"] == "awgn"}
    med = {s: p for (m, s), p in at.items() if m == "medjscc"}
    checks = []
    if med and ref.get("task_auc"):
        keep = {s: med[s]["task_auc"] / ref["task_auc"] for s in sorted(med)}
        hi = [s for s in keep if s >= 0]
        lo = [s for s in keep if -5 <= s < 0]
        detail = ", ".join(f"{s:g} dB: {100 * v:.1f}%" for s, v in keep.items())
        checks.append(f"- Med-JSCC AUC / original AUC ({detail}) -> >= 97% at SNR >= 0 dB: "
                      + ("n/a" if not hi else ("met" if all(keep[s] >= 0.97 for s in hi) else "not met"))
                      + "; >= 90% at -5 dB: "
                      + ("n/a" if not lo else ("met" if all(keep[s] >= 0.90 for s in lo) else "not met")))
    # the envelope target holds at total CBR 1/16 and 1/32 (the target CBRs)
    for c in (cbr, cbr / 2):
        at_c = {(p["method"], p["snr_db"]): p for p in points if abs(p["cbr"] - c) < 1e-9 and p["channel"] == "awgn"}
        med_c = {s: p for (m, s), p in at_c.items() if m == "medjscc"}
        for dig, env, common in _digital_pairs(at_c, med_c):
            diff = {s: med_c[s]["task_auc"] - env[s]["task_auc"] for s in common}
            ok = all((diff[s] >= 0) if s <= 5 else (diff[s] >= -0.01) for s in common)
            detail = ", ".join(f"{s:g} dB: {v:+.3f}" for s, v in diff.items())
            tag = "" if c == cbr else f" at CBR 1/{round(1 / c)}"
            checks.append(f"- Med-JSCC AUC minus {dig} envelope AUC{tag} ({detail}) -> >= 0 at SNR <= 5 dB and "
                          f">= -0.01 above: {'met' if ok else 'not met'} (point estimates; see the intervals)")
    if checks:
        out += ["### Task targets (AWGN; total CBR 1/16 unless stated)", ""] + checks + [""]
    return out


def write_report(results_dir) -> Path:
    results_dir = Path(results_dir)
    summary = load_summary(results_dir)
    points, per_mcs = summary.get("points", []), summary.get("per_mcs", [])
    if not points:
        raise InputError(f"{results_dir} holds no results yet")
    st = summary.get("settings", {})
    out = ["# Sweep results", ""]
    out.append(f"Channel **{st.get('channel', points[0]['channel'])}**, link **{st.get('link', points[0]['link'])}**, "
               f"seed {st.get('seed', '?')}, images from `{st.get('data', '?')}`.")
    if st.get("random_init_codecs"):
        out.append("")
        out.append("**Warning: neural codecs were random-initialised (test hook); their numbers mean nothing.**")
    out += ["", "SNR is Es/N0 per complex symbol (unit power). Digital methods show their envelope: the "
            "best MCS (LDPC rate x QAM) per SNR on mean ROI-PSNR; a failed LDPC decode counts the image "
            "as mid-grey. Cells: ROI-PSNR / PSNR (dB), MS-SSIM, decoded fraction, on the OFDM link the samples "
            "on air per pixel (air); n = images x trials.", ""]
    if st.get("budget") == "air":
        out += ["Budget **air**: each CBR below is the samples on air per pixel every method may use; its codec "
                "CBR is the largest whose bursts fit it on the same framing.", ""]
    out += ["## Targets (total CBR 1/16, AWGN)", ""] + target_checks(points) + [""]
    out += task_section(summary, results_dir)
    cbrs = sorted({p["cbr"] for p in points})
    for cbr in cbrs:
        pts = [p for p in points if p["cbr"] == cbr]
        ms = sorted({p["method"] for p in pts}, key=lambda m: (meth.METHODS.index(m) if m in meth.METHODS else 99, m))
        snrs = sorted({p["snr_db"] for p in pts})
        out += [f"## {'air CBR' if st.get('budget') == 'air' else 'CBR'} {cbr:g}", "",
                "| SNR (dB) | " + " | ".join(ms) + " |",
                "|---|" + "---|" * len(ms)]
        for s in snrs:
            cells = []
            for m in ms:
                p = next((q for q in pts if q["method"] == m and q["snr_db"] == s), None)
                if p is None:
                    cells.append("")
                    continue
                c = f"{_fmt(p['roi_psnr'])} / {_fmt(p['psnr'])}, {_fmt(p['ms_ssim'], 3)}, {_fmt(p['decode_rate'])}"
                if p.get("mcs"):
                    c += f" ({p['mcs']})"
                if p.get("cbr_air") is not None and math.isfinite(p["cbr_air"]):
                    c += f", air {p['cbr_air']:.4f}"
                cells.append(c + f", n={p['n']}")
            out.append(f"| {s:g} | " + " | ".join(cells) + " |")
        out.append("")
        for dig in sorted({p["method"] for p in per_mcs if p["cbr"] == cbr}):
            rows = [p for p in per_mcs if p["cbr"] == cbr and p["method"] == dig]
            mcs_names = [m.name for m in meth.MCS_TABLE if any(r["mcs"] == m.name for r in rows)]
            out += [f"<details><summary>{dig}: every MCS (ROI-PSNR dB / decoded fraction)</summary>", "",
                    "| MCS | " + " | ".join(f"{s:g} dB" for s in snrs) + " |", "|---|" + "---|" * len(snrs)]
            for name in mcs_names:
                cells = []
                for s in snrs:
                    r = next((q for q in rows if q["mcs"] == name and q["snr_db"] == s), None)
                    if r is None:
                        cells.append("")
                    elif r.get("infeasible"):
                        cells.append("infeasible (no source byte fits)")
                    else:
                        cells.append(f"{_fmt(r['roi_psnr'])} / {_fmt(r['decode_rate'])}")
                out.append(f"| {name} | " + " | ".join(cells) + " |")
            out += ["", "</details>", ""]
        plots = results_dir / "plots"
        figs = []
        for key in ("roi_psnr", "psnr", "ms_ssim"):
            stem = f"{key}_vs_snr_cbr{cbr_label(cbr)}"
            if (plots / f"{stem}.png").is_file():
                figs.append(f"![{key} vs SNR](plots/{stem}.png) ([pdf](plots/{stem}.pdf))")
        stem = f"montage_cbr{cbr_label(cbr)}"
        if (plots / f"{stem}.png").is_file():
            figs.append(f"![montage](plots/{stem}.png) ([pdf](plots/{stem}.pdf))")
        if figs:
            out += ["### Figures", ""] + [f + "\n" for f in figs]
    plots = results_dir / "plots"
    vs_cbr = sorted(plots.glob("*_vs_cbr_snr*.png")) if plots.is_dir() else []
    if vs_cbr:
        out += ["## Against CBR", ""] + [f"![{p.stem}](plots/{p.name}) ([pdf](plots/{p.stem}.pdf))\n" for p in vs_cbr]
    out += ["## Files", "", "- `results.csv`: one row per method, MCS, SNR, CBR, channel, link, trial, image",
            "- `summary.json`: aggregates (`points`: envelopes and means, `per_mcs`: every digital MCS)",
            "- `plots/`: PNG + PDF figures; `recon/`: reconstructions used by the montage", ""]
    path = results_dir / "README.md"
    path.write_text("\n".join(out))
    return path
