"""The client's Instagram professional account (issue 10), on the deal's content page: one form connects it
(IG user id + access token) for automatic publishing and Insights statistics, shows the connection's status
and the last Graph error (an expired token, code 190; a rate limit) with "Test connection" to retry.

The content service checks the token against the Graph API, keeps it encrypted at rest and never answers
it; this page never shows it either (the field is always empty after a submit). The lead and the deal's
responsible manager connect, test and disconnect (the service decides: another manager's deal is a 404,
the analyst's attempt a 403); the analyst reads the status.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import _
from gateway.pages.content import EDITORS, READERS, client_name_of, is_htmx, may_change, staff_of
from gateway.rendering import page, redirect
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable
from shared import messages as M

Services = NamedDependency[ServiceClient]
TEMPLATE = "pages/content_instagram.html"


def graph_error_text(error: dict[str, Any] | None) -> str:
    """The last Graph error as the user reads it; Graph's own message (English, the channel's words) follows."""
    if not error:
        return ""
    kind = error.get("kind")
    if kind == "token_expired":
        return _("The access token has expired or was revoked (code %(code)s): connect again with a new token.") \
            % {"code": error.get("code")}
    if kind == "rate_limit":
        return _("Instagram's request limit was reached (code %(code)s): wait, then test the connection again.") \
            % {"code": error.get("code")}
    return _("Instagram refused the request (code %(code)s).") % {"code": error.get("code")}


async def instagram_context(request: Request, services: ServiceClient, deal_id: str, *,
                            errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                            notice: str = "", tested: bool | None = None) -> dict[str, Any]:
    conn = await services.get("content", f"/deals/{deal_id}/instagram")
    return {"deal_id": deal_id, "client": await client_name_of(services, deal_id), "conn": conn,
            "error_text": graph_error_text(conn.get("last_error")), "rights": may_change(staff_of(request)),
            "errors": errors or {}, "values": values or {}, "notice": notice, "tested": tested}


def instagram_page(request: Request, ctx: dict[str, Any], status_code: int = 200) -> Response:
    return page(request, TEMPLATE, ctx, block="instagram", status_code=status_code)


@get("/content/deals/{deal_id:str}/instagram", name="content_instagram", opt=READERS)
async def content_instagram(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    return instagram_page(request, await instagram_context(request, services, deal_id))


def connect_errors(exc: ServiceError) -> dict[str, str]:
    """The content service's refusal, beside the field it names, in the user's language."""
    errors: dict[str, str] = {}
    for e in exc.errors:
        field = str(e.get("field") or "")
        if field == "ig_user_id":
            errors["ig_user_id"] = _("Enter the numeric id of the Instagram professional account.")
        elif field == "access_token" and e.get("code") == M.INSTAGRAM_REFUSED:
            params = e.get("params") or {}
            errors["access_token"] = _("Instagram refused this token (code %(code)s): %(message)s") % {
                "code": params.get("graph_code"), "message": params.get("reason") or e.get("message") or ""}
        elif field == "access_token":
            errors["access_token"] = _("Required.")
    if not errors:
        errors["form"] = _("The request was refused.") if exc.status_code != 403 else \
            _("Only the lead and the deal's manager connect the account.")
    return errors


@post("/content/deals/{deal_id:str}/instagram", name="content_instagram_connect", opt=EDITORS)
async def content_instagram_connect(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """Connect (or reconnect with a new token). The token is checked by Instagram before it is kept."""
    form = await request.form()
    ig_user_id = str(form.get("ig_user_id") or "").strip()
    token = str(form.get("access_token") or "").strip()
    errors: dict[str, str] = {}
    if not ig_user_id.isdigit():
        errors["ig_user_id"] = _("Enter the numeric id of the Instagram professional account.")
    if not token:
        errors["access_token"] = _("Required.")
    if not errors:
        try:
            await services.put("content", f"/deals/{deal_id}/instagram",
                               json={"ig_user_id": ig_user_id, "access_token": token})
        except ServiceError as exc:
            if exc.status_code not in (403, 409, 422):
                raise
            errors = connect_errors(exc)
        except ServiceUnavailable:
            errors = {"form": _("Instagram or the content service did not answer; nothing was saved. Try again.")}
    if not errors and not is_htmx(request):
        return redirect(request, f"/content/deals/{deal_id}/instagram")
    ctx = await instagram_context(request, services, deal_id, errors=errors, values={"ig_user_id": ig_user_id},
                                  notice="" if errors else _("Instagram account connected."))
    return instagram_page(request, ctx, 422 if errors else 200)


@post("/content/deals/{deal_id:str}/instagram/test", name="content_instagram_test", opt=EDITORS)
async def content_instagram_test(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    """"Test connection" (and the retry after a Graph error): Instagram reads the account with the stored token."""
    errors: dict[str, str] = {}
    tested = None
    try:
        tested = bool((await services.post("content", f"/deals/{deal_id}/instagram/test", json={}))["ok"])
    except ServiceError as exc:
        if exc.status_code not in (403, 404, 409, 422):
            raise
        errors = {"form": _("Connect an account first.") if exc.status_code == 404 else
                  _("Only the lead and the deal's manager test the connection.")}
    except ServiceUnavailable:
        errors = {"form": _("Instagram or the content service did not answer; try again.")}
    notice = _("The connection works.") if tested else ""
    ctx = await instagram_context(request, services, deal_id, errors=errors, notice=notice, tested=tested)
    return instagram_page(request, ctx, 422 if errors else 200)


@post("/content/deals/{deal_id:str}/instagram/disconnect", name="content_instagram_disconnect", opt=EDITORS)
async def content_instagram_disconnect(request: Request, services: Services, deal_id: FromPath[str]) -> Response:
    errors: dict[str, str] = {}
    try:
        await services.delete("content", f"/deals/{deal_id}/instagram")
    except ServiceError as exc:
        if exc.status_code not in (403, 404, 409):
            raise
        errors = {"form": _("Connect an account first.") if exc.status_code == 404 else
                  _("Only the lead and the deal's manager connect the account.")}
    if not errors and not is_htmx(request):
        return redirect(request, f"/content/deals/{deal_id}/instagram")
    ctx = await instagram_context(request, services, deal_id, errors=errors,
                                  notice="" if errors else _("Instagram account disconnected."))
    return instagram_page(request, ctx, 422 if errors else 200)


routes = [content_instagram, content_instagram_connect, content_instagram_test, content_instagram_disconnect]
