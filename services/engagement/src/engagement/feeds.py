"""Monitoring feeds as plain functions (issue 11, "Monitoring mentions"): fetch an RSS/Atom feed honouring its
ETag / Last-Modified, parse it with `feedparser`, match entries against a client account's keyword rules.

Matching: case-insensitive (`casefold`), whole words only — a keyword must not sit inside a longer word, in any
script (`\\w` is Unicode: «Заботы» does not match «забот», «кофе» does not match «кофейня»); a keyword of several
words matches across any run of white space. An entry matches a rule when one of its keywords is present and none
of its exclusions is; a mention lists every keyword it matched.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx

MAX_FEED_BYTES = 5 * 1024 * 1024
USER_AGENT = "Zabota-monitoring/1.0 (+https://github.com/zabota)"
MIN_INTERVAL, MAX_INTERVAL = 60, 24 * 3600
MAX_BACKOFF = 6 * 3600


# ------------------------------------------------------------------ keywords

def clean_terms(terms: list[str]) -> list[str]:
    """Keywords as kept: trimmed, inner white space collapsed, empty and repeated ones dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for term in terms:
        term = " ".join(str(term).replace("\x00", "").split())[:200]
        if term and term.casefold() not in seen:
            seen.add(term.casefold())
            out.append(term)
    return out


def _pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in term.casefold().split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)")


def found(term: str, text: str) -> bool:
    return bool(_pattern(term).search(text.casefold()))


def matches(rules: list[tuple[list[str], list[str]]], text: str) -> list[str]:
    """The keywords of `rules` [(keywords, exclusions)] that `text` mentions; [] if none, or if every rule that
    matched is vetoed by one of its exclusions."""
    hits: list[str] = []
    for keywords, exclusions in rules:
        rule_hits = [k for k in keywords if found(k, text)]
        if rule_hits and not any(found(x, text) for x in exclusions):
            hits.extend(k for k in rule_hits if k not in hits)
    return hits


# ------------------------------------------------------------------ fetching and parsing

@dataclass
class Entry:
    key: str            # the entry's id, else its link, else a digest of its title and text
    url: str
    title: str
    text: str
    author: str
    published_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class FetchResult:
    not_modified: bool = False
    entries: list[Entry] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None


class FeedError(Exception):
    """The feed could not be read: the reason is shown on the source."""


TAG = re.compile(r"<[^>]+>")


def plain(value: str) -> str:
    return " ".join(html.unescape(TAG.sub(" ", value or "")).replace("\x00", "").split())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "tm_year"):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tm_year"):
        return datetime.fromtimestamp(calendar.timegm(value), UTC).isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        parsed = entry.get(key)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def parse(body: bytes, url: str = "", content_type: str | None = None) -> list[Entry]:
    """The entries of an RSS or Atom document; FeedError when it is neither (malformed XML, an HTML page)."""
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    result = feedparser.parse(body, response_headers=headers, sanitize_html=True)
    # feedparser reads a slightly broken document leniently; it is an error only when nothing usable came out.
    usable = [e for e in result.entries if e.get("id") or e.get("link") or e.get("title") or e.get("summary")]
    if not usable and (result.bozo or not result.get("version")):
        reason = result.get("bozo_exception")
        raise FeedError(f"not a valid RSS/Atom feed: {reason}" if reason else "not an RSS/Atom feed")
    entries = []
    for e in usable:
        link = str(e.get("link") or "").replace("\x00", "")
        title = plain(str(e.get("title") or ""))
        content = e.get("content") or []
        text = plain(str(e.get("summary") or (content[0].get("value") if content else "") or ""))
        key = str(e.get("id") or link or "").replace("\x00", "") or hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()
        entries.append(Entry(key=key[:500], url=link[:2000], title=title[:1000], text=text[:20000],
                             author=plain(str(e.get("author") or ""))[:300], published_at=_when(e),
                             raw=_jsonable(dict(e))))
    return entries


async def fetch(client: httpx.AsyncClient, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
    """GET the feed with `If-None-Match` / `If-Modified-Since`; 304 is "nothing new". FeedError on a network
    failure, an HTTP error status, a body too large or a document that is not a feed."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise FeedError(f"cannot reach the feed: {type(exc).__name__} {exc}".strip()) from exc
    if response.status_code == 304:
        return FetchResult(not_modified=True, etag=etag, last_modified=last_modified)
    if response.status_code >= 400:
        raise FeedError(f"the feed answered HTTP {response.status_code}")
    body = response.content
    if len(body) > MAX_FEED_BYTES:
        raise FeedError(f"the feed is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB")
    entries = parse(body, str(response.url), response.headers.get("content-type"))
    return FetchResult(entries=entries, etag=response.headers.get("etag"),
                       last_modified=response.headers.get("last-modified"))


def retry_seconds(failures: int, interval: int) -> int:
    """When a feed that failed `failures` times in a row is tried again: its interval, doubled per further
    failure, at most 6 hours (or its interval, if longer)."""
    return min(interval * 2 ** max(0, min(failures, 20) - 1), max(interval, MAX_BACKOFF))


def valid_url(url: str) -> bool:
    return bool(re.match(r"^https?://[^\s/$.?#][^\s]*$", url, re.IGNORECASE))
