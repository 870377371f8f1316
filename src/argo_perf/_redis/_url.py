"""Redis URLs: refusing a malformed one and keeping its password out of every message."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from ..errors import ConfigError

__all__ = ["bad_url", "check_url", "redact_url"]

_SCHEMES = ("redis", "rediss", "unix")


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
        raise ConfigError("url", redact_url(url), "must be a redis://, rediss:// or unix:// URL")
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
