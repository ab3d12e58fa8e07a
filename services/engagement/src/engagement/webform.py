"""The website form (issue 11 §website form): the gateway's public page `/f/{slug}` hands a visitor's message to
`POST /api/engagement/webform/{slug}` with its integration credential; it is stored raw (a `Delivery`) before
the answer, and the inbound processor turns it into a conversation like any channel's message.

- One message per form render: the gateway's `submission_id` (from the signed form token) is the dedupe key,
  so a double click or a resent form is stored once.
- Per-IP rate limit, counted on the stored deliveries (so it holds across gateway and engagement replicas):
  at most `ENGAGEMENT_WEBFORM_MAX_PER_IP` (5) messages per IP in `ENGAGEMENT_WEBFORM_WINDOW_MINUTES` (10);
  over it → 429 `webform_rate_limited` (the gateway translates it). The IP itself is kept only as a hash.
- The answer goes back by e-mail through the e-mail channel named in the form's `email_channel_id` (its SMTP,
  its address as sender, the form's name as sender name; the customer's reply threads back into the same
  conversation by our Message-ID or the reply+token address). A visitor who left only a phone number cannot
  be answered in writing: the conversation says so (`unreachable`), and the agent calls them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import timedelta
from typing import Any

import msgspec
from shared.auth import Actor
from shared.clock import Clock
from shared.db import Database
from shared.errors import DomainError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access
from engagement.channels import Inbound
from engagement.channels import email as mail_channel
from engagement.models import Channel, Conversation, Delivery
from engagement.services import webform_by_slug
from shared import messages as M

EMAIL_RE = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]{2,}")
PHONE_RE = re.compile(r"\+?[\d\s()\-.]{7,25}")
SUBMISSION_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_NAME, MAX_CONTACT, MAX_MESSAGE = 200, 200, 5000


class WebformIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    contact: str
    message: str
    submission_id: str
    ip: str = ""


class RateLimited(DomainError):
    status_code = 429


def _limits() -> tuple[int, timedelta]:
    return (int(os.environ.get("ENGAGEMENT_WEBFORM_MAX_PER_IP", "5")),
            timedelta(minutes=float(os.environ.get("ENGAGEMENT_WEBFORM_WINDOW_MINUTES", "10"))))


def contact_kind(contact: str) -> str | None:
    """"email", "phone", or None when it is neither."""
    if EMAIL_RE.fullmatch(contact):
        return "email"
    if PHONE_RE.fullmatch(contact) and 7 <= sum(c.isdigit() for c in contact) <= 15:
        return "phone"
    return None


def validate(data: WebformIn) -> dict[str, str]:
    """The cleaned fields; a 422 naming every bad field."""
    name, contact, message = data.name.strip(), data.contact.strip(), data.message.strip()
    errors = []
    if not name:
        errors.append(M.item("name", M.REQUIRED))
    elif len(name) > MAX_NAME:
        errors.append(M.item("name", M.WEBFORM_TOO_LONG, limit=MAX_NAME))
    if not contact:
        errors.append(M.item("contact", M.REQUIRED))
    elif len(contact) > MAX_CONTACT or contact_kind(contact) is None:
        errors.append(M.item("contact", M.WEBFORM_CONTACT))
    if not message:
        errors.append(M.item("message", M.REQUIRED))
    elif len(message) > MAX_MESSAGE:
        errors.append(M.item("message", M.WEBFORM_TOO_LONG, limit=MAX_MESSAGE))
    if not SUBMISSION_RE.fullmatch(data.submission_id):
        errors.append(M.item("submission_id", M.WEBFORM_SUBMISSION_ID))
    if errors:
        raise DomainError("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    return {"name": name, "contact": contact, "message": message}


def _ip_key(ip: str) -> str:
    return hashlib.sha256(f"zabota-webform:{ip}".encode()).hexdigest()[:16]


async def form_info(session: AsyncSession, actor: Actor, slug: str) -> dict[str, Any]:
    access.require_roles(actor, access.INTEGRATION, access.LEAD)
    channel = await webform_by_slug(session, slug)
    return {"slug": slug, "name": channel.name}


async def submit(db: Database, actor: Actor, slug: str, data: WebformIn, clock: Clock) -> dict[str, Any]:
    """Store the visitor's message (raw, deduplicated by submission id) and return at once."""
    access.require_roles(actor, access.INTEGRATION)
    fields = validate(data)
    now = clock.now()
    ip_key = _ip_key(data.ip.strip() or "unknown")
    limit, window = _limits()
    async with db.transaction() as session:
        channel = await webform_by_slug(session, slug)
        recent = (await session.execute(select(func.count()).select_from(Delivery).where(
            Delivery.kind == "webform", Delivery.dedupe_key.like(f"webform:{ip_key}:%"),
            Delivery.received_at > now - window))).scalar_one()
        if recent >= limit:
            raise RateLimited(f"too many messages from this address: at most {limit} in "
                              f"{int(window.total_seconds() // 60)} minutes", field="ip",
                              errors=[M.item("ip", M.WEBFORM_RATE_LIMITED)])
        body = json.dumps({**fields, "submission_id": data.submission_id, "at": now.isoformat()},
                          ensure_ascii=False).encode()
        insert = (pg_insert if db.dialect == "postgresql" else sqlite_insert)(Delivery.__table__)
        inserted = (await session.execute(insert.values(
            kind="webform", channel_id=channel.id, dedupe_key=f"webform:{ip_key}:{data.submission_id}",
            body=body, received_at=now, next_attempt_at=now, attempts=0, outcome="")
            .on_conflict_do_nothing(index_elements=["dedupe_key"]))).rowcount > 0
    return {"accepted": True, "duplicate": not inserted}


async def process_submission(session: AsyncSession, channel: Channel, raw: bytes, clock: Clock) -> str:
    from engagement.inbound import record_inbound  # the processor imports this module

    body = json.loads(raw)
    contact = str(body["contact"]).strip()
    kind = contact_kind(contact)
    token = mail_channel.thread_token(f"<webform.{body['submission_id']}@zabota>")
    subject = f"{channel.name}: {body['message'][:60]}"
    item = Inbound(
        thread_kind="webform", thread_key=f"mail:{token}", external_id=f"webform:{body['submission_id']}",
        text=str(body["message"]), at=clock.now(), author=str(body["name"]), customer_name=str(body["name"]),
        customer_handle=contact.lower() if kind == "email" else contact,
        reply_target={"to": contact.lower() if kind == "email" else None, "name": str(body["name"]),
                      "subject": subject, "in_reply_to": None, "references": [], "token": token,
                      "phone": contact if kind == "phone" else None},
        raw=body)
    message = await record_inbound(session, channel, item, clock)
    if message is None:
        return "already stored"
    if kind != "email":
        conversation = await session.get(Conversation, message.conversation_id)
        conversation.unreachable = f"the visitor left a phone number, not an e-mail address: {contact}"[:500]
    return "1 stored"
