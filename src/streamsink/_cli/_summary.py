"""One line per event: what each of the 19 event types says, read from its typed payload."""

from __future__ import annotations

from typing import Any

import orjson

from .._events import Event, EventType
from ..payloads import (
    AssistantReply,
    AwaitClarification,
    AwaitConfirmation,
    AwaitExternalTools,
    AwaitQuestions,
    ChildRunLinked,
    Payload,
    PlannerThought,
    PromptRendered,
    RawPayload,
    SessionStreamStarted,
    ToolAuthorization,
    ToolCallArgsDelta,
    ToolEnd,
    ToolOutputDelta,
    ToolStart,
    ToolUpdate,
    Usage,
    Workflow,
    typed_payload,
)
from ._text import (
    escape,
)

# -- event summaries ----------------------------------------------------------------------------


def _short(value: Any, limit: int = 60) -> str:
    """Compact one-line text of a value, cut to ``limit`` characters."""
    if isinstance(value, str):
        text = " ".join(value.split())
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(nanoseconds: int) -> str:
    ms = nanoseconds / 1e6
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _tool(name: str, call: str) -> str:
    name = name or "tool"
    return f"{name} [{call}]" if call else name


def _summary_tool_end(p: ToolEnd) -> str:
    tool, took = _tool(p.tool_name, p.tool_call_id), _duration(p.duration)
    if p.error is not None:
        return f"{tool} failed after {took}: {_short(p.error.message)}"
    result = p.result_preview or ("" if p.result is None else _short(p.result))
    return f"{tool} ok in {took}" + (f": {_short(result)}" if result else "")


def _summary_usage(p: Usage) -> str:
    text = f"{p.model or 'model'}: {p.input_tokens} in / {p.output_tokens} out tokens"
    if p.total_tokens:
        text += f" ({p.total_tokens} total"
        text += f", {p.cache_read_tokens} from cache)" if p.cache_read_tokens else ")"
    return text


def _summary_workflow(p: Workflow) -> str:
    text = f"{p.name}: " if p.name else ""
    text += f"phase {p.phase or '?'}"
    if p.status:
        text += f", status {p.status}"
    if p.error:
        text += f": {_short(p.error)}"
    return text


def _payload_summary(p: Payload) -> str:
    """The line for a payload of its type's shape, from its typed fields."""
    match p:
        case AssistantReply():
            return p.text
        case PlannerThought():
            thought = p.note or p.text or ("(redacted thinking)" if p.redacted else "(thinking)")
            return _short(thought, 80)
        case PromptRendered():
            version = p.version or "?"
            return f"{p.prompt_id or '?'} {version if version[0] in 'vV' else 'v' + version}"
        case ToolStart():
            tool = _tool(p.tool_name, p.tool_call_id)
            if p.display_hint:
                return f"{tool} {_short(p.display_hint)}"
            return tool if p.payload is None else f"{tool} args={_short(p.payload)}"
        case ToolUpdate():
            return f"[{p.tool_call_id or '?'}] expects {p.expected_children_total} children"
        case ToolCallArgsDelta():
            return f"{_tool(p.tool_name, p.tool_call_id)} args += {_short(p.delta)}"
        case ToolOutputDelta():
            tool = _tool(p.tool_name, p.tool_call_id)
            return f"{tool} {p.stream or 'out'} += {_short(p.delta)}"
        case ToolEnd():
            return _summary_tool_end(p)
        case AwaitClarification():
            return f"asks: {_short(p.question)}"
        case AwaitConfirmation():
            tool = _tool(p.tool_name, p.tool_call_id)
            return f"{tool} needs confirmation: {_short(p.prompt)}"
        case AwaitQuestions():
            return f"{len(p.questions)} question(s) for the user"
        case AwaitExternalTools():
            return f"waits for {len(p.items)} external tool call(s)"
        case ToolAuthorization():
            verdict = "approved" if p.approved else "denied"
            by = f" by {p.approved_by}" if p.approved_by else ""
            return f"{_tool(p.tool_name, p.tool_call_id)} {verdict}{by}"
        case Usage():
            return _summary_usage(p)
        case Workflow():
            return _summary_workflow(p)
        case ChildRunLinked():
            tool = _tool(p.tool_name, p.tool_call_id)
            return f"{tool} started child run {p.child_run_id or '?'} ({p.child_agent_id or '?'})"
        case SessionStreamStarted():
            return "session started"
    return ""


def summarize(event: Event) -> str:
    """A short, human, one-line summary of an event, from its typed payload
    (:func:`~streamsink.typed_payload`); control and format characters in it are escaped (see
    :func:`escape`). A payload of the wrong shape is shown raw and marked ``(malformed: ...)``;
    one with keys its type does not have names them (``(+key)``)."""
    return escape(_summary(event))


def _summary(event: Event) -> str:
    if event.type == EventType.RUN_STREAM_END:
        text = f"run {event.run_id} ended"
    elif event.type == EventType.SESSION_STREAM_END:
        text = "session ended"
    elif event.payload is None and event.type != EventType.SESSION_STREAM_STARTED:
        text = ""
    else:
        typed = typed_payload(event)
        if isinstance(typed, RawPayload):
            text = "" if typed.value is None else _short(typed.value, 80)
            if typed.malformed:
                more = "; …" if len(typed.problems) > 1 else ""
                text += f" (malformed: {_short(typed.problems[0], 80)}{more})"
        else:
            text = _payload_summary(typed)
            # A reply's chunks print as one text; anything else shows keys from elsewhere.
            if typed.unknown_fields and not isinstance(typed, AssistantReply):
                text += f" (+{_short(', '.join(typed.unknown_fields), 40)})"
    server_data = getattr(event, "server_data", None)
    if server_data:
        text += f" (+server_data, {len(server_data)} B)"
    return text
