"""The role × route × object matrix (issue 8; DESIGN 8; DOMAIN.md "Roles").

Every route of every service's OpenAPI (fetched live from `/schema/openapi.json`) is tried by every actor —
no credential, a signed webhook, each staff role of DOMAIN.md, an integration token, an integration token
claiming to be the lead — against objects owned by someone else (manager2's launched deal with its
Instagram password, its task, deadline, attachment, manager2's lead and payroll statement, its content plan
and item, its channel accounts and a conversation on an account the care agent does not serve): on the
services' own ports, and through the gateway (its `/api/…` routing, and its pages signed in as each role).

The permission of each route is written below from DOMAIN.md's role table, not read from the code: a
2xx for an actor the table does not admit, a list that shows the foreign object to an actor who may not
see it, or the foreign password in any answer but the lead's is an unauthorised success. Expected: 0.
A route missing from the table fails the completeness tests, so the matrix grows with every new route.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .figures import record
from .identity import (
    foreign_assertion_headers,
    forged_lead_headers,
    integration_headers,
    sign,
    staff_headers,
)
from .stack import (
    FOREIGN_CAPTION,
    FOREIGN_LEAD_NAME,
    FOREIGN_MANAGER,
    FOREIGN_MESSAGE,
    FOREIGN_NAME,
    FOREIGN_PASSWORD,
    IMPORT_HEADER,
    ROLE_LOGINS,
    SERVICES,
    Stack,
    csrf_of,
    payment_body,
)

# ---------------------------------------------------------------------------------------------- actors

STAFF = ("care_agent", "monitoring", "senior_agent", "growth", "ad_manager", "content_manager", "analyst", "lead")
# Least privileged first, the lead last: what an allowed actor changes cannot hide a refusal from the others.
ACTORS = ("none", "webhook", *STAFF[:-1], "forged_lead", "integration", "lead")
# Through the gateway's /api routing a caller is what its credential says; identity headers do not pass.
PROXY_ACTORS = ("none", "webhook", "forged_lead", "staff_headers_of_lead", "integration")
# Whose permissions an actor has: a forged staff claim on an integration token acts as the integration.
ACTS_AS = {"forged_lead": "integration", "staff_headers_of_lead": "integration"}

EVERYONE = frozenset(ACTORS) | frozenset(PROXY_ACTORS)
ALL_STAFF = frozenset(STAFF)
READ_ALL = frozenset({"lead", "analyst", "integration"})     # sees every deal, lead, statement
WRITE_ALL = frozenset({"lead", "integration"})                # changes any deal
PAYERS = frozenset({"lead", "integration", "webhook"})        # payments and refunds (DESIGN 8)
LEAD_ONLY = frozenset({"lead"})


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _payment(_ids: dict[str, str]) -> dict[str, Any]:
    return {"json": payment_body(f"matrix-{uuid.uuid4().hex[:10]}", name="Matrix Payment")}


def _refund(_ids: dict[str, str]) -> dict[str, Any]:
    return {"json": {"external_id": f"mrf-{uuid.uuid4().hex[:10]}", "amount": "1.00", "currency": "KZT",
                     "refunded_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}}


def _json(body: dict[str, Any]) -> Callable[[dict[str, str]], dict[str, Any]]:
    return lambda _ids: {"json": body}


def _audio(_ids: dict[str, str]) -> dict[str, Any]:
    return {"files": {"file": ("call.mp3", b"ID3" + b"\0" * 256, "audio/mpeg")}}


def _csv(_ids: dict[str, str]) -> dict[str, Any]:
    return {"files": {"file": ("deals.csv", IMPORT_HEADER.encode(), "text/csv")}}


@dataclass(frozen=True)
class Route:
    """`allow`: actors that may get a 2xx on another manager's object; `sees`: those who may find the
    foreign object in the answer (a list is allowed to more actors than may see every row)."""

    service: str
    method: str
    path: str
    allow: frozenset[str]
    sees: frozenset[str] | None = None
    body: Callable[[dict[str, str]], dict[str, Any]] | None = None
    params: dict[str, str] = field(default_factory=dict)
    # the route calls an outside platform (Graph API, Bot API), which the stack makes unreachable: an admitted
    # actor gets the service's 502 naming it; anyone else must be refused before the call
    upstream: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return self.service, self.method, self.path

    def may_see(self, actor: str) -> bool:
        return actor in (self.sees if self.sees is not None else self.allow)


def ops_routes(service: str) -> list[Route]:
    return [Route(service, "GET", f"/api/{service}/ops/dead-letters", WRITE_ALL),
            Route(service, "POST", f"/api/{service}/ops/dead-letters/{{letter_id}}/replay", WRITE_ALL),
            Route(service, "GET", f"/api/{service}/ops/journeys", WRITE_ALL)]   # slow deal journeys (issue 14)


C = "/api/clients"
P = "/api/payroll"
CO = "/api/content"
E = "/api/engagement"
# The care inbox (engagement/access.py from DOMAIN "Roles", EN-6): the lead and integrations everything (only the
# lead makes channel accounts and registers their webhooks); the senior agent all of the inbox, assignment,
# which accounts agents serve, tag rules; a care agent only the accounts they serve (not the foreign deal's);
# monitoring reads all of the inbox; other roles nothing (a list answers empty, an object 404).
INBOX_ALL = frozenset({"lead", "integration", "senior_agent"})
INBOX_READERS = INBOX_ALL | {"monitoring"}
CARE_READERS = frozenset({"lead", "integration", "senior_agent", "analyst"})
# Monitoring mentions (engagement/monitoring.py, EN-6): monitoring staff, the lead and integrations triage
# mentions and keep the feeds and keyword rules; nobody else sees them (care agents read converted ones in the inbox).
MONITORS = frozenset({"lead", "integration", "monitoring"})
SOP_EDIT = frozenset({"lead", "integration", "senior_agent"})
SOP_READ = SOP_EDIT | {"analyst"}
SOP_STAFF = (ALL_STAFF - {"monitoring"}) | {"integration"}


def _jpeg(_ids: dict[str, str]) -> dict[str, Any]:
    return {"files": {"file": ("photo.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 256 + b"\xff\xd9", "image/jpeg")}}


def _channel(_ids: dict[str, str]) -> dict[str, Any]:
    return {"json": {"kind": "telegram", "name": "Matrix channel", "deal_id": None,
                     "config": {"bot_token": f"7000000{uuid.uuid4().int % 1000:03d}:AAH-matrix",
                                "secret_token": "matrix-secret-token"}}}


def _item(ids: dict[str, str]) -> dict[str, Any]:
    return {"json": {"date": ids.get("plan_day") or datetime.now(UTC).date().isoformat(), "kind": "post",
                     "caption": "matrix"}}
# DOMAIN.md "Roles", per route, for objects of manager2 (the matrix's content manager is manager1; the foreign
# deal is account_management, so the ad manager does not see it; its growth specialist is nobody).
SERVICE_ROUTES: list[Route] = [
    Route("clients", "GET", "/public/clients/questionnaire/{token}", EVERYONE),   # the signed link is the credential
    Route("clients", "POST", "/public/clients/questionnaire/{token}", EVERYONE,
          body=_json({"answers": {"business": "matrix"}})),
    Route("clients", "POST", f"{C}/payments", PAYERS, body=_payment),
    Route("clients", "GET", f"{C}/deals", ALL_STAFF | {"integration"}, sees=READ_ALL, params={"limit": "200"}),
    Route("clients", "GET", f"{C}/deals/{{deal_id}}", READ_ALL),
    Route("clients", "POST", f"{C}/deals/{{deal_id}}/stage", WRITE_ALL, body=_json({"stage": "contacted"})),
    Route("clients", "POST", f"{C}/deals/{{deal_id}}/questionnaire", WRITE_ALL,
          body=_json({"answers": {"business": "matrix"}})),
    Route("clients", "POST", f"{C}/deals/{{deal_id}}/questionnaire-link", WRITE_ALL),
    Route("clients", "POST", f"{C}/deals/{{deal_id}}/first-post", WRITE_ALL,
          body=lambda _ids: {"json": {"published_at": _now()}}),
    Route("clients", "POST", f"{C}/deals/{{deal_id}}/renewal-answer", WRITE_ALL, body=_json({"continues": True})),
    Route("clients", "GET", f"{C}/deals/{{deal_id}}/document", READ_ALL),
    Route("clients", "POST", f"{C}/deals/{{deal_id}}/refunds", PAYERS, body=_refund),
    # CL-8: the lead, the responsible manager and the deal's growth specialist; not integrations.
    Route("clients", "POST", f"{C}/deals/{{deal_id}}/credentials/reveal", LEAD_ONLY),
    Route("clients", "PATCH", f"{C}/deals/{{deal_id}}/client", WRITE_ALL, body=_json({"notes": "matrix"})),
    Route("clients", "POST", f"{C}/deals/{{deal_id}}/manager", WRITE_ALL, body=_json({"manager": FOREIGN_MANAGER})),
    Route("clients", "POST", f"{C}/deals/{{deal_id}}/attachments", WRITE_ALL, body=_audio),
    Route("clients", "GET", f"{C}/attachments/{{attachment_id}}", READ_ALL),
    Route("clients", "GET", f"{C}/tasks", ALL_STAFF | {"integration"}, sees=READ_ALL, params={"status": ""}),
    Route("clients", "POST", f"{C}/tasks/{{task_id}}/complete", WRITE_ALL, body=_json({})),
    Route("clients", "POST", f"{C}/tasks/{{task_id}}/checklist", WRITE_ALL, body=_json({"item": "avatar", "done": True})),
    Route("clients", "GET", f"{C}/deadlines", ALL_STAFF | {"integration"}, sees=READ_ALL),
    Route("clients", "POST", f"{C}/deadlines/{{deadline_id}}/waive", WRITE_ALL, body=_json({"reason": "matrix"})),
    Route("clients", "GET", f"{C}/staff", READ_ALL),
    Route("clients", "PUT", f"{C}/staff/{{login}}", WRITE_ALL,
          body=_json({"role": "content_manager", "full_name": FOREIGN_MANAGER})),
    Route("clients", "GET", f"{C}/settings", READ_ALL),
    Route("clients", "PUT", f"{C}/settings", WRITE_ALL, body=_json({"values": {}})),
    Route("clients", "GET", f"{C}/audit", WRITE_ALL),
    Route("clients", "POST", f"{C}/leads", WRITE_ALL | {"content_manager"},
          body=_json({"full_name": "Matrix Lead", "phone": "+77010001111"})),
    Route("clients", "GET", f"{C}/leads", ALL_STAFF | {"integration"}, sees=READ_ALL),
    # Issue 9: the board and the Clients list answer everyone their visible deals' part; a client card by id
    # exists only through a visible deal (404 otherwise) and is edited by who may change one of its deals.
    Route("clients", "GET", f"{C}/board", ALL_STAFF | {"integration"}, sees=READ_ALL),
    Route("clients", "GET", f"{C}/clients", ALL_STAFF | {"integration"}, sees=READ_ALL, params={"limit": "200"}),
    Route("clients", "GET", f"{C}/clients/{{client_id}}", READ_ALL),
    Route("clients", "PATCH", f"{C}/clients/{{client_id}}", WRITE_ALL, body=_json({"notes": "matrix card"})),
    Route("clients", "GET", f"{C}/leads/{{lead_id}}", READ_ALL),
    Route("clients", "POST", f"{C}/leads/{{lead_id}}/stage", WRITE_ALL, body=_json({"stage": "warm_lead"})),
    Route("clients", "GET", f"{C}/reports/funnel", READ_ALL, params={"manager": FOREIGN_MANAGER}),
    # Issue 15: leads from the inbox. The foreign lead was entered by hand (no conversation), so the care and senior
    # agents — who work the inbox's leads — do not see it; the foreign conversation is a client account's: no lead.
    Route("clients", "PATCH", f"{C}/leads/{{lead_id}}", WRITE_ALL, body=_json({"notes": "matrix"})),
    Route("clients", "POST", f"{C}/leads/{{lead_id}}/disqualify", WRITE_ALL, body=_json({"reason": None})),
    Route("clients", "GET", f"{C}/leads/by-conversation/{{conversation_id}}", frozenset()),
    Route("clients", "POST", f"{C}/imports", WRITE_ALL, body=_csv),
    Route("clients", "GET", f"{C}/imports/{{import_id}}", WRITE_ALL),
    *ops_routes("clients"), *ops_routes("content"), *ops_routes("engagement"), *ops_routes("payroll"),
    # Content (content/access.py from DOMAIN "Roles"): a content manager sees and changes only their own deals'
    # plans; the lead and integrations change any; the analyst reads; the client's signed link is its credential.
    Route("content", "GET", f"{CO}/deals/{{deal_id}}/plans", READ_ALL),
    Route("content", "GET", f"{CO}/deals/{{deal_id}}/deadlines", READ_ALL),
    Route("content", "POST", f"{CO}/deals/{{deal_id}}/materials-received", WRITE_ALL, body=_json({})),
    Route("content", "GET", f"{CO}/plans/{{plan_id}}", READ_ALL),
    Route("content", "POST", f"{CO}/plans/{{plan_id}}/items", WRITE_ALL, body=_item),
    Route("content", "PATCH", f"{CO}/items/{{item_id}}", WRITE_ALL, body=_json({"caption": "matrix"})),
    Route("content", "POST", f"{CO}/plans/{{plan_id}}/submit", WRITE_ALL),
    Route("content", "POST", f"{CO}/plans/{{plan_id}}/link", WRITE_ALL),
    Route("content", "POST", f"{CO}/plans/{{plan_id}}/comments/{{comment_id}}/resolve", WRITE_ALL),
    Route("content", "POST", f"{CO}/items/{{item_id}}/published", WRITE_ALL,
          body=lambda _ids: {"json": {"published_at": _now(), "permalink": "https://instagram.com/p/matrix"}}),
    Route("content", "GET", f"{CO}/deals/{{deal_id}}/requests", READ_ALL),
    Route("content", "POST", f"{CO}/requests/{{request_id}}/answer", WRITE_ALL, body=_json({"decision": "accepted"})),
    Route("content", "POST", f"{CO}/deals/{{deal_id}}/stats/import", WRITE_ALL,
          body=lambda _ids: {"files": {"file": ("stats.csv", b"date;reach\n", "text/csv")}}),
    Route("content", "PUT", f"{CO}/deals/{{deal_id}}/stats/weeks/{{week_start}}", WRITE_ALL, body=_json({})),
    Route("content", "GET", f"{CO}/deals/{{deal_id}}/stats", READ_ALL),
    Route("content", "POST", f"{CO}/deals/{{deal_id}}/stats/report-link", WRITE_ALL),
    Route("content", "GET", f"{CO}/cadence", ALL_STAFF | {"integration"}, sees=READ_ALL),
    Route("content", "GET", f"{CO}/settings", READ_ALL),
    Route("content", "PUT", f"{CO}/settings", WRITE_ALL, body=_json({"values": {}})),
    *[Route("content", method, f"{prefix}/{what}/{{token}}{tail}", EVERYONE,   # the signed link is the credential
            body=_json({"decision": "approved"}) if method == "POST" and not tail else
            _json({"text": "matrix"}) if tail else None)
      for prefix in (CO, "/public/content")
      for method, what, tail in (("GET", "approvals", ""), ("POST", "approvals", ""),
                                 ("POST", "approvals", "/requests"), ("GET", "reports", ""))],
    # Issue 10: the deal's Instagram connection (its token revealed to the lead and the responsible manager only,
    # not to integrations), uploaded media (the signed link is the credential), a failed publication's retry,
    # the CO-7 Insights fetch.
    Route("content", "GET", f"{CO}/deals/{{deal_id}}/instagram", READ_ALL),
    Route("content", "PUT", f"{CO}/deals/{{deal_id}}/instagram", WRITE_ALL,
          body=_json({"ig_user_id": "17841400000000777", "access_token": "matrix-token"}), upstream=True),
    Route("content", "DELETE", f"{CO}/deals/{{deal_id}}/instagram", WRITE_ALL),
    Route("content", "POST", f"{CO}/deals/{{deal_id}}/instagram/reveal", LEAD_ONLY),
    Route("content", "POST", f"{CO}/deals/{{deal_id}}/instagram/test", WRITE_ALL, upstream=True),
    Route("content", "POST", f"{CO}/deals/{{deal_id}}/media", WRITE_ALL, body=_jpeg),
    Route("content", "POST", f"{CO}/items/{{item_id}}/retry", WRITE_ALL),
    Route("content", "POST", f"{CO}/deals/{{deal_id}}/stats/fetch", WRITE_ALL, body=_json({}), upstream=True),
    Route("content", "GET", "/media/{token}", EVERYONE),
    Route("content", "GET", "/public/content/media/{token}", EVERYONE),
    # The care inbox on the foreign deal's account (EN-2, EN-5, EN-6, EN-7).
    Route("engagement", "POST", f"{E}/channels", LEAD_ONLY, body=_channel),
    Route("engagement", "GET", f"{E}/channels", INBOX_ALL),
    # Issue 15: the lead marks an account as one of the agency's sales accounts (or renames / deactivates it).
    Route("engagement", "PATCH", f"{E}/channels/{{channel_id}}", LEAD_ONLY, body=_json({"sales": False})),
    Route("engagement", "POST", f"{E}/channels/{{channel_id}}/register-webhook", LEAD_ONLY, upstream=True),
    Route("engagement", "PUT", f"{E}/staff/{{login}}/accounts", INBOX_ALL,
          body=_json({"accounts": ["another-clients-account"]})),
    Route("engagement", "PUT", f"{E}/agents/{{login}}", INBOX_ALL, body=_json({"on_shift": False})),
    Route("engagement", "GET", f"{E}/conversations", ALL_STAFF | {"integration"}, sees=INBOX_READERS),
    Route("engagement", "GET", f"{E}/conversations/{{conversation_id}}", INBOX_READERS),
    # Issue 11: a file a customer sent, to whoever may read its conversation (an absent file: 404 to all).
    Route("engagement", "GET", f"{E}/conversations/{{conversation_id}}/files/{{file_id}}", INBOX_READERS),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/replies", INBOX_ALL,
          body=_json({"text": "matrix reply"})),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/assign", INBOX_ALL,
          body=_json({"agent": ROLE_LOGINS["senior_agent"]})),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/status", INBOX_ALL,
          body=_json({"status": "open"})),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/tags", INBOX_ALL,
          body=_json({"add": ["matrix"]})),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/ask-client", INBOX_ALL,
          body=_json({"question": "matrix?"})),
    # The website form (issue 11): the gateway's public page hands a visitor's message over as an integration;
    # the form's name is read by the gateway (or the lead).
    Route("engagement", "GET", f"{E}/webform/{{slug}}", WRITE_ALL),
    Route("engagement", "POST", f"{E}/webform/{{slug}}", frozenset({"integration"}),
          body=_json({"name": "Matrix", "contact": "matrix@example.com", "message": "matrix",
                      "submission_id": "matrix-submission-0001", "ip": "192.0.2.1"})),
    Route("engagement", "GET", f"{E}/tag-rules", INBOX_ALL),
    Route("engagement", "POST", f"{E}/tag-rules", INBOX_ALL,
          body=_json({"kind": "keyword", "value": "matrixkw", "tag": "matrix"})),
    Route("engagement", "DELETE", f"{E}/tag-rules/{{rule_id}}", INBOX_ALL),
    # Care quality (issue 12, engagement/quality_controllers.py): settings and reports for the lead, analysts and
    # senior agents; a care agent reads only their own report line; content managers their own check rounds and
    # the conversations of the clients they manage (the foreign deal is manager2's: not theirs).
    Route("engagement", "GET", f"{E}/care-settings", CARE_READERS),
    Route("engagement", "GET", f"{E}/agents", CARE_READERS),   # the care team: shifts, caps, teams, accounts
    Route("engagement", "GET", f"{E}/care-settings/{{account}}", CARE_READERS),
    Route("engagement", "PUT", f"{E}/care-settings/{{account}}", WRITE_ALL, body=_json({"target_s": 420})),
    Route("engagement", "GET", f"{E}/reports/agents", CARE_READERS | {"care_agent"}),
    Route("engagement", "GET", f"{E}/check-rounds", CARE_READERS | {"content_manager", "ad_manager", "growth"}),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/checked", INBOX_ALL),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/quality-mark",
          frozenset({"lead", "senior_agent"}), body=_json({"score": 4})),
    Route("engagement", "GET", f"{E}/mentions", MONITORS, params={"status": "new"}),
    Route("engagement", "GET", f"{E}/mentions/summary", MONITORS),
    Route("engagement", "POST", f"{E}/mentions", MONITORS,
          body=_json({"url": "https://forum.example/t/matrix", "text": "matrix", "source_name": "Matrix"})),
    Route("engagement", "GET", f"{E}/mentions/{{mention_id}}", MONITORS),
    Route("engagement", "POST", f"{E}/mentions/{{mention_id}}/dismiss", MONITORS, body=_json({"reason": "spam"})),
    Route("engagement", "POST", f"{E}/mentions/{{mention_id}}/convert", MONITORS),
    Route("engagement", "GET", f"{E}/monitoring/sources", MONITORS),
    Route("engagement", "POST", f"{E}/monitoring/sources", MONITORS,
          body=_json({"name": "Matrix feed", "url": "http://127.0.0.1:9/matrix.rss"})),
    Route("engagement", "DELETE", f"{E}/monitoring/sources/{{source_id}}", MONITORS),
    Route("engagement", "GET", f"{E}/monitoring/rules", MONITORS),
    Route("engagement", "POST", f"{E}/monitoring/rules", MONITORS, body=_json({"keywords": ["matrixmention"]})),
    Route("engagement", "DELETE", f"{E}/monitoring/rules/{{keyword_rule_id}}", MONITORS),
    # The inbox pages' additions (issue 11): templates per category (kept by the lead and senior agents, read by
    # whoever answers), notes with @mentions, category and priority, the per-person counts, the change feed
    # (a care agent is told only of the accounts they serve).
    Route("engagement", "GET", f"{E}/templates", INBOX_READERS | {"care_agent"}),
    Route("engagement", "POST", f"{E}/templates", INBOX_ALL, body=_json({"title": "matrix", "body": "matrix"})),
    Route("engagement", "PUT", f"{E}/templates/{{template_id}}", INBOX_ALL,
          body=_json({"title": "matrix", "body": "matrix"})),
    Route("engagement", "DELETE", f"{E}/templates/{{template_id}}", INBOX_ALL),
    Route("engagement", "GET", f"{E}/conversations/{{conversation_id}}/notes", INBOX_READERS),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/notes", INBOX_ALL,
          body=_json({"text": "matrix note @senior1"})),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/seen", INBOX_READERS),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/category", INBOX_ALL,
          body=_json({"category": "matrix"})),
    Route("engagement", "POST", f"{E}/conversations/{{conversation_id}}/priority", INBOX_ALL,
          body=_json({"priority": "high"})),
    Route("engagement", "GET", f"{E}/categories", ALL_STAFF | {"integration"}),
    Route("engagement", "GET", f"{E}/counts", ALL_STAFF | {"integration"}),
    Route("engagement", "GET", f"{E}/changes", ALL_STAFF | {"integration"}, sees=INBOX_READERS, params={"since": "0"}),
    # Payroll: a content manager sees only their own statement and figures; the lead closes months and
    # changes rules (not an integration: a close is a person's decision).
    Route("payroll", "GET", f"{P}/statements", READ_ALL | {"content_manager"}, sees=READ_ALL),
    Route("payroll", "GET", f"{P}/statements/{{manager}}", READ_ALL),
    # The group SOP (issue 13, engagement/sop_controllers.py, SOP_API.md "Roles"): the lead and senior agents edit
    # groups, rules and the calendar; analysts read everything; any staff role that may own a group reads groups,
    # attachments and their own pushes (the lead anyone's). Objects by id are absent here (404 to the admitted).
    Route("engagement", "PUT", f"{E}/staff/{{login}}/owner", WRITE_ALL, body=_json({"active": True})),
    Route("engagement", "GET", f"{E}/staff/{{login}}/owner", SOP_EDIT),
    Route("engagement", "GET", f"{E}/owners", SOP_EDIT),
    Route("engagement", "POST", f"{E}/groups", SOP_EDIT, body=lambda _ids: {"json": {
        "external_id": f"matrix-{uuid.uuid4().hex[:10]}", "title": "Matrix group", "category": "M"}}),
    Route("engagement", "GET", f"{E}/groups", SOP_STAFF),
    Route("engagement", "POST", f"{E}/groups/bulk", SOP_EDIT, body=lambda ids: {"json": {"ids": [ids["group_id"]]}}),
    Route("engagement", "GET", f"{E}/groups/{{group_id}}", SOP_STAFF),
    Route("engagement", "PATCH", f"{E}/groups/{{group_id}}", SOP_EDIT, body=_json({"title": "matrix"})),
    Route("engagement", "POST", f"{E}/sop-rules", SOP_EDIT, body=_json({
        "name": "Matrix rule", "target": {"category": "M"}, "time": "09:00", "weekdays": [1],
        "content": {"text": "matrix", "attachments": []}})),
    Route("engagement", "GET", f"{E}/sop-rules", SOP_READ),
    Route("engagement", "GET", f"{E}/sop-rules/{{rule_id}}", SOP_READ),
    Route("engagement", "PATCH", f"{E}/sop-rules/{{rule_id}}", SOP_EDIT, body=_json({"name": "matrix"})),
    Route("engagement", "POST", f"{E}/sop-rules/{{rule_id}}/pause", SOP_EDIT),
    Route("engagement", "POST", f"{E}/sop-rules/{{rule_id}}/resume", SOP_EDIT),
    Route("engagement", "GET", f"{E}/sop-rules/{{rule_id}}/preview", SOP_READ),
    Route("engagement", "POST", f"{E}/calendar", SOP_EDIT, body=lambda _ids: {"json": {
        "at": (datetime.now(UTC) + timedelta(days=30)).isoformat(), "target": {"category": "M"},
        "content": {"text": "matrix", "attachments": []}}}),
    Route("engagement", "GET", f"{E}/calendar", SOP_READ),
    Route("engagement", "DELETE", f"{E}/calendar/{{entry_id}}", SOP_EDIT),
    Route("engagement", "POST", f"{E}/sop-files", SOP_EDIT, body=_jpeg),
    Route("engagement", "GET", f"{E}/sop-files/{{file_id}}", SOP_STAFF),
    Route("engagement", "GET", f"{E}/push-settings", SOP_READ),
    Route("engagement", "PUT", f"{E}/push-settings", WRITE_ALL, body=_json({"monthly_quota": 4})),
    Route("engagement", "GET", f"{E}/pushes", SOP_STAFF),
    Route("engagement", "GET", f"{E}/pushes/count", SOP_STAFF),
    Route("engagement", "POST", f"{E}/pushes/{{push_id}}/sent", WRITE_ALL),
    Route("engagement", "POST", f"{E}/pushes/{{push_id}}/retarget", SOP_EDIT),
    Route("engagement", "GET", f"{E}/push-tasks", SOP_STAFF),
    Route("engagement", "GET", f"{E}/push-tasks/{{task_id}}", SOP_STAFF),
    Route("engagement", "GET", f"{E}/push-reports", SOP_READ),
    Route("engagement", "GET", f"{E}/push-reports/owners", SOP_STAFF),
    Route("payroll", "GET", f"{P}/months/{{month}}", READ_ALL | {"content_manager"}, sees=READ_ALL),
    Route("payroll", "GET", f"{P}/months", READ_ALL | {"content_manager"}),   # months with data (issue 9)
    Route("payroll", "POST", f"{P}/months/{{past_month}}/close", LEAD_ONLY),
    # PAY-7: in a full tie the lead picks the best manager (a person's decision, as a close).
    Route("payroll", "POST", f"{P}/months/{{month}}/best-manager", LEAD_ONLY, body=_json({"manager": FOREIGN_MANAGER})),
    Route("payroll", "GET", f"{P}/rules", READ_ALL | {"content_manager"}),
    Route("payroll", "PUT", f"{P}/rules", LEAD_ONLY, body=_json({"effective_from": "2099-01"})),
    Route("payroll", "GET", f"{P}/employees", READ_ALL | {"content_manager"}, sees=READ_ALL),
    Route("payroll", "GET", f"{P}/employees/{{login}}", READ_ALL),
    Route("payroll", "PUT", f"{P}/employees/{{login}}", WRITE_ALL,
          body=_json({"role": "content_manager", "employed_from": "2020-01-01"})),
    Route("payroll", "POST", f"{P}/rebuild", LEAD_ONLY),
]


def concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: ids[m.group(1)], path)


def ids_of(stack: Stack) -> dict[str, str]:
    return {**stack.foreign.ids, "past_month": "2020-01", "service": "clients", **stack.foreign.content_ids,
            "account": stack.foreign.deal_id,
            **stack.foreign.engagement_ids,
            "group_id": "matrix-absent", "entry_id": "matrix-absent", "file_id": "matrix-absent",
            "push_id": "matrix-absent", "rule_id": "matrix-absent", "task_id": "matrix-absent"}


def params_of(route: Route, ids: dict[str, str]) -> dict[str, str]:
    params = dict(route.params)
    if "{month}" in route.path or route.path.endswith(("/statements", "/funnel")) or "/statements/" in route.path:
        params.setdefault("month", ids["month"])
    return params


def foreign_markers(stack: Stack, route: Route) -> list[str]:
    if route.service == "payroll":   # another manager's figures (the month's best manager is named to all)
        return [f'"manager":"{FOREIGN_MANAGER}"', f'"manager": "{FOREIGN_MANAGER}"']
    f = stack.foreign
    if route.service == "engagement":   # the foreign account's conversation (a channel names its deal)
        return [f.deal_id, f.engagement_ids["conversation_id"], FOREIGN_MESSAGE]
    return [f.deal_id, f.lead_id, FOREIGN_NAME, FOREIGN_LEAD_NAME]


def actor_headers(actor: str, body: bytes, service: str) -> dict[str, str]:
    if actor == "none":
        return {}
    if actor == "webhook":
        return {"X-Zabota-Signature": sign(body)}
    if actor == "integration":
        return integration_headers()
    if actor == "forged_lead":
        return forged_lead_headers()
    if actor == "staff_headers_of_lead":   # a leaked assertion of the lead on an integration token
        return {**integration_headers(), **staff_headers("lead", "lead", service)}
    return staff_headers(ROLE_LOGINS[actor], actor, service)


def server_error(route: Route, actor: str, status: int) -> bool:
    """A 5xx that is not the admitted actor's 502 from an outside platform the stack makes unreachable."""
    return status >= 500 and not (route.upstream and status == 502 and ACTS_AS.get(actor, actor) in route.allow)


def call(http: httpx.Client, base: str, route: Route, actor: str, ids: dict[str, str]) -> httpx.Response:
    parts = route.body(ids) if route.body else {}
    request = http.build_request(route.method, base + concrete(route.path, ids), params=params_of(route, ids),
                                 **parts)
    body = request.read()
    request.headers.update(actor_headers(actor, body, route.service))
    return http.send(request)


# PAY-7: the month's best manager is named to everyone (the why's `winner`), not their figures.
NAMED_TO_ALL = re.compile(r'"winner":\s*\{"manager":\s*"[^"]*"\}')


@dataclass
class Tally:
    """`attempts`: requests an actor may not succeed in (a route it is not admitted to, or a list that must
    not show it the foreign object); `refused`: those that indeed did not succeed."""

    requests: int = 0
    attempts: int = 0
    refused: int = 0
    holes: list[str] = field(default_factory=list)

    def judge(self, route: Route | Page, actor: str, status: int, text: str, success: bool,
              markers: list[str]) -> None:
        self.requests += 1
        role = ACTS_AS.get(actor, actor)
        where = f"{actor} {route.method} {route.path} -> {status}"
        admitted = role in route.allow
        sees = route.may_see(role)
        hole = ""
        if FOREIGN_PASSWORD in text and role != "lead":
            hole = "the foreign Instagram password is in the answer"
        elif success and not admitted:
            hole = "not allowed"
        elif success and not sees and any(m in NAMED_TO_ALL.sub("", text) for m in markers):
            hole = "shows another manager's object"
        if not admitted or not sees:
            self.attempts += 1
            self.refused += not hole
        if hole:
            self.holes.append(f"{where}: {hole}")

    def record(self, check: str) -> None:
        record(check, self.attempts, self.refused, f"{self.requests} requests; unauthorised success: {len(self.holes)}")


def service_openapi(stack: Stack, service: str) -> set[tuple[str, str, str]]:
    schema = httpx.get(f"{stack.urls[service]}/schema/openapi.json", timeout=30).json()
    return {(service, method.upper(), path) for path, ops in schema["paths"].items() for method in ops
            if method.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE")}


def table_keys() -> set[tuple[str, str, str]]:
    return {(r.service, r.method, re.sub(r"\{past_month\}", "{month}", r.path)) for r in SERVICE_ROUTES}


def test_issue8_the_matrix_covers_every_route_of_every_services_openapi(stack: Stack) -> None:
    found = set().union(*(service_openapi(stack, s) for s in SERVICES))
    missing = sorted(found - table_keys())
    assert not missing, f"routes without a permission row in SERVICE_ROUTES: {missing}"
    assert not sorted(table_keys() - found), "rows for routes the services no longer have"


def test_issue8_role_route_object_matrix_on_the_services_own_ports(stack: Stack) -> None:
    ids = ids_of(stack)
    tally = Tally()
    with httpx.Client(timeout=30) as http:
        for actor in ACTORS:
            for route in SERVICE_ROUTES:
                response = call(http, stack.urls[route.service], route, actor, ids)
                assert not server_error(route, actor, response.status_code), (actor, route.method, route.path,
                                                                              response.text[:300])
                tally.judge(route, actor, response.status_code, response.text,
                            200 <= response.status_code < 300, foreign_markers(stack, route))
    tally.record("role x route x object, services' own ports")
    assert not tally.holes, "\n".join(tally.holes)


def test_issue8_role_route_object_matrix_through_the_gateway_api_routing(stack: Stack) -> None:
    ids = ids_of(stack)
    tally = Tally()
    with httpx.Client(timeout=30) as http:
        for actor in PROXY_ACTORS:
            for route in SERVICE_ROUTES:
                if route.path.startswith("/public/"):
                    continue   # the gateway serves the signed link as a page (/q/…), not by routing
                response = call(http, stack.gateway, route, actor, ids)
                assert not server_error(route, actor, response.status_code), (actor, route.method, route.path,
                                                                              response.text[:300])
                tally.judge(route, actor, response.status_code, response.text,
                            200 <= response.status_code < 300, foreign_markers(stack, route))
    tally.record("role x route x object, through the gateway /api routing")
    assert not tally.holes, "\n".join(tally.holes)


def test_issue8_1_an_integration_token_claiming_the_lead_acts_as_an_integration(stack: Stack) -> None:
    """Issue 8 §1: identity headers from an integration token are not believed — no credentials revealed,
    no false actor in the audit log."""
    deal_id = stack.foreign.deal_id
    reveal = httpx.post(f"{stack.urls['clients']}{C}/deals/{deal_id}/credentials/reveal",
                        headers=forged_lead_headers(), timeout=30)
    assert reveal.status_code == 403 and FOREIGN_PASSWORD not in reveal.text, (reveal.status_code, reveal.text[:200])
    note = f"forged-actor-{uuid.uuid4().hex[:8]}"
    edit = httpx.patch(f"{stack.urls['clients']}{C}/deals/{deal_id}/client", json={"notes": note},
                       headers={**integration_headers(), "X-Zabota-Actor": "manager1",
                                "X-Zabota-Role": "content_manager"}, timeout=30)
    assert edit.status_code in (200, 403), edit.text[:300]
    audit = stack.api("clients", "GET", f"/audit?target={deal_id}", headers=staff_headers("lead", "lead", "clients"))
    forged = [a for a in audit if note in json.dumps(a.get("detail"), ensure_ascii=False)]
    assert all(a["actor"] != "manager1" and a["role"] != "content_manager" for a in forged), forged


def test_issue8_1_identity_headers_and_foreign_assertions_are_refused_on_every_service(stack: Stack) -> None:
    """Issue 8 §1 (shared/auth.py): an integration token with `X-Zabota-Role: lead` (or `X-Zabota-Actor`) is
    refused with 403 naming the header; a staff assertion made for another service, signed with another
    secret, expired, or tampered with is refused with 401 — on every service's own port."""
    from shared.auth import ASSERTION_HEADER, make_assertion

    from .identity import GATEWAY_SECRET

    tried = refused = 0
    problems: list[str] = []
    paths = {"clients": f"{C}/deals/{stack.foreign.deal_id}", "content": "/api/content/ops/dead-letters",
             "engagement": "/api/engagement/ops/dead-letters", "payroll": f"{P}/employees/{FOREIGN_MANAGER}"}
    for service, path in paths.items():
        other = next(s for s in SERVICES if s != service)
        genuine = staff_headers("lead", "lead", service)[ASSERTION_HEADER]
        expired = make_assertion("lead", "lead", audience=service, secret=GATEWAY_SECRET, now=0)
        attempts: list[tuple[str, dict[str, str], int]] = [
            ("integration + X-Zabota-Role: lead", {**integration_headers(), "X-Zabota-Role": "lead"}, 403),
            ("integration + X-Zabota-Actor: lead", {**integration_headers(), "X-Zabota-Actor": "lead"}, 403),
            ("integration + both identity headers", forged_lead_headers(), 403),
            ("assertion for another service", staff_headers("lead", "lead", other), 401),
            ("assertion for another service + integration token",
             {**integration_headers(), **staff_headers("lead", "lead", other)}, 401),
            ("assertion signed with another secret", foreign_assertion_headers("lead", "lead", service), 401),
            ("expired assertion", {ASSERTION_HEADER: expired}, 401),
            ("tampered assertion", {ASSERTION_HEADER: genuine[:-2] + ("AA" if genuine[-2:] != "AA" else "BB")}, 401),
            ("genuine assertion, X-Zabota-Role of someone else",
             {**staff_headers("manager1", "content_manager", service), "X-Zabota-Role": "lead"}, 403),
        ]
        for what, headers, status in attempts:
            response = httpx.get(f"{stack.urls[service]}{path}", headers=headers, timeout=30)
            tried += 1
            refused += response.status_code == status
            if response.status_code != status:
                problems.append(f"{service}: {what} -> {response.status_code} (expected {status}) "
                                f"{response.text[:200]}")
            if FOREIGN_PASSWORD in response.text or FOREIGN_NAME in response.text:
                problems.append(f"{service}: {what} revealed the foreign deal")
        ok = httpx.get(f"{stack.urls[service]}{path}", headers={ASSERTION_HEADER: genuine}, timeout=30)
        assert ok.status_code == 200, (service, ok.status_code, ok.text[:300])   # the control: the real thing works
    record("forged identity: identity headers on a token, foreign assertions", tried, refused,
           f"problems: {len(problems)}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------- pages

@dataclass(frozen=True)
class Page:
    method: str
    path: str
    allow: frozenset[str]
    sees: frozenset[str] | None = None
    form: dict[str, str] = field(default_factory=dict)
    upload: bool = False
    query: dict[str, str] = field(default_factory=dict)   # {placeholders} filled from the foreign ids, as form
    send: bool = True       # False: in the table, but not sent in the walk (sign-out ends the walk's session)

    def may_see(self, role: str) -> bool:
        return role in (self.sees if self.sees is not None else self.allow)


ANYONE = frozenset({"anonymous", *STAFF})
READERS = frozenset({"lead", "content_manager", "ad_manager", "growth", "analyst"})
PAGE_READ_ALL = frozenset({"lead", "analyst"})
CONTENT_READERS = frozenset({"lead", "content_manager", "analyst"})
TRIAGE_PAGES = frozenset({"lead", "monitoring"})
# EN-4: content/ad managers and growth open the inbox for their own clients' check rounds (the foreign deal is
# manager2's: they do not see it).
INBOX_PAGES = frozenset({"lead", "senior_agent", "care_agent", "monitoring", "content_manager", "ad_manager", "growth"})
INBOX_PAGE_SEES = frozenset({"lead", "senior_agent", "monitoring"})
INBOX_PAGE_WRITERS = frozenset({"lead", "senior_agent", "care_agent", "content_manager", "ad_manager", "growth"})
INBOX_SENIORS = frozenset({"lead", "senior_agent"})
SOP_PAGE_READ = frozenset({"lead", "senior_agent", "analyst"})
PUSH_OWNER_PAGES = frozenset({"lead", "care_agent", "senior_agent", "content_manager", "ad_manager", "growth"})
PAGES: list[Page] = [
    Page("GET", "/login", ANYONE), Page("POST", "/login", ANYONE, form={"login": "nobody", "password": ""}),   # no failed password:
    # the walk must not use up the sign-in throttle of 127.0.0.1 (issue 8 §8)
    Page("POST", "/logout", ALL_STAFF, send=False),
    Page("GET", "/", ALL_STAFF),
    Page("GET", "/nav/counts", ALL_STAFF),   # my open and overdue task counts (issue 9)
    # The event catalogue is public: partners read it (issue 14).
    Page("GET", "/metrics", ANYONE),   # Prometheus: counts and route templates only (issue 14)
    Page("GET", "/docs/events", ANYONE), Page("GET", "/docs/events/asyncapi.json", ANYONE),
    Page("GET", "/docs/events/schemas/{name}", ANYONE),
    Page("GET", "/tasks", frozenset({"lead", "content_manager", "ad_manager", "growth"}), sees=PAGE_READ_ALL),
    Page("POST", "/tasks/{task_id}/complete", LEAD_ONLY, form={"back": "tasks"}),
    Page("POST", "/tasks/{task_id}/checklist", LEAD_ONLY, form={"item": "avatar", "done": "true"}),
    Page("POST", "/deals/{deal_id}/recordings", LEAD_ONLY, upload=True),
    Page("GET", "/attachments/{attachment_id}", PAGE_READ_ALL),
    Page("GET", "/deals", READERS, sees=PAGE_READ_ALL),
    Page("GET", "/deals/column", READERS, sees=PAGE_READ_ALL, query={"stage": "project_launched"}),   # issue 9
    Page("GET", "/clients", READERS, sees=PAGE_READ_ALL),
    Page("GET", "/clients/{client_id}", PAGE_READ_ALL),
    Page("POST", "/clients/{client_id}", LEAD_ONLY, form={"notes": "page matrix"}),
    Page("POST", "/deals/{deal_id}/stage", LEAD_ONLY, form={"stage": "contacted", "back": "deal"}),
    Page("POST", "/deals/{deal_id}/client", LEAD_ONLY, form={"notes": "page matrix"}),
    Page("GET", "/deals/{deal_id}", PAGE_READ_ALL),
    Page("POST", "/deals/{deal_id}/credentials", LEAD_ONLY),
    Page("POST", "/deals/{deal_id}/questionnaire-link", LEAD_ONLY),
    Page("POST", "/deals/{deal_id}/deadlines/{deadline_id}/waive", LEAD_ONLY, form={"reason": "page matrix"}),
    Page("GET", "/deals/{deal_id}/document", PAGE_READ_ALL),
    Page("GET", "/leads", frozenset({"lead", "content_manager", "analyst"}), sees=PAGE_READ_ALL),
    Page("POST", "/leads", frozenset({"lead", "content_manager"}),
         form={"full_name": "Page Matrix Lead", "phone": "+77010002222"}),
    Page("GET", "/leads/{lead_id}", PAGE_READ_ALL),
    Page("POST", "/leads/{lead_id}/stage", LEAD_ONLY, form={"stage": "warm_lead"}),
    Page("GET", "/reports/funnel", frozenset({"lead", "content_manager", "analyst"})),
    Page("GET", "/care/reports", frozenset({"lead", "analyst", "senior_agent", "care_agent"})),
    Page("GET", "/care/reports.csv", frozenset({"lead", "analyst", "senior_agent", "care_agent"})),
    Page("GET", "/care/settings", frozenset({"lead", "analyst", "senior_agent"})),
    Page("POST", "/care/settings/{account}", LEAD_ONLY, form={"mode": "brand", "target_minutes": "7", "days": "1"}),
    Page("GET", "/care/rounds", frozenset({"lead", "analyst", "senior_agent", "content_manager", "ad_manager",
                                           "growth"})),
    # Issue 15: the lead panel of a conversation, for those who answer the sales accounts (care agents only on the
    # accounts they serve). The foreign conversation is a client account's: the panel says there is no lead, and
    # a form on it has no lead to change.
    Page("GET", "/inbox/{conversation_id}/lead", frozenset({"lead", "senior_agent"})),
    Page("POST", "/inbox/{conversation_id}/lead", frozenset(), form={"full_name": "Page Matrix"}),
    Page("POST", "/inbox/{conversation_id}/lead/stage", frozenset(), form={"stage": "warm_lead"}),
    Page("POST", "/inbox/{conversation_id}/lead/disqualify", frozenset(), form={"reason": ""}),
    Page("GET", "/imports", LEAD_ONLY), Page("POST", "/imports", LEAD_ONLY, upload=True),
    Page("GET", "/imports/{import_id}", LEAD_ONLY),
    Page("GET", "/q/{token}", ANYONE), Page("POST", "/q/{token}", ANYONE, form={"business": "x"}),
    Page("GET", "/payroll", frozenset({"lead", "analyst", "content_manager"})),
    Page("POST", "/payroll/months/{month}/close", LEAD_ONLY),
    Page("POST", "/payroll/months/{month}/best-manager", LEAD_ONLY, form={"manager": FOREIGN_MANAGER}),
    Page("GET", "/payroll/statements/{month}/{manager}", PAGE_READ_ALL),
    Page("GET", "/payroll/statements/{month}/{manager}/csv", PAGE_READ_ALL),
    Page("GET", "/payroll/rules", frozenset({"lead", "analyst", "content_manager"})),
    Page("POST", "/payroll/rules", LEAD_ONLY, form={"effective_from": "2099-02"}),
    Page("GET", "/staff", LEAD_ONLY), Page("POST", "/staff", LEAD_ONLY, form={"login": ""}),
    Page("GET", "/settings", LEAD_ONLY),
    Page("POST", "/settings/calendar", LEAD_ONLY, form={"timezone": ""}),
    Page("POST", "/settings/deadlines", LEAD_ONLY, form={"period_months": ""}),
    Page("POST", "/settings/requisites", LEAD_ONLY, form={"agency_bin": "1"}),
    Page("POST", "/settings/language", LEAD_ONLY, form={"default_language": "xx"}),
    Page("GET", "/status", LEAD_ONLY),
    Page("POST", "/status/dead-letters/{service}/{letter_id}/replay", LEAD_ONLY),
    # Content pages (gateway/pages/content*.py; content/access.py): a content manager reads and changes their own
    # deals' plans, the analyst reads all, the lead does everything; on manager2's deal only the lead changes
    # and the lead and the analyst read. The calendar and the cadence board are open to the readers but must
    # not show the foreign deal to manager1, even when asked for it by id.
    Page("GET", "/content", CONTENT_READERS, sees=PAGE_READ_ALL, query={"deal": "{deal_id}"}),
    Page("POST", "/content/move", LEAD_ONLY, form={"item_id": "{item_id}", "date": "{plan_day}"}),
    Page("GET", "/content/plans/{plan_id}", PAGE_READ_ALL),
    Page("POST", "/content/plans/{plan_id}/check", LEAD_ONLY, form={"date": "{plan_day}", "kind": "post"}),
    Page("POST", "/content/plans/{plan_id}/items", LEAD_ONLY,
         form={"date": "{plan_day}", "kind": "post", "caption": "page matrix"}),
    Page("POST", "/content/items/{item_id}/edit", LEAD_ONLY, form={"plan_id": "{plan_id}", "caption": "page matrix"}),
    Page("POST", "/content/plans/{plan_id}/submit", LEAD_ONLY),
    Page("POST", "/content/plans/{plan_id}/link", LEAD_ONLY),
    Page("POST", "/content/plans/{plan_id}/comments/{comment_id}/resolve", LEAD_ONLY),
    Page("POST", "/content/items/{item_id}/published", LEAD_ONLY,
         form={"plan_id": "{plan_id}", "permalink": "https://instagram.com/p/pagematrix"}),
    Page("POST", "/content/requests/{request_id}/answer", LEAD_ONLY,
         form={"plan_id": "{plan_id}", "decision": "approve"}),
    Page("GET", "/content/deals/{deal_id}/plans", PAGE_READ_ALL),
    Page("POST", "/content/deals/{deal_id}/materials", LEAD_ONLY),
    Page("GET", "/cadence", CONTENT_READERS, sees=PAGE_READ_ALL),
    Page("GET", "/content/deals/{deal_id}/stats", PAGE_READ_ALL),
    Page("POST", "/content/deals/{deal_id}/stats/import", LEAD_ONLY, upload=True),
    Page("POST", "/content/deals/{deal_id}/stats/week", LEAD_ONLY, form={"week_start": "{week_start}", "reach": "5"}),
    Page("POST", "/content/deals/{deal_id}/stats/report-link", LEAD_ONLY),
    # Issue 10: the Instagram connection form (the analyst reads the status; the token is never shown) and the
    # upload of media to an item; `/media/{token}` is public, the signed link its credential (a forged one is 404).
    Page("GET", "/content/deals/{deal_id}/instagram", PAGE_READ_ALL),
    Page("POST", "/content/deals/{deal_id}/instagram", LEAD_ONLY,
         form={"ig_user_id": "17841400000000777", "access_token": "page-matrix-token"}),
    Page("POST", "/content/deals/{deal_id}/instagram/test", LEAD_ONLY),
    Page("POST", "/content/deals/{deal_id}/instagram/disconnect", LEAD_ONLY),
    Page("POST", "/content/items/{item_id}/media", LEAD_ONLY, upload=True, form={"plan_id": "{plan_id}"}),
    Page("GET", "/media/{token}", ANYONE),
    # The client's pages: the signed link is the credential (a forged one is refused whoever asks).
    Page("GET", "/approve/{token}", ANYONE), Page("POST", "/approve/{token}", ANYONE, form={"decision": "approve"}),
    Page("POST", "/approve/{token}/requests", ANYONE, form={"request_text": "page matrix"}),
    Page("GET", "/report/{token}", ANYONE),
    # Monitoring (gateway/pages/monitoring.py): monitoring staff and the lead; the foreign account's mention,
    # feed and keyword rule (the pages name client accounts by the client's name: they may see it).
    Page("GET", "/monitoring", TRIAGE_PAGES), Page("GET", "/nav/mentions", TRIAGE_PAGES),
    Page("POST", "/monitoring/mentions/{mention_id}/dismiss", TRIAGE_PAGES, form={"reason": "spam"}),
    Page("POST", "/monitoring/mentions/{mention_id}/convert", TRIAGE_PAGES),
    Page("GET", "/monitoring/new", TRIAGE_PAGES),
    Page("POST", "/monitoring/new", TRIAGE_PAGES, form={"url": "https://forum.example/t/page-matrix",
                                                       "source_name": "Page matrix", "text": "page matrix"}),
    Page("GET", "/monitoring/sources", TRIAGE_PAGES),
    Page("POST", "/monitoring/sources", TRIAGE_PAGES, form={"name": "Page matrix feed",
                                                           "url": "http://127.0.0.1:9/page-matrix.rss"}),
    Page("POST", "/monitoring/sources/{source_id}/delete", TRIAGE_PAGES),
    Page("POST", "/monitoring/rules", TRIAGE_PAGES, form={"keywords": "pagematrixmention"}),
    Page("POST", "/monitoring/rules/{keyword_rule_id}/delete", TRIAGE_PAGES),
    # The website form (issue 11): public and embeddable; its own signed form token instead of the session's.
    Page("GET", "/f/{slug}", ANYONE),
    Page("POST", "/f/{slug}", ANYONE, form={"_form": "{webform_token}", "name": "Page Matrix",
                                             "contact": "matrix@example.com", "message": "page matrix"}),
    # The care inbox (issue 11): agents see the accounts they serve (agent1 does not serve the foreign one),
    # monitoring reads; the lead alone connects channel accounts; the lead and senior agents keep templates.
    Page("GET", "/inbox", INBOX_PAGES),
    Page("GET", "/inbox/stream", INBOX_PAGES, send=False),   # an endless event stream (test_inbox_pages.py)
    Page("GET", "/inbox/{conversation_id}", INBOX_PAGES, sees=INBOX_PAGE_SEES),
    Page("GET", "/inbox/{conversation_id}/thread", INBOX_PAGES, sees=INBOX_PAGE_SEES),
    Page("GET", "/inbox/{conversation_id}/files/{file_id}", INBOX_PAGES, sees=INBOX_PAGE_SEES),
    Page("POST", "/inbox/{conversation_id}/reply", INBOX_PAGE_WRITERS, sees=INBOX_SENIORS, form={"text": "page matrix"}),
    Page("POST", "/inbox/{conversation_id}/note", INBOX_PAGE_WRITERS, sees=INBOX_SENIORS, form={"note": "page matrix"}),
    Page("POST", "/inbox/{conversation_id}/assign", INBOX_PAGE_WRITERS, sees=INBOX_SENIORS, form={"agent": ""}),
    Page("POST", "/inbox/{conversation_id}/status", INBOX_PAGE_WRITERS, sees=INBOX_SENIORS, form={"status": "open"}),
    Page("POST", "/inbox/{conversation_id}/tags", INBOX_PAGE_WRITERS, sees=INBOX_SENIORS, form={"add": "matrix"}),
    Page("POST", "/inbox/{conversation_id}/category", INBOX_PAGE_WRITERS, sees=INBOX_SENIORS,
         form={"category": "matrix"}),
    Page("POST", "/inbox/{conversation_id}/priority", INBOX_PAGE_WRITERS, sees=INBOX_SENIORS,
         form={"priority": "normal"}),
    Page("POST", "/inbox/{conversation_id}/checked", INBOX_PAGE_WRITERS, sees=INBOX_SENIORS),
    Page("POST", "/inbox/{conversation_id}/quality", INBOX_SENIORS, form={"score": "4"}),
    Page("POST", "/inbox/{conversation_id}/ask", INBOX_PAGE_WRITERS, sees=INBOX_SENIORS,
         form={"question": "page matrix?"}),
    Page("GET", "/inbox/channels", LEAD_ONLY),
    Page("POST", "/inbox/channels", LEAD_ONLY, form={"kind": "webform", "name": "page matrix"}),
    Page("POST", "/inbox/channels/{channel_id}/register-webhook", LEAD_ONLY),
    Page("GET", "/inbox/templates", INBOX_SENIORS),
    Page("POST", "/inbox/templates", INBOX_SENIORS, form={"title": "page matrix", "body": "page matrix"}),
    Page("POST", "/inbox/templates/{template_id}", INBOX_SENIORS, form={"title": "page matrix", "body": "x"}),
    Page("POST", "/inbox/templates/{template_id}/delete", INBOX_SENIORS),
    # The care team (issues 11, 12): the lead and senior agents set shifts, caps and accounts (only the lead names
    # teams), analysts read; a bad cap is refused before anything is sent.
    Page("GET", "/care/team", frozenset({"lead", "senior_agent", "analyst"})),
    Page("POST", "/care/team/{login}", INBOX_SENIORS, form={"cap": "page matrix"}),
    # Staff who leave (the lead): reactivating an active account changes nothing.
    Page("POST", "/staff/{login}/active", LEAD_ONLY, form={"active": "1"}),
    Page("POST", "/staff/{login}/telegram", LEAD_ONLY, form={"telegram_chat_id": "page matrix"}),
    # The group SOP (issue 13): the lead and senior agents edit groups, rules and the calendar; analysts read
    # groups, tasks and reports; whoever may own a group has My pushes. Objects by id are absent (404). Forms that
    # would change something are sent invalid (refused with the reason, nothing written).
    Page("GET", "/groups", SOP_PAGE_READ), Page("GET", "/groups/{group_id}", SOP_PAGE_READ),
    Page("POST", "/groups", INBOX_SENIORS, form={"title": "", "external_id": ""}),
    Page("POST", "/groups/bulk", INBOX_SENIORS),
    Page("POST", "/groups/{group_id}", INBOX_SENIORS, form={"title": "page matrix"}),
    Page("GET", "/my-pushes", PUSH_OWNER_PAGES), Page("POST", "/my-pushes/{push_id}/sent", PUSH_OWNER_PAGES),
    Page("GET", "/sop-files/{file_id}", PUSH_OWNER_PAGES),
    Page("GET", "/sop/rules", INBOX_SENIORS), Page("GET", "/sop/rules/new", INBOX_SENIORS),
    Page("GET", "/sop/rules/{rule_id}", INBOX_SENIORS),
    Page("POST", "/sop/rules", INBOX_SENIORS, form={"name": ""}),
    Page("POST", "/sop/rules/{rule_id}", INBOX_SENIORS, form={"name": ""}),
    Page("POST", "/sop/rules/{rule_id}/pause", INBOX_SENIORS), Page("POST", "/sop/rules/{rule_id}/resume", INBOX_SENIORS),
    Page("POST", "/sop/settings", LEAD_ONLY, form={"monthly_quota": "page matrix"}),
    Page("GET", "/sop/calendar", INBOX_SENIORS), Page("POST", "/sop/calendar", INBOX_SENIORS, form={"title": ""}),
    Page("POST", "/sop/calendar/{entry_id}/delete", INBOX_SENIORS),
    Page("GET", "/sop/tasks", SOP_PAGE_READ), Page("GET", "/sop/tasks/{task_id}", SOP_PAGE_READ),
    Page("POST", "/sop/tasks/{task_id}/pushes/{push_id}/retarget", LEAD_ONLY),
    Page("GET", "/sop/reports", SOP_PAGE_READ), Page("GET", "/sop/reports.csv", SOP_PAGE_READ),
    # The client's answer to "ask the client" (EN-5): the signed link is the credential.
    Page("GET", "/answer/{token}", ANYONE), Page("POST", "/answer/{token}", ANYONE, form={"answer": "page matrix"}),
]


def gateway_page_routes(tmp_path) -> set[tuple[str, str]]:
    """(method, path) of every page route of the gateway app (its own route list, not a copy)."""
    from gateway.app import create_app
    from litestar.routes import HTTPRoute
    from shared.testing import make_settings

    app = create_app(make_settings("gateway", database_url=f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"),
                     background=False)
    found = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(("/static", "/health", "/schema", "/api/",
                                                                      "/webhooks/")):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods - {"HEAD", "OPTIONS"}:
                found.add((method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)))
    return found


def test_issue8_the_page_matrix_covers_every_page_route_of_the_gateway(tmp_path) -> None:
    found = gateway_page_routes(tmp_path)
    table = {(p.method, p.path) for p in PAGES}
    assert not sorted(found - table), f"page routes without a permission row in PAGES: {sorted(found - table)}"
    assert not sorted(table - found), f"rows for pages the gateway no longer has: {sorted(table - found)}"


def page_request(client: httpx.Client, page: Page, ids: dict[str, str], csrf: str) -> httpx.Response:
    url = concrete(page.path, {**ids, "manager": FOREIGN_MANAGER})
    if page.method == "GET":
        params = {"manager": FOREIGN_MANAGER} if page.path == "/reports/funnel" else None
        if page.query:
            params = {k: concrete(v, ids) for k, v in page.query.items()}
        return client.get(url, params=params)
    data = {"_csrf": csrf, **{k: concrete(v, ids) for k, v in page.form.items()}}
    files = None
    if page.upload:
        files = ({"file": ("deals.csv", IMPORT_HEADER.encode(), "text/csv")} if page.path == "/imports"
                 else {"file": ("stats.csv", b"date;reach\n", "text/csv")} if page.path.endswith("/stats/import")
                 else {"file": ("call.mp3", b"ID3" + b"\0" * 256, "audio/mpeg")})
    # htmx, as the pages send it: a refused reveal is then a 403 fragment, not a whole page.
    return client.post(url, data=data, files=files, headers={"HX-Request": "true", "X-CSRF-Token": csrf})


def test_issue8_role_route_object_matrix_through_the_gateway_pages(stack: Stack) -> None:
    ids = ids_of(stack)
    markers = [FOREIGN_NAME, FOREIGN_LEAD_NAME, FOREIGN_CAPTION]
    tally = Tally()
    for role in ("anonymous", *STAFF):
        client = stack.browser(None if role == "anonymous" else role)
        csrf = csrf_of(client.get("/login").text) if role == "anonymous" else stack.csrf(client)
        for page in PAGES:
            if not page.send:
                continue
            response = page_request(client, page, ids, csrf)
            where = f"{role} {page.method} {page.path} -> {response.status_code}"
            assert response.status_code < 500 or response.status_code == 503, where
            location = response.headers.get("location", "") + response.headers.get("hx-redirect", "")
            success = response.status_code < 400 and not location.startswith("/login")
            tally.judge(page, role, response.status_code, response.text, success, markers)
        client.close()
    tally.record("role x page x object, gateway pages")
    assert not tally.holes, "\n".join(tally.holes)



def test_en6_a_care_agent_reads_and_answers_only_the_accounts_they_serve(stack: Stack) -> None:
    """The control of the matrix's care-agent rows (EN-6): the foreign conversation is refused to agent1 because
    agent1 does not serve its account, not because care agents see nothing — another care agent given the
    account reads it and may tag it; taking the account away refuses them again."""
    conversation = stack.foreign.engagement_ids["conversation_id"]
    account = stack.foreign.deal_id   # a channel of a deal is that deal's client account
    url = f"{stack.urls['engagement']}{E}/conversations/{conversation}"
    serving = staff_headers("agent9", "care_agent", "engagement")
    stack.api("engagement", "PUT", "/staff/agent9/accounts", json={"accounts": [account]})
    seen = httpx.get(url, headers=serving, timeout=30)
    assert seen.status_code == 200 and FOREIGN_MESSAGE in seen.text, (seen.status_code, seen.text[:200])
    tagged = httpx.post(f"{url}/tags", json={"add": ["served"]}, headers=serving, timeout=30)
    assert tagged.status_code == 200, tagged.text[:200]
    listed = httpx.get(f"{stack.urls['engagement']}{E}/conversations", headers=serving, timeout=30)
    assert conversation in listed.text
    other = httpx.get(url, headers=staff_headers(ROLE_LOGINS["care_agent"], "care_agent", "engagement"), timeout=30)
    assert other.status_code == 404 and FOREIGN_MESSAGE not in other.text, other.status_code
    stack.api("engagement", "PUT", "/staff/agent9/accounts", json={"accounts": []})
    gone = httpx.get(url, headers=serving, timeout=30)
    assert gone.status_code == 404 and FOREIGN_MESSAGE not in gone.text, gone.status_code
    record("care agent: served account read, unserved refused (EN-6 control)", 2, 2)
