"""Exit statuses of the ``streamsink`` command, and the error that carries one."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but did not get what it waited for (demo timeout)
EXIT_ERROR = 2  # bad usage, bad URL or options, unknown scheme, unreachable backend
EXIT_INTERRUPTED = 130
# 128 + SIGPIPE (13): what a shell reports for `yes | head -1`, so pipelines and `set -o pipefail`
# see the same status as for any Unix tool whose reader went away.
EXIT_BROKEN_PIPE = 141


class CommandError(Exception):
    """A failure the command reports as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.status = status
