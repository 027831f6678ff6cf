"""Lung ROI segmenters behind one interface: ``segment(image, prompt=None) -> bool HxW``.

Backends (``get_segmenter(backend, **kw)``):

* ``auto`` (default; no clicks): the coarse U-Net (``models/roi_coarse.pt``) proposes one box
  per connected lung region; LiteMedSAM (or SAM 2 when a checkpoint is configured) refines each
  box; the masks are merged (``fusion``: ``mean`` = average of the refiner's and the coarse
  model's lung probabilities inside the boxes (default), ``sam`` = the refined masks alone,
  ``coarse`` = the coarse regions alone, no refiner call). When the coarse model is unsure (little confident lung area, odd
  number/size of regions) the threshold-and-morphology finder supplies the boxes instead (and
  the refined masks are used alone). With ``sam`` fusion, a refined mask that disagrees strongly
  with its proposal region is replaced by the region.
* ``litemedsam``: LiteMedSAM with user box prompts (no prompt: the whole-image box).
* ``sam2``: SAM 2 / MedSAM-2 with box and/or point prompts, best of the multimask outputs.
* ``oracle``: the data set's ground-truth mask (evaluation only).

Documented fallbacks (never an exception): a blank (constant) image, or no lung found (including
"coarse model unsure and the threshold finder found nothing", e.g. on noise), gives a whole-image
ROI (everything protected) and a ``RoiFallbackWarning``. ``segmenter.last_info``
describes what happened in the last call (boxes, source, fallback reason).
"""
from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import numpy as np

from ..errors import InputError, MedJSCCError, WeightsError
from ..torchthreads import torch_threads
from .imageutil import (as_gray_float, box_mask, box_of, clean_mask, dice, is_blank, regions, warn_fallback,
                        whole_image)
from .prompts import Prompt

log = logging.getLogger(__name__)

BACKENDS = ("auto", "litemedsam", "sam2", "oracle")


class Segmenter:
    """Base class: ``segment(image, prompt=None) -> bool HxW``.

    ``threads`` (set by ``get_segmenter``): torch CPU threads while ``segment`` runs; the
    process's previous count is restored after each call (None: leave it alone)."""

    backend = "base"
    threads: int | None = None

    def __init__(self):
        self.last_info: dict = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        inner = cls.__dict__.get("segment")
        if inner is None:
            return

        @functools.wraps(inner)
        def segment(self, *args, **kwargs):
            with torch_threads(self.threads):
                return inner(self, *args, **kwargs)

        cls.segment = segment
        cls.__call__ = segment

    def segment(self, image, prompt=None) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def __call__(self, image, prompt=None, **kwargs) -> np.ndarray:
        return self.segment(image, prompt, **kwargs)

    def _fallback(self, shape, reason: str) -> np.ndarray:
        warn_fallback(f"roi[{self.backend}]: {reason}; using the whole image as ROI")
        self.last_info.update(source="whole-image", fallback=reason)
        return whole_image(shape)


class PromptedSegmenter(Segmenter):
    """LiteMedSAM or SAM 2 driven by explicit prompts."""

    def __init__(self, model, backend: str, points_ok: bool):
        super().__init__()
        self.model = model
        self.backend = backend
        self.points_ok = points_ok

    def segment(self, image, prompt=None) -> np.ndarray:
        t0 = time.perf_counter()
        img = as_gray_float(image)
        p = Prompt.coerce(prompt)
        p = p.validated(img.shape) if p is not None else None
        self.last_info = {"backend": self.backend, "source": "prompt"}
        if p is not None and len(p.points) and not self.points_ok:
            raise InputError(f"backend {self.backend} takes box prompts only; use --backend sam2 for points")
        if is_blank(img):
            return self._fallback(img.shape, "blank (constant) image")
        if p is None or p.empty:
            h, w = img.shape
            log.info("roi[%s]: no prompt given, using the whole-image box (try --backend auto)", self.backend)
            p = Prompt(boxes=[[0, 0, w - 1, h - 1]])
        self.model.embed(img)
        mask = self.predict_prompt(p, img.shape)
        self.last_info.update(boxes=p.boxes.tolist(), points=p.points.tolist(),
                              seconds=time.perf_counter() - t0)
        if not mask.any():
            return self._fallback(img.shape, "the model found nothing inside the prompt")
        return mask

    def predict_prompt(self, p: Prompt, shape) -> np.ndarray:
        mask = np.zeros(shape, bool)
        if not self.points_ok:
            masks, _ = self.model.predict_boxes(p.boxes)
            for m, b in zip(masks, p.boxes):
                mask |= m & box_mask(b, shape)   # a box prompt claims nothing outside its box
            return mask
        for box, pts in p.groups():
            m, _ = self.model.predict(box, pts)
            mask |= m & box_mask(box, shape) if box is not None else m
        return mask


class AutoSegmenter(Segmenter):
    """Coarse-model self-prompting + SAM-family refinement (see the module docstring)."""

    backend = "auto"

    FUSIONS = ("mean", "sam", "coarse")

    def __init__(self, refiner, coarse, box_margin: float = 0.02, min_region: float = 0.01,
                 max_regions: int = 3, min_confident: float = 0.03, min_certainty: float = 0.75,
                 min_agreement: float = 0.8, fusion: str = "mean"):
        super().__init__()
        if fusion not in self.FUSIONS:
            raise InputError(f"auto fusion must be one of {self.FUSIONS}, got {fusion!r}")
        self.fusion = fusion                # how the refined and the coarse masks are merged
        self.refiner = refiner              # LiteMedSAM or Sam2Model (embed + predict_boxes)
        self.coarse = coarse                # CoarseLungModel
        self.box_margin = box_margin        # box grown by this fraction of the image size
        self.min_region = min_region        # regions smaller than this image fraction are ignored
        self.max_regions = max_regions
        self.min_confident = min_confident  # confident lung area (p > 0.9) below this fraction -> unsure
        self.min_certainty = min_certainty  # mean |2p - 1| over the candidate area below this -> unsure
        self.min_agreement = min_agreement  # Dice(refined, proposal) below this -> keep the proposal
        self.coarse_prob = None

    def propose(self, img: np.ndarray) -> tuple[np.ndarray, str, dict]:
        """Lung proposal mask (bool HxW, maybe empty), its source, and diagnostics."""
        from .fallback import threshold_lungs

        h, w = img.shape
        prob = self.coarse.prob(img)
        self.coarse_prob = prob
        min_area = int(self.min_region * h * w)
        proposal = clean_mask(prob > 0.5, min_area=min_area)
        candidate = prob > 0.1
        certainty = float(np.abs(2 * prob[candidate] - 1).mean()) if candidate.any() else 0.0
        confident = float((prob > 0.9).mean())
        n_regions = len(regions(proposal, min_area=min_area))
        diag = {"coarse_certainty": certainty, "coarse_confident_fraction": confident, "coarse_regions": n_regions}
        unsure = (confident < self.min_confident or certainty < self.min_certainty
                  or not (1 <= n_regions <= self.max_regions) or proposal.mean() > 0.8)
        if not unsure:
            return proposal, "coarse", diag
        log.info("roi[auto]: coarse model unsure (%s); trying threshold+morphology", diag)
        thr = threshold_lungs(img, max_regions=2)
        if thr.any():
            return thr, "threshold", diag
        # an unsure proposal would shrink the protected area on a guess: protect everything instead
        return np.zeros_like(proposal), "none", {**diag, "coarse_unsure": True}

    def segment(self, image, prompt=None) -> np.ndarray:
        t0 = time.perf_counter()
        img = as_gray_float(image)
        h, w = img.shape
        p = Prompt.coerce(prompt)
        p = p.validated(img.shape) if p is not None else None
        self.last_info = {"backend": "auto"}
        if is_blank(img):
            return self._fallback(img.shape, "blank (constant) image")
        if p is not None and not p.empty:   # explicit prompts win over self-prompting
            seg = PromptedSegmenter(self.refiner, "auto", points_ok=hasattr(self.refiner, "predict"))
            out = seg.segment(img, p)
            self.last_info = {**seg.last_info, "backend": "auto"}
            return out
        proposal, source, diag = self.propose(img)
        self.last_info.update(source=source, **diag)
        if not proposal.any():
            why = " (coarse model unsure, threshold found nothing)" if diag.get("coarse_unsure") else ""
            return self._fallback(img.shape, "no lung region found" + why)
        min_area = int(self.min_region * h * w)
        margin = self.box_margin * max(h, w)
        parts = regions(proposal, min_area=min_area, max_regions=self.max_regions)
        boxes = np.stack([box_of(r, margin) for r in parts]) if parts else np.zeros((0, 4), np.float32)
        fusion = self.fusion if source == "coarse" else "sam"   # no coarse probability to trust
        self.last_info.update(boxes=boxes.tolist(), fusion=fusion)
        if fusion == "coarse":
            refined = np.logical_or.reduce(parts) if parts else proposal
        else:
            self.refiner.embed(img)
            logits, scores = self.refiner.predict_boxes(boxes, return_logits=True)
            self.last_info["refine_scores"] = scores.tolist()
            in_box = [box_mask(b, (h, w)) for b in boxes]
            if fusion == "mean":
                # average the refiner's and the coarse model's lung probabilities inside the boxes
                sam_prob = np.zeros((h, w), np.float32)
                for lo, bm in zip(logits, in_box):
                    sam_prob = np.maximum(sam_prob, np.where(bm, 1 / (1 + np.exp(-np.clip(lo, -30, 30))), 0))
                prob = self.coarse_prob if self.coarse_prob is not None else proposal.astype(np.float32)
                refined = clean_mask((sam_prob + prob) / 2 >= 0.5, min_area=min_area)
            else:
                refined = np.zeros((h, w), bool)
                for lo, bm, part in zip(logits, in_box, parts):
                    m = clean_mask((lo > 0) & bm, min_area=min_area)
                    # a refinement that wanders far from its proposal region is not trusted
                    refined |= m if dice(m, part) >= self.min_agreement else part
        self.last_info["seconds"] = time.perf_counter() - t0
        if not refined.any():
            return self._fallback(img.shape, "refinement produced an empty mask")
        return refined


class OracleSegmenter(Segmenter):
    """Ground truth: ``segment(image, prompt=None, *, gt_mask=None, source_path=None)``.

    Without ``gt_mask`` the mask is found next to ``source_path`` (``.../images/x.png`` ->
    ``.../masks/x.png``) or, failing that, by matching the image pixels against the data set
    under ``root`` (default: the DRR set).
    """

    backend = "oracle"

    def __init__(self, root: str | Path | None = None):
        super().__init__()
        self.root = Path(root) if root else None
        self._index: dict | None = None

    def _lookup(self, image: np.ndarray) -> Path | None:
        import hashlib

        from ..data import read_image
        from ..paths import default_data_dir

        if self._index is None:
            root = self.root or default_data_dir()
            self._index = {}
            for img_path in sorted(root.glob("*/images/*.png")):
                m = img_path.parent.parent / "masks" / img_path.name
                if m.is_file():
                    a = read_image(img_path)
                    self._index[hashlib.sha1(a.tobytes() + str(a.shape).encode()).hexdigest()] = m
        a = np.asarray(image)
        return self._index.get(hashlib.sha1(a.tobytes() + str(a.shape).encode()).hexdigest())

    def segment(self, image, prompt=None, *, gt_mask=None, source_path=None) -> np.ndarray:
        from ..data import read_mask

        a = np.asarray(image)
        self.last_info = {"backend": "oracle"}
        if gt_mask is None:
            path = None
            if source_path is not None:
                sp = Path(source_path)
                cand = sp.parent.parent / "masks" / (sp.stem + ".png")
                path = cand if cand.is_file() else None
            if path is None and a.dtype == np.uint8:
                path = self._lookup(a)
            if path is None:
                raise MedJSCCError("oracle: no ground-truth mask for this image (pass an image from the DRR "
                                   "set, its source path, or gt_mask=)")
            gt_mask = read_mask(path)
            self.last_info["mask_path"] = str(path)
        m = np.asarray(gt_mask, bool)
        if m.shape != a.shape[:2]:
            raise InputError(f"oracle: ground-truth mask shape {m.shape} differs from the image {a.shape[:2]}")
        self.last_info["source"] = "ground-truth"
        if not m.any():
            return self._fallback(m.shape, "the ground-truth mask is empty")
        return m


def get_segmenter(backend: str = "auto", *, sam2_checkpoint=None, sam2_config=None, coarse_path=None,
                  litemedsam_checkpoint=None, litemedsam_adapter="default", device: str = "cpu", threads: int | None = None,
                  data_root=None, allow_random_sam2: bool = False, **auto_options) -> Segmenter:
    """Build a segmenter. ``auto`` refines with SAM 2 when ``sam2_checkpoint`` is set, otherwise
    with LiteMedSAM (plus the DRR read-out adapter ``models/roi_litemedsam_drr.pt`` when present;
    ``litemedsam_adapter="none"`` for the stock model). ``sam2`` needs a checkpoint (``allow_random_sam2=True``: random weights, tests)."""
    b = (backend or "auto").lower()
    if b not in BACKENDS:
        raise InputError(f"unknown ROI backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    # the thread count applies while this segmenter runs (segment/__call__), then is put back
    with torch_threads(threads):
        seg = _build(b, sam2_checkpoint, sam2_config, coarse_path, litemedsam_checkpoint,
                     litemedsam_adapter, device, data_root, allow_random_sam2, auto_options)
    seg.threads = int(threads) if threads else None
    return seg


def _build(b, sam2_checkpoint, sam2_config, coarse_path, litemedsam_checkpoint, litemedsam_adapter,
           device, data_root, allow_random_sam2, auto_options) -> Segmenter:
    if b == "oracle":
        return OracleSegmenter(data_root)
    if b == "sam2" or (b == "auto" and sam2_checkpoint):
        from .sam2_backend import Sam2Model

        if not sam2_checkpoint and not allow_random_sam2:
            raise WeightsError("backend sam2 needs a checkpoint: pass --sam2-checkpoint PATH (SAM 2.1 or "
                               "MedSAM-2 .pt) and, if it is not hiera-tiny, --sam2-config NAME")
        model = Sam2Model(sam2_checkpoint, sam2_config, device=device)
    else:
        from .litemedsam import LiteMedSAM

        model = LiteMedSAM(litemedsam_checkpoint, device=device, adapter=litemedsam_adapter)
    if b == "auto":
        from .coarse import load_coarse

        return AutoSegmenter(model, load_coarse(coarse_path), **auto_options)
    return PromptedSegmenter(model, b, points_ok=(b == "sam2"))
