"""Benchmarks: streamsink against raw clients and FastStream, interleaved in one process run.

Run ``make bench`` (full) or ``python -m benchmarks --quick`` (about a minute). Results go to
``docs/benchmarks.md`` and ``docs/benchmarks.png``; ``--help`` lists the other options.
"""
