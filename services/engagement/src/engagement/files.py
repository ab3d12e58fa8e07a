"""Attachments of inbound messages (issue 11): what the adapters noted becomes `MessageFile` rows with the message
(`add_for`, called where the message is written), the conversation's JSON lists them under each message
(`attach_to`), and `GET /conversations/{id}/files/{file_id}` serves the bytes to whoever may read the
conversation (engagement.access: 404 otherwise, as for the conversation).

Serving: `Content-Disposition: inline` only for raster images (PNG, JPEG, GIF, WebP — not SVG, which can carry
script); everything else is `attachment`, so a customer's `.html` is downloaded, never rendered in our origin.
Always `X-Content-Type-Options: nosniff`, the stored content type (a malformed one is
`application/octet-stream`) and a `sandbox` policy. The name travels as RFC 6266 / 5987 `filename*=UTF-8''…`
with an ASCII `filename=` beside it for old clients.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from litestar import Response, get
from litestar.params import FromPath
from shared.auth import Actor
from shared.errors import NotFound
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import services
from engagement.channels import Inbound, InboundFile
from engagement.file_models import MessageFile
from engagement.models import Message, new_id
from shared import messages as M

MAX_BYTES = 20 * 1024 * 1024       # the Bot API's download limit; the same for every channel
MAX_PER_MESSAGE = 20               # a VK message carries at most 10, an e-mail rarely more
PENDING, STORED, FAILED, REMOVED = "pending", "stored", "failed", "removed"
TOO_LARGE, REFUSED, GAVE_UP, BAD_URL = "too_large", "refused", "gave_up", "bad_url"
RASTER = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
OCTET = "application/octet-stream"
REMOVE_BATCH = 500                 # files whose bytes are removed in one transaction
FILES_FLAG = "engagement.files"     # a commit that added pending files wakes the fetcher
TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


def clean_type(value: str | None) -> str:
    """A content type as we keep it: lower case, without parameters; "" when it is not one."""
    kind = str(value or "").split(";", 1)[0].strip().lower()
    return kind if TYPE.match(kind) else ""


def resolved_type(declared: str | None, received: str | None, name: str) -> str:
    """The platform's type, else the download's, else a guess from the name, else octet-stream."""
    return clean_type(declared) or clean_type(received) or clean_type(mimetypes.guess_type(name)[0]) or OCTET


def clean_name(name: str | None, fallback: str = "file") -> str:
    """A file name to show and to offer: the last path segment, no control characters, at most 200."""
    base = re.split(r"[\\/]", str(name or ""))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return base[:200] or fallback


def _row(message: Message, position: int, f: InboundFile, now: datetime) -> MessageFile:
    row = MessageFile(id=new_id(), message_id=message.id, conversation_id=message.conversation_id,
                      channel_id=message.channel_id, position=position, kind=f.kind[:20],
                      name=clean_name(f.name, f.kind or "file"), content_type=clean_type(f.content_type),
                      size=f.size, source={}, state=PENDING, tries=0, next_try_at=now, created_at=now)
    if f.data is not None:   # an e-mail part: here already
        row.next_try_at, row.size = None, len(f.data)
        row.content_type = resolved_type(f.content_type, None, row.name)
        if len(f.data) > MAX_BYTES:
            row.state, row.reason_code = FAILED, TOO_LARGE
            row.reason = f"larger than {MAX_BYTES // (1024 * 1024)} MB"
        else:
            row.state, row.data, row.stored_at = STORED, f.data, now
    elif f.size is not None and f.size > MAX_BYTES:   # the platform says so: no use fetching it
        row.state, row.next_try_at, row.reason_code = FAILED, None, TOO_LARGE
        row.reason = f"larger than {MAX_BYTES // (1024 * 1024)} MB ({f.size} bytes)"
    else:
        row.source = {"file_id": f.file_id} if f.file_id else {"url": f.url or ""}
    return row


def add_for(session: AsyncSession, message: Message, item: Inbound, now: datetime) -> None:
    """The files a new inbound message carries, beside it in its transaction; pending ones wake the fetcher
    after the commit."""
    for position, f in enumerate(item.attachments[:MAX_PER_MESSAGE]):
        row = _row(message, position, f, now)
        session.add(row)
        if row.state == PENDING:
            session.info[FILES_FLAG] = True


MAX_PER_REPLY = 10                 # a Telegram album's and a VK message's limit


def reply_file_kind(content_type: str) -> str:
    """How a reply's file goes out: an image or a video as such (a Telegram photo or album), the rest a document."""
    if content_type in RASTER:
        return "image"
    return "video" if content_type in ("video/mp4", "video/quicktime") else "file"


def add_outgoing(session: AsyncSession, message: Message, uploads: list[tuple[str, str, bytes]],
                 now: datetime) -> None:
    """An agent's reply's files (name, declared type, bytes), stored with the reply: the sender sends them and the
    conversation lists them like a customer's."""
    for position, (name, content_type, data) in enumerate(uploads):
        clean = clean_name(name)
        kind = reply_file_kind(resolved_type(content_type, None, clean))
        session.add(_row(message, position, InboundFile(kind=kind, name=clean, content_type=content_type,
                                                        data=data), now))


def file_out(row: Any) -> dict[str, Any]:
    out = {"id": row.id, "name": row.name, "content_type": row.content_type or resolved_type("", None, row.name),
           "size": row.size, "state": row.state}
    if row.state == FAILED:
        out["reason_code"], out["reason"] = row.reason_code, row.reason
    return out


async def attach_to(session: AsyncSession, messages: list[dict[str, Any]]) -> None:
    """Give each message of a conversation's JSON its `attachments` (one query, without the bytes)."""
    ids = [m["id"] for m in messages]
    by_message: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        columns = (MessageFile.id, MessageFile.message_id, MessageFile.name, MessageFile.content_type,
                   MessageFile.size, MessageFile.state, MessageFile.reason_code, MessageFile.reason)
        rows = await session.execute(select(*columns).where(MessageFile.message_id.in_(ids))
                                     .order_by(MessageFile.message_id, MessageFile.position))
        for row in rows:
            by_message[row.message_id].append(file_out(row))
    for m in messages:
        m["attachments"] = by_message.get(m["id"], [])


async def remove_old(session: AsyncSession, now: datetime, keep_days: int) -> int:
    """Remove the bytes of up to REMOVE_BATCH files stored more than `keep_days` ago (0: kept for ever); how many.

    Choice (ENGAGEMENT_FILE_KEEP_DAYS, 365 by default): customers' files are personal data the agency holds only
    to answer them — a year covers a client's yearly renewal and a dispute about a conversation. The file stays
    listed (name, size, "removed") so the conversation still reads as it happened."""
    if keep_days <= 0:
        return 0
    cutoff = now - timedelta(days=keep_days)
    ids = list((await session.execute(select(MessageFile.id).where(
        MessageFile.state == STORED, MessageFile.stored_at < cutoff).limit(REMOVE_BATCH))).scalars())
    if ids:
        await session.execute(update(MessageFile).where(MessageFile.id.in_(ids)).values(
            state=REMOVED, data=None, reason_code=None, reason=None))
    return len(ids)


def disposition(content_type: str, name: str) -> str:
    """`inline` for a raster image only, else `attachment`; the name as RFC 5987 UTF-8 and an ASCII fallback."""
    stem, dot, ext = name.rpartition(".") if "." in name.strip(".") else (name, "", "")
    stem, ext = (re.sub(r"[^A-Za-z0-9._ ()-]", "_", unicodedata.normalize("NFKD", part).encode("ascii", "ignore")
                        .decode()).strip(" ._") for part in (stem, ext))
    ascii_name = (stem or "file") + (f".{ext}" if dot and ext else "")
    how = "inline" if content_type in RASTER else "attachment"
    return f"{how}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def served(data: bytes, content_type: str, name: str) -> Response:
    kind = clean_type(content_type) or OCTET
    return Response(data, media_type=kind, headers={
        "Content-Disposition": disposition(kind, name), "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "private, max-age=86400"})


@get("/conversations/{conversation_id:str}/files/{file_id:str}")
async def get_file(session: AsyncSession, actor: Actor, conversation_id: FromPath[str],
                   file_id: FromPath[str]) -> Response:
    """A stored file of the conversation, to whoever may read the conversation (404 otherwise, and for a file
    not stored: pending or failed)."""
    conversation = await services.get_conversation(session, actor, conversation_id)
    row = (await session.execute(select(MessageFile.name, MessageFile.content_type, MessageFile.data).where(
        MessageFile.id == file_id, MessageFile.conversation_id == conversation.id,
        MessageFile.state == STORED))).first()
    if row is None or row.data is None:
        raise M.refusal(NotFound, None, M.INBOX_FILE_NOT_FOUND)
    return served(row.data, row.content_type, row.name)


routes = [get_file]
