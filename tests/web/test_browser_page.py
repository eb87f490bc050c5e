"""The viewer page's HTML without a browser: what it embeds is escaped, its Content-Security-Policy
matches its inline script and style, and its assets ship in the wheel."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest

from streamsink import EventType
from streamsink.web._viewer import viewer_html

HOSTILE = "</script><script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;"
ROOT = Path(__file__).resolve().parents[2]


def _config(page: str) -> dict[str, object]:
    found = re.search(
        r'<script type="application/json" id="streamsink-config">(.*?)</script>', page
    )
    assert found is not None
    config: dict[str, object] = orjson.loads(found.group(1))
    return config


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_a_hostile_stream_id_stays_data() -> None:
    page = viewer_html(HOSTILE, base_path="")
    # Four script elements would mean the id broke out of the JSON; two are the page's own.
    assert page.count("<script") == 2
    assert "<img" not in page
    assert _config(page)["stream"] == HOSTILE
    assert html.escape(HOSTILE, quote=True) in page  # the header and the title show it escaped


def test_the_policy_allows_exactly_the_inline_script_and_style() -> None:
    page = viewer_html("session/a", base_path="")
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert policy is not None
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    directives = dict(d.strip().split(" ", 1) for d in policy.group(1).split(";"))
    assert directives["script-src"] == f"'sha256-{_sha256(script)}'"
    assert directives["style-src"] == f"'sha256-{_sha256(style)}'"
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"


def test_config_carries_the_mount_point_and_every_event_type() -> None:
    page = viewer_html("session/a", base_path="/gw/")
    config = _config(page)
    assert config["base_path"] == "/gw"
    assert config["types"] == [t.value for t in EventType]
    assert '<a href="/gw/">streamsink</a>' in page


def test_without_a_stream_the_page_is_the_picker() -> None:
    page = viewer_html(None, base_path="")
    assert _config(page)["stream"] is None
    assert 'id="pick"' in page
    assert 'id="status"' not in page


@pytest.mark.slow
def test_the_page_assets_ship_in_the_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "streamsink/web/_viewer.py",
        "streamsink/web/_static/viewer.js",
        "streamsink/web/_static/viewer.css",
    } <= names
