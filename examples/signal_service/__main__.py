"""``python -m examples.signal_service``: the reference service's command line.

Commands:

* ``run``: the service in real time on the simulated market (see `run`).

Bad options and bad settings end with a one-line error and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from .run import add_run_command


class _Parser(argparse.ArgumentParser):
    """Errors in one line (``prog: error: ...``) instead of the usage and the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments), run the command, return its status."""
    parser = _Parser(
        prog="python -m examples.signal_service",
        description="The reference signal service, built from argo_perf's primitives.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_command(commands)
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
