"""gnuradio.medjscc.phy -- analog OFDM PHY for JSCC symbols (pure numpy/scipy, no GNU Radio).

Public API::

    p = OfdmParams(fft_len=64, cp_len=16, symbols_per_frame=32, ...).validate()
    OfdmParams.from_config(link_config.ofdm)
    frames = frame_image(image_id, symbols, side_info, p)          # [(FrameHeader, payload)]
    iq = OfdmTransmitter(p).modulate(header, payload)             # complex64, one frame
    y = apply_iq_channel(iq, "awgn"|"multipath"|"rayleigh", snr_db, cfo=0.0, delay=0, rng=rng, params=p)
    rx = OfdmReceiver(p, equalizer="mmse"|"zf", min_batch=0)
    rx.drain()                                                    # min_batch > 0: run a partly filled batch now
    for f in rx.process(y) + rx.flush():                          # streaming; RxFrame objects
        asm.add(f)                                                # asm = ImageAssembler(p)
    a = asm.assemble(image_id, n_symbols)                         # symbols, erased, side_info|None
    overhead_symbols(n_payload_symbols, side_info_bytes, p)["total"]   # channel uses incl. PHY overhead
    symbol_channel(symbols, "awgn"|"rayleigh"|"erasure", snr_db, rng)  # no-OFDM fast path

SNR convention: Es/N0 on the data subcarriers (after the receiver FFT, see ``params``) equals
the project SNR (``snr.py``). Frame layout, receiver algorithms: see ``ofdm``.
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
