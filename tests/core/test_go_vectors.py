"""The Go vectors in ``tests/data`` are what Go writes and decodes: regenerated with the Go
toolchain (``tests/data/go/*.go``, standard library only) and compared with the committed files,
so a vector cannot be a guess at Go's behaviour. Without ``go`` on PATH this skips, except under
``CI=true`` (``.ci/run`` installs Debian's ``golang-go``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streamsink import ConfigurationError
from streamsink._topics import topic_filter

DATA = Path(__file__).resolve().parents[1] / "data"
PROGRAMS = {
    "produce_envelopes.go": "go-produced-envelopes.json",
    "decode_envelopes.go": "go-decoded-envelopes.json",
    "topic_patterns.go": "go-topic-patterns.json",
}


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        reason = "the Go toolchain is not installed (apt-get install golang-go)"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{reason}; CI=true: the Go vectors must be checked against Go")
        pytest.skip(reason)
    return go


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_committed_vectors_are_what_go_produces(program: str, tmp_path: Path) -> None:
    """Running the generator gives the committed file byte for byte."""
    go = _go()
    workdir = tmp_path / "go"
    workdir.mkdir()
    shutil.copy(DATA / "go" / program, workdir / program)
    env = {**os.environ, "GO111MODULE": "on", "GOTOOLCHAIN": "local"}
    env.setdefault("GOCACHE", str(tmp_path / "gocache"))
    result = subprocess.run(
        [go, "run", program],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    produced = (tmp_path / PROGRAMS[program]).read_bytes()
    assert produced == (DATA / PROGRAMS[program]).read_bytes(), (
        f"tests/data/{PROGRAMS[program]} is not what {program} writes: regenerate it"
    )


# -- topic patterns: refused where Go refuses them, matching what Go matches ---------------------

_PATTERNS = json.loads((DATA / "go-topic-patterns.json").read_text())

# What Go's regexp compiles but streamsink refuses, each with the reason its error gives: Python's
# re cannot match Unicode classes or an ungreedy mode, takes flags only at the start, and reads
# {,n} as a repeat where RE2 reads text (so it is refused rather than silently matched otherwise).
_REFUSED_THOUGH_GO_COMPILES = {
    r"\pL": "Unicode class",
    r"\p{Han}": "Unicode class",
    r"\PL": "Unicode class",
    "(?U)a+": "ungreedy",
    "a{,2}": "is a repeat to Python but literal text to RE2",
    "x(?i)ops": "only at the start of the pattern",
}
# go1.19 refuses (?<name>...), which Go 1.22 added as a synonym of (?P<name>...).
_ACCEPTED_THOUGH_GO119_REFUSES = {"(?<n>a)"}
# Python's (?i) folds the dotted and dotless i with i and I; RE2 does not.
_FOLDS_DIFFER = {"\u0130", "\u0131"}


@pytest.mark.parametrize("case", _PATTERNS["results"], ids=lambda case: repr(case["pattern"]))
def test_topic_patterns_select_what_go_selects(case: dict[str, Any]) -> None:
    """A topic pattern is refused where Go's regexp refuses it (with the listed exceptions, each
    refused with its reason) and an accepted one matches exactly the topics Go matches."""
    pattern = case["pattern"]
    try:
        accepts = topic_filter(None, pattern)
    except ConfigurationError as exc:
        refused: str | None = str(exc)
        assert refused.startswith("topic pattern must be a valid regex: "), refused
    else:
        refused = None
    if "go_error" in case:
        assert refused is not None or pattern in _ACCEPTED_THOUGH_GO119_REFUSES, (
            f"Go refuses {pattern!r} ({case['go_error']}), streamsink accepts it"
        )
        return
    if refused is not None:
        assert pattern in _REFUSED_THOUGH_GO_COMPILES, f"Go compiles {pattern!r}: {refused}"
        assert _REFUSED_THOUGH_GO_COMPILES[pattern] in refused
        return
    for topic, go_matches in zip(_PATTERNS["topics"], case["matches"], strict=True):
        ours = True if accepts is None else accepts(topic or None)  # "" is no topic on the wire
        if ours != go_matches and topic in _FOLDS_DIFFER and "(?i)" in pattern:
            continue
        assert ours == go_matches, f"{pattern!r} on {topic!r}: Go {go_matches}, streamsink {ours}"
