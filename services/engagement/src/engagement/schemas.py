"""Request bodies of the engagement API (msgspec Structs: a body that does not fit is a 422 naming the field)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class ChannelIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["instagram", "telegram", "vk", "email", "webform"]
    name: str
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    deal_id: str | None = None
    sales: bool = False  # issue 15: one of the agency's own sales accounts (its conversations become leads)


class ChannelPatchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    sales: bool | None = None
    active: bool | None = None


class ReplyFileIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    data: bytes               # base64 in JSON
    content_type: str = ""


class ReplyIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str = ""            # may be empty when files go
    template_id: str | None = None
    files: list[ReplyFileIn] = []


class AssignIn(msgspec.Struct, forbid_unknown_fields=True):
    agent: str | None


class StatusIn(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["open", "waiting_client", "resolved"]


class TagsIn(msgspec.Struct, forbid_unknown_fields=True):
    add: list[str] = msgspec.field(default_factory=list)
    remove: list[str] = msgspec.field(default_factory=list)


class StaffAccountsIn(msgspec.Struct, forbid_unknown_fields=True):
    accounts: list[str]


class AgentIn(msgspec.Struct, forbid_unknown_fields=True):
    on_shift: bool | None = None
    cap: int | None = None
    clear_cap: bool = False
    team: str | None = None        # "" takes the agent out of any team


class TagRuleIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["keyword", "channel", "account", "campaign"]
    value: str
    tag: str


class AskClientIn(msgspec.Struct, forbid_unknown_fields=True):
    question: str


# ---------------------------------------------------------------- monitoring (mentions)

class SourceIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    url: str
    deal_id: str | None = None
    interval_minutes: int = 15


class KeywordRuleIn(msgspec.Struct, forbid_unknown_fields=True):
    keywords: list[str]
    exclusions: list[str] = msgspec.field(default_factory=list)
    deal_id: str | None = None


class MentionIn(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    text: str
    source_name: str
    author: str = ""
    title: str = ""
    deal_id: str | None = None


class DismissIn(msgspec.Struct, forbid_unknown_fields=True):
    """`reason` is checked by the service (a missing one is a 422 naming `reason`, like a wrong one)."""

    reason: str | None = None
    note: str = ""
