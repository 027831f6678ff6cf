#!/usr/bin/env python3
"""Generate the GRC 3.10 flowgraphs in this folder (run after changing block parameters).

    python flowgraphs/make_flowgraphs.py

The .grc files are committed; this script only keeps them consistent with each other (same
OFDM layout, same parameter names) instead of hand-editing six YAML files. Every flowgraph
exposes its settings as GRC "parameter" blocks, i.e. command-line options of the generated
Python script (``--image``, ``--snr-db``, ``--iq-address`` ...).
"""
from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
OFDM = {"fft_len": "64", "cp_len": "16", "n_data_carriers": "48", "n_pilot_carriers": "4",
        "symbols_per_frame": "32"}


# Layout (GRC canvas pixels): settings in rows across the top, the signal chain one row below,
# left to right, GUI sinks in a column at the right. tests/test_flowgraph_layout.py checks that
# no block covers another and that the flow runs left to right.
PARAM_X0, PARAM_DX, PARAM_DY, PARAMS_PER_ROW = 280, 250, 150, 7
COL = 420            # horizontal step of the signal chain


class Graph:
    def __init__(self, gid, title, gui=False, description="", interactive=False):
        # interactive: runs until Enter is pressed (ZMQ/USRP ends have no natural end)
        self.gid, self.title, self.gui, self.description = gid, title, gui, description
        self.interactive = interactive
        self.blocks, self.connections = [], []
        self._n_params = 0

    def block(self, inst, block_id, pos, **params):
        """inst: the instance (GRC's "name" key), block_id: the block type (GRC's "id" key)."""
        self.blocks.append({"name": inst, "id": block_id,
                            "parameters": {k: str(v) for k, v in params.items()},
                            "states": {"coordinate": [int(pos[0]), int(pos[1])],
                                       "rotation": 0, "state": "enabled"}})
        return inst

    def _next_setting_pos(self):
        k = self._n_params
        self._n_params += 1
        return PARAM_X0 + PARAM_DX * (k % PARAMS_PER_ROW), 8 + PARAM_DY * (k // PARAMS_PER_ROW)

    @property
    def chain_y(self):
        """Top of the signal chain: below the last row of settings."""
        rows = (self._n_params + PARAMS_PER_ROW - 1) // PARAMS_PER_ROW
        return 8 + PARAM_DY * max(rows, 1) + 100     # room for a taller widget in the last row

    def param(self, name, ptype, value, label=None, short=""):
        return self.block(name, "parameter", self._next_setting_pos(), label=label or name, type=ptype,
                          value=value, short_id=short, hide="none")

    def var(self, name, value):
        return self.block(name, "variable", self._next_setting_pos(), value=value)

    def sample_defaults(self, image_param=True):
        """image_file / mask_file: the user's files, or the shipped sample chest DRR and its lung
        mask when the image parameter is empty (so every flowgraph runs as opened and reports
        ROI-PSNR)."""
        if image_param:
            self.param("image", "str", "", "Image file(s) (empty: shipped sample)")
        self.param("mask", "str", "", "ROI mask PNG (empty: sample's mask)")
        self.block("import_paths", "import", self._next_setting_pos(),
                   imports="from gnuradio.medjscc import paths as medjscc_paths")
        self.var("image_file", "image or medjscc_paths.sample_image()")
        self.var("mask_file", "mask or ('' if image else medjscc_paths.sample_mask())")

    def connect(self, src, sport, dst, dport):
        self.connections.append([src, str(sport), dst, str(dport)])

    def write(self):
        options = {"parameters": {
            "author": "gr-medjscc", "category": "[GRC Hier Blocks]", "description": self.description,
            "generate_options": "qt_gui" if self.gui else "no_gui", "id": self.gid,
            "output_language": "python", "run": "True", "run_options": "prompt" if (self.gui or self.interactive) else "run",
            "title": self.title, "qt_qss_theme": "", "max_nouts": "0", "realtime_scheduling": "",
            "thread_safe_setters": "", "run_command": "{python} -u {filename}", "hier_block_src_path": ".:",
            "placement": "(0,0)", "sizing_mode": "fixed", "window_size": "(1000,1000)",
            "copyright": "GPL-3.0-or-later"},
            "states": {"coordinate": [8, 8], "rotation": 0, "state": "enabled"}}
        doc = {"options": options, "blocks": self.blocks, "connections": self.connections,
               "metadata": {"file_format": 1, "grc_version": "3.10.5.1"}}
        path = HERE / f"{self.gid}.grc"
        path.write_text(yaml.safe_dump(doc, sort_keys=False, width=120))
        return path


def jscc_tx_params(**kw):
    p = {"image_path": "image_file", "mask_path": "mask_file", "roi_backend": "'none'", "model": "model",
         "cbr": "cbr", "snr_db": "snr_db", "image_size": "image_size", "repeat": "repeat",
         "interval_s": "interval_s", "wait_for_feedback": "False", "feedback_timeout_s": "1.0",
         "allow_random_weights": "bool(random_weights)", **OFDM}
    p.update(kw)
    return p


def jscc_rx_params(**kw):
    p = {"model": "model", "image_size": "image_size", "cbr": "cbr", "snr_source": "'frames'",
         "snr_db": "snr_db", "out_dir": "out_dir", "reference_path": "image_file",
         "reference_mask_path": "mask_file", "timeout_s": "1.0", "allow_random_weights": "bool(random_weights)",
         **OFDM}
    p.update(kw)
    return p


def common_params(g, image=True, snr=True, rx=False):
    g.sample_defaults(image_param=image)
    g.param("model", "str", "medjscc", "Codec model (medjscc, ntscc, adjscc, deepjscc or .pt)")
    g.param("cbr", "eng_float", "0.0625", "CBR")
    g.param("image_size", "intx", "256", "Image size")
    g.param("random_weights", "intx", "0", "Random codec weights if missing (smoke tests)")
    if snr:
        g.param("snr_db", "eng_float", "15", "Channel SNR (dB)")
    if rx:
        g.param("out_dir", "str", "", "Output folder")


def _snr_feedback_and_print(g, x, y):
    """SNR Feedback and the metrics printer, stacked below the receiver at column x."""
    g.block("feedback", "medjscc_snr_feedback", (x, y), alpha="0.3", jump_db="3.0", decimation="1")
    g.block("metrics_print", "blocks_message_debug", (x + 60, y + 130), en_uvec="True")


CONTROLS_PER_ROW = 3     # GUI grid: rows of controls on top, then the images and plots


def _block_choices(block, param):
    """(options, labels) of a parameter of one of our .block.yml files: the GUI choosers offer
    exactly what the block offers (tests check the block's lists against the presets/models)."""
    doc = yaml.safe_load((HERE.parent / "gr-medjscc" / "grc" / f"medjscc_{block}.block.yml").read_text())
    par = next(p for p in doc["parameters"] if p["id"] == param)
    return [str(o) for o in par["options"]], [str(x) for x in par["option_labels"]]


def _wide(hint: str) -> str:
    """A '(row,col,1,1)' GUI hint widened to two columns."""
    row, col, _, _ = hint.strip("()").split(",")
    return f"({row},{col},1,2)"


def gui_controls(g, channel=True, tx_in_graph=True):
    """Live controls: the blocks' callbacks apply them while the flowgraph runs (sliders for the
    channel SNR and CFO, choosers for the equaliser, the channel preset and the codec model).
    Returns the expressions for the channel SNR, CFO, equaliser, preset and model, and the number
    of GUI grid rows the controls take."""
    hints = iter(f"({k // CONTROLS_PER_ROW},{k % CONTROLS_PER_ROW},1,1)" for k in range(12))
    if channel:
        g.block("chan_snr", "variable_qtgui_range", g._next_setting_pos(), label='"Channel SNR (dB)"',
                rangeType="float", value="snr_db", start="-5", stop="30", step="0.5", widget="counter_slider",
                orient="QtCore.Qt.Horizontal", min_len="200", gui_hint=next(hints))
        g.block("chan_cfo", "variable_qtgui_range", g._next_setting_pos(), label='"CFO (subcarriers)"',
                rangeType="float", value="cfo", start="-3", stop="3", step="0.05", widget="counter_slider",
                orient="QtCore.Qt.Horizontal", min_len="200", gui_hint=next(hints))
    g.block("equalizer", "variable_qtgui_chooser", g._next_setting_pos(), label='"Equaliser"',
            type="string", num_opts="2", value='"mmse"', option0='"mmse"', label0='"MMSE"',
            option1='"zf"', label1='"Zero forcing"', widget="combo_box", orient="Qt.QHBoxLayout",
            gui_hint=next(hints))
    n = 3 if channel else 1
    if channel:
        # every preset of the Channel Preset block (built-in and radio profiles); starts at the
        # 'channel' option; the block's set_preset callback switches it while running
        options, labels = _block_choices("channel_preset", "preset")
        g.block("chan_preset", "variable_qtgui_chooser", g._next_setting_pos(), label='"Channel preset"',
                type="string", num_opts="0", value="channel", options=repr(options), labels=repr(labels),
                widget="combo_box", orient="Qt.QHBoxLayout", gui_hint=_wide(next(hints)))
        next(hints)   # the preset names are long: the chooser takes two cells, or Qt folds it away
        n += 2
    # the shipped codecs; set_model of JSCC TX and RX (here only the RX when the TX is another
    # process: it must then match what that TX sends). GRC evaluates the list when it generates
    # the script: a .pt path set as the 'model' parameter in GRC is offered first (a --model given
    # to the generated script must be in the list: the chooser cannot show another)
    options, labels = _block_choices("jscc_rx", "model")
    names = f"dict.fromkeys([model] + {options!r})"
    g.block("codec_model", "variable_qtgui_chooser", g._next_setting_pos(),
            label='"Codec model"' if tx_in_graph else '"Codec model (as the TX)"', type="string", num_opts="0",
            value="model", options=f"list({names})", labels=f"[{dict(zip(options, labels))!r}.get(m, m) for m in {names}]",
            widget="combo_box", orient="Qt.QHBoxLayout", gui_hint=next(hints))
    n += 1
    rows = (n + CONTROLS_PER_ROW - 1) // CONTROLS_PER_ROW
    if channel:
        return "chan_snr", "chan_cfo", "equalizer", "chan_preset", "codec_model", rows
    return "snr_db", "0.0", "equalizer", "channel", "codec_model", rows


def gui_sinks(g, y, sx, spectrum_src, sent=True, row=1):
    """Received (and sent) image, constellation of the equalised payload, SNR trace and RX
    spectrum: image sinks and PDU-to-stream converters in column sx, QT stream sinks one column
    to the right; in the GUI grid from row ``row`` down (the controls are above)."""
    gx, gy = sx + COL, y
    images = (("received", "image", "Received image"),) + ((("sent", "sent_image", "Sent image"),) if sent else ())
    for k, (name, port, title) in enumerate(images):
        src = "tx" if name == "sent" else "rx"
        # grayscale picture with the ROI contour of the mask; the receiver's metrics as text
        g.block(f"{name}_image", "medjscc_image_sink", (sx, gy + 170 * k), title=f'"{title}"',
                mask_path="mask_file", min_size="256",
                gui_hint=f"({row},0,1,1)" if name == "sent" else (f"({row},1,1,1)" if sent else f"({row},0,1,2)"))
        g.connect(src, port, f"{name}_image", "image")
        if src == "rx":
            g.connect("rx", "metrics", f"{name}_image", "metrics")
    g.block("const_stream", "pdu_pdu_to_tagged_stream", (sx, gy + 340), type="complex", tag="packet_len")
    g.block("constellation", "qtgui_const_sink_x", (gx, gy + 340), type="complex", name='"Equalised payload"',
            size="1536", grid="True", autoscale="False", ymin="-2.5", ymax="2.5", xmin="-2.5",
            xmax="2.5", nconnections="1", update_time="0.2", gui_hint=f"({row + 1},0,1,1)",
            tr_mode="qtgui.TRIG_MODE_FREE", tr_slope="qtgui.TRIG_MODE_POS", tr_level="0.0",
            tr_chan="0", tr_tag='""', legend="False", axislabels="True")
    g.connect("ofdm_rx", "pdus", "const_stream", "pdus")
    g.connect("const_stream", 0, "constellation", 0)
    g.block("snr_stream", "pdu_pdu_to_tagged_stream", (sx, gy + 510), type="float", tag="packet_len")
    g.block("snr_trace", "qtgui_time_sink_x", (gx, gy + 510), type="float", name='"SNR (dB): smoothed, raw"',
            ylabel="SNR", yunit='"dB"', size="200", srate="2", grid="True", autoscale="False",
            ymin="-5", ymax="30", nconnections="1", update_time="0.2", entags="False",
            gui_hint=f"({row + 1},1,1,1)", tr_mode="qtgui.TRIG_MODE_FREE", tr_slope="qtgui.TRIG_MODE_POS",
            tr_level="0.0", tr_delay="0", tr_chan="0", tr_tag='""', ctrlpanel="False",
            legend="False", axislabels="True", stemplot="False")
    g.connect("feedback", "snr_pdu", "snr_stream", "pdus")
    g.connect("snr_stream", 0, "snr_trace", 0)
    g.block("spectrum", "qtgui_freq_sink_x", (gx, gy + 680), type="complex", name='"RX spectrum"',
            fftsize="1024", bw="samp_rate", fc="0", ymin="-80", ymax="10", grid="True",
            average="0.2", nconnections="1", update_time="0.2", legend="False", gui_hint=f"({row + 2},0,1,2)")
    g.connect(spectrum_src, 0, "spectrum", 0)


def loopback(gui: bool):
    gid = "loopback_sim" if gui else "loopback_nogui"
    g = Graph(gid, "Med-JSCC OFDM loopback" + (" (QT GUI)" if gui else " (headless)"), gui,
              "JSCC TX -> OFDM analog TX -> channel preset -> OFDM analog RX -> JSCC RX, closed SNR loop. "
              "Sends the shipped sample chest DRR unless 'image' is set; prints PSNR / ROI-PSNR per image.")
    common_params(g, rx=True)
    g.param("repeat", "intx", "1" if not gui else "0", "Repeat (0 = forever)")
    g.param("interval_s", "eng_float", "0" if not gui else "0.5", "Interval between images (s)")
    g.param("channel", "str", "awgn", "Channel preset (see Channel Preset block)")
    g.param("cfo", "eng_float", "0.05", "CFO (subcarriers)")
    g.var("samp_rate", "1e6")
    chan_snr, chan_cfo, equalizer, preset, model, rows = "snr_db", "cfo", "'mmse'", "channel", "model", 0
    if gui:
        chan_snr, chan_cfo, equalizer, preset, model, rows = gui_controls(g)
    y = g.chain_y
    # one flowgraph: the receiver learns every carrier ranking it feeds back, so the TX may use them
    g.block("tx", "medjscc_jscc_tx", (80, y), **jscc_tx_params(model=model, csi_mapping="True"))
    g.block("ofdm_tx", "medjscc_ofdm_analog_tx", (80 + COL, y), guard="256", amplitude="1.0",
            burst_tags="False", **OFDM)
    g.block("chan", "medjscc_channel_preset", (80 + 2 * COL, y), preset=preset, snr_db=chan_snr,
            cfo=chan_cfo, timing_offset_ppm="0", fft_len="64", n_occupied="52", seed="0", switchable=str(gui))
    g.block("ofdm_rx", "medjscc_ofdm_analog_rx", (80 + 3 * COL, y), equalizer=equalizer, **OFDM)
    g.block("rx", "medjscc_jscc_rx", (80 + 4 * COL, y), **jscc_rx_params(model=model))
    _snr_feedback_and_print(g, 80 + 4 * COL, y + 300)
    g.connect("tx", "frames", "ofdm_tx", "pdus")
    g.connect("ofdm_tx", 0, "chan", 0)
    g.connect("chan", 0, "ofdm_rx", 0)
    g.connect("ofdm_rx", "pdus", "rx", "pdus")
    g.connect("ofdm_rx", "pdus", "feedback", "rx")
    g.connect("feedback", "snr", "tx", "snr")
    g.connect("feedback", "snr", "rx", "snr")
    g.connect("rx", "metrics", "metrics_print", "print")
    if gui:
        gui_sinks(g, y, 80 + 5 * COL, spectrum_src="chan", row=rows)
    return g.write()


def zmq_pair():
    tx = Graph("zmq_tx", "Med-JSCC transmitter over ZMQ (IQ PUSH, SNR SUB)", False,
               "Process 1: JSCC TX -> OFDM TX -> ZMQ PUSH (IQ + tags); SNR feedback from zmq_rx over SUB",
               interactive=True)
    common_params(tx, snr=False)
    tx.param("snr_db", "eng_float", "10", "Initial CAU SNR (dB)")
    tx.param("repeat", "intx", "0", "Repeat (0 = forever)")
    tx.param("interval_s", "eng_float", "0.2", "Interval between images (s)")
    tx.param("iq_address", "str", "tcp://127.0.0.1:5555", "IQ PUSH address (bind)")
    tx.param("snr_address", "str", "tcp://127.0.0.1:5556", "SNR SUB address (connect)")
    y = tx.chain_y
    tx.block("tx", "medjscc_jscc_tx", (80, y), **jscc_tx_params())
    tx.block("ofdm_tx", "medjscc_ofdm_analog_tx", (80 + COL, y), guard="256", amplitude="1.0",
             burst_tags="False", **OFDM)
    tx.block("iq_push", "zeromq_push_sink", (80 + 2 * COL, y), type="complex", vlen="1", address="iq_address",
             timeout="100", pass_tags="True", hwm="-1")
    tx.block("snr_sub", "zeromq_sub_msg_source", (80 + COL, y + 300), address="snr_address", timeout="100",
             bind="False")
    tx.connect("tx", "frames", "ofdm_tx", "pdus")
    tx.connect("ofdm_tx", 0, "iq_push", 0)
    tx.connect("snr_sub", "out", "tx", "snr")
    tx.write()
    zmq_rx(gui=False)
    zmq_rx(gui=True)


def zmq_rx(gui: bool):
    rx = Graph("zmq_rx_gui" if gui else "zmq_rx",
               "Med-JSCC receiver over ZMQ (IQ PULL, SNR PUB)" + (" (QT GUI)" if gui else ""), gui,
               "Process 2: ZMQ PULL -> channel preset -> OFDM RX -> JSCC RX; SNR feedback PUB to zmq_tx",
               interactive=True)
    rx.param("image", "str", "", "Reference image for PSNR (empty: the shipped sample, what the TX sends by default)")
    common_params(rx, image=False, rx=True)
    rx.param("channel", "str", "awgn", "Channel preset")
    rx.param("iq_address", "str", "tcp://127.0.0.1:5555", "IQ PULL address (connect)")
    rx.param("snr_address", "str", "tcp://127.0.0.1:5556", "SNR PUB address (bind)")
    chan_snr, chan_cfo, equalizer, preset, model, rows = "snr_db", "0.0", "'mmse'", "channel", "model", 0
    if gui:
        rx.param("cfo", "eng_float", "0.0", "CFO (subcarriers)")
        rx.var("samp_rate", "1e6")
        chan_snr, chan_cfo, equalizer, preset, model, rows = gui_controls(rx, tx_in_graph=False)
    y = rx.chain_y
    rx.block("iq_pull", "zeromq_pull_source", (80, y), type="complex", vlen="1", address="iq_address",
             timeout="100", pass_tags="True", hwm="-1")
    rx.block("chan", "medjscc_channel_preset", (80 + COL, y), preset=preset, snr_db=chan_snr, cfo=chan_cfo,
             timing_offset_ppm="0", fft_len="64", n_occupied="52", seed="0", switchable=str(gui))
    rx.block("ofdm_rx", "medjscc_ofdm_analog_rx", (80 + 2 * COL, y), equalizer=equalizer, **OFDM)
    rx.block("rx", "medjscc_jscc_rx", (80 + 3 * COL, y), **jscc_rx_params(snr_source="'frames'", model=model))
    _snr_feedback_and_print(rx, 80 + 3 * COL, y + 300)
    rx.block("snr_pub", "zeromq_pub_msg_sink", (80 + 4 * COL, y + 300), address="snr_address", timeout="100",
             bind="True")
    rx.connect("iq_pull", 0, "chan", 0)
    rx.connect("chan", 0, "ofdm_rx", 0)
    rx.connect("ofdm_rx", "pdus", "rx", "pdus")
    rx.connect("ofdm_rx", "pdus", "feedback", "rx")
    rx.connect("feedback", "snr", "snr_pub", "in")
    rx.connect("feedback", "snr", "rx", "snr")      # the carrier rankings it feeds back (csi_mapping TX)
    rx.connect("rx", "metrics", "metrics_print", "print")
    if gui:
        gui_sinks(rx, y, 80 + 5 * COL, spectrum_src="chan", sent=False, row=rows)
    rx.write()


def _uhd_common(kind):
    p = {"type": "fc32", "otw": "", "stream_args": "", "stream_chans": "[]", "dev_addr": "dev_args",
         "dev_args": '""', "sync": "sync" if kind == "rx" else "none", "start_time": "-1.0",
         "clock_rate": "0e0", "num_mboards": "1", "clock_source0": "clock_source",
         "time_source0": "time_source", "sd_spec0": '""', "nchan": "1", "samp_rate": "samp_rate",
         "center_freq0": "center_freq", "gain0": "tx_gain" if kind == "tx" else "rx_gain",
         "gain_type0": "default", "ant0": "tx_antenna" if kind == "tx" else "rx_antenna", "bw0": "0",
         "lo_source0": "internal", "lo_export0": "False", "show_lo_controls": "False"}
    if kind == "tx":
        p["len_tag_name"] = '""'
    else:
        p.update(rx_agc0="Default", dc_offs_enb0="default", dc_offs0="0+0j", iq_imbal_enb0="default",
                 iq_imbal0="0+0j")
    return p


def usrp_pair():
    for kind, gui in (("tx", False), ("rx", False), ("rx", True)):
        g = Graph(f"usrp_{kind}" + ("_gui" if gui else ""),
                  f"Med-JSCC over USRP ({kind.upper()})" + (" (QT GUI)" if gui else ""), gui,
                  "Settings as in hw_configs/*.yaml (medjscc %s --hw FILE runs the same chain)" % kind,
                  interactive=True)
        if kind == "rx":
            g.param("image", "str", "", "Reference image for PSNR (empty: the shipped sample, what the TX sends by default)")
        common_params(g, image=(kind == "tx"), snr=False, rx=(kind == "rx"))
        g.param("snr_db", "eng_float", "10", "Initial SNR (dB)")
        g.param("dev_args", "str", "type=b200", "UHD device args")
        g.param("center_freq", "eng_float", "2.45e9", "Centre frequency (Hz)")
        g.param("samp_rate", "eng_float", "1e6", "Sample rate (S/s)")
        g.param("clock_source", "str", "internal", "Clock source")
        g.param("time_source", "str", "internal", "Time source")
        g.param("snr_address", "str", "tcp://127.0.0.1:5556", "SNR feedback address")
        if kind == "tx":
            g.param("tx_gain", "eng_float", "60", "TX gain (dB)")
            g.param("tx_antenna", "str", "TX/RX", "TX antenna")
            g.param("tx_amplitude", "eng_float", "0.25", "IQ amplitude")
            g.param("repeat", "intx", "0", "Repeat (0 = forever)")
            g.param("interval_s", "eng_float", "0.5", "Interval between images (s)")
            y = g.chain_y
            g.block("tx", "medjscc_jscc_tx", (80, y), **jscc_tx_params())
            g.block("ofdm_tx", "medjscc_ofdm_analog_tx", (80 + COL, y), guard="256", amplitude="tx_amplitude",
                    burst_tags="True", **OFDM)
            g.block("usrp", "uhd_usrp_sink", (80 + 2 * COL, y), **_uhd_common("tx"))
            g.block("snr_sub", "zeromq_sub_msg_source", (80 + COL, y + 300), address="snr_address",
                    timeout="100", bind="False")
            g.connect("tx", "frames", "ofdm_tx", "pdus")
            g.connect("ofdm_tx", 0, "usrp", 0)
            g.connect("snr_sub", "out", "tx", "snr")
        else:
            g.param("rx_gain", "eng_float", "40", "RX gain (dB)")
            g.param("rx_antenna", "str", "RX2", "RX antenna")
            _, _, equalizer, _, model, rows = (gui_controls(g, channel=False, tx_in_graph=False) if gui
                                               else (None, None, "'mmse'", None, "model", 0))
            y = g.chain_y
            g.block("usrp", "uhd_usrp_source", (80, y), **_uhd_common("rx"))
            g.block("ofdm_rx", "medjscc_ofdm_analog_rx", (80 + COL, y), equalizer=equalizer, **OFDM)
            g.block("rx", "medjscc_jscc_rx", (80 + 2 * COL, y), **jscc_rx_params(model=model))
            _snr_feedback_and_print(g, 80 + 2 * COL, y + 300)
            g.block("snr_pub", "zeromq_pub_msg_sink", (80 + 3 * COL, y + 300), address="snr_address",
                    timeout="100", bind="True")
            g.connect("usrp", 0, "ofdm_rx", 0)
            g.connect("ofdm_rx", "pdus", "rx", "pdus")
            g.connect("ofdm_rx", "pdus", "feedback", "rx")
            g.connect("feedback", "snr", "snr_pub", "in")
            g.connect("feedback", "snr", "rx", "snr")   # the carrier rankings it feeds back (csi_mapping TX)
            g.connect("rx", "metrics", "metrics_print", "print")
            if gui:
                gui_sinks(g, y, 80 + 4 * COL, spectrum_src="usrp", sent=False, row=rows)
        g.write()


if __name__ == "__main__":
    loopback(gui=False)
    loopback(gui=True)
    zmq_pair()
    usrp_pair()
    print("wrote", sorted(p.name for p in HERE.glob("*.grc")))
