"""Every code block of the docs (and the README) marked as runnable runs as written.

A runnable block is a fenced ```python block whose line before the fence is an
HTML comment (invisible on the built site and on GitHub):

    <!-- runnable -->                     runs offline, nothing needed
    <!-- runnable redis -->               needs a Redis at redis://localhost:6379/0
    <!-- runnable redis-cluster -->       needs a Redis Cluster (REDIS_CLUSTER_URL below)
    <!-- runnable redis-sentinel -->      needs a Sentinel group (REDIS_SENTINEL_URL below)
    <!-- runnable expect="231.5" -->      and a line of its output is exactly 231.5

Each block runs as its own script in a fresh interpreter, with the documented
URL replaced by the URL of a real server started by the fixtures; it must exit 0
(and print the expected line, when one is given). Snippets included with
``--8<-- "FILE:section"`` are expanded first, as mkdocs does.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from argo_perf.testing import RedisCluster, RedisSentinelGroup

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The URLs the docs write, replaced by the fixtures' servers.
REDIS_URL = "redis://localhost:6379/0"
REDIS_CLUSTER_URL = "redis+cluster://localhost:7000,localhost:7001,localhost:7002"
REDIS_SENTINEL_URL = "redis+sentinel://localhost:26379,localhost:26380,localhost:26381/argo/0"
NEEDS = {
    "redis": REDIS_URL,
    "redis-cluster": REDIS_CLUSTER_URL,
    "redis-sentinel": REDIS_SENTINEL_URL,
}

MARKER = re.compile(
    r"^<!-- runnable(?P<args>[^>]*?)\s*-->\n```python\n(?P<code>.*?)^```", re.M | re.S
)
SNIPPET = re.compile(r'^--8<-- "(?P<file>[^":]+)(?::(?P<section>[\w-]+))?"$', re.M)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    needs: tuple[str, ...]
    expect: str | None
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def expand_snippets(text: str) -> str:
    """Inline ``--8<-- "FILE"`` and ``--8<-- "FILE:section"`` as pymdownx.snippets does."""

    def include(match: re.Match[str]) -> str:
        body = (ROOT / match["file"]).read_text()
        section = match["section"]
        if section is None:
            return body
        start = re.search(rf"^.*--8<-- \[start:{section}\].*\n", body, re.M)
        end = re.search(rf"^.*--8<-- \[end:{section}\].*$", body, re.M)
        assert start is not None, f"no start of {section} in {match['file']}"
        assert end is not None, f"no end of {section} in {match['file']}"
        return body[start.end() : end.start()]

    return SNIPPET.sub(include, text)


def runnable_blocks(path: Path) -> list[Block]:
    text = expand_snippets(path.read_text())
    blocks = []
    for match in MARKER.finditer(text):
        words = shlex.split(match["args"])
        expect = next((w.split("=", 1)[1] for w in words if w.startswith("expect=")), None)
        needs = tuple(w for w in words if not w.startswith("expect="))
        unknown = set(needs) - set(NEEDS)
        assert not unknown, f"{path.name}: unknown runnable marker {sorted(unknown)}"
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(path.name, line, needs, expect, match["code"]))
    return blocks


BLOCKS = [block for page in PAGES for block in runnable_blocks(page)]


def test_the_pages_a_new_user_follows_have_runnable_blocks() -> None:
    pages = {block.page for block in BLOCKS}
    assert {"README.md", "index.md", "getting-started.md", "recipes.md"} <= pages


def test_every_recipe_is_runnable() -> None:
    text = (ROOT / "docs" / "recipes.md").read_text()
    fences = len(re.findall(r"^```python$", text, re.M))
    assert fences == len(runnable_blocks(ROOT / "docs" / "recipes.md"))


def test_a_marker_without_a_python_block_after_it_is_caught() -> None:
    for page in PAGES:
        text = expand_snippets(page.read_text())
        markers = len(re.findall(r"^<!-- runnable", text, re.M))
        assert markers == len(runnable_blocks(page)), page.name


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_block_runs_as_written(block: Block, request: pytest.FixtureRequest) -> None:
    code = block.code
    for need in block.needs:
        documented = NEEDS[need]
        assert documented in code, f"{block.id} is marked {need} but never names {documented}"
        code = code.replace(documented, server_url(need, request))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"{block.id}\n{result.stdout}\n{result.stderr}"
    if block.expect is not None:
        assert block.expect in result.stdout.splitlines(), f"{block.id}\n{result.stdout}"


def server_url(need: str, request: pytest.FixtureRequest) -> str:
    if need == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    if need == "redis-cluster":
        cluster: RedisCluster = request.getfixturevalue("cluster")
        return cluster.url
    sentinels: RedisSentinelGroup = request.getfixturevalue("sentinels")
    return sentinels.url
