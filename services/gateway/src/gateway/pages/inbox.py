"""The care inbox pages (issue 11): the list, a conversation with its composer, and the live updates.

- `/inbox`: filters mine / unassigned / all, channel, status, tag, client account; search; paging; newest
  activity first. Keyboard: j/k move, Enter opens, r reply, e resolve (static/js/inbox.js).
- `/inbox/{id}`: messages (direction, time in the agency's time zone, the author by full name, delivery state
  with the channel's reason, the files a customer sent: gateway.pages.inbox_files), the composer with templates (variables filled here, inserted with a keystroke),
  private notes with @mentions, assignment (a senior agent or the lead reassigns; a care agent takes an
  unassigned one), status, tags, category, priority, "ask the client". Side panels go into the
  `{% block side_panels %}` of templates/pages/inbox_conversation.html (issue 15 adds its lead panel there).
- `/inbox/stream`: server-sent events. The gateway follows the engagement service's change cursor
  (`GET /api/engagement/changes?since=&wait=`, a long poll, as the signed-in staff member, so only conversations
  they may see) and sends `event: changed` with the conversation ids; inbox.js re-reads the list and the open
  thread. Engagement never calls the gateway.

Customer-written text is always escaped (Jinja autoescape) and links in it are shown as text, never fetched,
previewed or followed. The client account's name for `{client_name}` is read from the clients service with
the gateway's integration token: an agent who may see the conversation may see whose account it is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream
from shared.auth import staff_assertion_headers

from gateway.config import gateway_config
from gateway.i18n import N_, _
from gateway.pages import reply_files
from gateway.rendering import page, redirect, render
from gateway.roles import (
    AD_MANAGER,
    CARE_AGENT,
    CONTENT_MANAGER,
    GROWTH,
    LEAD,
    MONITORING,
    SENIOR_AGENT,
    allow,
)
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable, service_url
from gateway.ui import form_errors, page_number, page_of

Services = NamedDependency[ServiceClient]
# EN-4 (issue 12): content/ad managers and growth specialists check their own clients' comments and Direct twice a
# day — they answer or mark them checked here; the engagement service shows them only the clients they manage.
MANAGERS = (CONTENT_MANAGER, AD_MANAGER, GROWTH)
READERS = allow(LEAD, SENIOR_AGENT, CARE_AGENT, MONITORING, *MANAGERS)
WRITERS = allow(LEAD, SENIOR_AGENT, CARE_AGENT, *MANAGERS)
KEEPERS = allow(LEAD, SENIOR_AGENT)
PAGE_SIZE = 25
SCOPES = ("mine", "unassigned", "all")
STATUSES = ("open", "waiting_client", "resolved")
KINDS = ("instagram", "telegram", "vk", "email", "webform")
PRIORITIES = ("low", "normal", "high", "urgent")
STREAM_WAIT = 20.0          # seconds one long poll of the change feed waits
AGENCY = "agency"


LABELS: dict[str, dict[str, str]] = {
    "status": {"open": N_("Open"), "waiting_client": N_("Waiting for the client"), "resolved": N_("Resolved"),
               "active": N_("Not resolved"), "": N_("Any status")},
    "kind": {"instagram": "Instagram", "telegram": "Telegram", "vk": N_("VK"), "email": N_("E-mail"),
             "webform": N_("Website form")},
    "priority": {"low": N_("Low"), "normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")},
    "scope": {"mine": N_("Mine"), "unassigned": N_("Unassigned"), "all": N_("All")},
    "delivery": {"pending": N_("sending…"), "sent": N_("sent"), "failed": N_("not delivered")},
    "thread": {"ig_comments": N_("comments"), "ig_direct": N_("Direct"), "tg_chat": N_("chat"),
               "vk_dialog": N_("dialog"), "vk_wall": N_("wall comments")},
}


def ilabel(group: str, key: str | None) -> str:
    """A label of the inbox in the request language; an unknown key as it is."""
    text = LABELS.get(group, {}).get(key or "")
    return _(text) if text else (key or "")


def staff_of(request: Request) -> Any:
    return request.state.web.staff


def can_write(request: Request) -> bool:
    return staff_of(request).role in (LEAD, SENIOR_AGENT, CARE_AGENT)


def can_reassign(request: Request) -> bool:
    return staff_of(request).role in (LEAD, SENIOR_AGENT)


# ------------------------------------------------------------------ helpers

async def account_names(request: Request, accounts: set[str]) -> dict[str, str]:
    """Client account (deal id) → the client's name, read as the gateway's integration (see the docstring)."""
    integration = ServiceClient(request.app.state.runtime.state["http"], request.app.state.settings, None)

    async def one(account: str) -> tuple[str, str]:
        if account == AGENCY:
            return account, _("The agency")
        try:
            deal = await integration.get("clients", f"/deals/{account}")
        except (ServiceError, ServiceUnavailable):
            return account, account
        return account, str((deal or {}).get("client_name") or account)

    return dict(await asyncio.gather(*(one(a) for a in sorted(accounts) if a)))


async def care_staff(request: Request) -> list[tuple[str, str]]:
    """(login, name) of the active care and senior agents: whom a conversation can be assigned to."""
    from sqlalchemy import select

    from gateway.models import Staff

    async with request.app.state.runtime.db.engine.connect() as conn:
        rows = await conn.execute(select(Staff.login, Staff.display_name).where(
            Staff.active.is_(True), Staff.role.in_((CARE_AGENT, SENIOR_AGENT))).order_by(Staff.display_name))
        return [(login, name) for login, name in rows]


def query_of(request: Request) -> dict[str, str]:
    keys = ("scope", "channel", "status", "tag", "account", "q", "page", "category", "priority")
    return {k: str(v).strip() for k, v in request.query_params.items() if k in keys and str(v).strip()}


def list_params(request: Request, query: dict[str, str]) -> dict[str, Any]:
    scope = query.get("scope") if query.get("scope") in SCOPES else default_scope(request)
    params: dict[str, Any] = {}
    if scope == "mine":
        params["assignee"] = "me"
    elif scope == "unassigned":
        params["assignee"] = "none"
    status = query.get("status", "active")
    if status in (*STATUSES, "active"):
        params["status"] = status
    for key in ("channel", "tag", "account", "q", "category", "priority"):
        if query.get(key):
            params[key] = query[key]
    return params


def default_scope(request: Request) -> str:
    return "mine" if staff_of(request).role == CARE_AGENT else "all"


async def inbox_context(request: Request, services: ServiceClient, query: dict[str, str]) -> dict[str, Any]:
    params = list_params(request, query)
    page_no = page_number(query.get("page"))
    rows, total = await services.get_page("engagement", "/conversations", params={
        **params, "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    if not rows and total and page_no > 1:   # past the end: the last page
        page_no = max(1, -(-total // PAGE_SIZE))
        rows, total = await services.get_page("engagement", "/conversations", params={
            **params, "limit": PAGE_SIZE, "offset": (page_no - 1) * PAGE_SIZE})
    # Only accounts of conversations the staff member sees are named (an `account=` typed into the address
    # bar is shown as its id: the name of an account one does not serve is not told).
    names = await account_names(request, {r.get("account") or "" for r in rows})
    if query.get("account") and query["account"] not in names:
        names[query["account"]] = query["account"]
    try:
        categories = await services.get("engagement", "/categories")
    except ServiceError:
        categories = []
    shown = {**query, "scope": query.get("scope") if query.get("scope") in SCOPES else default_scope(request),
             "status": params.get("status", "")}
    return {"conversations": page_of(rows, page_no, PAGE_SIZE, total), "query": shown, "ilabel": ilabel,
            "accounts": names, "kinds": KINDS, "statuses": STATUSES, "scopes": SCOPES, "priorities": PRIORITIES,
            "categories": categories, "list_url": "/inbox?" + urlencode({k: v for k, v in shown.items()
                                                                         if k != "page" and v})}


# ------------------------------------------------------------------ the list

@get("/inbox", name="inbox", opt=READERS)
async def inbox(request: Request, services: Services) -> Response:
    return page(request, "pages/inbox.html", await inbox_context(request, services, query_of(request)),
                block="inbox_list")


# ------------------------------------------------------------------ live updates (SSE)

@get("/inbox/stream", name="inbox_stream", opt=READERS)
async def inbox_stream(request: Request) -> Stream:
    """`text/event-stream`: `event: changed` / `data: {"ids": [...]}` whenever conversations the signed-in
    staff member may see change; a comment line after each quiet long poll keeps the connection alive.

    The current cursor is read before the stream starts: an engagement service that does not answer is a 503
    (the page's script retries later). When it stops answering mid-stream the stream ends, and the browser's
    EventSource reconnects by itself (`retry: 2000`)."""
    settings = request.app.state.settings
    http: httpx.AsyncClient = request.app.state.runtime.state["http"]
    staff = staff_of(request)
    base = service_url(settings, "engagement")

    async def poll(params: dict[str, Any]) -> dict[str, Any] | None:
        headers = {"Accept": "application/json", **staff_assertion_headers(
            staff.login, staff.role, audience="engagement", secret=settings.gateway_secret)}
        try:
            response = await http.get(f"{base}/api/engagement/changes", params=params, headers=headers,
                                      timeout=httpx.Timeout(STREAM_WAIT + 10, connect=3.0))
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    start = await poll({})
    if start is None:
        raise ServiceUnavailable("engagement")
    # A reconnecting EventSource sends the id of the last event it saw: resume there (nothing is skipped).
    resume = request.headers.get("last-event-id", "")
    first = int(resume) if resume.isdigit() and int(resume) <= int(start["cursor"]) else int(start["cursor"])

    async def events() -> AsyncIterator[str]:
        cursor = first
        yield f"retry: 2000\nid: {cursor}\nevent: ready\ndata: {{}}\n\n"
        while True:
            answer = await poll({"since": cursor, "wait": STREAM_WAIT})
            if answer is None:
                return
            cursor = int(answer["cursor"])
            if answer["conversations"]:
                yield f"id: {cursor}\nevent: changed\ndata: {json.dumps({'ids': answer['conversations']})}\n\n"
            else:
                yield ": keep-alive\n\n"

    return Stream(events(), media_type="text/event-stream",
                  headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


# ------------------------------------------------------------------ one conversation

def variables(conversation: dict[str, Any], client_name: str, agent_name: str) -> dict[str, str]:
    customer = conversation.get("customer") or {}
    return {"client_name": client_name, "customer_name": customer.get("name") or customer.get("handle") or "",
            "agent_name": agent_name}


def fill(body: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        body = body.replace("{" + name + "}", value)
    return body


async def conversation_context(request: Request, services: ServiceClient, conversation_id: str, *,
                               errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                               notice: str = "", asked_link: str = "") -> dict[str, Any]:
    from gateway.pages.inbox_files import decorate  # here: that module takes this one's roles

    conversation = decorate(await services.get("engagement", f"/conversations/{conversation_id}"))
    names = await account_names(request, {conversation.get("account") or ""})
    client_name = names.get(conversation.get("account") or "", "")
    staff = staff_of(request)
    try:
        templates = await services.get("engagement", "/templates", params={
            "category": conversation.get("category") or ""}) if can_write(request) else []
    except ServiceError:
        templates = []
    values = variables(conversation, client_name, staff.display_name)
    for template in templates:
        template["filled"] = fill(template["body"], values)
    try:
        categories = await services.get("engagement", "/categories")
    except ServiceError:
        categories = []
    return {"c": conversation, "client_name": client_name, "ilabel": ilabel, "templates": templates, "errors": errors or {},
            "form": form or {}, "notice": notice, "can_write": can_write(request),
            "can_reassign": can_reassign(request), "agents": await care_staff(request) if can_write(request) else [],
            "statuses": STATUSES, "priorities": PRIORITIES, "categories": categories, "asked_link": asked_link,
            "list_url": "/inbox", "can_attach": reply_files.can_attach(conversation)}


@get("/inbox/{conversation_id:str}", name="inbox_conversation", opt=READERS)
async def conversation_page(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    ctx = await conversation_context(request, services, conversation_id)
    try:   # the staff member opened it: their @mentions in it are read
        await services.post("engagement", f"/conversations/{conversation_id}/seen")
    except ServiceError:
        pass
    return page(request, "pages/inbox_conversation.html", ctx, block="conversation")


@get("/inbox/{conversation_id:str}/thread", name="inbox_thread", opt=READERS)
async def conversation_thread(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    """Only the messages and notes (the live refresh: the composer keeps what the agent is typing); one call."""
    from gateway.pages.inbox_files import decorate

    ctx = {"c": decorate(await services.get("engagement", f"/conversations/{conversation_id}")), "ilabel": ilabel}
    html = render(request, "pages/inbox_conversation.html", ctx, block="thread")
    return Response(html, media_type="text/html", headers={"Vary": "HX-Request"})


async def _act(request: Request, services: ServiceClient, conversation_id: str, path: str, body: dict[str, Any],
               *, field: str, notice: str, form: dict[str, str] | None = None) -> Response:
    """One action on the conversation; the conversation again with a notice, or 422 with the field's error."""
    try:
        answer = await services.post("engagement", f"/conversations/{conversation_id}/{path}", json=body)
    except ServiceError as exc:
        if exc.status_code not in (400, 403, 409, 422):
            raise
        errors = form_errors(exc, field)
        if exc.status_code == 403:
            errors = {field: _("You may not do this.")}
        ctx = await conversation_context(request, services, conversation_id, errors=errors, form=form)
        return page(request, "pages/inbox_conversation.html", ctx, block="conversation", status_code=422)
    asked = ""
    if path == "ask-client" and isinstance(answer, dict) and answer.get("token"):
        base = gateway_config(request).public_url or str(request.base_url)
        asked = f"{base.rstrip('/')}/answer/{answer['token']}"
    if not request.headers.get("hx-request"):
        return redirect(request, f"/inbox/{conversation_id}")
    ctx = await conversation_context(request, services, conversation_id, notice=notice, asked_link=asked)
    return page(request, "pages/inbox_conversation.html", ctx, block="conversation")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items() if k not in ("_csrf", "files")}


@post("/inbox/{conversation_id:str}/reply", name="inbox_reply", opt=WRITERS,
      request_max_body_size=reply_files.REPLY_BODY_LIMIT)
async def reply(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    form = await _form(request)
    text = form.get("text", "").strip()
    uploads = await reply_files.reply_uploads(request)
    if not text and not uploads:
        ctx = await conversation_context(request, services, conversation_id, form=form,
                                         errors={"text": _("Write the answer or choose a file.")})
        return page(request, "pages/inbox_conversation.html", ctx, block="conversation", status_code=422)
    body: dict[str, Any] = {"text": text}
    if uploads:
        body["files"] = uploads
    if form.get("template_id"):
        body["template_id"] = form["template_id"]
    return await _act(request, services, conversation_id, "replies", body, field="text", form=form,
                      notice=_("The answer is queued; its delivery state shows beside it."))


@post("/inbox/{conversation_id:str}/note", name="inbox_note", opt=WRITERS)
async def note(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    form = await _form(request)
    if not form.get("note", "").strip():
        ctx = await conversation_context(request, services, conversation_id, form=form,
                                         errors={"note": _("Write the note.")})
        return page(request, "pages/inbox_conversation.html", ctx, block="conversation", status_code=422)
    return await _act(request, services, conversation_id, "notes", {"text": form["note"]}, field="note",
                      form=form, notice=_("Note added."))


@post("/inbox/{conversation_id:str}/assign", name="inbox_assign", opt=WRITERS)
async def assign(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    form = await _form(request)
    agent = form.get("agent", "").strip() or None
    if form.get("take"):
        agent = staff_of(request).login
    return await _act(request, services, conversation_id, "assign", {"agent": agent}, field="agent",
                      notice=_("Assignment saved."))


@post("/inbox/{conversation_id:str}/status", name="inbox_status", opt=WRITERS)
async def status(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    form = await _form(request)
    value = form.get("status", "")
    if value not in STATUSES:
        ctx = await conversation_context(request, services, conversation_id, errors={"status": _("Choose the status.")})
        return page(request, "pages/inbox_conversation.html", ctx, block="conversation", status_code=422)
    return await _act(request, services, conversation_id, "status", {"status": value}, field="status",
                      notice=_("Status saved."))


@post("/inbox/{conversation_id:str}/tags", name="inbox_tags", opt=WRITERS)
async def tags(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    form = await _form(request)
    add = [t.strip() for t in form.get("add", "").split(",") if t.strip()]
    remove = [form["remove"]] if form.get("remove") else []
    return await _act(request, services, conversation_id, "tags", {"add": add, "remove": remove}, field="tags",
                      notice=_("Tags saved."))


@post("/inbox/{conversation_id:str}/category", name="inbox_category", opt=WRITERS)
async def category(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    form = await _form(request)
    return await _act(request, services, conversation_id, "category",
                      {"category": form.get("category", "").strip() or None}, field="category",
                      notice=_("Category saved."))


@post("/inbox/{conversation_id:str}/priority", name="inbox_priority", opt=WRITERS)
async def priority(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    form = await _form(request)
    return await _act(request, services, conversation_id, "priority", {"priority": form.get("priority", "")},
                      field="priority", notice=_("Priority saved."))


@post("/inbox/{conversation_id:str}/checked", name="inbox_checked", opt=WRITERS)
async def checked(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    """EN-4: nothing to answer (a thank-you, an emoji): the check round no longer waits for it."""
    return await _act(request, services, conversation_id, "checked", {}, field="checked",
                      notice=_("Marked as checked."))


@post("/inbox/{conversation_id:str}/quality", name="inbox_quality", opt=KEEPERS)
async def quality_mark(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    """EN-6: a senior agent's mark (1-5 and a note) on the conversation's first answer."""
    form = await _form(request)
    try:
        score = int(form.get("score", ""))
    except ValueError:
        score = 0
    return await _act(request, services, conversation_id, "quality-mark", {"score": score, "note": form.get("note", "")},
                      field="score", notice=_("Mark saved."), form=form)


@post("/inbox/{conversation_id:str}/ask", name="inbox_ask", opt=WRITERS)
async def ask(request: Request, services: Services, conversation_id: FromPath[str]) -> Response:
    form = await _form(request)
    if not form.get("question", "").strip():
        ctx = await conversation_context(request, services, conversation_id, form=form,
                                         errors={"question": _("Write the question for the client.")})
        return page(request, "pages/inbox_conversation.html", ctx, block="conversation", status_code=422)
    return await _act(request, services, conversation_id, "ask-client", {"question": form["question"]},
                      field="question", form=form,
                      notice=_("The question is waiting for the client. Send them the link below."))


routes = [inbox, inbox_stream, conversation_page, conversation_thread, reply, note, assign, status, tags, category,
          priority, checked, quality_mark, ask]
