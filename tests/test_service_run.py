"""The reference service's ``run`` command: the loop, its seam, signals, options and errors."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from examples.signal_service.__main__ import main
from examples.signal_service.run import Cycle, RunOptions, Service, run_service

from argo_perf import ConfigError, RedisTokenBucket

ROOT = Path(__file__).resolve().parent.parent
TOTALS = re.compile(r"stopped after (\d+) cycles?: (\d+) signals accepted, (\d+) written to ")


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "examples.signal_service", "run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM signals").fetchone()[0])


def test_run_serves_the_endpoints_and_prints_its_totals_when_the_duration_ends(
    tmp_path: Path,
) -> None:
    db = tmp_path / "signals.db"
    process = start("--duration", "1", "--serve", "0", "--db", str(db))
    assert process.stdout is not None
    first = process.stdout.readline()
    url = re.search(r"serving (http://127\.0\.0\.1:\d+)/api/v1/health", first)
    assert url, first
    with urllib.request.urlopen(url[1] + "/api/v1/health", timeout=10) as response:
        payload = json.load(response)
    assert set(payload["services"]) == {"performance", "circuit_breakers", "rate_limiters"}
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    totals = TOTALS.search(out)
    assert totals, out
    cycles, accepted, written = map(int, totals.groups())
    assert cycles >= 1
    assert accepted == written == rows(db) == 6  # one signal per default symbol
    assert "cycle 1 | signals 6 accepted" in out


def test_sigterm_ends_the_run_with_its_totals(tmp_path: Path) -> None:
    db = tmp_path / "signals.db"
    process = start("--db", str(db), "--symbols", "aapl,btc-usd")
    assert process.stdout is not None
    assert process.stdout.readline().startswith("cycle 1 |")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    totals = TOTALS.search(out)
    assert totals, out
    assert totals.group(2) == totals.group(3) == str(rows(db)) == "2"


async def test_the_loop_runs_the_cycle_a_factory_builds_until_stopped(tmp_path: Path) -> None:
    stop = asyncio.Event()
    services: list[Service] = []
    ran = 0

    def factory(service: Service) -> Cycle:
        services.append(service)

        async def cycle() -> None:
            nonlocal ran
            ran += 1
            if ran == 3:
                stop.set()

        return cycle

    out = io.StringIO()
    options = RunOptions(interval=0.01, db=str(tmp_path / "s.db"))
    totals = await run_service(options, make_cycle=factory, out=out, stop=stop)
    assert totals.cycles == ran == 3
    assert (totals.accepted, totals.written, totals.url) == (0, 0, None)
    assert out.getvalue().count("\n") == 3  # one progress line per cycle off a terminal
    assert len(services) == 1
    assert services[0].status() == "healthy"


async def test_a_run_that_reaches_its_duration_cancels_the_cycle_in_flight(
    tmp_path: Path,
) -> None:
    def factory(service: Service) -> Cycle:
        async def cycle() -> None:
            await asyncio.sleep(60)

        return cycle

    options = RunOptions(duration=0.05, db=str(tmp_path / "s.db"))
    totals = await run_service(options, make_cycle=factory, out=io.StringIO())
    assert totals.cycles == 0


async def test_redis_url_keeps_the_rate_limits_in_redis(tmp_path: Path, redis_url: str) -> None:
    kinds: list[type] = []

    def factory(service: Service) -> Cycle:
        kinds.append(type(service.limiter.get("massive")))

        async def cycle() -> None:
            pass

        return cycle

    options = RunOptions(duration=0.05, redis_url=redis_url, db=str(tmp_path / "s.db"))
    await run_service(options, make_cycle=factory, out=io.StringIO())
    assert kinds == [RedisTokenBucket]


def test_help_explains_each_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--duration", "--serve", "--db", "--redis-url", "--interval", "--symbols"):
        assert option in text


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--duration", "soon"],
        ["run", "--duration", "-1"],
        ["run", "--serve", "70000"],
        ["run", "--bogus"],
        [],
    ],
)
def test_a_bad_option_is_a_one_line_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("python -m examples.signal_service")


def test_a_bad_setting_is_a_one_line_error_without_the_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--redis-url", "http://user:secret@host/0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "redis_url" in err
    assert "secret" not in err


def test_a_database_that_cannot_be_opened_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "missing" / "signals.db"
    assert main(["run", "--duration", "1", "--db", os.fspath(db)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot use the database {db}: ")
    assert err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("field", "value"),
    [("interval", 0.0), ("duration", float("inf")), ("serve", -1), ("symbols", ()), ("db", "")],
)
def test_run_options_name_a_bad_setting(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        RunOptions(**{field: value})  # type: ignore[arg-type]
