"""One adapter per channel: normalise a verified inbound delivery into `Inbound` items, and send a reply through
the channel's real API, raising `Retry` (rate limits, flood control, transient errors) or `Permanent`
(the channel's reason, shown to the agent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class InboundFile:
    """A file a customer's message carries: where to fetch it (a Telegram `file_id`, or the http(s) URL the
    platform gave) or, for an e-mail part, its bytes already. `content_type` "" means the platform did not say
    (the download's own, else a guess from the name); `size` is the platform's figure, if it gave one."""

    kind: str            # photo | document | video | voice | audio | video_note | animation | sticker | image | file
    name: str
    content_type: str = ""
    size: int | None = None
    file_id: str | None = None
    url: str | None = None
    data: bytes | None = None


@dataclass
class Inbound:
    thread_kind: str
    thread_key: str
    external_id: str
    text: str
    at: datetime
    author: str
    customer_name: str
    customer_handle: str
    reply_target: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None  # the source campaign (EN-7): ad referral, /start parameter, VK ref
    attachments: list[InboundFile] = field(default_factory=list)  # beside the text, fetched later (files.py)


@dataclass
class OutgoingFile:
    """A file of an agent's reply: `kind` image | video | file (files.reply_file_kind)."""

    kind: str
    name: str
    content_type: str
    data: bytes


@dataclass
class Outgoing:
    message_id: str
    text: str
    target: dict[str, Any]  # the conversation's reply target
    thread_kind: str
    files: list[OutgoingFile] = field(default_factory=list)


# A secret that an API wants in the URL path (Telegram's bot token) travels to the transport in this header and
# replaces the placeholder only there, so the URL that httpx logs and traces never holds it.
PATH_SECRET_HEADER = "x-zabota-path-secret"
PATH_SECRET_PLACEHOLDER = "__secret__"


class Retry(Exception):
    """Try again later (`after` seconds if the channel said so); `retarget` changes the reply target first
    (a Telegram group upgraded to a supergroup)."""

    def __init__(self, reason: str, after: float | None = None, retarget: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after
        self.retarget = retarget


class Permanent(Exception):
    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


def from_epoch(value: Any, millis: bool = False) -> datetime | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if millis or number > 10_000_000_000:  # Meta's messaging timestamps are epoch milliseconds
        number /= 1000
    return datetime.fromtimestamp(number, UTC)


def json_or_none(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
