"""Payroll (issue 4): the month overview, each manager's statement (CSV, print), closing a month with
re-authentication, and the pay rules with their history. PAY-7 (issue 7 §6): a full tie for best manager
is shown with the figures and the lead picks the winner (a form); closing with an unresolved tie is refused.

A content manager sees only their own figures (checked here and by the payroll service); the analyst
reads everything; only the project lead closes a month (after typing their password again) and
creates rule versions.
"""

from __future__ import annotations

from typing import Any

import httpx
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.guards import AccessDenied
from gateway.i18n import _
from gateway.labels import PAY_RULES
from gateway.pages.deals import Services, is_htmx, staff_of
from gateway.people import person
from gateway.rendering import month_name, page, redirect
from gateway.roles import ANALYST, CONTENT_MANAGER, LEAD, allow
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from gateway.staff import authenticate
from gateway.ui import bar_chart, form_errors, money, month_of, recent_months, to_decimal, valid_month

READERS = allow(LEAD, ANALYST, CONTENT_MANAGER)
PAGE_SIZE = 50
CRITERIA = ("renewals", "lost", "compliance", "breaches", "refunds")


def current_month(request: Request) -> str:
    return month_of(request.app.state.runtime.clock.now(), request)


def own_only(request: Request, manager: str) -> None:
    staff = staff_of(request)
    if staff.role == CONTENT_MANAGER and manager != staff.login:
        raise AccessDenied()


# ------------------------------------------------------------------ month overview

# The payroll service's refusal codes, worded here (the service answers with codes and parameters).
TIE_UNRESOLVED = "payroll.best_manager_tie_unresolved"
NO_TIE = "payroll.best_manager_no_tie"
NOT_TIED = "payroll.best_manager_not_tied"


def people(logins: str) -> str:
    """"anna, boris" (the service's list of logins) as the staff's full names."""
    return ", ".join(person(login.strip()) for login in logins.split(",") if login.strip())


def refusal(exc: ServiceError, default_field: str = "form") -> dict[str, str]:
    """A payroll refusal as {field: message}: known codes translated, anything else as the service said it."""
    errors: dict[str, str] = {}
    for item in exc.errors:
        code, managers = item.get("code"), str(item.get("managers") or "")
        if code == TIE_UNRESOLVED:
            errors["form"] = _("The best manager is tied between %(managers)s: pick one before closing the month.") \
                % {"managers": people(managers)}
        elif code == NOT_TIED:
            errors["manager"] = _("Choose one of the tied managers: %(managers)s.") % {"managers": people(managers)}
        elif code == NO_TIE:
            errors["manager"] = _("Nobody is tied for best manager this month: there is nothing to pick.")
    return errors or form_errors(exc, default_field)

async def month_context(request: Request, services: ServiceClient, month: str, errors: dict[str, str] | None = None,
                        notice: str = "") -> dict[str, Any]:
    view = await services.get("payroll", f"/months/{month}")
    currency = view.get("currency", "")
    managers = view.get("managers", [])
    rules = sorted({rule for m in managers for rule in m["by_rule"]})
    chart = bar_chart([(person(m["manager"]), float(to_decimal(m["total"])), money(m["total"], currency)) for m in
                       sorted(managers, key=lambda m: to_decimal(m["total"]), reverse=True)])
    current = current_month(request)
    tie = view.get("tie") or None
    is_lead = staff_of(request).role == LEAD
    return {"view": view, "month": month, "months": await picker_months(services, current, month),
            "rules": rules, "chart": chart,
            "currency": currency, "errors": errors or {}, "notice": notice, "is_past": month < current,
            "can_close": is_lead, "tie": tie,
            "can_pick": is_lead and view.get("state") == "open" and tie is not None}


async def picker_months(services: ServiceClient, current: str, shown: str) -> list[str]:
    """The month picker (issue 9): the months with data (the service's list, a manager's own), the
    current month, and the month being shown (a link may name any month) — newest first."""
    try:
        with_data = (await services.get("payroll", "/months")).get("months", [])
    except ServiceError as exc:
        if exc.status_code not in (404, 405):
            raise
        with_data = recent_months(current, 18)   # an older payroll service without GET /months
    return sorted({*with_data, current, shown}, reverse=True)


@get("/payroll", name="payroll", opt=READERS)
async def payroll_month(request: Request, services: Services, month: str = "") -> Response:
    month = valid_month(month) or current_month(request)
    return page(request, "pages/payroll.html", await month_context(request, services, month), block="month")


@post("/payroll/months/{month:str}/close", name="payroll_close", opt=allow(LEAD))
async def payroll_close(request: Request, services: Services, session: NamedDependency[AsyncSession],
                        month: FromPath[str]) -> Response:
    """Only the lead, and only after typing their password again (checked against the gateway account)."""
    form = await request.form()
    password = str(form.get("password") or "")
    staff = staff_of(request)
    errors: dict[str, str] = {}
    if not valid_month(month):
        errors["form"] = _("Choose a month.")
    elif not password:
        errors["password"] = _("Enter your password to confirm.")
    elif await authenticate(session, staff.login, password) is None:
        errors["password"] = _("Wrong password. The month was not closed.")
    else:
        try:
            await services.post("payroll", f"/months/{month}/close")
        except ServiceError as exc:
            if exc.status_code not in (403, 409, 422):
                raise
            errors = {"form": " ".join(refusal(exc).values())}
    if not errors and not is_htmx(request):
        return redirect(request, f"/payroll?month={month}")
    month = valid_month(month) or current_month(request)
    ctx = await month_context(request, services, month, errors,
                              "" if errors else _("%(month)s is closed.") % {"month": month_name(month)})
    return page(request, "pages/payroll.html", ctx, block="month", status_code=422 if errors else 200)


@post("/payroll/months/{month:str}/best-manager", name="payroll_pick", opt=allow(LEAD))
async def payroll_pick(request: Request, services: Services, month: FromPath[str]) -> Response:
    """PAY-7: the lead picks the best manager among those tied on every criterion (the service audits it)."""
    form = await request.form()
    manager = str(form.get("manager") or "").strip()
    errors: dict[str, str] = {}
    if not valid_month(month):
        errors["form"] = _("Choose a month.")
    elif not manager:
        errors["manager"] = _("Choose the best manager among the tied managers.")
    else:
        try:
            await services.post("payroll", f"/months/{month}/best-manager", json={"manager": manager})
        except ServiceError as exc:
            if exc.status_code not in (403, 409, 422):
                raise
            errors = refusal(exc, default_field="manager")
    if not errors and not is_htmx(request):
        return redirect(request, f"/payroll?month={month}")
    month = valid_month(month) or current_month(request)
    notice = "" if errors else _("%(manager)s is the best manager of %(month)s.") % {"manager": person(manager),
                                                                                    "month": month_name(month, in_text=True)}
    ctx = await month_context(request, services, month, errors, notice)
    return page(request, "pages/payroll.html", ctx, block="month", status_code=422 if errors else 200)


# ------------------------------------------------------------------ a manager's statement

@get("/payroll/statements/{month:str}/{manager:str}", name="payroll_statement", opt=READERS)
async def payroll_statement(request: Request, services: Services, month: FromPath[str],
                            manager: FromPath[str]) -> Response:
    own_only(request, manager)
    if not valid_month(month):
        raise ServiceError("payroll", 404, _("No such month."), [])
    printing = request.query_params.get("print") == "1"
    try:
        page_no = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page_no = 1
    size = 5000 if printing else PAGE_SIZE
    statement = await services.get("payroll", f"/statements/{manager}",
                                   params={"month": month, "page": 1 if printing else page_no, "page_size": size})
    pages = max(1, -(-statement["lines_total"] // size))
    template = "pages/statement_print.html" if printing else "pages/statement.html"
    return page(request, template, {"st": statement, "month": month, "manager": manager, "page_no": page_no,
                                    "pages": pages, "clients": await client_names(services, statement["lines"])},
                block="statement")


async def client_names(services: ServiceClient, lines: list[dict[str, Any]]) -> dict[str, str]:
    """Deal id → its client's name, for the statement's lines (issue 9: deals by client name, not a hex
    id), in one read of the clients service per 200 deals. A deal the reader may not see there, or a
    clients service that does not answer, leaves the line with the plain word "Deal"."""
    ids = sorted({ln["deal_id"] for ln in lines if ln.get("deal_id")})
    names: dict[str, str] = {}
    for start in range(0, len(ids), 200):
        chunk = ids[start:start + 200]
        try:
            deals, _total = await services.get_page("clients", "/deals", params=[
                *(("deal_id", deal_id) for deal_id in chunk), ("limit", "200")])
        except (ServiceError, ServiceUnavailable, httpx.HTTPError):
            return names
        names.update({d["id"]: d.get("client_name") or "" for d in deals})
    return names


@get("/payroll/statements/{month:str}/{manager:str}/csv", name="payroll_statement_csv", opt=READERS)
async def payroll_statement_csv(request: Request, services: Services, month: FromPath[str],
                                manager: FromPath[str]) -> Response:
    """The service's CSV of every line, passed through as the user (so its own check applies too)."""
    own_only(request, manager)
    upstream = await services.raw("GET", "payroll", f"/statements/{manager}.csv", params={"month": month},
                                  accept="text/csv")
    return Response(upstream.content, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": upstream.headers.get("content-disposition",
                                                    f'attachment; filename="payroll-{manager}-{month}.csv"')})


# ------------------------------------------------------------------ rules

def rules_form_defaults(current: dict[str, Any], month: str) -> dict[str, str]:
    form = {"effective_from": month, "currency": current.get("currency", "KZT"),
            "default_fine": current.get("default_fine", "0"),
            **{f"criterion_{i + 1}": c for i, c in enumerate(current.get("best_manager_rule", []))}}
    for rule in PAY_RULES:
        if rule != "PAY-6":
            form[f"amount_{rule}"] = current.get("amounts", {}).get(rule, "")
    for rule, amount in current.get("deadline_fines", {}).items():
        form[f"fine_{rule}"] = amount
    return form


# PAY-6: the deadline rules a fine can be set for (CAL-3 deadlines of the clients and content services).
FINE_RULES = ("CL-3", "CL-6", "CL-7", "CL-9", "CL-11", "CO-3", "CO-5")


def fine_rules(current: dict[str, Any]) -> list[str]:
    return sorted(set(FINE_RULES) | set(current.get("deadline_fines", {})),
                  key=lambda r: (r[:2], int(r[3:]) if r[3:].isdigit() else 0))


async def rules_context(request: Request, services: ServiceClient, form: dict[str, str] | None = None,
                        errors: dict[str, str] | None = None, notice: str = "") -> dict[str, Any]:
    rules = await services.get("payroll", "/rules")
    return {"rules": rules, "current": rules["current"], "history": list(reversed(rules.get("history", []))),
            "form": form or rules_form_defaults(rules["current"], rules["month"]), "errors": errors or {},
            "notice": notice, "can_edit": staff_of(request).role == LEAD, "criteria": CRITERIA,
            "fine_rules": fine_rules(rules["current"])}


@get("/payroll/rules", name="payroll_rules", opt=READERS)
async def payroll_rules(request: Request, services: Services) -> Response:
    return page(request, "pages/payroll_rules.html", await rules_context(request, services), block="rules")


@post("/payroll/rules", name="payroll_rules_create", opt=allow(LEAD))
async def payroll_rules_create(request: Request, services: Services) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if k != "_csrf"}
    errors: dict[str, str] = {}
    body: dict[str, Any] = {"effective_from": form.get("effective_from", "").strip()}
    if not valid_month(body["effective_from"]):
        errors["effective_from"] = _("Choose a month.")
    if form.get("currency"):
        body["currency"] = form["currency"].strip().upper()
    amounts = {rule: form[f"amount_{rule}"].strip() for rule in PAY_RULES if form.get(f"amount_{rule}", "").strip()}
    if amounts:
        body["amounts"] = amounts
    if form.get("default_fine", "").strip():
        body["default_fine"] = form["default_fine"].strip()
    # PAY-6 per deadline rule, one field each; an empty field means "the fine for any other deadline".
    body["deadline_fines"] = {key.removeprefix("fine_"): value.strip() for key, value in form.items()
                              if key.startswith("fine_") and value.strip()}
    # PAY-7: the criteria in order, one choice each (an empty choice ends the list; a repeat is ignored).
    criteria: list[str] = []
    for i in range(1, len(CRITERIA) + 1):
        choice = form.get(f"criterion_{i}", "").strip()
        if choice and choice not in criteria:
            criteria.append(choice)
    if form.get("best_manager_rule", "").strip():        # the API-style list still works
        criteria = [c.strip() for c in form["best_manager_rule"].split(",") if c.strip()]
    if criteria:
        body["best_manager_rule"] = criteria
    if not errors:
        try:
            await services.put("payroll", "/rules", json=body)
        except ServiceError as exc:
            if exc.status_code not in (409, 422):
                raise
            errors = {("amount_" + k.removeprefix("amounts.") if k.startswith("amounts.") else
                       "criterion_1" if k.startswith("best_manager_rule") else
                       "fine_" + k.removeprefix("deadline_fines.") if k.startswith("deadline_fines.") else k): v
                      for k, v in form_errors(exc).items()}
    if not errors and not is_htmx(request):
        return redirect(request, "/payroll/rules")
    ctx = await rules_context(request, services, form if errors else None, errors,
                              "" if errors else _("A new rule version is saved."))
    return page(request, "pages/payroll_rules.html", ctx, block="rules", status_code=422 if errors else 200)


routes = [payroll_month, payroll_close, payroll_pick, payroll_statement, payroll_statement_csv, payroll_rules,
          payroll_rules_create]

