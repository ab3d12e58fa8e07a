"""Request bodies of the content API (msgspec Structs) and the field-error collector.

Type errors are caught by msgspec (422 naming the field); presence and domain rules are checked by the
services, which list every bad field at once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec
from shared.errors import DomainError

from shared import messages as M


class ItemIn(msgspec.Struct, kw_only=True):
    date: date | None = None
    kind: str | None = None
    caption: str | None = None
    scheduled_at: datetime | None = None
    media: list[str] | None = None


class ItemPatchIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    date: date | None = None
    kind: str | None = None
    caption: str | None = None
    scheduled_at: datetime | None = None
    media: list[str] | None = None


class SubmitIn(msgspec.Struct, kw_only=True):
    at: datetime | None = None  # only the lead or an integration may date a submission in the past


class CommentIn(msgspec.Struct, kw_only=True):
    text: str | None = None
    item_id: str | None = None


class DecisionIn(msgspec.Struct, kw_only=True):
    decision: str | None = None
    comments: list[CommentIn] = []


class ResolveIn(msgspec.Struct, kw_only=True):
    reply: str | None = None


class PublishedIn(msgspec.Struct, kw_only=True):
    published_at: datetime | None = None
    permalink: str | None = None


class MaterialsIn(msgspec.Struct, kw_only=True):
    at: datetime | None = None


class ClientRequestIn(msgspec.Struct, kw_only=True):
    text: str | None = None
    date: date | None = None
    media: list[str] | None = None


class RequestAnswerIn(msgspec.Struct, kw_only=True):
    decision: str | None = None
    reason: str | None = None


class SettingsIn(msgspec.Struct, kw_only=True):
    values: dict[str, Any] | None = None
    effective_from: datetime | None = None


class Errors:
    """Collects field errors; `raise_if_any` raises one 422 listing them all."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, code: str, **params: Any) -> None:
        """One field's error: a message code (shared.messages) and its parameters."""
        self.items.append(M.item(field, code, **params))

    def require(self, field: str, value: object) -> None:
        if value is None or (isinstance(value, str) and not value.strip()):
            self.add(field, M.REQUIRED)

    def aware(self, field: str, value: datetime | None) -> None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            self.add(field, M.DATETIME)

    def raise_if_any(self, message: str = "invalid request") -> None:
        if self.items:
            raise DomainError(message, errors=self.items)
