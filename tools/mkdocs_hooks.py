"""mkdocs hooks for the docs site: docstrings are written with Sphinx roles
(:class:`~streamsink.X`, :meth:`...`) and ``::`` literal-block markers, which mkdocstrings
renders as they are; this turns them into plain code spans and a colon."""

from __future__ import annotations

import re
from typing import Any

# After Markdown, a role is its name followed by a <code> element: ":class:<code>~a.b.C</code>".
_ROLE = re.compile(r":(?:class|meth|func|attr|exc|data|mod|obj|const):<code>(~?)([^<]+)</code>")
_LITERAL_MARKER = re.compile(r"::</p>")


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    shown = target.rsplit(".", 1)[-1] if tilde else target
    return f"<code>{shown}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return _LITERAL_MARKER.sub(":</p>", _ROLE.sub(_role, html))
