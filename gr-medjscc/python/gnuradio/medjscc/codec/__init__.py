"""gnuradio.medjscc.codec: ROI-aware deep JSCC codec (pure torch/numpy, no GNU Radio).

    from gnuradio.medjscc.codec import load_codec
    codec = load_codec("medjscc")
    enc = codec.encode(image_u8, mask, snr_db=10, cbr=1/16)
    img = codec.decode(rx_symbols, enc.side_info, enc.shape, snr_db=10, erased=None)
"""
import os

# GNU OpenMP busy-waits by default; on a shared CPU (GNU Radio threads, other jobs) that makes a
# 2-thread encode+decode ~20x slower. Only effective if torch is not imported yet; never overrides.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import channel  # noqa: E402
from .api import MODEL_NAMES, Codec, EncodedImage, build_codec, load_codec, read_checkpoint, save_weights  # noqa: E402
from .channel import apply_channel, numpy_channel  # noqa: E402
from .layers import SNR_MAX_DB, SNR_MIN_DB  # noqa: E402
from .models import ModelConfig  # noqa: E402
from .sideinfo import SIDE_INFO_BITS_PER_SYMBOL  # noqa: E402

__all__ = ["MODEL_NAMES", "Codec", "EncodedImage", "build_codec", "load_codec", "read_checkpoint",
           "save_weights", "channel", "apply_channel", "numpy_channel", "ModelConfig",
           "SIDE_INFO_BITS_PER_SYMBOL", "SNR_MIN_DB", "SNR_MAX_DB"]
