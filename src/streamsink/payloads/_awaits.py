"""Runs waiting on someone: await_clarification, await_confirmation, await_questions and
await_external_tools, with the questions, options and tool calls they carry."""

# go() returns an attrs field, as attrs.field() does: no default is shared between instances.
# ruff: noqa: RUF009

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from ._kinds import ANY_MAP, BOOL, RAW, STRING, STRINGS, structs
from ._payload import Payload
from ._schema import GoStruct, go, unknown_last

__all__ = [
    "AwaitClarification",
    "AwaitConfirmation",
    "AwaitExternalTools",
    "AwaitQuestion",
    "AwaitQuestionOption",
    "AwaitQuestions",
    "AwaitTool",
]


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class AwaitQuestionOption(GoStruct):
    """One answer a question offers (``AwaitQuestionOptionPayload``)."""

    GO_NAME: ClassVar[str] = "AwaitQuestionOptionPayload"

    id: str = go("id", STRING)
    label: str = go("label", STRING)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class AwaitQuestion(GoStruct):
    """One multiple-choice question (``AwaitQuestionPayload``); ``options`` is written ``[]``
    when empty, never ``null``, as the runtime makes it."""

    GO_NAME: ClassVar[str] = "AwaitQuestionPayload"

    id: str = go("id", STRING)
    prompt: str = go("prompt", STRING)
    options: Sequence[AwaitQuestionOption] = go(
        "options", structs("AwaitQuestionOptionPayload", lambda: AwaitQuestionOption)
    )
    allow_multiple: bool = go("allow_multiple", BOOL, omitempty=True)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class AwaitTool(GoStruct):
    """One external tool call the caller must run (``AwaitToolPayload``)."""

    GO_NAME: ClassVar[str] = "AwaitToolPayload"

    tool_name: str = go("tool_name", STRING)
    tool_call_id: str = go("tool_call_id", STRING, omitempty=True)
    payload: Any = go("payload", RAW, omitempty=True)


# -- payloads -------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class AwaitClarification(Payload):
    """``await_clarification``: the run waits for a person to clarify something."""

    EVENT_TYPE: ClassVar[str] = "await_clarification"
    GO_NAME: ClassVar[str] = "AwaitClarificationPayload"

    id: str = go("id", STRING)
    question: str = go("question", STRING)
    missing_fields: Sequence[str] = go("missing_fields", STRINGS, omitempty=True)
    restrict_to_tool: str = go("restrict_to_tool", STRING, omitempty=True)
    example_input: Mapping[str, Any] = go("example_input", ANY_MAP, omitempty=True)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class AwaitConfirmation(Payload):
    """``await_confirmation``: the run waits for an operator to confirm a tool call."""

    EVENT_TYPE: ClassVar[str] = "await_confirmation"
    GO_NAME: ClassVar[str] = "AwaitConfirmationPayload"

    id: str = go("id", STRING)
    title: str = go("title", STRING, omitempty=True)
    prompt: str = go("prompt", STRING)
    tool_name: str = go("tool_name", STRING)
    tool_call_id: str = go("tool_call_id", STRING)
    payload: Any = go("payload", RAW, omitempty=True)


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class AwaitQuestions(Payload):
    """``await_questions``: the run waits for answers to multiple-choice questions.

    ``title`` is a Go ``*string``: None leaves it out, ``""`` is written. ``questions`` is
    written ``[]`` when empty, never ``null``.
    """

    EVENT_TYPE: ClassVar[str] = "await_questions"
    GO_NAME: ClassVar[str] = "AwaitQuestionsPayload"

    id: str = go("id", STRING)
    tool_name: str = go("tool_name", STRING)
    tool_call_id: str = go("tool_call_id", STRING)
    title: str | None = go("title", STRING, omitempty=True, nullable=True)
    questions: Sequence[AwaitQuestion] = go(
        "questions", structs("AwaitQuestionPayload", lambda: AwaitQuestion)
    )


@attrs.frozen(kw_only=True, field_transformer=unknown_last)
class AwaitExternalTools(Payload):
    """``await_external_tools``: the run waits for the caller to run tool calls itself;
    ``items`` is written ``[]`` when empty, never ``null``."""

    EVENT_TYPE: ClassVar[str] = "await_external_tools"
    GO_NAME: ClassVar[str] = "AwaitExternalToolsPayload"

    id: str = go("id", STRING)
    items: Sequence[AwaitTool] = go("items", structs("AwaitToolPayload", lambda: AwaitTool))
