r"""The ``streamsink`` command: list backends, play a demo run, tail a stream, serve streams to
browsers.

::

    streamsink backends                      # installed backends, one per line
    streamsink demo [--url URL]              # a simulated agent run, published and read back live
    streamsink tail STREAM [--url URL] [--from oldest|newest | --after ID] [--until TYPE]
                   [--group NAME] [--json]
    streamsink serve [--url URL] [--host H --port P --token T] [--demo]   # SSE gateway + viewer
    streamsink streams | groups STREAM | pending STREAM GROUP | consumers STREAM GROUP
                   [--reap-idle S] | dlq [show|replay|purge] STREAM | trim STREAM --maxlen N
                   | send STREAM TYPE --payload JSON          # operators: docs/operations.md

The URL defaults to ``$STREAMSINK_URL``, else ``memory://``. Expected failures (a bad URL, an
unknown scheme, an unreachable backend, an unknown stream) print one line to stderr and exit with
status 2. Output is plain text; with the ``cli`` extra (``rich``) installed it is coloured (and
operator results are tables) on a terminal; ``--json`` prints JSON lines instead.

What it prints is safe to print: the user part of a URL (user name, password, token) is shown as
``***``, and control and format characters that come from entries (escape sequences, carriage
returns, bidi overrides) are shown escaped (``\x1b``, ``\r``, ``\u202e``), so an entry can
neither drive the terminal nor break the one-line-per-event layout. A closed stdout
(``streamsink demo | head -1``) ends a command quietly with status 141, as a shell reports for a
writer stopped by SIGPIPE; the demo first finishes publishing its run.
"""

from __future__ import annotations

from ._demo import demo_events, run_demo
from ._exits import CommandError
from ._main import main
from ._output import PlainOutput, make_output
from ._summary import summarize
from ._tail import run_tail

__all__ = [
    "CommandError",
    "PlainOutput",
    "demo_events",
    "main",
    "make_output",
    "run_demo",
    "run_tail",
    "summarize",
]
