"""The event catalogue: versioned msgspec Structs, the integration contract between services and partners.

Subjects are `<service>.<aggregate>.<event>.v<N>`. An event evolves only by adding fields with
defaults; a breaking change is a new class with subject `...v<N+1>`. Each service's events live in a
module of this package (`shared.events.clients`, ...) and register themselves with `@event`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar, TypeVar

import msgspec

__all__ = ["Event", "EventError", "decode", "encode", "event", "new_event_id", "registry"]


def new_event_id() -> str:
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


class Event(msgspec.Struct, kw_only=True, frozen=True):
    """The envelope every event carries. `occurred_at` is when the fact happened (it may be backdated)."""

    subject: ClassVar[str]
    # Partners may subscribe to it (the NATS account PARTNERS imports it; the catalogue says so).
    public: ClassVar[bool] = True
    event_id: str = msgspec.field(default_factory=new_event_id)
    occurred_at: datetime = msgspec.field(default_factory=_now)
    deal_id: str | None = None
    client_id: str | None = None


class EventError(ValueError):
    """A message that cannot be decoded into a known event."""


registry: dict[str, type[Event]] = {}
E = TypeVar("E", bound=type[Event])


def event(subject: str, *, public: bool | None = None):
    """Register an Event class under its subject.

    `public`: whether partners may subscribe to it (issue 14); by default every domain event is public
    and the platform's own `system.*` events are internal. Dead letters are never public.
    """

    parts = subject.split(".")
    if len(parts) != 4 or not parts[3].startswith("v") or not parts[3][1:].isdigit():
        raise ValueError(f"subject {subject!r} is not <service>.<aggregate>.<event>.v<N>")

    def register(cls: E) -> E:
        if subject in registry:
            raise ValueError(f"subject {subject} registered twice")
        cls.subject = subject
        cls.public = not subject.startswith("system.") if public is None else public
        registry[subject] = cls
        return cls

    return register


_encoder = msgspec.json.Encoder()
_decoders: dict[str, msgspec.json.Decoder] = {}


def encode(evt: Event) -> bytes:
    return _encoder.encode(evt)


def decode(subject: str, payload: bytes) -> Event:
    load_catalogue()
    cls = registry.get(subject)
    if cls is None:
        raise EventError(f"unknown subject {subject}")
    decoder = _decoders.get(subject)
    if decoder is None:
        decoder = _decoders[subject] = msgspec.json.Decoder(cls)
    try:
        return decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise EventError(f"{subject}: {exc}") from exc


def load_catalogue() -> dict[str, type[Event]]:
    """Import every service's event module so the registry is complete."""
    from shared.events import clients, content, engagement, payroll, system  # noqa: F401

    return registry
