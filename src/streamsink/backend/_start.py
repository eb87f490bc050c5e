"""Where a new group or reader starts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import attrs

from .._exceptions import ConfigurationError

__all__ = ["StartPosition"]


@attrs.frozen
class StartPosition:
    """Where a new group or reader starts. Build with the class methods.

    - ``newest()``: only entries appended after the group/reader was created (the default);
    - ``oldest()``: every entry still in the stream;
    - ``after(entry_id)``: entries with a greater id (exclusive);
    - ``at(datetime)``: entries appended at or after that time (**inclusive**).

    When a group already exists its stored position wins, whatever the start says.
    """

    kind: Literal["newest", "oldest", "after", "at"]
    entry_id: str | None = None
    time: datetime | None = None

    @classmethod
    def newest(cls) -> StartPosition:
        return _NEWEST

    @classmethod
    def oldest(cls) -> StartPosition:
        return _OLDEST

    @classmethod
    def after(cls, entry_id: str) -> StartPosition:
        if not isinstance(entry_id, str) or not entry_id:
            raise ConfigurationError(
                f"StartPosition.after needs a non-empty entry id, got {entry_id!r}"
            )
        return cls("after", entry_id=entry_id)

    @classmethod
    def at(cls, time: datetime) -> StartPosition:
        if not isinstance(time, datetime) or time.tzinfo is None:
            raise ConfigurationError(
                f"StartPosition.at needs a timezone-aware datetime, got {time!r}"
            )
        return cls("at", time=time.astimezone(UTC))

    def __str__(self) -> str:
        if self.kind == "after":
            return f"after({self.entry_id})"
        if self.kind == "at":
            return f"at({self.time:%Y-%m-%dT%H:%M:%S.%fZ})"
        return self.kind


_NEWEST = StartPosition("newest")
_OLDEST = StartPosition("oldest")
