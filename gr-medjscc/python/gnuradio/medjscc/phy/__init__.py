"""gnuradio.medjscc.phy -- analog OFDM PHY for JSCC symbols (pure numpy/scipy, no GNU Radio).

Public API::

    from gnuradio.medjscc.phy import (OfdmParams, FrameHeader, OfdmTransmitter, OfdmReceiver,
                                      RxFrame, frame_image, ImageAssembler, overhead_symbols,
                                      apply_iq_channel, symbol_channel)
"""
from .params import OfdmParams
from .header import FrameHeader
from .ofdm import OfdmTransmitter, OfdmReceiver, RxFrame
from .framing import frame_image, ImageAssembler, AssembledImage, overhead_symbols
from .channels import apply_iq_channel, PRESETS, multipath_taps
from .symbol_channel import symbol_channel, SymbolChannelOutput

__all__ = ["OfdmParams", "FrameHeader", "OfdmTransmitter", "OfdmReceiver", "RxFrame", "frame_image",
           "ImageAssembler", "AssembledImage", "overhead_symbols", "apply_iq_channel", "PRESETS",
           "multipath_taps", "symbol_channel", "SymbolChannelOutput"]
