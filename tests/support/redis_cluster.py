"""Start a private Redis Cluster on loopback (masters with replicas), for tests of
``redis+cluster://``.

Every node is a :class:`RedisServer` with ``cluster-enabled yes`` in a temporary directory of its
own (its ``nodes.conf`` survives a kill, so a restarted node rejoins with the same node id). The
cluster is made with plain commands (``CLUSTER ADDSLOTSRANGE``, ``CLUSTER MEET``, ``CLUSTER
REPLICATE``) over raw sockets, so it needs neither ``redis-cli`` nor a client library. ::

    with RedisCluster() as cluster:          # 3 masters, 1 replica each
        url = cluster.url                    # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...
        node = cluster.master_for_key("pulse:stream:a")
        cluster.kill(node)                   # SIGKILL, as a crash
        promoted = cluster.wait_for_failover(node)
        cluster.restart(node)                # rejoins (as a replica of ``promoted``)
        cluster.heal()                       # every node up, cluster_state:ok, replicas in sync
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from functools import partial

from tests.support.lifecycle import Started, free_port
from tests.support.redis_server import RedisServer, RedisServerError, find_redis_server

__all__ = [
    "ClusterNode",
    "RedisCluster",
    "RedisClusterError",
    "command",
    "find_redis_server",
    "key_slot",
]

SLOTS = 16384


class RedisClusterError(RuntimeError):
    """The cluster did not form, heal or fail over in time."""


def _crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), the checksum Redis Cluster maps keys to slots with."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str | bytes) -> int:
    """The cluster slot of ``key`` (the ``{hash tag}`` rule included)."""
    raw = key.encode() if isinstance(key, str) else key
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return _crc16(raw) % SLOTS


def _encode(args: Sequence[str | int | bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(raw), raw))
    return b"".join(parts)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _exact(self, size: int) -> bytes:
        while len(self._buf) < size + 2:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self._buf += chunk
        data, self._buf = self._buf[:size], self._buf[size + 2 :]
        return data

    def reply(self) -> object:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisClusterError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exact(size)
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.reply() for _ in range(size)]
        raise RedisClusterError(f"unexpected reply {line!r}")


def command(port: int, *args: str | int | bytes, timeout: float = 2.0) -> object:
    """Run one command on the node at ``127.0.0.1:port``; the reply (bulk strings as bytes).

    :raises RedisClusterError: an error reply.
    :raises OSError: the node cannot be reached.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_encode(args))
        return _Reader(sock).reply()


def _slot_ranges(port: int) -> list[tuple[int, int, int]]:
    """``CLUSTER SLOTS`` as the node at ``port`` sees it: (first slot, last slot, master's
    port) of every range."""
    reply = command(port, "CLUSTER", "SLOTS")
    assert isinstance(reply, list)
    ranges = []
    for row in reply:
        assert isinstance(row, list)
        first, last, master = row[0], row[1], row[2]
        assert isinstance(first, int)
        assert isinstance(last, int)
        assert isinstance(master, list)
        assert isinstance(master[1], int)
        ranges.append((first, last, master[1]))
    return ranges


def _info(port: int, section: str) -> dict[str, str]:
    raw = (
        command(port, "INFO", section) if section != "cluster" else command(port, "CLUSTER", "INFO")
    )
    assert isinstance(raw, bytes)
    fields: dict[str, str] = {}
    for line in raw.decode().splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


class ClusterNode(RedisServer):
    """One node of a :class:`RedisCluster`: a redis-server with cluster mode on."""

    def __init__(self, *, binary: str | None, node_timeout_ms: int) -> None:
        super().__init__(
            binary=binary,
            extra_args=(
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms),
                # A replica always stands for election, however long it lost its master.
                "--cluster-replica-validity-factor", "0",
                "--cluster-require-full-coverage", "yes",
                "--cluster-allow-replica-migration", "no",
                # A replica (re)attaching syncs at once, not after the default 5 s wait for more.
                "--repl-diskless-sync", "yes",
                "--repl-diskless-sync-delay", "0",
            ),
        )  # fmt: skip

        self.bus_port = 0

    def _args(self) -> list[str]:
        # The bus port is chosen like the client port (free, then kept for restarts): the
        # default, port + 10000, may be taken or above 65535.
        if not self.bus_port:
            self.bus_port = free_port()
        return [*super()._args(), "--cluster-port", str(self.bus_port)]

    @property
    def node_id(self) -> str:
        reply = command(self.port, "CLUSTER", "MYID")
        assert isinstance(reply, bytes)
        return reply.decode()

    def role(self) -> str:
        """``master`` or ``slave`` (what ``ROLE`` says)."""
        reply = command(self.port, "ROLE")
        assert isinstance(reply, list)
        first = reply[0]
        return first.decode() if isinstance(first, bytes) else str(first)

    def __repr__(self) -> str:
        return f"<ClusterNode 127.0.0.1:{self.port} {'up' if self.running else 'down'}>"


class RedisCluster(Started):
    """A private Redis Cluster: ``masters`` masters, each with ``replicas`` replicas.

    :param node_timeout_ms: ``cluster-node-timeout``: how long a node may be silent before it is
        failed over (short, so tests of failover are quick; 1 s let a loaded machine fail over
        masters that were only slow).
    :param timeout: seconds :meth:`start`, :meth:`heal` and the waits may take.
    """

    def __init__(
        self,
        *,
        masters: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 2000,
        binary: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        found = binary or find_redis_server()
        if not found:
            raise RedisServerError("no redis-server binary on PATH")
        if masters < 1 or replicas < 0:
            raise ValueError("a cluster needs at least one master")
        self.node_timeout_ms = node_timeout_ms
        self.timeout = timeout
        self.nodes = [
            ClusterNode(binary=found, node_timeout_ms=node_timeout_ms)
            for _ in range(masters * (1 + replicas))
        ]
        self._masters = masters
        self._replicas = replicas

    # -- addresses ----------------------------------------------------------------------------

    @property
    def seeds(self) -> list[str]:
        """``127.0.0.1:<port>`` of every node."""
        return [f"127.0.0.1:{node.port}" for node in self.nodes]

    def url(self, query: str = "", *, scheme: str = "redis+cluster") -> str:
        """``redis+cluster://127.0.0.1:p1,...`` naming every node, with ``?query`` if given."""
        base = f"{scheme}://{','.join(self.seeds)}"
        return f"{base}?{query}" if query else base

    def node(self, port: int) -> ClusterNode:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> RedisCluster:
        """Start every node, assign slots, join them, attach replicas, wait until it is ok."""
        try:
            for node in self.nodes:
                node.start()
            masters = self.nodes[: self._masters]
            per = SLOTS // self._masters
            for index, node in enumerate(masters):
                first = index * per
                last = SLOTS - 1 if index == self._masters - 1 else first + per - 1
                command(node.port, "CLUSTER", "ADDSLOTSRANGE", first, last)
            head = self.nodes[0]
            for node in self.nodes[1:]:
                command(node.port, "CLUSTER", "MEET", "127.0.0.1", head.port, head.bus_port)
            self._wait(self._all_known, "every node to know every other")
            replicas = self.nodes[self._masters :]
            for index, node in enumerate(replicas):
                master = masters[index % self._masters]
                command(node.port, "CLUSTER", "REPLICATE", master.node_id)
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node and remove their directories."""
        for node in self.nodes:
            node.stop()

    # -- topology -----------------------------------------------------------------------------

    def _nodes_table(self, port: int) -> list[list[str]]:
        raw = command(port, "CLUSTER", "NODES")
        assert isinstance(raw, bytes)
        return [line.split() for line in raw.decode().splitlines() if line.strip()]

    def _all_known(self) -> bool:
        want = len(self.nodes)
        for node in self.nodes:
            rows = self._nodes_table(node.port)
            if len(rows) != want or any("handshake" in row[2] for row in rows):
                return False
        return True

    def masters(self) -> list[ClusterNode]:
        """The running nodes that are masters now, as the first running node sees it."""
        out = []
        for row in self._nodes_table(self._any_running().port):
            flags = row[2].split(",")
            if "master" in flags and "fail" not in flags and "fail?" not in flags:
                port = int(row[1].split("@")[0].rsplit(":", 1)[1])
                node = self.node(port)
                if node.running:
                    out.append(node)
        return out

    def replicas_of(self, master: ClusterNode) -> list[ClusterNode]:
        """The running replicas of ``master``."""
        master_id = master.node_id
        out = []
        for row in self._nodes_table(master.port):
            if row[3] == master_id and "slave" in row[2].split(","):
                node = self.node(int(row[1].split("@")[0].rsplit(":", 1)[1]))
                if node.running:
                    out.append(node)
        return out

    def master_for_key(self, key: str | bytes) -> ClusterNode:
        """The master serving ``key``'s slot now."""
        return self.master_for_slot(key_slot(key))

    def master_for_slot(self, slot: int) -> ClusterNode:
        for first, last, port in _slot_ranges(self._any_running().port):
            if first <= slot <= last:
                return self.node(port)
        raise RedisClusterError(f"slot {slot} is not served")

    def _any_running(self) -> ClusterNode:
        for node in self.nodes:
            if node.running:
                return node
        raise RedisClusterError("no node of the cluster runs")

    # -- faults -------------------------------------------------------------------------------

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL ``node``, as a crash."""
        node.kill()

    def restart(self, node: ClusterNode) -> None:
        """Start ``node`` again (same port and ``nodes.conf``): it rejoins the cluster."""
        node.restart()

    def slots_of(self, master: ClusterNode) -> list[int]:
        """The first slot of every range ``master`` serves, as a running node sees it (a node
        other than ``master`` still lists a killed master until it is failed over)."""
        return [
            first
            for first, _, port in _slot_ranges(self._any_running().port)
            if port == master.port
        ]

    def wait_for_failover(
        self, old_master: ClusterNode, *, slots: Sequence[int] = (), timeout: float | None = None
    ) -> ClusterNode:
        """Wait until another, running master serves the slots ``old_master`` served (``slots``;
        found now when not given, which works until the failover is done) and the cluster is ok
        again; that master.

        :raises RedisClusterError: no failover within ``timeout`` (default: the cluster's).
        """
        wanted = list(slots) or self.slots_of(old_master)
        if not wanted:
            raise RedisClusterError(f"{old_master!r} serves no slot")
        promoted: list[ClusterNode] = []

        def moved() -> bool:
            try:
                owner = self.master_for_slot(wanted[0])
                if owner is old_master or not owner.running or owner.role() != "master":
                    return False
                if _info(owner.port, "cluster").get("cluster_state") != "ok":
                    return False
            except (OSError, RedisClusterError):
                return False
            promoted[:] = [owner]
            return True

        self._wait(moved, f"a replica of {old_master!r} to take over", timeout)
        self.wait_ok(timeout=timeout, require_all=False)
        return promoted[0]

    def failover(self, replica: ClusterNode, *, timeout: float | None = None) -> None:
        """``CLUSTER FAILOVER`` on ``replica`` (a manual, lossless failover) and wait until it is
        a master that every node names, and the cluster is ok.

        Redis gives a manual failover up, silently, when it cannot finish it in 5 s (seen when
        failing back to a master demoted a moment before, whose replication link is reset by
        the request): then it is asked again, once the replica is in sync.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)

        def left(most: float) -> float:
            return max(0.1, min(most, deadline - time.monotonic()))

        while True:
            self.wait_ok(timeout=left(self.timeout))
            command(replica.port, "CLUSTER", "FAILOVER")
            try:
                self._wait(
                    lambda: replica.role() == "master", f"{replica!r} to become a master", left(6)
                )
                slots = self._wait_for_slots(replica, deadline)
                # Every node learns of the promotion by gossip: until then some still name the
                # old master (and master_for_key, which asks one of them, would too).
                self._wait(
                    partial(self._seen_everywhere, replica, slots),
                    f"every node to see {replica!r} as a master",
                    left(6),
                )
                if replica.role() == "master":
                    break
            except RedisClusterError:
                if time.monotonic() >= deadline:
                    raise
        self.wait_ok(timeout=left(self.timeout))

    def _seen_everywhere(self, master: ClusterNode, slots: list[int]) -> bool:
        return all(
            self._sees(node, slot, master) for node in self.nodes if node.running for slot in slots
        )

    def _wait_for_slots(self, master: ClusterNode, deadline: float) -> list[int]:
        """The first slot of each range ``master`` serves, as it sees itself."""
        found: list[int] = []

        def served() -> bool:
            found[:] = [
                first for first, _, port in _slot_ranges(master.port) if port == master.port
            ]
            return bool(found)

        self._wait(served, f"{master!r} to serve slots", max(1.0, deadline - time.monotonic()))
        return found

    def move_slot(self, slot: int, target: ClusterNode) -> None:
        """Reshard ``slot`` to the master ``target`` (``SETSLOT IMPORTING``/``MIGRATING``,
        ``MIGRATE`` of its keys, ``SETSLOT NODE`` on every master), as ``redis-cli --cluster
        reshard`` does; clients then get ``MOVED`` for its keys."""
        source = self.master_for_slot(slot)
        if source is target:
            return
        target_id, source_id = target.node_id, source.node_id
        command(target.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        command(source.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while True:
            keys = command(source.port, "CLUSTER", "GETKEYSINSLOT", slot, 100)
            assert isinstance(keys, list)
            if not keys:
                break
            command(source.port, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)  # type: ignore[arg-type]
        for master in self.masters():
            command(master.port, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self._wait(
            lambda: all(self._sees(node, slot, target) for node in self.nodes if node.running),
            f"every node to see slot {slot} on {target!r}",
        )

    def _sees(self, node: ClusterNode, slot: int, target: ClusterNode) -> bool:
        for first, last, port in _slot_ranges(node.port):
            if first <= slot <= last:
                return port == target.port
        return False

    def heal(self, *, timeout: float | None = None) -> None:
        """Restart every stopped node and wait until the cluster is ok with replicas in sync."""
        for node in self.nodes:
            if not node.running:
                node.start()
        self.wait_ok(timeout=timeout)

    def flushall(self) -> None:
        """``FLUSHALL`` on every master."""
        for master in self.masters():
            command(master.port, "FLUSHALL")

    # -- waiting ------------------------------------------------------------------------------

    def wait_ok(self, *, timeout: float | None = None, require_all: bool = True) -> None:
        """Wait until every running node says ``cluster_state:ok``, sees every node up, and
        (``require_all``) every master has its replicas attached and in sync.

        :raises RedisClusterError: not within ``timeout`` (default: the cluster's).
        """
        self._wait(
            lambda: self._healthy(require_all), "cluster_state:ok with replicas in sync", timeout
        )

    def _healthy(self, require_all: bool) -> bool:
        try:
            running = [node for node in self.nodes if node.running]
            for node in running:
                if _info(node.port, "cluster").get("cluster_state") != "ok":
                    return False
                for row in self._nodes_table(node.port):
                    port = int(row[1].split("@")[0].rsplit(":", 1)[1])
                    flags = row[2].split(",")
                    if self.node(port).running and ("fail" in flags or "fail?" in flags):
                        return False
            if not require_all:
                return True
            masters = self.masters()
            if len(masters) != self._masters:
                return False
            for master in masters:
                replicas = self.replicas_of(master)
                if len(replicas) < self._replicas:
                    return False
                for replica in replicas:
                    if _info(replica.port, "replication").get("master_link_status") != "up":
                        return False
                    if _info(replica.port, "replication").get("master_sync_in_progress") != "0":
                        return False
            return True
        except (OSError, RedisClusterError, KeyError):
            return False

    def _wait(self, done: object, what: str, timeout: float | None = None) -> None:
        assert callable(done)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.05)
        raise RedisClusterError(f"timed out waiting for {what} ({self.describe()})")

    def describe(self) -> str:
        """One line per node: port, running, role (for failure messages)."""
        parts = []
        for node in self.nodes:
            role = "down"
            if node.running:
                try:
                    role = node.role()
                except (OSError, RedisClusterError) as exc:
                    role = f"? {exc}"
            parts.append(f"{node.port}={role}")
        return ", ".join(parts)
