"""Benchmark output: Markdown tables, pasted as they are into docs/benchmarks.md."""

from __future__ import annotations

from typing import Any


def table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Print a ``##`` heading and a Markdown table of ``rows`` under ``header``."""
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
