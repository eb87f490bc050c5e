"""``GatewayOptions`` refuse bad values with errors naming the option, and never show the token;
``AuthRequest`` never shows a header or query value."""

from __future__ import annotations

import pytest

from streamsink import ConfigurationError
from streamsink.web import AuthRequest, GatewayOptions, SSEGateway
from streamsink_memory import MemoryBackend


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"heartbeat": 0}, r"GatewayOptions\.heartbeat=0 is invalid"),
        ({"heartbeat": float("inf")}, "heartbeat"),
        ({"retry_ms": -1}, "retry_ms"),
        ({"retry_ms": 1.5}, "retry_ms"),
        ({"end_on_run_end": "yes"}, "end_on_run_end"),
        ({"authorize": "admin"}, "authorize"),
        ({"cors_origins": ("*",)}, r"'\*' is refused"),
        ({"cors_origins": ["https://a.example"]}, "tuple"),
        ({"cors_origins": ("https://a.example/",)}, "not an origin"),
        ({"cors_origins": ("a.example",)}, "not an origin"),
        ({"max_stream_id_length": 0}, "max_stream_id_length"),
        ({"max_entry_id_length": True}, "max_entry_id_length"),
        ({"buffer": 0}, "buffer"),
        ({"shutdown_timeout": -1}, "shutdown_timeout"),
        ({"token": ""}, "token"),
        ({"token": 12345}, "token"),
    ],
)
def test_bad_values_name_the_option(options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        GatewayOptions(**options)  # type: ignore[arg-type]


def test_a_token_with_spaces_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigurationError, match="token") as caught:
        GatewayOptions(token="my secret")
    assert "my secret" not in str(caught.value)


def test_the_token_is_not_in_the_repr() -> None:
    options = GatewayOptions(token="hunter2-abc", cors_origins=("https://a.example",))
    assert "hunter2" not in repr(options)
    assert "https://a.example" in repr(options)


def test_auth_request_repr_shows_no_values() -> None:
    request = AuthRequest(
        stream_id="session/x",
        headers={"cookie": "sid=secret-cookie", "x-user": "ann"},
        query={"key": "secret-key"},
        client=("10.0.0.1", 4000),
    )
    shown = repr(request)
    assert "session/x" in shown
    assert "cookie" in shown
    assert "secret" not in shown
    assert "ann" not in shown


def test_the_gateway_refuses_options_of_another_type() -> None:
    with pytest.raises(ConfigurationError, match="GatewayOptions"):
        SSEGateway(MemoryBackend(), {"heartbeat": 1})  # type: ignore[arg-type]
