"""gnuradio.medjscc.codec: ROI-aware deep JSCC codec (pure torch/numpy, no GNU Radio).

    from gnuradio.medjscc.codec import load_codec
    codec = load_codec("medjscc")
    enc = codec.encode(image_u8, mask, snr_db=10, cbr=1/16)
    img = codec.decode(rx_symbols, enc.side_info, enc.shape, snr_db=10, erased=None)
"""
# Note: OMP_WAIT_POLICY=PASSIVE speeds up 2-thread inference on a loaded CPU (bench/codec_speed.py
# sets it), but setting it process-wide stalled the two-process ZMQ link (tests/qa_zmq_link.py)
# with OMP_NUM_THREADS=1, so the package leaves OpenMP's policy to the user.
from . import channel
from .api import MODEL_NAMES, Codec, EncodedImage, build_codec, load_codec, read_checkpoint, save_weights
from .channel import apply_channel, numpy_channel
from .layers import SNR_MAX_DB, SNR_MIN_DB
from .models import ModelConfig
from .sideinfo import SIDE_INFO_BITS_PER_SYMBOL

__all__ = ["MODEL_NAMES", "Codec", "EncodedImage", "build_codec", "load_codec", "read_checkpoint",
           "save_weights", "channel", "apply_channel", "numpy_channel", "ModelConfig",
           "SIDE_INFO_BITS_PER_SYMBOL", "SNR_MIN_DB", "SNR_MAX_DB"]
