"""The reference service's command line: ``python -m examples.signal_service COMMAND``.

Commands:

* ``replay``: a whole trading day of 5-second cycles on a virtual clock, with
  the baseline and the optimized configuration; prints the before/after
  table as Markdown and writes the figures as JSON with ``--json PATH``;
  ``--redis-url URL`` keeps the optimized cache in Redis and runs
  ``--instances N`` (2 by default with Redis) instances sharing it.
* ``run``: the service in real time on the simulated market, optionally serving
  its health and metrics over HTTP (see `run`).

Bad options print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from .market import DEFAULT_SYMBOLS
from .replay import DAY, figures, format_table, replay
from .run import add_run_command

_USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(_USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(s.strip().upper() for s in text.split(","))
    if not all(symbols) or len(set(symbols)) != len(symbols):
        raise argparse.ArgumentTypeError(f"invalid symbol list: {text!r}")
    return symbols


def _number_in(low: float, high: float, *, low_open: bool, what: str) -> Any:
    """An argparse type: a float in [low, high] (or (low, high] when ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (low < value <= high if low_open else low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


_fraction = _number_in(0.0, 1.0, low_open=False, what="a number in [0, 1]")
_hours = _number_in(0.0, 24.0, low_open=True, what="hours in (0, 24]")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _redis_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise argparse.ArgumentTypeError(
            f"must be a redis://, rediss:// or unix:// URL, got {text!r}"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: one subparser per command (``replay``, ``run``)."""
    parser = _Parser(prog="python -m examples.signal_service", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    replay_parser = commands.add_parser(
        "replay", help="replay a trading day on a virtual clock and print the before/after table"
    )
    replay_parser.add_argument("--seed", type=int, default=0, help="the market's seed (0)")
    replay_parser.add_argument(
        "--symbols",
        type=_symbols,
        default=DEFAULT_SYMBOLS,
        help=f"comma-separated symbols ({','.join(DEFAULT_SYMBOLS)})",
    )
    replay_parser.add_argument(
        "--vendors-fail",
        type=_fraction,
        default=0.0,
        metavar="RATE",
        help="extra share of calls every vendor answers with an error, 0-1 (0)",
    )
    replay_parser.add_argument("--json", type=Path, metavar="PATH", help="write the figures here")
    replay_parser.add_argument(
        "--db", type=Path, metavar="PATH", help="SQLite file of the signals (a temporary file)"
    )
    replay_parser.add_argument(
        "--hours",
        type=_hours,
        metavar="H",
        help="replay at most H hours of each part of the day (default: the whole day)",
    )
    replay_parser.add_argument(
        "--redis-url",
        type=_redis_url,
        metavar="URL",
        help="keep the optimized cache in this Redis; run --instances sharing it",
    )
    replay_parser.add_argument(
        "--instances",
        type=_count,
        metavar="N",
        help="instances of the optimized service sharing Redis (1; 2 with --redis-url)",
    )
    replay_parser.set_defaults(func=_replay, parser=replay_parser)

    add_run_command(commands)  # sets func=run_command
    return parser


def _replay(args: argparse.Namespace) -> int:
    day = DAY
    if args.hours is not None:
        day = tuple(replace(segment, hours=min(segment.hours, args.hours)) for segment in DAY)
    instances = args.instances
    if instances is None:
        instances = 1 if args.redis_url is None else 2
    elif instances > 1 and args.redis_url is None:
        parser: argparse.ArgumentParser = args.parser
        parser.error("--instances above 1 needs --redis-url (the instances share its cache)")
    results = replay(
        seed=args.seed,
        symbols=args.symbols,
        day=day,
        db=args.db,
        vendors_fail=args.vendors_fail,
        redis_url=args.redis_url,
        instances=instances,
    )
    data = figures(results)
    print(format_table(data))
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments) and run the command."""
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
