"""streamsink backend for NATS JetStream: ``nats://host:4222`` and ``nats+tls://host:4222``.

Installed, it registers its schemes through the ``streamsink`` entry-point group; open it with
``streamsink.connect("nats://127.0.0.1:4222")`` or :meth:`NatsBackend.connect`.
"""

from __future__ import annotations

from ._backend import CAPABILITIES, NatsBackend
from ._group import NatsGroupConsumer
from ._names import decode as decode_name
from ._names import encode as encode_name
from ._options import NatsOptions
from ._reader import NatsReader

__all__ = [
    "CAPABILITIES",
    "NatsBackend",
    "NatsGroupConsumer",
    "NatsOptions",
    "NatsReader",
    "decode_name",
    "encode_name",
]
