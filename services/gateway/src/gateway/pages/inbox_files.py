"""The files customers sent, on a conversation's page (issue 11: care inbox attachments).

Under each message: a stored raster image (PNG, JPEG, GIF, WebP) as a small thumbnail, any other file as a
download link with its name and size, and a file not fetched yet or that could not be fetched said in words.
Every file is read through `/inbox/{conversation_id}/files/{file_id}`, our own origin (the CSP admits images from
'self' only): the engagement service's bytes streamed as they come, asked as the signed-in staff member, so
whoever may not read the conversation gets the service's 404. The answer is `inline` only for a raster image,
else `attachment` (a customer's HTML or SVG is downloaded, never rendered here), with `nosniff`, the stored
content type and a `sandbox` policy of its own.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import get
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream

from gateway.i18n import N_, _
from gateway.pages.inbox import READERS
from gateway.service_client import ServiceClient

Services = NamedDependency[ServiceClient]
RASTER = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
OCTET = "application/octet-stream"
TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
STATES = {"pending": N_("not downloaded yet"), "failed": N_("could not be downloaded"),
          "removed": N_("removed: customers' files are kept for a limited time")}
REASONS = {"too_large": N_("larger than 20 MB"), "refused": N_("the platform no longer gives it"),
           "gave_up": N_("the platform did not answer"), "bad_url": N_("there is no address to download it from")}


def size_text(size: Any) -> str:
    if not isinstance(size, int) or size < 0:
        return ""
    if size < 1024:
        return _("%(n)s B") % {"n": size}
    if size < 1024 * 1024:
        return _("%(n)s KB") % {"n": max(1, round(size / 1024))}
    return _("%(n)s MB") % {"n": f"{size / (1024 * 1024):.1f}"}


def decorate(conversation: dict[str, Any]) -> dict[str, Any]:
    """What the thread shows of each message's attachments (each at /inbox/{id}/files/{file_id}): a thumbnail or a
    link, the size and the state in the request's language."""
    for message in conversation.get("messages") or []:
        for a in message.get("attachments") or []:
            state = a.get("state")
            a["thumbnail"] = state == "stored" and a.get("content_type") in RASTER
            a["size_text"] = size_text(a.get("size"))
            a["state_text"] = _(STATES[state]) if state in STATES else ""
            reason = REASONS.get(str(a.get("reason_code")))
            a["reason_text"] = _(reason) if reason else ""
    return conversation


def content_type_of(value: str | None) -> str:
    kind = str(value or "").split(";", 1)[0].strip().lower()
    return kind if TYPE.match(kind) else OCTET


def disposition_of(content_type: str, upstream: str | None) -> str:
    """The service's disposition with its file name, `inline` only for a raster image whatever it said."""
    names = str(upstream or "").replace("\r", "").replace("\n", "").partition(";")[2].strip()
    how = "inline" if content_type in RASTER else "attachment"
    return f"{how}; {names}" if names else how


@get("/inbox/{conversation_id:str}/files/{file_id:str}", name="inbox_file", opt=READERS)
async def inbox_file(services: Services, conversation_id: FromPath[str], file_id: FromPath[str]) -> Stream:
    upstream = await services.stream("GET", "engagement", f"/conversations/{conversation_id}/files/{file_id}")
    content_type = content_type_of(upstream.headers.get("content-type"))

    async def body():
        try:
            async for chunk in upstream.aiter_bytes():
                yield chunk
        finally:
            await upstream.aclose()

    return Stream(body(), media_type=content_type, background=BackgroundTask(upstream.aclose), headers={
        "Content-Disposition": disposition_of(content_type, upstream.headers.get("content-disposition")),
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=86400"})


routes = [inbox_file]
