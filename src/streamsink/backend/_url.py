"""Backend URLs: parsed once by the core, shown without their secrets."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from .._exceptions import ConfigurationError

__all__ = ["BackendURL", "redact_url"]


def _hidden(value: str | None) -> str:
    """attrs ``repr`` of a credential field: whether it is set, never what it is."""
    return "None" if value is None else "'***'"


def _redacted_repr(url: str) -> str:
    return repr(redact_url(url))


@attrs.frozen
class BackendURL:
    """A backend URL parsed once by the core; backends read their options from ``query``.

    ``query`` keeps every key=value pair in order; :meth:`options` turns it into a dict and
    refuses repeated keys. ``str()`` and ``repr()`` never show the user part (user name,
    password or token): it is replaced by ``***``.
    """

    raw: str = attrs.field(repr=_redacted_repr)
    scheme: str
    host: str
    port: int | None
    path: str
    username: str | None = attrs.field(repr=_hidden)
    password: str | None = attrs.field(repr=_hidden)
    query: tuple[tuple[str, str], ...]
    hosts: tuple[tuple[str, int | None], ...] = ()
    """Every ``host[:port]`` of a comma-separated host list (``h1:p1,h2:p2``, as Redis Cluster
    seed lists are written), in order; ``host`` and ``port`` are the first. Empty for a URL
    naming one host or none."""

    @classmethod
    def parse(cls, url: str) -> BackendURL:
        """Split ``scheme://[user[:password]@]host[:port][,host[:port]...][/path][?query]`` into
        its parts, percent-decoding each (a host list goes to :attr:`hosts`).

        Messages show the URL with its user part redacted, never a secret.

        :raises ConfigurationError: not text; no ``scheme://`` or an invalid scheme; a ``#``
            anywhere, or an ``@`` after the host part (both usually a password, user name or
            token holding an unencoded ``#``, ``?``, ``/`` or ``@``: the message says to
            percent-encode it); a malformed host; a bad port.
        """
        if not isinstance(url, str):
            raise ConfigurationError(f"backend URL must be a string, got {type(url).__name__}")
        shown = redact_url(url)
        raw = url
        if "://" not in url:
            raise ConfigurationError(
                f"backend URL {shown!r} has no scheme; expected e.g. 'memory://' or "
                "'redis://localhost:6379/0'"
            )
        scheme_text = url.partition("://")[0]
        if not _SCHEME.fullmatch(scheme_text):
            raise ConfigurationError(
                f"backend URL {shown!r} has an invalid scheme: expected a letter followed by "
                "letters, digits, '+', '-' or '.' before '://'"
            )
        if "#" in url:
            # urlsplit would take everything after it for a fragment and drop it silently.
            raise ConfigurationError(
                f"backend URL {shown!r} holds a '#', which would end the URL: backend URLs take "
                f"no fragment. {_PERCENT_ENCODE}"
            )
        hosts: tuple[tuple[str, int | None], ...] = ()
        if "," in _host_part(url, len(scheme_text) + 3):
            url, hosts = _split_hosts(url, len(scheme_text) + 3, shown)
        # Raised outside the except blocks, so that urlsplit's error, which quotes the host
        # part with the user part, is not even kept as the new error's context.
        failure: str | None = None
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            failure = _split_failure(exc)
        if failure is not None:
            raise ConfigurationError(f"backend URL {shown!r} is malformed: {failure}")
        host_end = len(scheme_text) + 3 + len(parts.netloc)
        if url.rfind("@") >= host_end:
            # The user part ends at the last '@'; a '/' or '?' before it ended the host part
            # early, so the secret would be taken for a host, port, path or option.
            raise ConfigurationError(
                f"backend URL {shown!r} has a '/' or '?' before its last '@', which ends the "
                f"host part early. {_PERCENT_ENCODE}"
            )
        try:
            port, bad_port = parts.port, False
        except ValueError:
            port, bad_port = None, True
        if bad_port:
            raise ConfigurationError(
                f"backend URL {shown!r} has a bad port: expected a number from 0 to 65535 "
                "after the host and ':'"
            )
        return cls(
            raw=raw,
            scheme=scheme_text.lower(),
            host=unquote(parts.hostname or ""),
            port=port,
            path=unquote(parts.path),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
            hosts=hosts,
        )

    def options(self) -> dict[str, str]:
        """The query as a dict. :raises ConfigurationError: a key given twice."""
        result: dict[str, str] = {}
        for key, value in self.query:
            if key in result:
                raise ConfigurationError(f"URL option {key!r} is given more than once in {self}")
            result[key] = value
        return result

    def __str__(self) -> str:
        return redact_url(self.raw)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_PERCENT_ENCODE = (
    "Percent-encode '#', '?', '/' and '@' in a user name, password or token (as %23, %3F, %2F "
    "and %40), and '#' and '@' in a path or option value."
)


def _authority_end(url: str, start: int) -> int:
    """Where the authority of ``url`` (starting at ``start``) ends: at the path, query or
    fragment."""
    end = len(url)
    for mark in "/?#":
        at = url.find(mark, start)
        if at >= 0:
            end = min(end, at)
    return end


def _host_part(url: str, start: int) -> str:
    """The ``host[:port][,host[:port]...]`` text of ``url``: its authority after the last
    ``@``."""
    return url[start : _authority_end(url, start)].rpartition("@")[2]


def _split_hosts(
    url: str, start: int, shown: str
) -> tuple[str, tuple[tuple[str, int | None], ...]]:
    """``url`` with its host list cut to the first host, and every host with its port.

    :raises ConfigurationError: an empty host in the list or a bad port.
    """
    host_text = _host_part(url, start)
    at = _authority_end(url, start) - len(host_text)
    hosts: list[tuple[str, int | None]] = []
    for piece in host_text.split(","):
        failure: str | None = None
        try:
            parts = urlsplit("//" + piece)
            port = parts.port
        except ValueError as exc:
            failure = _split_failure(exc) if "port" not in str(exc).lower() else "a bad port"
        if failure is not None:
            raise ConfigurationError(
                f"backend URL {shown!r} has a malformed host in its host list: {failure} "
                "(expected host:port,host:port,...)"
            )
        if not parts.hostname:
            raise ConfigurationError(
                f"backend URL {shown!r} has an empty host in its host list "
                "(expected host:port,host:port,...)"
            )
        hosts.append((unquote(parts.hostname), port))
    first = host_text.split(",", 1)[0]
    return url[:at] + first + url[at + len(host_text) :], tuple(hosts)


def _split_failure(exc: ValueError) -> str:
    """Why urlsplit refused a URL, in words that do not quote it."""
    text = str(exc)
    if "IPv6" in text:
        return "an unbalanced '[' or ']' around an IPv6 host"
    if "NFKC" in text:
        return (
            "its user or host part holds characters that Unicode normalization turns into "
            "'/', '?', '#', '@' or ':' (such as full-width ones); percent-encode them"
        )
    return "it cannot be split into scheme, host, path and query"


def redact_url(url: str) -> str:
    """``url`` with its whole user part (user name, password or token) replaced by ``***``.

    The user part is everything from ``scheme://`` (from the start, in text without a valid
    scheme) to the **last** ``@``, wherever urlsplit would end the host part: a password holding
    an unencoded ``/``, ``?`` or ``#`` is still hidden whole, and so is text that does not parse
    as a URL. An ``@`` in a path or option value counts too, hiding more than the user part
    (the host as well) rather than ever showing a secret. Idempotent.
    """
    prefix = _SCHEME_PREFIX.match(url)
    start = prefix.end() if prefix else 0
    at = url.rfind("@", start)
    if at < 0:
        return url
    return f"{url[:start]}***{url[at:]}"
