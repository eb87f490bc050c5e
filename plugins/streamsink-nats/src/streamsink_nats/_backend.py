"""The NATS JetStream backend: one JetStream stream per streamsink stream.

Each streamsink stream ``s`` is a JetStream stream ``<stream_prefix><encode(s)>`` holding the one
subject ``<subject_prefix>.<encode(s)>`` (see :mod:`._names`); entry ids are JetStream stream
sequences as decimal text, strictly increasing per stream. ``destroy`` deletes the JetStream
stream, so its entries and every group (durable consumer) on it go at once, and trimming is the
stream's own ``max_msgs``.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

import anyio
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import api
from streamsink import (
    BackendClosedError,
    BackendUnavailableError,
    Capabilities,
    ConfigurationError,
    StreamDestroyedError,
    StreamsinkError,
)
from streamsink.backend import (
    DEFAULT_ACK_GRACE_PERIOD,
    BackendURL,
    Entry,
    StartPosition,
    StreamInfo,
)
from streamsink.lowlevel import running_loop

from ._append import NAME_HEADER, TOPIC_HEADER, append
from ._errors import translated
from ._inspect import stream_info
from ._names import MAX_NAME, encode
from ._operate import OperationsMixin
from ._options import NatsOptions

__all__ = ["CAPABILITIES", "NAME_HEADER", "TOPIC_HEADER", "NatsBackend"]

CAPABILITIES = Capabilities(
    consumer_groups=True,
    fan_out=True,
    redelivery=True,
    claims=False,  # JetStream redelivers after AckWait by itself, through read_new
    own_pending=False,  # pending entries belong to the durable consumer (the group), not a name
    term=True,  # +TERM
    entry_times=True,  # the stream's own timestamp of each message, what BY_START_TIME compares
    trim=True,  # max_msgs
    destroy_ends_subscriptions=True,
    trio=False,  # nats-py runs on asyncio only
    persistent=True,  # file storage (the default)
    reports_gaps=True,  # sequences have no holes; groups compare consumer and stream sequences
    stream_info=True,  # JetStream's stream state: first and last sequence
    operations=True,  # streams, durable consumers, this backend's members, purges
    max_age=True,  # the stream's own max_age (there is no idle expiry of a stream: no idle_ttl)
)


class NatsBackend(OperationsMixin):
    """A connection to a NATS server (or cluster) with JetStream enabled.

    Open with :meth:`connect`. Group consumers, readers and ``destroy`` follow the SPI of
    :mod:`streamsink.backend`; errors leave as streamsink errors.
    """

    def __init__(self, nc: Client, options: NatsOptions, description: str) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=options.request_timeout)
        self._options = options
        self._description = description
        self._closed = False
        # JetStream stream name -> its creation time, for the streams this backend saw exist
        self._created: dict[str, object] = {}
        self._generations: dict[str, int] = {}  # stream id -> times destroyed through us
        self._handles: set[Any] = set()  # open group consumers and readers
        self.capabilities: Capabilities = (
            CAPABILITIES
            if options.storage == "file"
            else attrs_evolve(CAPABILITIES, persistent=False)
        )

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: BackendURL | str, **overrides: Any) -> NatsBackend:
        """Connect to the server a ``nats://[user:password@|token@]host[:port][?options]`` (or
        ``nats+tls://``) URL names; ``overrides`` replace URL options (e.g. ``max_msgs=0``).

        :raises ConfigurationError: another scheme, a path, a bad option, or not running on
            asyncio (nats-py runs on asyncio only).
        :raises BackendUnavailableError: the server cannot be reached.
        """
        if running_loop() is None:
            raise ConfigurationError(
                "the nats:// backend runs on asyncio only (nats-py); run this program under "
                "asyncio, or anyio with backend='asyncio'"
            )
        if isinstance(url, str):
            url = BackendURL.parse(url)
        if url.scheme not in ("nats", "nats+tls"):
            raise ConfigurationError(f"{url} is not a nats:// or nats+tls:// URL")
        if url.path not in ("", "/"):
            raise ConfigurationError(
                f"nats backend URL {url} must not have a path; expected "
                "nats://host:4222 with options such as ?max_msgs=1000"
            )
        query = url.options()
        query.update({key: str(value) for key, value in overrides.items()})
        options = NatsOptions.from_query(query)
        host = url.host or "127.0.0.1"
        port = url.port or 4222
        location = f"[{host}]" if ":" in host else host
        tls = url.scheme == "nats+tls"
        server = f"{'tls' if tls else 'nats'}://{location}:{port}"
        description = f"{url.scheme}://{location}:{port}"
        credentials: dict[str, Any] = {}
        if url.username is not None and url.password is not None:
            credentials = {"user": url.username, "password": url.password}
        elif url.username is not None:
            credentials = {"token": url.username}
        failure: str | None = None
        try:
            with anyio.fail_after(options.connect_timeout + 1):
                nc = await nats.connect(
                    servers=[server],
                    connect_timeout=max(1, round(options.connect_timeout)),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    tls=ssl.create_default_context() if tls else None,
                    error_cb=_quiet,
                    **credentials,
                )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            # The driver's message may quote the server URL; ours has no credentials.
            failure = type(exc).__name__
        if failure is not None:
            raise BackendUnavailableError(f"cannot connect to {description}: {failure}")
        return cls(nc, options, description)

    @property
    def description(self) -> str:
        """Scheme, host and port: never credentials."""
        return self._description

    @property
    def options(self) -> NatsOptions:
        return self._options

    # -- names ----------------------------------------------------------------------------------

    def stream_name(self, stream_id: str) -> str:
        """The JetStream stream of ``stream_id``. :raises ConfigurationError: too long."""
        name = self._options.stream_prefix + encode(stream_id)
        if len(name) > MAX_NAME:
            raise ConfigurationError(
                f"stream id {stream_id[:40]!r}… is too long for NATS: its JetStream stream name "
                f"would be {len(name)} characters, at most {MAX_NAME} are allowed"
            )
        return name

    def subject(self, stream_id: str) -> str:
        return f"{self._options.subject_prefix}.{encode(stream_id)}"

    def generation(self, stream_id: str) -> int:
        return self._generations.get(stream_id, 0)

    def check_open(self) -> None:
        if self._closed:
            raise BackendClosedError(f"{self._description} is closed")

    @property
    def nc(self) -> Client:
        return self._nc

    @property
    def js(self) -> Any:
        return self._js

    def register(self, handle: Any) -> None:
        self._handles.add(handle)

    def unregister(self, handle: Any) -> None:
        self._handles.discard(handle)

    def handles(self) -> list[Any]:
        return list(self._handles)

    # -- streams --------------------------------------------------------------------------------

    async def ensure_stream(self, stream_id: str, *, fresh: bool = False) -> object:
        """Create the JetStream stream of ``stream_id`` unless it is known to exist (``fresh``:
        ask the server even so). Returns its creation time, which tells this stream from one
        destroyed and created again under the same name."""
        name = self.stream_name(stream_id)
        if not fresh and name in self._created:
            return self._created[name]
        options = self._options
        config = api.StreamConfig(
            name=name,
            subjects=[self.subject(stream_id)],
            max_msgs=options.max_msgs or -1,
            max_age=options.max_age or None,
            discard=api.DiscardPolicy.OLD,
            storage=api.StorageType.FILE if options.storage == "file" else api.StorageType.MEMORY,
            num_replicas=options.replicas,
            # The id of a streamsink stream is in its subject; keep it readable on the server.
            description=f"streamsink stream {stream_id[:200]}",
        )
        with translated("creating a stream", self._description):
            try:
                info = await self._js.add_stream(config)
            except nats.js.errors.BadRequestError as exc:
                # 10058: a stream of that name exists with another configuration (made by
                # another backend with other options): use it as it is.
                if exc.err_code != 10058:
                    raise
                info = await self._js.stream_info(name)
        self._created[name] = info.created
        return info.created

    async def incarnation(self, stream_id: str) -> object | None:
        """The creation time of the stream on the server now; None when it is missing."""
        name = self.stream_name(stream_id)
        with translated("stream info", self._description):
            try:
                info = await self._js.stream_info(name)
            except nats.js.errors.NotFoundError:
                self._created.pop(name, None)
                return None
        return info.created

    def forget_stream(self, stream_id: str) -> None:
        """The stream was found missing on the server: create it again when next needed."""
        self._created.pop(self.stream_name(stream_id), None)

    async def append(self, entries: Sequence[Entry]) -> list[str]:
        """Publish each entry to its stream's subject and return the stream sequences, in order
        (the whole batch is published before its acknowledgements are awaited, in order: one
        connection keeps the order of each stream's entries).

        :raises BackendClosedError: after ``aclose``.
        :raises BackendUnavailableError: no server, or no acknowledgement in time.
        """
        self.check_open()
        return await append(self, entries)

    async def stream_info(
        self, stream_id: str, *, resume_id: str | None = None
    ) -> StreamInfo | None:
        """The stream now, from JetStream's stream state (one request); None when it does not
        exist. With ``resume_id`` (a stream sequence), ``resume`` says where it stands.

        :raises ConfigurationError: ``resume_id`` is not a stream sequence.
        :raises BackendUnavailableError: the server cannot be reached.
        """
        self.check_open()
        return await stream_info(self, stream_id, resume_id)

    async def destroy(self, stream_id: str) -> None:
        """Delete the JetStream stream, its entries and groups; a missing stream is fine.
        Handles of this backend on it raise StreamDestroyedError from now on, blocked reads at
        once."""
        self.check_open()
        name = self.stream_name(stream_id)
        with translated("destroy", self._description), suppress(nats.js.errors.NotFoundError):
            await self._js.delete_stream(name)
        self._created.pop(name, None)
        self._generations[stream_id] = self.generation(stream_id) + 1
        for handle in list(self._handles):
            if handle.stream_id == stream_id:
                handle.wake()

    async def entry_time(self, stream_id: str, entry_id: str) -> datetime:
        """The time JetStream stored entry ``entry_id`` (the time ``StartPosition.at`` compares
        with; JetStream keeps nanoseconds, Python's datetime microseconds, so it is rounded
        down: ``at(entry_time(id))`` still starts at or before that entry).

        :raises ConfigurationError: ``entry_id`` is not a stream sequence.
        :raises StreamsinkError: the entry is gone (trimmed, or never was).
        """
        self.check_open()
        check_start(StartPosition.after(entry_id))
        with translated("entry_time", self._description):
            try:
                msg = await self._js.get_msg(self.stream_name(stream_id), int(entry_id))
            except nats.js.errors.NotFoundError:
                raise StreamsinkError(
                    f"entry {entry_id} of stream {stream_id!r} is not on the server"
                ) from None
        if msg.time is None:
            raise StreamsinkError(f"the server gave no time for entry {entry_id} of {stream_id!r}")
        return msg.time

    async def delete_group(self, stream_id: str, group: str) -> None:
        """Delete ``group`` (its durable consumer) on the server, as an operator would: its
        consumers' next calls raise GroupLostError until ``ensure_group``. Missing is fine."""
        self.check_open()
        with translated("delete_group", self._description), suppress(nats.js.errors.NotFoundError):
            await self._js.delete_consumer(self.stream_name(stream_id), encode(group))

    def raise_if_destroyed(self, stream_id: str, generation: int) -> None:
        if self._generations.get(stream_id, 0) != generation:
            raise StreamDestroyedError(f"stream {stream_id!r} was destroyed")

    # -- handles --------------------------------------------------------------------------------

    async def open_group_consumer(
        self,
        stream_id: str,
        group: str,
        consumer: str,
        start: StartPosition,
        *,
        ack_grace_period: float = DEFAULT_ACK_GRACE_PERIOD,
    ) -> Any:
        """Join ``group`` (a durable pull consumer with AckWait = ``ack_grace_period``),
        creating the stream and the group at ``start`` if needed."""
        from ._group import NatsGroupConsumer

        self.check_open()
        check_start(start)
        handle = NatsGroupConsumer(self, stream_id, group, consumer, ack_grace_period)
        await handle.ensure_group(start)
        self.register(handle)
        return handle

    async def open_reader(self, stream_id: str, start: StartPosition) -> Any:
        """A fan-out reader: an ephemeral, unacknowledged consumer deleted on ``aclose``."""
        from ._reader import NatsReader

        self.check_open()
        check_start(start)
        reader = NatsReader(self, stream_id)
        await reader.start(start)
        self.register(reader)
        return reader

    async def aclose(self) -> None:
        """Close the handles (blocked reads end with BackendClosedError) and the connection."""
        if self._closed:
            return
        self._closed = True
        for handle in list(self._handles):
            handle.wake()
        with anyio.CancelScope(shield=True):
            await anyio.lowlevel.checkpoint()
            try:
                with anyio.move_on_after(2):
                    await self._nc.close()
            except nats.errors.Error:
                pass


def check_start(start: StartPosition) -> None:
    """:raises ConfigurationError: ``after(id)`` with an id that is not a stream sequence."""
    if start.kind == "after":
        text = start.entry_id or ""
        if not (text.isdigit() and text.isascii()):
            raise ConfigurationError(
                f"start after {text!r} is not a NATS entry id: expected a stream sequence "
                "(decimal digits)"
            )


def attrs_evolve(capabilities: Capabilities, **changes: Any) -> Capabilities:
    import attrs

    return attrs.evolve(capabilities, **changes)


async def _quiet(exc: Exception) -> None:
    """nats-py's asynchronous errors (lost connections): the calls that meet them report them."""
