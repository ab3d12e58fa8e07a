"""Clients (issue 3): my tasks, the pipeline board, the deal card and what is done from them.

Everything comes from the clients service's JSON API as the signed-in staff member; the service
enforces who sees and changes what (a deal you may not see is a 404 there), and these pages show
only the buttons the role may use. Uploads and downloads go through the gateway, which adds the
service credentials (the browser never holds a bearer token).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import httpx
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import FromPath, Parameter

from gateway.i18n import _
from gateway.labels import CLIENT_FIELDS, LAUNCH_FIELDS, MANUAL_STAGES, STAGES, label
from gateway.people import person
from gateway.printable import printable_document
from gateway.rendering import page, redirect
from gateway.roles import AD_MANAGER, ANALYST, CONTENT_MANAGER, GROWTH, LEAD, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.sessions import SignedIn
from gateway.ui import form_errors, parse_ts, to_decimal

READERS = allow(LEAD, CONTENT_MANAGER, AD_MANAGER, GROWTH, ANALYST)
TASK_ROLES = allow(LEAD, CONTENT_MANAGER, AD_MANAGER, GROWTH)
MOVERS = allow(LEAD, CONTENT_MANAGER, AD_MANAGER)
REVEALERS = allow(LEAD, CONTENT_MANAGER, GROWTH)
OWNERS = allow(LEAD, CONTENT_MANAGER)
MAX_UPLOAD = 50 * 1024 * 1024 + 1024 * 1024

Services = NamedDependency[ServiceClient]


def staff_of(request: Request) -> SignedIn:
    return request.state.web.staff


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# ------------------------------------------------------------------ what a role may do (buttons only;
# the service decides for real)

def deal_rights(staff: SignedIn, deal: dict[str, Any]) -> dict[str, bool]:
    owner = staff.role == LEAD or (staff.role == CONTENT_MANAGER and deal.get("responsible_manager") == staff.login)
    ad = staff.role == AD_MANAGER and deal.get("service_kind") == "complex_promotion"
    growth = staff.role == GROWTH and deal.get("growth_specialist") == staff.login
    return {
        "move": owner or ad,
        "change": owner,
        "reveal": owner or growth,
        "waive": staff.role == LEAD,
        "upload": owner,
    }


def stage_choices(staff: SignedIn, deal: dict[str, Any]) -> list[str]:
    rights = deal_rights(staff, deal)
    if rights["change"]:
        return [s for s in MANUAL_STAGES if s != deal.get("stage")]
    if rights["move"]:   # the ad manager answers the renewal question of complex_promotion deals (CL-11/12)
        return [s for s in ("notification_sent", "lost") if s != deal.get("stage")]
    return []


def may_tick(staff: SignedIn, task: dict[str, Any]) -> bool:
    """CL-7: the task's assignee or the lead ticks its checklist."""
    return task.get("status") == "open" and (staff.role == LEAD or task.get("assignee") == staff.login)


def task_refusal(exc: ServiceError) -> str:
    """A refused completion in the user's words; CL-7 lists the checklist items still to tick."""
    missing = [str((e.get("params") or {}).get("checklist_item") or e.get("message") or "")
               for e in exc.errors if e.get("field") == "checklist"]
    if missing:
        return _("Tick every checklist item first: %(items)s.") % {
            "items": ", ".join(label("checklist", item) for item in missing)}
    return " ".join(form_errors(exc).values())


def may_complete(staff: SignedIn, task: dict[str, Any], deal: dict[str, Any] | None) -> bool:
    if task.get("status") != "open" or staff.role == ANALYST:
        return False
    # Only the task's assignee or the lead completes a task (issue 7 §6; the clients service refuses others).
    return staff.role == LEAD or task.get("assignee") == staff.login


# ------------------------------------------------------------------ My tasks

async def tasks_context(request: Request, services: ServiceClient, scope: str, errors: dict[str, str] | None = None,
                        notice: str = "") -> dict[str, Any]:
    staff = staff_of(request)
    params: dict[str, str] = {"status": "open", "limit": "200"}  # the clients API pages /tasks (at most 200)
    if not (staff.role == LEAD and scope == "all"):
        params["assignee"] = staff.login
    # One request: each task carries its client's name and deal stage (no read per deal).
    tasks = await services.get("clients", "/tasks", params=params)
    now = request.app.state.runtime.clock.now()
    rows = []
    for task in tasks:
        due = parse_ts(task.get("due_at"))
        # The list is the user's own tasks (or, for the lead, everyone's), so may_complete needs no deal.
        rows.append({"task": task, "client": task.get("client_name") or "",
                     "overdue": due is not None and due < now, "can_complete": may_complete(staff, task, None),
                     "needs_recording": task.get("kind") == "renewal_call"})
    return {"rows": rows, "scope": scope, "errors": errors or {}, "notice": notice, "now": now}


@get("/tasks", name="my_tasks", opt=TASK_ROLES)
async def my_tasks(request: Request, services: Services,
                   view: Annotated[str, Parameter(query="scope")] = "mine") -> Response:
    # `scope` is a reserved name in Litestar (the ASGI scope): read the query parameter under another name.
    ctx = await tasks_context(request, services, view)
    try:   # EN-4 (issue 12): today's check rounds of my clients sit beside my tasks
        ctx["rounds"] = await services.get("engagement", "/check-rounds")
    except (ServiceError, ServiceUnavailable):
        ctx["rounds"] = []
    return page(request, "pages/tasks.html", ctx, block="tasks")


@post("/tasks/{task_id:str}/complete", name="task_complete", opt=TASK_ROLES)
async def task_complete(request: Request, services: Services, task_id: FromPath[str]) -> Response:
    form = await request.form()
    back = str(form.get("back") or "tasks")
    deal_id = str(form.get("deal_id") or "")
    try:
        await services.post("clients", f"/tasks/{task_id}/complete", json={})
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        return await _after_task(request, services, back, deal_id, {task_id: task_refusal(exc)}, "", status_code=422)
    return await _after_task(request, services, back, deal_id, {}, _("Task completed."))


@post("/tasks/{task_id:str}/checklist", name="task_checklist", opt=TASK_ROLES)
async def task_checklist(request: Request, services: Services, task_id: FromPath[str]) -> Response:
    """CL-7: tick or untick one checklist item (a checkbox that posts itself with htmx); the service
    lets only the task's assignee or the lead do it."""
    form = await request.form()
    back = str(form.get("back") or "deal")
    deal_id = str(form.get("deal_id") or "")
    body = {"item": str(form.get("item") or ""), "done": str(form.get("done") or "") in ("true", "on", "1")}
    try:
        await services.post("clients", f"/tasks/{task_id}/checklist", json=body)
    except ServiceError as exc:
        if exc.status_code not in (403, 409, 422):
            raise
        return await _after_task(request, services, back, deal_id, {task_id: " ".join(form_errors(exc).values())},
                                 "", status_code=422 if exc.status_code != 403 else 403)
    return await _after_task(request, services, back, deal_id, {}, _("Checklist saved."))


async def _after_task(request: Request, services: ServiceClient, back: str, deal_id: str, errors: dict[str, str],
                      notice: str, status_code: int = 200) -> Response:
    if back == "deal" and deal_id:
        if not is_htmx(request) and not errors:
            return redirect(request, f"/deals/{deal_id}")
        ctx = await deal_context(request, services, deal_id, task_errors=errors, notice=notice)
        return page(request, "pages/deal.html", ctx, block="deal", status_code=status_code)
    if not is_htmx(request) and not errors:
        return redirect(request, "/tasks")
    ctx = await tasks_context(request, services, "mine", errors, notice)
    return page(request, "pages/tasks.html", ctx, block="tasks", status_code=status_code)


@post("/deals/{deal_id:str}/recordings", name="recording_upload", opt=OWNERS, request_max_body_size=MAX_UPLOAD)
async def recording_upload(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """CL-11: the call recording, forwarded to the clients service as the user; with `task_id` and
    `complete`, the renewal call is then completed in the same step."""
    form = await request.form()
    upload = form.get("file")
    task_id = str(form.get("task_id") or "")
    back = str(form.get("back") or "deal")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _after_task(request, services, back, deal_id, {task_id or "upload": _("Choose the recording file.")},
                                 "", status_code=422)
    content = await upload.read()
    files = {"file": (upload.filename, content, upload.content_type or "application/octet-stream")}
    data = {"task_id": task_id} if task_id else {}
    request_ = httpx.Request("POST", "http://x", files=files, data=data)
    body = request_.read()
    try:
        await services.raw("POST", "clients", f"/deals/{deal_id}/attachments", content=body,
                           content_type=request_.headers["content-type"], accept="application/json")
        if task_id and form.get("complete"):
            await services.post("clients", f"/tasks/{task_id}/complete", json={})
    except ServiceError as exc:
        if exc.status_code not in (409, 422):
            raise
        message = " ".join(form_errors(exc).values())
        return await _after_task(request, services, back, deal_id, {task_id or "upload": message}, "", status_code=422)
    notice = _("Recording attached, task completed.") if task_id and form.get("complete") else _("Recording attached.")
    return await _after_task(request, services, back, deal_id, {}, notice)


@get("/attachments/{attachment_id:str}", name="attachment_file", opt=READERS)
async def attachment_file(services: Services, attachment_id: FromPath[str]) -> Response:
    """The file (the `<audio>` player's source), read from the clients service as the user (audited there)."""
    upstream = await services.raw("GET", "clients", f"/attachments/{attachment_id}")
    headers = {"Cache-Control": "private, max-age=300"}
    if disposition := upstream.headers.get("content-disposition"):
        headers["Content-Disposition"] = disposition
    return Response(upstream.content, media_type=upstream.headers.get("content-type", "application/octet-stream"),
                    headers=headers)


# ------------------------------------------------------------------ Pipeline board

# How the board reads its deals (issue 9, "Lists that scale"). One request to the clients service
# (GET /board) answers every column's count and money sums — computed there by aggregate queries over
# the whole column, never by loading its deals — and the first COLUMN_PAGE cards of each column (the
# newest first payment first; Lost: the most recently lost). "Show more" under a column reads its next
# COLUMN_PAGE cards (GET /deals?stage=…&offset=…) and is swapped in by htmx. Search (`q`: a part of the
# client's name, phone, Instagram or e-mail) and the manager / service filters apply to counts, sums
# and cards alike.
COLUMN_PAGE = 50


def board_filters(manager: str, kind: str, q: str) -> dict[str, str]:
    return {k: v for k, v in (("manager", manager), ("service_kind", kind), ("q", q.strip())) if v}


def board_card(staff: SignedIn, deal: dict[str, Any], errors: dict[str, dict[str, str]] | None = None,
               values: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    return {"deal": deal, "amount": to_decimal(deal.get("paid_total")), "currency": deal.get("currency") or "",
            "choices": stage_choices(staff, deal), "errors": (errors or {}).get(deal["id"], {}),
            "filled": (values or {}).get(deal["id"], {})}


async def board_context(request: Request, services: ServiceClient, manager: str, kind: str, q: str = "",
                        errors: dict[str, dict[str, str]] | None = None, values: dict[str, dict[str, str]] | None = None,
                        notice: str = "") -> dict[str, Any]:
    staff = staff_of(request)
    board = await services.get("clients", "/board", params={**board_filters(manager, kind, q), "limit": COLUMN_PAGE})
    columns = []
    for column in board["columns"]:
        cards = [board_card(staff, deal, errors, values) for deal in column["deals"]]
        columns.append({"stage": column["stage"], "cards": cards, "count": column["count"], "shown": len(cards),
                        "sort": column.get("sort") or "-first_payment_at",
                        "sums": [(s["currency"], to_decimal(s["amount"])) for s in column["sums"]]})
    managers = sorted(set(board.get("managers") or []) | ({manager} if manager else set()),
                      key=lambda login: person(login).lower())
    return {"columns": columns, "manager": manager, "kind": kind, "q": q, "managers": managers, "notice": notice,
            "total": board.get("total", 0), "page_size": COLUMN_PAGE}


@get("/deals", name="pipeline", opt=READERS)
async def pipeline(request: Request, services: Services, manager: str = "", kind: str = "", q: str = "") -> Response:
    return page(request, "pages/board.html", await board_context(request, services, manager, kind, q), block="board")


@get("/deals/column", name="pipeline_column", opt=READERS)
async def pipeline_column(request: Request, services: Services, stage: str = "", offset: int = 0, manager: str = "",
                          kind: str = "", q: str = "") -> Response:
    """The next cards of one board column ("show 50 more"): an htmx fragment that replaces the button."""
    errors: dict[str, str] = {}
    if stage not in STAGES:
        errors["stage"] = _("Choose the stage.")
    if offset < 0:
        errors["offset"] = _("Enter a whole number, 0 or more.")
    if errors:
        return page(request, "pages/error.html", {"title": _("Bad request"), "message": " ".join(errors.values())},
                    status_code=422)
    sort = "-lost_at" if stage == "lost" else "-first_payment_at"
    deals, total = await services.get_page("clients", "/deals", params={
        **board_filters(manager, kind, q), "stage": stage, "sort": sort, "limit": COLUMN_PAGE, "offset": offset})
    staff = staff_of(request)
    column = {"stage": stage, "cards": [board_card(staff, deal) for deal in deals], "count": total,
              "shown": offset + len(deals)}
    return page(request, "partials/board_more.html", {"column": column, "manager": manager, "kind": kind, "q": q,
                                                       "page_size": COLUMN_PAGE}, block="cards")


def stage_body(form: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"stage": str(form.get("stage") or "") or None}
    if body["stage"] == "project_launched":
        for name in LAUNCH_FIELDS:
            body[name] = str(form.get(name) or "").strip() or None
    return body


def check_launch(body: dict[str, Any]) -> dict[str, str]:
    """The fields the launch needs, checked here too so a bad date reads as a field message."""
    errors: dict[str, str] = {}
    if body.get("stage") is None:
        errors["stage"] = _("Choose the stage.")
    if body.get("stage") == "project_launched" and body.get("service_start"):
        try:
            date.fromisoformat(body["service_start"])
        except ValueError:
            errors["service_start"] = _("Enter a date.")
    return errors


@post("/deals/{deal_id:str}/stage", name="deal_stage", opt=MOVERS)
async def deal_stage(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """Move a deal (CL-4, CL-8, CL-12). The service checks the stage's requirements; its 422 field
    errors are shown on the card that was moved (board) or on the deal card."""
    form = await request.form()
    back = str(form.get("back") or "deal")
    body = stage_body(form)
    errors = check_launch(body)
    if not errors:
        try:
            await services.post("clients", f"/deals/{deal_id}/stage", json=body)
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = form_errors(exc, "stage")
    values = {k: str(form.get(k) or "") for k in ("stage", "service_start", "instagram_login")}
    status = 422 if errors else 200
    notice = "" if errors else _("Stage changed.")
    if back == "board":
        if not errors and not is_htmx(request):
            return redirect(request, "/deals")
        ctx = await board_context(request, services, str(form.get("manager") or ""), str(form.get("kind") or ""),
                                  str(form.get("q") or ""), errors={deal_id: errors}, values={deal_id: values}, notice=notice)
        return page(request, "pages/board.html", ctx, block="board", status_code=status)
    if not errors and not is_htmx(request):
        return redirect(request, f"/deals/{deal_id}")
    ctx = await deal_context(request, services, deal_id, stage_errors=errors, stage_values=values, notice=notice)
    return page(request, "pages/deal.html", ctx, block="deal", status_code=status)


# ------------------------------------------------------------------ Deal card

async def deal_context(request: Request, services: ServiceClient, deal_id: str, *, task_errors: dict | None = None,
                       stage_errors: dict | None = None, stage_values: dict | None = None,
                       waive_errors: dict | None = None, client_errors: dict | None = None,
                       client_values: dict | None = None, notice: str = "") -> dict[str, Any]:
    staff = staff_of(request)
    deal = await services.get("clients", f"/deals/{deal_id}")
    rights = deal_rights(staff, deal)
    now = request.app.state.runtime.clock.now()
    tasks = []
    for task in deal.get("tasks", []):
        due = parse_ts(task.get("due_at"))
        tasks.append({"task": task, "overdue": task["status"] == "open" and due is not None and due < now,
                      "can_complete": may_complete(staff, task, deal), "can_tick": may_tick(staff, task),
                      "needs_recording": task.get("kind") == "renewal_call"})
    amount, currency = to_decimal(deal.get("paid_total")), deal.get("currency") or ""
    return {"deal": deal, "rights": rights, "choices": stage_choices(staff, deal), "tasks": tasks,
            "amount": amount, "currency": currency, "task_errors": task_errors or {},
            "stage_errors": stage_errors or {}, "stage_values": stage_values or {},
            "waive_errors": waive_errors or {}, "notice": notice, "now": now,
            "client_errors": client_errors or {},
            "client_values": client_values or {name: deal["client"].get(name) or "" for name in CLIENT_FIELDS}}


@post("/deals/{deal_id:str}/client", name="deal_client", opt=OWNERS)
async def deal_client(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """CL-1: edit the client card. The service validates the card (a legal entity needs its company
    name and 12-digit BIN/IIN; e-mail and phone formats) and its 422 field messages are shown beside
    the fields, with what was typed kept."""
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in CLIENT_FIELDS}
    body = {name: value for name, value in values.items() if name in form}
    errors: dict[str, str] = {}
    try:
        await services.patch("clients", f"/deals/{deal_id}/client", json=body)
    except ServiceError as exc:
        if exc.status_code not in (400, 422):
            raise
        errors = form_errors(exc)
    if not errors and not is_htmx(request):
        return redirect(request, f"/deals/{deal_id}")
    ctx = await deal_context(request, services, deal_id, client_errors=errors, client_values=values if errors else None,
                             notice="" if errors else _("Client card saved."))
    return page(request, "pages/deal.html", ctx, block="deal", status_code=422 if errors else 200)


@get("/deals/{deal_id:str}", name="deal", opt=READERS)
async def deal_card(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    return page(request, "pages/deal.html", await deal_context(request, services, deal_id), block="deal")


@post("/deals/{deal_id:str}/credentials", name="deal_credentials", opt=REVEALERS)
async def deal_credentials(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """CL-8: revealed on click; the service audits every reveal and refuses anyone else."""
    try:
        creds = await services.post("clients", f"/deals/{deal_id}/credentials/reveal")
        error = ""
    except ServiceError as exc:
        if exc.status_code not in (403, 404):
            raise
        creds, error = None, (_("Your role may not see these credentials.") if exc.status_code == 403
                              else _("No credentials are stored for this deal."))
    ctx = {"creds": creds, "error": error, "deal_id": deal_id}
    if not is_htmx(request):
        full = await deal_context(request, services, deal_id)
        return page(request, "pages/deal.html", {**full, **ctx, "revealed": True})
    return page(request, "partials/credentials.html", ctx, block="credentials",
                status_code=200 if creds else 403)


@post("/deals/{deal_id:str}/questionnaire-link", name="deal_questionnaire_link", opt=OWNERS)
async def deal_questionnaire_link(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """CL-5: a signed, expiring link for the client, shown to copy; it opens the gateway's public page."""
    link = await services.post("clients", f"/deals/{deal_id}/questionnaire-link")
    url = str(request.base_url).rstrip("/") + f"/q/{link['token']}"
    ctx = {"link": {"url": url, "expires_at": link.get("expires_at")}, "deal_id": deal_id}
    if not is_htmx(request):
        full = await deal_context(request, services, deal_id)
        return page(request, "pages/deal.html", {**full, **ctx})
    return page(request, "partials/questionnaire_link.html", ctx, block="qlink")


@post("/deals/{deal_id:str}/deadlines/{deadline_id:str}/waive", name="deadline_waive", opt=allow(LEAD))
async def deadline_waive(request: Request, services: Services, deal_id: FromPath[str], deadline_id: FromPath[str]) -> Response:
    form = await request.form()
    reason = str(form.get("reason") or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors = {deadline_id: _("Say why the deadline is waived.")}
    else:
        try:
            await services.post("clients", f"/deadlines/{deadline_id}/waive", json={"reason": reason})
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = {deadline_id: " ".join(form_errors(exc).values())}
    if not errors and not is_htmx(request):
        return redirect(request, f"/deals/{deal_id}")
    ctx = await deal_context(request, services, deal_id, waive_errors=errors,
                             notice="" if errors else _("Deadline waived."))
    return page(request, "pages/deal.html", ctx, block="deal", status_code=422 if errors else 200)


@get("/deals/{deal_id:str}/document", name="deal_document", opt=READERS)
async def deal_document(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """CL-12: the invoice (legal entity) or payment details (individual) the service rendered, printable."""
    try:
        upstream = await services.raw("GET", "clients", f"/deals/{deal_id}/document", accept="text/html")
    except ServiceError as exc:
        if exc.status_code != 404:
            raise
        return page(request, "pages/error.html", {"title": _("No document yet"),
                                                  "message": _("The document appears once the client has said they continue (stage Notification sent).")},
                    status_code=404)
    html, policy = printable_document(upstream.text)
    return Response(html, media_type=MediaType.HTML, headers={"Content-Security-Policy": policy})


routes = [my_tasks, task_complete, task_checklist, deal_client, recording_upload, attachment_file, pipeline, deal_stage, deal_card,
          deal_credentials, deal_questionnaire_link, deadline_waive, deal_document, pipeline_column]

