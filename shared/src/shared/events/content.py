"""Events published by the `content` service."""

from __future__ import annotations

from datetime import datetime

from shared.events import Event, event


@event("content.post.published.v1")
class PostPublished(Event, frozen=True, kw_only=True):
    """A post was published on a client's account (CO-5). The first one meets CL-9 in the clients service.
    Minimal shape added by the clients service; the content service may add fields with defaults."""

    post_id: str
    published_at: datetime
    kind: str = "feed"  # feed, story, reel, … : any string (a new kind must not dead-letter the event)
