"""Reading payloads: from a received event to its typed payload, never failing on what came in."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from ._awaits import AwaitClarification, AwaitConfirmation, AwaitExternalTools, AwaitQuestions
from ._kinds import json_type
from ._payload import Payload
from ._run import (
    AssistantReply,
    PlannerThought,
    PromptRendered,
    RunStreamEnd,
    SessionStreamEnd,
    SessionStreamStarted,
    Usage,
    Workflow,
)
from ._schema import GoStruct
from ._tools import (
    ChildRunLinked,
    ToolAuthorization,
    ToolCallArgsDelta,
    ToolEnd,
    ToolOutputDelta,
    ToolStart,
    ToolUpdate,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._events import Event

__all__ = ["PAYLOAD_CLASSES", "RawPayload", "decode_payload", "json_default", "typed_payload"]

#: The payload class of each of the 19 event types, by type.
PAYLOAD_CLASSES: Mapping[str, type[Payload]] = MappingProxyType(
    {
        cls.EVENT_TYPE: cls
        for cls in (
            AssistantReply,
            PlannerThought,
            PromptRendered,
            ToolStart,
            ToolUpdate,
            ToolCallArgsDelta,
            ToolOutputDelta,
            ToolEnd,
            AwaitClarification,
            AwaitConfirmation,
            AwaitQuestions,
            AwaitExternalTools,
            ToolAuthorization,
            Usage,
            Workflow,
            ChildRunLinked,
            SessionStreamStarted,
            SessionStreamEnd,
            RunStreamEnd,
        )
    }
)

# A payload wrong in a thousand places is reported in a few lines.
_MAX_PROBLEMS = 10


@attrs.frozen(kw_only=True)
class RawPayload:
    """A payload kept as it came: of a type outside the vocabulary, or of the wrong shape.

    ``value`` is the payload exactly as received. ``problems`` is empty for an unknown type (it
    is not wrong, only not ours to read) and says what is wrong otherwise, one line per problem
    with the JSON path (``duration: expected an integer, got a string``).
    """

    type: str
    value: Any
    problems: tuple[str, ...] = ()

    @property
    def malformed(self) -> bool:
        """A payload of a known type that is not of its type's shape."""
        return bool(self.problems)


def typed_payload(event: Event) -> Payload | RawPayload:
    """The payload of ``event`` as an instance of its type's class (``ToolEnd`` for a
    ``tool_end``), read as Go's ``json.Unmarshal`` reads it.

    Keys it does not know are kept in ``unknown_fields``; missing keys and ``null`` give Go's
    zero values (a ``None`` payload, the zero payload); keys match case-insensitively, as in Go.
    An unknown event type, or a payload of the wrong shape (not an object, a string where a
    number goes, bad base64), gives a :class:`RawPayload` holding the payload as it is. Never
    raises for what an event holds.
    """
    return decode_payload(event.type, event.payload)


def decode_payload(event_type: str, value: Any) -> Payload | RawPayload:
    """:func:`typed_payload` for a type and a payload already apart (a decoded JSON value, or
    a payload object, returned as is when it is of that type). Never raises."""
    cls = PAYLOAD_CLASSES.get(event_type)
    if cls is None:
        return RawPayload(type=event_type, value=value)
    if isinstance(value, GoStruct):
        if type(value) is cls:
            return value
        problem = f"payload: a {type(value).__name__} on a {event_type} event"
        return RawPayload(type=event_type, value=value, problems=(problem,))
    if value is None:
        return cls()  # JSON null: Go leaves the struct at its zero value
    if not isinstance(value, dict):
        problem = f"payload: expected an object, got {json_type(value)}"
        return RawPayload(type=event_type, value=value, problems=(problem,))
    problems: list[str] = []
    try:
        decoded = cls.decode_json(value, "", problems, 0)
    except (TypeError, ValueError) as exc:  # a locally built dict the checks did not foresee
        decoded, problems = None, [f"payload: {exc}"]
    if decoded is not None:
        return decoded
    if len(problems) > _MAX_PROBLEMS:
        problems[_MAX_PROBLEMS - 1 :] = [f"and {len(problems) - _MAX_PROBLEMS + 1} more"]
    return RawPayload(type=event_type, value=value, problems=tuple(problems))


def json_default(value: object) -> Any:
    """An orjson ``default=``: a payload object (or a nested struct) as :meth:`to_json` writes
    it, so ``orjson.dumps(doc, default=json_default)`` encodes payload objects as Go does. orjson
    calls it only for values it cannot encode itself: dicts and lists pay nothing.

    :raises TypeError: ``value`` is not a payload object (orjson reports it as unencodable).
    """
    if isinstance(value, GoStruct):
        return value.to_json()
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")
