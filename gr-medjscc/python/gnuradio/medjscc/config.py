"""One configuration object shared by the CLI, the Python API and the GRC blocks.

``LinkConfig`` groups one dataclass per subsystem. The CLI builds it with
``LinkConfig.from_args(args)`` (flags generated from the fields by ``add_arguments``), GRC blocks
take the same field names as parameters, and YAML files hold the same keys::

    codec: {model: medjscc, cbr: 0.0625}
    channel: {kind: awgn, snr_db: 10}

Subsystems may add fields to their own section; keep defaults sane and validate in
``validate()`` so errors are one clear line.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import MedJSCCError


def known_fields(cls, data: dict, what: str) -> dict:
    """``data`` as a dict after checking every key is a field of dataclass ``cls``; an unknown key
    is a one-line error naming it (``unknown <what> key <what>.<key>``) and the known ones."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        keys = ", ".join(f"{what}.{k}" for k in unknown)
        raise MedJSCCError(f"unknown config key {keys} (known: {sorted(names)})")
    return dict(data)


_TYPE_WORDS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


def _check_value(value, hint, key: str):
    """``value`` converted to the field type ``hint`` (int, float, str, bool, or ``X | None``);
    anything else is a one-line error naming ``key``. Floats take ints and fraction strings
    ("1/16", as on the command line); NaN is never a valid setting."""
    args = typing.get_args(hint)
    if args and type(None) in args:                       # X | None
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        what = f"{_TYPE_WORDS.get(hint, hint)} or null"
    else:
        what = _TYPE_WORDS.get(hint, str(hint))
    got = f"got {value!r} ({type(value).__name__})"
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, str):
            from .snr import parse_number

            try:
                value = parse_number(value)
            except ValueError:
                raise MedJSCCError(f"{key} must be {what} (fractions such as 1/16 allowed), {got}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isnan(value):
                raise MedJSCCError(f"{key} must be {what}, got NaN")
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise MedJSCCError(f"{key} must be {what}, {got}")


def check_field_types(obj, section: str) -> None:
    """Check (and normalise: int -> float, "1/16" -> 0.0625) every field of dataclass ``obj``
    against its annotated type, so a wrong type is one line, not a traceback in a comparison."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        key = f"{section}.{f.name}" if section else f.name
        setattr(obj, f.name, _check_value(getattr(obj, f.name), hints.get(f.name, typing.Any), key))


def _check_finite(value: float, key: str, lo: float = -math.inf, hi: float = math.inf):
    if not (math.isfinite(value) and lo <= value <= hi):
        raise MedJSCCError(f"{key} must be a finite number in [{lo:g}, {hi:g}], got {value!r}")


# CLI glue: allowed values and help of the --<section>-<field> flags. The help of a field is its
# trailing comment in the dataclass below unless _FIELD_HELP has a line for it.
FIELD_CHOICES = {
    "ofdm.equalizer": ("zf", "mmse"),
    "ofdm.header_mcs": ("robust", "dense", "auto"),
    "channel.kind": ("awgn", "rayleigh", "multipath", "erasure"),
    "roi.backend": ("auto", "litemedsam", "sam2", "oracle", "none"),
}
_FIELD_HELP = {
    "codec.model": "codec: medjscc, medjscc_csi (same encoder, CSI-aware decoder: use it at a radio receiver), medjscc_radio (trained end to end for radio links: both ends), medjscc_task (medjscc fine-tuned to carry lung nodules: higher detection AUC at 0 dB, ~1 dB lower ROI-PSNR), ntscc, adjscc, deepjscc (shipped), hybrid_softcast / medjscc_hda / hybrid_layered (the hybrid digital-analog codec: JPEG2000 + LDPC base and analog residual; medjscc_hda adds the learned receiver; hybrid_layered sends the base in two layers, the first at a more robust MCS) or the path of a .pt file",
    "codec.snr_db": "SNR (dB) the encoder's channel-adaptive unit assumes until SNR feedback arrives",
    "codec.device": "torch device: cpu, cuda, cuda:N or mps",
    "codec.threads": "torch CPU threads",
    "ofdm.fft_len": "FFT length (subcarriers)",
    "ofdm.cp_len": "cyclic prefix length (samples)",
    "ofdm.n_data_carriers": "data subcarriers per OFDM symbol",
    "ofdm.n_pilot_carriers": "pilot subcarriers per OFDM symbol",
    "ofdm.equalizer": "receiver equaliser (switchable at run time)",
    "channel.kind": "simulated channel model",
    "roi.sam2_checkpoint": "SAM 2 / MedSAM-2 checkpoint (.pt) for the sam2 backend",
    "roi.sam2_config": "SAM 2 config name or YAML file (unset: sam2.1 hiera-tiny)",
    "channel.snr_db": "channel SNR in dB (Es/N0 per data-subcarrier symbol)",
    "channel.cfo": "carrier frequency offset in subcarrier spacings",
    "channel.erasure_prob": "probability that a whole frame is lost",
    "channel.seed": "noise and fading seed",
}


def _field_docs(cls) -> dict[str, str]:
    """The trailing comments of a dataclass's fields, by field name."""
    import inspect

    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return dict(re.findall(r"^\s+(\w+):[^=\n]*=[^#\n]*#\s*(.+?)\s*$", src, re.M))


@dataclass
class CodecConfig:
    model: str = "medjscc"          # shipped name (see _FIELD_HELP) or a .pt path
    cbr: float = 1.0 / 16.0         # target total channel bandwidth ratio
    snr_db: float = 10.0            # SNR the CAU assumes until feedback arrives
    repeat_strong: float = 0.2      # share of the strongest codec symbols sent twice (other frame, other subcarrier) within the same cbr, on the OFDM link: a lost or faded frame keeps them (0 = off)
    device: str = "cpu"
    threads: int = 2

    def validate(self):
        check_field_types(self, "codec")
        if not (0 < self.cbr <= 1):
            raise MedJSCCError(f"codec.cbr must be in (0, 1], got {self.cbr}")
        _check_finite(self.snr_db, "codec.snr_db", -50, 100)
        _check_finite(self.repeat_strong, "codec.repeat_strong", 0.0, 0.99)
        if not self.model.strip():
            raise MedJSCCError("codec.model must name a model (medjscc, ntscc, adjscc, deepjscc) or a .pt file")
        if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", self.device):
            raise MedJSCCError(f"codec.device must be cpu, cuda, cuda:N or mps, got {self.device!r}")
        if not 1 <= self.threads <= 1024:
            raise MedJSCCError(f"codec.threads must be in [1, 1024], got {self.threads}")


@dataclass
class RoiConfig:
    backend: str = "auto"           # auto | litemedsam | sam2 | oracle | none
    sam2_checkpoint: str | None = None
    sam2_config: str | None = None

    def validate(self):
        check_field_types(self, "roi")
        allowed = {"auto", "litemedsam", "sam2", "oracle", "none"}
        if self.backend not in allowed:
            raise MedJSCCError(f"roi.backend must be one of {sorted(allowed)}, got {self.backend!r}")


def check_rx_batching(min_batch, max_latency_ms, where: str = "") -> tuple[int, float]:
    """Validate the OFDM receiver's batching parameters (config, CLI and the RX block share it)."""
    from .errors import InputError

    if isinstance(min_batch, bool) or int(min_batch) != min_batch or min_batch < 0:
        raise InputError(f"{where}min_batch must be a whole number of samples >= 0 (0 = no batching), "
                         f"got {min_batch!r}")
    if not float(max_latency_ms) > 0:      # also rejects NaN
        raise InputError(f"{where}max_latency_ms must be > 0 (inf = no bound), got {max_latency_ms!r}")
    return int(min_batch), float(max_latency_ms)


@dataclass
class OfdmConfig:
    # The OFDM blocks take their defaults from here; OfdmParams (phy core) and the .block.yml
    # files repeat them, and tests/test_conventions.py checks that all of them agree.
    fft_len: int = 64
    cp_len: int = 16
    n_data_carriers: int = 48
    n_pilot_carriers: int = 4
    symbols_per_frame: int = 32     # payload OFDM symbols per frame
    equalizer: str = "mmse"         # zf | mmse (switchable at run time)
    # phy-core extras (same names as phy.OfdmParams)
    header_side_info_bytes: int = 32   # side-info chunk per frame header: a side info of up to 30 bytes (CBR 1/16) rides whole in every header, so any frame that arrives delivers it; a larger one is erasure-coded over the headers (16: 2 chunks, about a seventh less air, an image lost when 2 of its 3 frames are)
    side_info_parity: int = 1          # frames that may be lost without losing the side info
    interleave: bool = True            # spread each image's symbols over all frames and subcarriers
    tx_clip_ratio: float = 0.0         # TX clip-and-filter at this peak/RMS amplitude (0 = off)
    header_repeat: int = 1             # >1 lengthens the header for operation below about -3 dB
    header_mcs: str = "auto"           # frame header code: robust (BPSK r1/3, to about -3 dB), dense (QPSK r1/2, a third of the symbols, from about 4 dB) or auto (the TX picks per frame from its SNR, the RX reads both)
    dense_header_snr_db: float = 25.0  # auto: the TX sends dense headers from this SNR (its design or fed-back SNR) up; 12 saves 20 % air from 12 dB at ~0.1 dB payload SNR
    n_short_reps: int = 8              # sync preamble repetitions (longer = more robust detection)
    n_long: int = 4                    # long training symbols (channel and SNR estimate; 4: RMS 1.2 dB at -5 dB)
    detect_threshold: float = 0.17     # normalised preamble correlation threshold
    # receiver tracking (the OFDM Analog RX block's parameters of the same names)
    max_cfo_subcarriers: int = 4       # CFO search range, +- subcarrier spacings (4: +-25 ppm at 2.45 GHz, 1 Msps)
    pilot_smooth: int = 9              # pilot tracking window in OFDM symbols (1 = every symbol alone)
    pilot_amplitude: bool = True       # track the pilot amplitude too (moving radios; costs 0.1-0.6 dB when static)
    # receiver batching (the OFDM Analog RX block's parameters of the same names); 65536 samples
    # = ~15 full-size default frames per decoding run (measured with bench/grblocks_speed.py)
    min_batch: int = 65536             # new samples per detection/decoding run (0 = every call)
    max_latency_ms: float = 50.0       # longest wait of a sample in a partly filled batch

    def validate(self):
        if self.cp_len >= self.fft_len:
            raise MedJSCCError("ofdm.cp_len must be shorter than ofdm.fft_len")
        check_rx_batching(self.min_batch, self.max_latency_ms, "ofdm.")
        if self.equalizer not in ("zf", "mmse"):
            raise MedJSCCError(f"ofdm.equalizer must be zf or mmse, got {self.equalizer!r}")
        from .phy.params import OfdmParams   # numpy only; full layout check with the phy's rules

        try:
            OfdmParams.from_config(self)
        except MedJSCCError as e:
            raise MedJSCCError(f"ofdm: {e}") from None


@dataclass
class ChannelConfig:
    kind: str = "awgn"              # awgn | rayleigh | multipath | erasure
    snr_db: float = 10.0
    cfo: float = 0.0                # normalised to subcarrier spacing
    erasure_prob: float = 0.0
    seed: int = 0

    def validate(self):
        check_field_types(self, "channel")
        allowed = {"awgn", "rayleigh", "multipath", "erasure"}
        if self.kind not in allowed:
            raise MedJSCCError(f"channel.kind must be one of {sorted(allowed)}, got {self.kind!r}")
        if not (0 <= self.erasure_prob < 1):
            raise MedJSCCError(f"channel.erasure_prob must be in [0, 1), got {self.erasure_prob!r}")
        _check_finite(self.snr_db, "channel.snr_db", -50, 100)
        _check_finite(self.cfo, "channel.cfo")   # bounded by ofdm.fft_len in LinkConfig.validate
        if not 0 <= self.seed < 2**63:
            raise MedJSCCError(f"channel.seed must be in [0, 2**63), got {self.seed}")


@dataclass
class LinkConfig:
    codec: CodecConfig = field(default_factory=CodecConfig)
    roi: RoiConfig = field(default_factory=RoiConfig)
    ofdm: OfdmConfig = field(default_factory=OfdmConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    image_size: int = 256

    SECTIONS = ("codec", "roi", "ofdm", "channel")
    MAX_IMAGE_SIZE = 4096   # bounds the codec's memory (the shipped weights are trained at 256)

    def validate(self) -> "LinkConfig":
        for s in self.SECTIONS:
            section = getattr(self, s)
            # OfdmConfig.validate does its own range checks; the types are checked here for all
            check_field_types(section, s)
            section.validate()
        size = self.image_size
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= self.MAX_IMAGE_SIZE:
            raise MedJSCCError(f"image_size must be a whole number in [16, {self.MAX_IMAGE_SIZE}] (pixels per "
                               f"side), got {size!r}")
        half = self.ofdm.fft_len / 2   # a CFO beyond half the band aliases (subcarrier spacings)
        _check_finite(self.channel.cfo, "channel.cfo (subcarrier spacings)", -half, half)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "LinkConfig":
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise MedJSCCError(f"config must be a mapping of {', '.join(cls.SECTIONS)} and image_size "
                               f"(e.g. 'codec: {{cbr: 0.0625}}'), got a {type(data).__name__}")
        data = dict(data)
        cfg = cls()
        for key, value in data.items():
            if key in cls.SECTIONS:
                section = getattr(cfg, key)
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise MedJSCCError(f"config section {key!r} must be a mapping of its keys "
                                       f"({', '.join(f.name for f in fields(section))}), "
                                       f"got {value!r}")
                for k, v in known_fields(type(section), value, key).items():
                    setattr(section, k, v)
            elif key == "image_size":
                cfg.image_size = value      # type- and range-checked by validate()
            else:
                raise MedJSCCError(f"unknown config key {key!r} (known: {', '.join(cls.SECTIONS)}, image_size)")
        return cfg.validate()

    @classmethod
    def from_yaml(cls, path: str | Path) -> "LinkConfig":
        import yaml

        p = Path(path)
        if not p.is_file():
            raise MedJSCCError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise MedJSCCError(f"config file {p} is not valid YAML: {' '.join(str(e).split())}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise MedJSCCError(f"config file {p} cannot be read: {e}") from None
        try:
            return cls.from_dict(data)
        except MedJSCCError as e:
            raise type(e)(f"config file {p}: {e}") from None

    # --- CLI glue: flags are --<section>-<field> (e.g. --codec-cbr, --channel-snr-db) ---
    @classmethod
    def add_arguments(cls, parser, sections=None, exclude=()):
        """--<section>-<field> flags; exclude: "section.field" names a command does not use."""
        cfg = cls()
        for s in sections or cls.SECTIONS:
            group = parser.add_argument_group(f"{s} options")
            docs = _field_docs(type(getattr(cfg, s)))
            for f in fields(getattr(cfg, s)):
                if f"{s}.{f.name}" in exclude:
                    continue
                default = getattr(getattr(cfg, s), f.name)
                flag = f"--{s}-{f.name.replace('_', '-')}"
                kind = type(default) if default is not None else str
                doc = _FIELD_HELP.get(f"{s}.{f.name}") or docs.get(f.name, f.name.replace("_", " "))
                shown = "unset" if default in (None, "") else default
                if kind is bool:
                    # --x / --no-x: a flag that is on by default can be switched off too
                    group.add_argument(flag, dest=f"{s}__{f.name}", action=argparse.BooleanOptionalAction,
                                       default=None, help=f"{doc} (default: {'on' if default else 'off'})")
                else:
                    from .snr import parse_number

                    conv = parse_number if kind is float else kind
                    choices = FIELD_CHOICES.get(f"{s}.{f.name}")
                    metavar = None if choices else ("DB" if f.name.endswith("_db") else
                                                    {int: "N", float: "X"}.get(kind, "TEXT"))
                    # SUPPRESS: an unset flag leaves no attribute (the YAML/dataclass value stands)
                    # and keeps argparse from printing a second "(default: None)"
                    group.add_argument(flag, dest=f"{s}__{f.name}", type=conv, default=argparse.SUPPRESS,
                                       choices=choices, metavar=metavar, help=f"{doc} (default: {shown})")
        parser.add_argument("--config", dest="link_config", default=None,
                            help="YAML file with the same keys (flags override it)")

    @classmethod
    def from_args(cls, args) -> "LinkConfig":
        cfg = cls.from_yaml(args.link_config) if getattr(args, "link_config", None) else cls()
        for key, value in vars(args).items():
            if "__" in key and value is not None:
                s, name = key.split("__", 1)
                if s in cls.SECTIONS:
                    setattr(getattr(cfg, s), name, value)
        return cfg.validate()
