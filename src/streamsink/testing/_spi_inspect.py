"""SPI checks of ``InspectingBackend.stream_info`` (``Capabilities.stream_info``): what a stream
holds, and what a resume id means on it, the rules an SSE gateway tells a trimmed resume from a
re-created or lost stream by."""

from __future__ import annotations

from typing import cast

from .._exceptions import ConfigurationError
from ..backend import InspectingBackend, ResumeState, StreamInfo
from ._spi import SpiHarness, raises, spi_check

__all__: list[str] = []

_SENT = 500  # with maxlen=10: far past the max length, so even approximate trimming trims
_CONTINUES = ResumeState.CONTINUES


async def _info(backend: InspectingBackend, stream: str, resume_id: str) -> StreamInfo:
    info = await backend.stream_info(stream, resume_id=resume_id)
    assert info is not None, f"stream_info({stream!r}) is None for a stream that has entries"
    return info


@spi_check("append", "stream_info", "destroy", requires=("stream_info",))
async def stream_info_describes_a_stream_and_its_resume_ids(h: SpiHarness) -> None:
    """``stream_info`` is None for a missing stream (and after ``destroy``); it gives a stream's
    length, first, newest and last ids; every id of it resumes as ``CONTINUES``; on the stream
    re-created after a destroy with fewer entries, the old last id is an epoch; a malformed resume id raises
    ``ConfigurationError``."""
    backend = cast(InspectingBackend, await h.backend())
    stream, other = h.stream(), h.stream()
    (foreign,) = await h.append(backend, other, 1)
    assert await backend.stream_info(stream) is None, "a stream never appended to has info"
    missing = await backend.stream_info(stream, resume_id=foreign)
    assert missing is None, f"a missing stream has info {missing!r} for a resume id"
    sent = await h.append(backend, stream, 3)
    info = await backend.stream_info(stream)
    assert info is not None, "stream_info is None for a stream with 3 entries"
    got = (info.stream_id, info.length, info.first_id, info.last_entry_id, info.last_id)
    assert got == (stream, 3, sent[0], sent[-1], sent[-1]), got
    assert info.entries_added in (3, None), info
    assert info.removed in (0, None), info
    assert info.trimmed_through is None, f"nothing trimmed, yet trimmed_through={info}"
    assert info.resume is None, f"resume={info.resume!r} without a resume id"
    for entry_id in sent:
        state = (await _info(backend, stream, entry_id)).resume
        assert state is _CONTINUES, f"resume after entry {entry_id}: {state!r}"
    await raises(
        ConfigurationError,
        lambda: backend.stream_info(stream, resume_id="not an id"),
        "stream_info(resume_id='not an id')",
    )
    await backend.destroy(stream)
    assert await backend.stream_info(stream) is None, "a destroyed stream still has info"
    # Fewer entries than before: the old last id is past the new stream's end, whether the
    # backend's ids start over (counters, or the same millisecond) or go on from its clock.
    again = await h.append(backend, stream, 2, first=3)
    state = (await _info(backend, stream, sent[-1])).resume
    assert state is not None and state.epoch, (
        f"after destroy and re-creation with 2 entries, resume after the old stream's last id "
        f"{sent[-1]}: {state!r}, expected an epoch"
    )
    state = (await _info(backend, stream, again[0])).resume
    assert state is _CONTINUES, f"resume after the new stream's first entry: {state!r}"


@spi_check("append", "stream_info", requires=("stream_info", "trim"))
async def stream_info_tells_trimmed_resume_ids(h: SpiHarness) -> None:
    """On a stream trimmed past an id, resuming after it is ``TRIMMED`` (not an epoch): the
    length is what is held, entries added (when known) are all ever appended, and the entries
    still held resume as ``CONTINUES``."""
    backend = cast(InspectingBackend, await h.backend(maxlen=10))
    stream = h.stream()
    sent = await h.append(backend, stream, _SENT)
    info = await _info(backend, stream, sent[0])
    assert info.resume is ResumeState.TRIMMED, (
        f"resume after the first of {_SENT} entries trimmed to about 10: {info.resume!r}"
    )
    assert 10 <= info.length < _SENT / 2, f"{info.length} entries held with maxlen=10"
    assert info.entries_added in (_SENT, None), info
    assert info.first_id == sent[_SENT - info.length], (info.first_id, info.length)
    assert (info.last_entry_id, info.last_id) == (sent[-1], sent[-1]), info
    for entry_id in (sent[_SENT - info.length], sent[-1]):
        state = (await _info(backend, stream, entry_id)).resume
        assert state is _CONTINUES, f"resume after {entry_id}, still held: {state!r}"
