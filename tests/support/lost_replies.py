"""Lose the replies of a Redis backend's command connection on purpose: the commands run on the
server, the client never reads their replies, as when a connection is cut or stalls.

Works on fakeredis and a real server alike (it acts at ``read_response``, after the connection's
handshake), for the unit tests of retry-safe appends and for ``benchmarks/retry_path.py``.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions as rex

from streamsink_redis._commands import CommandConnection

__all__ = ["lose_replies"]


def lose_replies(
    conn: CommandConnection, *, keep: int = 0, error: type[BaseException] = rex.ConnectionError
) -> list[int]:
    """Make the next round trip of ``conn`` raise ``error`` after ``keep`` replies were read (a
    fresh connection's ``CLIENT ID`` reply counts as one). ``rex.ConnectionError`` plays a
    connection the server closed; the builtin ``TimeoutError`` a deadline that passed with the
    connection still open. Returns a list that gets how many replies were read when it fired.
    """
    real_connection = conn._connection
    state = {"armed": True, "reads": 0}
    fired: list[int] = []

    def wrap(made: Any) -> None:
        real_read = made.read_response

        async def read_response(*args: Any, **kwargs: Any) -> Any:
            if state["armed"]:
                if state["reads"] >= keep:
                    state["armed"] = False
                    fired.append(state["reads"])
                    raise error("reply lost (on purpose)")
                state["reads"] += 1
            return await real_read(*args, **kwargs)

        made.read_response = read_response

    def connection() -> Any:
        made = real_connection()
        if state["armed"] and not getattr(made, "_replies_lost", False):
            made._replies_lost = True
            if made.is_connected:
                wrap(made)
            else:  # after the handshake: its replies are not ours to lose
                real_connect = made.connect

                async def connect() -> None:
                    await real_connect()
                    wrap(made)

                made.connect = connect
        return made

    conn._connection = connection  # type: ignore[method-assign]
    return fired
