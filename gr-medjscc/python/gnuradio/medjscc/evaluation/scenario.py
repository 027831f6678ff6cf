"""``medjscc sweep --scenario leo_pass``: a remote-telemedicine pass with late SNR feedback (issue #18).

Images are sent one after the other over one period of a satellite profile's slow dynamics
(``blocks.sat_channel.SatDynamics``: the LEO pass's path-loss swing around ``--snr`` and its
elevation-dependent Rician K; a GEO rain-fade cycle), by Med-JSCC and by the digital envelope,
on the symbol link. What happens to image k (k = 0..N-1):

* Time. Image k occupies air slot ``[k I, (k+1) I)`` (``I`` = ``--image-interval-ms``, default
  20 ms: about one 256x256 DRR at CBR 1/16 on the OFDM link, as in ``bench/late_feedback.py``).
  The slow dynamics run ``time_scale = period / (N I)`` times faster than air time, so the N
  images span the whole pass (image k at pass time ``t_k = (k + 1/2) period / N``); the feedback
  delay is in air time, like the bench's. ``--image-interval-ms`` = period/N*1000 is real time
  (then a 30 ms delay moves the pass by 30 ms only).
* Channel. The pass's mean SNR at ``t_k`` (``--snr`` + the profile's large-scale gain) and a unit-
  power Rician gain per symbol ``h = sqrt(K/(K+1)) + sqrt(1/(K+1)) g`` with the K of ``t_k``;
  the scatter ``g`` is the named model ``rayleigh_block1536`` (one CN(0,1) gain per 1536 symbols,
  an OFDM frame's payload: the profile's 10 Hz scatter Doppler has a coherence time of ~40 ms,
  longer than a frame). The receiver knows h and N0 (as every sweep link). The draws depend on
  the image index only (``channel.channel_seed``), so both methods and every policy meet the
  same fading and noise (a method that sends fewer symbols sees a prefix of them).
* Feedback. The receiver reports one SNR estimate per OFDM frame of air time (``FEEDBACK_EVERY_S``),
  the pass's mean SNR at that time; a ``snr_feedback_policy.FeedbackPolicy`` (``--feedback-policy``,
  ``--feedback-delay-ms``, ``--design-snr``, ``--feedback-margin-db``) gets them and picks the
  SNR for image k at the start of its slot -- once per policy, and that same value goes to both
  methods: Med-JSCC's CAU encodes for it (payload and side-info MCS), the envelope's rule picks
  its MCS and codec from it. Decoders use the true mean SNR (the receiver measures it).
* Lost image. Med-JSCC: its side-info frame failed; envelope: any codeword failed (both: grey).

Outputs in ``--out``: ``scenario.csv`` (one row per policy, method, image: ``SCENARIO_COLUMNS``),
``scenario_summary.json`` (settings and per policy x method mean/min ROI-PSNR and lost images) and
``plots/scenario_<profile>.png/.pdf`` (ROI-PSNR over pass time per method, lost images marked,
true and used SNR on a second axis; one panel per policy).
"""
from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, MedJSCCError
from . import channel as chan
from . import methods as meth
from .sweep import json_safe

SCENARIO_METHODS = ("medjscc", "medjscc_csi", "digital-envelope")
FEEDBACK_EVERY_S = 32 * 80 / 1.0e6      # one estimate per OFDM frame (32 symbols x 80 samples at 1 Msps)
SCATTER_MODEL = "rayleigh_block1536"
SCENARIO_COLUMNS = ["scenario", "policy", "delay_ms", "method", "index", "image", "pass_t_s", "air_t_s",
                    "elevation_deg", "rician_k_db", "snr_true_db", "snr_fed_db", "snr_used_db", "fed_age_ms",
                    "mcs", "psnr", "roi_psnr", "ms_ssim", "decode_ok", "cbr_total", "model_sha256"]


@dataclass
class ScenarioSpec:
    scenario: str = "leo_pass"            # a radio profile with slow dynamics of a fixed period
    methods: list = field(default_factory=lambda: ["medjscc", "digital-envelope"])
    policies: list = field(default_factory=lambda: ["floor"])
    images: int = 24
    snr_db: float = 10.0                  # the profile's reference SNR (LEO: pass average)
    design_snr_db: float | None = None    # policies' design SNR (default: snr_db)
    delay_ms: float = 30.0
    margin_db: float = 0.0
    image_interval_ms: float = 20.0
    cbr: float = 1.0 / 16.0
    seed: int = 0
    data: str | None = None
    split: str = "test"
    random_codecs: bool = False           # untrained neural codecs (plumbing tests only)

    def validate(self) -> "ScenarioSpec":
        from ..blocks.snr_feedback_policy import POLICIES

        if not self.methods:
            raise InputError("--methods is empty")
        for m in self.methods:
            if m not in SCENARIO_METHODS:
                raise InputError(f"--scenario runs the methods {', '.join(SCENARIO_METHODS)}, not {m!r}")
        if len(set(self.methods)) != len(self.methods):
            raise InputError(f"--methods lists a method twice: {self.methods}")
        if not self.policies or len(set(self.policies)) != len(self.policies):
            raise InputError(f"--feedback-policy needs distinct policies, got {self.policies}")
        for p in self.policies:
            if p not in POLICIES:
                raise InputError(f"--feedback-policy must be among {', '.join(POLICIES)}, got {p!r}")
        if self.images < 1:
            raise InputError(f"--images must be at least 1, got {self.images}")
        for name, v in (("--snr", self.snr_db), ("--feedback-delay-ms", self.delay_ms),
                        ("--image-interval-ms", self.image_interval_ms), ("--cbr", self.cbr)):
            if not math.isfinite(float(v)):
                raise InputError(f"{name} must be finite, got {v}")
        if self.delay_ms < 0:
            raise InputError(f"--feedback-delay-ms must be >= 0, got {self.delay_ms}")
        if self.image_interval_ms <= 0:
            raise InputError(f"--image-interval-ms must be > 0, got {self.image_interval_ms}")
        if not 0 < self.cbr <= 1:
            raise InputError(f"--cbr {self.cbr} is outside (0, 1]")
        dynamics(self.scenario)
        return self


def dynamics(scenario: str):
    """``SatDynamics`` of a radio profile whose slow dynamics repeat (LEO pass, rain fade)."""
    from ..blocks.radio_profiles import get_radio_profile, radio_profile_names
    from ..blocks.sat_channel import SatDynamics

    if scenario not in radio_profile_names():
        raise InputError(f"unknown --scenario {scenario!r}; use a satellite radio profile such as leo_pass")
    prof = get_radio_profile(scenario)
    dyn = SatDynamics(prof) if prof.is_satellite else None
    if dyn is None or not dyn.period_s:
        raise InputError(f"--scenario {scenario!r} has no periodic slow dynamics (a pass or a fade cycle); "
                         f"use leo_pass or geo_link")
    return dyn


@dataclass(frozen=True)
class Timeline:
    """Pass and air times of the images, and the large-scale channel at each time."""

    dyn: object
    snr_db: float
    n_images: int
    interval_s: float

    @property
    def period_s(self) -> float:
        return float(self.dyn.period_s)

    @property
    def time_scale(self) -> float:
        return self.period_s / (self.n_images * self.interval_s)

    def pass_time(self, air_t):
        return np.asarray(air_t, float) * self.time_scale

    def snr_at(self, air_t):
        """Mean SNR (dB) at air time(s) ``air_t``: reference SNR + the profile's large-scale gain."""
        return self.snr_db + self.dyn.gain_db(self.pass_time(air_t))

    def k_at(self, air_t):
        """Rician K (linear; inf without scatter) at air time(s) ``air_t``."""
        a, s = self.dyn.amplitudes(self.pass_time(air_t))
        with np.errstate(divide="ignore"):
            return np.where(s > 0, a ** 2 / np.maximum(s, 1e-300) ** 2, np.inf)

    def slot_start(self, k: int) -> float:
        return k * self.interval_s

    def slot_mid(self, k: int) -> float:
        return (k + 0.5) * self.interval_s


def fed_back_trace(policy, timeline: Timeline, delay_ms: float, design_snr_db: float, margin_db: float = 0.0):
    """-> list per image of (newest usable estimate dB or None, its age s or None, SNR the policy
    picks dB). One estimate per ``FEEDBACK_EVERY_S`` of air time, measured (and reported) at its
    time; the policy holds each ``delay_ms`` before the CAU may use it; image k asks at its slot start."""
    from ..blocks.snr_feedback_policy import make_policy

    pol = make_policy(policy, design_snr_db, margin_db, delay_ms)
    end = timeline.slot_start(timeline.n_images - 1)
    t_meas = np.arange(0.0, end + 1e-12, FEEDBACK_EVERY_S)
    values = timeline.snr_at(t_meas) if t_meas.size else np.zeros(0)
    out, j = [], 0
    for k in range(timeline.n_images):
        now = timeline.slot_start(k)
        while j < t_meas.size and t_meas[j] <= now + 1e-12:
            pol.observe(float(values[j]), float(t_meas[j]), t_meas=float(t_meas[j]))
            j += 1
        used = pol.choose(now)
        usable = pol.usable(now)
        out.append((usable[-1][1] if usable else None, pol.last_age_s, float(used)))
    return out


class PassLink(meth.SymbolLink):
    """The symbol link of one image of the pass: the true mean SNR and Rician K of its slot,
    whatever SNR the method believes (the ``snr_db`` it passes is its CAU's, not the channel's)."""

    name = "symbol"

    def __init__(self, true_snr_db: float, k_lin: float):
        self.kind = SCATTER_MODEL
        self.true_snr_db = float(true_snr_db)
        self.k_lin = float(k_lin)

    def _transmit(self, symbols, seed_words):
        from .. import channel_models as cm
        from .. import snr as snr_mod

        x = np.asarray(symbols, dtype=np.complex128).reshape(-1)
        ss = np.random.SeedSequence(list(seed_words))
        fading_rng, noise_rng = (np.random.default_rng(s) for s in ss.spawn(2))
        if math.isinf(self.k_lin):
            h = np.ones(x.size, np.complex128)
        else:
            scatter = cm.gains(cm.MODELS[SCATTER_MODEL], x.size, fading_rng)
            h = math.sqrt(self.k_lin / (self.k_lin + 1)) + math.sqrt(1 / (self.k_lin + 1)) * scatter
        n0 = snr_mod.noise_variance(self.true_snr_db)
        pairs = noise_rng.standard_normal((x.size, 2))    # (n, 2): a longer draw extends a shorter one
        noise = (pairs[:, 0] + 1j * pairs[:, 1]) * math.sqrt(n0 / 2.0)
        return h * x + noise, h, n0

    def digital(self, symbols, snr_db, seed_words):
        y, h, n0 = self._transmit(symbols, seed_words)
        return y, h, n0, None

    def analog(self, tx, snr_db, seed_words):
        y, h, n0 = self._transmit(tx.symbols, seed_words)
        inv_snr = (n0 / np.maximum(np.abs(h) ** 2, 1e-30)).astype(np.float32)
        return chan.mmse_equalise(y, h, n0).astype(np.complex64), tx.side_info, None, inv_snr

    def capacity(self, snr_db):
        raise MedJSCCError("the pass link has no capacity bound")


def neural_image(model, image, mask, used_snr_db, cbr, link: PassLink, seed_words):
    """Med-JSCC on the pass: encoded (payload and side-info MCS) for ``used_snr_db``, sent at the
    link's true SNR, decoded at the true SNR (what the receiver measures). -> (recon, ok, cbr_total)."""
    from .envelope import send_side_info
    from .source import grey_image

    try:
        enc = meth.neural_encode(model.codec, image, mask, used_snr_db, cbr, link)
    except meth.SideInfoDoesNotFit:
        return grey_image(image.shape), False, meth.n_symbols(cbr, image.shape) / float(image.size)
    rx, _, _, inv_snr = link.analog(meth.Transmission(enc.symbols, enc.side_info), used_snr_db, seed_words)
    side_info, n_side = send_side_info(enc.side_info, used_snr_db, link, seed_words)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # codec warns when it falls back to grey
        recon = model.codec.decode(rx, side_info, enc.shape, snr_db=link.true_snr_db, inv_snr=inv_snr)
    return recon, side_info is not None, (enc.symbols.size + n_side) / float(image.size)


@dataclass
class ScenarioResult:
    out: Path
    rows: list
    summary: list
    settings: dict
    seconds: float = 0.0


def run_scenario(spec: ScenarioSpec, out, plots: bool = True, progress: bool = False) -> ScenarioResult:
    from .envelope import envelope_point
    from .sweep import _dataset, resolve_data_root

    t0 = time.time()
    spec.validate()
    design = spec.snr_db if spec.design_snr_db is None else float(spec.design_snr_db)
    root = resolve_data_root(spec.data, spec.split)
    ds = _dataset(str(root), None)
    if len(ds) == 0:
        raise InputError(f"no images in {root}")
    models = {m: meth.neural_model(m, spec.random_codecs) for m in spec.methods if m in meth.NEURAL}
    tl = Timeline(dynamics(spec.scenario), float(spec.snr_db), int(spec.images), spec.image_interval_ms / 1000.0)
    traces = {p: fed_back_trace(p, tl, spec.delay_ms, design, spec.margin_db) for p in spec.policies}
    rows = []
    for k in range(spec.images):
        item = ds[k % len(ds)]
        image = np.ascontiguousarray(item["image"], dtype=np.uint8)
        mask = None if item["mask"] is None else np.asarray(item["mask"], bool)
        mid = tl.slot_mid(k)
        true_snr, k_lin = float(tl.snr_at(mid)[0]), float(tl.k_at(mid)[0])
        link = PassLink(true_snr, k_lin)
        # the draws of image k: the same for every method and policy
        seed_words = chan.channel_seed(spec.seed, f"{spec.scenario}/{item['name']}", 0.0, k)
        elev = tl.dyn.elevation_deg(tl.pass_time(mid))
        base = dict(scenario=spec.scenario, delay_ms=float(spec.delay_ms), index=k, image=item["name"],
                    pass_t_s=float(tl.pass_time(mid)), air_t_s=mid,
                    elevation_deg=math.nan if elev is None else float(np.atleast_1d(elev)[0]),
                    rician_k_db=10 * math.log10(k_lin) if 0 < k_lin < math.inf else math.inf,
                    snr_true_db=true_snr)
        for policy in spec.policies:
            fed, age, used = traces[policy][k]
            for m in spec.methods:
                if m in models:
                    recon, ok, cbr_total = neural_image(models[m], image, mask, used, spec.cbr, link, seed_words)
                    mcs, sha = "", models[m].sha256
                else:
                    n_sym = meth.n_symbols(spec.cbr, image.shape)
                    recon, ok, _, mcs = envelope_point(image, mask, used, n_sym, link, seed_words)
                    cbr_total, sha = n_sym / float(image.size), ""
                met = meth._metrics(image, recon, mask)
                rows.append(dict(base, policy=policy, method=m, snr_fed_db=math.nan if fed is None else float(fed),
                                 snr_used_db=used, fed_age_ms=math.nan if age is None else 1000.0 * age,
                                 mcs=mcs, psnr=met["psnr"], roi_psnr=met["roi_psnr"], ms_ssim=met["ms_ssim"],
                                 decode_ok=bool(ok), cbr_total=cbr_total, model_sha256=sha))
        if progress:
            print(f"  image {k + 1}/{spec.images} (pass t={base['pass_t_s']:.0f} s, {true_snr:.1f} dB)", flush=True)
    settings = dict(scenario=spec.scenario, methods=list(spec.methods), policies=list(spec.policies),
                    images=spec.images, snr_db=spec.snr_db, design_snr_db=design, delay_ms=spec.delay_ms,
                    margin_db=spec.margin_db, image_interval_ms=spec.image_interval_ms, cbr=spec.cbr,
                    seed=spec.seed, data=str(root), link="symbol", scatter=SCATTER_MODEL,
                    feedback_every_ms=1000 * FEEDBACK_EVERY_S, period_s=tl.period_s, time_scale=tl.time_scale,
                    random_init_codecs=bool(spec.random_codecs))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "scenario.csv", rows)
    summary = summarise(rows)
    (out / "scenario_summary.json").write_text(json.dumps(json_safe({"settings": settings, "summary": summary}),
                                                          indent=1) + "\n")
    if plots:
        plot_scenario(out / "plots" / f"scenario_{spec.scenario}", rows, settings)
    return ScenarioResult(out, rows, summary, settings, time.time() - t0)


def write_csv(path: Path, rows: list) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SCENARIO_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in SCENARIO_COLUMNS})


def summarise(rows: list) -> list[dict]:
    """Per (policy, method): mean / min ROI-PSNR over the pass (a lost image counts as grey), lost images."""
    out = []
    keys = list(dict.fromkeys((r["policy"], r["method"]) for r in rows))
    for policy, m in keys:
        rs = [r for r in rows if r["policy"] == policy and r["method"] == m]
        roi = np.array([r["roi_psnr"] for r in rs], float)
        out.append(dict(policy=policy, method=m, delay_ms=rs[0]["delay_ms"], n=len(rs),
                        roi_psnr=float(np.nanmean(roi)), roi_psnr_min=float(np.nanmin(roi)),
                        psnr=float(np.nanmean([r["psnr"] for r in rs])),
                        images_lost=int(sum(not r["decode_ok"] for r in rs)),
                        cau_err_db=float(np.mean([r["snr_used_db"] - r["snr_true_db"] for r in rs]))))
    return out


def json_line(obj: dict) -> str:
    return json.dumps(json_safe(obj))


def plot_scenario(stem: Path, rows: list, settings: dict) -> list[Path]:
    from .plots import _plt, _save

    plt = _plt()
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(policies), 1, figsize=(7, 3.2 * len(policies)), squeeze=False)
    colours = {"medjscc": "C0", "medjscc_csi": "C2", "digital-envelope": "C1"}
    for ax, policy in zip(axes[:, 0], policies):
        ax2 = ax.twinx()
        for m in methods:
            rs = sorted((r for r in rows if r["policy"] == policy and r["method"] == m), key=lambda r: r["pass_t_s"])
            t = [r["pass_t_s"] for r in rs]
            ax.plot(t, [r["roi_psnr"] for r in rs], marker="o", markersize=3, color=colours.get(m), label=m)
            lost = [r for r in rs if not r["decode_ok"]]
            if lost:
                ax.plot([r["pass_t_s"] for r in lost], [r["roi_psnr"] for r in lost], linestyle="none", marker="x",
                        markersize=9, color=colours.get(m), label=f"{m}: lost ({len(lost)})")
        rs = sorted((r for r in rows if r["policy"] == policy and r["method"] == methods[0]),
                    key=lambda r: r["pass_t_s"])
        t = [r["pass_t_s"] for r in rs]
        ax2.plot(t, [r["snr_true_db"] for r in rs], color="grey", linewidth=1, label="true SNR")
        ax2.plot(t, [r["snr_used_db"] for r in rs], color="grey", linestyle="--", linewidth=1,
                 label="SNR used (fed back)")
        ax2.set_ylabel("SNR (dB)")
        ax.set_ylabel("ROI-PSNR (dB)")
        ax.set_title(f"{settings['scenario']}: policy {policy}, feedback delay {settings['delay_ms']:g} ms, "
                     f"CBR {settings['cbr']:.4g}", fontsize=9)
        ax.grid(alpha=0.3)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=6, loc="lower center", ncol=3, framealpha=0.7)
    axes[-1, 0].set_xlabel(f"pass time (s); slow dynamics x{settings['time_scale']:.0f} vs air time")
    return _save(fig, stem)
