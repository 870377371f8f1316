"""The built documentation site: the API reference renders as readers see it.

The site is built once per test session with ``mkdocs build --strict`` (or read
from ``ARGO_PERF_DOCS_SITE`` when the test command has just built it) and every
page is parsed with the standard library's HTML parser.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import argo_perf

ROOT = Path(__file__).resolve().parent.parent

SPHINX_ROLE = re.compile(r":(?:py:)?(?:meth|class|func|attr|mod|exc|data|obj|const):")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_CONSTANT = re.compile(r"\bDEFAULT_[A-Z0-9_]+\b")
VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
CODE_TAGS = frozenset({"code", "pre", "script", "style", "svg"})


# ----------------------------------------------------------------------------- parsing


@dataclasses.dataclass(eq=False)
class Element:
    """One HTML element of a parsed page: enough of a tree to ask where text sits."""

    tag: str
    attrs: dict[str, str]
    parent: Element | None = None
    children: list[Element | str] = dataclasses.field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def texts_outside_code(self) -> Iterator[str]:
        """Text nodes that are not inside a code block, inline code or script."""
        for child in self.children:
            if isinstance(child, str):
                yield child
            elif child.tag not in CODE_TAGS:
                yield from child.texts_outside_code()

    def within(self, tag: str, cls: str | None = None) -> bool:
        node = self.parent
        while node is not None:
            if node.tag == tag and (cls is None or cls in node.classes):
                return True
            node = node.parent
        return False


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("document", {})
        self._open = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, parent=self._open)
        self._open.children.append(element)
        if tag not in VOID_TAGS:
            self._open = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open.children.append(Element(tag, {k: v or "" for k, v in attrs}, self._open))

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self._open
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:  # a stray end tag is ignored
            self._open = node.parent

    def handle_data(self, data: str) -> None:
        self._open.children.append(data)


def parse(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


# ----------------------------------------------------------------------------- checks


def sphinx_roles(page: Element) -> list[str]:
    """Raw Sphinx roles (`:meth:` ...) in text outside code."""
    return [m.group() for t in page.texts_outside_code() for m in SPHINX_ROLE.finditer(t)]


def signature_parts(page: Element) -> Iterator[Element]:
    """Headings of documented objects, separate signatures and `Bases:` lines."""
    for el in page.iter():
        if el.classes & {"doc-heading", "doc-signature", "doc-class-bases"}:
            yield el


def private_names(page: Element) -> list[str]:
    """Names starting with `_` (dunders aside) in signatures, headings and `Bases:`."""
    found = []
    for part in signature_parts(page):
        text = "".join(
            c.text() if isinstance(c, Element) else c
            for c in part.children
            if not (isinstance(c, Element) and "headerlink" in c.classes)
        )
        for name in IDENTIFIER.findall(text):
            if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                found.append(f"{name} in {' '.join(text.split())[:120]!r}")
    return found


def resolve(path: str) -> Any:
    """The object a dotted path names, or None when it names nothing importable."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def undocumented_bases(page: Element) -> list[str]:
    """argo_perf classes in a `Bases:` line that are not a link into the reference."""
    found = []
    for el in page.iter():
        if el.tag != "span" or not el.within("p", "doc-class-bases"):
            continue
        path = el.attrs.get("title", "").split(" ")[0]
        if path.startswith("argo_perf.") and inspect.isclass(resolve(path)):
            found.append(path)
    return found


def is_example_section(el: Element) -> bool:
    classes = el.classes
    if el.tag in ("details", "div") and classes & {"example", "examples"}:
        return True
    return "doc-section-title" in classes and el.text().strip().rstrip(":") in (
        "Example",
        "Examples",
    )


def example_section_body(title: Element) -> list[Element]:
    """What an example section holds: the admonition, or what follows its title."""
    if "doc-section-title" not in title.classes:
        return [title]
    # mkdocstrings renders `Examples:` as <p><span class=doc-section-title>, then its
    # text and code blocks as siblings of that paragraph, up to the next section.
    paragraph = title.parent
    assert paragraph is not None
    assert paragraph.parent is not None
    siblings = [c for c in paragraph.parent.children if isinstance(c, Element)]
    body = []
    for sibling in siblings[siblings.index(paragraph) + 1 :]:
        if any("doc-section-title" in e.classes for e in sibling.iter()):
            break
        if "doc-children" in sibling.classes:
            break
        body.append(sibling)
    return body


def example_problems(page: Element) -> list[str]:
    """Examples that do not render as code: quotes, bare `>>>`, sections with no code."""
    problems = []
    for el in page.iter():
        if (
            el.tag == "blockquote"
            and el.within("div", "doc-contents")
            and not el.within("blockquote")
        ):
            problems.append(f"blockquote in a docstring: {' '.join(el.text().split())[:80]!r}")
        if is_example_section(el):
            body = example_section_body(el)
            if not any(e.tag == "pre" for part in body for e in part.iter()):
                text = " ".join(" ".join(part.text().split()) for part in body)
                problems.append(f"example without a code block: {text[:80]!r}")
    for text in page.texts_outside_code():
        if ">>>" in text:
            problems.append(f"doctest prompt outside code: {' '.join(text.split())[:80]!r}")
    return problems


def default_constants(page: Element) -> list[str]:
    """`DEFAULT_*` constant names where the reference should show a default's value.

    Defaults are shown after `=` in headings and signatures, and in the
    "Default" column of a docstring's parameter table.
    """
    found = [
        m
        for part in signature_parts(page)
        for m in DEFAULT_CONSTANT.findall(part.text().partition("=")[2])
    ]
    for table in page.iter():
        if table.tag != "table":
            continue
        rows = [
            [c for c in tr.children if isinstance(c, Element) and c.tag in ("th", "td")]
            for tr in table.iter()
            if tr.tag == "tr"
        ]
        header = [cell.text().strip() for cell in rows[0]] if rows else []
        if "Default" in header:
            column = header.index("Default")
            found += [m for row in rows[1:] for m in DEFAULT_CONSTANT.findall(row[column].text())]
    return found


def headings_by_id(pages: dict[str, Element]) -> dict[str, tuple[str, Element]]:
    return {
        el.attrs["id"]: (name, el)
        for name, page in pages.items()
        for el in page.iter()
        if "doc-heading" in el.classes and "id" in el.attrs
    }


def rendered_docstring(heading: Element) -> str:
    """The docstring text shown under a reference heading (without `Bases:`)."""
    parent = heading.parent
    assert parent is not None
    siblings = [c for c in parent.children if isinstance(c, Element)]
    for sibling in siblings[siblings.index(heading) + 1 :]:
        if "doc-contents" in sibling.classes:
            return " ".join(
                p.text()
                for p in sibling.iter()
                if p.tag == "p"
                and "doc-class-bases" not in p.classes
                and not p.within("div", "doc-children")
            ).strip()
    return ""


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = os.environ.get("ARGO_PERF_DOCS_SITE")
    if built and (Path(built) / "index.html").is_file():
        return Path(built)
    assert importlib.util.find_spec("mkdocstrings"), (
        "the docs extra is required: pip install -e '.[docs]' (scripts/test installs it)"
    )
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return site_dir


@pytest.fixture(scope="session")
def pages(site: Path) -> dict[str, Element]:
    found = {
        str(path.relative_to(site)): parse(path.read_text(encoding="utf-8"))
        for path in sorted(site.rglob("*.html"))
        if path.relative_to(site).parts[0] not in ("assets", "search")
    }
    assert "cache/index.html" in found
    return found


# ----------------------------------------------------------------------------- the site


PAGE_CHECKS = {
    "no_raw_sphinx_role": sphinx_roles,
    "no_private_name_in_signatures_headings_or_bases": private_names,
    "every_argo_perf_base_class_links_to_its_reference": undocumented_bases,
    "every_example_renders_as_a_code_block": example_problems,
    "defaults_show_values_not_constant_names": default_constants,
}


@pytest.mark.parametrize("check", PAGE_CHECKS.values(), ids=PAGE_CHECKS.keys())
def test_every_page(pages: dict[str, Element], check: Callable[[Element], list[str]]) -> None:
    found = {name: problems for name, page in pages.items() if (problems := check(page))}
    assert found == {}


def test_the_reference_documents_examples_at_all(pages: dict[str, Element]) -> None:
    # Guards the checks above against a rendering change that hides every example.
    sections = [el for page in pages.values() for el in page.iter() if is_example_section(el)]
    assert len(sections) >= 20


def public_modules() -> list[str]:
    """argo_perf and its modules whose dotted path has no private part."""
    names = ["argo_perf"]
    for info in pkgutil.walk_packages(argo_perf.__path__, "argo_perf."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


# `__version__` is package metadata, not an API to document.
PUBLIC_NAMES = [
    (module, name)
    for module in public_modules()
    for name in getattr(importlib.import_module(module), "__all__", ())
    if not name.startswith("__")
]


@pytest.mark.parametrize(("module", "name"), PUBLIC_NAMES)
def test_public_name_is_in_the_reference_with_its_docstring(
    pages: dict[str, Element], module: str, name: str
) -> None:
    headings = headings_by_id(pages)
    obj = getattr(importlib.import_module(module), name)
    anchors = [
        anchor
        for anchor in headings
        if anchor.startswith("argo_perf.")
        and anchor.rsplit(".", 1)[-1] == name
        and resolve(anchor) is obj
    ]
    assert anchors, f"no heading for {module}.{name} in the API reference"
    page, heading = headings[anchors[0]]
    assert rendered_docstring(heading), f"{anchors[0]} on {page} shows no docstring"


# Values (NYSE, DEFAULT_CONFIGS, type aliases) have attribute docstrings, which
# only the source holds: the reference test above checks them.
PUBLIC_CLASSES_AND_FUNCTIONS = [
    (module, name)
    for module, name in PUBLIC_NAMES
    if inspect.isclass(obj := getattr(importlib.import_module(module), name))
    or inspect.isfunction(obj)
]


@pytest.mark.parametrize(("module", "name"), PUBLIC_CLASSES_AND_FUNCTIONS)
def test_public_class_or_function_has_its_own_docstring(module: str, name: str) -> None:
    obj = getattr(importlib.import_module(module), name)
    doc = (obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__) or ""
    assert doc.strip(), f"{module}.{name} has no docstring of its own"
    # A dataclass without a docstring gets its signature as __doc__.
    assert not doc.startswith(f"{name}("), f"{module}.{name} has a generated docstring"


# ----------------------------------------------------------------------------- the checks


def test_check_flags_doctest_lines_rendered_as_quotes() -> None:
    page = parse(
        '<div class="doc-contents"><details class="example"><summary>Example</summary>'
        "<blockquote><blockquote><blockquote><p>clock = ManualClock()\nclock.advance(1.5)"
        "</p></blockquote></blockquote></blockquote></details></div>"
    )
    assert len(example_problems(page)) == 2


def test_check_accepts_an_examples_section_of_code() -> None:
    page = parse(
        '<div class="doc-contents"><p>Text.</p>'
        '<p><span class="doc-section-title">Examples:</span></p>'
        '<div class="highlight"><pre><code>&gt;&gt;&gt; 1 + 1\n2</code></pre></div>'
        '<p><span class="doc-section-title">Raises:</span></p><p>ValueError</p></div>'
    )
    assert example_problems(page) == []


def test_check_flags_an_examples_section_without_code() -> None:
    page = parse(
        '<div class="doc-contents"><p><span class="doc-section-title">Examples:</span></p>'
        "<p>cache.get(key)</p></div>"
    )
    assert example_problems(page) == ["example without a code block: 'cache.get(key)'"]


def test_check_flags_roles_outside_code_only() -> None:
    page = parse("<p>Use :meth:<code>get</code>.</p><pre><code>:class:`X`</code></pre>")
    assert sphinx_roles(page) == [":meth:"]


def test_check_flags_private_bases_and_names_in_headings() -> None:
    page = parse(
        '<h2 class="doc-heading" id="x"><code>argo_perf.x.__init__</code>'
        '<a class="headerlink" href="#x">&para;</a></h2>'
        '<p class="doc-class-bases">Bases: <code><span title="a._b._Face">_Face</span></code></p>'
    )
    assert private_names(page) == ["_Face in 'Bases: _Face'"]


def test_check_flags_an_argo_perf_base_without_a_reference_link() -> None:
    page = parse(
        '<p class="doc-class-bases">Bases: '
        '<code><span title="argo_perf.cache._face.Face">Face</span></code>, '
        '<code><span title="argo_perf.batch.K">K</span></code>, '
        '<code><span title="typing.Protocol">Protocol</span></code></p>'
    )
    assert undocumented_bases(page) == ["argo_perf.cache._face.Face"]


def test_check_flags_constant_names_as_defaults_only() -> None:
    page = parse(
        '<h3 class="doc-heading"><code>connect(timeout=DEFAULT_TIMEOUT)</code></h3>'
        '<h3 class="doc-heading"><code>DEFAULT_CONFIGS = {}</code></h3>'
        "<table><tr><th>Name</th><th>Description</th><th>Default</th></tr>"
        "<tr><td>retries</td><td>see DEFAULT_RETRIES</td><td>3</td></tr>"
        "<tr><td>wait</td><td>seconds</td><td><code>DEFAULT_WAIT</code></td></tr></table>"
    )
    assert default_constants(page) == ["DEFAULT_TIMEOUT", "DEFAULT_WAIT"]
