"""Private notes on a conversation with @mentions, the conversation's category and priority, and the inbox
counts of one staff member (issue 11 §conversations; EN-2, EN-5).

- A note is never sent to the customer. `@login` words in it (letters, digits, `.`, `_`, `-`) are mentions:
  each mentioned staff member (not the author) gets it in their counts until they open the conversation
  (`POST …/seen`, which the gateway's conversation page sends).
- Category: a short word the team agrees on (templates are kept per category); empty clears it.
- Priority: low | normal | high | urgent (the inbox can filter by both).
- `GET /counts`: mine open, mine waiting for an answer (the customer wrote last), mine waiting for the client,
  unassigned (not resolved) among what the caller sees, unread mentions.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import get, post
from litestar.params import FromPath
from shared.auth import Actor
from shared.service import Runtime
from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, rules
from engagement.models import Conversation, Note, NoteMention, new_id
from engagement.services import get_conversation
from shared import messages as M

PRIORITIES = ("low", "normal", "high", "urgent")
MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9][A-Za-z0-9._-]{0,99})")
MAX_NOTE = 4000


class NoteIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class CategoryIn(msgspec.Struct, forbid_unknown_fields=True):
    category: str | None


class PriorityIn(msgspec.Struct, forbid_unknown_fields=True):
    priority: str


def mentions_in(text: str) -> list[str]:
    seen: list[str] = []
    for login in MENTION.findall(text):
        login = login.rstrip("._-")
        if login and login not in seen:
            seen.append(login)
    return seen


def note_out(n: Note) -> dict[str, Any]:
    return {"id": n.id, "author": n.author, "text": n.text, "at": n.at, "mentions": list(n.mentions or [])}


async def notes_of(session: AsyncSession, conversation_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(select(Note).where(Note.conversation_id == conversation_id)
                                 .order_by(Note.at, Note.id))
    return [note_out(n) for n in rows.scalars()]


@post("/conversations/{conversation_id:str}/notes", status_code=201)
async def add_note(session: AsyncSession, actor: Actor, runtime: Runtime, conversation_id: FromPath[str],
                   data: NoteIn) -> dict[str, Any]:
    access.require_writer(actor)
    c = await get_conversation(session, actor, conversation_id)
    text = data.text.strip()
    if not text:
        raise M.error("text", M.REQUIRED)
    if len(text) > MAX_NOTE:
        raise M.error("text", M.NOTE_TOO_LONG, limit=MAX_NOTE)
    now = runtime.clock.now()
    mentioned = [login for login in mentions_in(text) if login != actor.login]
    note = Note(id=new_id(), conversation_id=c.id, author=actor.login, text=text, at=now, mentions=mentioned)
    session.add(note)
    await session.flush()
    for login in mentioned:
        session.add(NoteMention(note_id=note.id, login=login, conversation_id=c.id, created_at=now))
    await session.flush()
    return note_out(note)


@get("/conversations/{conversation_id:str}/notes")
async def list_notes(session: AsyncSession, actor: Actor, conversation_id: FromPath[str]) -> list[dict[str, Any]]:
    c = await get_conversation(session, actor, conversation_id)
    return await notes_of(session, c.id)


@post("/conversations/{conversation_id:str}/seen", status_code=200)
async def seen(session: AsyncSession, actor: Actor, runtime: Runtime, conversation_id: FromPath[str]) -> dict:
    """The caller opened the conversation: their mentions in it are read."""
    c = await get_conversation(session, actor, conversation_id)
    result = await session.execute(update(NoteMention).where(
        NoteMention.conversation_id == c.id, NoteMention.login == actor.login, NoteMention.read_at.is_(None))
        .values(read_at=runtime.clock.now()))
    return {"id": c.id, "read": result.rowcount or 0}


@post("/conversations/{conversation_id:str}/category", status_code=200)
async def set_category(session: AsyncSession, actor: Actor, conversation_id: FromPath[str],
                       data: CategoryIn) -> dict:
    access.require_writer(actor)
    c = await get_conversation(session, actor, conversation_id)
    category = (data.category or "").strip().lower()
    if len(category) > 50:
        raise M.error("category", M.CATEGORY_TOO_LONG)
    c.category = category or None
    return {"id": c.id, "category": c.category}


@post("/conversations/{conversation_id:str}/priority", status_code=200)
async def set_priority(session: AsyncSession, actor: Actor, conversation_id: FromPath[str],
                       data: PriorityIn) -> dict:
    access.require_writer(actor)
    c = await get_conversation(session, actor, conversation_id)
    if data.priority not in PRIORITIES:
        raise M.error("priority", M.PRIORITY_UNKNOWN, choices=", ".join(PRIORITIES))
    c.priority = data.priority
    return {"id": c.id, "priority": c.priority}


@get("/categories")
async def categories(session: AsyncSession, actor: Actor) -> list[str]:
    """The categories in use (on conversations or templates), for the pickers."""
    from engagement.models import ReplyTemplate

    access.visible_conversations(actor)
    used = set((await session.execute(select(Conversation.category).where(
        Conversation.category.is_not(None)).distinct())).scalars())
    used |= set((await session.execute(select(ReplyTemplate.category).where(
        ReplyTemplate.category != "").distinct())).scalars())
    return sorted(used)


@get("/counts")
async def counts(session: AsyncSession, actor: Actor) -> dict[str, int]:
    visible = access.visible_conversations(actor)
    mine = and_(visible, Conversation.assignee == actor.login)

    async def count(*where: Any) -> int:
        return int((await session.execute(select(func.count()).select_from(Conversation).where(*where)))
                   .scalar_one())

    return {
        "mine_open": await count(mine, Conversation.status == rules.OPEN),
        "mine_awaiting_answer": await count(mine, Conversation.status == rules.OPEN,
                                            Conversation.last_direction == "in"),
        "mine_waiting_client": await count(mine, Conversation.status == rules.WAITING_CLIENT),
        "unassigned": await count(visible, Conversation.assignee.is_(None), Conversation.status != rules.RESOLVED),
        "mentions": int((await session.execute(select(func.count()).select_from(NoteMention).where(
            NoteMention.login == actor.login, NoteMention.read_at.is_(None)))).scalar_one()),
    }


routes = [add_note, list_notes, seen, set_category, set_priority, categories, counts]
