"""Envelopes relay byte for byte: what a decoder keeps of the bytes it was given, and what an
encoder writes back from them (the codec side of DESIGN §5's "envelopes relay byte-exact")."""

from __future__ import annotations

import pytest

from streamsink import decode_envelope

HEAD = b'{"type":"tool_end","event_key":"k","run_id":"r","session_id":"s","timestamp":"2026-11-26T17:19:26Z"'


# -- server_data: the bytes of the value, as loom's rawjson.Message keeps them -------------------


@pytest.mark.parametrize(
    "server_data",
    [
        b'{"rows":[1,2.50,1e3]}',
        b'{"html":"\\u003cb\\u003e","e":"\\u00e9","slash":"\\/"}',
        b"[1.0,-0,1E+2,0.1e-1]",
        b'"text"',
        b"12345678901234567890123",
        b'{"server_data":{"server_data":1}}',
    ],
)
def test_server_data_keeps_the_bytes_it_was_received_with(server_data: bytes) -> None:
    """The number forms, escapes and nesting of ``server_data`` come back exactly as they were
    in the envelope, not as a re-serialisation of their parsed value."""
    event = decode_envelope(HEAD + b',"payload":{"a":1},"server_data":' + server_data + b"}")
    assert event.server_data == server_data


@pytest.mark.parametrize(
    ("data", "server_data"),
    [
        # not the last key, and a payload with a key of the same name before it
        (
            b'{"type":"t","payload":{"server_data":[9]},"server_data":{"a": 1.50},"run_id":"r"}',
            b'{"a": 1.50}',
        ),
        # whitespace around the key, the colon and the value
        (b'{ "type" : "t" , "server_data" :  [1 , 2.0]  \n}', b"[1 , 2.0]"),
        # an escaped key, which is the same key once unescaped
        (b'{"type":"t","server\\u005fdata":[2.0]}', b"[2.0]"),
        # twice: the last one counts, as in Go and in orjson
        (b'{"type":"t","server_data":[1.0],"server_data":[2.0]}', b"[2.0]"),
        # the last key, with a key of the same name nested in it
        (b'{"type":"t","server_data":{"x":1,"server_data":2.0}}', b'{"x":1,"server_data":2.0}'),
        # an earlier key whose name ends in server_data, escaped quote included
        (b'{"type":"t","x\\"server_data":[1.0],"server_data":[3.0]}', b"[3.0]"),
        (b'{"type":"t","server_data":[3.0],"x\\"server_data":[1.0]}', b"[3.0]"),
    ],
)
def test_server_data_is_found_wherever_it_is(data: bytes, server_data: bytes) -> None:
    """The span of ``server_data`` is found by reading the envelope's structure: keys in any
    order, whitespace, escaped keys, duplicates and look-alike keys do not mislead it."""
    assert decode_envelope(data).server_data == server_data


def test_null_server_data_is_none() -> None:
    """``"server_data":null`` is no server data, as Go's rawjson.Message reads it."""
    assert decode_envelope(HEAD + b',"server_data":null}').server_data is None
