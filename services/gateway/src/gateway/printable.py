"""The printable document (CL-12 invoice / payment details) under the Content-Security-Policy (issue 8 §7).

The clients service renders the document once and keeps its HTML (a document does not change after it is
issued); that HTML has its styles in a `<style>` element and an `onclick="window.print()"` print button.
The gateway serves it with a policy of its own, stricter than the pages': no script but our static
app.js (which handles `data-print` buttons), the document's own `<style>` blocks allowed by their SHA-256
hash only, nothing else loaded, no framing, no form.
"""

from __future__ import annotations

import base64
import hashlib
import re

_STYLE = re.compile(r"<style(?:\s[^>]*)?>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)
_PRINT_HANDLER = re.compile(r"""\sonclick\s*=\s*(["'])\s*(?:window\.)?print\(\)\s*;?\s*\1""", re.IGNORECASE)
APP_JS = '<script src="/static/js/app.js" defer></script>'


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def printable_document(html: str) -> tuple[str, str]:
    """(the HTML to send, its Content-Security-Policy)."""
    style_hashes = sorted({_hash(body) for body in _STYLE.findall(html)})
    html = _PRINT_HANDLER.sub(" data-print", html)
    match = re.search(r"</head\s*>", html, re.IGNORECASE)
    html = html[:match.start()] + APP_JS + html[match.start():] if match else APP_JS + html
    policy = "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src " + " ".join(["'self'", *style_hashes]),
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ])
    return html, policy
