"""The care team page (issues 11 and 12, EN-6): who is on shift, their cap of open conversations, their team and
the client accounts they serve — what automatic assignment and the team reports go by. Thin: the engagement
service keeps all of it (`GET /agents`, `PUT /agents/{login}`, `PUT /staff/{login}/accounts`).

Who does what: senior agents and the lead put agents on shift, set caps and choose their accounts; only the lead
names teams (a senior agent's team decides whose report they read); analysts read the page.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.i18n import _
from gateway.pages.deals import Services, staff_of
from gateway.rendering import page, redirect
from gateway.roles import ANALYST, CARE_AGENT, LEAD, SENIOR_AGENT, allow
from gateway.service_client import ServiceError
from gateway.staff import list_staff
from gateway.ui import form_errors

CARE_ROLES = (CARE_AGENT, SENIOR_AGENT)
MAX_TEAM = 100


async def _team_ctx(request: Request, services: Services, session: AsyncSession) -> dict[str, Any]:
    people = [s for s in await list_staff(session) if s.role in CARE_ROLES and s.active]
    try:
        agents = {a["login"]: a for a in await services.get("engagement", "/agents")}
        accounts = [(a["account"], a["name"]) for a in await services.get("engagement", "/care-settings")]
        unavailable = False
    except ServiceError:
        agents, accounts, unavailable = {}, [], True
    names = dict(accounts)
    rows = []
    for s in people:
        a = agents.get(s.login, {})
        rows.append({"login": s.login, "name": s.display_name, "role": s.role, "team": a.get("team") or "",
                     "on_shift": bool(a.get("on_shift")), "cap": a.get("cap"),
                     "cap_is_default": a.get("cap_is_default", True), "accounts": a.get("accounts", []),
                     "account_names": [names.get(x) or _("The agency's own accounts") for x in a.get("accounts", [])]})
    teams = sorted({r["team"] for r in rows if r["team"]})
    role = staff_of(request).role
    return {"rows": sorted(rows, key=lambda r: (r["team"] or "\uffff", r["name"])), "teams": teams,
            "accounts": accounts, "unavailable": unavailable, "can_edit": role in (LEAD, SENIOR_AGENT),
            "can_name_teams": role == LEAD, "errors": {}, "form": {}, "editing": "", "saved": ""}


@get("/care/team", name="care_team", opt=allow(LEAD, SENIOR_AGENT, ANALYST))
async def care_team(request: Request, services: Services, session: NamedDependency[AsyncSession],
                    edit: str = "") -> Response:
    ctx = await _team_ctx(request, services, session)
    if ctx["can_edit"] and any(r["login"] == edit for r in ctx["rows"]):
        ctx["editing"] = edit
    return page(request, "pages/care_team.html", ctx, block="team")


def parse_agent_form(form: Any, *, may_name_team: bool) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """The form as the two bodies the service takes (the agent; the accounts) and the refused fields."""
    errors: dict[str, str] = {}
    body: dict[str, Any] = {"on_shift": form.get("on_shift") in ("on", "1", "true")}
    cap = str(form.get("cap", "")).strip()
    if not cap:
        body["clear_cap"] = True
    elif cap.isdigit() and int(cap) <= 1000:
        body["cap"] = int(cap)
    else:
        errors["cap"] = _("Enter a whole number from 0 to 1000, or leave it empty for the default.")
    if may_name_team:
        team = str(form.get("team", "")).strip()
        if len(team) > MAX_TEAM:
            errors["team"] = _("A team name has at most %(n)s characters.") % {"n": MAX_TEAM}
        body["team"] = team
    accounts = [str(a) for a in form.getall("accounts", []) if str(a).strip()]
    return body, accounts, errors


@post("/care/team/{login:str}", name="care_team_save", opt=allow(LEAD, SENIOR_AGENT))
async def care_team_save(request: Request, services: Services, session: NamedDependency[AsyncSession],
                         login: FromPath[str]) -> Response:
    form = await request.form()
    body, accounts, errors = parse_agent_form(form, may_name_team=staff_of(request).role == LEAD)
    if not errors:
        try:
            await services.put("engagement", f"/agents/{login}", json=body)
            await services.put("engagement", f"/staff/{login}/accounts", json={"accounts": accounts})
        except ServiceError as exc:
            if exc.status_code >= 500:
                raise
            errors = form_errors(exc)
    if not errors and not request.headers.get("HX-Request"):
        return redirect(request, "/care/team")
    ctx = await _team_ctx(request, services, session)
    if errors:   # the row stays open with what was typed and the reasons
        ctx.update(editing=login, errors=errors, form={"team": form.get("team", ""), "cap": form.get("cap", ""),
                                                       "on_shift": body["on_shift"], "accounts": accounts})
    else:
        ctx["saved"] = login
    return page(request, "pages/care_team.html", ctx, block="team", status_code=422 if errors else 200)


routes = [care_team, care_team_save]
