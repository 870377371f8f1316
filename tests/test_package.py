"""The distribution: the sdist and the wheel build, pass `twine check`, and work on their own.

The sdist and the wheel are built once per module from a copy of the repository
(so no build output lands in the working tree), without build isolation: the
build backend comes from the dev extra, so no network is needed. The wheel is
installed into a fresh virtual environment with nothing but its runtime
dependencies, where every public module and name is imported.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from email.message import Message
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "src" / "argo_perf"
REPOSITORY_URL = "https://github.com/argo-perf/argo-perf"
DOCS_URL = "https://argo-perf.readthedocs.io/"
RUNTIME = {"redis", "cachetools", "tenacity", "typing-extensions", "pytz"}
# Installed next to the runtime dependencies: the installer, and what redis-py
# itself needs on older interpreters.
TOOLING = {"pip", "setuptools", "async-timeout"}
NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv*",
    ".benchvenv",
    "*.egg-info",
    "__pycache__",
    "build",
    "dist",
    "site",
    ".*_cache",
    ".hypothesis",
    ".coverage*",
)

# Runs inside the fresh environment: imports the package, then every public module.
PROBE = """
import importlib, importlib.metadata as md, json, pkgutil, re, sys
import argo_perf
report = {
    "file": argo_perf.__file__,
    "version": argo_perf.__version__,
    "metadata_version": md.version("argo-perf"),
    "prometheus_on_import": "prometheus_client" in sys.modules,
    "distributions": sorted(
        re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower() for d in md.distributions()
    ),
    "modules": {},
}
public = ["argo_perf"] + [
    m.name for m in pkgutil.walk_packages(argo_perf.__path__, "argo_perf.")
    if not any(part.startswith("_") for part in m.name.split("."))
]
for name in public:
    module = importlib.import_module(name)
    names = list(getattr(module, "__all__", []))
    namespace = {}
    exec(f"from {name} import *", namespace)
    report["modules"][name] = {
        "exported": names,
        "missing": [n for n in names if n not in namespace],
    }
print(json.dumps(report))
"""


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=180, cwd=cwd
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the sdist and the wheel built from a copy of the repository."""
    source = tmp_path_factory.mktemp("source") / "argo-perf"
    shutil.copytree(REPO, source, ignore=NOT_COPIED)
    out = tmp_path_factory.mktemp("dist")
    # The wheel is built from the sdist, so a file the sdist misses fails here.
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, source)
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("argo_perf-*-py3-none-any.whl")
    return found


@pytest.fixture(scope="module")
def sdist(dist: Path) -> Path:
    (found,) = dist.glob("argo_perf-*.tar.gz")
    return found


@pytest.fixture(scope="module")
def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(name).decode()
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What the probe saw in a fresh environment holding the wheel and its dependencies."""
    env = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel)
    # Run outside the repository, so only the installed copy can be imported.
    report: dict[str, object] = json.loads(_run(python, "-c", PROBE, cwd=env))
    return report


def _python_files(names: list[str], prefix: str) -> set[str]:
    return {n.removeprefix(prefix) for n in names if n.startswith(prefix)}


def test_twine_check_passes_on_the_sdist_and_the_wheel(sdist: Path, wheel: Path) -> None:
    output = _run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)
    assert output.count("PASSED") == 2, output


def test_the_wheel_carries_every_module_py_typed_and_every_lua_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    shipped = _python_files(names, "argo_perf/")
    expected = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.suffix in {".py", ".lua", ".typed"} and "__pycache__" not in path.parts
    }
    assert "py.typed" in expected
    assert {p for p in expected if p.endswith(".lua")}, "no Lua scripts found in src"
    assert expected <= shipped, sorted(expected - shipped)


def test_the_sdist_carries_the_library_and_its_metadata_but_not_the_repository(
    sdist: Path, wheel: Path
) -> None:
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    root = sdist.name.removesuffix(".tar.gz") + "/"
    files = {n.removeprefix(root) for n in names}
    assert {"README.md", "LICENSE", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"} <= files
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = _python_files(archive.namelist(), "argo_perf/")
    assert in_wheel <= _python_files(sorted(files), "src/argo_perf/")
    # The suite needs the whole repository (conftest, examples, docs, scripts): see MANIFEST.in.
    assert not [f for f in files if f.split("/")[0] in {"tests", "docs", "examples", "scripts"}]


def test_metadata_names_the_project_urls_classifiers_and_only_runtime_dependencies(
    metadata: Message,
) -> None:
    urls = dict(entry.split(", ", 1) for entry in metadata.get_all("Project-URL", []))
    assert set(urls) == {"Homepage", "Documentation", "Source", "Changelog", "Issues"}
    assert urls["Documentation"] == DOCS_URL
    assert all(
        url.startswith(REPOSITORY_URL) for label, url in urls.items() if label != "Documentation"
    ), urls
    classifiers = set(metadata.get_all("Classifier", []))
    for expected in (
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Typing :: Typed",
        "Framework :: AsyncIO",
    ):
        assert expected in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.10"
    runtime = [r for r in metadata.get_all("Requires-Dist", []) if "extra ==" not in r]
    assert {re.split(r"[<>=!~; \[]", r, maxsplit=1)[0].lower() for r in runtime} == RUNTIME


def test_the_documented_minimum_redis_py_is_the_declared_and_tested_one(
    metadata: Message,
) -> None:
    (redis,) = [r for r in metadata.get_all("Requires-Dist", []) if r.startswith("redis>")]
    minimum = redis.removeprefix("redis>=")
    assert re.fullmatch(r"\d+\.\d+", minimum), redis
    assert f"redis-py {minimum} or newer" in (REPO / "README.md").read_text()
    assert f"| redis-py (`redis`) | {minimum} |" in (REPO / "docs" / "index.md").read_text()
    assert f'REDIS_MIN="{minimum}.0"' in (REPO / "scripts" / "test").read_text()


def test_the_long_description_links_only_to_absolute_urls(metadata: Message) -> None:
    description = metadata.get_payload()
    assert isinstance(description, str)
    assert description.startswith("# argo_perf")
    targets = re.findall(r"\]\(([^)\s]+)\)", description) + re.findall(r"<([^>\s]+)>", description)
    assert targets
    assert [t for t in targets if not t.startswith("https://")] == []


def test_the_long_description_says_where_files_outside_the_package_are(
    metadata: Message,
) -> None:
    description = metadata.get_payload()
    assert isinstance(description, str)
    repository_path = re.compile(r"\b(?:examples|docs|scripts|benchmarks|tests)/")
    for section in re.split(r"\n(?=## )", description):
        if not repository_path.search(section):
            continue
        # Each section naming repository files says so, in words or by linking to them.
        assert "repository" in section or f"]({REPOSITORY_URL}/" in section, section


def test_the_wheel_installs_with_only_the_runtime_dependencies(
    installed: dict[str, object],
) -> None:
    assert "site-packages" in str(installed["file"])
    distributions = set(installed["distributions"])  # type: ignore[call-overload]
    assert distributions - TOOLING == RUNTIME | {"argo-perf"}


def test_every_public_name_imports_from_the_installed_wheel(
    installed: dict[str, object],
) -> None:
    modules: dict[str, dict[str, list[str]]] = installed["modules"]  # type: ignore[assignment]
    assert "argo_perf.testing" in modules
    assert len(modules["argo_perf"]["exported"]) > 30
    assert {name: m["missing"] for name, m in modules.items() if m["missing"]} == {}


def test_the_installed_version_matches_the_wheel_metadata(
    installed: dict[str, object], metadata: Message, wheel: Path
) -> None:
    assert installed["version"] == installed["metadata_version"] == metadata["Version"]
    assert wheel.name.startswith(f"argo_perf-{metadata['Version']}-")
    import argo_perf

    assert argo_perf.__version__ == metadata["Version"]


def test_importing_the_installed_package_leaves_prometheus_client_alone(
    installed: dict[str, object],
) -> None:
    assert installed["prometheus_on_import"] is False
