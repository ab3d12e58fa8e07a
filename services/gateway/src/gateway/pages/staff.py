"""Staff accounts page: the project lead sees the team and adds accounts."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from shared.errors import DomainError
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.i18n import _, agency_default, field_errors
from gateway.rendering import page, redirect
from gateway.roles import LEAD, allow
from gateway.staff import NewStaff, create_staff, list_staff


def empty_form() -> dict[str, str]:
    """A new account starts in the agency's default language (Settings)."""
    return {"login": "", "display_name": "", "role": "content_manager", "language": agency_default()}


@get("/staff", name="staff_list", opt=allow(LEAD))
async def staff_list(request: Request, session: NamedDependency[AsyncSession]) -> Response:
    return page(request, "pages/staff.html", {"team": await list_staff(session), "form": empty_form(), "errors": {}})


@post("/staff", name="staff_create", opt=allow(LEAD))
async def staff_create(request: Request, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> Response:
    form = await request.form()
    new = NewStaff(login=str(form.get("login", "")), display_name=str(form.get("display_name", "")),
                   role=str(form.get("role", "")), password=str(form.get("password", "")),
                   language=str(form.get("language", agency_default())))
    try:
        staff = await create_staff(session, new, runtime.clock.now())
    except DomainError as exc:
        errors = field_errors(exc.errors)
        values = {"login": new.login, "display_name": new.display_name, "role": new.role, "language": new.language}
        return page(request, "pages/staff.html", {"team": await list_staff(session), "form": values, "errors": errors},
                    block="staff_form", status_code=422,
                    headers={"HX-Retarget": "#staff-form", "HX-Reswap": "outerHTML"})
    if request.headers.get("hx-request") != "true":
        return redirect(request, "/staff")
    # htmx: the table and a fresh form, in one swap of the section.
    notice = _("Account %(login)s created.") % {"login": staff.login}
    return page(request, "pages/staff.html",
                {"team": await list_staff(session), "form": empty_form(), "errors": {}, "notice": notice},
                block="staff_section")


routes = [staff_list, staff_create]
