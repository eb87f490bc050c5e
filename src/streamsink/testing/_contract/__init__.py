"""The contract checks of docs/contract.md, one coroutine each, pytest-free (they raise
AssertionError), in one module per group of rules. Importing the package registers every check
in :data:`CHECKS`."""

from __future__ import annotations

from . import (  # noqa: F401  (each registers its checks)
    acking,
    draining,
    ending,
    groups,
    poison,
    publishing,
    redelivery,
    retention,
    topics,
    trimming,
)
from ._registry import CHECKS, ConformanceCheck, check

__all__ = ["CHECKS", "ConformanceCheck", "check"]
