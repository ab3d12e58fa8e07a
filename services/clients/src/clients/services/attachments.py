"""Attachments (CL-11, DESIGN 9): files that exist exactly when their rows do."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

from shared.settings import var_dir
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from clients.models import (
    Attachment,
    Deal,
    Task,
)
from clients.services.core import Ctx, deal_span, history
from shared import messages as M

# ============================================================================ attachments (CL-11, DESIGN 9)

STAGED_FILES = "clients.staged_files"


async def add_attachment(ctx: Ctx, deal: Deal, task_id: str | None, filename: str, content_type: str,
                         content: bytes) -> Attachment:
    """CL-11: a call recording attached to the deal (optionally to one of its tasks).

    DESIGN 9 (never a half-written record): the file is written under a temporary name beside its
    final place and renamed only when the transaction commits; a rollback (a 4xx raised later in the
    request, a failed commit) removes it. So a file exists exactly when its row does."""
    if task_id is not None:
        task = await ctx.session.get(Task, task_id)
        if task is None or task.deal_id != deal.id:
            raise M.error("task_id", M.NO_SUCH_TASK)
    attachment = Attachment(deal_id=deal.id, task_id=task_id, filename=filename, content_type=content_type,
                            size=len(content), sha256=hashlib.sha256(content).hexdigest(), path="",
                            uploaded_by=ctx.actor.login, uploaded_at=ctx.now)
    ctx.session.add(attachment)
    await ctx.session.flush()
    target = var_dir() / "attachments" / deal.id / attachment.id
    stage_file(ctx.session, target, content)
    attachment.path = str(target.relative_to(var_dir()))
    with deal_span(deal, "attachment"):
        history(ctx, deal, ctx.now, "attachment", f"attached {attachment.filename}", code="attachment.added",
                attachment_id=attachment.id, filename=attachment.filename)
    return attachment


def stage_file(session: AsyncSession, target: Path, content: bytes) -> Path:
    """Write `content` to a temporary file beside `target`; it becomes `target` when the session's
    transaction commits and is deleted when it (or the savepoint it was written in) rolls back."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    temp.write_bytes(content)
    sync = session.sync_session
    sync.info.setdefault(STAGED_FILES, []).append((sync.get_nested_transaction() or sync.get_transaction(), temp,
                                                   target))
    return temp


@event.listens_for(Session, "after_commit")
def _publish_staged_files(session: Session) -> None:
    for _transaction, temp, target in session.info.pop(STAGED_FILES, []):
        os.replace(temp, target)


@event.listens_for(Session, "after_soft_rollback")
def _drop_staged_files(session: Session, rolled_back: Any) -> None:
    # Called for every rollback, the outermost one (a failed commit, an error) and a savepoint's
    # (after_rollback would fire for both without saying which).
    staged = session.info.get(STAGED_FILES)
    if not staged:
        return
    kept = []
    for transaction, temp, target in staged:
        inside = transaction
        while inside is not None and inside is not rolled_back:
            inside = inside.parent
        if inside is None:
            kept.append((transaction, temp, target))
        else:
            temp.unlink(missing_ok=True)
    session.info[STAGED_FILES] = kept
