"""Typed payloads: the 19 shapes as Go declares them, the JSON Go writes, and reading what
arrives without ever failing on it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

import streamsink
from streamsink import Envelope, EventType, StreamEvent, decode_envelope, encode_envelope
from streamsink.payloads import (
    PAYLOAD_CLASSES,
    AssistantReply,
    AwaitClarification,
    AwaitConfirmation,
    AwaitExternalTools,
    AwaitQuestion,
    AwaitQuestionOption,
    AwaitQuestions,
    AwaitTool,
    Bounds,
    ChildRunLinked,
    GoStruct,
    Payload,
    PlannerThought,
    PromptRendered,
    PromptScope,
    RawPayload,
    RetryHint,
    RunStreamEnd,
    SessionStreamEnd,
    SessionStreamStarted,
    ToolAuthorization,
    ToolCallArgsDelta,
    ToolEnd,
    ToolError,
    ToolOutputDelta,
    ToolStart,
    ToolTelemetry,
    ToolUpdate,
    Usage,
    Workflow,
    decode_payload,
    go_fields,
    json_default,
    typed_payload,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"

# -- the reference ------------------------------------------------------------------------------

# The payload structs of loom's runtime/agent/stream (stream.go) and the structs they nest, as
# the reference lists them: Go struct name, then each field as `json_key[?]:go_type` in
# declaration order, `?` for omitempty.
PAYLOADS: dict[str, tuple[str, str]] = {
    "assistant_reply": ("AssistantReplyPayload", "text:string"),
    "planner_thought": (
        "PlannerThoughtPayload",
        "note?:string text?:string signature?:string redacted?:[]byte content_index?:int"
        " final?:bool",
    ),
    "prompt_rendered": (
        "PromptRenderedPayload",
        "prompt_id:string version:string scope:prompt.Scope",
    ),
    "tool_start": (
        "ToolStartPayload",
        "tool_call_id:string tool_name:string payload?:rawjson.Message display_hint?:string"
        " queue?:string parent_tool_call_id?:string expected_children_total?:int"
        " extra?:map[string]any",
    ),
    "tool_update": ("ToolUpdatePayload", "tool_call_id:string expected_children_total:int"),
    "tool_call_args_delta": (
        "ToolCallArgsDeltaPayload",
        "tool_call_id:string tool_name:string delta:string",
    ),
    "tool_output_delta": (
        "ToolOutputDeltaPayload",
        "tool_call_id:string parent_tool_call_id?:string tool_name:string stream:string"
        " delta:string",
    ),
    "tool_end": (
        "ToolEndPayload",
        "tool_call_id:string parent_tool_call_id?:string tool_name:string"
        " result?:rawjson.Message result_preview?:string bounds?:*agent.Bounds"
        " duration:time.Duration telemetry?:*telemetry.ToolTelemetry"
        " retry_hint?:*planner.RetryHint error?:*toolerrors.ToolError extra?:map[string]any",
    ),
    "await_clarification": (
        "AwaitClarificationPayload",
        "id:string question:string missing_fields?:[]string restrict_to_tool?:string"
        " example_input?:map[string]any",
    ),
    "await_confirmation": (
        "AwaitConfirmationPayload",
        "id:string title?:string prompt:string tool_name:string tool_call_id:string"
        " payload?:rawjson.Message",
    ),
    "await_questions": (
        "AwaitQuestionsPayload",
        "id:string tool_name:string tool_call_id:string title?:*string"
        " questions:[]AwaitQuestionPayload",
    ),
    "await_external_tools": ("AwaitExternalToolsPayload", "id:string items:[]AwaitToolPayload"),
    "tool_authorization": (
        "ToolAuthorizationPayload",
        "tool_name:string tool_call_id:string approved:bool summary:string approved_by:string",
    ),
    "usage": (
        "UsagePayload",
        "Model:string ModelClass:string InputTokens:int OutputTokens:int TotalTokens:int"
        " CacheReadTokens:int CacheWriteTokens:int",
    ),
    "workflow": (
        "WorkflowPayload",
        "name?:string phase:string status?:string error?:string debug_error?:string"
        " error_provider?:string error_operation?:string error_kind?:string"
        " error_code?:string http_status?:int retryable:bool",
    ),
    "child_run_linked": (
        "ChildRunLinkedPayload",
        "tool_name:string tool_call_id:string child_run_id:string child_agent_id:string",
    ),
    "session_stream_started": ("SessionStreamStartedPayload", ""),
    "session_stream_end": ("SessionStreamEndPayload", ""),
    "run_stream_end": ("RunStreamEndPayload", ""),
}
NESTED: dict[str, str] = {
    "prompt.Scope": "SessionID:string Labels:map[string]string",
    "agent.Bounds": (
        "Returned:int Total:*int Truncated:bool NextCursor:*string RefinementHint:string"
    ),
    "telemetry.ToolTelemetry": "DurationMs:int64 TokensUsed:int Model:string Extra:map[string]any",
    "planner.RetryHint": (
        "Reason:string Tool:string RestrictToTool:bool MissingFields:[]string"
        " ExampleInput:map[string]any PriorInput:map[string]any ClarifyingQuestion:string"
        " Message:string"
    ),
    "toolerrors.ToolError": "Message:string Cause:*toolerrors.ToolError",
    "AwaitQuestionPayload": (
        "id:string prompt:string options:[]AwaitQuestionOptionPayload allow_multiple?:bool"
    ),
    "AwaitQuestionOptionPayload": "id:string label:string",
    "AwaitToolPayload": "tool_name:string tool_call_id?:string payload?:rawjson.Message",
}


def described(cls: type[GoStruct]) -> list[str]:
    """``cls``'s fields in the reference's notation, from the class's own metadata."""
    return [
        f"{meta.key}{'?' if meta.omitempty else ''}:{meta.go_type}" for _, meta in go_fields(cls)
    ]


def nested_classes() -> dict[str, type[GoStruct]]:
    """Every struct class a payload reaches through its fields, by Go name."""
    found: dict[str, type[GoStruct]] = {}
    todo: list[type[GoStruct]] = list(PAYLOAD_CLASSES.values())
    while todo:
        cls = todo.pop()
        for _, meta in go_fields(cls):
            inner = getattr(meta.kind, "cls", None)
            if inner is not None and inner.GO_NAME not in found:
                found[inner.GO_NAME] = inner
                todo.append(inner)
    return found


@pytest.mark.parametrize("event_type", list(PAYLOADS))
def test_payload_fields_mirror_the_reference(event_type: str) -> None:
    """Each payload class has the Go struct's fields: JSON keys, order, omitempty, Go types."""
    go_name, fields = PAYLOADS[event_type]
    cls = PAYLOAD_CLASSES[event_type]
    assert (go_name, event_type) == (cls.GO_NAME, cls.EVENT_TYPE)
    assert described(cls) == fields.split()


def test_nested_fields_mirror_the_reference() -> None:
    """Every struct a payload nests is in the reference, field for field, and none is missing."""
    classes = nested_classes()
    assert set(classes) == set(NESTED)
    for go_name, fields in NESTED.items():
        assert described(classes[go_name]) == fields.split(), go_name


def test_one_class_per_event_type() -> None:
    """The 19 event types, and only those, have a payload class."""
    assert set(PAYLOAD_CLASSES) == set(EventType)
    assert all(issubclass(cls, Payload) for cls in PAYLOAD_CLASSES.values())


def test_the_public_surface() -> None:
    """Reading is in the top-level API; the classes are in streamsink.payloads."""
    assert streamsink.typed_payload is typed_payload
    assert streamsink.RawPayload is RawPayload
    assert streamsink.Payload is Payload
    assert {"typed_payload", "RawPayload", "Payload"} <= set(streamsink.__all__)
    for name in streamsink.payloads.__all__:
        assert hasattr(streamsink.payloads, name), name


# -- writing as Go writes -----------------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(PAYLOADS))
def test_zero_payload_writes_exactly_the_fields_without_omitempty(event_type: str) -> None:
    """A payload built with no arguments is Go's zero struct: every field without omitempty, in
    order, and nothing else (`{}` for the three stream markers)."""
    _, fields = PAYLOADS[event_type]
    always = [f.split(":")[0] for f in fields.split() if "?" not in f]
    assert list(PAYLOAD_CLASSES[event_type]().to_json()) == always


def full_tool_end() -> ToolEnd:
    return ToolEnd(
        tool_call_id="c1",
        parent_tool_call_id="p1",
        tool_name="svc.search",
        result={"z": 1, "a": [2, {"y": 0, "b": 1}]},
        result_preview="2 hits",
        bounds=Bounds(returned=2, total=10, truncated=True),
        duration=1_500_000_000,
        telemetry=ToolTelemetry(
            duration_ms=1500, tokens_used=12, model="m", extra={"b": 1, "a": 2}
        ),
        retry_hint=RetryHint(reason="invalid_arguments", missing_fields=["q"]),
        error=ToolError(message="outer", cause=ToolError(message="inner")),
        extra={"k": {"z": 1, "a": 2}},
    )


def test_tool_end_is_written_byte_for_byte_as_go_writes_it() -> None:
    """Declaration order, PascalCase nested structs, nil pointers as null, map keys sorted at
    every depth, raw JSON kept as given, nanoseconds."""
    expected = (
        b'{"tool_call_id":"c1","parent_tool_call_id":"p1","tool_name":"svc.search",'
        b'"result":{"z":1,"a":[2,{"y":0,"b":1}]},"result_preview":"2 hits",'
        b'"bounds":{"Returned":2,"Total":10,"Truncated":true,"NextCursor":null,"RefinementHint":""},'
        b'"duration":1500000000,'
        b'"telemetry":{"DurationMs":1500,"TokensUsed":12,"Model":"m","Extra":{"a":2,"b":1}},'
        b'"retry_hint":{"Reason":"invalid_arguments","Tool":"","RestrictToTool":false,'
        b'"MissingFields":["q"],"ExampleInput":null,"PriorInput":null,"ClarifyingQuestion":"",'
        b'"Message":""},'
        b'"error":{"Message":"outer","Cause":{"Message":"inner","Cause":null}},'
        b'"extra":{"k":{"a":2,"z":1}}}'
    )
    assert orjson.dumps(full_tool_end().to_json()) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # []byte is standard base64 with padding
        (
            PlannerThought(text="t", redacted=b"\x00\xffhi", final=True),
            {"text": "t", "redacted": "AP9oaQ==", "final": True},
        ),
        # a *string: None is left out, "" is written
        (AwaitQuestions(id="a"), {"id": "a", "tool_name": "", "tool_call_id": "", "questions": []}),
        (
            AwaitQuestions(title=""),
            {"id": "", "tool_name": "", "tool_call_id": "", "title": "", "questions": []},
        ),
        # lists of structs are [] when empty, never null, at every level
        (
            AwaitQuestions(questions=[AwaitQuestion(id="q", allow_multiple=True)]),
            {
                "id": "",
                "tool_name": "",
                "tool_call_id": "",
                "questions": [{"id": "q", "prompt": "", "options": [], "allow_multiple": True}],
            },
        ),
        (AwaitExternalTools(), {"id": "", "items": []}),
        (
            AwaitExternalTools(items=[AwaitTool(tool_name="x", payload=[])]),
            {"id": "", "items": [{"tool_name": "x", "payload": []}]},
        ),
        # a raw JSON value is written whenever it is set, even falsy
        (ToolStart(payload=0), {"tool_call_id": "", "tool_name": "", "payload": 0}),
        (ToolStart(payload=""), {"tool_call_id": "", "tool_name": "", "payload": ""}),
        (
            AwaitConfirmation(payload={"b": 1, "a": 2}),
            {
                "id": "",
                "prompt": "",
                "tool_name": "",
                "tool_call_id": "",
                "payload": {"b": 1, "a": 2},
            },
        ),
        # omitempty drops zero values, and empty lists and maps
        (AwaitClarification(missing_fields=[], example_input={}), {"id": "", "question": ""}),
        (
            AwaitClarification(missing_fields=["x"], example_input={"b": 1, "a": 1}),
            {"id": "", "question": "", "missing_fields": ["x"], "example_input": {"a": 1, "b": 1}},
        ),
        (
            Workflow(phase="failed", http_status=429, retryable=True),
            {"phase": "failed", "http_status": 429, "retryable": True},
        ),
        # a struct value is always written; a nil map in it is null, labels are sorted
        (
            PromptRendered(prompt_id="p"),
            {"prompt_id": "p", "version": "", "scope": {"SessionID": "", "Labels": None}},
        ),
        (
            PromptRendered(scope=PromptScope(session_id="s", labels={"z": "1", "a": "2"})),
            {
                "prompt_id": "",
                "version": "",
                "scope": {"SessionID": "s", "Labels": {"a": "2", "z": "1"}},
            },
        ),
        # the embedded model.TokenUsage, PascalCase
        (
            Usage(model="m", input_tokens=3),
            {
                "Model": "m",
                "ModelClass": "",
                "InputTokens": 3,
                "OutputTokens": 0,
                "TotalTokens": 0,
                "CacheReadTokens": 0,
                "CacheWriteTokens": 0,
            },
        ),
        (RunStreamEnd(), {}),
        (
            ToolAuthorization(approved=False),
            {
                "tool_name": "",
                "tool_call_id": "",
                "approved": False,
                "summary": "",
                "approved_by": "",
            },
        ),
        (
            ChildRunLinked(child_run_id="r2"),
            {"tool_name": "", "tool_call_id": "", "child_run_id": "r2", "child_agent_id": ""},
        ),
        (ToolUpdate(expected_children_total=0), {"tool_call_id": "", "expected_children_total": 0}),
        (
            ToolOutputDelta(stream="stdout"),
            {"tool_call_id": "", "tool_name": "", "stream": "stdout", "delta": ""},
        ),
        (ToolCallArgsDelta(delta="{"), {"tool_call_id": "", "tool_name": "", "delta": "{"}),
        (AssistantReply(text=""), {"text": ""}),
        (
            Bounds(total=0, next_cursor=""),
            {"Returned": 0, "Total": 0, "Truncated": False, "NextCursor": "", "RefinementHint": ""},
        ),
        (
            RetryHint(missing_fields=[], example_input={}),
            {
                "Reason": "",
                "Tool": "",
                "RestrictToTool": False,
                "MissingFields": [],
                "ExampleInput": {},
                "PriorInput": None,
                "ClarifyingQuestion": "",
                "Message": "",
            },
        ),
    ],
)
def test_go_encoding_rules(payload: GoStruct, expected: dict[str, Any]) -> None:
    """omitempty, pointers, nil and empty lists and maps, base64, raw JSON, as Go writes them
    (compared as bytes: key order counts)."""
    assert orjson.dumps(payload.to_json()) == orjson.dumps(expected)


def test_to_event_builds_the_event_a_sink_sends_as_go_would() -> None:
    """to_event gives a StreamEvent of the payload's type whose envelope carries Go's JSON,
    with server_data beside the payload."""
    event = full_tool_end().to_event("run-1", "session-1", "key-1", server_data={"rows": 3})
    assert (event.type, event.run_id, event.session_id, event.event_key) == (
        "tool_end",
        "run-1",
        "session-1",
        "key-1",
    )
    envelope = Envelope(
        type=event.type,
        run_id=event.run_id,
        timestamp=datetime.now(UTC),
        payload=event.payload,
        server_data=event.server_data,
    )
    document = orjson.loads(encode_envelope(envelope))
    assert orjson.dumps(document["payload"]) == orjson.dumps(full_tool_end().to_json())
    assert document["server_data"] == {"rows": 3}


@pytest.mark.anyio
async def test_built_payloads_travel_through_a_sink_and_read_back_equal() -> None:
    """Sent with to_event on a real sink, each payload reads back from the stream equal."""
    sent = [full_tool_end(), *(cls() for cls in PAYLOAD_CLASSES.values()), *examples()]
    async with streamsink.connect("memory://payloads-round-trip") as streams:
        for payload in sent:
            await streams.sink.send(payload.to_event("run-1", "s-rt"))
        subscriber = streams.new_subscriber(group=None, start=streamsink.StartPosition.oldest())
        received = []
        async with subscriber.subscribe("session/s-rt") as events:
            async for event in events:
                received.append(typed_payload(event))
                if len(received) == len(sent):
                    break
    assert received == sent


def test_json_default_encodes_payload_objects_as_to_json() -> None:
    """orjson's default= hook writes payload objects (nested or not) as to_json does and
    refuses anything else; plain values never reach it."""
    doc = {"payload": full_tool_end(), "error": ToolError(message="x")}
    assert orjson.dumps(doc, default=json_default) == orjson.dumps(
        {"payload": full_tool_end().to_json(), "error": {"Message": "x", "Cause": None}}
    )
    with pytest.raises(TypeError):
        orjson.dumps({"x": object()}, default=json_default)


# -- building -----------------------------------------------------------------------------------


def test_builders_check_types_and_name_the_field() -> None:
    """A value of the wrong type raises TypeError naming the class, field and Go type."""
    with pytest.raises(
        TypeError, match=r"ToolEnd\.duration: expected an integer \(time\.Duration\)"
    ):
        ToolEnd(duration=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ToolEnd\.duration"):
        ToolEnd(duration=True)
    with pytest.raises(TypeError, match=r"Workflow\.retryable"):
        Workflow(retryable=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ToolEnd\.error"):
        ToolEnd(error="boom")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"AwaitQuestions\.questions"):
        AwaitQuestions(questions=[AwaitTool()])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"PromptScope\.labels"):
        PromptScope(labels={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"AwaitClarification\.missing_fields"):
        AwaitClarification(missing_fields="abc")
    with pytest.raises(TypeError, match=r"PromptRendered\.scope"):
        PromptRendered(scope=None)  # type: ignore[arg-type]


def test_builders_refuse_integers_go_cannot_hold() -> None:
    """Go's int has 64 bits: a bigger integer raises ValueError naming the field."""
    with pytest.raises(ValueError, match=r"Usage\.input_tokens: 9223372036854775808 does not fit"):
        Usage(input_tokens=2**63)
    assert Usage(input_tokens=2**63 - 1, output_tokens=-(2**63)).input_tokens == 2**63 - 1


def test_builders_freeze_what_they_are_given() -> None:
    """Lists become tuples and dicts read-only copies; the payload itself is frozen."""
    extra = {"a": 1}
    fields = ["x"]
    start = ToolStart(extra=extra)
    clarify = AwaitClarification(missing_fields=fields)
    extra["a"] = 2
    fields.append("y")
    assert start.extra == {"a": 1}
    assert clarify.missing_fields == ("x",)
    with pytest.raises(TypeError):
        start.extra["a"] = 3  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        start.tool_name = "x"  # type: ignore[misc]
    assert attrs.evolve(start, tool_name="x").tool_name == "x"


def test_repr_shows_mappings_as_dicts_and_unknown_fields_last() -> None:
    """The repr reads like the call that builds the payload."""
    start = ToolStart(tool_name="t", extra={"a": 1}, unknown_fields={"z": 2})
    assert repr(start).startswith("ToolStart(tool_call_id='', tool_name='t', payload=None")
    assert repr(start).endswith("extra={'a': 1}, unknown_fields={'z': 2})")


def test_unknown_fields_are_written_after_the_known_ones() -> None:
    """Given unknown fields follow the Go fields (include_unknown=False drops them); a key that
    is a field, in any case, is refused: Go would read it into that field."""
    start = ToolStart(tool_name="t", unknown_fields={"zeta": 1, "alpha": 2})
    assert list(start.to_json()) == ["tool_call_id", "tool_name", "zeta", "alpha"]
    assert list(start.to_json(include_unknown=False)) == ["tool_call_id", "tool_name"]
    for key in ("tool_name", "TOOL_NAME"):
        with pytest.raises(ValueError, match="is a field of ToolStart"):
            ToolStart(unknown_fields={key: "x"})
    with pytest.raises(TypeError):
        ToolStart(unknown_fields={1: "x"})


def test_a_map_value_json_cannot_hold_fails_when_written() -> None:
    """to_json raises TypeError for a map value JSON cannot hold, as the sink would."""
    with pytest.raises(TypeError):
        ToolStart(extra={"x": object()}).to_json()


# -- reading ------------------------------------------------------------------------------------


def examples() -> Iterator[Payload]:
    """A payload of every type with every field set, or nearly."""
    yield AssistantReply(text="Hi")
    yield PlannerThought(note="n", text="t", signature="sig", redacted=b"\x01", content_index=2)
    yield PromptRendered(
        prompt_id="p", version="v2", scope=PromptScope(session_id="s", labels={"a": "b"})
    )
    yield ToolStart(
        tool_call_id="c",
        tool_name="t",
        payload={"q": [1, None]},
        display_hint="d",
        queue="q",
        parent_tool_call_id="p",
        expected_children_total=2,
        extra={"e": None},
    )
    yield ToolUpdate(tool_call_id="c", expected_children_total=5)
    yield ToolCallArgsDelta(tool_call_id="c", tool_name="t", delta='{"a"')
    yield ToolOutputDelta(
        tool_call_id="c", parent_tool_call_id="p", tool_name="t", stream="log", delta="x"
    )
    yield full_tool_end()
    yield AwaitClarification(
        id="a", question="q", missing_fields=["f"], restrict_to_tool="t", example_input={"f": 1}
    )
    yield AwaitConfirmation(
        id="a", title="T", prompt="p", tool_name="t", tool_call_id="c", payload=False
    )
    yield AwaitQuestions(
        id="a",
        tool_name="t",
        tool_call_id="c",
        title="",
        questions=[
            AwaitQuestion(
                id="q",
                prompt="p",
                options=[AwaitQuestionOption(id="o", label="l")],
                allow_multiple=True,
            )
        ],
    )
    yield AwaitExternalTools(
        id="a", items=[AwaitTool(tool_name="t", tool_call_id="c", payload={"x": 1})]
    )
    yield ToolAuthorization(
        tool_name="t", tool_call_id="c", approved=True, summary="s", approved_by="user:1"
    )
    yield Usage(
        model="m",
        model_class="small",
        input_tokens=1,
        output_tokens=2,
        total_tokens=3,
        cache_read_tokens=4,
        cache_write_tokens=5,
    )
    yield Workflow(
        name="n",
        phase="failed",
        status="failed",
        error="e",
        debug_error="d",
        error_provider="bedrock",
        error_operation="o",
        error_kind="rate_limited",
        error_code="c",
        http_status=429,
        retryable=True,
    )
    yield ChildRunLinked(tool_name="t", tool_call_id="c", child_run_id="r", child_agent_id="a")
    yield SessionStreamStarted()
    yield SessionStreamEnd()
    yield RunStreamEnd()


@pytest.mark.parametrize("payload", list(examples()), ids=lambda p: type(p).__name__)
def test_what_is_written_reads_back_equal(payload: Payload) -> None:
    """typed_payload(to_event(p)) == p, through the JSON bytes, for every type."""
    event = payload.to_event("r", "s")
    wire = orjson.loads(orjson.dumps(event.payload))
    assert typed_payload(StreamEvent(event.type, "r", "s", payload=wire)) == payload
    assert decode_payload(event.type, wire) == payload


def test_a_go_envelope_reads_into_its_class() -> None:
    """An envelope as Go's encoding/json writes it (HTML escapes included) gives the typed
    payload, nested structs and all."""
    data = (
        b'{"type":"tool_end","event_key":"k","run_id":"r","session_id":"s",'
        b'"timestamp":"2026-01-02T03:04:05.123456789Z","payload":{"tool_call_id":"c1",'
        b'"tool_name":"svc.tools.search","result":{"html":"\\u003cb\\u003e"},"duration":1500000000,'
        b'"telemetry":{"DurationMs":1500,"TokensUsed":0,"Model":"","Extra":null},'
        b'"error":{"Message":"a \\u0026 b","Cause":{"Message":"root","Cause":null}}},'
        b'"server_data":{"rows":[1]}}'
    )
    typed = typed_payload(decode_envelope(data))
    assert typed == ToolEnd(
        tool_call_id="c1",
        tool_name="svc.tools.search",
        result={"html": "<b>"},
        duration=1_500_000_000,
        telemetry=ToolTelemetry(duration_ms=1500),
        error=ToolError(message="a & b", cause=ToolError(message="root")),
    )


def test_missing_keys_and_nulls_read_as_go_zero_values() -> None:
    """As Go's json.Unmarshal: absent or null fields take their zero value, a null payload is
    the zero payload, null list items are zero items."""
    assert decode_payload("tool_end", {}) == ToolEnd()
    assert decode_payload("tool_end", None) == ToolEnd()
    assert decode_payload("run_stream_end", None) == RunStreamEnd()
    nulls = {
        key: None for key in ("tool_call_id", "duration", "error", "extra", "bounds", "result")
    }
    assert decode_payload("tool_end", nulls) == ToolEnd()
    questions = decode_payload("await_questions", {"questions": [None, {"options": None}]})
    assert questions == AwaitQuestions(questions=[AwaitQuestion(), AwaitQuestion()])
    hint = decode_payload("tool_end", {"retry_hint": {"MissingFields": ["a", None]}})
    assert isinstance(hint, ToolEnd)
    assert hint.retry_hint == RetryHint(missing_fields=["a", ""])
    scope = decode_payload("prompt_rendered", {"scope": {"Labels": {"a": None}}})
    assert isinstance(scope, PromptRendered)
    assert scope.scope.labels == {"a": ""}


def test_keys_match_case_insensitively_as_in_go() -> None:
    """Go's decoder fills a field from a key that differs only in ASCII case; the last of two
    wins, and writing uses the Go key."""
    usage = decode_payload("usage", {"model": "m", "INPUTTOKENS": 3, "Model": "n"})
    assert usage == Usage(model="n", input_tokens=3)
    end = decode_payload("tool_end", {"Tool_Name": "t", "error": {"message": "x"}})
    assert end == ToolEnd(tool_name="t", error=ToolError(message="x"))
    assert end.to_json()["tool_name"] == "t"


def test_unknown_keys_are_kept_at_every_level() -> None:
    """Keys a struct does not have are kept in order, in the payload and in nested structs, and
    written back after the known ones."""
    payload = {
        "zz": 1,
        "tool_name": "t",
        "error": {"Message": "m", "Code": 7},
        "duration": 5,
        "aa": [None],
    }
    end = decode_payload("tool_end", payload)
    assert isinstance(end, ToolEnd)
    assert end.unknown_fields == {"zz": 1, "aa": [None]}
    assert end.error == ToolError(message="m", unknown_fields={"Code": 7})
    assert list(end.to_json()) == ["tool_call_id", "tool_name", "duration", "error", "zz", "aa"]
    assert end.to_json()["error"] == {"Message": "m", "Cause": None, "Code": 7}


def test_an_unknown_type_is_kept_raw_and_not_flagged() -> None:
    """A type outside the vocabulary gives its payload as is, with no problems."""
    raw = typed_payload(StreamEvent("my_event", "r", payload=[1, 2]))
    assert raw == RawPayload(type="my_event", value=[1, 2])
    assert not raw.malformed


@pytest.mark.parametrize(
    ("event_type", "payload", "problem"),
    [
        ("tool_end", [1, 2], "payload: expected an object, got an array"),
        ("usage", "x", "payload: expected an object, got a string"),
        ("workflow", 3, "payload: expected an object, got an integer"),
        ("tool_end", {"duration": "84ms"}, "duration: expected an integer, got a string"),
        ("tool_end", {"duration": 84.0}, "duration: expected an integer, got a number"),
        ("tool_end", {"duration": True}, "duration: expected an integer, got a boolean"),
        (
            "tool_end",
            {"duration": 2**63},
            "duration: 9223372036854775808 does not fit a 64-bit time.Duration",
        ),
        ("tool_end", {"tool_name": 5}, "tool_name: expected a string, got an integer"),
        ("tool_end", {"error": "boom"}, "error: expected an object, got a string"),
        (
            "tool_end",
            {"error": {"Cause": {"Message": []}}},
            "error.Cause.Message: expected a string, got an array",
        ),
        ("tool_end", {"extra": []}, "extra: expected an object, got an array"),
        (
            "tool_end",
            {"bounds": {"Total": "10"}},
            "bounds.Total: expected an integer, got a string",
        ),
        ("workflow", {"retryable": "false"}, "retryable: expected a boolean, got a string"),
        ("planner_thought", {"redacted": "not base64!"}, "redacted: not valid base64"),
        ("planner_thought", {"redacted": "aGk"}, "redacted: not valid base64"),  # no padding
        ("planner_thought", {"redacted": [1]}, "redacted: expected a base64 string, got an array"),
        (
            "await_questions",
            {"questions": {}},
            "questions: expected an array of objects, got an object",
        ),
        (
            "await_questions",
            {"questions": [{"options": [{"label": 1}]}]},
            "questions[0].options[0].label: expected a string, got an integer",
        ),
        ("await_questions", {"questions": ["q"]}, "questions[0]: expected an object, got a string"),
        (
            "await_clarification",
            {"missing_fields": ["a", 2]},
            "missing_fields[1]: expected a string, got an integer",
        ),
        (
            "prompt_rendered",
            {"scope": {"Labels": {"a": 1}}},
            "scope.Labels.a: expected a string, got an integer",
        ),
        ("prompt_rendered", {"scope": []}, "scope: expected an object, got an array"),
    ],
)
def test_a_payload_of_the_wrong_shape_is_kept_raw_and_flagged(
    event_type: str, payload: Any, problem: str
) -> None:
    """Wrong JSON types anywhere give a RawPayload holding the payload as it came, with the
    problem and its path: never an exception."""
    raw = typed_payload(StreamEvent(event_type, "r", payload=payload))
    assert isinstance(raw, RawPayload)
    assert raw.type == event_type
    assert raw.value is payload
    assert raw.malformed
    assert raw.problems[0] == problem


def test_every_problem_is_reported_up_to_a_few() -> None:
    """All wrong fields are named; a payload wrong everywhere is summed up in ten lines."""
    raw = decode_payload("tool_end", {"tool_name": 1, "duration": "x"})
    assert isinstance(raw, RawPayload)
    assert raw.problems == (
        "tool_name: expected a string, got an integer",
        "duration: expected an integer, got a string",
    )
    wrong = {"text": 1, "note": 1, "signature": 1, "content_index": "x", "final": 1, "redacted": 1}
    wrong_everywhere = decode_payload(
        "workflow",
        {
            k: 1
            for k in (
                "name",
                "phase",
                "status",
                "error",
                "debug_error",
                "error_provider",
                "error_operation",
                "error_kind",
                "error_code",
            )
        }
        | {"http_status": "x", "retryable": 1},
    )
    assert isinstance(wrong_everywhere, RawPayload)
    assert len(wrong_everywhere.problems) == 10
    assert wrong_everywhere.problems[-1] == "and 2 more"
    assert isinstance(decode_payload("planner_thought", wrong), RawPayload)


def test_deep_cause_chains_are_read_up_to_a_limit_then_flagged() -> None:
    """A ToolError chain 64 deep reads; one deeper is flagged, not a RecursionError."""

    def chain(depth: int) -> dict[str, Any]:
        error: dict[str, Any] = {"Message": "root", "Cause": None}
        for i in range(depth - 1):
            error = {"Message": f"m{i}", "Cause": error}
        return error

    deep_enough = decode_payload("tool_end", {"error": chain(63)})
    assert isinstance(deep_enough, ToolEnd)
    too_deep = decode_payload("tool_end", {"error": chain(900)})
    assert isinstance(too_deep, RawPayload)
    assert too_deep.problems[0].endswith("nested deeper than 64 levels")


def test_payload_objects_are_returned_as_they_are() -> None:
    """A payload object in an event (built locally) is its own typed payload if of the event's
    type, and flagged otherwise."""
    start = ToolStart(tool_name="t")
    assert typed_payload(StreamEvent("tool_start", "r", payload=start)) is start
    raw = typed_payload(StreamEvent("tool_end", "r", payload=start))
    assert isinstance(raw, RawPayload)
    assert raw.problems == ("payload: a ToolStart on a tool_end event",)


def test_odd_local_payloads_never_raise() -> None:
    """Dicts no JSON decoder makes (non-string keys, Python objects) are flagged, not raised."""
    assert isinstance(decode_payload("tool_end", {1: "x"}), RawPayload)
    assert isinstance(decode_payload("tool_end", {"tool_name": object()}), RawPayload)
    assert isinstance(decode_payload("tool_end", {"extra": {1: "x"}}), RawPayload)
    assert isinstance(decode_payload("tool_end", ("a",)), RawPayload)


SAMPLES = [
    "null",
    "true",
    "0",
    "-1",
    "1.5",
    "1e400",
    '""',
    '"x"',
    '"aGk="',
    "[]",
    "[null]",
    '[1,"a"]',
    "{}",
    '{"a":null}',
    '{"Message":"m","Cause":{}}',
    "9223372036854775807",
]


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_CLASSES))
def test_no_field_value_makes_reading_raise(event_type: str) -> None:
    """Every JSON value in every field of every type (and in every nested struct's fields)
    gives a typed payload or a RawPayload, and a typed one can be written back."""
    cls = PAYLOAD_CLASSES[event_type]
    paths: list[list[str]] = [[meta.key] for _, meta in go_fields(cls)]
    for _, meta in go_fields(cls):
        inner = getattr(meta.kind, "cls", None)
        if inner is not None:
            paths += [[meta.key, inner_meta.key] for _, inner_meta in go_fields(inner)]
    for path in paths:
        for sample in SAMPLES:
            value = orjson.loads(sample) if sample != "1e400" else float("inf")
            payload: dict[str, Any] = {}
            target = payload
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = value
            typed = decode_payload(event_type, payload)
            if isinstance(typed, GoStruct):
                typed.to_json()
            else:
                assert typed.malformed, (path, sample)


# -- docs ---------------------------------------------------------------------------------------


def _doc_sections() -> dict[str, list[list[str]]]:
    """Class name -> rows of its table (cells without backticks) in docs/events.md."""
    sections: dict[str, list[list[str]]] = {}
    rows: list[list[str]] = []
    for line in DOCS.read_text().splitlines():
        if line.startswith("### "):
            rows = sections.setdefault(re.findall(r"`([^`]+)`", line)[-1], [])
        elif line.startswith("| `"):
            cells = [
                c.strip().strip("`").replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]
            ]
            rows.append(cells)
    return sections


def test_docs_tables_match_the_classes() -> None:
    """docs/events.md has a table per payload and nested class, row for row: attribute, JSON
    key, Python type, Go type, omitempty."""
    sections = _doc_sections()
    classes = {cls.__name__: cls for cls in [*PAYLOAD_CLASSES.values(), *nested_classes().values()]}
    assert set(sections) == set(classes)
    for name, cls in classes.items():
        attributes = {a.name: a for a in attrs.fields(cls)}
        expected = [
            [
                field,
                meta.key,
                str(attributes[field].type),
                meta.go_type,
                "yes" if meta.omitempty else "",
            ]
            for field, meta in go_fields(cls)
        ]
        assert [row[:5] for row in sections[name]] == expected, name
        assert all(row[5] for row in sections[name]), name  # every field has a meaning


def test_docs_examples_run_and_print_what_the_docs_say(tmp_path: Path) -> None:
    """Each python block of docs/events.md runs and prints the text block after it."""
    text = DOCS.read_text()
    blocks = re.findall(r"^```python\n(.*?)^```\n\nprints\n\n```text\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) == 2
    for code, printed in blocks:
        script = tmp_path / "example.py"
        script.write_text(code)
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == printed


def test_a_received_event_reads_its_own_typed_payload() -> None:
    """``StreamEvent.typed_payload()`` is ``typed_payload(event)``, for known and unknown types."""
    known = StreamEvent("tool_end", "r", payload={"tool_name": "search", "duration": 5})
    assert known.typed_payload() == typed_payload(known)
    assert known.typed_payload().tool_name == "search"  # type: ignore[union-attr]
    unknown = StreamEvent("custom", "r", payload=[1, 2])
    assert unknown.typed_payload() == RawPayload(type="custom", value=[1, 2])
