"""The two places where a URL from outside becomes something the browser follows (issue 8 §3, §5).

- `safe_next(value)`: where to go after sign-in. Only a path on this origin is accepted; anything a
  browser could read as another host (`//evil`, `/\\evil`, `/\\t/evil`, `https:…`) becomes `/`.
- `link(value)`: the one way a template renders a URL that comes from data (Instagram links, lead and
  client URLs, permalinks): an `<a>` only for `http(s)` URLs with a host, plain escaped text otherwise.
"""

from __future__ import annotations

import string
import unicodedata
from urllib.parse import quote, unquote, urlsplit

from markupsafe import Markup, escape

MAX_NEXT_LENGTH = 2000
# Printable ASCII stays as it is (percent escapes included); anything else is percent-encoded, so the
# Location / HX-Redirect header stays ASCII.
_NEXT_SAFE_CHARS = string.ascii_letters + string.digits + string.punctuation


def _suspicious(text: str) -> bool:
    """Characters a URL parser strips or reads as a separator: controls, whitespace, backslashes."""
    for ch in text:
        if ch == "\\" or ch.isspace():
            return True
        if unicodedata.category(ch)[0] in "CZ":   # control, format, unassigned, separators
            return True
    return False


def _is_local_path(text: str) -> bool:
    if not text.startswith("/") or text.startswith("//"):
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc


def safe_next(value: object) -> str:
    """A path on this origin to return to after sign-in; anything else becomes `/`."""
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT_LENGTH:
        return "/"
    # Checked as sent and once percent-decoded, so an encoded `//`, backslash or tab gains nothing.
    decoded = unquote(value)
    for text in (value, decoded):
        if _suspicious(text) or not _is_local_path(text):
            return "/"
    return quote(value, safe=_NEXT_SAFE_CHARS)


def http_url(value: object) -> str | None:
    """`value` if it is an absolute http(s) URL with a host and nothing a parser would strip, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or _suspicious(text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return text


def link(value: object, text: object | None = None) -> Markup:
    """`{{ url|link }}`: an external link for an http(s) URL; the value as escaped text otherwise.

    External links open in a new tab without the opener or the referrer. An empty value renders as "—".
    """
    if value is None or value == "":
        return Markup("—")
    shown = escape(str(value) if text is None else str(text))
    url = http_url(value)
    if url is None:
        return Markup('<span class="unlinked">{}</span>').format(shown)
    return Markup('<a href="{}" rel="noopener noreferrer nofollow" target="_blank">{}</a>').format(url, shown)
