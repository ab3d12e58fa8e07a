"""Staff accounts page: the project lead sees the team and adds accounts."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from shared.errors import DomainError
from shared.service import Runtime
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import rosters
from gateway.i18n import _, agency_default, field_errors
from gateway.models import Staff
from gateway.pages.deals import Services, staff_of
from gateway.rendering import page, redirect
from gateway.roles import LEAD, allow
from gateway.service_client import ServiceError, ServiceUnavailable
from gateway.staff import NewStaff, create_staff, list_staff


def empty_form() -> dict[str, str]:
    """A new account starts in the agency's default language (Settings)."""
    return {"login": "", "display_name": "", "role": "content_manager", "language": agency_default()}


async def _reminder_chats(services: Services) -> dict[str, str] | None:
    """login → the Telegram chat the group SOP reminds them in (issue 13); None when engagement does not answer."""
    try:
        return {o["login"]: o.get("telegram_chat_id") or "" for o in await services.get("engagement", "/owners")}
    except (ServiceError, ServiceUnavailable):
        return None


@get("/staff", name="staff_list", opt=allow(LEAD))
async def staff_list(request: Request, session: NamedDependency[AsyncSession], services: Services) -> Response:
    return page(request, "pages/staff.html", {"team": await list_staff(session), "form": empty_form(), "errors": {},
                                              "me": staff_of(request).login, "chats": await _reminder_chats(services)})


@post("/staff/{login:str}/telegram", name="staff_telegram", opt=allow(LEAD))
async def staff_telegram(request: Request, session: NamedDependency[AsyncSession], services: Services,
                         login: FromPath[str]) -> Response:
    """Link the private Telegram chat where someone gets their push reminders (empty: unlink)."""
    form = await request.form()
    member = (await session.execute(select(Staff).where(Staff.login == login))).scalar_one_or_none()
    if member is None:   # a stale page: say so on the page itself
        return await _staff_refused(request, session, services, _("No such account: it may have been renamed."))
    chat = str(form.get("telegram_chat_id", "")).strip()
    notice, error = "", ""
    if chat and not chat.lstrip("-").isdigit():
        error = _("A Telegram chat id is a number, like 123456789.")
    else:
        try:
            await services.put("engagement", f"/staff/{login}/owner", json={
                "active": member.active, "full_name": member.display_name, "telegram_chat_id": chat or None,
                "language": member.language})
            notice = _("Reminders for %(name)s: saved.") % {"name": member.display_name}
        except (ServiceError, ServiceUnavailable):
            error = _("The group SOP service did not answer: try again in a minute.")
    ctx = {"team": await list_staff(session), "form": empty_form(), "errors": {}, "notice": notice, "error": error,
           "me": staff_of(request).login, "chats": await _reminder_chats(services)}
    if request.headers.get("hx-request") != "true":
        return page(request, "pages/staff.html", ctx, status_code=422 if error else 200)
    return page(request, "pages/staff.html", ctx, block="staff_section", status_code=422 if error else 200)


@post("/staff", name="staff_create", opt=allow(LEAD))
async def staff_create(request: Request, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                       services: Services) -> Response:
    form = await request.form()
    new = NewStaff(login=str(form.get("login", "")), display_name=str(form.get("display_name", "")),
                   role=str(form.get("role", "")), password=str(form.get("password", "")),
                   language=str(form.get("language", agency_default())))
    try:
        staff = await create_staff(session, new, runtime.clock.now())
    except DomainError as exc:
        errors = field_errors(exc.errors)
        values = {"login": new.login, "display_name": new.display_name, "role": new.role, "language": new.language}
        return page(request, "pages/staff.html", {"team": await list_staff(session), "form": values, "errors": errors,
                                                  "me": staff_of(request).login},
                    block="staff_form", status_code=422,
                    headers={"HX-Retarget": "#staff-form", "HX-Reswap": "outerHTML"})
    # A new manager gets deals from now on (CL-3): the clients roster hears of them at once.
    late = await _tell_services(services, staff, owners=False)
    if request.headers.get("hx-request") != "true":
        return redirect(request, "/staff")
    # htmx: the table and a fresh form, in one swap of the section.
    notice = _("Account %(login)s created.") % {"login": staff.login}
    error = _("The clients service did not answer: %(name)s will get new deals once it does (checked every "
              "minute).") % {"name": staff.display_name} if late else ""
    return page(request, "pages/staff.html",
                {"team": await list_staff(session), "form": empty_form(), "errors": {}, "notice": notice,
                 "error": error, "me": staff_of(request).login},
                block="staff_section")


async def _tell_services(services: Services, member: Staff, *, owners: bool = True) -> list[str]:
    """Whether a person works here is the gateway's to say; the services keep rosters of their own (clients:
    who gets new deals; engagement: who owns chat groups, whose pending pushes fail as "owner left"). The
    services that did not answer, by name; the "staff rosters" loop tells them later (gateway/rosters.py)."""
    failed = []
    calls = [("engagement", f"/staff/{member.login}/owner", rosters.owner_entry(member))] if owners else []
    if member.role in rosters.CLIENTS_ROLES:
        calls.append(("clients", f"/staff/{member.login}", rosters.clients_entry(member)))
    for service, path, body in calls:
        try:
            await services.put(service, path, json=body)
        except (ServiceError, ServiceUnavailable):
            failed.append(service)
    return failed


async def _staff_refused(request: Request, session: AsyncSession, services: Services, error: str) -> Response:
    ctx = {"team": await list_staff(session), "form": empty_form(), "errors": {}, "notice": "", "error": error,
           "me": staff_of(request).login, "chats": await _reminder_chats(services)}
    return page(request, "pages/staff.html", ctx, block="staff_section", status_code=422)


@post("/staff/{login:str}/active", name="staff_active", opt=allow(LEAD))
async def staff_active(request: Request, session: NamedDependency[AsyncSession], services: Services,
                       login: FromPath[str]) -> Response:
    """Deactivate someone who left (their sessions end at once, their rosters follow) or bring them back."""
    form = await request.form()
    member = (await session.execute(select(Staff).where(Staff.login == login))).scalar_one_or_none()
    if member is None:   # a stale page: say so on the page itself
        return await _staff_refused(request, session, services, _("No such account: it may have been renamed."))
    active = form.get("active") == "1"
    if member.login == staff_of(request).login and not active:
        notice, error = "", _("You cannot deactivate your own account.")
    else:
        member.active = active
        await session.flush()
        failed = await _tell_services(services, member)
        notice = (_("%(name)s is active again.") if active else _("%(name)s is deactivated: they can no longer sign "
                                                                   "in; their pending pushes fail as “owner left” "
                                                                   "until re-targeted.")) % {
            "name": member.display_name}
        error = _("Saved here, but these services did not answer: %(services)s. Press the button again to retry.") % {
            "services": ", ".join(failed)} if failed else ""
    ctx = {"team": await list_staff(session), "form": empty_form(), "errors": {}, "notice": notice,
           "error": error, "me": staff_of(request).login, "chats": await _reminder_chats(services)}
    if request.headers.get("hx-request") != "true":
        return page(request, "pages/staff.html", ctx)
    return page(request, "pages/staff.html", ctx, block="staff_section")


routes = [staff_list, staff_create, staff_active, staff_telegram]
