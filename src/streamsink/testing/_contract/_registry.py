"""The registry of contract checks: :class:`ConformanceCheck`, :data:`CHECKS` and the
:func:`check` decorator the rule modules register with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from ...backend import Capabilities
from .._harness import Harness

__all__ = ["CHECKS", "ConformanceCheck", "check"]


CheckFunction = Callable[[Harness], Awaitable[None]]


@attrs.frozen
class ConformanceCheck:
    """One check of the contract: ``rule`` is the number of the rule it checks in
    docs/contract.md, ``requires`` the :class:`~streamsink.backend.Capabilities` flags it needs."""

    name: str
    rule: str
    summary: str
    requires: tuple[str, ...]
    function: CheckFunction = attrs.field(repr=False)

    def missing(self, capabilities: Capabilities) -> list[str]:
        """The required capabilities the backend does not declare."""
        return [flag for flag in self.requires if not getattr(capabilities, flag)]

    def __str__(self) -> str:
        return self.name


CHECKS: list[ConformanceCheck] = []


def check(rule: str, *requires: str) -> Callable[[CheckFunction], CheckFunction]:
    def register(function: CheckFunction) -> CheckFunction:
        doc = (function.__doc__ or "").strip().splitlines()[0]
        CHECKS.append(ConformanceCheck(function.__name__, rule, doc, requires, function))
        return function

    return register
