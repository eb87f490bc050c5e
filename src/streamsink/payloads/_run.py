"""The model and the run: assistant_reply, planner_thought, prompt_rendered, usage, workflow and
the three stream markers (session_stream_started, session_stream_end, run_stream_end)."""

# go() returns an attrs field, as attrs.field() does: no default is shared between instances.
# ruff: noqa: RUF009

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs

from ._kinds import BOOL, BYTES, INT, STRING, STRING_MAP, struct
from ._payload import Payload
from ._schema import GoStruct, go, unknown_last

__all__ = [
    "AssistantReply",
    "PlannerThought",
    "PromptRendered",
    "PromptScope",
    "RunStreamEnd",
    "SessionStreamEnd",
    "SessionStreamStarted",
    "Usage",
    "Workflow",
]


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class PromptScope(GoStruct):
    """Where a prompt override applies (``prompt.Scope``: no json tags, so PascalCase keys)."""

    GO_NAME: ClassVar[str] = "prompt.Scope"

    session_id: str = go("SessionID", STRING)
    labels: Mapping[str, str] | None = go("Labels", STRING_MAP, nullable=True)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class AssistantReply(Payload):
    """``assistant_reply``: a chunk of the assistant's answer; concatenate them in order."""

    EVENT_TYPE: ClassVar[str] = "assistant_reply"
    GO_NAME: ClassVar[str] = "AssistantReplyPayload"

    text: str = go("text", STRING)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class PlannerThought(Payload):
    """``planner_thought``: a planner note, or a structured thinking block.

    ``redacted`` is ``[]byte`` in Go: bytes here, standard base64 on the wire.
    """

    EVENT_TYPE: ClassVar[str] = "planner_thought"
    GO_NAME: ClassVar[str] = "PlannerThoughtPayload"

    note: str = go("note", STRING, omitempty=True)
    text: str = go("text", STRING, omitempty=True)
    signature: str = go("signature", STRING, omitempty=True)
    redacted: bytes = go("redacted", BYTES, omitempty=True)
    content_index: int = go("content_index", INT, omitempty=True)
    final: bool = go("final", BOOL, omitempty=True)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class PromptRendered(Payload):
    """``prompt_rendered``: the runtime rendered a prompt, this version, for this scope."""

    EVENT_TYPE: ClassVar[str] = "prompt_rendered"
    GO_NAME: ClassVar[str] = "PromptRenderedPayload"

    prompt_id: str = go("prompt_id", STRING)
    version: str = go("version", STRING)
    scope: PromptScope = go("scope", struct("prompt.Scope", lambda: PromptScope))


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class Usage(Payload):
    """``usage``: tokens one model call used (``UsagePayload``, which embeds
    ``model.TokenUsage``: no json tags, so PascalCase keys)."""

    EVENT_TYPE: ClassVar[str] = "usage"
    GO_NAME: ClassVar[str] = "UsagePayload"

    model: str = go("Model", STRING)
    model_class: str = go("ModelClass", STRING)
    input_tokens: int = go("InputTokens", INT)
    output_tokens: int = go("OutputTokens", INT)
    total_tokens: int = go("TotalTokens", INT)
    cache_read_tokens: int = go("CacheReadTokens", INT)
    cache_write_tokens: int = go("CacheWriteTokens", INT)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class Workflow(Payload):
    """``workflow``: the run entered a lifecycle phase; a terminal one comes right before
    ``run_stream_end``."""

    EVENT_TYPE: ClassVar[str] = "workflow"
    GO_NAME: ClassVar[str] = "WorkflowPayload"

    name: str = go("name", STRING, omitempty=True)
    phase: str = go("phase", STRING)
    status: str = go("status", STRING, omitempty=True)
    error: str = go("error", STRING, omitempty=True)
    debug_error: str = go("debug_error", STRING, omitempty=True)
    error_provider: str = go("error_provider", STRING, omitempty=True)
    error_operation: str = go("error_operation", STRING, omitempty=True)
    error_kind: str = go("error_kind", STRING, omitempty=True)
    error_code: str = go("error_code", STRING, omitempty=True)
    http_status: int = go("http_status", INT, omitempty=True)
    retryable: bool = go("retryable", BOOL)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class SessionStreamStarted(Payload):
    """``session_stream_started``: a session stream exists (no fields; written ``{}``)."""

    EVENT_TYPE: ClassVar[str] = "session_stream_started"
    GO_NAME: ClassVar[str] = "SessionStreamStartedPayload"


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class SessionStreamEnd(Payload):
    """``session_stream_end``: nothing more comes on this session stream (written ``{}``)."""

    EVENT_TYPE: ClassVar[str] = "session_stream_end"
    GO_NAME: ClassVar[str] = "SessionStreamEndPayload"


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class RunStreamEnd(Payload):
    """``run_stream_end``: the run's last stream-visible event (written ``{}``)."""

    EVENT_TYPE: ClassVar[str] = "run_stream_end"
    GO_NAME: ClassVar[str] = "RunStreamEndPayload"
