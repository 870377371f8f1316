"""Redis URLs: refusing a malformed one and keeping its password out of every message.

Besides redis-py's own forms (``redis://``, ``rediss://``, ``unix://``) two forms
name a set of servers, parsed here (`parse_topology`):

* ``redis+cluster://[user:password@]host:port[,host:port...][?options]``: the
  startup nodes of a Redis Cluster;
* ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db][?options]``:
  the sentinels that know where the master of ``service`` is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, unquote_plus

from ..errors import ConfigError

__all__ = [
    "CLUSTER",
    "SENTINEL",
    "Topology",
    "bad_url",
    "check_url",
    "parse_topology",
    "redact_url",
]

CLUSTER = "redis+cluster"
SENTINEL = "redis+sentinel"
_SCHEMES = ("redis", "rediss", "unix", CLUSTER, SENTINEL)
_SCHEME_NAMES = "a redis://, rediss://, unix://, redis+cluster:// or redis+sentinel:// URL"
_DEFAULT_PORT = {CLUSTER: 6379, SENTINEL: 26379}
# Options the multi-host forms accept in their query, with how each is read.
_NUMBER_OPTIONS = ("socket_timeout", "socket_connect_timeout")
_TEXT_OPTIONS = ("sentinel_username", "sentinel_password")
_HOST_PORT = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]]+))(?::(?P<port>\d{1,5}))?"
)


_QUERY_PARAM = re.compile(r"[?&]([^=&?#]*)=")
_SAFE_USER = re.compile(r"[A-Za-z0-9._~-]*")


def _secret_spans(url: str) -> list[tuple[int, int]]:
    """Where ``url`` may hold a secret, as (start, end) index pairs.

    Deliberately not a URL parser: a password with an unencoded ``#``, ``/``,
    ``?`` or ``@`` makes parsers split the URL in the wrong place. The user
    information ends at the *last* ``@`` (so everything between the scheme and
    it is taken as secret, apart from a plain user name before a ``:``), and
    so is everything after a query parameter named like ``password``.
    Redacting too much is harmless; too little is a leak.
    """
    spans: list[tuple[int, int]] = []
    scheme_end = url.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    at = url.rfind("@")
    if at >= start:
        user, colon, _ = url[start:at].partition(":")
        if colon and _SAFE_USER.fullmatch(user):
            start += len(user) + 1
        spans.append((start, at))
    for match in _QUERY_PARAM.finditer(url):
        if "pass" in unquote_plus(match.group(1)).lower():
            # To the end: an unencoded '&' or '#' may be part of the password.
            spans.append((match.end(), len(url)))
            break
    return spans


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if end <= pos:
            continue
        out.append(text[pos:start] if start > pos else "")
        out.append("***")
        pos = max(pos, end)
    out.append(text[pos:])
    return "".join(out)


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for logs, reprs and errors).

    Safe for any string, well-formed or not: ``redis://user:p#ss@host/0``
    becomes ``redis://user:***@host/0`` although a URL parser would take
    ``#ss@host/0`` for a fragment. What is redacted: everything between the
    scheme and the last ``@`` except a plain user name, and everything after
    a ``password=`` query parameter's ``=``.
    """
    return _mask(url, _secret_spans(url))


def check_url(url: str) -> None:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ConfigError("url", redact_url(url), f"must be {_SCHEME_NAMES}")
    start, at = len(scheme) + 3, url.rfind("@")
    if at > start and any(char in url[start:at] for char in "/?#"):
        # A parser would end the user information early and take the rest of the
        # password for a host, path, query or fragment.
        raise ConfigError(
            "url",
            redact_url(url),
            "has '/', '?' or '#' before its last '@': percent-encode them in the password "
            "(urllib.parse.quote(password, safe=''))",
        )


def bad_url(url: str, exc: ValueError) -> ConfigError:
    if _secret_spans(url):
        # The parser's message may quote a piece of the URL (a "port" that is really
        # the part of a password before an unencoded '#', or a whole netloc).
        reason = (
            "a port, host or option could not be parsed; percent-encode # / ? @ : in a password"
        )
    else:
        reason = str(exc)
    return ConfigError("url", redact_url(url), f"must be a valid redis URL ({reason})")


@dataclass(frozen=True)
class Topology:
    """A ``redis+cluster://`` or ``redis+sentinel://`` URL, taken apart (no I/O)."""

    scheme: str
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    service: str | None = None
    db: int = 0
    options: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def is_cluster(self) -> bool:
        return self.scheme == CLUSTER


def topology_scheme(url: str) -> str | None:
    """``CLUSTER`` or ``SENTINEL`` for those URL forms, else None (no checks)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme if scheme in (CLUSTER, SENTINEL) else None


def _refuse(url: str, reason: str) -> ConfigError:
    return ConfigError("url", redact_url(url), reason)


def parse_topology(url: str) -> Topology:
    """Take a ``redis+cluster://`` or ``redis+sentinel://`` URL apart.

    Raises:
        ConfigError: a malformed URL (shown without its password): no host, a
            bad port, a sentinel URL without a service name, a cluster URL with
            a database other than 0, or an unknown option.
    """
    check_url(url)
    scheme = topology_scheme(url)
    assert scheme is not None
    rest = url[len(scheme) + 3 :]
    username = password = None
    at = rest.rfind("@")
    if at >= 0:
        user, colon, secret = rest[:at].partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        rest = rest[at + 1 :]
    rest, _, query = rest.partition("?")  # a '#' in the query belongs to a value
    rest = rest.partition("#")[0]
    hosts, slash, path = rest.partition("/")
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        match = _HOST_PORT.fullmatch(item)
        port = int(match["port"]) if match and match["port"] else _DEFAULT_PORT[scheme]
        if match is None or not 0 < port < 65536:
            raise _refuse(url, f"has a bad host:port {item!r} (hosts are separated by ',')")
        nodes.append((match["v6"] or match["host"], port))
    service, db = _path(url, scheme, path if slash else "")
    return Topology(
        scheme, tuple(nodes), username, password, service, db, _options(url, scheme, query)
    )


def _path(url: str, scheme: str, path: str) -> tuple[str | None, int]:
    parts = [unquote(part) for part in path.split("/")] if path else []
    if scheme == SENTINEL:
        if not parts or not parts[0]:
            raise _refuse(url, "must name the service: redis+sentinel://host:port/service[/db]")
        service, db_parts = parts[0], parts[1:]
    else:
        service, db_parts = None, parts
    db_text = db_parts[0] if db_parts and db_parts[0] else "0"
    if len(db_parts) > 1 or not db_text.isdigit():
        raise _refuse(url, f"has a bad database {'/'.join(db_parts)!r}")
    db = int(db_text)
    if scheme == CLUSTER and db != 0:
        raise _refuse(url, f"names database {db}; a Redis Cluster has only database 0")
    return service, db


def _options(url: str, scheme: str, query: str) -> dict[str, object]:
    options: dict[str, object] = {}
    allowed: tuple[str, ...] = ("max_connections", *_NUMBER_OPTIONS)
    if scheme == SENTINEL:
        allowed = (*allowed, *_TEXT_OPTIONS)
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in allowed:
            # The name is not shown: an unencoded '&' in a password makes one.
            raise _refuse(url, f"has an unknown option (known: {', '.join(allowed)})")
        if name in _TEXT_OPTIONS:
            options[name] = value
            continue
        try:
            number = int(value) if name == "max_connections" else float(value)
        except ValueError:
            number = 0
        if not 0 < number < math.inf:
            raise _refuse(url, f"has a bad value for {name}: a positive number is needed")
        options[name] = number
    return options
