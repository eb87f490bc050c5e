"""The Go vectors in ``tests/data`` are what Go writes and decodes: regenerated with the Go
toolchain (``tests/data/go/*.go``, standard library only) and compared with the committed files,
so a vector cannot be a guess at Go's behaviour. Without ``go`` on PATH this skips, except under
``CI=true`` (``.ci/run`` installs Debian's ``golang-go``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
PROGRAMS = {
    "produce_envelopes.go": "go-produced-envelopes.json",
    "decode_envelopes.go": "go-decoded-envelopes.json",
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
