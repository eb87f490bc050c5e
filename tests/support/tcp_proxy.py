"""A TCP fault proxy for tests: put it between a client and a server (Redis here) and break the
connections through it on demand, the way networks and servers break them.

::

    with TcpProxy("127.0.0.1", server.port) as proxy:
        url = proxy.url                # redis://127.0.0.1:<proxy port>/0
        proxy.cut_next_reply()         # the next server->client chunk arrives half, then both
                                       # sides of that connection are closed
        proxy.stall(0.5)               # current connections hold every byte, both ways, for
                                       # 0.5 s, then deliver it all (even if the client closed)
        proxy.black_hole()             # current connections drop server->client bytes
        proxy.drop_connections()       # close both sides of every current connection now
        proxy.pass_through()           # no pending cut, stalls end now, black holes end
        proxy.stats()                  # counters (a ProxyStats snapshot)

The faults act on *connections that exist when the call is made* (``cut_next_reply`` on the next
chunk of any connection, or of at least ``min_bytes``); connections opened later pass everything
through, so a client that reconnects gets a working connection. Every call returns once the
proxy applied it.

The proxy runs in a background thread with its own asyncio event loop, so it works under any
test runtime and while the test's own loop is busy. :meth:`stop` (or leaving the ``with``) closes
every socket it opened, listening socket included; the suite's leak checker counts TCP
connections, and a proxy left running fails the test that started it.

How a stall holds bytes: both directions keep *reading* into the proxy's memory (so a client
that closes its end cannot take the bytes with it) and deliver in order once the stall is over;
a client's close is passed on to the server only after its held bytes, which is what a delayed
packet followed by a FIN does. If the server closed the connection meanwhile (``CLIENT KILL``),
the held bytes are discarded and counted in ``late_bytes_lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import attrs

from tests.support.lifecycle import Started

__all__ = ["ProxyStats", "TcpProxy"]

T = TypeVar("T")

_CHUNK = 65536
_EOF = b""  # in a direction's queue: the sender closed its end


@attrs.frozen
class ProxyStats:
    """Counters since the proxy started."""

    accepted: int  # client connections accepted
    open: int  # client connections open now
    cuts: int  # replies cut halfway (each closed its connection)
    stalled: int  # connections stalled (one per connection per stall call)
    black_holed: int  # connections whose server->client bytes were dropped
    dropped: int  # connections closed by drop_connections
    bytes_up: int  # client -> server bytes delivered
    bytes_down: int  # server -> client bytes delivered
    bytes_black_holed: int  # server -> client bytes dropped by black holes
    late_bytes_delivered: int  # bytes held by a stall and delivered after it
    late_bytes_lost: int  # bytes held by a stall whose destination had closed by then


@attrs.define
class _Counters:
    accepted: int = 0
    cuts: int = 0
    stalled: int = 0
    black_holed: int = 0
    dropped: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    bytes_black_holed: int = 0
    late_bytes_delivered: int = 0
    late_bytes_lost: int = 0


class _Link:
    """One client connection and the proxy's connection to the server for it."""

    def __init__(
        self,
        proxy: TcpProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.server_reader, self.server_writer = server
        self.stall_until = 0.0  # loop time; bytes wait until then
        self.black_hole = False
        self.closed = False
        self.server_gone = False  # the server closed its end: bytes sent to it now are lost
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        up: asyncio.Queue[bytes] = asyncio.Queue()
        down: asyncio.Queue[bytes] = asyncio.Queue()
        self.tasks = [
            asyncio.create_task(self._read(self.client_reader, up)),
            asyncio.create_task(self._write(up, self.server_writer, upstream=True)),
            asyncio.create_task(self._read(self.server_reader, down, server=True)),
            asyncio.create_task(self._write(down, self.client_writer, upstream=False)),
        ]

    def close(self) -> None:
        """Close both sockets at once (RST where data is unsent) and stop the pumps."""
        self.closed = True
        for writer in (self.client_writer, self.server_writer):
            writer.transport.abort()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()

    async def _read(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[bytes], *, server: bool = False
    ) -> None:
        # Reads all the time, stall or not: held bytes live in the proxy, not in a kernel buffer
        # that a closing peer could discard.
        try:
            while chunk := await reader.read(_CHUNK):
                queue.put_nowait(chunk)
        except OSError:
            pass
        if server:
            self.server_gone = True
        queue.put_nowait(_EOF)

    async def _write(
        self, queue: asyncio.Queue[bytes], writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        counters = self.proxy._counters
        loop = asyncio.get_running_loop()
        try:
            while True:
                chunk = await queue.get()
                late = False
                while (wait := self.stall_until - loop.time()) > 0:
                    late = True
                    await asyncio.sleep(wait)
                if chunk == _EOF:
                    break
                if not upstream:
                    if self.black_hole:
                        counters.bytes_black_holed += len(chunk)
                        continue
                    if self.proxy._cut_pending(len(chunk)):
                        writer.write(chunk[: len(chunk) // 2])
                        counters.bytes_down += len(chunk) // 2
                        with contextlib.suppress(OSError):
                            await writer.drain()
                        counters.cuts += 1
                        self.close()
                        return
                if writer.is_closing() or (upstream and self.server_gone):
                    # A write to a peer that closed "succeeds" locally and is dropped there.
                    if late:
                        counters.late_bytes_lost += len(chunk)
                    continue
                writer.write(chunk)
                try:
                    await writer.drain()
                except OSError:
                    if late:
                        counters.late_bytes_lost += len(chunk)
                    continue
                if late:
                    counters.late_bytes_delivered += len(chunk)
                if upstream:
                    counters.bytes_up += len(chunk)
                else:
                    counters.bytes_down += len(chunk)
        finally:
            # This direction is over: pass the close on (after any held bytes, see above).
            if not writer.is_closing():
                writer.close()
            self.proxy._forget(self)


class TcpProxy(Started):
    """A TCP proxy on a free loopback port in front of ``host:port`` (see the module docstring).

    :param host: the server's address.
    :param port: the server's port.
    :param listen_host: where the proxy listens (a free port is picked).
    """

    def __init__(self, host: str, port: int, *, listen_host: str = "127.0.0.1") -> None:
        self.upstream = (host, port)
        self.listen_host = listen_host
        self.port = 0
        self._counters = _Counters()
        self._links: set[_Link] = set()
        self._cut: int | None = None  # min_bytes of a pending cut
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._accepting: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis://<listen host>:<proxy port>/0``."""
        return f"redis://{self.listen_host}:{self.port}/0"

    def start(self) -> TcpProxy:
        """Start the thread and listen; returns once connections are accepted."""
        if self._thread is not None:
            return self
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._server = self._run(self._listen)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket, and end the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._run(self._shutdown)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = None

    # -- faults -----------------------------------------------------------------------------------

    def pass_through(self) -> None:
        """Forward everything from now on: drop a pending cut, end stalls now (their held bytes
        go out at once) and black holes (bytes dropped so far stay dropped)."""

        def apply() -> None:
            self._cut = None
            for link in self._links:
                link.stall_until = 0.0
                link.black_hole = False

        self._call_sync(apply)

    def cut_next_reply(self, *, min_bytes: int = 1) -> None:
        """The next server->client chunk of at least ``min_bytes`` (on any connection) is
        delivered halfway, then both sides of its connection are closed. One cut per call."""
        self._call_sync(lambda: setattr(self, "_cut", max(1, min_bytes)))

    def stall(self, seconds: float) -> int:
        """Hold every byte of the current connections, both ways, for ``seconds``, then deliver
        it in order (to a peer that is still there). Returns how many connections it stalled."""

        def apply() -> int:
            assert self._loop is not None
            until = self._loop.time() + seconds
            for link in self._links:
                link.stall_until = max(link.stall_until, until)
            self._counters.stalled += len(self._links)
            return len(self._links)

        return self._call_sync(apply)

    def black_hole(self) -> int:
        """Drop, from now on, every server->client byte of the current connections (the client
        sees no reply and no close). Returns how many connections it black-holed."""

        def apply() -> int:
            fresh = [link for link in self._links if not link.black_hole]
            for link in fresh:
                link.black_hole = True
            self._counters.black_holed += len(fresh)
            return len(fresh)

        return self._call_sync(apply)

    def drop_connections(self) -> int:
        """Close both sides of every current connection now. Returns how many."""

        def apply() -> int:
            links = list(self._links)
            for link in links:
                link.close()
                self._links.discard(link)
            self._counters.dropped += len(links)
            return len(links)

        return self._call_sync(apply)

    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""

        def apply() -> ProxyStats:
            return ProxyStats(open=len(self._links), **attrs.asdict(self._counters))

        return self._call_sync(apply)

    # -- internals --------------------------------------------------------------------------------

    def _run(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the proxy's loop and wait for its result."""
        assert self._loop is not None, "the proxy is not started"
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=10)

    def _call_sync(self, apply: Callable[[], T]) -> T:
        """Run ``apply`` on the proxy's loop (where the connections live) and wait for it."""

        async def run() -> T:
            return apply()

        return self._run(run)

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._accept, self.listen_host, 0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._counters.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._accepting.add(task)
        try:
            server = await asyncio.open_connection(*self.upstream)
        except (OSError, asyncio.CancelledError):
            writer.transport.abort()
            return
        finally:
            self._accepting.discard(task)
        link = _Link(self, (reader, writer), server)
        if self._stopping:
            link.close()
            return
        self._links.add(link)
        link.start()

    def _cut_pending(self, size: int) -> bool:
        if self._cut is None or size < self._cut:
            return False
        self._cut = None
        return True

    def _forget(self, link: _Link) -> None:
        if link.client_writer.is_closing() and link.server_writer.is_closing():
            self._links.discard(link)

    async def _shutdown(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task in list(self._accepting):
            task.cancel()
        tasks = [task for link in self._links for task in link.tasks]
        for link in list(self._links):
            link.close()
        self._links.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
