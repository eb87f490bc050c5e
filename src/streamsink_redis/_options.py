"""Redis backend options, validated from a URL query into a frozen record (no redis import here)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias, final

import attrs

from streamsink import ConfigurationError
from streamsink.backend import BackendURL
from streamsink.backend.options import (
    bool_from_text,
    int_from_text,
    option_error,
    options_from_query,
    retention_seconds,
    seconds_from_text,
    seconds_or_zero_from_text,
    text_or_none_from_text,
)

from ._cluster_url import (
    CLUSTER_KEYS,
    CLUSTER_SCHEMES,
    cluster_seeds,
    refuse_keepalive,
    wait_timeout_check,
)
from ._target import ConnectionTarget

__all__ = ["ConnectionTarget", "RedisOptions", "accepted_keys", "parse_url"]

SslCertReqs: TypeAlias = Literal["none", "optional", "required"]

_STREAM_KEYS = (
    "maxlen",
    "key_prefix",
    "block_ms",
    "count",
    "claim_interval_ms",
    "pulse_keepalive",
    "shared_read_connections",
    "shared_read_streams",
    "max_age",
    "idle_ttl",
)
_CONNECTION_KEYS = (
    "db",
    "socket_timeout",
    "socket_connect_timeout",
    "health_check_interval",
    "max_connections",
    "retries",
    "client_name",
)
_SSL_KEYS = (
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
)
_SCHEMES = ("redis", "rediss", "unix", "fakeredis", *CLUSTER_SCHEMES)


def accepted_keys(scheme: str) -> tuple[str, ...]:
    """The URL query keys a scheme accepts, in documentation order."""
    if scheme == "fakeredis":
        return _STREAM_KEYS
    if scheme in CLUSTER_SCHEMES:
        # A cluster has database 0 only.
        connection = tuple(key for key in _CONNECTION_KEYS if key != "db")
        ssl = _SSL_KEYS if scheme == "rediss+cluster" else ()
        return _STREAM_KEYS + connection + CLUSTER_KEYS + ssl
    if scheme == "rediss":
        return _STREAM_KEYS + _CONNECTION_KEYS + _SSL_KEYS
    return _STREAM_KEYS + _CONNECTION_KEYS


def _invalid(name: str, value: object, expected: str) -> ConfigurationError:
    return option_error("RedisOptions", name, value, expected)


PULSE_KEY_PREFIX = "pulse:stream:"


def _fakeredis_keepalive() -> ConfigurationError:
    return _invalid(
        "pulse_keepalive",
        True,
        "false on fakeredis (pulse's keep-alive scripts need Lua's struct library, which "
        "fakeredis lacks, and no Go pulse sink can share an in-process server)",
    )


_MAX_INT = 2**63 - 1  # Redis refuses larger integers ("value is not an integer or out of range")


def _int_at_least(minimum: int, note: str = "") -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    expected = f"an integer >= {minimum}{note}"

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _invalid(attribute.name, value, expected)
        if value > _MAX_INT:
            raise _invalid(attribute.name, value, f"an integer <= {_MAX_INT}")

    check.expected = expected  # type: ignore[attr-defined]  # what a bad URL value is told
    return check


def _optional_seconds(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise _invalid(attribute.name, value, "a number of seconds > 0, or 'none' for no timeout")


def _optional_text(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise _invalid(attribute.name, value, "a non-empty string")


def _client_name(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # CLIENT SETNAME refuses spaces, newlines and anything outside '!'..'~'; checked here, the
    # mistake is named when the URL is parsed instead of surfacing as a failed connect.
    if value is None:
        return
    if not isinstance(value, str) or not value or not all("!" <= c <= "~" for c in value):
        raise _invalid(
            attribute.name,
            value,
            "a non-empty name of printable ASCII characters, '!' to '~' (without spaces, "
            "control or non-ASCII characters)",
        )


def _key_prefix(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise _invalid(attribute.name, value, "a string")


def _cert_reqs(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in ("none", "optional", "required"):
        raise _invalid(attribute.name, value, "one of 'none', 'optional', 'required'")


def _bool(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise _invalid(attribute.name, value, "a boolean")


def _bool_or_none(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise _invalid(attribute.name, value, "a boolean, or None for the default")


@final
@attrs.frozen(kw_only=True)
class RedisOptions:
    """How the Redis backend reads, writes and connects. Parsed from the URL query.

    Stream options (every scheme, ``fakeredis://`` included):

    - ``maxlen``: approximate maximum length of each stream (``XADD MAXLEN ~``); 0 = unbounded.
    - ``key_prefix``: Redis key of a stream is ``key_prefix + stream id`` (pulse: ``pulse:stream:``).
    - ``block_ms``: upper bound of one blocking read; longer waits asked by the core are cut to it
      (default 60 s: what an idle group subscription asks; a fan-out reader asks for 5 s).
    - ``count``: upper bound of entries fetched by one read or claim (``XREADGROUP COUNT``).
    - ``claim_interval_ms``: how often the core should call ``claim_idle`` (pulse: 500 ms).
    - ``pulse_keepalive``: group consumers take part in pulse's keep-alive protocol, so that Go
      pulse sinks sharing a group neither delete them nor have their entries taken while they
      live (see :mod:`streamsink_redis._keepalive`). ``None`` (default): on when ``key_prefix``
      is pulse's ``pulse:stream:`` on a real Redis, off on fakeredis (it has no Lua ``struct``
      library, and no Go process can share an in-process server, so ``True`` is refused there).
    - ``shared_read_connections``: read connections of the shared reads that serve every fan-out
      subscription of the process (default 2): one blocking ``XREAD`` of many streams each.
    - ``shared_read_streams``: streams one shared ``XREAD`` reads before the next connection is
      used (default 500); with every connection that full, streams go to the least loaded one.
    - ``max_age``: seconds; each append also trims its stream of entries older than that by the
      server's clock (``XTRIM MINID ~``, see :mod:`streamsink_redis._retention`). 0 = off.
    - ``idle_ttl``: seconds; each append also sets its stream to expire that long after it
      (``PEXPIRE``): the key, groups included, goes once nobody appends. 0 = off.

    Connection options (``redis://``, ``rediss://``, ``unix://``): ``db``, ``socket_timeout``,
    ``socket_connect_timeout`` (seconds, ``none`` = no timeout), ``health_check_interval``
    (seconds, 0 = off), ``max_connections`` (shared pool size; callers wait for a free
    connection), ``retries`` (immediate retries on a fresh connection after a connection error),
    ``client_name`` (what ``CLIENT SETNAME`` accepts: printable ASCII from ``!`` to ``~``, no
    spaces); and for ``rediss://`` the ``ssl_*`` options.

    Cluster options (``redis+cluster://``, ``rediss+cluster://``; no ``db``: a cluster has
    database 0 only): ``wait_replicas``, after an append ``WAIT wait_replicas`` on each master
    that took entries, fewer acknowledging replicas raising :class:`~streamsink.DurabilityError`
    (the entries are written on the master all the same; 0, the default: no WAIT);
    ``wait_timeout``, the seconds WAIT may take (default 1). ``pulse_keepalive`` is off on a
    cluster, and ``true`` is refused: pulse's keep-alive keys lie in other slots than the stream.

    Blocking reads run on a dedicated connection per consumer with their own deadline
    (the wait plus ``socket_timeout``), so ``block_ms`` never trips ``socket_timeout``.
    """

    maxlen: int = attrs.field(default=1000, validator=_int_at_least(0, " (0 = unbounded)"))
    key_prefix: str = attrs.field(default=PULSE_KEY_PREFIX, validator=_key_prefix)
    block_ms: int = attrs.field(default=60_000, validator=_int_at_least(1))
    count: int = attrs.field(default=100, validator=_int_at_least(1))
    claim_interval_ms: int = attrs.field(default=500, validator=_int_at_least(1))
    pulse_keepalive: bool | None = attrs.field(default=None, validator=_bool_or_none)
    shared_read_connections: int = attrs.field(default=2, validator=_int_at_least(1))
    shared_read_streams: int = attrs.field(default=500, validator=_int_at_least(1))
    db: int = attrs.field(default=0, validator=_int_at_least(0))
    socket_timeout: float | None = attrs.field(default=5.0, validator=_optional_seconds)
    socket_connect_timeout: float | None = attrs.field(default=5.0, validator=_optional_seconds)
    health_check_interval: int = attrs.field(default=0, validator=_int_at_least(0))
    max_connections: int = attrs.field(default=50, validator=_int_at_least(1))
    retries: int = attrs.field(default=1, validator=_int_at_least(0))
    client_name: str | None = attrs.field(default=None, validator=_client_name)
    ssl_cert_reqs: SslCertReqs = attrs.field(default="required", validator=_cert_reqs)
    ssl_ca_certs: str | None = attrs.field(default=None, validator=_optional_text)
    ssl_ca_path: str | None = attrs.field(default=None, validator=_optional_text)
    ssl_certfile: str | None = attrs.field(default=None, validator=_optional_text)
    ssl_keyfile: str | None = attrs.field(default=None, validator=_optional_text)
    ssl_check_hostname: bool = attrs.field(default=True, validator=_bool)
    max_age: float = attrs.field(default=0, validator=retention_seconds)
    idle_ttl: float = attrs.field(default=0, validator=retention_seconds)
    wait_replicas: int = attrs.field(default=0, validator=_int_at_least(0, " (0 = no WAIT)"))
    wait_timeout: float = attrs.field(default=1.0, validator=wait_timeout_check)

    @property
    def block(self) -> float:
        """``block_ms`` in seconds."""
        return self.block_ms / 1000

    @property
    def claim_interval(self) -> float:
        """``claim_interval_ms`` in seconds: how often the core should call ``claim_idle``."""
        return self.claim_interval_ms / 1000

    def connection_fields_changed(self) -> tuple[str, ...]:
        """Names of connection/ssl options that differ from their defaults."""
        default = RedisOptions()
        return tuple(
            name
            for name in _CONNECTION_KEYS + _SSL_KEYS + CLUSTER_KEYS
            if getattr(self, name) != getattr(default, name)
        )

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, scheme: str = "redis") -> RedisOptions:
        """Validate URL query options for ``scheme``.

        :raises ConfigurationError: an unknown key (the message lists the accepted ones) or a bad
            value (the message names the option, the value and what was expected).
        """
        options = options_from_query(
            cls,
            query,
            owner=f"{scheme}:// URL",
            parsers=_PARSERS,
            accepted=accepted_keys(scheme),
        )
        if scheme == "fakeredis" and options.pulse_keepalive:
            raise _fakeredis_keepalive()
        if scheme in CLUSTER_SCHEMES:
            if options.pulse_keepalive:
                raise refuse_keepalive()
            options = attrs.evolve(options, pulse_keepalive=False)
        return options

    def keepalive_on(self, *, fake: bool) -> bool:
        """Whether group consumers take part in pulse's keep-alive (``pulse_keepalive``, or its
        default for this server: on for pulse's key prefix on a real Redis).

        :raises ConfigurationError: ``pulse_keepalive=True`` on fakeredis.
        """
        if self.pulse_keepalive is None:
            return not fake and self.key_prefix == PULSE_KEY_PREFIX
        if self.pulse_keepalive and fake:
            raise _fakeredis_keepalive()
        return self.pulse_keepalive


_PARSERS: dict[str, Callable[[str], Any]] = {
    "maxlen": int_from_text,
    "key_prefix": str,
    "block_ms": int_from_text,
    "count": int_from_text,
    "claim_interval_ms": int_from_text,
    "pulse_keepalive": bool_from_text,
    "shared_read_connections": int_from_text,
    "shared_read_streams": int_from_text,
    "db": int_from_text,
    "socket_timeout": seconds_from_text,
    "socket_connect_timeout": seconds_from_text,
    "health_check_interval": int_from_text,
    "max_connections": int_from_text,
    "retries": int_from_text,
    "client_name": text_or_none_from_text,
    "ssl_cert_reqs": lambda text: text.strip().lower(),
    "ssl_ca_certs": text_or_none_from_text,
    "ssl_ca_path": text_or_none_from_text,
    "ssl_certfile": text_or_none_from_text,
    "ssl_keyfile": text_or_none_from_text,
    "ssl_check_hostname": bool_from_text,
    "max_age": seconds_or_zero_from_text,
    "idle_ttl": seconds_or_zero_from_text,
    "wait_replicas": int_from_text,
    "wait_timeout": seconds_from_text,
}


def parse_url(url: BackendURL) -> tuple[RedisOptions, ConnectionTarget]:
    """Turn a ``redis://``, ``rediss://``, ``unix://``, ``fakeredis://``, ``redis+cluster://`` or
    ``rediss+cluster://`` URL into options and a target.

    :raises ConfigurationError: another scheme, bad options, or a malformed location.
    """
    scheme = url.scheme
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"the redis backend serves {', '.join(s + '://' for s in _SCHEMES)}, not {scheme}://"
        )
    query = dict(url.options())
    if scheme == "fakeredis":
        return RedisOptions.from_query(query, scheme=scheme), _fake_target(url)
    if scheme in CLUSTER_SCHEMES:
        target = ConnectionTarget(
            kind="cluster",
            seeds=cluster_seeds(url),
            username=url.username,
            password=url.password,
            ssl=scheme == "rediss+cluster",
        )
        return RedisOptions.from_query(query, scheme=scheme), target

    path_db: int | None = None
    if scheme == "unix":
        if url.host or url.port is not None:
            raise ConfigurationError(
                f"unix:// URL {url} names a host; expected unix:///path/to/redis.sock?db=0"
            )
        if not url.path or url.path == "/":
            raise ConfigurationError(
                f"unix:// URL {url} has no socket path; expected unix:///path/to/redis.sock"
            )
        target = ConnectionTarget(
            kind="unix", path=url.path, username=url.username, password=url.password
        )
    else:
        db_text = url.path.strip("/")
        if db_text:
            if not db_text.isdigit():
                raise ConfigurationError(
                    f"{scheme}:// URL {url} has path {url.path!r}; expected /<db number> or none"
                )
            path_db = int(db_text)
        target = ConnectionTarget(
            kind="tcp",
            host=url.host or "localhost",
            port=6379 if url.port is None else url.port,
            username=url.username,
            password=url.password,
            ssl=scheme == "rediss",
        )
    if path_db is not None:
        if "db" in query and _db_in_query(query["db"]) not in (None, path_db):
            raise ConfigurationError(
                f"{scheme}:// URL {url} names db {path_db} in its path and db={query['db']} "
                "in its query; give one"
            )
        query["db"] = str(path_db)
    return RedisOptions.from_query(query, scheme=scheme), target


def _db_in_query(text: str) -> int | None:
    """The query's ``db``, or None when it is not an integer (``from_query`` then says so)."""
    try:
        return int_from_text(text)
    except ValueError:
        return None


def _fake_target(url: BackendURL) -> ConnectionTarget:
    if url.username or url.password or url.port is not None:
        raise ConfigurationError(
            f"fakeredis:// URL {url} has credentials or a port; expected fakeredis://[name]"
        )
    if url.path not in ("", "/"):
        raise ConfigurationError(f"fakeredis:// URL {url} has a path; expected fakeredis://[name]")
    return ConnectionTarget(kind="fake", fake_name=url.host)
