"""The viewer page the gateway serves at ``/`` and ``/view/{stream id}``: one self-contained HTML
document (its CSS and script inline, nothing fetched but the stream itself) that follows a stream
over EventSource and shows its runs live.

The page treats every event as hostile input: event text reaches the DOM through ``textContent``
only, and a Content-Security-Policy allows no script or style but the page's own (by hash), and
no connection but to its own origin. The stream id is the only value placed in the HTML, escaped
for the context it lands in.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
from importlib import resources

import orjson

from .._events import EventType

__all__ = ["viewer_html"]

# The JSON config goes in a <script type="application/json"> read with textContent: escaping
# these keeps a stream id such as "</script><script>..." from ending the element.
_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


# An inline icon: no request for /favicon.ico (which the gateway answers 404).
_ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%232f6fde'/%3E"
    "%3Cpath d='M3 11h3l2-6 2 6h3' stroke='white' stroke-width='1.6' fill='none'/%3E%3C/svg%3E"
)


@functools.cache
def _asset(name: str) -> str:
    return (resources.files(__package__) / "_static" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _config(stream_id: str | None, base_path: str) -> str:
    config = {
        "stream": stream_id,
        "base_path": base_path,
        # EventSource has no catch-all listener: the page listens for each type by name.
        "types": [member.value for member in EventType],
    }
    return orjson.dumps(config).decode("utf-8").translate(_JSON_ESCAPES)


def _body(stream_id: str | None, home: str) -> str:
    if stream_id is None:
        return f"""<header><h1><a href="{home}">streamsink</a></h1></header>
<main>
<form class="pick" id="pick" autocomplete="off">
<h2>Watch a stream</h2>
<p>Type a stream id, as the agent runtime publishes it: <code>session/&lt;session id&gt;</code>.</p>
<div class="row"><input id="pick-stream" name="stream" placeholder="session/…" required
aria-label="stream id"><button type="submit">Watch</button></div>
</form>
</main>"""
    shown = html.escape(stream_id, quote=True)
    return f"""<header>
<h1><a href="{home}">streamsink</a></h1>
<span id="stream-name" title="stream id">{shown}</span>
<span class="spacer"></span>
<span class="counter" id="count"></span>
<span id="status" class="connecting" role="status" aria-live="polite">connecting…</span>
<button id="follow" type="button" hidden>Follow the next run</button>
</header>
<main>
<div id="notices" aria-live="polite"></div>
<p class="empty" id="waiting">Waiting for events…</p>
<div id="runs"></div>
<details class="log"><summary>Event log</summary>
<table id="log"><thead><tr><th>id</th><th>time (UTC)</th><th>type</th><th>run</th></tr></thead>
<tbody id="log-body"></tbody></table>
</details>
</main>"""


def viewer_html(stream_id: str | None, *, base_path: str) -> str:
    """The viewer page for ``stream_id`` (None: a form asking for one), as served under
    ``base_path`` (the gateway's mount point, ``""`` at the root).

    The page subscribes to ``{base_path}/streams/{stream id}``, resumes with ``?last_event_id=``
    when it re-creates its EventSource, and passes on a ``?token=`` it was opened with. It keeps
    ``window.streamsinkViewer.state.received`` (every event id in arrival order) and offers
    ``window.streamsinkViewer.reopen()``.
    """
    base = base_path.rstrip("/")
    style, script = _asset("viewer.css"), _asset("viewer.js")
    policy = (
        "default-src 'none'; "
        f"style-src {_sha256(style)}; script-src {_sha256(script)}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'self'"
    )
    title = "streamsink" if stream_id is None else f"{stream_id} · streamsink"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="{_ICON}">
<title>{html.escape(title, quote=True)}</title>
<style>{style}</style>
</head>
<body>
{_body(stream_id, html.escape(base + "/", quote=True))}
<script type="application/json" id="streamsink-config">{_config(stream_id, base)}</script>
<script>{script}</script>
</body>
</html>
"""
