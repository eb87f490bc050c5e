"""``stream_info`` (``Capabilities.stream_info``) beyond the kit's checks: every resume state on
memory:// (whose ids the test can craft), Redis's classification without a trimmed-through id,
and the kit's checks failing on a backend that breaks them."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from streamsink.backend import Backend, ResumeState, StreamInfo
from streamsink.testing import run_spi_check, spi_checks
from streamsink_memory import MemoryBackend, MemoryBroker, MemoryOptions
from streamsink_redis._inspect import _classify
from tests.web.support import append

pytestmark = pytest.mark.anyio

STREAM = "session/i1"


def _next(entry_id: str, seq: int = 1) -> str:
    ms, _, n = entry_id.partition("-")
    return f"{ms}-{int(n) + seq}"


async def test_every_resume_state_on_memory() -> None:
    backend = MemoryBackend(MemoryBroker(), options=MemoryOptions(maxlen=3))
    ids = await append(backend, STREAM, 6)

    async def state(resume_id: str) -> ResumeState | None:
        info = await backend.stream_info(STREAM, resume_id=resume_id)
        assert info is not None
        return info.resume

    assert await state(ids[4]) is ResumeState.CONTINUES
    assert await state(ids[-1]) is ResumeState.CONTINUES
    assert await state(ids[0]) is ResumeState.TRIMMED
    assert await state(ids[2]) is ResumeState.TRIMMED  # the newest trimmed
    assert await state(_next(ids[-1], 5)) is ResumeState.AFTER_LAST
    assert await state("1-0") is ResumeState.TRIMMED  # before the trimmed-through id
    untrimmed = MemoryBackend(MemoryBroker())
    kept = await append(untrimmed, STREAM, 3)
    before = await untrimmed.stream_info(STREAM, resume_id="1-0")
    assert before is not None
    assert before.resume is ResumeState.BEFORE_FIRST
    assert kept[0] != "1-0"


async def test_not_an_entry_between_two_entries() -> None:
    broker = MemoryBroker(wall_clock=iter([1.0, 2.0]).__next__)
    backend = MemoryBackend(broker)
    ids = await append(backend, STREAM, 1) + await append(backend, STREAM, 1, first=1)
    assert ids == ["1000-0", "2000-0"]
    info = await backend.stream_info(STREAM, resume_id="1500-0")
    assert info == StreamInfo(
        stream_id=STREAM,
        length=2,
        first_id="1000-0",
        last_entry_id="2000-0",
        last_id="2000-0",
        entries_added=2,
        trimmed_through=None,
        resume=ResumeState.NOT_AN_ENTRY,
    )
    assert info.removed == 0
    assert ResumeState.NOT_AN_ENTRY.epoch
    assert not ResumeState.TRIMMED.epoch


@pytest.mark.parametrize(
    ("resume", "kwargs", "expected"),
    [
        ((5, 0), {"first": "3-0", "last": "5-0", "held": True}, ResumeState.CONTINUES),
        ((4, 0), {"first": "3-0", "last": "5-0", "held": True}, ResumeState.CONTINUES),
        ((4, 0), {"first": "3-0", "last": "5-0", "held": False}, ResumeState.NOT_AN_ENTRY),
        ((6, 0), {"first": "3-0", "last": "5-0", "held": False}, ResumeState.AFTER_LAST),
        ((2, 0), {"first": "3-0", "last": "5-0", "removed": 0}, ResumeState.BEFORE_FIRST),
        ((2, 0), {"first": "3-0", "last": "5-0", "removed": 7}, ResumeState.TRIMMED),
        ((2, 0), {"first": "3-0", "last": "5-0", "removed": None}, ResumeState.TRIMMED),
        ((2, 0), {"first": None, "last": "5-0", "removed": 3}, ResumeState.TRIMMED),
        ((2, 0), {"first": "3-0", "last": "5-0", "deleted": "2-5"}, ResumeState.TRIMMED),
        ((1, 0), {"first": None, "last": None}, ResumeState.AFTER_LAST),
    ],
)
def test_redis_classification(
    resume: tuple[int, int], kwargs: dict[str, Any], expected: ResumeState
) -> None:
    given: dict[str, Any] = {"held": False, "removed": 0, "deleted": None, **kwargs}
    assert _classify(resume, **given) is expected


class _AlwaysContinues(MemoryBackend):
    """Breaks the rules: every resume id continues, even of a destroyed stream."""

    async def stream_info(self, stream_id: str, *, resume_id: str | None = None) -> Any:
        info = await super().stream_info(stream_id, resume_id=resume_id)
        if info is None or resume_id is None:
            return info
        return attrs.evolve(info, resume=ResumeState.CONTINUES)


@pytest.mark.parametrize("check", [c for c in spi_checks() if "stream_info" in c.calls], ids=str)
async def test_the_kit_checks_fail_on_a_backend_that_breaks_them(check: Any) -> None:
    broker = MemoryBroker()

    async def factory(*, maxlen: int | None = None) -> Backend:
        return _AlwaysContinues(broker, options=MemoryOptions(maxlen=maxlen or 0))

    with pytest.raises(AssertionError):
        await run_spi_check(check, factory, MemoryBackend().capabilities)
