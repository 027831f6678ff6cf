"""What every bench script's ``__main__`` does: run ``main`` and exit with its code; bad input
(a ``MedJSCCError``: a wrong option, missing weights or data) is one line on stderr and exit 2,
not a traceback."""
from __future__ import annotations

import sys


def run(main, name: str) -> None:
    from gnuradio.medjscc.errors import MedJSCCError

    try:
        code = main()
    except MedJSCCError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code)
