"""The inbox's change feed, for live updates (issue 11: "a new message appears in the open list and the open
conversation within a second").

Every flush of the engagement database that adds or changes a conversation, a message (inbound, a reply, its
delivery state, a file of it stored or failed), a tag, a note or a client question writes one `Change` row per conversation touched, in the
same transaction (a SQLAlchemy `before_flush` hook, so no write path can forget it). The row id is a
monotonic cursor.

`GET /api/engagement/changes?since=<cursor>&wait=<seconds>` is a long poll: it answers at once with the
conversations (visible to the caller) changed after `since`, or waits up to `wait` seconds (at most 25) for one,
checking again at once when this process commits a change (`Database.on_commit`) and at least every second
(a change written by another replica) in short read transactions. Without `since` it answers the current cursor only.

Choice (documented for the gateway): engagement never calls the gateway. The gateway's `/inbox/stream` (SSE)
follows this cursor per open page and tells the browser which conversations changed; the browser re-reads
them. A change row of a transaction that commits after a later id was read is seen at the next signal at the
latest (the pages re-read whole lists, not deltas), so nothing is lost for good. Rows older than a day are
pruned by `prune()` (called by the long poll now and then).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from litestar import get
from shared.auth import Actor
from shared.service import Runtime
from sqlalchemy import delete, event, func, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import NO_VALUE

from engagement import access
from engagement.file_models import MessageFile
from engagement.models import (
    Change,
    ClientQuestion,
    Conversation,
    ConversationTag,
    Message,
    Note,
    NoteMention,
    new_id,
)
from shared import messages as M

MAX_WAIT = 25.0
POLL_SECONDS = 1.0   # a change committed by another replica is seen within this; this replica's at once
CHANGED_FLAG = "engagement.changed"
KEEP = timedelta(days=1)
SKIP_FLAG = "engagement.changes.writing"


def _touched(session: Session) -> set[str]:
    ids: set[str] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Conversation):
            if obj in session.new and not obj.id:
                obj.id = new_id()
            if obj in session.new or _changed(obj):
                if obj.id:
                    ids.add(obj.id)
        elif isinstance(obj, (Message, ConversationTag, Note, ClientQuestion, NoteMention)):
            if obj.conversation_id:
                ids.add(obj.conversation_id)
        elif isinstance(obj, MessageFile) and obj.conversation_id and (
                obj in session.new or inspect(obj).attrs.state.history.has_changes()):
            ids.add(obj.conversation_id)   # a file stored or failed (not each try's bookkeeping)
    return ids


def _changed(obj: Conversation) -> bool:
    """`session.is_modified` over only the attributes that were set (it reads the history of every attribute
    of the row: 15 % of the inbound processor's time): one whose value now differs from the loaded one."""
    state = inspect(obj)
    return any(state.dict.get(key, NO_VALUE) != old for key, old in state.committed_state.items())


@event.listens_for(Session, "before_flush")
def _record_changes(session: Session, flush_context: Any, instances: Any) -> None:
    ids = _touched(session)
    if not ids:
        return
    clock = session.info.get("engagement.clock")
    from shared.clock import utcnow

    now = clock.now() if clock is not None else utcnow()
    for conversation_id in sorted(ids):
        session.add(Change(conversation_id=conversation_id, at=now))
    session.info[CHANGED_FLAG] = True   # after the commit, the long polls of this process wake (`Wakeup`)


class Wakeup:
    """Wakes this process's waiting long polls after a commit that wrote change rows (`Database.on_commit`)."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def fire(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, timeout: float) -> None:
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass


async def install(runtime: Any) -> None:
    """Startup hook: the wake-up of the long polls, fired by commits of change rows."""
    wakeup = Wakeup()
    runtime.state["changes_wakeup"] = wakeup
    runtime.db.on_commit(CHANGED_FLAG, wakeup.fire)


def touch(session: Any, conversation_id: str, now: Any) -> None:
    """For a write the hook cannot see (a bulk `delete()` statement)."""
    session.add(Change(conversation_id=conversation_id, at=now))


async def current_cursor(session: Any) -> int:
    return int((await session.execute(select(func.max(Change.id)))).scalar_one() or 0)


async def changed_since(session: Any, actor: Actor, since: int) -> tuple[int, list[str]]:
    rows = (await session.execute(
        select(Change.id, Change.conversation_id).where(Change.id > since).order_by(Change.id).limit(1000))).all()
    if not rows:
        return since, []
    cursor = rows[-1][0]
    ids = sorted({cid for _, cid in rows})
    visible = set((await session.execute(select(Conversation.id).where(
        Conversation.id.in_(ids), access.visible_conversations(actor)))).scalars())
    return cursor, [cid for cid in ids if cid in visible]


async def prune(session: Any, now: Any) -> None:
    await session.execute(delete(Change).where(Change.at < now - KEEP))


@get("/changes")
async def changes(actor: Actor, runtime: Runtime, since: int | None = None, wait: float = 0.0) -> dict[str, Any]:
    """The long poll (see the module's docstring). Each check is its own short read transaction."""
    access.visible_conversations(actor)   # a signed webhook is refused here too
    if since is not None and since < 0:
        raise M.error("since", M.CHANGES_SINCE)
    if wait < 0:
        raise M.error("wait", M.CHANGES_WAIT)
    wait = min(wait, MAX_WAIT)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        async with runtime.db.transaction() as session:
            if since is None:
                await prune(session, runtime.clock.now())
                return {"cursor": await current_cursor(session), "conversations": []}
            cursor, ids = await changed_since(session, actor, since)
        if ids or loop.time() >= deadline:
            return {"cursor": cursor, "conversations": ids}
        since = cursor   # rows of conversations the caller may not see move the cursor on
        wakeup = runtime.state.get("changes_wakeup")
        pause = min(POLL_SECONDS, max(0.0, deadline - loop.time()))
        if wakeup is not None:
            await wakeup.wait(pause)
        else:
            await asyncio.sleep(pause)


routes = [changes]
