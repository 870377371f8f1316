"""The README's quickstart runs as written (against a real Redis)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_quickstart_runs(redis_url: str) -> None:
    match = re.search(
        r"## Quickstart\n\n(?:<!--[^\n]*-->\n)*```python\n(.*?)```", README.read_text(), re.S
    )
    assert match is not None
    code = match.group(1)
    assert '"redis://localhost:6379/0"' in code
    code = code.replace('"redis://localhost:6379/0"', repr(redis_url))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "231.5"
