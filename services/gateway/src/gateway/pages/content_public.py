"""The client's pages on signed links (no login; the token is the credential): the plan approval page
(CO-4, CO-6) at `/approve/{token}` — the URL the content service hands out — and the weekly report
(CO-7) at `/report/{token}`.

They proxy the content service's public routes (`/public/content/approvals/{token}`,
`/public/content/reports/{token}`). An expired link is a 410 page, an invalid one a 404 page, both
translated. Mobile-first: clients open the link on a phone.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import _
from gateway.rendering import page
from gateway.roles import PUBLIC
from gateway.service_client import ServiceClient, ServiceError
from gateway.ui import form_errors

Services = NamedDependency[ServiceClient]
TEMPLATE = "pages/content_approval.html"


def link_problem(request: Request, exc: ServiceError, template: str = TEMPLATE) -> Response:
    if exc.status_code == 410:
        return page(request, template, {"state": "expired"}, status_code=410)
    if exc.status_code == 404:
        return page(request, template, {"state": "invalid"}, status_code=404)
    raise exc


def approval_context(info: dict[str, Any], token: str, *, errors: dict[str, str] | None = None,
                     values: dict[str, str] | None = None, notice: str = "") -> dict[str, Any]:
    items = {i["id"]: i for i in info.get("items", [])}
    return {"state": "plan", "info": info, "token": token, "items": items, "errors": errors or {},
            "values": values or {}, "notice": notice}


@get("/approve/{token:str}", name="approval", opt=PUBLIC)
async def approval(request: Request, services: Services, token: FromPath[str]) -> Response:
    try:
        info = await services.public("GET", "content", f"/approvals/{token}")
    except ServiceError as exc:
        return link_problem(request, exc)
    return page(request, TEMPLATE, approval_context(info, token))


def decision_body(form: Any, info: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    decision = str(form.get("decision") or "")
    comments = []
    if plan_comment := str(form.get("comment") or "").strip():
        comments.append({"text": plan_comment})
    for item in info.get("items", []):
        if text := str(form.get(f"comment_{item['id']}") or "").strip():
            comments.append({"item_id": item["id"], "text": text})
    errors: dict[str, str] = {}
    if decision not in ("approve", "changes"):
        errors["decision"] = _("Approve the plan or ask for changes.")
    elif decision == "changes" and not comments:
        errors["comment"] = _("Say what to change: write a comment on the plan or on a post.")
    return {"decision": decision, "comments": comments}, errors


@post("/approve/{token:str}", name="approval_decide", opt=PUBLIC)
async def approval_decide(request: Request, services: Services, token: FromPath[str]) -> Response:
    """CO-4: approve, or ask for changes with comments on the plan or on single posts."""
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if k != "_csrf"}
    try:
        info = await services.public("GET", "content", f"/approvals/{token}")
    except ServiceError as exc:
        return link_problem(request, exc)
    body, errors = decision_body(form, info)
    if not errors:
        try:
            await services.public("POST", "content", f"/approvals/{token}", json=body)
        except ServiceError as exc:
            if exc.status_code == 409:
                errors = {"decision": _("This round was already answered. Open the newest link from your manager.")}
            elif exc.status_code == 422:
                errors = {"comment": " ".join(form_errors(exc).values())}
            else:
                return link_problem(request, exc)
    if errors:
        return page(request, TEMPLATE, approval_context(info, token, errors=errors, values=values), status_code=422)
    info = await services.public("GET", "content", f"/approvals/{token}")
    notice = _("Thank you! The plan is approved.") if body["decision"] == "approve" else \
        _("Thank you! Your comments were sent to your manager.")
    return page(request, TEMPLATE, approval_context(info, token, notice=notice))


@post("/approve/{token:str}/requests", name="approval_request", opt=PUBLIC)
async def approval_request(request: Request, services: Services, token: FromPath[str]) -> Response:
    """CO-6: the client asks to publish something of their own; the manager's answer shows on this page."""
    form = await request.form()
    text = str(form.get("request_text") or "").strip()
    day = str(form.get("request_date") or "").strip()
    values = {"request_text": text, "request_date": day}
    try:
        info = await services.public("GET", "content", f"/approvals/{token}")
    except ServiceError as exc:
        return link_problem(request, exc)
    errors: dict[str, str] = {}
    if not text:
        errors["request_text"] = _("Describe what you would like to publish.")
    else:
        body: dict[str, Any] = {"text": text}
        if day:
            body["date"] = day
        try:
            await services.public("POST", "content", f"/approvals/{token}/requests", json=body)
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                return link_problem(request, exc)
            said = form_errors(exc, "request_text")
            errors = {"request_date" if k == "date" else "request_text": v for k, v in said.items()}
    if errors:
        return page(request, TEMPLATE, approval_context(info, token, errors=errors, values=values), status_code=422)
    info = await services.public("GET", "content", f"/approvals/{token}")
    return page(request, TEMPLATE, approval_context(info, token, notice=_("Your request was sent to your manager.")))


# ------------------------------------------------------------------ CO-7 the shared weekly report

@get("/report/{token:str}", name="content_report", opt=PUBLIC)
async def content_report(request: Request, services: Services, token: FromPath[str]) -> Response:
    from gateway.pages.content_stats import stats_charts

    try:
        report = await services.public("GET", "content", f"/reports/{token}")
    except ServiceError as exc:
        return link_problem(request, exc, "pages/content_report.html")
    weeks = report.get("weeks", [])
    return page(request, "pages/content_report.html", {"state": "report", "report": report, "weeks": weeks,
                                                       "charts": stats_charts(weeks)})


routes = [approval, approval_decide, approval_request, content_report]
