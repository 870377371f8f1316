"""Every script in examples/ runs, exits 0 and prints the line that tells its story.

The reference service (``python -m examples.signal_service``) is run by
test_service_replay.py and test_service_run.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "examples").glob("*.py"))

# One line (or the start of one) each script prints when it works, and the
# primitive or composition piece it shows.
EXPECTED = {
    "batching.py": "200 prices in 4 vendor requests of [50, 50, 50, 50] symbols",  # Batcher
    "breaker_vendor_outage.py": "served 26, failed 6, rejected without calling the vendor 28",
    "cache_outage.py": "vendor down: served 232.5 from memory, 12s old, stale=True",
    "live_config.py": "AAPL in session: TTL 15.0 s",  # LiveConfig
    "market_time.py": "skip rate: 75% of 20 checks",  # calendars, AdaptiveTTL, ChangeGate
    "metrics_health.py": "cache hit rate: 60.0 %",  # PerformanceMetrics
    "quickstart.py": "cache: 40 hits, 32 misses, 20 stale values served during the outage",
    "rate_limits.py": "alpha_vantage: 25 of 100 requests granted (daily quota 25)",
    "resilient_fetch.py": "16 calls to the vendor for 24 requests",  # resilient
    "scheduling.py": "runs 8, deadlines hit 8, overdue served 8",  # PriorityScheduler
}


def test_every_example_has_an_expected_line() -> None:
    assert sorted(EXPECTED) == [script.name for script in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_runs(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(EXPECTED[script.name]) for line in lines), result.stdout
