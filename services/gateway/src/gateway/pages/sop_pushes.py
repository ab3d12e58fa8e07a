"""My pushes (issue 13, EN-11): a group owner's pending pushes (oldest first, overdue marked) and sent ones; the
prepared text to copy in one click (static/js/pushes.js; without JS the text is in a readonly textarea to
select), the attachments downloaded through the gateway, and "Sent" that records the time.

The navigation badge of My pushes is `/nav/counts?for=pushes` (gateway.pages.dashboard), polled by htmx.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import _
from gateway.pages.sop_common import PUSH_OWNERS, channel_label, reason_text
from gateway.rendering import page, redirect
from gateway.service_client import ServiceClient, ServiceError
from gateway.ui import page_number, page_of, parse_ts

Services = NamedDependency[ServiceClient]
# The service pages newest first; the pending ones fit one long page, shown oldest first (the owner starts there).
PER_PAGE = {"pending": 100, "sent": 20}
# A push still pending an hour after its due time is marked overdue: the SOP's moment (a morning card, a
# flash-sale link) is passing, although the push only expires after the lead's expiry window.
OVERDUE_AFTER = timedelta(hours=1)
TABS = ("pending", "sent")


def _items(answer: Any) -> tuple[list[dict[str, Any]], int]:
    if isinstance(answer, dict):
        return answer.get("items", []), int(answer.get("total", len(answer.get("items", []))))
    return answer or [], len(answer or [])


async def pushes_context(request: Request, services: ServiceClient, tab: str, number: int,
                         notice: str = "", errors: dict[str, str] | None = None) -> dict[str, Any]:
    answer = await services.get("engagement", "/pushes", params={"owner": "me", "status": tab, "page": number,
                                                                 "per_page": PER_PAGE[tab]})
    items, total = _items(answer)
    now = request.app.state.runtime.clock.now()
    for p in items:
        due = parse_ts(p.get("due_at"))
        p["overdue"] = tab == "pending" and due is not None and now - due > OVERDUE_AFTER
        content = p.get("content") or {}
        p["text"] = content.get("text", "")
        p["files"] = [a for a in content.get("attachments", []) if a.get("kind") != "link" and a.get("file_id")]
        p["links"] = [a for a in content.get("attachments", []) if a.get("kind") == "link"]
        p["channel_text"] = channel_label(p.get("channel_kind"))
        p["reason_text"] = reason_text(p) if p.get("status") == "failed" else ""
    items.sort(key=lambda p: p.get("due_at") or "", reverse=tab != "pending")
    try:
        pending = int((await services.get("engagement", "/pushes/count", params={"owner": "me"}))["pending"])
    except (ServiceError, KeyError, TypeError, ValueError):
        pending = None
    return {"tab": tab, "pushes": page_of(items, number, PER_PAGE[tab], total), "pending_count": pending,
            "notice": notice, "errors": errors or {}, "query": {"tab": tab}}


@get("/my-pushes", name="my_pushes", opt=PUSH_OWNERS)
async def my_pushes(request: Request, services: Services, tab: str = "pending") -> Response:
    tab = tab if tab in TABS else "pending"
    number = page_number(request.query_params.get("page"))
    return page(request, "pages/my_pushes.html", await pushes_context(request, services, tab, number),
                block="pushes")


@post("/my-pushes/{push_id:str}/sent", name="my_push_sent", opt=PUSH_OWNERS)
async def push_sent(request: Request, services: Services, push_id: FromPath[str]) -> Response:
    """"Sent": the owner (or the lead) says the push is in the group; the service records the time."""
    errors: dict[str, str] = {}
    try:
        await services.post("engagement", f"/pushes/{push_id}/sent")
    except ServiceError as exc:
        if exc.status_code == 403:
            errors[push_id] = _("This push is another owner's.")
        elif exc.status_code == 409:
            errors[push_id] = _("This push can no longer be marked sent: it has failed or was sent already.")
        elif exc.status_code == 404:
            errors[push_id] = _("There is no such push.")
        else:
            raise
    if not errors and request.headers.get("hx-request") != "true":
        return redirect(request, "/my-pushes")
    ctx = await pushes_context(request, services, "pending", 1, errors=errors,
                               notice="" if errors else _("Marked sent. It is in the Sent list now."))
    return page(request, "pages/my_pushes.html", ctx, block="pushes", status_code=409 if errors else 200)


@get("/sop-files/{file_id:str}", name="sop_file", opt=PUSH_OWNERS)
async def sop_file(services: Services, file_id: FromPath[str]) -> Response:
    """An attachment's bytes from the engagement service, always as a download (never rendered here)."""
    upstream = await services.raw("GET", "engagement", f"/sop-files/{file_id}")
    disposition = upstream.headers.get("content-disposition") or "attachment"
    if not disposition.lower().startswith("attachment"):
        disposition = "attachment"
    content_type = upstream.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    return Response(upstream.content, media_type=content_type or "application/octet-stream",
                    headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff",
                             "Cache-Control": "private, max-age=3600"})


routes = [my_pushes, push_sent, sop_file]
