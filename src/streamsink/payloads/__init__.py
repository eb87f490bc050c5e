"""The payloads of the 19 event types, typed, with the JSON Go writes (docs/events.md).

Reading: :func:`typed_payload` turns a received event's payload into its class (``ToolEnd``
for a ``tool_end``), keeping unknown keys in ``unknown_fields``, and anything it cannot read as
a :class:`RawPayload`; it never raises. Building: payload classes take keyword arguments and
give the exact JSON object Go's ``encoding/json`` writes (:meth:`~GoStruct.to_json`), or a
ready :class:`~streamsink.StreamEvent` (:meth:`Payload.to_event`)::

    from streamsink.payloads import ToolEnd, typed_payload

    event = ToolEnd(tool_call_id="c1", tool_name="docs.search", duration=84_000_000).to_event(
        "run-1", "session-1"
    )
    assert typed_payload(event) == ToolEnd(tool_call_id="c1", tool_name="docs.search",
                                           duration=84_000_000)
"""

from __future__ import annotations

from ._awaits import (
    AwaitClarification,
    AwaitConfirmation,
    AwaitExternalTools,
    AwaitQuestion,
    AwaitQuestionOption,
    AwaitQuestions,
    AwaitTool,
)
from ._payload import Payload
from ._read import PAYLOAD_CLASSES, RawPayload, decode_payload, json_default, typed_payload
from ._run import (
    AssistantReply,
    PlannerThought,
    PromptRendered,
    PromptScope,
    RunStreamEnd,
    SessionStreamEnd,
    SessionStreamStarted,
    Usage,
    Workflow,
)
from ._schema import GoField, GoStruct, go_fields
from ._tools import (
    Bounds,
    ChildRunLinked,
    RetryHint,
    ToolAuthorization,
    ToolCallArgsDelta,
    ToolEnd,
    ToolError,
    ToolOutputDelta,
    ToolStart,
    ToolTelemetry,
    ToolUpdate,
)

__all__ = [
    # reading
    "typed_payload",
    "decode_payload",
    "RawPayload",
    "PAYLOAD_CLASSES",
    # the payloads, in EventType order
    "Payload",
    "AssistantReply",
    "PlannerThought",
    "PromptRendered",
    "ToolStart",
    "ToolUpdate",
    "ToolCallArgsDelta",
    "ToolOutputDelta",
    "ToolEnd",
    "AwaitClarification",
    "AwaitConfirmation",
    "AwaitQuestions",
    "AwaitExternalTools",
    "ToolAuthorization",
    "Usage",
    "Workflow",
    "ChildRunLinked",
    "SessionStreamStarted",
    "SessionStreamEnd",
    "RunStreamEnd",
    # what they nest
    "ToolError",
    "ToolTelemetry",
    "Bounds",
    "RetryHint",
    "PromptScope",
    "AwaitQuestion",
    "AwaitQuestionOption",
    "AwaitTool",
    # the machinery
    "GoStruct",
    "GoField",
    "go_fields",
    "json_default",
]
