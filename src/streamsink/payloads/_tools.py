"""Tool calls: tool_start, tool_update, the two delta streams, tool_end, tool_authorization and
child_run_linked, with what a tool_end nests (errors, telemetry, bounds, retry hints)."""

# go() returns an attrs field, as attrs.field() does: no default is shared between instances.
# ruff: noqa: RUF009

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from ._kinds import ANY_MAP, BOOL, DURATION, INT, INT64, RAW, STRING, STRINGS, struct
from ._payload import Payload
from ._schema import GoStruct, go, unknown_last

__all__ = [
    "Bounds",
    "ChildRunLinked",
    "RetryHint",
    "ToolAuthorization",
    "ToolCallArgsDelta",
    "ToolEnd",
    "ToolError",
    "ToolOutputDelta",
    "ToolStart",
    "ToolTelemetry",
    "ToolUpdate",
]

# Nested structs without json tags: Go writes their field names as they are (PascalCase), and
# writes every field, nil ones as null.


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class ToolError(GoStruct):
    """A tool failure and the chain of its causes (``toolerrors.ToolError``)."""

    GO_NAME: ClassVar[str] = "toolerrors.ToolError"

    message: str = go("Message", STRING)
    cause: ToolError | None = go(
        "Cause", struct("toolerrors.ToolError", lambda: ToolError), nullable=True
    )


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class ToolTelemetry(GoStruct):
    """What was measured while a tool ran (``telemetry.ToolTelemetry``)."""

    GO_NAME: ClassVar[str] = "telemetry.ToolTelemetry"

    duration_ms: int = go("DurationMs", INT64)
    tokens_used: int = go("TokensUsed", INT)
    model: str = go("Model", STRING)
    extra: Mapping[str, Any] | None = go("Extra", ANY_MAP, nullable=True)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class Bounds(GoStruct):
    """How a tool result was cut down from the whole data set (``agent.Bounds``)."""

    GO_NAME: ClassVar[str] = "agent.Bounds"

    returned: int = go("Returned", INT)
    total: int | None = go("Total", INT, nullable=True)
    truncated: bool = go("Truncated", BOOL)
    next_cursor: str | None = go("NextCursor", STRING, nullable=True)
    refinement_hint: str = go("RefinementHint", STRING)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class RetryHint(GoStruct):
    """How to recover from a tool failure (``planner.RetryHint``)."""

    GO_NAME: ClassVar[str] = "planner.RetryHint"

    reason: str = go("Reason", STRING)
    tool: str = go("Tool", STRING)
    restrict_to_tool: bool = go("RestrictToTool", BOOL)
    missing_fields: Sequence[str] | None = go("MissingFields", STRINGS, nullable=True)
    example_input: Mapping[str, Any] | None = go("ExampleInput", ANY_MAP, nullable=True)
    prior_input: Mapping[str, Any] | None = go("PriorInput", ANY_MAP, nullable=True)
    clarifying_question: str = go("ClarifyingQuestion", STRING)
    message: str = go("Message", STRING)


# -- payloads -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class ToolStart(Payload):
    """``tool_start``: a tool call was scheduled (``ToolStartPayload``)."""

    EVENT_TYPE: ClassVar[str] = "tool_start"
    GO_NAME: ClassVar[str] = "ToolStartPayload"

    tool_call_id: str = go("tool_call_id", STRING)
    tool_name: str = go("tool_name", STRING)
    payload: Any = go("payload", RAW, omitempty=True)
    display_hint: str = go("display_hint", STRING, omitempty=True)
    queue: str = go("queue", STRING, omitempty=True)
    parent_tool_call_id: str = go("parent_tool_call_id", STRING, omitempty=True)
    expected_children_total: int = go("expected_children_total", INT, omitempty=True)
    extra: Mapping[str, Any] = go("extra", ANY_MAP, omitempty=True)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class ToolUpdate(Payload):
    """``tool_update``: a running tool call now expects a new number of children."""

    EVENT_TYPE: ClassVar[str] = "tool_update"
    GO_NAME: ClassVar[str] = "ToolUpdatePayload"

    tool_call_id: str = go("tool_call_id", STRING)
    expected_children_total: int = go("expected_children_total", INT)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class ToolCallArgsDelta(Payload):
    """``tool_call_args_delta``: a fragment of the arguments the model is still writing."""

    EVENT_TYPE: ClassVar[str] = "tool_call_args_delta"
    GO_NAME: ClassVar[str] = "ToolCallArgsDeltaPayload"

    tool_call_id: str = go("tool_call_id", STRING)
    tool_name: str = go("tool_name", STRING)
    delta: str = go("delta", STRING)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class ToolOutputDelta(Payload):
    """``tool_output_delta``: a fragment of a running tool's output."""

    EVENT_TYPE: ClassVar[str] = "tool_output_delta"
    GO_NAME: ClassVar[str] = "ToolOutputDeltaPayload"

    tool_call_id: str = go("tool_call_id", STRING)
    parent_tool_call_id: str = go("parent_tool_call_id", STRING, omitempty=True)
    tool_name: str = go("tool_name", STRING)
    stream: str = go("stream", STRING)
    delta: str = go("delta", STRING)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class ToolEnd(Payload):
    """``tool_end``: a tool call finished, with its result or its error (``ToolEndPayload``).

    ``duration`` is a Go ``time.Duration``: nanoseconds. The event's server-only data travels
    beside the payload, in ``StreamEvent.server_data``, never in it.
    """

    EVENT_TYPE: ClassVar[str] = "tool_end"
    GO_NAME: ClassVar[str] = "ToolEndPayload"

    tool_call_id: str = go("tool_call_id", STRING)
    parent_tool_call_id: str = go("parent_tool_call_id", STRING, omitempty=True)
    tool_name: str = go("tool_name", STRING)
    result: Any = go("result", RAW, omitempty=True)
    result_preview: str = go("result_preview", STRING, omitempty=True)
    bounds: Bounds | None = go(
        "bounds", struct("agent.Bounds", lambda: Bounds), omitempty=True, nullable=True
    )
    duration: int = go("duration", DURATION)
    telemetry: ToolTelemetry | None = go(
        "telemetry",
        struct("telemetry.ToolTelemetry", lambda: ToolTelemetry),
        omitempty=True,
        nullable=True,
    )
    retry_hint: RetryHint | None = go(
        "retry_hint", struct("planner.RetryHint", lambda: RetryHint), omitempty=True, nullable=True
    )
    error: ToolError | None = go(
        "error",
        struct("toolerrors.ToolError", lambda: ToolError),
        omitempty=True,
        nullable=True,
    )
    extra: Mapping[str, Any] = go("extra", ANY_MAP, omitempty=True)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class ToolAuthorization(Payload):
    """``tool_authorization``: an operator approved or denied a pending tool call."""

    EVENT_TYPE: ClassVar[str] = "tool_authorization"
    GO_NAME: ClassVar[str] = "ToolAuthorizationPayload"

    tool_name: str = go("tool_name", STRING)
    tool_call_id: str = go("tool_call_id", STRING)
    approved: bool = go("approved", BOOL)
    summary: str = go("summary", STRING)
    approved_by: str = go("approved_by", STRING)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class ChildRunLinked(Payload):
    """``child_run_linked``: a tool call started a child agent run, on its own stream."""

    EVENT_TYPE: ClassVar[str] = "child_run_linked"
    GO_NAME: ClassVar[str] = "ChildRunLinkedPayload"

    tool_name: str = go("tool_name", STRING)
    tool_call_id: str = go("tool_call_id", STRING)
    child_run_id: str = go("child_run_id", STRING)
    child_agent_id: str = go("child_agent_id", STRING)
