"""docs/contract.md lists every conformance check under the rule it checks, with the
capabilities it requires, and nothing else: the contract users read is the one the suite runs."""

from __future__ import annotations

import re
from pathlib import Path

from streamsink.testing import conformance_checks

CONTRACT = Path(__file__).resolve().parents[1] / "docs" / "contract.md"
_RULE = re.compile(r"^### (\d+)\. ")
_CHECK = re.compile(r"^- `(\w+)`(?: \(([\w, ]+)\))?$")


def _documented() -> set[tuple[str, str, tuple[str, ...]]]:
    found: set[tuple[str, str, tuple[str, ...]]] = set()
    rule = None
    for line in CONTRACT.read_text().splitlines():
        if heading := _RULE.match(line):
            rule = heading[1]
        elif (item := _CHECK.match(line)) and rule is not None:
            requires = tuple(flag.strip() for flag in (item[2] or "").split(",") if flag.strip())
            found.add((rule, item[1], requires))
    return found


def test_every_check_is_listed_under_its_rule() -> None:
    expected = {(check.rule, check.name, check.requires) for check in conformance_checks()}
    documented = _documented()
    assert sorted(expected - documented) == [], "checks missing from docs/contract.md"
    assert sorted(documented - expected) == [], "docs/contract.md lists checks that do not exist"


def test_rules_are_numbered_in_order_and_each_has_a_check() -> None:
    numbers = [int(m[1]) for line in CONTRACT.read_text().splitlines() if (m := _RULE.match(line))]
    assert numbers == list(range(1, len(numbers) + 1))
    assert {int(check.rule) for check in conformance_checks()} == set(numbers)
