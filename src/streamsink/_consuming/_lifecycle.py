"""The lifecycle of a subscription, one state at a time."""

from __future__ import annotations

import enum

__all__ = ["Lifecycle"]


class Lifecycle(enum.Enum):
    """Where a subscription is: ``NEW`` -> ``OPEN`` -> (``STOPPING``) -> ``CLOSED``.

    - ``NEW``: made, not entered yet. Entering moves it to ``OPEN`` (to ``CLOSED`` when opening
      the backend handle fails); entering in any other state raises ``SubscriptionError``.
    - ``OPEN``: entered; the pump reads, the application iterates and settles.
    - ``STOPPING``: ``aclose()`` was called while open: reading has stopped and iteration ends at
      its next step, but deliveries can still be settled until the ``async with`` is left.
    - ``CLOSED``: the ``async with`` was left (or entering failed); nothing runs any more and
      settling raises ``AckError``.
    """

    NEW = "new"
    OPEN = "open"
    STOPPING = "stopping"
    CLOSED = "closed"

    @property
    def entered(self) -> bool:
        """Inside the ``async with``: iteration and settling are allowed (iteration ends at once
        when stopping)."""
        return self is Lifecycle.OPEN or self is Lifecycle.STOPPING
