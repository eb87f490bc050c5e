"""One JetStream pull request on its own inbox: what group consumers and readers read with.

Each read gets a fresh inbox subscription that is dropped when the read ends (also when it is
cancelled). nats-server skips waiting pull requests whose reply subject lost its interest, so a
cancelled read leaves no request behind that could swallow later messages; a message already
on its way to a dropped inbox stays pending on the server (redelivered after AckWait) for a
group, and makes a reader re-create its consumer from its cursor.
"""

from __future__ import annotations

import json
from contextlib import suppress

import anyio
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["ConsumerGone", "pull"]

# How long after the server's own expiry the client waits for its 408 before giving up.
_MARGIN = 0.25
# How long the client waits for a no_wait request's answer (it comes at once).
_NO_WAIT = 1.0


class ConsumerGone(Exception):
    """The consumer does not exist (no responder on its pull subject, or 409 Consumer Deleted)."""


async def pull(nc: Client, next_subject: str, count: int, block: float) -> list[Msg]:
    """Up to ``count`` messages from the consumer whose ``$JS.API.CONSUMER.MSG.NEXT`` subject is
    ``next_subject``, waiting up to ``block`` seconds for the first (``block <= 0``: none).

    A JetStream pull request stays open until its whole batch is delivered or it expires, so a
    blocking read asks for what is there now (``no_wait``), else waits with a batch of one and
    then takes what else is there: no request is left open to deliver into a dropped inbox.

    :raises ConsumerGone: the consumer is not there.
    :raises nats.errors.Error: the connection failed.
    """
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        got = await _request(nc, sub, next_subject, inbox, count, None)
        if got or block <= 0:
            return got
        got = await _request(nc, sub, next_subject, inbox, 1, block)
        if got and count > 1:
            got += await _request(nc, sub, next_subject, inbox, count - 1, None)
        return got
    finally:
        # A closed connection has dropped the subscription already.
        with anyio.CancelScope(shield=True), suppress(nats.errors.Error):
            await sub.unsubscribe()


async def _request(
    nc: Client, sub: Subscription, next_subject: str, inbox: str, batch: int, block: float | None
) -> list[Msg]:
    """One pull request of ``batch`` messages: ``no_wait`` when ``block`` is None, else expiring
    after ``block`` seconds. Ends at the full batch or the server's status ending it."""
    request: dict[str, object] = {"batch": batch}
    if block is None:
        request["no_wait"] = True
        wait = _NO_WAIT
    else:
        request["expires"] = int(block * 1e9)
        wait = block + _MARGIN
    await nc.publish(next_subject, json.dumps(request).encode(), reply=inbox)
    got: list[Msg] = []
    with anyio.move_on_after(wait):
        while len(got) < batch:
            try:
                msg = await sub.next_msg(timeout=None)
            except nats.errors.TimeoutError:
                break
            headers = msg.headers or {}
            status = headers.get("Status")
            if status is None:
                got.append(msg)
            elif status == "100":  # heartbeat or flow control
                continue
            elif status == "503" or (
                status == "409" and "deleted" in headers.get("Description", "").lower()
            ):
                raise ConsumerGone(next_subject)
            else:  # 404 no messages, 408 expired, other 409s: this request is over
                break
    return got
