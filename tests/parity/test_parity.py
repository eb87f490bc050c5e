"""Model-based parity, from the kit (``streamsink.testing.run_parity``): random operation
sequences give the same deliveries on every backend as on a reference model of a consumer
group. This is what keeps memory:// honest to Redis."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from streamsink.backend import Backend, GroupConsumer
from streamsink.testing import ParityTarget, run_parity

from .targets import FakeRedisTarget, MemoryTarget, RedisTarget


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_memory_matches_the_model(runtime: str) -> None:
    """memory:// matches the model, on both runtimes."""
    run_parity(MemoryTarget(), max_examples=150 if runtime == "asyncio" else 40, runtime=runtime)


def test_fakeredis_matches_the_model() -> None:
    """The Redis backend on fakeredis matches the model."""
    run_parity(FakeRedisTarget(), max_examples=60)


def test_redis_matches_the_model(redis_url: str) -> None:
    """The Redis backend on a real server matches the model."""
    run_parity(RedisTarget(redis_url), max_examples=40)


class _NoAck:
    """A group consumer whose ``ack`` does nothing."""

    def __init__(self, inner: GroupConsumer) -> None:
        self._inner = inner

    @property
    def consumer(self) -> str:
        return self._inner.consumer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        pass


class _IgnoresAcks(MemoryTarget):
    """memory://, with ack doing nothing: a bug the model must catch."""

    async def open(self) -> Backend:
        backend = await super().open()
        original = backend.open_group_consumer

        async def open_group_consumer(*args: Any, **kwargs: Any) -> Any:
            return _NoAck(await original(*args, **kwargs))

        backend.open_group_consumer = open_group_consumer  # type: ignore[method-assign]
        return backend


def test_the_model_catches_a_backend_that_ignores_acks() -> None:
    """The parity run fails (with hypothesis's shortest example) on a backend breaking a rule."""
    with pytest.raises(AssertionError):
        run_parity(_IgnoresAcks(), max_examples=50, derandomize=True)


def test_an_abstract_target_says_what_to_implement() -> None:
    """A target without ``open`` fails at once with NotImplementedError."""
    with pytest.raises(NotImplementedError):
        run_parity(ParityTarget(), max_examples=1)


def test_importing_the_kit_does_not_import_hypothesis() -> None:
    """hypothesis is a test dependency only: ``streamsink.testing`` imports it when the parity
    model runs, not before."""
    code = "import sys, streamsink.testing; assert 'hypothesis' not in sys.modules, 'imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
