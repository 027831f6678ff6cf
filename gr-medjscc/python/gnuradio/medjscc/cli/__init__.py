"""``medjscc`` command line. Each subcommand is a module in this package that defines

    COMMAND = "name"          # the subcommand
    HELP = "one line"         # shown by ``medjscc --help``
    def add_arguments(parser): ...
    def run(args) -> int | None: ...

Modules are discovered automatically (no central list to edit). Keep module top levels free of
heavy imports (torch, GNU Radio) so ``medjscc --help`` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
import warnings

from ..errors import MedJSCCError


def _command_modules():
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "COMMAND") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: m.COMMAND)


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but not empty ones, nor a second default where the help text already
    describes it."""

    def _get_help_string(self, action):
        # no "(default: None)" / "(default: )": an empty default means "not set", said in the help
        if action.default in (None, "", [], ()) or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="medjscc",
        description="gr-medjscc: ROI-aware deep JSCC for X-ray images over GNU Radio.",
    )
    parser.add_argument("--version", action="version", version=f"gr-medjscc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.COMMAND, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=_DefaultsHelpFormatter)
        if hasattr(mod, "add_arguments"):
            mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # sam2/timm import torch.jit.script at import time; torch 2.14 warns on every CLI call.
    warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"Importing from timm\.models\.", category=FutureWarning)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        rc = args._run(args)
    except MedJSCCError as e:
        print(f"medjscc {args.command}: error: {e}", file=sys.stderr)
        return 1
    except FileNotFoundError as e:
        print(f"medjscc {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
