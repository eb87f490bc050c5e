"""The command line of the operator commands: their arguments, and running them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import anyio

from ..backend import TrimBound
from ._dlq import run_dlq
from ._exits import CommandError
from ._ops import (
    parse_payload,
    run_consumers,
    run_groups,
    run_pending,
    run_send,
    run_streams,
    run_trim,
)
from ._output import Output

__all__ = ["OPS_COMMANDS", "add_ops_commands", "run_ops_command"]

OPS_COMMANDS = frozenset({"streams", "groups", "pending", "consumers", "dlq", "trim", "send"})
_DLQ_ACTIONS = ("list", "show", "replay", "purge")
_JSON_HELP = "print JSON lines (one document per row) instead of a table"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text!r}")
    return value


def _int(least: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}: {text!r}")
        return value

    return convert


def add_ops_commands(commands: Any, url_help: str) -> None:
    """Add the operator commands to the ``streamsink`` subparsers."""

    def command(name: str, help_text: str, **extra: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text, **extra)
        parser.add_argument("--url", default=None, help=url_help)
        parser.add_argument("--json", action="store_true", help=_JSON_HELP)
        return parser

    command("streams", "list streams: length, first and last entries and their times")
    groups = command("groups", "list a stream's groups: consumers, pending, lag, idle time")
    groups.add_argument("stream", metavar="STREAM")
    pending = command("pending", "list a group's pending entries: holder, since when, deliveries")
    pending.add_argument("stream", metavar="STREAM")
    pending.add_argument("group", metavar="GROUP")
    pending.add_argument("--consumer", default=None, help="only this consumer's entries")
    pending.add_argument("--after", default=None, metavar="ID", help="start after this entry id")
    pending.add_argument(
        "--limit", type=_int(1), default=100, help="show at most N entries (default 100)"
    )
    consumers = command(
        "consumers", "list a group's consumers; --reap-idle removes idle ones holding nothing"
    )
    consumers.add_argument("stream", metavar="STREAM")
    consumers.add_argument("group", metavar="GROUP")
    consumers.add_argument(
        "--reap-idle",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="remove consumers holding no entry and idle for SECONDS or more (never one that "
        "holds entries)",
    )
    dlq = command(
        "dlq",
        "dead letters: dlq STREAM lists them; dlq show STREAM ID; dlq replay STREAM [ID...]; "
        "dlq purge STREAM [--through ID]",
        usage="streamsink dlq [list | show | replay | purge] STREAM [ID ...] [options]",
    )
    dlq.add_argument(
        "words",
        nargs="+",
        metavar="ARG",
        help="[ACTION] STREAM [ID ...]: ACTION is list (default), show (one letter ID), replay "
        "(the letter IDs given, default all) or purge; STREAM is the stream or its :dlq",
    )
    dlq.add_argument(
        "--dlq-stream", default=None, metavar="NAME", help="the dead-letter stream (STREAM:dlq)"
    )
    dlq.add_argument("--through", default=None, metavar="ID", help="purge up to this letter")
    dlq.add_argument("--yes", action="store_true", help="replay or purge without asking")
    trim = command("trim", "remove a stream's oldest entries, exactly")
    trim.add_argument("stream", metavar="STREAM")
    bound = trim.add_mutually_exclusive_group(required=True)
    bound.add_argument("--maxlen", type=_int(0), default=None, help="keep the newest N entries")
    bound.add_argument("--minid", default=None, metavar="ID", help="remove entries before ID")
    send = command("send", "publish one event (for testing consumers)")
    send.add_argument("stream", metavar="STREAM")
    send.add_argument("type", metavar="TYPE", help="event type, e.g. tool_start")
    send.add_argument("--payload", default=None, metavar="JSON", help="the event's payload")
    send.add_argument("--run-id", default=None, help="run id (default cli-<random>)")
    send.add_argument(
        "--session-id", default=None, help="session id (default: from session/<id>, else cli)"
    )


def _dlq_words(words: list[str]) -> tuple[str, str, list[str]]:
    """(action, stream, ids) of ``dlq [ACTION] STREAM [ID...]``.

    :raises CommandError: a missing stream, or ids the action does not take.
    """
    if words[0] in _DLQ_ACTIONS:
        if len(words) < 2:
            raise CommandError(f"dlq {words[0]} needs a STREAM")
        action, stream, ids = words[0], words[1], words[2:]
    else:
        action, stream, ids = "list", words[0], words[1:]
    if action == "show" and len(ids) != 1:
        raise CommandError(f"dlq show takes STREAM and one letter ID, got {len(ids)} ids")
    if action in ("list", "purge") and ids:
        hint = " (purge through a letter with --through ID)" if action == "purge" else ""
        raise CommandError(f"dlq {action} takes no letter ids, got {ids[0]!r}{hint}")
    return action, stream, ids


def run_ops_command(args: argparse.Namespace, url: str, out: Output) -> int:
    """Run the operator command ``args`` names on ``url``."""
    name, json = args.command, args.json
    if name == "streams":
        return anyio.run(lambda: run_streams(url, out, json=json))
    if name == "groups":
        return anyio.run(lambda: run_groups(url, args.stream, out, json=json))
    if name == "pending":
        return anyio.run(
            lambda: run_pending(
                url,
                args.stream,
                args.group,
                out,
                consumer=args.consumer,
                after=args.after,
                limit=args.limit,
                json=json,
            )
        )
    if name == "consumers":
        return anyio.run(
            lambda: run_consumers(
                url, args.stream, args.group, out, reap_idle=args.reap_idle, json=json
            )
        )
    if name == "dlq":
        action, stream, ids = _dlq_words(args.words)
        if args.through is not None and action != "purge":
            raise CommandError(f"--through is for dlq purge, not dlq {action}")
        return anyio.run(
            lambda: run_dlq(
                url,
                action,
                stream,
                out,
                ids=ids,
                dlq=args.dlq_stream,
                through=args.through,
                yes=args.yes,
                json=json,
            )
        )
    if name == "trim":
        bound = TrimBound.maxlen(args.maxlen) if args.minid is None else TrimBound.minid(args.minid)
        return anyio.run(lambda: run_trim(url, args.stream, bound, out, json=json))
    payload = parse_payload(args.payload)
    return anyio.run(
        lambda: run_send(
            url,
            args.stream,
            args.type,
            out,
            payload=payload,
            run_id=args.run_id,
            session_id=args.session_id,
            json=json,
        )
    )
