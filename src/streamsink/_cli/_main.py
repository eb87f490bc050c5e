"""The command line: argument parsing, dispatch, and how failures and a closed stdout end it."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

import anyio

from .._exceptions import StreamsinkError
from .._plugins import get_registry
from .._runtime import DEFAULT_URL, URL_ENV
from ..backend import StartPosition
from ..backend._url import redact_url
from ._demo import DEMO_TIMEOUT, run_demo
from ._exits import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CommandError,
)
from ._ops_parser import OPS_COMMANDS, add_ops_commands, run_ops_command
from ._output import Output, make_output
from ._serve import DEMO_PACE, TOKEN_ENV, run_serve, token_from
from ._tail import run_tail
from ._text import (
    escape,
    safe_message,
)

# -- backends -----------------------------------------------------------------------------------


def cmd_backends(out: Output) -> int:
    """Print the installed backends: scheme, description, providing plugin."""
    backends = list(get_registry())
    if not backends:
        raise CommandError("no streamsink backend is installed")
    width = max(len(b.scheme) for b in backends) + 3
    desc_width = max(len(b.description) for b in backends)
    for backend in backends:
        out.write(f"{backend.scheme + '://':<{width}}", "bold")
        out.write(f"  {backend.description:<{desc_width}}  {backend.plugin}\n")
    return EXIT_OK


# -- command line -------------------------------------------------------------------------------


def _default_url() -> str:
    return os.environ.get(URL_ENV) or DEFAULT_URL


def _shown_default_url() -> str:
    """The default URL as ``--help`` may show it: user part redacted, nothing unprintable, and
    ``%`` doubled (argparse %-formats help texts; URLs hold percent escapes)."""
    return escape(redact_url(_default_url())).replace("%", "%%")


def _number(
    parse: Callable[[str], float], kind: str, ok: Callable[[float], bool], wanted: str
) -> Callable[[str], float]:
    """An argparse ``type=``: ``parse`` the text, then require ``ok`` of the value."""

    def convert(text: str) -> float:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}: {text!r}")
        return value

    return convert


_positive = _number(float, "a number", lambda v: v > 0, "positive")
_not_negative = _number(float, "a number", lambda v: v >= 0, "0 or more")
_count = _number(int, "an integer", lambda v: v >= 1, "at least 1")
_port = _number(int, "an integer", lambda v: 0 <= v <= 65535, "a port number, 0 to 65535")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamsink",
        description="Carry an agent runtime's events between processes, on any backend.",
        epilog=f"The backend URL defaults to ${URL_ENV}, else {DEFAULT_URL}.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the output (needs the 'cli' extra; default: auto, on a terminal)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("backends", help="list the installed backends")

    url_help = f"backend URL (default: ${URL_ENV}, else {DEFAULT_URL}; now {_shown_default_url()})"
    demo = commands.add_parser(
        "demo", help="play a simulated agent run through a sink and print it live"
    )
    demo.add_argument("--url", default=None, help=url_help)
    demo.add_argument(
        "--timeout",
        type=_positive,
        default=DEMO_TIMEOUT,
        help=f"seconds to wait for the end of the run (default {DEMO_TIMEOUT:g})",
    )
    demo.add_argument(
        "--pace",
        type=_not_negative,
        default=1.0,
        help="scale the delays between events (0: no delays; default 1)",
    )
    demo.add_argument(
        "--keep", action="store_true", help="keep the demo stream in the backend afterwards"
    )

    tail = commands.add_parser("tail", help="print a stream's events as they arrive (Ctrl-C ends)")
    tail.add_argument("stream", metavar="STREAM", help="stream id, e.g. session/<session id>")
    tail.add_argument("--url", default=None, help=url_help)
    where = tail.add_mutually_exclusive_group()
    where.add_argument(
        "--from",
        dest="start",
        choices=["oldest", "newest"],
        default="newest",
        help="start with the oldest entry still in the stream, or only new ones (default)",
    )
    where.add_argument("--after", default=None, metavar="ID", help="start after this entry id")
    tail.add_argument("--limit", type=_count, default=None, help="stop after N events")
    tail.add_argument(
        "--until", default=None, metavar="TYPE", help="stop after an event of this type"
    )
    tail.add_argument(
        "--group",
        default=None,
        metavar="NAME",
        help="read as a consumer of this group, acknowledging what is printed",
    )
    tail.add_argument("--json", action="store_true", help="print one JSON document per entry")
    add_ops_commands(commands, url_help)

    serve = commands.add_parser(
        "serve", help="serve streams to browsers over SSE, with a live viewer (needs 'web' extra)"
    )
    serve.add_argument("--url", default=None, help=url_help)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    serve.add_argument(
        "--token",
        default=None,
        help=f"require this token (?token= or Authorization: Bearer); default ${TOKEN_ENV}, "
        "which keeps it out of the process list; needed on a non-loopback --host",
    )
    serve.add_argument(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let pages from this origin read the streams (repeatable)",
    )
    serve.add_argument(
        "--heartbeat", type=_positive, default=None, help="seconds between heartbeat comments"
    )
    serve.add_argument(
        "--demo", action="store_true", help="also publish a simulated agent run, again and again"
    )
    serve.add_argument(
        "--pace",
        type=_not_negative,
        default=DEMO_PACE,
        help=f"with --demo, scale the delays between events (default {DEMO_PACE:g})",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``streamsink`` command; return the exit status.

    A closed stdout ends any command quietly with :data:`EXIT_BROKEN_PIPE`: no message, no
    traceback, and nothing from the interpreter's last flush at exit.
    """
    try:
        try:
            status = _run(argv)
        finally:
            # Here, inside the try, also when argparse exits after --help: a pipe closed
            # meanwhile shows now, not in the interpreter's flush at exit.
            sys.stdout.flush()
    except BrokenPipeError:
        status = EXIT_BROKEN_PIPE
    if status == EXIT_BROKEN_PIPE:
        _discard_stdout()
    return status


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"streamsink {version('streamsink')}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    out = make_output(args.color)
    try:
        status = _dispatch(args, out)
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    except BaseException as exc:
        failure = _expected_failure(exc)
        if failure is None:
            raise
        message, status = failure
        out.write("")  # what is printed goes out before the error line (and a closed pipe shows)
        with contextlib.suppress(BrokenPipeError):  # nowhere left to say it
            print(f"streamsink: error: {safe_message(message)}", file=sys.stderr, flush=True)
    return EXIT_BROKEN_PIPE if out.broken else status


def _dispatch(args: argparse.Namespace, out: Output) -> int:
    if args.command == "backends":
        return cmd_backends(out)
    url = args.url or _default_url()
    if args.command == "serve":
        return anyio.run(
            lambda: run_serve(
                url,
                out,
                host=args.host,
                port=int(args.port),
                token=token_from(args.token),
                cors_origins=args.cors_origins,
                heartbeat=args.heartbeat,
                demo=args.demo,
                pace=args.pace,
            )
        )
    if args.command == "demo":
        return anyio.run(
            lambda: run_demo(url, out, time_limit=args.timeout, pace=args.pace, keep=args.keep)
        )
    if args.command in OPS_COMMANDS:
        return run_ops_command(args, url, out)
    if args.after is not None:
        start = StartPosition.after(args.after)
    else:
        start = StartPosition.oldest() if args.start == "oldest" else StartPosition.newest()
    return anyio.run(
        lambda: run_tail(
            url,
            args.stream,
            out,
            start=start,
            limit=args.limit,
            until=args.until,
            group=args.group,
            json=args.json,
        )
    )


def _discard_stdout() -> None:
    """Point stdout's file descriptor at the null device, so that what is still buffered goes
    there when the interpreter flushes stdout at exit, instead of failing on the closed pipe
    ("Exception ignored ... BrokenPipeError"); the Python docs' recipe for SIGPIPE."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured, replaced)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _expected_failure(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and status for failures the user can act on; None for bugs.

    Task groups wrap errors in exception groups: the first expected leaf is reported.
    """
    if isinstance(exc, BaseExceptionGroup):
        for leaf in exc.exceptions:
            found = _expected_failure(leaf)
            if found is not None:
                return found
        return None
    if isinstance(exc, CommandError):
        return str(exc), exc.status
    if isinstance(exc, StreamsinkError | OSError):
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text, EXIT_ERROR
    return None
