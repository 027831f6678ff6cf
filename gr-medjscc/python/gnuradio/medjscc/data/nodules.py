"""Simulated lung nodules in the DRRs: signal-present / signal-absent pairs of the same view.

A nodule is an ellipsoid added to the CT's linear attenuation *inside the lung* (its centre is at
least its largest semi-axis + ``LUNG_MARGIN_MM`` from the lung boundary of the 3-D lobe labels)
before projection. It is a continuous object, not voxelised: its line integral along every ray
of the cone-beam projector (``drr.ray_geometry``) is computed exactly and added to the soft-tissue
line integral, so a 4 mm nodule is not a 2 mm-voxel staircase. The detector model then runs as
for any DRR (``drr.render``): quantum noise, blur, unsharp mask, window, gamma, 8 bits.

Units and profile
-----------------
* ``diameter_mm``: equivalent-sphere diameter (geometric mean of the three axes), drawn uniformly
  in ``NoduleSpec.diameter_mm``; the axes differ by up to ``exp(+-elongation)`` and are randomly
  oriented.
* ``contrast_hu``: attenuation added at the nodule centre, in Hounsfield units relative to the
  lung around it (water = ``drr.MU_WATER`` per mm = 1000 HU). The profile is
  ``contrast * (1 - q^2)^nu`` (q = normalised ellipsoid radius): ``nu = 0.5`` for solid nodules
  (nearly sharp edge), ``nu = 2`` for ground-glass ones (fuzzy edge, lower contrast).
* ``centre_px``: (row, col) of the nodule centre projected on the detector, in pixels of the
  image (row 0 = top); ``radius_px``: equivalent radius times the geometric magnification.

Determinism: pair ``k`` of split ``s`` depends only on (seed, s, k) (view, nodule, and the two
independent quantum-noise draws), so a set with more pairs is a superset of a smaller one and a
sweep can render only the test pairs it needs. Views follow ``drr.sample_params`` and therefore
the same view-angle split as the plain DRR set.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, MedJSCCError
from . import drr

log = logging.getLogger(__name__)

NODULE_VERSION = 1
LUNG_MARGIN_MM = 2.0        # nodule surface at least this far inside the 3-D lung labels
EDGE_MARGIN_PX = 8          # projected centre at least this far from the image border
PROFILE_NU = {"solid": 0.5, "ground_glass": 2.0}
SPLIT_NO = {s: i for i, s in enumerate(drr.SPLITS)}
DEFAULT_NODULE_COUNTS = {"train": 120, "val": 20, "test": 60}
MAX_PLACEMENT_TRIES = 200


@dataclass
class NoduleSpec:
    """The population of inserted nodules (recorded in nodules.json).

    The contrasts are calibrated, not physiological: with them the channelized Hotelling observer
    of ``evaluation.observer`` reaches AUC 0.908 [0.866, 0.948] on the first 80 original
    (untransmitted) 256x256 test-split pairs, seed 0 (``python bench/nodule_calibration.py
    --pairs 80``: solid/GGO 800/320 HU -> 0.774, 1200/480 -> 0.839, 1600/640 -> 0.886,
    2000/800 -> 0.908, 2500/1000 -> 0.932). Real solid nodules are about +850 HU above lung and
    ground-glass ones +250 HU; at such contrasts the projected anatomy (ribs, vessels, heart
    border) limits this observer to AUC ~0.77, so the contrast is the task-difficulty knob that
    makes the task neither trivial nor hopeless."""
    diameter_mm: tuple = (5.0, 15.0)   # equivalent-sphere diameter range (uniform)
    solid_fraction: float = 0.5        # probability that a nodule is solid (else ground-glass)
    solid_hu: float = 2000.0           # centre contrast of solid nodules vs lung, HU (calibrated)
    ground_glass_hu: float = 800.0     # centre contrast of ground-glass nodules vs lung, HU (0.4 x solid)
    elongation: float = 0.2            # axis ratios within exp(+-elongation)

    def validate(self) -> "NoduleSpec":
        lo, hi = (float(v) for v in self.diameter_mm)
        if not (1.0 <= lo <= hi <= 40.0):
            raise InputError(f"nodule diameter range {lo:g}:{hi:g} mm must satisfy 1 <= min <= max <= 40")
        if not (0.0 <= self.solid_fraction <= 1.0):
            raise InputError(f"nodule solid fraction {self.solid_fraction} is outside [0, 1]")
        for name in ("solid_hu", "ground_glass_hu"):
            v = float(getattr(self, name))
            if not (0.0 <= v <= 3000.0):
                raise InputError(f"nodule {name} {v:g} HU is outside [0, 3000]")
        if not (0.0 <= self.elongation <= 1.0):
            raise InputError(f"nodule elongation {self.elongation} is outside [0, 1]")
        self.diameter_mm = (lo, hi)
        return self

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class Nodule:
    kind: str                    # "solid" | "ground_glass"
    contrast_hu: float
    diameter_mm: float           # equivalent-sphere diameter
    semi_axes_mm: list           # (3,) along the columns of ``axes``
    axes: list                   # (3, 3) rotation, patient frame
    centre_mm: list              # (x, y, z) patient frame (x: patient left, y: anterior, z: superior)
    centre_px: list = field(default_factory=list)   # (row, col) on the image
    radius_px: float = 0.0

    @property
    def nu(self) -> float:
        return PROFILE_NU[self.kind]


# ----------------------------------------------------------------------------- geometry
_DT_MEMO: dict = {}


def _lung_depth_mm(volume: drr.Volume) -> np.ndarray:
    """Distance (mm) of every voxel to the outside of the lung labels (0 outside)."""
    if volume.digest not in _DT_MEMO:
        from scipy import ndimage as ndi

        _DT_MEMO[volume.digest] = ndi.distance_transform_edt(volume.channels[2] > 0.5) * volume.voxel_mm
    return _DT_MEMO[volume.digest]


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def draw_nodule(volume: drr.Volume, spec: NoduleSpec, rng: np.random.Generator) -> Nodule:
    """A random nodule whose whole body lies inside the 3-D lung labels (no projection check)."""
    kind = "solid" if rng.uniform() < spec.solid_fraction else "ground_glass"
    diameter = float(rng.uniform(*spec.diameter_mm))
    e = rng.uniform(-spec.elongation, spec.elongation, 3)
    semi = diameter / 2.0 * np.exp(e - e.mean())          # geometric mean = diameter / 2
    axes = _random_rotation(rng)
    depth = _lung_depth_mm(volume)
    ok = np.argwhere(depth >= semi.max() + LUNG_MARGIN_MM)
    if ok.size == 0:
        raise MedJSCCError(f"no lung voxel deep enough for a {diameter:.1f} mm nodule")
    z, y, x = ok[int(rng.integers(len(ok)))] + rng.uniform(-0.5, 0.5, 3)
    nz, ny, nx = volume.channels.shape[1:]
    v = volume.voxel_mm
    centre = np.array([(x + 0.5 - nx / 2) * v, (y + 0.5 - ny / 2) * v, (z + 0.5 - nz / 2) * v])
    contrast = spec.solid_hu if kind == "solid" else spec.ground_glass_hu
    return Nodule(kind=kind, contrast_hu=float(contrast), diameter_mm=round(diameter, 4),
                  semi_axes_mm=[float(s) for s in semi], axes=axes.tolist(), centre_mm=centre.tolist())


def project_point(geom: dict, params: drr.DrrParams, size: int, point_mm) -> tuple[float, float, float]:
    """(row, col, magnification) of a patient-frame point on the detector of ``geom``."""
    lab = geom["rot"] @ np.asarray(point_mm, float)
    src = geom["src_lab"]
    mag = (geom["y_det"] - geom["y_src"]) / (lab[1] - geom["y_src"])
    hit = src + mag * (lab - src)
    col = (hit[0] - params.shift_x_mm) / geom["pix_mm"] + size / 2 - 0.5
    row = -(hit[2] - params.shift_z_mm) / geom["pix_mm"] + size / 2 - 0.5
    return float(row), float(col), float(mag)


def line_integral(geom: dict, nodule: Nodule) -> np.ndarray:
    """Exact line integral (mu * mm) of the nodule along every ray of ``geom``: (size, size)."""
    from scipy.special import beta

    a_mat = np.asarray(nodule.axes) * np.asarray(nodule.semi_axes_mm)[None, :]   # x = c + A q
    a_inv = np.linalg.inv(a_mat)
    src = geom["src"]
    direc = geom["det"] - src                                   # (H, W, 3), t in [0, 1]
    q0 = a_inv @ (src - np.asarray(nodule.centre_mm))           # (3,)
    w = direc @ a_inv.T                                         # (H, W, 3)
    ww = np.einsum("hwk,hwk->hw", w, w)
    qw = w @ q0
    d2 = q0 @ q0 - qw ** 2 / ww                                 # squared normalised miss distance
    inside = np.clip(1.0 - d2, 0.0, None)
    nu = nodule.nu
    length = np.linalg.norm(direc, axis=-1)
    mu0 = drr.MU_WATER * nodule.contrast_hu / 1000.0
    return mu0 * beta(0.5, nu + 1.0) * inside ** (nu + 0.5) * length / np.sqrt(ww)


# ----------------------------------------------------------------------------- one pair
def pair_rngs(seed: int, split: str, k: int):
    """(view, nodule, absent-noise, present-noise) generators of pair ``k`` of ``split``."""
    base = [int(seed), 7919, SPLIT_NO[split], int(k)]
    return tuple(np.random.default_rng(base + [i]) for i in range(4))


def pair_params(seed: int, split: str, k: int) -> drr.DrrParams:
    return drr.sample_params(pair_rngs(seed, split, k)[0], split)


def prepare_view(volume: drr.Volume, params: drr.DrrParams, size: int) -> dict:
    """The expensive, nodule-independent part of a pair: line integrals, lung mask, ray geometry."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # fixed reduction order (as drr.render)
    try:
        proj = drr.project(volume, params, size)
    finally:
        torch.set_num_threads(threads)
    return {"proj": proj, "mask": drr.lung_mask_from_thickness(proj[2]),
            "geom": drr.ray_geometry(volume, params, size)}


def place_nodule(volume: drr.Volume, view: dict, params: drr.DrrParams, size: int, spec: NoduleSpec,
                 rng: np.random.Generator) -> tuple[Nodule, np.ndarray]:
    """A nodule inside the 3-D lungs whose projected centre lies in the 2-D lung mask, at least
    ``EDGE_MARGIN_PX`` from the border; returns it with its line integral image."""
    geom, mask = view["geom"], view["mask"]
    for _ in range(MAX_PLACEMENT_TRIES):
        nodule = draw_nodule(volume, spec, rng)
        row, col, mag = project_point(geom, params, size, nodule.centre_mm)
        r_i, c_i = int(round(row)), int(round(col))
        if (EDGE_MARGIN_PX <= r_i < size - EDGE_MARGIN_PX and EDGE_MARGIN_PX <= c_i < size - EDGE_MARGIN_PX
                and mask[r_i, c_i]):
            break
    else:
        raise MedJSCCError(f"could not place a nodule inside the projected lungs in {MAX_PLACEMENT_TRIES} tries")
    nodule.centre_px = [round(row, 3), round(col, 3)]
    nodule.radius_px = round(nodule.diameter_mm / 2.0 * mag / geom["pix_mm"], 4)
    return nodule, line_integral(geom, nodule)


def render_view(volume: drr.Volume, params: drr.DrrParams, size: int, view: dict, rng: np.random.Generator,
                added: np.ndarray | None = None) -> np.ndarray:
    """The uint8 DRR of a prepared view, with ``added`` (mu*mm) on its soft-tissue line integrals."""
    proj = view["proj"]
    if added is not None:
        proj = proj.copy()
        proj[0] += added
    return drr.render(volume, params, size, rng, projection=proj)["image"]


def render_pair(volume: drr.Volume, params: drr.DrrParams, size: int, rngs, spec: NoduleSpec) -> dict:
    """dict(present, absent: uint8 images, mask: bool lung mask, nodule: Nodule) of one view."""
    _, nod_rng, absent_rng, present_rng = rngs
    view = prepare_view(volume, params, size)
    nodule, line = place_nodule(volume, view, params, size, spec, nod_rng)
    absent = render_view(volume, params, size, view, absent_rng)
    present = render_view(volume, params, size, view, present_rng, line)
    return {"present": present, "absent": absent, "mask": view["mask"], "nodule": nodule}


# ----------------------------------------------------------------------------- data set
def pair_name(split: str, k: int, present: bool) -> str:
    return f"nod_{split}_{k:05d}_{'present' if present else 'absent'}"


def _write_pair(out: Path, split: str, k: int, size: int, seed: int, spec: NoduleSpec) -> dict:
    from PIL import Image

    volume = drr.load_volume()
    rngs = pair_rngs(seed, split, k)
    params = drr.sample_params(rngs[0], split)
    res = render_pair(volume, params, size, rngs, spec)
    mask = res["mask"].astype(np.uint8) * 255
    for present in (True, False):
        name = pair_name(split, k, present)
        for sub, arr in (("images", res["present"] if present else res["absent"]), ("masks", mask)):
            final = out / split / sub / f"{name}.png"
            tmp = final.with_name(f".{final.stem}.{os.getpid()}.tmp.png")
            Image.fromarray(arr).save(tmp, format="PNG", optimize=False)
            os.replace(tmp, final)
    return {"split": split, "pair": k, "params": asdict(params), "nodule": asdict(res["nodule"]),
            "present": pair_name(split, k, True), "absent": pair_name(split, k, False)}


def _job(args):
    return _write_pair(*args)


def generate_nodule_set(out, counts: dict | None = None, size: int = drr.DEFAULT_SIZE,
                        seed: int = drr.DEFAULT_SEED, spec: NoduleSpec | None = None,
                        workers: int | None = None, progress: bool = True) -> Path:
    """Write ``out/<split>/{images,masks}/nod_<split>_<k>_{present,absent}.png`` and
    ``out/nodules.json`` (spec, views, nodule positions/sizes; written last = set complete)."""
    out = Path(out)
    spec = (spec or NoduleSpec()).validate()
    counts = dict(DEFAULT_NODULE_COUNTS if counts is None else counts)
    if size < 32 or size > 2048:
        raise InputError(f"--size must be within 32..2048, got {size}")
    for split, n in counts.items():
        if split not in drr.SPLITS:
            raise InputError(f"unknown split {split!r}; expected one of {drr.SPLITS}")
        if int(n) < 0:
            raise InputError(f"negative pair count for {split}: {n}")
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "masks").mkdir(parents=True, exist_ok=True)
    drr.load_volume()
    jobs = [(out, split, k, size, seed, spec) for split in drr.SPLITS for k in range(int(counts.get(split, 0)))]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=f"nodule pairs {out}", unit="pair", disable=not progress)
    records = []
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            records.append(_job(job))
            bar.update()
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(workers, initializer=drr._worker_init) as pool:
            for rec in pool.imap(_job, jobs, chunksize=2):
                records.append(rec)
                bar.update()
    bar.close()
    meta = {
        "generator": "gnuradio.medjscc.data.nodules", "nodule_version": NODULE_VERSION,
        "preprocess_version": drr.PREPROCESS_VERSION, "volume_digest": drr.load_volume().digest,
        "seed": int(seed), "size": int(size), "counts": {s: int(counts.get(s, 0)) for s in drr.SPLITS},
        "spec": asdict(spec),
        "units": {"contrast_hu": "centre attenuation added vs surrounding lung, HU (1000 HU = water)",
                  "diameter_mm": "equivalent-sphere diameter", "centre_mm": "patient frame (x left, y anterior, "
                  "z superior), volume centre = 0", "centre_px": "(row, col) on the image",
                  "radius_px": "equivalent radius x magnification / pixel pitch",
                  "profile": "contrast * (1 - q^2)^nu, nu: " + json.dumps(PROFILE_NU)},
        "pairs": records,
    }
    tmp = out / f".nodules.{os.getpid()}.tmp.json"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, out / "nodules.json")
    return out


def read_nodule_set(root) -> dict:
    """nodules.json of a pair set (one-line error when missing or unreadable)."""
    path = Path(root) / "nodules.json"
    if not path.is_file():
        raise InputError(f"no nodules.json in {root}; render it with 'medjscc data drr --nodules --out {root}'")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path} is unreadable ({e}); render the set again") from None


def _set_complete(root: Path, split: str, n_pairs: int, size: int, seed: int, spec: NoduleSpec) -> bool:
    try:
        meta = read_nodule_set(root)
    except InputError:
        return False
    if (meta.get("size") != size or meta.get("seed") != seed or meta.get("spec") != json.loads(json.dumps(asdict(spec)))
            or meta.get("nodule_version") != NODULE_VERSION or meta.get("counts", {}).get(split, 0) < n_pairs):
        return False
    return all((root / split / sub / f"{p[k]}.png").is_file() for p in meta["pairs"] if p["split"] == split
               for k in ("present", "absent") for sub in ("images", "masks"))


def default_root(n_pairs: int, split: str, size: int, seed: int, spec: NoduleSpec) -> Path:
    """Cache folder of an on-demand pair set (next to the default DRR set)."""
    from .. import paths

    return paths.default_data_dir().parent / f"drr_nodules_{split}{n_pairs}_s{size}_seed{seed}_{spec.key()}"


def ensure_nodule_set(n_pairs: int, split: str = "test", size: int = drr.DEFAULT_SIZE,
                      seed: int = drr.DEFAULT_SEED, spec: NoduleSpec | None = None, root=None,
                      workers: int | None = None, progress: bool = False) -> Path:
    """A pair set holding (at least) the first ``n_pairs`` pairs of ``split``: rendered on first
    use (only that split), reused afterwards."""
    spec = (spec or NoduleSpec()).validate()
    if n_pairs < 1:
        raise InputError(f"need at least one nodule pair, got {n_pairs}")
    root = Path(root) if root is not None else default_root(n_pairs, split, size, seed, spec)
    if _set_complete(root, split, n_pairs, size, seed, spec):
        return root
    with drr._DirLock(root):
        if not _set_complete(root, split, n_pairs, size, seed, spec):
            log.info("rendering %d nodule pairs of the %s split in %s", n_pairs, split, root)
            generate_nodule_set(root, {split: n_pairs}, size=size, seed=seed, spec=spec, workers=workers,
                                progress=progress)
    return root


def load_pairs(root, split: str = "test", limit: int | None = None) -> list[dict]:
    """The pairs of ``split`` (nodules.json records), in pair order, at most ``limit``."""
    meta = read_nodule_set(root)
    pairs = sorted((p for p in meta["pairs"] if p["split"] == split), key=lambda p: p["pair"])
    if not pairs:
        raise InputError(f"{root} holds no nodule pairs of the {split} split")
    return pairs[:limit] if limit else pairs
