"""What each Redis fault does to each Redis-backed piece: the fault matrix's table.

Runs ``tests/test_fault_matrix.py`` (real redis-server processes, a loopback
TCP proxy) and prints, for each fault and piece, the sync / asyncio faces'
figures as a Markdown table:

* first call: the latency of the first call made under the fault (it pays
  the socket timeout when Redis does not answer);
* waited: how many calls under the fault waited for a timeout (the health
  gate skips Redis once ``failure_threshold`` calls in a row failed);
* other calls: the slowest of the calls that did not wait;
* served: values served during the fault (cache reads that returned the
  value, grants of the bucket, breaker decisions as the breaker's own rules
  make them);
* lost: accepted values that were neither kept nor reported as not stored
  (zero, or the matrix fails); values the server itself lost (killed,
  restarted empty) are shown apart as "wiped";
* back on Redis: "next call" when the piece never left Redis, else the probe
  intervals (``probe_interval``, 1 s by default) until it used Redis again.

Usage: ``python benchmarks/fault_table.py`` (from the repository root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "tests" / "test_fault_matrix.py"
sys.path.insert(0, str(MATRIX.parent))

from test_fault_matrix import FAULTS, PIECES, SOCKET_TIMEOUT, TABLE_ENV  # noqa: E402


def run_matrix() -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "observed.json"
        env = {**os.environ, TABLE_ENV: str(path)}
        subprocess.run(
            [sys.executable, "-m", "pytest", str(MATRIX), "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        observed: dict[str, dict[str, float]] = json.loads(path.read_text())
        return observed


def both(cells: list[dict[str, float]], field: str, fmt: str) -> str:
    return " / ".join(format(cell[field], fmt) for cell in cells)


def back(cells: list[dict[str, float]]) -> str:
    probes = max(cell["probes"] for cell in cells)
    return "next call" if probes == 0 else f"{probes:.0f} probe interval"


def table(observed: dict[str, dict[str, float]]) -> str:
    lines = [
        "| fault | piece | first call (ms) | waited | other calls (ms, max) "
        "| served | lost | back on Redis |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fault in FAULTS:
        for piece in PIECES:
            cells = [observed[f"{fault.name}|{piece.name}|{face}"] for face in ("sync", "async")]
            lost = both(cells, "lost", ".0f")
            if any(cell["wiped"] for cell in cells):
                lost += f" ({both(cells, 'wiped', '.0f')} wiped)"
            lines.append(
                f"| {fault.name} | {piece.name} | {both(cells, 'first_ms', '.1f')} | "
                f"{both(cells, 'waited', '.0f')} | {both(cells, 'others_ms', '.1f')} | "
                f"{both(cells, 'served', '.0f')} | {lost} | {back(cells)} |"
            )
    return "\n".join(lines)


def main() -> None:
    observed = run_matrix()
    print(f"\nsocket timeout {SOCKET_TIMEOUT * 1000:.0f} ms; each cell: sync / asyncio face\n")
    print(table(observed))


if __name__ == "__main__":
    main()
